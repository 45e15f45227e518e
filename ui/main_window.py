"""The main window: drop a model, pick targets, convert in the background, compare.

The window's widgets observe the session (:class:`app.session.Session`), as napari's ``QtDims(dims)``
observes its model: each takes it in its constructor and redraws on its events — the model panel and
the target picker on a loaded model, the jobs list on the jobs, the results table on the outcomes,
the charts on a benchmark, the Sweep and Diagnosis tabs on theirs. The window builds them; what
starts jobs and opens dialogs is in small parts, each an object given the window that connects what
it handles: start-up (``window_startup``), opening a model (``window_model``), converting
(``window_conversions``), benchmarking, sweeping and diagnosing (``window_bench``), the graph and
details (``window_graph``), exports (``window_exports``), the menus and what enables them
(``window_menus``). Each running job's worker is in :attr:`MainWindow.running`
(:class:`ui.workers.RunningJobs`) under its key; where it stands is in ``session.jobs``.

Start-up stays light: this module imports Qt and the small ui modules only. Charts (pyqtgraph) are
built right after the first paint, and the engine (torch, onnx) warms up in the background.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import (QDockWidget, QHBoxLayout, QMainWindow, QMessageBox, QPushButton,
                               QScrollArea, QSplitter, QStatusBar, QTabWidget, QVBoxLayout, QWidget)

from app.session import JobKey, Session
from ui.details_pane import ResultDetails
from ui.diagnosis_panel import DiagnosisPanel
from ui.jobs_view import JobsView, LogPanel
from ui.model_panel import ModelPanel
from ui.panels import DetachableTab, FocusToggle
from ui.plain_text import ElidedLabel, PlainLabel, one_line, plain_box
from ui.profile_panel import ProfilePanel
from ui.results_table import ResultsTable
from ui.settings import Settings
from ui.target_picker import BenchmarkOptions, ConversionOptions, TargetPicker
from ui.ticks_memory import TicksPerFile
from ui.window_bench import Measuring
from ui.window_conversions import Converting
from ui.window_exports import Exporting
from ui.window_graph import GraphTab
from ui.window_history import History
from ui.window_menus import Menus
from ui.window_model import ModelOpening
from ui.window_startup import StartUp
from ui.wording import window_words
from ui.workers import BackgroundJob, RunningJobs, all_pools

STOP_JOBS = "stop-jobs-question"  # the object name of "Jobs are running: cancel them and …?"
LOG_LINES = 4  # the log's height when the window opens
LEFT_WIDTH = 440     # the left column's widest at the default size (wider only if its content needs it)
DETAILS_WIDTH = 230  # the selected result's details beside the table, at the default size
RESULTS_HEIGHT = 230  # the results table's height at the default size (a few rows under its header)
STATUS_LABEL_WIDTH = 260  # the most room the CPU and engine labels take from the status bar's message
COLUMNS_KEY = "results/columns"  # the results table's columns the user keeps in view
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def app_icon() -> QIcon:
    icon = QIcon()
    for name in ("deploy-studio.svg", "deploy-studio.png"):
        if (RESOURCES / name).exists():
            icon.addFile(str(RESOURCES / name))
    return icon


class WindowLog(LogPanel):
    """The Log panel: what the core reports, in the window's words (:func:`ui.wording.window_words`)."""

    def add(self, text: str) -> None:
        super().add(window_words(text))


class WindowStatusBar(QStatusBar):
    """The status bar: messages in the window's words, never command-line flags."""

    def showMessage(self, text: str, timeout: int = 0) -> None:  # noqa: N802 - Qt's name
        super().showMessage(window_words(text), timeout)


