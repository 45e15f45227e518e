"""Progress that tells (issue 33, item 4), driven with real jobs: a running job's row says its stage and a
clock that moves, with about how long is left where its work is counted; the jobs pane grows while jobs
run and shrinks when they end; a sweep's points are drawn as they are measured; during a benchmark the
Latency tab says one is running."""

from __future__ import annotations

from app.session import BENCHMARK, SWEEP
from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event


def _converted(qtbot, window, workdir, *targets: tuple[str, str]) -> None:
    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    set_shape(qtbot, window, "x", "1x3x32x32", dynamic_axes=(0,))
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, *(targets or [("onnx", "fp32")]))
    convert(qtbot, window)


def test_a_sweep_row_has_a_moving_clock_and_an_estimate_and_its_points_come_as_measured(qtbot, window, workdir):
    # three ended rows above the sweep's: more than the pane shows while one job runs
    _converted(qtbot, window, workdir, ("onnx", "fp32"), ("onnx", "fp16"), ("torchscript-trace", "fp32"))
    idle = window.right_split.sizes()[0]
    assert idle == window.jobs.fitting_height()       # one row of room once nothing runs
    panel = window.sweep_panel
    panel.threads.setText("1")
    panel.batches.setText("1, 2")
    panel.concurrency.setText("1, 2")
    panel.seconds.setValue(0.5)                         # 12 points of half a second each: the work is counted
    with wait_event(qtbot, window.session.events.sweep_finished, timeout=120_000) as finished:
        click(qtbot, panel.run_button)
        row = window.jobs.rows[SWEEP]
        assert window.right_split.sizes()[0] > idle    # the pane grows while a job runs
        view = window.jobs.viewport()                  # and shows the running row, not the ended one above it

        def in_view() -> bool:
            top = row.mapTo(view, row.rect().topLeft()).y()
            return 0 <= top and top + row.height() <= view.height()

        qtbot.waitUntil(lambda: row.y() > 0 and in_view(), timeout=10_000)   # laid out under the three others
        qtbot.waitUntil(lambda: row.clock.text() != "", timeout=60_000)
        first = row.clock.text()
        qtbot.waitUntil(lambda: row.clock.text() != first, timeout=10_000)   # the clock moves
        # where the work is counted: about how long is left, and a determinate bar
        qtbot.waitUntil(lambda: "left" in row.clock.text(), timeout=60_000)
        assert row.progress.maximum() == 100 and 0 < row.progress.value() < 100
        # the points measured so far are on the chart before the sweep ends
        qtbot.waitUntil(lambda: len(panel.live_points()) >= 2, timeout=60_000)
        assert not window.session.jobs[SWEEP].ended and "measured so far" in panel.proposals.text()
        drawn = [item for item in panel.chart.getPlotItem().items if hasattr(item, "points")]
        assert sum(len(item.points()) for item in drawn) == len(panel.live_points())
    data = finished.args[0]
    live = {(p["threads"], p["batch"], p["concurrency"]) for p in panel.live_points()}
    assert live == {(p["threads"], p["batch"], p["concurrency"]) for p in data["points"]}
    qtbot.waitUntil(lambda: window.session.jobs[SWEEP].ended)
    assert row.clock.text().startswith("took ")
    assert window.right_split.sizes()[0] == idle        # and shrinks when it ends


def test_during_a_benchmark_the_latency_tab_says_one_is_running(qtbot, window, workdir):
    _converted(qtbot, window, workdir)
    chart = window.latency_chart
    assert window.tabs.currentIndex() == 0 and chart._empty.toPlainText().startswith("Run a benchmark")
    window.bench_options.batches.setText("1")
    window.bench_options.runs.setValue(5)
    with wait_event(qtbot, window.session.events.benchmark_finished, timeout=180_000):
        click(qtbot, window.benchmark_button)
        assert chart._empty.isVisible() and chart._empty.toPlainText().startswith("A benchmark is running")
        assert not chart._empty.toPlainText().startswith("Run a benchmark")
        assert window.batch_chart._empty.toPlainText().startswith("A benchmark is running")   # and the next tab
        qtbot.waitUntil(lambda: window.session.jobs[BENCHMARK].stage != "", timeout=60_000)
        job = window.session.jobs[BENCHMARK]
        assert job.ended or f"({job.stage})" in chart._empty.toPlainText()   # and at which stage
    assert chart.shown and not chart._empty.isVisible()            # the bars, once it ended
    assert chart._empty.toPlainText().startswith("Run a benchmark")  # and the note is the idle one again
    assert not window.batch_chart._empty.toPlainText().startswith("A benchmark is running")
