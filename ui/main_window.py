"""The main window: drop a model, pick targets, convert in the background, compare.

This is the one place that wires signals: panels expose signals and methods, workers report by
signals, and :meth:`MainWindow._connect` / :meth:`MainWindow._wire_job` connect them to the
``_on_<event>`` slots below. No conversion logic lives here: the window builds
:class:`app.request.ConversionRequest` objects and hands them to :mod:`ui.workers`.

Start-up stays light: this module imports Qt and the small ui modules only. Charts (pyqtgraph) are
built right after the first paint, and the engine (torch, onnx) warms up in the background.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QIcon, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QMainWindow,
                               QMessageBox, QPushButton, QScrollArea, QSplitter, QTabWidget, QVBoxLayout, QWidget)

from ui.details_pane import ResultDetails
from ui.diagnosis_panel import DiagnosisPanel
from ui.jobs_view import JobsView, LogPanel
from ui.model_panel import ModelPanel
from ui.panels import DetachableTab, FocusToggle
from ui.results_table import ResultsTable
from ui.settings import Settings
from ui.target_picker import BenchmarkOptions, ConversionOptions, TargetPicker
from ui.workers import CANCELLED, DONE, FAILED, BackgroundJob, ConversionJob, all_pools

OPEN_FILTERS = ";;".join([
    "Models (*.pt *.pth *.bin *.ckpt *.pt2 *.safetensors *.onnx *.engine *.plan)",
    "PyTorch (*.pt *.pth *.bin *.ckpt)", "torch.export (*.pt2)", "safetensors (*.safetensors)",
    "ONNX (*.onnx)", "TensorRT engines (*.engine *.plan)", "All files (*)"])
BENCH_KEY = ("benchmark", "all")
LOG_LINES = 4  # the log's height when the window opens
SWEEP_KEY = ("sweep", "all")
RESOURCES = Path(__file__).resolve().parents[1] / "resources"


DATA_SUFFIXES = (".txt", ".jsonl", ".npz", ".npy")


def is_data(path: Path) -> bool:
    """A dropped folder (or, once a model is loaded, a sentence/array file) is a data set, not a model."""
    return path.is_dir() or path.suffix.lower() in DATA_SUFFIXES


def app_icon() -> QIcon:
    icon = QIcon()
    for name in ("deploy-studio.svg", "deploy-studio.png"):
        if (RESOURCES / name).exists():
            icon.addFile(str(RESOURCES / name))
    return icon


class MainWindow(QMainWindow):
    """Model Deployment Studio's window."""

    first_painted = Signal()
    ready = Signal()                 # charts built and targets probed: everything is usable
    engine_ready = Signal()          # the child processes' fork server has torch & co. imported
    model_loaded = Signal(dict)      # the inspection summary
    model_failed = Signal(str)
    benchmark_finished = Signal(dict)
    sweep_finished = Signal(dict)
    report_finished = Signal(str)  # the file written (HTML or PDF)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.model_path: Path | None = None
        self.allow_pickle = False
        self.trusted_globals: tuple[str, ...] = ()  # a pickle's globals the user approved in the dialog
        self.conversions: dict[tuple[str, str], ConversionJob] = {}
        self.background_jobs: dict[tuple[str, str], BackgroundJob] = {}  # Triton folders and reports being written
        self.inspection: BackgroundJob | None = None
        self.bench: BackgroundJob | None = None
        self.last_benchmark: dict | None = None  # what File ▸ Export Report… reports beside the artifacts
        self.last_sweep: dict | None = None      # its proposals go into "Export for serving"
        self.dialog: QMessageBox | None = None       # the message box on screen, if any
        self.is_ready = False
        self.latency_chart = None
        self.batch_chart = None
        self._painted = False
        self._targets_known = False
        self._charts_built = False
        self._stage_logged: dict[tuple[str, str], str] = {}
        self._hardware = ""                 # the CPU line of the status bar, once the targets are probed
        self._gpu_name = ""                 # the GPU, once the engine's child process has looked

        self.setWindowTitle("Model Deployment Studio")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        self.setAccessibleName("Model Deployment Studio")
        self._build_widgets()
        self._build_actions()
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_actions()
        self._refuse_drops()

    # ------------------------------------------------------------------ construction
    def _build_widgets(self) -> None:
        self.model = ModelPanel()
        self.targets = TargetPicker()
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
        left.addWidget(self.model)
        left.addWidget(self.targets)
        left.addWidget(self.options)
        left.addWidget(self.bench_options)
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

        self.jobs = JobsView()
        self.results = ResultsTable()
        self.tabs = QTabWidget()
        self.tabs.setAccessibleName("Benchmark charts")
        self._latency_holder = _Holder("Latency chart: loading…")
        self._batch_holder = _Holder("Batch size chart: loading…")
        self.tabs.addTab(self._latency_holder, "Latency")
        self.tabs.addTab(self._batch_holder, "Batch sizes")
        self._accuracy_holder = _Holder("Accuracy vs latency chart: loading…")
        self.tabs.addTab(self._accuracy_holder, "Accuracy vs latency")
        self.sweep_panel = None  # built with the charts, after the first paint (pyqtgraph)
        self._sweep_holder = _Holder("Sweep: loading…")
        self.tabs.addTab(self._sweep_holder, "Sweep")
        # netron's view of the source model and each artifact; built, and its servers started, only
        # when the tab is first shown (QtWebEngine is heavy and nothing should start unasked)
        self.diagnosis = DiagnosisPanel()  # nodes ranked by the error they add; a choice shows it in the graph
        self.tabs.addTab(self.diagnosis, "Diagnosis")
        self.graph = None
        self._graph_holder = _Holder("Graph: select this tab to see the model's graph")
        self.tabs.addTab(self._graph_holder, "Graph")

        self.details = ResultDetails()
        self.results_split = QSplitter(Qt.Orientation.Horizontal)  # the table, and the selected row in full
        self.results_split.addWidget(self.results)
        self.results_split.addWidget(self.details)
        self.results_split.setStretchFactor(0, 3)
        self.results_split.setStretchFactor(1, 2)
        self.right_split = QSplitter(Qt.Orientation.Vertical)
        self.right_split.addWidget(self.jobs)
        self.right_split.addWidget(self.results_split)
        self.right_split.addWidget(self.tabs)
        self.charts_focus = FocusToggle(self.right_split)
        self.graph_window = DetachableTab(self.tabs, self._graph_holder, "Graph — Model Deployment Studio",
                                          self._on_graph_window_changed)
        for i, stretch in enumerate((1, 1, 3)):
            self.right_split.setStretchFactor(i, stretch)
        self.right_split.setSizes([190, 190, 420])
        self.main_split = QSplitter(Qt.Orientation.Horizontal)
        self.main_split.addWidget(left_column)
        self.main_split.addWidget(self.right_split)
        self.main_split.setStretchFactor(0, 2)
        self.main_split.setStretchFactor(1, 3)
        self.setCentralWidget(self.main_split)

        self.log = LogPanel()
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("log_dock")
        self.log_dock.setWidget(self.log)
        self.log_dock.setAccessibleName("Log panel")
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        # the log starts as a few lines; drag its edge (or View ▸ Log) for more
        self.resizeDocks([self.log_dock], [self.log.fontMetrics().lineSpacing() * LOG_LINES + 16],
                         Qt.Orientation.Vertical)

        self.engine_label = QLabel("starting…")
        self.engine_label.setAccessibleName("Engine status")
        self.hardware_label = QLabel("")
        self.hardware_label.setAccessibleName("Hardware")
        self.hardware_label.setToolTip("the CPU instruction sets and the GPU that decide which targets and precisions "
                                       "are fast here (hover a target cell for its expectation)")
        self.statusBar().addPermanentWidget(self.hardware_label)
        self.statusBar().addPermanentWidget(self.engine_label)
        self.sandbox_label = QLabel("")  # filled in after the first paint (_show_sandbox_status)
        self.sandbox_label.setAccessibleName("Sandbox status")
        self.statusBar().addPermanentWidget(self.sandbox_label)
        self.resize(1280, 860)

    def _action(self, text: str, slot, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        K = QKeySequence.StandardKey
        self.open_action = self._action("&Open Model…", self._on_open_triggered, K.Open, "open a model file")
        self.quit_action = self._action("&Quit", self.close, "Ctrl+Q", "quit the application")  # StandardKey.Quit is empty on Windows
        self.export_png_action = self._action("Export Charts as &PNG…", self._on_export_png_triggered,
                                              tip="save both benchmark charts as PNG images")
        self.export_csv_action = self._action("Export Benchmark as &CSV…", self._on_export_csv_triggered,
                                              tip="save the benchmark numbers as CSV")
        self.export_report_action = self._action("Export &Report…", self._on_export_report_triggered, "Ctrl+Shift+R",
                                                 "save one self-contained HTML report: machine, artifacts, "
                                                 "verification, warnings, commands, benchmark charts")
        self.copy_path_action = self._action("Copy Artifact &Path", self._on_copy_path_triggered, "Ctrl+Shift+C",
                                             "copy the selected artifact's path")
        self.copy_command_action = self._action("Copy CLI &Command", self._on_copy_command_triggered, "Ctrl+Shift+L",
                                                "copy the command line that builds the selected artifact")
        self.clear_results_action = self._action("Clear &Results", self._on_clear_results_triggered)
        self.clear_log_action = self._action("Clear &Log", self.log.clear)
        self.convert_action = self._action("&Convert", self._on_convert_triggered, "F5",
                                           "convert to every ticked target and precision")
        self.benchmark_action = self._action("&Benchmark", self._on_benchmark_triggered, "Ctrl+B",
                                             "benchmark the source model and every artifact")
        self.cancel_action = self._action("Cancel &All", self._on_cancel_all_triggered, "Shift+F5",
                                          "stop every running job")
        self.about_action = self._action("&About Model Deployment Studio", self._on_about_triggered,
                                         tip="versions of the tools")
        self.about_qt_action = self._action("About &Qt", QApplication.aboutQt)
        self.toggle_log_action = self.log_dock.toggleViewAction()
        self.toggle_log_action.setShortcut(QKeySequence("Ctrl+L"))
        self.focus_charts_action = self._action("Charts and Graph Fill the &Right Side", self._on_focus_charts_toggled,
                                                "Ctrl+Shift+F", "hide jobs and results so the charts and graph get "
                                                "the whole right side (again to bring them back)")
        self.focus_charts_action.setCheckable(True)
        self.graph_window_action = self._action("&Graph in Its Own Window", self._on_graph_window_toggled,
                                                "Ctrl+Shift+G", "move the Graph tab into a window of its own "
                                                "(closing that window puts it back)")
        self.graph_window_action.setCheckable(True)
        self.tab_actions = [self._action("Go to &Results", lambda: self.results.setFocus(), "Ctrl+1")]
        for i, (name, show) in enumerate((
                ("Latency Chart", lambda: self.tabs.setCurrentWidget(self._latency_holder)),
                ("Batch Size Chart", lambda: self.tabs.setCurrentWidget(self._batch_holder)),
                ("Accuracy vs Latency Chart", lambda: self.tabs.setCurrentWidget(self._accuracy_holder)),
                ("Sweep", lambda: self.tabs.setCurrentWidget(self._sweep_holder)),
                ("Graph", self.show_graph_tab))):
            self.tab_actions.append(self._action(f"Show {name}", lambda _=False, show=show: show(), f"Ctrl+{i + 2}"))

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.open_action)
        self.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addAction(self.export_png_action)
        file_menu.addAction(self.export_csv_action)
        file_menu.addAction(self.export_report_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        edit = bar.addMenu("&Edit")
        for a in (self.copy_path_action, self.copy_command_action):
            edit.addAction(a)
        edit.addSeparator()
        edit.addAction(self.clear_results_action)
        edit.addAction(self.clear_log_action)
        view = bar.addMenu("&View")
        view.addAction(self.toggle_log_action)
        view.addAction(self.focus_charts_action)
        view.addAction(self.graph_window_action)
        view.addSeparator()
        for a in self.tab_actions:
            view.addAction(a)
        run = bar.addMenu("&Run")
        for a in (self.convert_action, self.benchmark_action, self.cancel_action):
            run.addAction(a)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.about_action)
        help_menu.addAction(self.about_qt_action)
        self._fill_recent_menu()

    def _connect(self) -> None:
        """Every long-lived connection of the window (jobs are wired in :meth:`_wire_job`)."""
        self.convert_button.clicked.connect(self._on_convert_triggered)
        self.benchmark_button.clicked.connect(self._on_benchmark_triggered)
        self.model.reload_requested.connect(self._on_reload_requested)
        self.model.changed.connect(self._update_actions)
        self.targets.selection_changed.connect(self._update_actions)
        self.options.changed.connect(self._update_actions)
        self.jobs.cancel_requested.connect(self._on_job_cancel_requested)
        self.jobs.all_finished.connect(self._on_all_jobs_finished)
        self.results.itemSelectionChanged.connect(self._update_actions)
        self.results.itemSelectionChanged.connect(self._show_selected_details)
        self.results.open_folder_requested.connect(self._on_open_folder_requested)
        self.results.export_requested.connect(self._on_export_for_serving_requested)
        self.results.diagnose_requested.connect(self.diagnose)
        self.diagnosis.node_chosen.connect(self.show_node)
        self.tabs.currentChanged.connect(self._on_tab_changed)

    def _wire_job(self, key: tuple[str, str], job: BackgroundJob) -> None:
        job.progressed.connect(lambda stage, fraction: self._on_job_progressed(key, stage, fraction))
        job.succeeded.connect(lambda result: self._on_job_succeeded(key, result))
        job.failed.connect(lambda state, message: self._on_job_failed(key, state, message))

    # ------------------------------------------------------------------ start-up
    def paintEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().paintEvent(event)
        if not self._painted:
            self._painted = True
            self.first_painted.emit()
            QTimer.singleShot(0, self._on_first_painted)

    def _show_sandbox_status(self) -> None:
        from app.sandbox import status as sandbox_status

        sandboxed, line = sandbox_status()  # one syscall: whether model code can be fenced here
        self.sandbox_label.setText("Sandboxed" if sandboxed else "Not sandboxed")
        self.sandbox_label.setToolTip(line[0].upper() + line[1:])
        if not sandboxed:
            self.sandbox_label.setStyleSheet("color: #b35900; font-weight: bold")

    def _on_first_painted(self) -> None:
        self._show_sandbox_status()
        self.engine_label.setText("loading PyTorch and ONNX in the background…")
        from ui.workers import engine_job, targets_job

        probe = targets_job(self)
        probe.succeeded.connect(self._on_targets_probed)
        probe.failed.connect(lambda _s, message: self.log.add(f"probing the targets failed: {message}"))
        probe.start()
        engine = engine_job(self)
        engine.succeeded.connect(self._on_engine_warmed)
        engine.failed.connect(self._on_engine_failed)
        engine.start()
        self._startup_jobs = [probe, engine]
        QTimer.singleShot(0, self._build_charts)

    def _build_charts(self) -> None:
        from ui.latency_chart import BatchChart, LatencyChart

        from ui.sweep_panel import SweepPanel

        self.latency_chart = LatencyChart()
        self.batch_chart = BatchChart()
        self.sweep_panel = SweepPanel()
        self.sweep_panel.run_requested.connect(self._on_sweep_triggered)
        self._latency_holder.put(self.latency_chart)
        self._batch_holder.put(self.batch_chart)
        sweep_scroll = QScrollArea()  # its form must not raise the window's minimum size
        sweep_scroll.setWidgetResizable(True)
        sweep_scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        sweep_scroll.setWidget(self.sweep_panel)
        self._sweep_holder.put(sweep_scroll)
        from ui.accuracy_chart import AccuracyChart

        self.accuracy_chart = AccuracyChart()
        self._accuracy_holder.put(self.accuracy_chart)
        self._charts_built = True
        self._check_ready()

    def _on_targets_probed(self, choices: list) -> None:
        from ui.warmup import hardware_summary

        self._hardware = hardware_summary()  # /proc/cpuinfo, already read (and cached) by the probe
        self._show_hardware()
        self.targets.set_choices(choices)
        self.targets.set_source_format(self.model.source_format)
        self.targets.set_checked_keys(self.settings.value("choices/targets", []))
        self._targets_known = True
        self._check_ready()

    def _show_hardware(self) -> None:
        """CPU instruction sets (from the probe) and the GPU (once the engine's child has looked)."""
        if not self._hardware:
            return
        cpu = self._hardware.rsplit(" · GPU: ", 1)[0]
        self.hardware_label.setText(cpu + (f" · GPU: {self._gpu_name}" if self._gpu_name else
                                           " · GPU: " + self._hardware.rsplit(" · GPU: ", 1)[-1]))

    def _check_ready(self) -> None:
        if self._targets_known and self._charts_built and not self.is_ready:
            self.is_ready = True
            self._update_actions()
            self.statusBar().showMessage("Ready: drop a model on the window", 5000)
            self.ready.emit()

    def _on_engine_warmed(self, info: dict) -> None:
        self.engine_label.setText(f"engine ready (torch {info.get('torch', '?')})")
        self._gpu_name = info.get("gpu") or "none"  # the child process imported torch and asked CUDA
        self._show_hardware()
        self.engine_ready.emit()

    def _on_engine_failed(self, _state: str, message: str) -> None:
        self.engine_label.setText("engine failed to start")
        self.log.add(f"the engine failed to start: {message}")

    # ------------------------------------------------------------------ drag and drop
    def _refuse_drops(self) -> None:
        """Make a drop anywhere on the window open the model, even over a line edit (which would take
        the file's URL as text) or the graph view (which would navigate to it): no child accepts
        drops, so Qt hands every drop to the window. Called again when widgets are added.

        (Not an event filter: a Python filter on the application or on the QWindow also sees
        events of Qt's internal objects while they are destroyed, and crashed QtWebEngine and
        closing windows.)
        """
        for child in self.findChildren(QWidget):
            if child.acceptDrops():
                child.setAcceptDrops(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        self._on_drag_entered(event)

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        self._on_dropped(event)

    @staticmethod
    def _dropped_file(event) -> Path | None:
        mime = event.mimeData()
        if mime is None or not mime.hasUrls():
            return None
        for url in mime.urls():
            if url.isLocalFile():
                return Path(url.toLocalFile())
        return None

    def _on_drag_entered(self, event) -> None:
        if self._dropped_file(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def _on_dropped(self, event) -> None:
        path = self._dropped_file(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.is_dir() or (is_data(path) and self.model_path is not None):
            self.set_data(path)
        else:
            self.open_model(path)

    def set_data(self, path: str | Path) -> None:
        """Use ``path`` as the data set (calibration + evaluation) of the next conversions."""
        self.options.calibration.setText(str(path))
        self.statusBar().showMessage(f"Data: {path} (calibrates INT8 and evaluates every artifact)", 8000)
        self.log.add(f"data set: {path}")

    # ------------------------------------------------------------------ loading a model
    def open_model(self, path: str | Path, *, allow_pickle: bool = False, trusted_globals: tuple[str, ...] = ()) -> bool:
        """Inspect ``path`` in the background; False (with a message) when it is refused at once."""
        from app.loading import MODEL_SUFFIXES

        path = Path(path)
        if self.jobs.running or (self.bench is not None and self.bench.state not in (DONE, FAILED, CANCELLED)):
            self._show_message(QMessageBox.Icon.Information, "Jobs are running",
                               "Wait for the running jobs to finish, or cancel them, before loading another model.")
            return False
        if path.suffix.lower() not in MODEL_SUFFIXES:
            self._show_message(QMessageBox.Icon.Warning, "Not a model file",
                               f"{path.name} is not a model file Model Deployment Studio reads.\n\nSupported: "
                               "PyTorch .pt/.pth/.bin/.ckpt (TorchScript, state dict or pickled module), "
                               "safetensors, torch.export .pt2, ONNX .onnx and TensorRT .engine/.plan.")
            self.log.add(f"refused {path}: not a supported model file")
            return False
        if not path.is_file():
            self._show_message(QMessageBox.Icon.Warning, "File not found", f"{path} does not exist.")
            return False
        if path != self.model_path:
            self._forget_model()
            self._restore_arch(path)
        self.model_path = path
        self.allow_pickle, self.trusted_globals = allow_pickle, tuple(trusted_globals)
        self._inspect()
        self._fill_recent_menu(self.settings.add_recent_file(path))
        return True

    def _forget_model(self) -> None:
        self.model.clear()
        self.results.clear_results()
        self.last_benchmark = None
        self.jobs.clear()
        if self.latency_chart is not None:
            self.latency_chart.set_rows([])
            self.batch_chart.set_rows([])

    def _restore_arch(self, path: Path) -> None:
        remembered = self.settings.value("arch/by_file", {}).get(str(path.resolve()))
        if remembered:
            self.model.set_arch(remembered.get("arch"), remembered.get("kwargs", ""))

    def _inspect(self) -> None:
        from app.errors import BadInput
        from ui.workers import inspection_job

        try:
            kwargs = self.model.arch_kwargs()
        except BadInput as e:
            self._show_message(QMessageBox.Icon.Warning, "Architecture arguments", str(e))
            return
        payload = {"path": str(self.model_path), "arch": self.model.arch(), "arch_kwargs": kwargs,
                   "allow_pickle": self.allow_pickle, "trusted_globals": list(self.trusted_globals)}
        self.model.show_loading(self.model_path)
        self.statusBar().showMessage(f"Reading {self.model_path.name}…")
        self.setWindowTitle(f"{self.model_path.name} — Model Deployment Studio")
        job = inspection_job(payload, self)
        job.succeeded.connect(self._on_model_inspected)
        job.failed.connect(lambda state, message: self._on_model_inspection_failed(job, state, message))
        self.inspection = job
        job.start()
        self._update_actions()

    def _on_reload_requested(self) -> None:
        if self.model_path is not None:
            self._inspect()

    def _on_model_inspected(self, summary: dict) -> None:
        self.inspection = None
        self.model.show_model(summary)
        self._refuse_drops()  # the inputs table has new line edits
        self.targets.set_source_format(summary["format"])
        if self.model.arch():
            by_file = self.settings.value("arch/by_file", {})
            by_file[str(Path(summary["path"]).resolve())] = {"arch": self.model.arch(),
                                                             "kwargs": self.model.kwargs_edit.text()}
            self.settings.set_value("arch/by_file", dict(list(by_file.items())[-50:]))
        self.log.add(f"loaded {summary['path']}: {summary['format']}, {summary.get('parameters') or 0:,} parameters")
        for w in summary.get("warnings", []):
            self.log.add(f"warning: {w}")
        self.statusBar().showMessage(f"Loaded {Path(summary['path']).name} ({summary['format']})", 5000)
        self._update_actions()
        self._refresh_graph()
        self.model_loaded.emit(summary)

    def _on_model_inspection_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        from app.errors import UnsafeModelError

        self.inspection = None
        self.model.format_label.setText("not loaded")
        self._update_actions()
        if state == CANCELLED:
            return
        self.log.add(f"could not load {self.model_path}: {message}")
        needed = list((job.error.details or {}).get("globals", [])) if isinstance(job.error, UnsafeModelError) else []
        if needed and not self.allow_pickle:
            self._ask_to_trust_pickle(needed)
        else:
            self._show_message(QMessageBox.Icon.Warning, "Cannot load the model", message)
        self.model_failed.emit(message)

    # ------------------------------------------------------------------ converting
    def convert_blockers(self) -> list[str]:
        """Why Convert cannot start now (empty: it can)."""
        if not self.is_ready:
            return ["the window is still starting"]
        if self.model_path is None:
            return ["load a model first (drop it on the window or press Ctrl+O)"]
        if self.inspection is not None:
            return ["the model is still loading"]
        if self.jobs.running:
            return ["conversions are running"]
        problems = list(self.model.signature().problems)
        if not self.targets.checked():
            problems.append("tick at least one target and precision")
        return problems

    def build_request(self, target: str, precision: str):
        """The :class:`ConversionRequest` for one ticked box, from everything the window shows."""
        from app.request import ConversionRequest

        summary = self.model.summary or {}
        sig = self.model.signature()
        declared = {(s["name"], i) for s in summary.get("inputs", [])
                    for i, d in enumerate(s.get("shape") or []) if isinstance(d, str)}
        pass_inputs = self.model.inputs_must_be_given()
        dynamic = [d for d in sig.dynamic if pass_inputs or (d[0], d[1]) not in declared]
        return ConversionRequest(
            model_path=self.model_path, target=target, precision=precision,
            inputs=tuple(sig.inputs) if pass_inputs else (), dynamic=tuple(dynamic),
            arch=self.model.arch(), arch_kwargs=tuple(self.model.arch_kwargs().items()),
            allow_pickle=self.allow_pickle, trusted_globals=self.trusted_globals,
            **self.options.values())

    def _on_convert_triggered(self) -> None:
        from app.errors import BadInput

        blockers = self.convert_blockers()
        if blockers:
            self.statusBar().showMessage(f"Cannot convert: {blockers[0]}", 8000)
            return
        try:
            requests = [self.build_request(t, p) for t, p in self.targets.checked()]
        except BadInput as e:
            self._show_message(QMessageBox.Icon.Warning, "Cannot convert", str(e))
            return
        if self._needs_data(requests):
            self._ask_for_data(requests)
            return
        self._confirm_and_start(requests)

    @staticmethod
    def _needs_data(requests: list) -> bool:
        """Automatic INT8 without data: the user must choose a folder or random data, knowingly."""
        return any(r.precision == "int8" and r.quantization is None and r.calibration is None for r in requests)

    def _ask_for_data(self, requests: list) -> QMessageBox:
        from dataclasses import replace

        box = QMessageBox(QMessageBox.Icon.Question, "INT8 needs data",
                          "INT8 is calibrated and judged on real samples. Choose a data folder (images in class "
                          "folders, .npy/.npz files, or sentences with a tokenizer), or calibrate on random data — "
                          "then the artifact's accuracy on real inputs is unknown.", QMessageBox.StandardButton.Cancel,
                          self)
        choose = box.addButton("Choose data folder…", QMessageBox.ButtonRole.AcceptRole)
        random = box.addButton("Random data (accuracy unknown)", QMessageBox.ButtonRole.DestructiveRole)
        box.setDefaultButton(choose)
        box.setAccessibleName("INT8 needs data")
        self.dialog = box

        def answered(_result: int) -> None:
            self._on_dialog_finished(box)
            if box.clickedButton() is random:
                self._confirm_and_start([replace(r, quantization="static") if r.precision == "int8"
                                         and r.quantization is None and r.calibration is None else r
                                         for r in requests])
            elif box.clickedButton() is choose:
                self._choose_data_folder()

        box.finished.connect(answered)
        box.open()
        return box

    def _choose_data_folder(self) -> QFileDialog:
        start = self.options.calibration.text() or str(self.model_path.parent if self.model_path else Path.home())
        dialog = QFileDialog(self, "Data folder", start)
        dialog.setFileMode(QFileDialog.FileMode.Directory)
        dialog.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        dialog.setAccessibleName("Data folder")

        def chosen(folder: str) -> None:
            self.set_data(folder)
            self._on_convert_triggered()

        dialog.fileSelected.connect(chosen)
        dialog.finished.connect(lambda _r: dialog.deleteLater())
        self.dialog = dialog
        dialog.open()
        return dialog

    def _confirm_and_start(self, requests: list) -> None:
        if self._memory_refused(requests):
            return
        if not self.options.overwrite.isChecked():
            from dataclasses import replace

            from app.pipeline import artifact_path

            existing = [r for r in requests if artifact_path(r).exists()]
            if existing:
                names = "\n".join(f"  {artifact_path(r).name}" for r in existing)
                folder = artifact_path(existing[0]).parent
                self._ask("Replace existing artifacts?",
                          f"These files exist already in {folder}:\n{names}\n\nReplace them?",
                          lambda: self._start_conversions([replace(r, overwrite=True) if r in existing else r
                                                           for r in requests]))
                return
        self._start_conversions(requests)

    def _memory_refused(self, requests: list) -> bool:
        """Jobs whose memory estimate exceeds what is available: ask before running them anyway (their
        request then skips the job's own check); jobs that fit tightly are logged as warnings."""
        from dataclasses import replace

        from app.memory import NotEnoughMemory, check_memory

        source = (self.model.summary or {}).get("size_bytes")
        refused = []
        for request in requests:
            if request.ignore_memory_check:
                continue
            try:
                for warning in check_memory(request, source):
                    self.log.add(f"warning: {warning}")
            except NotEnoughMemory as e:
                refused.append((request, str(e)))
        if not refused:
            return False
        text = "\n\n".join(m.replace("; --ignore-memory-check runs it anyway", "") for _, m in refused)
        self._ask("Not enough memory", f"{text}\n\nRun anyway? (The job may be stopped when memory runs out.)",
                  lambda: self._confirm_and_start([replace(r, ignore_memory_check=True) if any(r is q for q, _ in refused)
                                                   else r for r in requests]))
        return True

    def _start_conversions(self, requests: list) -> None:
        self.jobs.clear()
        self.conversions.clear()
        self._stage_logged.clear()
        self.settings.set_value("choices/targets", self.targets.checked_keys())
        self.settings.set_value("choices/options", self.options.state())
        for request in requests:
            key = (request.target, request.precision)
            label = next((c.label for c in self.targets.choices if c.name == request.target), request.target)
            self.jobs.add_job(key, f"{label} · {request.precision.upper()}")
            job = ConversionJob(request, parent=self)
            self.conversions[key] = job
            self._wire_job(key, job)
            self.log.add(f"queued {request.target} {request.precision}")
            job.start()
        self.statusBar().showMessage(f"Converting to {len(requests)} target(s)…")
        self._update_actions()

    def _on_job_progressed(self, key, stage: str, fraction: float) -> None:
        self.jobs.show_progress(key, stage, fraction)
        if self._stage_logged.get(key) != stage:
            self._stage_logged[key] = stage
            self.log.add(f"{key[0]} {key[1]}: {stage}")

    def _on_job_succeeded(self, key, result) -> None:
        if key == BENCH_KEY:
            self._on_benchmark_succeeded(result)
            return
        request = self.conversions[key].request
        self.results.add_result(request, result)
        v = result.verification
        self.log.add(f"{key[0]} {key[1]}: wrote {result.artifact} ({result.size_bytes / 1e6:.2f} MB, "
                     f"{result.seconds:.1f} s)" + (f"; verification {v.summary()}" if v else ""))
        for w in result.warnings:
            self.log.add(f"{key[0]} {key[1]}: warning: {w}")
        self.jobs.show_outcome(key, DONE, "verified" if result.status == "ok" else result.status)
        self._refresh_graph()

    def _on_job_failed(self, key, state: str, message: str) -> None:
        if key == BENCH_KEY:
            self.bench = None
        elif state == FAILED:
            self.results.add_failure(self.conversions[key].request, message)
        self.log.add(f"{key[0]} {key[1]}: {state}: {message}")
        self.jobs.show_outcome(key, state, message)
        self._update_actions()

    def _on_job_cancel_requested(self, key) -> None:
        job = self.bench if key == BENCH_KEY else self.conversions.get(key) or self.background_jobs.get(key)
        if job is not None:
            self.log.add(f"{key[0]} {key[1]}: cancelling")
            job.cancel()

    def _on_cancel_all_triggered(self) -> None:
        for key, row in self.jobs.rows.items():
            if row.state not in (DONE, FAILED, CANCELLED):
                row.show_cancelling()
                self._on_job_cancel_requested(key)

    def _on_all_jobs_finished(self) -> None:
        counts = self.jobs.counts()
        text = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        self.statusBar().showMessage(f"Finished: {text}", 10000)
        self.log.add(f"all jobs finished: {text}")
        self._update_actions()

    # ------------------------------------------------------------------ benchmarking
    def benchmark_blockers(self) -> list[str]:
        from app.errors import BadInput

        blockers = [b for b in self.convert_blockers() if not b.startswith("tick at least")]
        if self.bench is not None:
            blockers.append("a benchmark is running")
        try:
            self.bench_options.batch_sizes()
        except BadInput as e:
            blockers.append(f"batch sizes: {e}")
        return blockers

    def benchmark_payload(self) -> dict:
        sig = self.model.signature()
        pass_inputs = self.model.inputs_must_be_given()
        return {"model": str(self.model_path), "artifacts": [str(p) for p in self.results.artifacts()],
                "inputs": sig.input_flags() if pass_inputs else [], "dynamic": sig.dynamic_flags(),
                "arch": self.model.arch(), "arch_kwargs": self.model.arch_kwargs(),
                "allow_pickle": self.allow_pickle, "trusted_globals": list(self.trusted_globals),
                "batch": self.bench_options.batch_sizes(),
                "warmup": self.bench_options.warmup.value(), "runs": self.bench_options.runs.value(),
                "min_seconds": 0.5, "threads": None}

    def _on_benchmark_triggered(self) -> None:
        from ui.workers import benchmark_job

        blockers = self.benchmark_blockers()
        if blockers:
            self.statusBar().showMessage(f"Cannot benchmark: {blockers[0]}", 8000)
            return
        payload = self.benchmark_payload()
        self.settings.set_value("choices/bench", self.bench_options.state())
        self.bench = benchmark_job(payload, self)
        self.jobs.add_job(BENCH_KEY, "Benchmark")
        self._wire_job(BENCH_KEY, self.bench)
        self.log.add(f"benchmark: source + {len(payload['artifacts'])} artifact(s), batch {payload['batch']}")
        self.bench.start()
        self._update_actions()

    # ------------------------------------------------------------------ deployment sweep
    def sweep_payload(self) -> dict:
        """The benchmark payload's source fields, the artifacts, the grid, and where the result is saved."""
        payload = {k: v for k, v in self.benchmark_payload().items() if k not in ("batch", "warmup", "runs", "min_seconds")}
        artifacts = self.results.artifacts()
        payload.update(sweep=self.sweep_panel.sweep_items(), seconds=self.sweep_panel.seconds.value(),
                       p99_budget_ms=self.sweep_panel.p99_budget_ms(),
                       save=str(artifacts[0].parent / f"{self.model_path.stem}.sweep.json") if artifacts else None)
        return payload

    def _on_sweep_triggered(self) -> None:
        from app.errors import BadInput
        from ui.workers import sweep_job

        blockers = [b for b in self.benchmark_blockers() if not b.startswith("batch sizes")]
        if not self.results.artifacts():
            blockers.append("convert first: the sweep measures artifacts")
        if any(key == SWEEP_KEY for key in self.background_jobs):
            blockers.append("a sweep is running")
        try:
            payload = self.sweep_payload() if not blockers else None
        except BadInput as e:
            blockers.append(str(e))
        if blockers:
            self.statusBar().showMessage(f"Cannot sweep: {blockers[0]}", 8000)
            return
        self.log.add(f"sweep: {len(payload['artifacts'])} artifact(s), {' '.join(payload['sweep'])}")
        self._start_background(SWEEP_KEY, "Deployment sweep", sweep_job(payload, self),
                               self._on_sweep_done, self._on_sweep_failed)

    def _on_sweep_done(self, key, data: dict) -> None:
        self.background_jobs.pop(key, None)
        self.sweep_panel.set_result(data)
        self.last_sweep = data
        self.jobs.show_outcome(key, DONE, f"{len(data.get('points', []))} points")
        for p in data.get("proposals", []):
            self.log.add(f"sweep {p['name']}: {p['why']}")
        self.tabs.setCurrentWidget(self._sweep_holder)
        self.sweep_finished.emit(data)

    def _on_sweep_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"sweep: {state}: {message}")
        self.jobs.show_outcome(key, state, message)

    def _on_benchmark_succeeded(self, result: dict) -> None:
        self.bench = None
        self.last_benchmark = result
        rows = self.show_benchmark(result)
        self.jobs.show_outcome(BENCH_KEY, DONE, f"{len(rows)} measurements")
        self._update_actions()
        self.benchmark_finished.emit(result)

    def show_benchmark(self, result: dict) -> list[dict]:
        """Chart a benchmark result ``{"machine": {...}, "results": [rows]}`` and log its headline."""
        rows = list(result.get("results", []))
        self.latency_chart.set_rows(rows)
        self.batch_chart.set_rows(rows)
        from ui.accuracy_chart import accuracy_points

        evaluations = {str(r.artifact): r.result.evaluation for r in self.results.rows
                       if r.result is not None and r.result.evaluation is not None and r.artifact}
        self.accuracy_chart.set_points(*accuracy_points(rows, evaluations))
        machine = result.get("machine") or {}
        if machine:
            self.log.add("benchmark machine: " + ", ".join(f"{k}={v}" for k, v in machine.items()))
        for r in rows:
            if int(r.get("batch", 0)) == self.latency_chart.batch:
                self.log.add(f"benchmark {r['name']}: p50 {r['p50_ms']:.3f} ms, p99 {r['p99_ms']:.3f} ms"
                             + (f", ×{r['speedup_vs_baseline']:.2f}" if r.get("speedup_vs_baseline") else ""))
        self.tabs.setCurrentIndex(0)
        self._update_actions()
        return rows

    # ------------------------------------------------------------------ results and charts
    def _selected_row(self) -> int | None:
        rows = self.results.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    # ------------------------------------------------------------------ the Graph tab
    def graph_models(self) -> list[tuple[str, Path]]:
        """What the Graph tab offers: the source model, then every artifact on disk."""
        models = []
        if self.model_path is not None and self.model.summary:
            models.append((f"Source: {self.model_path.name}", self.model_path))
        for info in self.results.rows:
            if info.artifact is not None and info.artifact.exists():
                models.append((f"{info.target} · {info.precision.upper()}: {info.artifact.name}", info.artifact))
        return models

    def show_graph_tab(self) -> None:
        if self.graph_window.detached:
            self.graph_window.window.raise_()
            self.graph_window.window.activateWindow()
        else:
            self.tabs.setCurrentWidget(self._graph_holder)

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self._graph_holder:
            self._ensure_graph()

    def _ensure_graph(self) -> None:
        """Build the Graph view on first sight (its servers start only then) and show the current models."""
        if self.graph is None:
            from ui.graph_view import GraphView

            self.graph = GraphView()
            self._graph_holder.put(self.graph)
            for pane in self.graph.panes:  # a pane's web view exists once it has drawn
                pane.graph_drawn.connect(self._refuse_drops)
        self._refresh_graph()

    def _refresh_graph(self) -> None:
        """Offer the current models in the Graph tab (only once the tab exists: it starts servers)."""
        if self.graph is not None:
            self.graph.set_models(self.graph_models())

    # ------------------------------------------------------------------ serving bundles
    # ------------------------------------------------------------------ diagnosis
    def diagnose(self, row: int) -> BackgroundJob | None:
        """Rank the nodes of the row's fp16/int8 ONNX artifact by the error they add on the data."""
        from dataclasses import replace

        from ui.workers import diagnosis_job

        info = self.results.rows[row]
        data = info.request.calibration or self.options.values().get("calibration")
        if not data:
            self._show_message(QMessageBox.Icon.Information, "Diagnosis needs data",
                               "Ranking nodes by the error they add runs the model on real samples: choose a data "
                               "folder (Data…, or drop one on the window), then ask again.")
            return None
        return self._start_background(("diagnose", info.artifact.name), f"Diagnose · {info.artifact.name}",
                                      diagnosis_job(replace(info.request, calibration=Path(data)), info.artifact,
                                                    parent=self),
                                      self._on_diagnosed, self._on_background_failed)

    def _on_diagnosed(self, key, result: dict) -> None:
        job = self.background_jobs.pop(key, None)
        self.jobs.show_outcome(key, DONE, f"{len(result['ranking'])} nodes compared")
        self.diagnosis.show_ranking(job.payload, result)
        self.tabs.setCurrentWidget(self.diagnosis)
        self.log.add(f"diagnosis of {key[1]}: {len(result['ranking'])} nodes ranked by the error they add")

    def _on_background_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"{key[0]} {key[1]}: {state}: {message}")
        self.jobs.show_outcome(key, state, message)
        if state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, f"Cannot {key[0]} {key[1]}", message)

    def show_node(self, artifact: str, node: str, output: str = "") -> None:
        """Show ``artifact``'s graph in the Graph tab with ``node`` selected."""
        self.show_graph_tab()
        self._ensure_graph()
        if not self.graph.panes[0].show_node(Path(artifact), node, output):
            self.statusBar().showMessage(f"{Path(artifact).name} is not among the models in the Graph tab", 5000)

    def _on_export_for_serving_requested(self, row: int) -> None:
        info = self.results.rows[row]
        if info.artifact is None:
            return
        start = self.settings.value("dirs/serving", "") or str(info.artifact.parent)
        folder = QFileDialog.getExistingDirectory(self, "Triton model repository", start)
        if folder:
            self.export_for_serving(info.artifact, Path(folder))

    def export_for_serving(self, artifact: Path, repo: Path, overwrite: bool = False) -> BackgroundJob:
        """Write a Triton model folder for ``artifact`` into ``repo`` in the background."""
        from ui.workers import serving_job

        self.settings.set_value("dirs/serving", str(repo))
        sweep = self.last_sweep if self.sweep_panel is not None and self.sweep_panel.proposal_for(artifact) else None
        from_sweep = sweep.get("saved") if sweep else None
        if from_sweep:
            self.log.add(f"Triton settings for {artifact.name} from the sweep ({from_sweep})")
        return self._start_background(("serving", artifact.name), f"Triton bundle · {artifact.name}",
                                      serving_job(artifact, repo, overwrite, self, from_sweep=from_sweep),
                                      self._on_bundle_written, self._on_bundle_failed)

    def _start_background(self, key: tuple[str, str], label: str, job: BackgroundJob, on_done, on_failed) -> BackgroundJob:
        """Show ``job`` in the jobs list under ``key`` and start it; ``on_done(key, result)`` or
        ``on_failed(key, state, message)`` follows."""
        self.jobs.add_job(key, label)
        job.succeeded.connect(lambda result: on_done(key, result))
        job.failed.connect(lambda state, message: on_failed(key, state, message))
        self.background_jobs[key] = job
        job.start()
        return job

    def _on_bundle_written(self, key, path) -> None:
        self.background_jobs.pop(key, None)
        self.log.add(f"wrote the Triton model folder {path}")
        self.jobs.show_outcome(key, DONE, str(path))
        self.statusBar().showMessage(f"Triton model folder written: {path}", 10000)

    def _on_bundle_failed(self, key, state: str, message: str) -> None:
        from app.errors import OutputExists

        job = self.background_jobs.pop(key, None)
        self.log.add(f"Triton bundle for {key[1]}: {state}: {message}")
        self.jobs.show_outcome(key, state, message)
        if job is not None and isinstance(job.error, OutputExists):
            artifact, repo = job.payload
            self._ask("Replace the model folder?",
                      f"{repo} already holds a model folder for {artifact.name}.\n\nReplace it?",
                      lambda: self.export_for_serving(artifact, repo, overwrite=True))
        elif state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, "Cannot export for serving", message)

    def _on_copy_path_triggered(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.results.copy_path(row)
            self.statusBar().showMessage("Artifact path copied", 3000)

    def _on_copy_command_triggered(self) -> None:
        row = self._selected_row()
        if row is not None:
            self.results.copy_command(row)
            self.statusBar().showMessage("Command line copied", 3000)

    def _on_clear_results_triggered(self) -> None:
        self.results.clear_results()
        self._update_actions()
        self._refresh_graph()

    def _show_selected_details(self) -> None:
        row = self._selected_row()
        self.details.show_row(self.results.rows[row] if row is not None else None)

    def _on_focus_charts_toggled(self, on: bool) -> None:
        self.charts_focus.set(on)

    def _on_graph_window_toggled(self, on: bool) -> None:
        self.graph_window.set(on)

    def _on_graph_window_changed(self, detached: bool) -> None:
        self.graph_window_action.setChecked(detached)
        if detached:
            self._ensure_graph()

    def _on_open_folder_requested(self, folder: str) -> None:
        self.statusBar().showMessage(f"Opening {folder}", 3000)

    def _on_export_png_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export charts as PNG", self._last_dir("latency.png"),
                                              "PNG images (*.png)")
        if path:
            path = Path(path).with_suffix(".png")
            self.latency_chart.export_png(path)
            self.batch_chart.export_png(path.with_name(path.stem + "-batch.png"))
            self.statusBar().showMessage(f"Saved {path} and {path.stem}-batch.png", 5000)

    def _on_export_csv_triggered(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export benchmark as CSV", self._last_dir("benchmark.csv"),
                                              "CSV files (*.csv)")
        if path:
            self.latency_chart.export_csv(Path(path).with_suffix(".csv"))
            self.statusBar().showMessage(f"Saved {path}", 5000)

    def _on_export_report_triggered(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(self, "Export report", self._last_dir("report.html"),
                                                   "HTML files (*.html);;PDF files (*.pdf)")  # it asks before replacing
        if path:
            pdf = path.lower().endswith(".pdf") or chosen.startswith("PDF")
            self.export_report(Path(path).with_suffix(".pdf" if pdf else ".html"))

    def export_report(self, out: Path) -> BackgroundJob:
        """Write the report of this session's artifacts, last benchmark and sweep in the background:
        HTML, or for ``*.pdf`` the same page printed by QtWebEngine."""
        import tempfile

        from app.pipeline import manifest_path_of
        from ui.workers import report_job

        manifests = [manifest_path_of(a) for a in self.results.artifacts() if manifest_path_of(a).is_file()]
        benches = [b for b in (self.last_benchmark, self.last_sweep) if b]
        html = out
        if out.suffix.lower() == ".pdf":
            html = Path(tempfile.mkdtemp(prefix="studio-report-")) / (out.stem + ".html")
        job = report_job(manifests, html, benches, self)
        job.pdf = out if html != out else None
        return self._start_background(("report", out.name), f"Report · {out.name}", job,
                                      self._on_report_written, self._on_report_failed)

    def _on_report_written(self, key, written: dict) -> None:
        job = self.background_jobs.pop(key, None)
        pdf = getattr(job, "pdf", None)
        if pdf is not None:
            return self._print_pdf(key, Path(written["report"]), pdf)
        self.log.add(f"wrote the report {written['report']} ({len(written['artifacts'])} artifact(s), "
                     f"{len(written['benchmarks'])} benchmark result(s))")
        self.jobs.show_outcome(key, DONE, written["report"])
        self.statusBar().showMessage(f"Report written: {written['report']}", 10000)
        self.report_finished.emit(written["report"])

    def _print_pdf(self, key, html: Path, pdf: Path) -> None:
        from ui.graph_view import web_engine_available

        ok, why = web_engine_available()
        if not ok:
            return self._on_report_failed(key, FAILED, f"a PDF is printed by QtWebEngine, which is missing here ({why}); "
                                                       "export HTML and print it from a browser")
        from ui.report_pdf import PdfPrinter

        self.jobs.show_progress(key, "printing to PDF", -1.0)
        printer = PdfPrinter(self)

        def printed(path: str, done: bool) -> None:
            import shutil

            shutil.rmtree(html.parent, ignore_errors=True)
            printer.deleteLater()
            if not done:
                return self._on_report_failed(key, FAILED, f"QtWebEngine could not print {pdf}")
            self.log.add(f"wrote the report {path} (PDF)")
            self.jobs.show_outcome(key, DONE, path)
            self.statusBar().showMessage(f"Report written: {path}", 10000)
            self.report_finished.emit(path)

        printer.finished.connect(printed)
        printer.print(html, pdf)

    def _on_report_failed(self, key, state: str, message: str) -> None:
        job = self.background_jobs.pop(key, None)
        if getattr(job, "pdf", None) is not None:  # the HTML staged for a PDF goes too
            import shutil

            shutil.rmtree(Path(job.payload).parent, ignore_errors=True)
        self.log.add(f"report: {state}: {message}")
        self.jobs.show_outcome(key, state, message)
        if state == FAILED:
            self._show_message(QMessageBox.Icon.Warning, "Cannot write the report", message)

    def _last_dir(self, name: str) -> str:
        base = self.model_path.parent if self.model_path else Path.home()
        return str(base / name)

    # ------------------------------------------------------------------ files, dialogs, about
    def _on_open_triggered(self) -> None:
        start = self.settings.value("dialogs/last_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, OPEN_FILTERS)
        if path:
            self.settings.set_value("dialogs/last_dir", str(Path(path).parent))
            self.open_model(path)

    def _fill_recent_menu(self, files: list[str] | None = None) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files() if files is None else files
        for i, f in enumerate(files):
            action = self.recent_menu.addAction(f"&{i + 1} {Path(f).name}", lambda f=f: self.open_model(f))
            action.setToolTip(f)
            action.setStatusTip(f)
        self.recent_menu.setEnabled(bool(files))
        if files:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear Recent Files", self._on_clear_recent_triggered)

    def _on_clear_recent_triggered(self) -> None:
        self.settings.clear_recent_files()
        self._fill_recent_menu([])

    def about_text(self) -> str:
        import PySide6
        from PySide6.QtCore import qVersion

        from app.versions import tool_versions

        v = tool_versions()
        names = (("PyTorch", "torch"), ("ONNX", "onnx"), ("ONNX Runtime", "onnxruntime"),
                 ("onnxscript", "onnxscript"), ("OpenVINO", "openvino"), ("NNCF", "nncf"), ("TensorRT", "tensorrt"))
        lines = [f"{label}: {v.get(key) or 'not installed'}" for label, key in names]
        lines += [f"Qt: {qVersion()} (PySide6 {PySide6.__version__})", f"Python: {v['python']}",
                  f"Platform: {v['platform']}"]
        return ("Model Deployment Studio converts PyTorch and ONNX models to TorchScript, torch.export, "
                "ONNX (FP32/FP16/INT8), OpenVINO (FP32/FP16/BF16/INT8) and TensorRT, verifies every artifact and "
                "benchmarks it.\n\n"
                + "\n".join(lines))

    def _on_about_triggered(self) -> None:
        self._show_message(QMessageBox.Icon.Information, "About Model Deployment Studio", self.about_text())

    def _show_message(self, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
        """A window-modal message that does not block the event loop (jobs keep reporting)."""
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAccessibleName(title)
        self.dialog = box
        box.finished.connect(lambda _r: self._on_dialog_finished(box))
        box.open()
        return box

    def _ask_to_trust_pickle(self, needed: list[str]) -> QMessageBox:
        """The pickle dialog: list every class and function the file would use; Yes approves them."""
        from app.unpickling import TORCH_NN_EXCLUDED, TORCH_NN_PREFIX

        torch_nn = [n for n in needed if n.startswith(TORCH_NN_PREFIX) and not n.startswith(TORCH_NN_EXCLUDED)]
        others = [n for n in needed if n not in torch_nn]
        lines = [f"{self.model_path.name} is a whole pickled Python object. Loading it creates and calls "
                 "these classes and functions (checked by PyTorch's weights-only unpickler; nothing else is "
                 "imported):", ""]
        if torch_nn:
            lines.append(f"PyTorch layers (torch.nn): {', '.join(n.rpartition('.')[2] for n in torch_nn)}")
        if others:
            lines.append("Code from elsewhere, trusted by name:")
            lines += [f"    {n}" for n in others]
        lines += ["", "Trust them only if you trust where the file came from. (Safer: save model.state_dict() "
                  "and give the architecture.)", "", "Trust and load it?"]
        return self._ask("Trust this file?", "\n".join(lines),
                         lambda: self.open_model(self.model_path, allow_pickle=True, trusted_globals=tuple(others)))

    def _ask(self, title: str, text: str, on_yes) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Question, title, text,
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setAccessibleName(title)
        self.dialog = box

        def answered(result: int) -> None:
            self._on_dialog_finished(box)
            if result == QMessageBox.StandardButton.Yes:
                on_yes()

        box.finished.connect(answered)
        box.open()
        return box

    def _on_dialog_finished(self, box: QMessageBox) -> None:
        if self.dialog is box:
            self.dialog = None
        box.deleteLater()

    # ------------------------------------------------------------------ state of the actions
    def _update_actions(self) -> None:
        blockers = self.convert_blockers()
        self.convert_button.setEnabled(not blockers)
        self.convert_action.setEnabled(not blockers)
        n = len(self.targets.checked())
        self.convert_button.setToolTip(f"cannot convert: {blockers[0]}" if blockers
                                       else f"convert to the {n} ticked target(s) (F5)")
        bench = self.benchmark_blockers() if self.is_ready else ["the window is still starting"]
        self.benchmark_button.setEnabled(not bench)
        self.benchmark_action.setEnabled(not bench)
        self.benchmark_button.setToolTip(f"cannot benchmark: {bench[0]}" if bench else
                                         f"benchmark the source and {len(self.results.artifacts())} artifact(s) (Ctrl+B)")
        self.cancel_action.setEnabled(self.jobs.running)
        has_chart = bool(self.latency_chart is not None and self.latency_chart.rows)
        self.export_png_action.setEnabled(has_chart)
        self.export_csv_action.setEnabled(has_chart)
        self.export_report_action.setEnabled(bool(self.results.artifacts() or self.last_benchmark))
        selected = self._selected_row() is not None
        self.copy_path_action.setEnabled(selected)
        self.copy_command_action.setEnabled(selected)

    # ------------------------------------------------------------------ settings, palette, closing
    def _restore_settings(self) -> None:
        s = self.settings
        geometry = s.bytes_value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = s.bytes_value("window/state")
        if state is not None:
            self.restoreState(state)
        for split, key in ((self.main_split, "window/main_split"), (self.right_split, "window/right_split")):
            saved = s.bytes_value(key)
            if saved is not None:
                split.restoreState(saved)
        self.options.restore(s.value("choices/options", {}))
        self.bench_options.restore(s.value("choices/bench", {}))

    def save_settings(self) -> None:
        s = self.settings
        s.set_bytes("window/geometry", self.saveGeometry())
        s.set_bytes("window/state", self.saveState())
        s.set_bytes("window/main_split", self.main_split.saveState())
        s.set_bytes("window/right_split", self.right_split.saveState())
        if self.targets.is_ready:
            s.set_value("choices/targets", self.targets.checked_keys())
        s.set_value("choices/options", self.options.state())
        s.set_value("choices/bench", self.bench_options.state())
        s.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.save_settings()
        jobs = [*self.conversions.values(), self.bench, self.inspection, *getattr(self, "_startup_jobs", []),
                *self.background_jobs.values()]
        for job in jobs:
            if job is not None:
                job.cancel()
        for pool in all_pools():  # every child is terminated within a second of its cancel
            pool.waitForDone(5000)
        self.graph_window.set(False)  # the Graph page goes home before the window closes
        if self.graph is not None:
            self.graph.close_all()  # stops the graph servers and removes their private copies
        super().closeEvent(event)


class _Holder(QWidget):
    """A tab page that shows a note until its real widget is built (after the first paint)."""

    def __init__(self, note: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._note = QLabel(note)
        self._note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.addWidget(self._note)

    def put(self, widget: QWidget) -> None:
        self._note.hide()
        self._layout.addWidget(widget)

