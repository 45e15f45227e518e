"""The window's actions and menus (File, Edit, View, Help), what enables them, and recent files.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox

from ui.plain_text import tooltip, visible_text


OPEN_FILTERS = ";;".join([
    "Models (*.pt *.pth *.bin *.ckpt *.pt2 *.safetensors *.onnx *.engine *.plan)",
    "PyTorch (*.pt *.pth *.bin *.ckpt)", "torch.export (*.pt2)", "safetensors (*.safetensors)",
    "ONNX (*.onnx)", "TensorRT engines (*.engine *.plan)", "All files (*)"])


class Menus:
    """The window's actions and menus (File, Edit, View, Help), what enables them, and recent files.
    The actions are kept on the window (``window.open_action`` …); the part that handles one connects
    it (``window.convert_action.triggered`` → the converting part)."""

    def __init__(self, window) -> None:
        self.window = window
        self._tips: dict[QAction, str] = {}   # each action's own tip, for when it is enabled again
        self._build_actions()
        self._build_menus()

    def _action(self, text: str, slot=None, shortcut=None, tip: str = "") -> QAction:
        action = QAction(text, self.window)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
            self._tips[action] = tip
        if slot is not None:
            action.triggered.connect(slot)
        return action

    def _build_actions(self) -> None:
        w = self.window
        K = QKeySequence.StandardKey
        w.open_action = self._action("&Open Model…", self._on_open_triggered, K.Open, "open a model file")
        w.quit_action = self._action("&Quit", w.close, "Ctrl+Q", "quit the application")  # StandardKey.Quit is empty on Windows
        w.export_png_action = self._action("Export Charts as &PNG…", None,
                                           tip="save both benchmark charts as PNG images")
        w.export_csv_action = self._action("Export Benchmark as &CSV…", None,
                                           tip="save the benchmark numbers as CSV")
        w.export_report_action = self._action("Export &Report…", None, "Ctrl+Shift+R",
                                              "save one self-contained HTML report: machine, artifacts, "
                                              "verification, warnings, commands, benchmark charts")
        w.copy_path_action = self._action("Copy Artifact &Path", None, "Ctrl+Shift+C",
                                          "copy the selected artifact's path")
        w.copy_command_action = self._action("Copy CLI &Command", None, "Ctrl+Shift+L",
                                             "copy the command line that builds the selected artifact")
        w.clear_results_action = self._action("Clear &Results", self._on_clear_results_triggered)
        w.clear_log_action = self._action("Clear &Log", w.log.clear)
        w.convert_action = self._action("&Convert", None, "F5",
                                        "convert to every ticked target and precision")
        w.benchmark_action = self._action("&Benchmark", None, "Ctrl+B",
                                          "benchmark the source model and every artifact")
        w.cancel_action = self._action("Cancel &All", None, "Shift+F5", "stop every running job")
        w.about_action = self._action("&About Model Deployment Studio", self._on_about_triggered,
                                      tip="versions of the tools")
        w.about_qt_action = self._action("About &Qt", QApplication.aboutQt)
        w.example_action = self._action("Open an &Example…", None,
                                        tip="write a small real example (a CNN trained on handwritten digits and "
                                            "a folder of held-out digits) into a folder and load it")
        w.toggle_log_action = w.log_dock.toggleViewAction()
        w.toggle_log_action.setShortcut(QKeySequence("Ctrl+L"))
        w.focus_charts_action = self._action("Charts and Graph Fill the &Right Side", self._on_focus_charts_toggled,
                                             "Ctrl+Shift+F", "hide jobs and results so the charts and graph get "
                                             "the whole right side (again to bring them back)")
        w.focus_charts_action.setCheckable(True)
        w.graph_window_action = self._action("&Graph in Its Own Window", self._on_graph_window_toggled,
                                             "Ctrl+Shift+G", "move the Graph tab into a window of its own "
                                             "(closing that window puts it back)")
        w.graph_window_action.setCheckable(True)
        w.tab_actions = [self._action("Go to &Results", lambda: w.results.setFocus(), "Ctrl+1")]
        for i, (name, show) in enumerate((
                ("Latency Chart", lambda: w.tabs.setCurrentWidget(w.latency_page)),
                ("Batch Size Chart", lambda: w.tabs.setCurrentWidget(w.batch_page)),
                ("Accuracy vs Latency Chart", lambda: w.tabs.setCurrentWidget(w.accuracy_page)),
                ("Sweep", lambda: w.tabs.setCurrentWidget(w.sweep_page)),
                ("Graph", lambda: w.graph_tab.show_graph_tab()))):
            w.tab_actions.append(self._action(f"Show {name}", lambda _=False, show=show: show(), f"Ctrl+{i + 2}"))

    def _build_menus(self) -> None:
        w = self.window
        bar = w.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.setToolTipsVisible(True)   # a greyed-out action says why on hover
        file_menu.addAction(w.open_action)
        w.recent_menu = file_menu.addMenu("Open &Recent")
        file_menu.addSeparator()
        file_menu.addAction(w.export_png_action)
        file_menu.addAction(w.export_csv_action)
        file_menu.addAction(w.export_report_action)
        file_menu.addSeparator()
        file_menu.addAction(w.quit_action)
        edit = bar.addMenu("&Edit")
        edit.setToolTipsVisible(True)
        for a in (w.copy_path_action, w.copy_command_action):
            edit.addAction(a)
        edit.addSeparator()
        edit.addAction(w.clear_results_action)
        edit.addAction(w.clear_log_action)
        view = bar.addMenu("&View")
        view.addAction(w.toggle_log_action)
        view.addAction(w.focus_charts_action)
        view.addAction(w.graph_window_action)
        view.addSeparator()
        for a in w.tab_actions:
            view.addAction(a)
        run = bar.addMenu("&Run")
        run.setToolTipsVisible(True)
        for a in (w.convert_action, w.benchmark_action, w.cancel_action):
            run.addAction(a)
        help_menu = bar.addMenu("&Help")
        help_menu.addAction(w.example_action)
        help_menu.addSeparator()
        help_menu.addAction(w.about_action)
        help_menu.addAction(w.about_qt_action)
        self.fill_recent_menu()

    def update_actions(self) -> None:
        w = self.window
        blockers = w.converting.convert_blockers()
        w.convert_button.setEnabled(not blockers)
        self._enable(w.convert_action, blockers[0] if blockers else None)
        n = len(w.targets.checked())
        w.convert_button.setToolTip(tooltip(f"cannot convert: {blockers[0]}" if blockers  # may quote a file's names
                                            else f"convert to the {n} ticked target(s) (F5)"))
        bench = w.measuring.benchmark_blockers() if w.is_ready else ["the window is still starting"]
        w.benchmark_button.setEnabled(not bench)
        self._enable(w.benchmark_action, bench[0] if bench else None)
        w.benchmark_button.setToolTip(tooltip(f"cannot benchmark: {bench[0]}" if bench else
                                              f"benchmark the source and {len(w.results.artifacts())} artifact(s) (Ctrl+B)"))
        self._enable(w.cancel_action, None if w.session.jobs_running else "no job is running")
        has_chart = bool((w.last_benchmark or {}).get("results"))  # what the charts show
        no_chart = None if has_chart else "no benchmark yet: press Benchmark first"
        self._enable(w.export_png_action, no_chart)
        self._enable(w.export_csv_action, no_chart)
        self._enable(w.export_report_action, None if (w.results.artifacts() or w.last_benchmark)
                     else "nothing to report yet: convert or benchmark first")
        row = w.results.selected_row()
        self._enable(w.copy_path_action, "select a result first" if row is None else
                     None if w.results.rows[row].artifact is not None else "no artifact: the conversion failed")
        self._enable(w.copy_command_action, None if row is not None else "select a result first")

    def _enable(self, action: QAction, why_not: str | None) -> None:
        """Enable ``action``, or grey it out with why in its tool tip and status text (its own tip when enabled)."""
        action.setEnabled(why_not is None)
        tip = self._tips.get(action, "") if why_not is None else f"not available: {why_not}"
        action.setToolTip(tooltip(tip) if tip else "")   # a blocker may quote a file's names
        action.setStatusTip(visible_text(tip))

    def _on_open_triggered(self) -> None:
        w = self.window
        start = w.settings.value("dialogs/last_dir", str(Path.home()))
        path, _ = QFileDialog.getOpenFileName(w, "Open a model", start, OPEN_FILTERS)
        if path:
            w.settings.set_value("dialogs/last_dir", str(Path(path).parent))
            w.opening.open_model(path)

    def fill_recent_menu(self, files: list[str] | None = None) -> None:
        w = self.window
        w.recent_menu.clear()
        files = w.settings.recent_files() if files is None else files
        for i, f in enumerate(files):
            name = visible_text(Path(f).name).replace("&", "&&")  # a file's "&" is not a shortcut
            action = w.recent_menu.addAction(f"&{i + 1} {name}", lambda f=f: w.opening.open_model(f))
            action.setToolTip(tooltip(f))
            action.setStatusTip(visible_text(f))
        w.recent_menu.setEnabled(bool(files))
        if files:
            w.recent_menu.addSeparator()
            w.recent_menu.addAction("Clear Recent Files", self._on_clear_recent_triggered)

    def _on_clear_recent_triggered(self) -> None:
        self.window.settings.clear_recent_files()
        self.fill_recent_menu([])

    def about_text(self) -> str:
        import PySide6
        from PySide6.QtCore import qVersion

        from app.artifacts.versions import tool_versions

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
        self.window.show_message(QMessageBox.Icon.Information, "About Model Deployment Studio", self.about_text())

    def _on_clear_results_triggered(self) -> None:
        self.window.session.clear_outcomes()
        self.update_actions()

    def _on_focus_charts_toggled(self, on: bool) -> None:
        self.window.charts_focus.set(on)

    def _on_graph_window_toggled(self, on: bool) -> None:
        self.window.graph_window.set(on)

    def on_graph_window_changed(self, detached: bool) -> None:
        self.window.graph_window_action.setChecked(detached)
        if detached:
            self.window.graph_tab.ensure_graph()
