"""Window wording in the window's terms (issue 33, item 7): the core's command-line hints ("pass --arch
file.py:Factory", "pass --input NAME:SHAPE[:DTYPE]", "mark the axis with --dynamic NAME:0:batch") reach the
status bar, the log, dialogs and the model's warnings as what to do with the window's fields."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox

from tests.ui.user import drop_file, wait_event


def _visible_texts(window) -> list[str]:
    texts = [window.statusBar().currentMessage(), window.log.text(), window.model.warnings_label.text(),
             window.jobs.text() if hasattr(window.jobs, "text") else ""]
    texts += [w.text() + w.informativeText() for w in QApplication.topLevelWidgets()
              if isinstance(w, QMessageBox) and w.isVisible()]
    return texts


def test_a_state_dict_without_its_code_and_a_wrong_factory_are_explained_without_flags(qtbot, window, digits):
    with wait_event(qtbot, window.session.events.model_loaded) as loaded:
        assert drop_file(window, digits["state"])
    assert loaded.args[0]
    warning = window.model.warnings_label.text()
    assert "Architecture field" in warning and "--" not in warning       # not "pass --arch file.py:Factory"
    qtbot.keyClicks(window.model.arch_edit, "no_such_file.py:Factory")
    window.model.load_button.click()
    qtbot.waitUntil(lambda: "no_such_file.py" in window.log.text(), timeout=60_000)
    shown = _visible_texts(window)
    assert any("no_such_file.py" in t for t in shown)
    assert all("--" not in t for t in shown), shown


def test_the_cores_hints_are_said_with_the_windows_fields():
    from ui.wording import window_words

    hints = {
        "m.pth holds weights only; pass --arch file.py:Factory (the class or function that builds the network) "
        "to convert it": "Architecture field",
        "m.pth: the shapes of its inputs are unknown; pass --input NAME:SHAPE[:DTYPE] for x "
        "(e.g. --input x:1x3x224x224)": "Shape cells for x (e.g. 1x3x224x224)",
        "the model has no dynamic batch axis, so only its own batch size 1 was measured (not 4, 16); mark the axis "
        "with --dynamic NAME:0:batch to sweep": "Dynamic axes column",
        "m.onnx: its batch axis is fixed in the file, so only batch 1 was measured; re-convert with --dynamic "
        "NAME:0:batch to measure the others": "convert again with axis 0 pressed",
        "--data /tmp/x: no such file or folder": "Data… field",
        "pass --eval-data PATH with samples from other photos": "Evaluation data folder",
        "calling F failed: boom; pass its arguments with --arch-kwargs": "as JSON in the field beside Architecture",
        "the --to onnx --precision int8 of m.pth needs 3 GB": "onnx int8 of m.pth",
        "or use --max-batch 0": "max batch",
        "RuntimeError: no call finished within the time given; raise --sweep-seconds": "Sweep tab's “s per point”",
        "no --data folder was given; pass --data DIR with a few hundred real samples": "choose a Data folder with",
    }
    for hint, words in hints.items():
        said = window_words(hint)
        assert words in said and "--" not in said, said
    assert window_words("a pickled global a.<!--x and c.-->y") == "a pickled global a.<!--x and c.-->y"   # not flags
    assert window_words("an em dash — stays, as do 1x3x224x224 and file.py:Factory") == \
        "an em dash — stays, as do 1x3x224x224 and file.py:Factory"


def test_a_conversions_warnings_reach_the_table_and_details_in_the_windows_words(qtbot, window, workdir):
    """Static int8 without data warns "pass --data DIR …" on the command line; the results table's
    warnings cell and the details pane say which field to use instead."""
    from tests.ui.user import convert, load_model, tick

    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    window.options.fields["quantization"].setCurrentText("static")
    tick(qtbot, window, ("onnx", "int8"))
    convert(qtbot, window)
    row = window.results.rows[0]
    assert any("--data" in w for w in row.result.warnings)            # the core's words, for the command line
    cell = window.results.text(0, "Warnings")
    assert "choose a Data folder" in cell and "--" not in cell
    window.results.selectRow(0)
    qtbot.waitUntil(lambda: "choose a Data folder" in _details(window), timeout=5_000)
    assert "--data" not in _details(window)


def _details(window) -> str:
    from PySide6.QtWidgets import QTextBrowser, QTextEdit, QLabel

    for kind in (QTextBrowser, QTextEdit):
        found = window.findChildren(kind)
        for w in found:
            if "warnings:" in w.toPlainText():
                return w.toPlainText()
    for label in window.findChildren(QLabel):
        if "warnings:" in label.text():
            return label.text()
    return ""
