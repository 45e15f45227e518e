"""Running jobs (one row each: progress bar, stage, elapsed time and what is left, Cancel) and the log they
stream into. The pane asks for a line or one row of room while nothing runs and for several rows while jobs
run (:meth:`JobsView.fitting_height`; the window gives it that)."""

from __future__ import annotations

import time

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QPlainTextEdit, QProgressBar, QPushButton,
                               QScrollArea, QSizePolicy, QVBoxLayout, QWidget)

from app.accuracy.verdict import ACCURACY_LOSS, FAILED as VERDICT_FAILED, PASSED
from app.session import DONE, FAILED, RUNNING, Job, JobKey, Session
from ui.plain_text import PlainLabel, tooltip, visible_text


class JobRow(QFrame):
    """One job: its name, a progress bar, the current stage or outcome, and Cancel."""

    cancel_clicked = Signal()

    def __init__(self, job: Job, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.job = job
        title = job.title
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        self.title = PlainLabel(title)
        self.title.setMinimumWidth(170)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFixedWidth(140)
        self.progress.setAccessibleName(f"{title} progress")
        self.stage = PlainLabel("queued")
        self.stage.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.stage.setAccessibleName(f"{title} status")
        self.stage.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.clock = PlainLabel("")   # elapsed, and the time left where the work is counted
        self.clock.setAccessibleName(f"{title} time")
        self.clock.setToolTip(tooltip("time since the job started; about how long is left where its work is "
                                      "counted (if the rest goes as fast as the part done), or else where the same "
                                      "job ran before in this window (as long as it took then)"))
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName(f"Cancel {title}")
        self.cancel_button.setToolTip(tooltip(f"stop {title}"))
        layout.addWidget(self.title)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage, 1)
        layout.addWidget(self.clock)
        layout.addWidget(self.cancel_button)
        self.cancel_button.clicked.connect(self.cancel_clicked)

    @property
    def key(self) -> JobKey:
        return self.job.key

    @property
    def state(self) -> str:
        return self.job.state

    @property
    def message(self) -> str:
        return self.job.message

    def update_from_job(self) -> None:
        """Draw where the job stands (the session reported a change)."""
        job = self.job
        if job.ended and job.verdict is not None:
            self.show_verdict(job.state, job.verdict)
        elif job.ended:
            self.show_outcome(job.state, job.message)
        elif job.cancelling:
            self.show_cancelling()
        elif job.state == RUNNING:
            self.show_progress(job.stage, job.fraction)
        self.show_time()

    def show_time(self) -> None:
        """The elapsed time ("0:42"), and about how long is left where the work is counted ("0:42, about
        1:10 left"); once ended, how long it took."""
        job = self.job
        elapsed = job.elapsed()
        if elapsed is None:
            self.clock.setText("")
            return
        left = job.remaining()
        if job.ended:
            self.clock.setText(f"took {clock_text(elapsed)}")
        else:
            self.clock.setText(clock_text(elapsed) + (f", about {clock_text(left)} left" if left is not None else ""))

    def show_progress(self, stage: str, fraction: float) -> None:
        self.stage.setText(stage if fraction >= 0 else stage + "…")   # the bar says how far, the text what
        self.stage.setToolTip(tooltip(stage))
        if fraction >= 0:
            self.progress.setRange(0, 100)
            self.progress.setValue(int(fraction * 100))
        else:
            self.progress.setRange(0, 0)  # busy: the stage has no measurable progress

    def show_cancelling(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage.setText("cancelling…")

    def show_outcome(self, state: str, message: str) -> None:
        self.progress.setRange(0, 100)
        self.progress.setValue(100 if state == DONE else 0)
        self.cancel_button.setEnabled(False)
        self.cancel_button.setVisible(False)
        self.stage.setText(f"{state}: {message}" if message and message != state else state)
        self.stage.setToolTip(tooltip(message))
        color = {DONE: "pass", FAILED: "fail"}.get(state)
        self.stage.setStyleSheet(f"color: {status_color(self, color)};" if color else "")

    def show_verdict(self, state: str, verdict) -> None:
        """A conversion ended: its verdict (:class:`app.accuracy.verdict.Verdict`) and the figure that
        decided it, as the results table and the details pane say it; the full reason on hover."""
        self.show_outcome(state, "")
        self.stage.setText(verdict.summary())
        self.stage.setToolTip(tooltip(verdict.text()))
        color = verdict_color_kind(verdict)
        self.stage.setStyleSheet(f"color: {status_color(self, color)};" if color else "")


def clock_text(seconds: float) -> str:
    """``seconds`` as a clock reads: "0:07", "12:31", "1:02:09"."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def verdict_color_kind(verdict) -> str | None:
    """The colour a verdict is drawn in: passed green, passed with accuracy loss amber, failed red, cancelled
    the text's own."""
    return {PASSED: "pass", ACCURACY_LOSS: "warn", VERDICT_FAILED: "fail"}.get(verdict.kind)


def status_color(widget: QWidget, kind: str) -> str:
    """A pass/fail colour that reads on the current palette (light or dark)."""
    dark = widget.palette().color(QPalette.ColorRole.Window).lightness() < 128
    return {"pass": "#81c784" if dark else "#1b7a2f", "fail": "#ef7a7a" if dark else "#b3261e",
            "warn": "#ffcc66" if dark else "#8a5a00"}[kind]


RUNNING_ROWS = 6   # the most rows the jobs pane grows to while jobs run (more scroll)


class JobsView(QScrollArea):
    """The job rows of the current run, a view of the session's jobs (:class:`app.session.Job`), drawn
    as the session reports them; emits ``all_finished`` when the last one ends and ``cancel_requested``
    when a row's Cancel is clicked."""

    all_finished = Signal()
    cancel_requested = Signal(object)  # the row's JobKey
    fitting_changed = Signal()         # jobs started or ended: the pane wants another height (fitting_height)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        events = session.events
        events.job_added.connect(self._on_job_added)
        events.job_changed.connect(self._on_job_changed)
        events.jobs_cleared.connect(self._on_jobs_cleared)
        events.all_jobs_ended.connect(self.all_finished.emit)
        self._fitted: tuple[bool, int] | None = None   # (running, rows running) the last fitting_changed was for
        self.ticker = QTimer(self)   # the running rows' clocks, once a second
        self.ticker.setInterval(1000)
        self.ticker.timeout.connect(self._on_ticked)
        # while jobs run, the first running row stays in view as rows come and the pane changes height
        self.verticalScrollBar().rangeChanged.connect(self._on_scroll_range_changed)
        self.setWidgetResizable(True)
        self.setAccessibleName("Jobs")
        self._body = QWidget()
        self._layout = QVBoxLayout(self._body)
        self._layout.setContentsMargins(2, 2, 2, 2)
        self._layout.setSpacing(3)
        self._empty = PlainLabel("No jobs yet: tick targets and press Convert (F5).")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._empty)
        self._layout.addStretch(1)
        self.setWidget(self._body)
        self.rows: dict[JobKey, JobRow] = {}

    def _on_jobs_cleared(self) -> None:
        for row in self.rows.values():
            row.deleteLater()
        self.rows.clear()
        self._empty.show()
        self._refit()

    def _on_job_added(self, job: Job) -> None:
        self._empty.hide()
        row = JobRow(job, self._body)
        self._layout.insertWidget(self._layout.count() - 1, row)
        self.rows[job.key] = row
        row.cancel_clicked.connect(lambda k=job.key: self._on_row_cancel_clicked(k))
        self._refit()

    def _on_job_changed(self, job: Job) -> None:
        if job.key in self.rows:
            self.rows[job.key].update_from_job()
        self._refit()

    def _on_ticked(self) -> None:
        for row in self.rows.values():
            if not row.job.ended:
                row.show_time()

    def _refit(self) -> None:
        """Tick the clocks while jobs run; ask for another height when jobs started or ended."""
        running = self.session.jobs_running
        if running and not self.ticker.isActive():
            self.ticker.start()
        elif not running:
            self.ticker.stop()
        fitted = (running, sum(not r.job.ended for r in self.rows.values()))
        if fitted != self._fitted:
            self._fitted = fitted
            self.fitting_changed.emit()
            QTimer.singleShot(0, self, self._show_first_running)   # once the pane has its new height

    def minimumSizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        # a line: the splitter may shrink the pane to the empty note (a scroll area asks for ~70 px)
        return QSize(super().minimumSizeHint().width(), self._line_height())

    def _line_height(self) -> int:
        margins = self._layout.contentsMargins()
        return self._empty.sizeHint().height() + 2 * self.frameWidth() + margins.top() + margins.bottom() + 4

    def fitting_height(self) -> int:
        """The height the pane asks for: while jobs run, the running ones' rows (at least two rows' room, at
        most :data:`RUNNING_ROWS`); while none runs, one line or one row (the rest scroll)."""
        rows = list(self.rows.values())
        margins = self._layout.contentsMargins()
        frame = 2 * self.frameWidth() + margins.top() + margins.bottom()
        if not rows:
            return self._line_height()
        row_height = max(r.sizeHint().height() for r in rows)
        running = sum(not r.job.ended for r in rows)
        shown = max(2, min(running, RUNNING_ROWS)) if running else 1
        return shown * row_height + (shown - 1) * self._layout.spacing() + frame

    def _on_scroll_range_changed(self, _low: int, _high: int) -> None:
        if self.session.jobs_running:
            self._show_first_running()

    def _show_first_running(self) -> None:
        """Scroll to the first row still running (the ended ones above it are in the results table)."""
        row = next((r for r in self.rows.values() if not r.job.ended), None)
        if row is not None:
            self.ensureWidgetVisible(row, 0, 0)

    def row_for(self, target: str, precision: str) -> JobRow:
        """The row of the conversion to ``target`` at ``precision``."""
        return self.rows[JobKey.conversion(target, precision)]

    @property
    def running(self) -> bool:
        return self.session.jobs_running

    def _on_row_cancel_clicked(self, key) -> None:
        self.session.job_cancelling(key)
        self.cancel_requested.emit(key)


class LogPanel(QPlainTextEdit):
    """Messages from every job, time-stamped, newest last."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setReadOnly(True)
        self.setMaximumBlockCount(5000)
        self.setAccessibleName("Log")
        self.setPlaceholderText("Messages from loading, conversions and benchmarks appear here.")

    def add(self, text: str) -> None:
        self.appendPlainText(f"{time.strftime('%H:%M:%S')}  {visible_text(text)}")

    def text(self) -> str:
        return self.toPlainText()
