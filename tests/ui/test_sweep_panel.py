"""The Sweep tab driven as a user would: sweep the converted artifact, read the knee and the proposal,
and export it for serving with those settings (checked with Triton's own protobuf)."""

from __future__ import annotations

import json

from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event


def test_sweep_tab_proposes_settings_that_export_for_serving_writes(qtbot, window, workdir, monkeypatch):
    from google.protobuf import text_format
    from PySide6.QtWidgets import QFileDialog
    from tritonclient.grpc import model_config_pb2

    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    set_shape(qtbot, window, "x", "1x3x32x32", dynamic_axes=(0,))
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp32"))
    convert(qtbot, window)
    panel = window.sweep_panel
    panel.threads.setText("1")
    panel.batches.setText("1, 2")
    panel.concurrency.setText("1, 2")
    panel.seconds.setValue(0.1)
    with wait_event(qtbot, window.session.events.sweep_finished, timeout=120_000) as finished:
        click(qtbot, panel.run_button)
    data = finished.args[0]
    assert len(data["points"]) == 4 and len(data["proposals"]) == 1
    proposal = data["proposals"][0]
    assert window.tabs.currentWidget().isAncestorOf(panel)
    assert panel.knee_positions() == [(proposal["knee"]["p99_ms"], proposal["knee"]["throughput"])]
    assert proposal["name"] in panel.proposals.text() and f"{proposal['instances']} instance(s)" in panel.proposals.text()
    saved = workdir["out"] / "cnn.sweep.json"
    assert json.loads(saved.read_text())["proposals"] == data["proposals"]

    repo = workdir["out"] / "repo"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(repo)))
    export = [a for a in window.results.context_menu(0).actions() if a.text().startswith("Export")][0]
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        export.trigger()
    config = text_format.Parse((repo / "cnn_fp32" / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.instance_group[0].count == proposal["instances"]
    assert config.parameters["intra_op_thread_count"].string_value == "1"
    assert list(config.dynamic_batching.preferred_batch_size) == proposal["preferred_batch_sizes"]


def test_without_artifacts_the_sweep_is_blocked_with_the_reason(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.sweep_panel.run_button.click()
    assert "Cannot sweep: convert first" in window.statusBar().currentMessage()


def test_the_sweep_chart_and_its_legend_are_in_view_at_1280x860(qtbot, window):
    from PySide6.QtCore import QRect, QRectF
    from PySide6.QtWidgets import QScrollArea

    panel = window.sweep_panel
    panel.set_result({"points": [{"artifact": "/m/cnn.onnx", "name": "cnn.onnx", "runtime": "onnxruntime", "threads": 1,
                                  "batch": b, "concurrency": 1, "calls": 10, "p50_ms": b * 0.5, "p99_ms": b * 0.6,
                                  "throughput": 900.0 * b}
                                 for b in (1, 2, 4)], "proposals": []})
    window.resize(1280, 860)
    window.tabs.setCurrentWidget(next(window.tabs.widget(i) for i in range(window.tabs.count())
                                      if window.tabs.widget(i).isAncestorOf(panel)))
    qtbot.waitExposed(panel)
    scroll = next(w for w in window.tabs.currentWidget().findChildren(QScrollArea) if w.widget() is panel)
    viewport = scroll.viewport()

    def legend_in_view() -> None:
        legend = panel.legend.mapRectToScene(panel.legend.boundingRect())
        on_chart = QRectF(panel.chart.mapFromScene(legend).boundingRect()).toAlignedRect()
        in_viewport = QRect(panel.chart.mapTo(viewport, on_chart.topLeft()), on_chart.size())
        assert panel.legend.isVisible() and viewport.rect().contains(in_viewport), (in_viewport, viewport.rect())
        assert scroll.verticalScrollBar().maximum() == 0   # nothing to scroll to

    qtbot.waitUntil(legend_in_view, timeout=5_000)


def test_the_sweep_axis_shows_milliseconds_as_milliseconds(qtbot, window):
    """p99s of 0.05–0.8 ms read 50–800 on the axis labelled "ms" once the chart was restyled (pyqtgraph's
    enableAutoSIPrefix(False) keeps a scale computed from the range at that moment)."""
    from PySide6.QtGui import QPalette

    panel = window.sweep_panel
    panel.set_result({"points": [{"artifact": "/m/cnn.onnx", "name": "cnn.onnx", "runtime": "onnxruntime", "threads": 1,
                                  "batch": b, "concurrency": 1, "calls": 10, "p50_ms": b * 0.04, "p99_ms": b * 0.05,
                                  "throughput": 20000.0 * b} for b in (1, 4, 16)], "proposals": []})
    window.setPalette(QPalette(window.palette()))        # a palette change restyles every chart
    axis = panel.chart.getPlotItem().getAxis("bottom")
    qtbot.waitUntil(lambda: axis.range[1] > 0.7, timeout=5_000)
    from ui.chart_theme import style_plot

    style_plot(panel.chart.getPlotItem(), window.palette().color(QPalette.ColorRole.WindowText))
    assert axis.autoSIPrefixScale == 1.0 and axis.labelUnitPrefix == ""
    assert axis.tickStrings([0.5], axis.scale * axis.autoSIPrefixScale, 0.1) == ["0.5"]
