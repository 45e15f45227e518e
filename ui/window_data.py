"""The data set of the next conversions: a dropped or typed path is checked in a worker thread
(:func:`app.accuracy.data_survey.survey`: what the data loader would accept for the model on screen,
and how many samples it holds) before it becomes the data; the note under the Data field says how many
samples it holds, or why a dropped path was refused (the previous data stays).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer

from ui.jobs_view import status_color
from ui.plain_text import one_line, tooltip
from ui.workers import BackgroundJob


class DataChoice:
    """Checks data before the window uses it; the newest check wins (an older one's answer is dropped)."""

    def __init__(self, window) -> None:
        self.window = window
        self.job: BackgroundJob | None = None    # the newest check, until it answers
        self.accepted: Path | None = None        # the last path a drop made the data (its check needs no rerun)
        self._typed = QTimer(window)             # a typed path is checked 300 ms after the last keystroke
        self._typed.setSingleShot(True)
        self._typed.setInterval(300)
        self._typed.timeout.connect(self.check_field)
        options = window.options
        options.calibration.edit.textChanged.connect(self._on_field_edited)
        options.tokenizer.edit.textChanged.connect(self._on_field_edited)
        window.session.events.model_loaded.connect(lambda _summary: self.check_field())  # other inputs, other fit

    def use(self, path: str | Path) -> BackgroundJob:
        """Make ``path`` the data once the check accepts it; a refusal is one line and the data stays."""
        return self._check(Path(path), adopt=True)

    def check_field(self) -> BackgroundJob | None:
        """Check what the Data field holds (typed, chosen or restored) and say what it holds."""
        text = self.window.options.calibration.text()
        if not text:
            self.job = None
            self._note("", None)
            return None
        return self._check(Path(text).expanduser(), adopt=False)

    def _on_field_edited(self) -> None:
        text = self.window.options.calibration.text()
        if self.accepted is not None and text == str(self.accepted):
            return   # the drop's own check has said what it holds
        self.accepted = None
        self._typed.start()

    def _inputs(self):
        w = self.window
        if w.model_path is None or not w.model.summary:
            return None
        sig = w.model.signature()
        return list(sig.inputs) if sig.inputs and not sig.problems else None

    def _check(self, path: Path, adopt: bool) -> BackgroundJob:
        from app.request import DataSource

        w = self.window
        tokenizer = w.options.tokenizer.text()
        source = DataSource(path, tokenizer=Path(tokenizer).expanduser() if tokenizer else None)
        inputs = self._inputs()

        def work(progress, should_cancel):
            from app.accuracy.data_survey import survey

            return survey(source, inputs)

        self._typed.stop()
        job = BackgroundJob(work, parent=w)
        job.path, job.adopt = path, adopt
        self.job = job
        job.succeeded.connect(lambda found: self._on_checked(job, found))
        job.failed.connect(lambda state, message: self._on_refused(job, message))
        job.start()
        return job

    def _on_checked(self, job: BackgroundJob, found) -> None:
        if job is not self.job:
            return
        self.job = None
        w, text = self.window, f"{one_line(job.path.name)}{'/' if job.path.is_dir() else ''} — {found.describe()}"
        if job.adopt:
            self.accepted = job.path
            w.options.calibration.setText(str(job.path))
            w.statusBar().showMessage(f"Data: {text} (calibrates INT8 and evaluates every artifact)", 8000)
            w.log.add(f"data set: {job.path} ({found.describe()})")
        self._note(f"Data: {text}", None)

    def _on_refused(self, job: BackgroundJob, message: str) -> None:
        if job is not self.job:
            return
        self.job = None
        w = self.window
        if not job.adopt:    # what the field holds cannot be used: say so under it
            self._note(one_line(f"Not usable as data: {message}"), "fail")
            return
        kept = w.options.calibration.text()
        # names from the user's files: one line, control characters shown escaped
        line = one_line(f"Not used as data: {message}. The data stays {Path(kept).name if kept else 'none'}.")
        w.statusBar().showMessage(line)
        w.log.add(f"refused {job.path} as data: {message}")
        self._note(line, "fail")

    def _note(self, text: str, kind: str | None) -> None:
        label = self.window.options.data_note
        label.setText(text)
        label.setToolTip(tooltip(text))   # a file name with "<" is not read as HTML
        label.setVisible(bool(text))
        label.setStyleSheet(f"color: {status_color(label, kind)};" if kind else "")
