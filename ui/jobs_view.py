"""Running jobs (one row each: progress bar, stage, Cancel) and the log they stream into."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from app.session import JobKey
from ui.workers import CANCELLED, DONE, FAILED, QUEUED, RUNNING, TERMINAL


class JobRow(QFrame):
    """One job: its name, a progress bar, the current stage or outcome, and Cancel."""

    cancel_clicked = Signal()

    def __init__(self, key: JobKey, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.key = key
        self.state = QUEUED
        self.message = ""
        self.started_at: float | None = None
        self.ended_at: float | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        self.title = QLabel(title)
        self.title.setMinimumWidth(170)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFixedWidth(140)
        self.progress.setAccessibleName(f"{title} progress")
        self.stage = QLabel("queued")
        self.stage.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stage.setAccessibleName(f"{title} status")
        self.stage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel {title}")
        self.cancel_button.setToolTip(f"stop {title}")
        layout.addWidget(self.title)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage, 1)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel_clicked)

    def show_progress(self, stage: str, fraction: float) -> None:
        if self.state == QUEUED:
            self.state, self.started_at = RUNNING, time.monotonic()
        self.stage.setText(stage + (f" {fraction:.0%}" if fraction >= 0 else "…"))
        if fraction >= 0:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(fraction * 100))
        else:
            self.progress.setRange(0, 0)  # busy: the stage has no measurable progress

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage.setText("cancelling…")

    def show_outcome(self, state: str, message: str) -> None:
        self.state, self.message, self.ended_at = state, message, time.monotonic()
        self.progress.setRange(0, 100)
        self.progress.setValue(100 if state == DONE else 0)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.stage.setText(f"{state}: {message}" if message and message != state else state)
        self.stage.setToolTip(message)
        color = {DONE: "pass", FAILED: "fail"}.get(state)
        self.stage.setStyleSheet(f"color: {status_color(self, color)};" if color else "")


def status_color(widget: QWidget, kind: str) -> str:
    """A pass/fail colour that reads on the current palette (light or dark)."""
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return {"pass": "#81c784" if dark else "#1b7a2f", "fail": "#ef7a7a" if dark else "#b3261e",
            "warn": "#ffcc66" if dark else "#8a5a00"}[kind]


class JobsView(QScrollArea):
    """The job rows of the current run; emits ``all_finished`` when the last one ends."""

    all_finished = Signal()
    cancel_requested = Signal(object)  # the row's key

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setAccessibleName("Jobs")
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(3)
        self._empty = QLabel("No jobs yet: tick targets and press Convert (F5).")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(self._body)
        self.rows: dict[tuple[str, str], JobRow] = {}

    def clear(self) -> None:
        for row in self.rows.values():
            row.deleteLater()
        self.rows.clear()
        self._empty.show()

    def add_job(self, key: JobKey, title: str) -> JobRow:
        self._empty.hide()
        row = JobRow(key, title, self._body)
        self._layout.insertWidget(self._layout.count() - 1, row)
        self.rows[key] = row
        row.cancel_clicked.connect(lambda k=key: self._on_row_cancel_clicked(k))
        return row

    def row_for(self, target: str, precision: str) -> JobRow:
        """The row of the conversion to ``target`` at ``precision``."""
        return self.rows[JobKey.conversion(target, precision)]

    @property
    def running(self) -> bool:
        return any(r.state not in TERMINAL for r in self.rows.values())

    def _on_row_cancel_clicked(self, key) -> None:
        self.rows[key].show_cancelling()
        self.cancel_requested.emit(key)

    def show_progress(self, key, stage: str, fraction: float) -> None:
        self.rows[key].show_progress(stage, fraction)

    def show_outcome(self, key, state: str, message: str) -> None:
        self.rows[key].show_outcome(state, message)
        if not self.running:
            self.all_finished.emit()

    def counts(self) -> dict[str, int]:
        out = {DONE: 0, FAILED: 0, CANCELLED: 0}
        for r in self.rows.values():
            if r.state in out:
                out[r.state] += 1
        return out


class LogPanel(QPlainTextEdit):
    """Messages from every job, time-stamped, newest last."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setAccessibleName("Log")
        self.setPlaceholderText("Messages from loading, conversions and benchmarks appear here.")

    def add(self, text: str) -> None:
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def text(self) -> str:
        return self.toPlainText()
