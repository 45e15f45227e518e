"""The benchmark charts, fed with real measurements (the benchmark engine's rows)."""

from __future__ import annotations

import csv

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QImage

from app.session import BENCHMARK
from tests.ui.timing import ort_rows
from tests.ui.user import benchmark, convert, load_model, tick

@pytest.fixture(scope="module")
def measured_rows(model_files):
    return ort_rows(model_files["cnn_onnx"], "image", (3, 32, 32), batches=(1, 4))


def test_latency_chart_has_one_bar_per_runner_with_whiskers_and_speedups(qtbot, measured_rows, tmp_path):
    from ui.latency_chart import LatencyChart

    chart = LatencyChart()
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    chart.set_rows(measured_rows)
    runners = sorted({r["name"] for r in measured_rows})
    assert chart.batch == 1
    assert sorted(r["name"] for r in chart.shown) == runners
    f = chart.axis_value   # milliseconds, or their log10 on a log axis
    assert len(chart.bars.opts["height"]) == len(runners)
    assert list(chart.bars.opts["x1"]) == pytest.approx([f(r["p50_ms"]) for r in chart.shown])
    p90, p99 = chart.whiskers
    assert list(p90.opts["right"]) == pytest.approx([f(r["p90_ms"]) - f(r["p50_ms"]) for r in chart.shown])
    assert list(p99.opts["right"]) == pytest.approx([f(r["p99_ms"]) - f(r["p50_ms"]) for r in chart.shown])
    for row, label in zip(chart.shown, chart.labels):
        assert f"×{row['speedup_vs_baseline']:.2f}" in label.toPlainText()

    png = chart.export_png(tmp_path / "latency.png", width=1200)
    assert QImage(str(png)).width() == 1200
    with open(chart.export_csv(tmp_path / "latency.csv"), newline="") as f:
        lines = list(csv.DictReader(f))
    assert len(lines) == len(measured_rows) and float(lines[0]["p50_ms"]) == pytest.approx(measured_rows[0]["p50_ms"])


def test_hovering_a_bar_shows_its_exact_numbers(qtbot, measured_rows):
    from ui.latency_chart import LatencyChart

    chart = LatencyChart()
    qtbot.addWidget(chart)
    chart.resize(800, 400)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_rows(measured_rows)
    moves = []

    def point_at_the_bar() -> bool:
        # pyqtgraph lays the view out on later events: on a busy machine the first point may map to
        # where the bar is not yet, so the pointer moves again, as a user's hand would (a pixel apart)
        target = chart.mapFromScene(chart.bar_center(1))
        moves.append(target)
        qtbot.mouseMove(chart.viewport(), target + QPoint(len(moves) % 2, 0))
        return bool(chart.hover_text)

    qtbot.waitUntil(point_at_the_bar, timeout=10_000)
    row = chart.shown[1]
    assert row["name"] in chart.hover_text and f"p50 {row['p50_ms']:.3f} ms" in chart.hover_text


def test_batch_chart_plots_latency_and_throughput_per_runner(qtbot, measured_rows, tmp_path):
    from ui.latency_chart import BatchChart

    chart = BatchChart()
    qtbot.addWidget(chart)
    chart.resize(900, 350)
    chart.show()
    chart.set_rows(measured_rows)
    assert len(chart.series) == 2 and len(chart.curves) == 4
    xs, ys = chart.curves[1].getData()  # throughput of the first runner across batch sizes
    first = [r for r in measured_rows if r["name"] == next(iter(chart.series))]
    assert list(ys) == pytest.approx([r["throughput"] for r in first])
    assert QImage(str(chart.export_png(tmp_path / "batch.png", width=1000))).width() == 1000
    assert chart.export_csv(tmp_path / "batch.csv").read_text().count("\n") == len(measured_rows) + 1


def test_benchmark_button_charts_the_source_and_every_artifact(qtbot, window, workdir, monkeypatch):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))
    convert(qtbot, window)
    rows = benchmark(qtbot, window, batches="1, 2", runs=10)["results"]
    runners = {r["name"] for r in rows}
    # the source, and the ONNX artifact in ONNX Runtime and in OpenVINO
    assert runners == {"cnn.onnx (source)", "cnn.fp16.onnx", "cnn.fp16.onnx [OpenVINO]"}
    assert {r["runtime"] for r in rows} == {"onnxruntime", "openvino"}
    assert len(window.latency_chart.bars.opts["height"]) == len(runners)
    assert window.tabs.currentWidget().isAncestorOf(window.latency_chart) and window.jobs.rows[BENCHMARK].state == "done"


    # File ▸ Export Report… writes one HTML file with the artifact and this benchmark, off the UI thread
    from PySide6.QtWidgets import QFileDialog

    out = workdir["out"] / "handed-on.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    assert window.export_report_action.isEnabled()
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        window.export_report_action.trigger()
    text = out.read_text(encoding="utf-8")
    assert "cnn.fp16.onnx" in text and 'id="chart-latency"' in text and "this session&#x27;s benchmark" in text
    assert f"wrote the report {out} (1 artifact(s), 1 benchmark result(s))" in window.log.text()


