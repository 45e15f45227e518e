"""Charts a person reads at a glance (issue 33): a log latency axis when one runner is 100× another, a
noisy source flagged on its bar, labelled accuracy points on axes from 0, one theme for every chart,
legends outside the data, and no clipped text in the window at 1280×860 after a real benchmark.

The rows come from the benchmark engine itself (a real ONNX file timed twice); where a test needs a
slow or noisy source, that row's figures are scaled as a busy machine made them (eager timed at 867 ms
beside artifacts at 20 ms), which the engine's own rounds cannot be made to produce on demand."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPointF, QRectF

from tests.ui.user import benchmark, convert, load_model, tick


@pytest.fixture(scope="module")
def engine_rows(model_files):
    from app.bench.benchmark import benchmark as run
    from app.bench.harness import BenchConfig
    from app.request import ModelSource

    config = BenchConfig(batches=(1,), warmup=2, warmup_seconds=0, runs=20, min_seconds=0, threads=1, rounds=4)
    return run(ModelSource(model_files["cnn_onnx"]), [model_files["cnn_onnx"]], config,
               openvino=False).to_json()["results"]


def slow_noisy_source(rows: list[dict], factor: float = 100.0) -> list[dict]:
    """The rows with the source ``factor``× slower and its p50 uncertain by ±40 % (flagged noisy)."""
    out = []
    for r in rows:
        r = dict(r)
        if r["baseline"]:
            for key in ("p50_ms", "p90_ms", "p99_ms", "mean_ms"):
                r[key] *= factor
            r["p50_ci_low_ms"], r["p50_ci_high_ms"] = r["p50_ms"] * 0.6, r["p50_ms"] * 1.4
            r["noisy"] = True
        out.append(r)
    return out


def shown(qtbot, chart, width=800, height=400):
    qtbot.addWidget(chart)
    chart.resize(width, height)
    chart.show()
    qtbot.waitExposed(chart)
    return chart


def scene_rect(item) -> QRectF:
    return item.mapRectToScene(item.boundingRect())


def test_latency_axis_goes_log_when_the_source_is_100x_slower_and_every_bar_stays_readable(qtbot, engine_rows):
    from ui.latency_chart import LatencyChart

    chart = shown(qtbot, LatencyChart())
    same = [dict(r, p90_ms=r["p50_ms"] * 1.1, p99_ms=r["p50_ms"] * 1.2) for r in engine_rows]
    chart.set_rows(same)
    assert not chart.log and "log" not in chart.getPlotItem().getAxis("bottom").labelText
    chart.set_rows(slow_noisy_source(engine_rows))
    assert chart.log and "log scale" in chart.getPlotItem().getAxis("bottom").labelText
    vb = chart.getPlotItem().getViewBox()

    def readable() -> None:   # the fast artifact is a bar, not a flat line (linear, it would be 1/100 of the source)
        lengths = [vb.mapViewToScene(QPointF(chart.axis_value(r["p50_ms"]), i)).x()
                   - vb.mapViewToScene(QPointF(chart.floor, i)).x() for i, r in enumerate(chart.shown)]
        assert min(lengths) >= 40 and max(lengths) < 10 * min(lengths), lengths

    qtbot.waitUntil(readable, timeout=5_000)


def test_a_noisy_source_is_flagged_on_its_bar(qtbot, engine_rows):
    from ui.chart_theme import WARNING
    from ui.latency_chart import LatencyChart

    chart = shown(qtbot, LatencyChart())
    chart.set_rows(engine_rows)   # a flag only on a row the engine found too noisy (a busy machine may)
    assert sorted(f.row for f in chart.flags) == [i for i, r in enumerate(chart.shown) if r["noisy"]]
    chart.set_rows(slow_noisy_source(engine_rows))
    source = next(i for i, r in enumerate(chart.shown) if r["baseline"])
    flags = [f for f in chart.flags if f.row == source]
    assert len(flags) == 1 and flags[0].isVisible()
    assert "too noisy" in flags[0].toPlainText() and "speed-ups uncertain" in flags[0].toPlainText()
    assert flags[0].color == WARNING
    vb = chart.getPlotItem().getViewBox()
    qtbot.waitUntil(lambda: vb.sceneBoundingRect().contains(scene_rect(flags[0])))   # whole, in the plot
    row_y = vb.mapViewToScene(QPointF(0, source)).y()
    assert abs(scene_rect(flags[0]).center().y() - row_y) < vb.height() / len(chart.shown)   # beside its bar


def test_accuracy_chart_labels_every_point_on_a_latency_axis_from_zero(qtbot):
    from ui.accuracy_chart import AccuracyChart

    points = [{"name": "cnn.onnx (source)", "latency_ms": 3.0, "accuracy": 0.97},
              {"name": "cnn.fp32.onnx", "latency_ms": 1.0, "accuracy": 0.97},
              {"name": "cnn.int8.onnx", "latency_ms": 0.4, "accuracy": 0.96},
              {"name": "cnn.fp32.onnx [OpenVINO]", "latency_ms": 1.1, "accuracy": 0.969}]
    chart = shown(qtbot, AccuracyChart())
    chart.set_points(points, "top-1 on the data · p50 latency at batch 1")
    vb = chart.getPlotItem().getViewBox()
    assert vb.viewRange()[0][0] == 0 and not chart.log
    assert [label.toPlainText() for label in chart.labels] == ["cnn.onnx (source)", "fp32.onnx", "int8.onnx",
                                                               "fp32.onnx [OpenVINO]"]

    def placed() -> bool:
        rects = [scene_rect(label) for label in chart.labels]
        return all(vb.sceneBoundingRect().contains(r) for r in rects) and \
            not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:])

    qtbot.waitUntil(placed)   # each label whole, inside the plot, none over another
    slow = [dict(p) for p in points]
    slow[0]["latency_ms"] = 300.0   # a source timed 100× slower: log axis, still no negative latency
    chart.set_points(slow, "top-1 on the data · p50 latency at batch 1")
    assert chart.log and 10 ** vb.viewRange()[0][0] > 0 and len(chart.labels) == len(slow)


def test_labels_of_points_at_the_same_place_do_not_overlap(qtbot):
    from ui.accuracy_chart import AccuracyChart

    # the source and its fp16 measured alike: one place on the chart, two names to read
    points = [{"name": "cnn.onnx (source)", "latency_ms": 1.0, "accuracy": 1.0},
              {"name": "cnn.fp16.onnx", "latency_ms": 1.0, "accuracy": 1.0},
              {"name": "cnn.int8.onnx", "latency_ms": 0.9, "accuracy": 1.0},
              {"name": "cnn.fp32.onnx", "latency_ms": 1.0, "accuracy": 1.0}]
    chart = shown(qtbot, AccuracyChart())
    vb = chart.getPlotItem().getViewBox()
    for same in (points[:2], points[:3], points[:2] + points[3:], points):
        chart.set_points(same, "mean cosine on the data · p50 latency at batch 1")

        def apart() -> None:
            rects = [scene_rect(label) for label in chart.labels]
            assert all(vb.sceneBoundingRect().contains(r) for r in rects), rects
            assert not any(a.intersects(b) for i, a in enumerate(rects) for b in rects[i + 1:]), rects

        qtbot.waitUntil(apart, timeout=5_000)


def test_every_chart_shares_one_theme(qtbot):
    from PySide6.QtGui import QPalette

    from ui.accuracy_chart import AccuracyChart
    from ui.latency_chart import BatchChart, LatencyChart
    from ui.sweep_panel import SweepPanel

    sweep = SweepPanel()
    qtbot.addWidget(sweep)
    charts = [LatencyChart(), BatchChart(), AccuracyChart(), sweep.chart]
    for chart in charts[:3]:
        qtbot.addWidget(chart)
    base = charts[0].palette().color(QPalette.ColorRole.Base)
    assert {c.backgroundBrush().color().name() for c in charts} == {base.name()}
    assert base.lightness() > 200   # the default palette: white, not pyqtgraph's black
    plots = [charts[0].getPlotItem(), charts[1].latency, charts[2].getPlotItem(), sweep.chart.getPlotItem()]
    assert len({p.getAxis("left").textPen().color().name() for p in plots}) == 1
    assert len({p.getAxis("left").style["tickFont"].pointSizeF() for p in plots}) == 1


def test_legends_sit_outside_the_data(qtbot, engine_rows):
    from ui.accuracy_chart import AccuracyChart
    from ui.latency_chart import BatchChart, LatencyChart
    from ui.sweep_panel import SweepPanel

    latency, batch, accuracy = (shown(qtbot, c) for c in (LatencyChart(), BatchChart(), AccuracyChart()))
    sweep = shown(qtbot, SweepPanel())
    rows = slow_noisy_source(engine_rows, factor=3.0)
    latency.set_rows(rows)
    batch.set_rows(rows)
    accuracy.set_points([{"name": r["name"], "latency_ms": r["p50_ms"], "accuracy": 1.0 - 0.01 * i}
                         for i, r in enumerate(rows)], "top-1 on the data · p50 latency at batch 1")
    sweep.set_result({"points": [{"artifact": f"/a/{i}", "name": f"model.{i}.onnx", "runtime": "onnxruntime",
                                  "threads": 1, "batch": b, "calls": 10,
                                  "concurrency": 1, "p50_ms": b * (i + 1.0), "p99_ms": b * (i + 1.5),
                                  "throughput": 100.0 * b / (i + 1)} for i in range(3) for b in (1, 2, 4)],
                      "proposals": []})
    cases = [(latency.legend, [latency.getPlotItem()]), (batch.legend, [batch.latency, batch.throughput]),
             (accuracy.legend, [accuracy.getPlotItem()]), (sweep.legend, [sweep.chart.getPlotItem()])]

    def apart() -> None:   # the layouts settle over the next events
        for legend, plots in cases:
            assert legend.isVisible() and legend.items
            box = scene_rect(legend)
            for plot in plots:
                data = plot.getViewBox().sceneBoundingRect()
                assert not box.intersects(data), (legend.entries(), box, data)

    qtbot.waitUntil(apart, timeout=5_000)
    dots = [accuracy.point_scene_pos(i) for i in range(len(accuracy.points))]
    assert not any(scene_rect(accuracy.legend).contains(d) for d in dots)


def test_chart_texts_are_whole_in_the_window_at_1280x860_after_a_benchmark(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))
    convert(qtbot, window)
    benchmark(qtbot, window, batches="1, 2", runs=10)
    window.resize(1280, 860)
    for chart in (window.latency_chart, window.batch_chart, window.accuracy_chart):
        window.tabs.setCurrentWidget(next(window.tabs.widget(i) for i in range(window.tabs.count())
                                          if window.tabs.widget(i).isAncestorOf(chart)))
        qtbot.waitExposed(chart)
        def whole(chart=chart) -> None:
            assert not clipped(chart), clipped(chart)

        qtbot.waitUntil(whole, timeout=5_000)


def clipped(chart) -> list[str]:
    """Texts of ``chart`` not wholly inside it: axis labels, titles, legend entries, labels on the data."""
    from ui.latency_chart import LatencyChart

    view = QRectF(chart.mapToScene(chart.viewport().rect()).boundingRect())
    plots = [chart.getPlotItem()] if hasattr(chart, "getPlotItem") else [chart.latency, chart.throughput]
    out = []
    for plot in plots:
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            if axis.isVisible() and axis.labelText:
                label = scene_rect(axis.label).adjusted(4, 4, -4, -4)   # less the text's own margin
                side = axis.sceneBoundingRect().height() if name == "left" else axis.sceneBoundingRect().width()
                if (label.height() if name == "left" else label.width()) > side or not view.contains(label):
                    out.append(axis.labelText)
        if plot.titleLabel.text and (scene_rect(plot.titleLabel.item).width() > plot.sceneBoundingRect().width()
                                     or not view.contains(scene_rect(plot.titleLabel.item))):
            out.append(plot.titleLabel.text)
    for legend in chart.theme_legends():
        if legend.isVisible() and not view.contains(scene_rect(legend)):
            out.append(" / ".join(legend.entries()))
    if isinstance(chart, LatencyChart):
        data = chart.getPlotItem().getViewBox().sceneBoundingRect()
        out += [t.toPlainText() for t in [*chart.labels, *chart.flags] if not data.contains(scene_rect(t))]
    return out
