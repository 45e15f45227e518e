"""The window keeps the user's work (issue 33, item 2): a file that cannot be read is refused before
anything is cleared and never enters Open Recent; quitting, opening another model or the example while
jobs run asks first (cancel them and go on, or keep working)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox

from app.session import BENCHMARK
from tests.ui.user import answer, benchmark, click, convert, drop_file, load_model, message_box, tick, wait_event

YES, NO = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No


def recent_files(window) -> list[str]:
    return [a.toolTip() for a in window.recent_menu.actions() if a.toolTip()]


def start_a_long_benchmark(qtbot, window) -> None:
    """A benchmark of the loaded model that runs for minutes unless cancelled; returns once it runs."""
    window.bench_options.batches.setText("1, 16")
    window.bench_options.runs.setValue(10_000)
    click(qtbot, window.benchmark_button)
    qtbot.waitUntil(lambda: any(j.state == "running" for j in window.session.jobs.values()), timeout=60_000)


def test_a_file_that_cannot_be_read_leaves_the_work_on_screen(qtbot, window, workdir, tmp_path):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))
    convert(qtbot, window)
    benchmark(qtbot, window)
    artifact = window.results.row_for("onnx", "fp16").artifact
    title, bars = window.windowTitle(), window.latency_chart.rows

    truncated = tmp_path / "truncated.onnx"  # a download cut short
    truncated.write_bytes(workdir["cnn_onnx"].read_bytes()[:300])
    assert drop_file(window, truncated)
    box = message_box(qtbot, window)
    assert box.windowTitle() == "Cannot load the model"
    assert "cnn.onnx stays open, with its results" in box.text()
    answer(qtbot, box, QMessageBox.StandardButton.Ok)

    # nothing was cleared: the model, its results, its jobs, its benchmark, the title
    assert window.model_path == workdir["cnn_onnx"] and window.model.file_label.text() == "cnn.onnx"
    assert window.model.summary["format"] == "onnx" and window.convert_button.isEnabled()
    assert window.results.row_for("onnx", "fp16").artifact == artifact and artifact.is_file()
    assert window.jobs.row_for("onnx", "fp16").state == "done"
    assert window.last_benchmark is not None and window.latency_chart.rows == bars and bars
    assert window.windowTitle() == title
    # and the broken file is not offered again
    assert str(truncated.resolve()) not in recent_files(window)
    assert recent_files(window)[0] == str(workdir["cnn_onnx"].resolve())
    assert "could not load" in window.log.text() and "truncated.onnx" in window.log.text()


def test_quitting_opening_a_model_or_the_example_with_jobs_running_asks_first(qtbot, window, workdir, tmp_path,
                                                                              monkeypatch):
    asked_for_folder = []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: asked_for_folder.append(a) or ""))
    load_model(qtbot, window, workdir["cnn_onnx"])
    start_a_long_benchmark(qtbot, window)

    window.quit_action.trigger()  # Ctrl+Q
    box = message_box(qtbot, window)
    assert box.windowTitle() == "Jobs are running" and "    Benchmark" in box.text()
    assert box.button(YES).text() == "Cancel the jobs and quit" and box.defaultButton() is box.button(NO)
    picture = tmp_path / "jobs-are-running.png"
    assert box.grab().save(str(picture)) and picture.stat().st_size > 1000
    answer(qtbot, box, NO)  # Keep working
    assert window.isVisible() and not window.closed and window.session.jobs_running

    window.example_action.trigger()  # Help ▸ Open an Example…
    box = message_box(qtbot, window)
    assert box.button(YES).text() == "Cancel the jobs and open the example"
    answer(qtbot, box, NO)
    assert not asked_for_folder and window.session.jobs_running  # no folder asked for, nothing stopped

    assert drop_file(window, workdir["cnn_pt2"])
    box = message_box(qtbot, window)
    assert box.button(YES).text() == "Cancel the jobs and open cnn.pt2"
    assert window.model_path == workdir["cnn_onnx"] and window.session.jobs_running  # nothing yet
    with wait_event(qtbot, window.session.events.model_loaded) as loaded:
        answer(qtbot, box, YES)
    assert Path(loaded.args[0]["path"]) == workdir["cnn_pt2"] and window.model_path == workdir["cnn_pt2"]
    assert ": cancelling" in window.log.text()  # through the jobs' own Cancel
    assert not window.session.jobs_running and BENCHMARK not in window.running

    window.close()  # nothing running: no question
    assert window.closed and not window.isVisible()
    assert window.dialog is None or not window.dialog.isVisible()


def test_a_question_naming_a_file_shows_the_name_on_one_line_with_its_ampersand(window):
    """A button that names a file ("Cancel the jobs and open a&b\\n.pt") shows it on one line, its "&" as
    written (not a keyboard shortcut), its newline escaped."""
    box = window.ask("Jobs are running", "text", lambda: None, yes="Cancel the jobs and open a&b\n.pt", no="Keep working")
    try:
        text = box.button(QMessageBox.StandardButton.Yes).text()
        assert text == "Cancel the jobs and open a&&b\\x0a.pt"
    finally:
        box.close()
