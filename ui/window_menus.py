"""The window's actions and menus (File, Edit, View, Help), what enables them, recent files,
and the message boxes.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QApplication, QFileDialog, QMessageBox


OPEN_FILTERS = ";;".join([
    "Models (*.pt *.pth *.bin *.ckpt *.pt2 *.safetensors *.onnx *.engine *.plan)",
    "PyTorch (*.pt *.pth *.bin *.ckpt)", "torch.export (*.pt2)", "safetensors (*.safetensors)",
    "ONNX (*.onnx)", "TensorRT engines (*.engine *.plan)", "All files (*)"])


class MenusAndActions:
    """The window's actions and menus (File, Edit, View, Help), what enables them, recent files,"""

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
        self.example_action = self._action("Open an &Example…", self._on_open_example_triggered,
                                           tip="write a small real example (a CNN trained on handwritten digits and "
                                               "a folder of held-out digits) into a folder and load it")
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
        help_menu.addAction(self.example_action)
        help_menu.addSeparator()
        help_menu.addAction(self.about_action)
        help_menu.addAction(self.about_qt_action)
        self._fill_recent_menu()

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
        self.cancel_action.setEnabled(self.session.jobs_running)
        has_chart = bool(self.latency_chart is not None and self.latency_chart.rows)
        self.export_png_action.setEnabled(has_chart)
        self.export_csv_action.setEnabled(has_chart)
        self.export_report_action.setEnabled(bool(self.results.artifacts() or self.last_benchmark))
        selected = self._selected_row() is not None
        self.copy_path_action.setEnabled(selected)
        self.copy_command_action.setEnabled(selected)

    def _last_dir(self, name: str) -> str:
        base = self.model_path.parent if self.model_path else Path.home()
        return str(base / name)

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
        self._show_message(QMessageBox.Icon.Information, "About Model Deployment Studio", self.about_text())

    def _show_message(self, icon: QMessageBox.Icon, title: str, text: str) -> QMessageBox:
        """A window-modal message that does not block the event loop (jobs keep reporting)."""
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAccessibleName(title)
        self.dialog = box
        box.finished.connect(lambda _r: self._on_dialog_finished(box))
        box.open()
        return box

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

    def _on_clear_results_triggered(self) -> None:
        self.session.clear_outcomes()
        self._update_actions()
        self._refresh_graph()

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
