"""Room for what the user is looking at: the charts and the Graph tab can take the whole right side,
and the Graph tab can live in its own window (closing that window puts it back)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QSplitter, QTabWidget, QVBoxLayout, QWidget


class FocusToggle:
    """Collapse every part of ``split`` but the last (the tabs), and give the sizes back."""

    def __init__(self, split: QSplitter) -> None:
        self.split = split
        self.saved: list[int] | None = None

    @property
    def on(self) -> bool:
        return self.saved is not None

    def set(self, on: bool) -> None:
        if on == self.on:
            return
        if on:
            self.saved = self.split.sizes()
            total = sum(self.saved)
            self.split.setSizes([0] * (len(self.saved) - 1) + [total])
        else:
            self.split.setSizes(self.saved)
            self.saved = None


class TabWindow(QWidget):
    """A top-level window holding one tab's page; closing it emits ``closing`` (the tab goes back)."""

    closing = Signal()

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle(title)
        self.setAccessibleName(title)
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.closing.emit()
        super().closeEvent(event)


class DetachableTab:
    """Move the page ``page`` of ``tabs`` into its own window and back, keeping its place and label."""

    def __init__(self, tabs: QTabWidget, page: QWidget, title: str, on_change=None) -> None:
        self.tabs, self.page, self.title = tabs, page, title
        self.index = tabs.indexOf(page)
        self.label = tabs.tabText(self.index)
        self.window: TabWindow | None = None
        self.on_change = on_change or (lambda detached: None)

    @property
    def detached(self) -> bool:
        return self.window is not None

    def set(self, detached: bool) -> None:
        if detached == self.detached:
            return
        if detached:
            self.tabs.removeTab(self.tabs.indexOf(self.page))  # the page is not deleted, only taken off
            self.window = TabWindow(self.title, self.tabs.window())
            self.window.layout_.addWidget(self.page)
            self.page.show()
            self.window.closing.connect(lambda: self.set(False))
            self.window.resize(1000, 700)
            self.window.show()
        else:
            window, self.window = self.window, None
            self.tabs.insertTab(min(self.index, self.tabs.count()), self.page, self.label)
            self.tabs.setCurrentWidget(self.page)
            window.closing.disconnect()
            window.close()
            window.deleteLater()
        self.on_change(detached)
