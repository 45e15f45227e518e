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
    from ui.wording import window_words

    warning = window_words(info.result.warnings[0])        # in the window's words: fields, not flags
    assert len(warning) > 80 and "--" not in warning
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


def _inside(outer, rect) -> bool:
    return outer.contains(rect.topLeft()) and outer.contains(rect.bottomRight())


def test_the_verdict_and_the_figures_on_data_are_in_view_at_1280x860_after_a_conversion_with_data(
        qtbot, window, digits, tmp_path):
    from tests.conftest import DIGITS_ARGS
    from ui.results_table import COLUMNS

    assert (window.width(), window.height()) == (1280, 860)          # the size a first start opens at
    load_model(qtbot, window, digits["state"], arch=DIGITS_ARGS[1])
    set_shape(qtbot, window, "x", "1x1x8x8")
    window.options.out_dir.setText(str(tmp_path))
    qtbot.waitUntil(lambda: not window.model.signature().problems, timeout=30_000)
    with qtbot.waitSignal(window.opening.set_data(digits["arrays"]).succeeded, timeout=10_000):
        pass
    # the Data note is on screen without scrolling the left column
    note, left = window.options.data_note, window.options.data_note.parentWidget()
    while not hasattr(left, "viewport"):
        left = left.parentWidget()
    qtbot.waitUntil(note.isVisible)
    assert _inside(left.viewport().rect(), note.rect().translated(note.mapTo(left.viewport(), note.rect().topLeft())))
    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "int8"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)

    table = window.results
    assert table.rowCount() == 2 and (window.width(), window.height()) == (1280, 860)
    qtbot.waitUntil(lambda: table.viewport().width() > 0)
    assert table.horizontalScrollBar().value() == 0
    for row in range(table.rowCount()):
        for name in ("Verdict", "Cosine on data", "Top-1 agreement"):
            item = table.item(row, COLUMNS.index(name))
            assert item.text() not in ("", "—")
            rect = table.visualItemRect(item)
            assert rect.width() > 0 and _inside(table.viewport().rect(), rect), (name, rect, table.viewport().rect())
    # the status bar's message is not cut by the labels on its right
    bar = window.statusBar()
    message = bar.currentMessage()
    assert message.startswith("Finished: 2 done")
    labels = [w for w in (window.hardware_label, window.engine_label, window.sandbox_label) if w.isVisible()]
    room = min(w.mapTo(bar, w.rect().topLeft()).x() for w in labels)
    assert bar.fontMetrics().horizontalAdvance(message) < room - 8
    # the CPU label is cut where it must be, and says everything on hover
    hardware = window.hardware_label
    assert hardware.width() <= hardware.maximumWidth() and hardware.text().startswith("CPU:")
    if hardware.is_elided():
        assert hardware.text() in hardware.toolTip()


def _header_menu(qtbot, window):
    """Right-click the results table's header: its menu of columns, as it pops up."""
    from PySide6.QtWidgets import QApplication, QMenu

    header = window.results.horizontalHeader()
    header.customContextMenuRequested.emit(header.rect().center())
    qtbot.waitUntil(lambda: isinstance(QApplication.activePopupWidget(), QMenu))
    return QApplication.activePopupWidget()


def _choose(qtbot, menu, text: str) -> None:
    action = next(a for a in menu.actions() if a.text() == text)
    assert action.isCheckable()
    rect = menu.actionGeometry(action)
    from PySide6.QtCore import Qt

    qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=rect.center())


def test_a_column_hidden_or_shown_from_the_headers_menu_stays_so_in_a_new_window(qtbot, window):
    from tests.ui.user import close_window, open_window
    from ui.results_table import COLUMNS, DEFAULT_SHOWN

    table = window.results
    hidden_at_first = [c for c in COLUMNS if table.isColumnHidden(COLUMNS.index(c))]
    assert hidden_at_first and set(hidden_at_first).isdisjoint(DEFAULT_SHOWN)   # a compact default set
    menu = _header_menu(qtbot, window)
    names = [a.text() for a in menu.actions() if a.isCheckable()]
    assert "Verdict" not in names and "Target" not in names                    # never hidden
    assert names.index("Cosine on data") < names.index("Size") < names.index("Max abs err")  # by priority
    _choose(qtbot, menu, "Size")                                                # hide a shown one
    assert table.isColumnHidden(COLUMNS.index("Size"))
    _choose(qtbot, _header_menu(qtbot, window), "Max abs err")                  # show a hidden one
    assert not table.isColumnHidden(COLUMNS.index("Max abs err"))
    close_window(qtbot, window)

    again = open_window(qtbot)
    try:
        assert again.results.isColumnHidden(COLUMNS.index("Size"))
        assert not again.results.isColumnHidden(COLUMNS.index("Max abs err"))
        assert not again.results.isColumnHidden(COLUMNS.index("Verdict"))
        shown = [a for a in _header_menu(qtbot, again).actions() if a.text() == "Default columns"][0]
        shown.trigger()
        assert [c for c in COLUMNS if again.results.isColumnHidden(COLUMNS.index(c))] == hidden_at_first
        from PySide6.QtWidgets import QApplication

        QApplication.activePopupWidget().close()
    finally:
        close_window(qtbot, again)
