"""A new user's first hour in the window: a state dict + factory whose input shapes cannot be guessed
is converted with mouse and keyboard only — no dead end, and Convert's tooltip always names the one
thing missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event

@pytest.fixture
def flat_model(tmp_path) -> Path:
    """A state dict of a network taking images flattened to 768 values (no layer tells that), and the
    file with its factory."""
    import torch

    from tests.models import FlatInputNet

    torch.manual_seed(0)
    path = tmp_path / "flat.pth"
    torch.save(FlatInputNet().state_dict(), path)
    (tmp_path / "net.py").write_text("from tests.models import FlatInputNet\n\n\ndef build():\n    return FlatInputNet()\n")
    return path


def _why_not(window) -> str:
    assert not window.convert_button.isEnabled()
    return window.convert_button.toolTip()


def test_a_model_whose_shapes_cannot_be_guessed_converts_once_they_are_typed(qtbot, window, flat_model, tmp_path):
    assert _why_not(window) == "cannot convert: load a model first (drop it on the window or press Ctrl+O)"
    summary = load_model(qtbot, window, flat_model)
    assert summary["format"] == "state-dict"
    assert "needs its architecture" in _why_not(window)

    summary = load_model(qtbot, window, flat_model, arch=f"{tmp_path / 'net.py'}:build")
    assert not summary["outputs"] and "could not guess the input shapes" in summary["warnings"][0]
    assert _why_not(window) == "cannot convert: enter the shape of input x (e.g. 1x3x224x224)"  # the true reason

    set_shape(qtbot, window, "x", "1xx")
    assert "must be sizes joined by x" in _why_not(window)
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000) as probed:  # the window runs it on the typed shape
        set_shape(qtbot, window, "x", "1x768")
    assert probed.args[0]["outputs"][0]["shape"] == [1, 4]
    assert "Outputs: output: float32[1x4]" in window.model.outputs_label.text()
    assert "could not guess" not in window.model.warnings_label.text()
    assert _why_not(window) == "cannot convert: tick at least one target and precision"

    window.options.out_dir.setText(str(tmp_path / "out"))
    tick(qtbot, window, ("onnx", "fp32"))
    assert window.convert_button.isEnabled(), window.convert_button.toolTip()
    convert(qtbot, window)
    row = window.results.row_for("onnx", "fp32")
    assert row.artifact.is_file() and row.verification_passed
    assert row.request.source.inputs[0].shape == (1, 768)

    # Load again: the typed shape stays, and the model is run on it again
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000):
        click(qtbot, window.model.load_button)
    editor = window.model.inputs
    assert editor.shape_edit(editor.row_of("x")).text() == "1x768"
    qtbot.waitUntil(lambda: window.convert_button.isEnabled(), timeout=60_000)


def test_a_typed_shape_the_model_cannot_take_is_its_error_under_the_table(qtbot, window, flat_model, tmp_path):
    load_model(qtbot, window, flat_model, arch=f"{tmp_path / 'net.py'}:build")
    set_shape(qtbot, window, "x", "1x700")
    qtbot.waitUntil(lambda: "does not run on the given inputs" in window.model.warnings_label.text(), timeout=60_000)
    assert "unflatten" in window.model.warnings_label.text()  # the model's own error, one line
    tick(qtbot, window, ("onnx", "fp32"))
    assert _why_not(window).startswith("cannot convert: flat.pth does not run on the given inputs (x: float32[1x700])")
    assert window.dialog is None or not window.dialog.isVisible()  # no modal box for a typing mistake
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000):
        set_shape(qtbot, window, "x", "1x768")
    qtbot.waitUntil(lambda: window.convert_button.isEnabled(), timeout=10_000)
    assert "does not run" not in window.model.warnings_label.text()


def test_the_example_shows_the_whole_flow_in_a_minute(qtbot, window, tmp_path, monkeypatch):
    """The empty window offers an example; from it, with the mouse: INT8 with accuracy on real data, a
    benchmark and a report — nothing downloaded."""
    from PySide6.QtWidgets import QFileDialog

    folder = tmp_path / "example"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(folder)))
    assert window.model.example_button.isVisible()
    assert window.example_action in window.menuBar().actions()[-1].menu().actions()  # Help ▸ Open an Example…
    with wait_event(qtbot, window.session.events.model_loaded, timeout=120_000):
        click(qtbot, window.model.example_button)
    qtbot.waitUntil(lambda: window.model.inputs.shape_edit(0).text() == "1x1x8x8", timeout=10_000)
    assert not window.model.example_button.isVisible()
    assert (folder / "digits_cnn.pth").is_file() and (folder / "README.txt").is_file()
    assert window.options.calibration.text() == str(folder / "digits")

    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "int8"))
    convert(qtbot, window)
    int8 = window.results.row_for("onnx", "int8")
    assert int8.artifact.is_file() and int8.artifact.parent == folder / "out"
    evaluation = window.results.row_for("onnx", "int8").result.evaluation
    assert evaluation.samples > 100 and evaluation.top1_agreement > 0.9   # real digits, a real accuracy figure

    window.bench_options.batches.setText("1")
    window.bench_options.runs.setValue(5)
    with wait_event(qtbot, window.session.events.benchmark_finished, timeout=180_000) as finished:
        click(qtbot, window.benchmark_button)
    names = {r["name"] for r in finished.args[0]["results"]}
    assert {"digits_cnn.fp32.onnx", "digits_cnn.int8.onnx"} <= names and any("eager" in n for n in names), names

    report = folder / "out" / "report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(report), "")))
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        window.export_report_action.trigger()
    assert "digits_cnn.int8.onnx" in report.read_text(encoding="utf-8")
