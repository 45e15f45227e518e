"""What a user does with the window, as helpers the tests read like sentences with."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QScrollArea, QWidget

LOAD_TIMEOUT = 60_000
CONVERT_TIMEOUT = 120_000


def private_settings(folder: Path) -> Path:
    """Point QSettings at an empty folder under a fresh application name: never the user's settings."""
    import uuid

    from PySide6.QtCore import QCoreApplication, QSettings

    folder.mkdir(parents=True, exist_ok=True)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    QCoreApplication.setOrganizationName("DeployStudioTests")
    QCoreApplication.setApplicationName(f"studio-{uuid.uuid4().hex[:8]}")
    return folder


def open_window(qtbot):
    """The main window, shown and ready (charts built, targets probed); closed at the test's end by qtbot."""
    from ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.ready, timeout=30_000):
        window.show()
    return window


class Heard:
    """What a session event was emitted with (``args``), as pytest-qt's blocker has a signal's."""

    args: tuple = ()


@contextmanager
def wait_event(qtbot, event, timeout: int = LOAD_TIMEOUT):
    """``qtbot.waitSignal`` for a session event (``window.session.events.model_loaded``): the block's
    action must make ``event`` fire within ``timeout`` ms; connected last, it hears it after the
    window's parts have drawn it."""
    heard, calls = Heard(), []

    def on_event(*args) -> None:
        calls.append(args)

    event.connect(on_event)
    try:
        yield heard
        qtbot.waitUntil(lambda: bool(calls), timeout=timeout)
        heard.args = calls[0]
    finally:
        event.disconnect(on_event)


def drop_file(window, path: Path, onto: QWidget | None = None) -> bool:
    """Drag ``path`` from a file manager and drop it over ``onto`` (default: the window's middle).

    As on a real desktop, the events go to the window's QWindow at that point, which hands them to
    whatever widget is there unless the window takes them first.
    """
    target = onto or window
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    mime.setText(QUrl.fromLocalFile(str(path)).toString())  # file managers offer the URL as text too
    pos = QPointF(target.mapTo(window, target.rect().center()))
    handle = window.windowHandle()
    enter = QDragEnterEvent(pos.toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(handle, enter)
    if not enter.isAccepted():
        return False
    drop = QDropEvent(pos, Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(handle, drop)
    return drop.isAccepted()


def load_model(qtbot, window, path: Path, arch: str | None = None) -> dict:
    """Drop a model; for a state dict, type its architecture and press Load."""
    with wait_event(qtbot, window.session.events.model_loaded, timeout=LOAD_TIMEOUT) as loaded:
        assert drop_file(window, path)
    if arch:
        qtbot.keyClicks(window.model.arch_edit, arch)
        with wait_event(qtbot, window.session.events.model_loaded, timeout=LOAD_TIMEOUT) as loaded:
            qtbot.mouseClick(window.model.load_button, Qt.MouseButton.LeftButton)
    return loaded.args[0]


def set_shape(qtbot, window, name: str, shape: str, dynamic_axes: tuple[int, ...] = ()) -> None:
    editor = window.model.inputs
    row = editor.row_of(name)
    edit = editor.shape_edit(row)
    edit.selectAll()
    qtbot.keyClicks(edit, shape)
    for button in editor.toggles(row).buttons:
        if button.isChecked() != (int(button.text()) in dynamic_axes):
            qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def reveal(widget: QWidget) -> None:
    """Scroll ``widget`` into view, as a user would before clicking it (on a real X display a click
    lands on whatever is on screen at that point)."""
    QApplication.processEvents()  # pending layouts first (a resize lays the window out later)
    parent = widget.parentWidget()
    while parent is not None:
        if isinstance(parent, QScrollArea):
            parent.ensureWidgetVisible(widget)
        parent = parent.parentWidget()


def tick(qtbot, window, *pairs: tuple[str, str]) -> None:
    for target, precision in pairs:
        box = window.targets.box(target, precision)
        assert box.isEnabled(), window.targets.reason(target, precision)
        reveal(box)
        if not box.isChecked():
            qtbot.mouseClick(box, Qt.MouseButton.LeftButton)
        assert box.isChecked()


def click(qtbot, button) -> None:
    assert button.isEnabled(), button.toolTip()
    reveal(button)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def convert(qtbot, window, timeout: int = CONVERT_TIMEOUT) -> None:
    with qtbot.waitSignal(window.jobs.all_finished, timeout=timeout):
        click(qtbot, window.convert_button)


def benchmark(qtbot, window, batches: str = "1", runs: int = 5, timeout: int = 180_000) -> dict:
    """Set the batch sizes and timed runs, press Benchmark and wait for its result (the bench --json object)."""
    window.bench_options.batches.setText(batches)
    window.bench_options.runs.setValue(runs)
    with wait_event(qtbot, window.session.events.benchmark_finished, timeout=timeout) as finished:
        click(qtbot, window.benchmark_button)
    return finished.args[0]


def message_box(qtbot, window) -> QMessageBox:
    qtbot.waitUntil(lambda: window.dialog is not None and window.dialog.isVisible(), timeout=LOAD_TIMEOUT)
    return window.dialog


def answer(qtbot, box: QMessageBox, button: QMessageBox.StandardButton) -> None:
    qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)


def close_window(qtbot, window) -> None:
    """Close the window as a user does (Ctrl+Q); asked about running jobs, cancel them and quit."""
    from ui.main_window import STOP_JOBS

    window.close()
    box = window.dialog
    if not window.closed and box is not None and box.objectName() == STOP_JOBS and box.isVisible():
        answer(qtbot, box, QMessageBox.StandardButton.Yes)
    assert window.closed


def point_of(view, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def answer_with(qtbot, box: QMessageBox, words: str) -> None:
    """Click the box's button that says ``words`` ("Keep existing")."""
    (button,) = [b for b in box.buttons() if b.text() == words]
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def history_runs(window) -> list:
    """The History menu's entries for the model on screen, newest first (as the menu shows them)."""
    window.history.menu.aboutToShow.emit()
    return [a for a in window.history.menu.actions() if a.isEnabled() and not a.isSeparator()]


def reopen_run(qtbot, window, entry, timeout: int = LOAD_TIMEOUT) -> dict:
    """Choose a run in the History menu and wait until its artifacts fill the table."""
    with qtbot.waitSignal(window.history.scanned, timeout=timeout) as found:
        entry.trigger()
    return found.args[0]
