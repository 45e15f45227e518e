"""Data dropped on the window (issue 33, item 6): only what the data loader accepts for the model on
screen becomes the data, with the number of samples it holds shown under the Data field; anything else
is one line saying what, which file and what to give instead, and the previous data stays."""

from __future__ import annotations

from tests.conftest import DIGITS_ARGS
from tests.ui.user import drop_file, load_model, set_shape

ARCH = DIGITS_ARGS[1]


def _image_model(qtbot, window, digits):
    load_model(qtbot, window, digits["state"], arch=ARCH)
    set_shape(qtbot, window, "x", "1x1x8x8")
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)


def _note(qtbot, window, starts: str) -> str:
    qtbot.waitUntil(lambda: window.options.data_note.text().startswith(starts), timeout=10_000)
    return window.options.data_note.text()


def test_a_text_file_dropped_on_an_image_model_is_refused_and_the_data_stays(qtbot, window, digits, tmp_path):
    _image_model(qtbot, window, digits)
    assert drop_file(window, digits["images"])
    assert _note(qtbot, window, "Data:") == "Data: images/ — 300 images in 10 classes"
    assert window.options.calibration.text() == str(digits["images"])
    notes = tmp_path / "notes.txt"
    notes.write_text("a sentence\nanother one\n")
    assert drop_file(window, notes)
    line = _note(qtbot, window, "Not used as data:")
    assert "notes.txt holds sentences" in line and "x: float32" in line and "folder of images" in line
    assert line.endswith("The data stays images.") and "\n" not in line
    assert window.statusBar().currentMessage() == line
    assert window.options.calibration.text() == str(digits["images"])      # the previous data stays
    assert f"refused {notes} as data" in window.log.text()
    assert window.model_path == digits["state"]                             # and the model


def test_a_dropped_npz_file_is_data_with_its_sample_count(qtbot, window, digits):
    _image_model(qtbot, window, digits)
    npz = digits["arrays"] / "digits.npz"
    assert drop_file(window, npz)
    assert _note(qtbot, window, "Data:") == "Data: digits.npz — 300 samples"
    assert window.options.calibration.text() == str(npz)
    assert "300 samples" in window.statusBar().currentMessage()


def test_a_typed_path_says_what_it_holds_or_why_it_cannot_be_used(qtbot, window, digits, tmp_path):
    _image_model(qtbot, window, digits)
    threes = digits["images"] / "3"
    window.options.calibration.setText(str(threes))   # one class folder: its images, unlabelled
    assert _note(qtbot, window, "Data:") == f"Data: 3/ — {len(list(threes.glob('*.png')))} images"
    odd = tmp_path / "model.onnx"
    odd.write_bytes(b"not data")
    window.options.calibration.setText(str(odd))
    assert "model.onnx is not data" in _note(qtbot, window, "Not usable as data:")
    window.options.calibration.setText("")
    qtbot.waitUntil(lambda: not window.options.data_note.isVisible(), timeout=5_000)


def test_each_model_file_keeps_its_own_ticked_targets(qtbot, window, workdir):
    """Ticks belong to the model file they were made for: opening another model does not lose them (an ONNX
    file cannot build TorchScript, which unticked it for good) and reopening a file restores its own."""
    from PySide6.QtCore import Qt

    from tests.ui.user import tick

    qtbot.waitUntil(lambda: window.targets.is_ready, timeout=60_000)
    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    for key in window.targets.checked_keys():                   # start from none ticked, by hand
        box = window.targets.box(*key.split("/"))
        qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
    tick(qtbot, window, ("torchscript-trace", "fp32"), ("onnx", "fp16"))
    first = sorted(window.targets.checked_keys())
    assert first == ["onnx/fp16", "torchscript-trace/fp32"]
    load_model(qtbot, window, workdir["cnn_onnx"])              # TorchScript cannot be built from ONNX
    assert not window.targets.box("torchscript-trace", "fp32").isEnabled()
    tick(qtbot, window, ("onnx", "int8"))
    second = sorted(window.targets.checked_keys())
    assert "onnx/int8" in second and "torchscript-trace/fp32" not in second
    load_model(qtbot, window, workdir["cnn_state"])             # its own ticks, TorchScript included
    assert sorted(window.targets.checked_keys()) == first
    load_model(qtbot, window, workdir["cnn_onnx"])
    assert sorted(window.targets.checked_keys()) == second
