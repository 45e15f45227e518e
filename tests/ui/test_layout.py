"""Room where the user looks: a short log at start, charts that can take the whole right side, and the
selected result in full beside the table."""

from __future__ import annotations

from tests.ui.user import convert, load_model, set_shape, tick


def test_the_log_starts_as_a_few_lines(window):
    from ui.main_window import LOG_LINES

    line = window.log.fontMetrics().lineSpacing()
    assert window.log_dock.isVisible()
    assert LOG_LINES * line <= window.log_dock.height() <= (LOG_LINES + 3) * line + 40


def test_charts_fill_the_right_side_and_give_it_back(qtbot, window):
    split = window.right_split
    before = split.sizes()
    assert before[0] > 0 and before[1] > 0
    window.focus_charts_action.trigger()
    sizes = split.sizes()
    assert sizes[0] == 0 and sizes[1] == 0 and sizes[2] >= sum(before) - 2
    assert window.focus_charts_action.isChecked()
    window.focus_charts_action.trigger()
    assert split.sizes() == before and not window.focus_charts_action.isChecked()


def test_every_cut_off_cell_shows_its_full_text_on_hover_and_in_the_details(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    set_shape(qtbot, window, "x", "1x3x32x32", dynamic_axes=(0,))
    window.options.out_dir.setText(str(workdir["out"]))
    window.options.quantization.setCurrentText("dynamic")  # no data needed; it carries a long warning
    tick(qtbot, window, ("onnx", "int8"))
    convert(qtbot, window)
    info = window.results.row_for("onnx", "int8")
    warning = info.result.warnings[0]
    assert len(warning) > 80
    from ui.results_table import COLUMNS

    row = window.results.rows.index(info)
    tips = [window.results.item(row, c).toolTip() for c in range(window.results.columnCount())]
    assert all(t.startswith("<p") for t in tips if t)  # rich text: Qt wraps it instead of cutting it
    assert warning in tips[COLUMNS.index("Warnings")].replace("&#x27;", "'") and str(info.artifact) in tips[COLUMNS.index("Artifact")]
    assert window.details.toPlainText() == ""
    window.results.selectRow(row)
    text = window.details.toPlainText()
    assert warning in text and str(info.artifact) in text and "python main.py convert " in text
    assert "checks: random inputs" in text


def test_every_precision_column_is_in_view_at_the_default_size(qtbot, window):
    from PySide6.QtWidgets import QScrollArea

    assert window.width() == 1280                      # the size a first start opens at
    scroll = next(a for a in window.findChildren(QScrollArea) if a.isAncestorOf(window.targets))
    qtbot.waitUntil(lambda: scroll.viewport().width() > 0)
    assert scroll.horizontalScrollBar().maximum() == 0  # nothing to scroll sideways to: INT8 is in view