class MainWindow(QMainWindow):
    """Model Deployment Studio's window: its widgets, and the parts that act on them (``startup``,
    ``opening``, ``converting``, ``measuring``, ``graph_tab``, ``exporting``, ``menus``)."""

    first_painted = Signal()
    ready = Signal()                 # charts built and targets probed: everything is usable
    engine_ready = Signal()          # the child processes' fork server has torch & co. imported
    report_finished = Signal(str)    # the file written (HTML or PDF)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setStatusBar(WindowStatusBar(self))
        self.settings = settings or Settings()
        self.session = Session()  # the source model, what the user trusted, the jobs and results (Qt-free)
        self.running = RunningJobs()  # the worker of each running job, by its key
        self.dialog: QMessageBox | None = None       # the message box on screen, if any
        self.is_ready = False                         # charts built and targets probed (``ready``)
        self.latency_chart = None
        self.batch_chart = None
        self.accuracy_chart = None
        self.sweep_panel = None  # built with the charts, after the first paint (pyqtgraph)
        self.graph = None        # built when the Graph tab is first shown (QtWebEngine)
        self._painted = False
        self.closed = False      # closeEvent ran: nothing new starts (start-up timers may still fire)
        self._quit_confirmed = False  # the user chose to cancel the running jobs and quit
        self._stage_logged: dict[JobKey, str] = {}

        self.setWindowTitle("Model Deployment Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setAccessibleName("Model Deployment Studio")
        self._build_widgets()
        # the parts, each connecting what it handles (after the widgets: they observe the session first)
        self.menus = Menus(self)  # the actions first: each part connects those it handles
        self.startup = StartUp(self)
        self.opening = ModelOpening(self)
        self.converting = Converting(self)
        self.measuring = Measuring(self)
        self.graph_tab = GraphTab(self)
        self.exporting = Exporting(self)
        self.ticks = TicksPerFile(self)
        self.history = History(self)  # what was made from the model before, and its runs
        self._connect()
        self._restore_settings()
        self.menus.update_actions()
        self.opening.refuse_drops()

    # ------------------------------------------------------------------ construction
    def _build_widgets(self) -> None:
        left_column, natural_width = self._build_left_column()
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(left_column)
        self.main_split.addWidget(self._build_right_side())
        self.main_split.setStretchFactor(0, 2)
        self.main_split.setStretchFactor(1, 3)
        self.setCentralWidget(self.main_split)
        self._build_log_dock()
        self._build_status_bar()
        self.resize(1280, 860)
        # the left column as narrow as shows every precision column, the rest for the results and the charts
        self.main_split.setSizes([natural_width, max(self.width() - natural_width, 640)])

    def _build_left_column(self) -> tuple[QWidget, int]:
        """The model, the targets and options (scrolling), with Convert and Benchmark under them."""
        self.model = ModelPanel(self.session)
        self.targets = TargetPicker(self.session)
        self.options = ConversionOptions()
        self.bench_options = BenchmarkOptions()
        self.convert_button = QPushButton("Convert")
        self.convert_button.setAccessibleName("Convert")
        self.convert_button.setDefault(True)
        self.benchmark_button = QPushButton("Benchmark")
        self.benchmark_button.setAccessibleName("Benchmark")
        buttons = QHBoxLayout()
        buttons.addWidget(self.convert_button, 1)
        buttons.addWidget(self.benchmark_button, 1)

        left_body = QWidget()
        left = QVBoxLayout(left_body)
        for part in (self.model, self.targets, self.options, self.bench_options):
            left.addWidget(part)
        left.addStretch(1)
        left_scroll = QScrollArea()
        left_scroll.setWidgetResizable(True)
        left_scroll.setWidget(left_body)
        # a narrow window scrolls sideways rather than cutting off the precision columns
        left_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        left_column = QWidget()
        column = QVBoxLayout(left_column)
        column.setContentsMargins(0, 0, 0, 4)
        column.addWidget(left_scroll, 1)
        column.addLayout(buttons)  # outside the scroll area: Convert and Benchmark are always in view
        left_column.setMinimumWidth(380)
        # wide enough that nothing scrolls sideways (its minimum), no wider than LEFT_WIDTH unless it must be
        body = max(left_body.minimumSizeHint().width(), min(left_body.sizeHint().width(), LEFT_WIDTH))
        natural = body + left_scroll.verticalScrollBar().sizeHint().width() + 6
        return left_column, natural

    def _build_tabs(self) -> QTabWidget:
        """The charts, Sweep, Diagnosis, Profile and Graph tabs; the pyqtgraph ones hold a note until built."""
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Benchmark charts")
        self.latency_page = _Holder("Latency chart: loading…")
        self.batch_page = _Holder("Batch size chart: loading…")
        self.accuracy_page = _Holder("Accuracy vs latency chart: loading…")
        self.sweep_page = _Holder("Sweep: loading…")
        # nodes ranked by the error they add; a choice shows it in the graph
        self.diagnosis = DiagnosisPanel(self.session)
        # where the selected artifact's time goes, per node; a choice shows it in the graph
        self.profile_panel = ProfilePanel(self.session)
        # netron's view of the source model and each artifact; built, and its servers started, only
        # when the tab is first shown (QtWebEngine is heavy and nothing should start unasked)
        self.graph_page = _Holder("Graph: select this tab to see the model's graph")
        for page, title in ((self.latency_page, "Latency"), (self.batch_page, "Batch sizes"),
                            (self.accuracy_page, "Accuracy vs latency"), (self.sweep_page, "Sweep"),
                            (self.diagnosis, "Diagnosis"), (self.profile_panel, "Profile"),
                            (self.graph_page, "Graph")):
            self.tabs.addTab(page, title)
        return self.tabs

    def _build_right_side(self) -> QSplitter:
        """The jobs, the results with the selected one's details, and the tabs, one over the other."""
        self.jobs = JobsView(self.session)
        self.results = ResultsTable(self.session)
        self.details = ResultDetails()
        self.results_split = QSplitter(Qt.Orientation.Horizontal)  # the table, and the selected row in full
        self.results_split.addWidget(self.results)
        self.results_split.addWidget(self.details)
        self.results_split.setStretchFactor(0, 3)
        self.results_split.setStretchFactor(1, 1)
        self.results_split.setSizes([3 * DETAILS_WIDTH, DETAILS_WIDTH])  # the table takes what the details leave
        self.right_split = QSplitter(Qt.Orientation.Vertical)
        self.right_split.addWidget(self.jobs)
        self.right_split.addWidget(self.results_split)
        self.right_split.addWidget(self._build_tabs())
        self.charts_focus = FocusToggle(self.right_split)
        self.graph_window = DetachableTab(self.tabs, self.graph_page, "Graph — Model Deployment Studio",
                                          lambda detached: self.menus.on_graph_window_changed(detached))
        for i, stretch in enumerate((0, 1, 2)):   # the jobs pane keeps the height it is given (fit_jobs_pane)
            self.right_split.setStretchFactor(i, stretch)
        self.right_split.setSizes([self.jobs.fitting_height(), RESULTS_HEIGHT, 420])
        return self.right_split

    def fit_jobs_pane(self) -> None:
        """Give the jobs pane the height its rows need — a line or one row while nothing runs, up to
        several rows while jobs run — and the difference to the charts below (unless the charts have the
        whole right side: View ▸ Focus Charts)."""
        if self.charts_focus.on:
            return
        sizes = self.right_split.sizes()
        wanted = self.jobs.fitting_height()
        change = wanted - sizes[0]
        if change == 0 or sum(sizes) <= 0:
            return
        room = max(0, sizes[2] - self.tabs.minimumSizeHint().height())
        change = min(change, room + max(0, sizes[1] - RESULTS_HEIGHT // 2))  # growing: the charts give first
        sizes[0] += change
        from_tabs = min(change, room) if change > 0 else change
        sizes[2] -= from_tabs
        sizes[1] -= change - from_tabs
        self.right_split.setSizes(sizes)

    def _build_log_dock(self) -> None:
        self.log = WindowLog()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log)
        self.log_dock.setAccessibleName("Log panel")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        # the log starts as a few lines; drag its edge (or View ▸ Log) for more
        self.resizeDocks([self.log_dock], [self.log.fontMetrics().lineSpacing() * LOG_LINES + 16],
                         Qt.Orientation.Vertical)

    def _build_status_bar(self) -> None:
        # short, and cut with "…" where they would reach into the message on the left (full text on hover)
        self.engine_label = ElidedLabel("starting…", max_width=STATUS_LABEL_WIDTH)
        self.engine_label.setAccessibleName("Engine status")
        self.hardware_label = ElidedLabel("", max_width=STATUS_LABEL_WIDTH)
        self.hardware_label.setAccessibleName("Hardware")
        self.hardware_label.setToolTip("the CPU instruction sets and the GPU that decide which targets and precisions "
                                       "are fast here (hover a target cell for its expectation)")
        self.sandbox_label = PlainLabel("")  # filled in after the first paint (_show_sandbox_status)
        self.sandbox_label.setAccessibleName("Sandbox status")
        for label in (self.hardware_label, self.engine_label, self.sandbox_label):
            self.statusBar().addPermanentWidget(label)

    def _connect(self) -> None:
        """The window's own connections (each part connects what it handles)."""
        update = self.menus.update_actions
        for changed in (self.model.changed, self.targets.selection_changed, self.options.changed,
                        self.results.itemSelectionChanged):
            changed.connect(update)
        self.jobs.cancel_requested.connect(self._on_job_cancel_requested)
        self.cancel_action.triggered.connect(self._on_cancel_all_triggered)
        self.jobs.all_finished.connect(self._on_all_jobs_finished)
        self.results.open_folder_requested.connect(self._on_open_folder_requested)
        self.results.columns_changed.connect(self._on_result_columns_changed)
        self.session.events.jobs_cleared.connect(self._stage_logged.clear)
        # the jobs pane grows while jobs run and shrinks when they end
        self.jobs.fitting_changed.connect(self.fit_jobs_pane)

    # what the session holds, by the names the window's parts use
    @property
    def model_path(self) -> Path | None:
        return self.session.path

    @property
    def allow_pickle(self) -> bool:
        return self.session.allow_pickle

    @property
    def trusted_globals(self) -> tuple[str, ...]:
        return self.session.trusted_globals

    @property
    def last_benchmark(self) -> dict | None:
        return self.session.last_benchmark

    @property
    def last_sweep(self) -> dict | None:
        return self.session.last_sweep

    # ------------------------------------------------------------------ jobs
    def start_job(self, key: JobKey, title: str, job: BackgroundJob, on_done, on_failed, *,
                  progress: bool = False, log_as: str | None = None) -> BackgroundJob:
        """Add ``job`` to the session's jobs under ``key`` (a row titled ``title``) and start it: its
        lines go to the log (prefixed ``log_as``, default the title), with ``progress`` its stages to
        the session, and then ``on_done(job, result)`` or ``on_failed(job, state, message)``."""
        self.session.add_job(key, title)
        if progress:
            job.progressed.connect(lambda stage, fraction: self._on_job_progressed(key, stage, fraction))
        prefix = log_as or title
        job.logged.connect(lambda line: self.log.add(f"{prefix}: {line}"))
        return self.running.start(key, job, on_done, on_failed)

    def _on_job_progressed(self, key: JobKey, stage: str, fraction: float) -> None:
        self.session.job_progressed(key, stage, fraction)
        if self._stage_logged.get(key) != stage:
            self._stage_logged[key] = stage
            self.log.add(f"{key.name or key.kind}: {stage}")

    def _on_job_cancel_requested(self, key: JobKey) -> None:
        if key in self.running:
            self.log.add(f"{key}: cancelling")
            self.running.cancel(key)

    def _on_cancel_all_triggered(self) -> None:
        for key, job in list(self.session.jobs.items()):
            if not job.ended:
                self.session.job_cancelling(key)
                self._on_job_cancel_requested(key)

    def _on_all_jobs_finished(self) -> None:
        counts = self.session.job_counts()
        text = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        verdicts = [j.verdict.label for j in self.session.jobs.values() if j.verdict is not None]
        if verdicts:   # the conversions' verdicts, as their rows say them
            text += " — " + ", ".join(f"{verdicts.count(v)} {v}" for v in dict.fromkeys(verdicts))
        self.statusBar().showMessage(f"Finished: {text}", 10000)
        self.log.add(f"all jobs finished: {text}")
        self.menus.update_actions()

    def _on_open_folder_requested(self, folder: str) -> None:
        self.statusBar().showMessage(f"Opening {folder}", 3000)

    # ------------------------------------------------------------------ message boxes
    def show_message(self, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
        """A window-modal message that does not block the event loop (jobs keep reporting)."""
        text = window_words(text)     # the core's hints in the window's terms, never command-line flags
        box = plain_box(icon, title, text, QMessageBox.StandardButton.Ok, self)  # text from files: never HTML
        box.setAccessibleName(title)
        self.dialog = box
        box.finished.connect(lambda _r: self.on_dialog_finished(box))
        box.open()
        return box

    def ask(self, title: str, text: str, on_yes, yes: str | None = None, no: str | None = None) -> QMessageBox:
        """A window-modal Yes/No question; ``on_yes()`` follows a Yes. ``yes``/``no``: the buttons'
        words (set before the box is laid out, so they are never cut off)."""
        box = plain_box(QMessageBox.Icon.Question, title, window_words(text),
                        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        for button, words in ((QMessageBox.StandardButton.Yes, yes), (QMessageBox.StandardButton.No, no)):
            if words:   # may name a file: one line, and its "&" is not a shortcut
                box.button(button).setText(one_line(words).replace("&", "&&"))
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAccessibleName(title)
        self.dialog = box

        def answered(result: int) -> None:
            self.on_dialog_finished(box)
            if result == QMessageBox.StandardButton.Yes:
                on_yes()

        box.finished.connect(answered)
        box.open()
        return box

    def ask_to_stop_jobs(self, doing: str, go_on, *, wait: bool = True) -> QMessageBox:
        """Before what would throw the running jobs away (``doing``: "quit", "open model.onnx"): a
        window-modal question — cancel the jobs and go on, or keep working. After Cancel, ``go_on()``
        runs once every job has ended (each child is stopped through the jobs' own cancel path); with
        ``wait`` False at once (closing the window waits for the children itself)."""
        if self.dialog is not None and self.dialog.objectName() == STOP_JOBS and self.dialog.isVisible():
            return self.dialog  # asked already: one question at a time
        titles = [job.title for job in self.session.jobs.values() if not job.ended]
        shown = "\n".join(f"    {t}" for t in titles[:8]) + (f"\n    and {len(titles) - 8} more" if len(titles) > 8 else "")
        text = (f"{len(titles)} job{'s are' if len(titles) != 1 else ' is'} still running:\n{shown}\n\n"
                f"To {doing}, they are cancelled: their results are lost, nothing half-written is kept.")
        def cancel_and_go_on() -> None:
            if wait:
                self.stop_jobs_then(go_on)
            else:
                self._on_cancel_all_triggered()
                go_on()

        box = self.ask("Jobs are running", text, cancel_and_go_on,  # titles name files: a plain-text box
                       yes=f"Cancel the jobs and {doing}", no="Keep working")
        box.setObjectName(STOP_JOBS)
        return box

    def stop_jobs_then(self, go_on) -> None:
        """Cancel every running job and call ``go_on()`` once the last one has ended."""
        if not self.session.jobs_running:
            go_on()
            return
        events = self.session.events

        def ended() -> None:
            events.all_jobs_ended.disconnect(ended)
            go_on()

        events.all_jobs_ended.connect(ended)
        self._on_cancel_all_triggered()

    def on_dialog_finished(self, box) -> None:
        if self.dialog is box:
            self.dialog = None
        box.deleteLater()

    # ------------------------------------------------------------------ Qt overrides
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()  # the start-up part goes on from there

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        self.opening.on_drag_entered(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self.opening.on_dropped(event)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if self.session.jobs_running and not self._quit_confirmed:
            event.ignore()  # the user decides: cancel the jobs and quit, or keep working
            self.ask_to_stop_jobs("quit", self.quit_now, wait=False)
            return
        self.closed = True
        # an exception raised out of a Qt override crashes PySide6 6.12 (issue 31): each step of the
        # clean-up is reported and the next one still runs
        for step in (self.save_settings, self.running.cancel_all, self._wait_for_jobs, self._close_graph):
            try:
                step()
            except Exception:  # noqa: BLE001 - the window closes whatever one step did
                traceback.print_exc()
        super().closeEvent(event)

    def quit_now(self) -> None:
        """Close the window without asking: its running jobs are cancelled."""
        self._quit_confirmed = True
        self.close()

    def _wait_for_jobs(self) -> None:
        for pool in all_pools():  # every child is terminated within a second of its cancel
            pool.waitForDone(5000)

    def _close_graph(self) -> None:
        self.graph_window.set(False)  # the Graph page goes home before the window closes
        if self.graph is not None:
            self.graph.close_all()  # stops the graph servers and removes their private copies

    # ------------------------------------------------------------------ settings
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.bytes_value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.bytes_value("window/state")
        if state is not None:
            self.restoreState(state)
        for split, key in ((self.main_split, "window/main_split"), (self.right_split, "window/right_split"),
                           (self.results_split, "window/results_split")):
            saved = s.bytes_value(key)
            if saved is not None:
                split.restoreState(saved)
        self.options.restore(s.value("choices/options", {}))
        self.bench_options.restore(s.value("choices/bench", {}))
        self.results.show_columns(s.value(COLUMNS_KEY, {}))
        self.fit_jobs_pane()   # a saved layout's jobs pane, at the height an idle one takes

    def _on_result_columns_changed(self) -> None:
        """The user chose the results table's columns (its header's menu): remembered at once."""
        self.settings.set_value(COLUMNS_KEY, self.results.shown_columns())
        self.settings.sync()

    def save_settings(self) -> None:
        s = self.settings
        s.set_bytes("window/geometry", self.saveGeometry())
        s.set_bytes("window/state", self.saveState())
        s.set_bytes("window/main_split", self.main_split.saveState())
        s.set_bytes("window/right_split", self.right_split.saveState())
        s.set_bytes("window/results_split", self.results_split.saveState())
        if self.targets.is_ready:
            s.set_value("choices/targets", self.targets.checked_keys())
        s.set_value("choices/options", self.options.state())
        s.set_value("choices/bench", self.bench_options.state())
        s.set_value(COLUMNS_KEY, self.results.shown_columns())
        s.sync()


class _Holder(QWidget):
    """A tab page that shows a note until its real widget is built (after the first paint)."""

    def __init__(self, note: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._note = PlainLabel(note)
        self._note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._note)

    def put(self, widget: QWidget) -> None:
        self._note.hide()
        self._layout.addWidget(widget)