def test_benchmark_button_says_what_it_does(window):
    assert "benchmark" in window.benchmark_button.toolTip()



@pytest.fixture(scope="module")
def engine_rows(model_files):
    """Rows from the benchmark engine itself: an ONNX source and the same file as an artifact, with
    the intervals and verdicts the engine computes."""
    from app.bench.benchmark import benchmark
    from app.bench.harness import BenchConfig
    from app.request import ModelSource

    source = ModelSource(model_files["cnn_onnx"])
    config = BenchConfig(batches=(1, 2), warmup=2, warmup_seconds=0, runs=20, min_seconds=0, threads=1, rounds=4)
    return benchmark(source, [model_files["cnn_onnx"]], config, openvino=False).to_json()["results"]


def test_empty_charts_show_their_message_not_meaningless_axes(qtbot, engine_rows):
    from ui.latency_chart import BatchChart, LatencyChart

    latency, batch = LatencyChart(), BatchChart()
    for chart in (latency, batch):
        qtbot.addWidget(chart)
        chart.resize(800, 350)
        chart.show()
        qtbot.waitExposed(chart)
    plots = (latency.getPlotItem(), batch.latency, batch.throughput)

    def axes_visible() -> list[bool]:
        return [p.getAxis(name).isVisible() for p in plots for name in ("left", "bottom")]

    assert axes_visible() == [False] * 6
    assert latency._empty.isVisible() and batch._empty.isVisible()
    latency.set_rows(engine_rows)
    batch.set_rows(engine_rows)
    assert axes_visible() == [True] * 6
    assert not latency._empty.isVisible() and not batch._empty.isVisible()
    latency.set_rows([])
    batch.set_rows([])
    assert axes_visible() == [False] * 6 and latency._empty.isVisible() and batch._empty.isVisible()


def test_latency_chart_draws_each_p50_interval_and_marks_no_measurable_difference(qtbot, engine_rows):
    from ui.latency_chart import LatencyChart, describe

    chart = LatencyChart()
    qtbot.addWidget(chart)
    chart.set_rows(engine_rows)
    shown = chart.shown
    assert len(shown) == 2 and all(r["p50_ci_low_ms"] <= r["p50_ms"] <= r["p50_ci_high_ms"] for r in shown)
    f = chart.axis_value
    assert list(chart.intervals.opts["right"]) == pytest.approx([f(r["p50_ci_high_ms"]) - f(r["p50_ms"]) for r in shown])
    assert list(chart.intervals.opts["left"]) == pytest.approx([f(r["p50_ms"]) - f(r["p50_ci_low_ms"]) for r in shown])
    for row, label in zip(shown, chart.labels):
        assert label.toPlainText().endswith(" (=)") == (row["verdict"] == "no measurable difference")
        if not row["baseline"]:   # the speed-up with its interval, on the bar
            assert f"×{row['speedup_vs_baseline']:.2f} [{row['speedup_ci_low']:.2f}–{row['speedup_ci_high']:.2f}]" \
                in label.toPlainText()
    artifact = next(r for r in shown if not r["baseline"])
    text = describe(artifact)
    assert f"p50 95 % interval {artifact['p50_ci_low_ms']:.3f}–{artifact['p50_ci_high_ms']:.3f} ms" in text
    assert artifact["verdict"] in text and f"[{artifact['speedup_ci_low']:.2f}–" in text


def test_bar_labels_drop_the_shared_stem_for_every_runtime():
    from ui.latency_chart import _tick_names

    assert _tick_names(["PyTorch eager", "resnet18.trace.fp32.pt", "resnet18.fp32.onnx",
                        "resnet18.fp32.onnx [OpenVINO]"]) == [
        "PyTorch eager", "trace.fp32.pt", "fp32.onnx", "fp32.onnx [OpenVINO]"]
