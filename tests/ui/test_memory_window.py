"""The window's side of issue 16: a job that will not fit asks before it runs; Cancel stops a long one."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox

from tests.ui.user import answer, click, load_model, message_box, tick


def test_a_job_that_will_not_fit_asks_before_it_runs(qtbot, window, workdir, monkeypatch):
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", "600M")
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))

    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    assert box.windowTitle() == "Not enough memory"
    assert "needs about 1.2 GB" in box.text() and "only 0.60 GB is available" in box.text()
    answer(qtbot, box, QMessageBox.StandardButton.No)
    assert not window.jobs.running and not list(workdir["out"].glob("*.onnx"))

    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        answer(qtbot, box, QMessageBox.StandardButton.Yes)  # the user knows better: it runs
    assert window.jobs.row_for("onnx", "fp16").state == "done"
    assert window.results.row_for("onnx", "fp16").artifact.is_file()


def test_a_tight_fit_is_logged_and_runs(qtbot, window, workdir, monkeypatch):
    from app.machine.memory import estimate

    load_model(qtbot, window, workdir["cnn_onnx"])
    need = estimate(workdir["cnn_onnx"].stat().st_size, "onnx", "fp16", from_onnx=True).peak
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", str(int(need / 0.9)))
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        click(qtbot, window.convert_button)
    assert "warning: memory is tight" in window.log.text()
    assert window.jobs.row_for("onnx", "fp16").state == "done"
