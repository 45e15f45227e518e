"""One verdict per artifact in the window (issue 33, item 1): an int8 artifact that lost accuracy on the data
is "passed with accuracy loss" in the jobs list, the results table, the details pane and the exported report
alike, with the figure that decided it; its figures on data are in columns of their own; a greyed-out action
says why."""

from __future__ import annotations

import pytest

from tests.conftest import DIGITS_ARGS
from tests.ui.user import convert, load_model, set_shape, tick

LOSS = "passed with accuracy loss"


@pytest.fixture(scope="module")
def far_data(tmp_path_factory):
    """The held-out digits 40× brighter: evaluated on them, an int8 artifact calibrated on the real digits
    saturates and loses accuracy (a real loss, not a mocked figure)."""
    from tests import real_data

    return real_data.write_far_digit_arrays(tmp_path_factory.mktemp("far"))


def _menu_action(window, row: int, text: str):
    return next(a for a in window.results.context_menu(row).actions() if a.text() == text)


def test_the_jobs_list_table_details_and_report_say_one_verdict(qtbot, window, digits, far_data, tmp_path,
                                                                monkeypatch):
    load_model(qtbot, window, digits["state"], arch=DIGITS_ARGS[1])
    set_shape(qtbot, window, "x", "1x1x8x8")
    window.options.out_dir.setText(str(tmp_path))
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)
    with qtbot.waitSignal(window.opening.set_data(digits["arrays"]).succeeded, timeout=10_000):
        pass
    window.options.eval_data.edit.setText(str(far_data))          # what typing the folder in does
    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "int8"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)

    info = window.results.row_for("onnx", "int8")
    verdict, e = info.verdict, info.result.evaluation
    assert verdict.kind == "passed_with_accuracy_loss" and verdict.figure.value == e.cosine_mean < 0.99
    row = window.results.rows.index(info)
    # the jobs list: the verdict and its figure, not "done: verified"
    job = window.jobs.row_for("onnx", "int8")
    assert job.stage.text() == f"{LOSS}: mean cosine {e.cosine_mean:.4f} on {e.samples} data samples"
    assert verdict.reason in job.stage.toolTip()
    # the table: the same word, and the figures on data in columns of their own, not only in a tool tip
    assert window.results.text(row, "Verdict") == LOSS
    assert verdict.reason in window.results.item(row, 2).toolTip()
    assert window.results.text(row, "Cosine on data") == f"{e.cosine_mean:.5f}"
    assert window.results.text(row, "Top-1 agreement") == f"{e.top1_agreement:.1%}"
    assert window.results.text(row, "Top-1 (source → artifact)") == f"{e.source_top1:.1%} → {e.artifact_top1:.1%}"
    # the verdict is in view at the window's default size, without scrolling sideways (before the artifact's name)
    from ui.results_table import COLUMNS

    header, col = window.results.horizontalHeader(), COLUMNS.index("Verdict")
    assert header.sectionViewportPosition(col) + header.sectionSize(col) <= window.results.viewport().width()
    # the details pane: the same verdict with its reason; the random-input miss is not shouted as a failure
    window.results.selectRow(row)
    details = window.details.toPlainText()
    assert f"verdict: {LOSS} — {verdict.reason}" in details and "FAILED" not in details
    # the fp32 artifact beside it: passed everywhere
    fp32 = window.results.rows.index(window.results.row_for("onnx", "fp32"))
    assert window.results.text(fp32, "Verdict") == "passed"
    assert window.jobs.row_for("onnx", "fp32").stage.text().startswith("passed: mean cosine 1.0000 on")
    assert "all jobs finished: 2 done — 1 passed, 1 passed with accuracy loss" in window.log.text()
    # the report: the same word for the same artifact
    from PySide6.QtWidgets import QFileDialog

    out = tmp_path / "report.html"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a, **k: (str(out), "")))
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        window.export_report_action.trigger()
    rows = out.read_text(encoding="utf-8").split('<table class="artifacts">')[1].split("</table>")[0].split("</tr>")
    int8_row = next(r for r in rows if ">digits.int8.onnx<" in r)
    assert f">{LOSS}</span>" in int8_row and "passed with" not in next(r for r in rows if ">digits.fp32.onnx<" in r)
    # the manifest on disk recorded the same
    from app.artifacts.manifest import read_manifest

    assert read_manifest(info.artifact)["verdict"] == verdict.to_json()


def test_a_greyed_out_action_says_why(qtbot, window, digits, tmp_path):
    load_model(qtbot, window, digits["state"], arch=DIGITS_ARGS[1])
    set_shape(qtbot, window, "x", "1x1x8x8")
    window.options.out_dir.setText(str(tmp_path))
    assert not window.export_report_action.isEnabled()
    assert "convert or benchmark first" in window.export_report_action.toolTip()
    assert not window.copy_path_action.isEnabled() and "select a result first" in window.copy_path_action.statusTip()
    assert not window.cancel_action.isEnabled() and "no job is running" in window.cancel_action.toolTip()
    tick(qtbot, window, ("onnx", "fp32"), ("torchscript-trace", "fp32"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)
    onnx = window.results.rows.index(window.results.row_for("onnx", "fp32"))
    diagnose = _menu_action(window, onnx, "Where does the error come from?")
    assert not diagnose.isEnabled()
    assert "only int8 and fp16 artifacts have error to locate; this one is fp32" in diagnose.toolTip()
    assert diagnose.statusTip() == diagnose.toolTip()
    trace = window.results.rows.index(window.results.row_for("torchscript-trace", "fp32"))
    assert _menu_action(window, trace, "Export for serving (Triton)…").isEnabled()
    window.results.row_for("torchscript-trace", "fp32").artifact.unlink()      # gone from disk meanwhile
    export = _menu_action(window, trace, "Export for serving (Triton)…")
    assert not export.isEnabled() and "no longer on disk" in export.toolTip()
    window.results.selectRow(onnx)
    assert window.copy_path_action.isEnabled() and window.export_report_action.isEnabled()
    assert window.copy_path_action.toolTip() == "copy the selected artifact's path"
