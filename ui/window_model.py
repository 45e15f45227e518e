"""Opening a model (dropped, chosen or recent), inspecting it in a child process, and
asking before a pickle is trusted.

A part of :class:`ui.main_window.MainWindow` (which keeps the widgets, the signals and the wiring).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from ui.workers import CANCELLED, DONE, FAILED, BackgroundJob

DATA_SUFFIXES = (".txt", ".jsonl", ".npz", ".npy")


def is_data(path: Path) -> bool:
    """A dropped folder (or, once a model is loaded, a sentence/array file) is a data set, not a model."""
    return path.is_dir() or path.suffix.lower() in DATA_SUFFIXES


class ModelLoading:
    """Opening a model (dropped, chosen or recent), inspecting it in a child process, and"""

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

    def open_model(self, path: str | Path, *, allow_pickle: bool = False, trusted_globals: tuple[str, ...] = ()) -> bool:
        """Inspect ``path`` in the background; False (with a message) when it is refused at once."""
        from app.model.loaded import MODEL_SUFFIXES

        path = Path(path)
        if self.session.jobs_running or (self.bench is not None and self.bench.state not in (DONE, FAILED, CANCELLED)):
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
        if self.session.open(path, allow_pickle=allow_pickle, trusted_globals=trusted_globals):
            self._restore_arch(path)
        self._inspect()
        self._fill_recent_menu(self.settings.add_recent_file(path))
        return True

    def _on_model_forgotten(self) -> None:
        self.model.clear()  # the session has dropped the results and jobs; the table and jobs list have heard
        if self.latency_chart is not None:
            self.latency_chart.set_rows([])
            self.batch_chart.set_rows([])

    def _restore_arch(self, path: Path) -> None:
        remembered = self.settings.value("arch/by_file", {}).get(str(path.resolve()))
        if remembered:
            self.model.set_arch(remembered.get("arch"), remembered.get("kwargs", ""))

    def _inspect(self, typed=None) -> None:
        """Read the model in a child; ``typed``: the signature the user typed, to run it on (its outputs
        are then known, and an error is that of these shapes)."""
        from dataclasses import replace

        from app.errors import BadInput
        from ui.workers import inspection_job

        try:
            kwargs = self.model.arch_kwargs()
        except BadInput as e:
            self._show_message(QMessageBox.Icon.Warning, "Architecture arguments", str(e))
            return
        source = self.session.source(arch=self.model.arch(), arch_kwargs=kwargs)
        probe = None
        if typed is not None:
            source = replace(source, inputs=tuple(typed.inputs), dynamic=tuple(typed.dynamic))
            probe = [s.describe() for s in typed.inputs]
            self.statusBar().showMessage(f"Running {self.model_path.name} on {', '.join(probe)}…")
        else:
            self.model.show_loading(self.model_path)
            self.statusBar().showMessage(f"Reading {self.model_path.name}…")
        self.setWindowTitle(f"{self.model_path.name} — Model Deployment Studio")
        job = inspection_job(source, self)
        job.probe = probe
        if probe is None:
            job.succeeded.connect(self._on_model_inspected)
        else:
            job.succeeded.connect(lambda summary: self._on_model_inspected(dict(summary, probed_with=probe,
                                                                                inputs_given=True)))
        job.logged.connect(lambda line: self.log.add(f"loading {source.path.name}: {line}"))
        job.failed.connect(lambda state, message: self._on_model_inspection_failed(job, state, message))
        self.inspection = job
        job.start()
        self._update_actions()

    def _on_open_example_triggered(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        folder = QFileDialog.getExistingDirectory(self, "A folder for the example (new or empty)",
                                                  str(Path.home()))
        if folder:
            self.open_example(Path(folder))

    def open_example(self, folder: Path):
        """Write the digits example into ``folder`` (in a child) and load it as a user would have it: the
        state dict with its architecture file, the 8x8 input shape (batch dynamic), the held-out digits
        as the data folder and ``folder/out`` as the output folder."""
        from app.session import JobKey
        from ui.workers import example_job

        self.log.add(f"writing the example into {folder}…")
        return self._start_background(JobKey("example", folder.name), f"Example · {folder.name}",
                                      example_job(folder, self), self._on_example_written, self._on_example_failed)

    def _on_example_written(self, key, paths: dict) -> None:
        self.background_jobs.pop(key, None)
        self.session.job_ended(key, DONE, paths["folder"])  # (a running job would keep the model from opening)
        self.model.set_arch(paths["arch"])
        self.options.calibration.setText(paths["data"])
        self.options.out_dir.setText(str(Path(paths["folder"]) / "out"))
        self.log.add(f"example in {paths['folder']}: {Path(paths['readme']).name} says what is there"
                     + (f" (its CNN's top-1 on the held-out digits: {paths['accuracy']})" if paths.get("accuracy") else ""))

        def set_shape(summary: dict) -> None:  # once, for the example's model only
            self.model_loaded.disconnect(set_shape)
            if Path(summary["path"]) == Path(paths["model"]) and [s["name"] for s in summary.get("inputs", [])] == ["x"]:
                self.model.inputs.restore({"x": ("1x1x8x8", "float32", [(0, "batch")])})

        self.model_loaded.connect(set_shape)
        self.open_model(paths["model"])

    def _on_example_failed(self, key, state: str, message: str) -> None:
        self.background_jobs.pop(key, None)
        self.session.job_ended(key, state, message)
        self.log.add(f"the example: {state}: {message}")
        if state != CANCELLED:
            self._show_message(QMessageBox.Icon.Warning, "Cannot write the example", message)

    def _on_reload_requested(self) -> None:
        if self.model_path is not None:
            self._inspect()

    def _probe_typed_shapes_soon(self) -> None:
        """After an edit of the inputs: once every shape is typed for a model whose shapes could not be
        guessed, run it on them (in a child, 400 ms after the last keystroke) to learn its outputs."""
        from PySide6.QtCore import QTimer

        if getattr(self, "_probe_timer", None) is None:
            self._probe_timer = QTimer(self)
            self._probe_timer.setSingleShot(True)
            self._probe_timer.setInterval(400)
            self._probe_timer.timeout.connect(self._probe_typed_shapes)
        if self.model.shapes_to_probe() is not None:
            self._probe_timer.start()

    def _probe_typed_shapes(self) -> None:
        typed = self.model.shapes_to_probe()
        if typed is None or self.model_path is None:
            return
        if self.inspection is not None:  # one at a time: try again when this one is done
            self._probe_timer.start()
            return
        self._inspect(typed=typed)

    def _on_model_inspected(self, summary: dict) -> None:
        self.inspection = None
        self.session.loaded(summary)

    def _on_model_loaded(self, summary: dict) -> None:
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
        if getattr(job, "probe", None) is not None:  # the typed shapes do not fit: say so under the table
            if state != CANCELLED:
                self.model.set_shape_error(job.probe, message)
                self.log.add(f"{self.model_path.name} on {', '.join(job.probe)}: {message}")
                self.statusBar().clearMessage()
            self._update_actions()
            return
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
        self.session.failed(message)

    def _ask_to_trust_pickle(self, needed: list[str]) -> QMessageBox:
        """The pickle dialog: list every class and function the file would use (each name from outside
        torch.nn on a line of its own); its one "Trust these" button approves them all."""
        from app.safety.unpickling import TORCH_NN_EXCLUDED, TORCH_NN_PREFIX

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
                  "and give the architecture.)", "", f"Trust these {len(needed)} and load it?"]
        box = self._ask("Trust this file?", "\n".join(lines),
                        lambda: self.open_model(self.model_path, allow_pickle=True, trusted_globals=tuple(others)))
        box.button(QMessageBox.StandardButton.Yes).setText("Trust these")  # one button trusts every name listed
        box.button(QMessageBox.StandardButton.No).setText("Don't load")
        return box
