"""Opening a model (dropped, chosen or recent), inspecting it in a child process, and
asking before a pickle is trusted; the model panel and the target picker show the loaded model
themselves (they observe the session).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

from app.session import JobKey
from ui.plain_text import one_line
from ui.window_data import DataChoice
from ui.workers import CANCELLED, DONE, BackgroundJob

INSPECTION = JobKey("inspect")  # reading the model: a worker of the window, not a row of the jobs list
DATA_SUFFIXES = (".txt", ".jsonl", ".npz", ".npy")


@dataclass(frozen=True)
class _Opening:
    """A file being opened and what it is read with; it becomes the session's model once it is read."""

    path: Path
    allow_pickle: bool
    trusted_globals: tuple[str, ...]
    arch: str | None
    kwargs: str = ""


def is_data(path: Path) -> bool:
    """A dropped folder (or, once a model is loaded, a sentence/array file) is a data set, not a model."""
    return path.is_dir() or path.suffix.lower() in DATA_SUFFIXES


class ModelOpening:
    """Opening a model (dropped, chosen or recent), inspecting it in a child process, and asking
    before a pickle is trusted; what a drop on the window means (a model, or a data set)."""

    def __init__(self, window) -> None:
        self.window = window
        self._probe_timer = None  # runs the model on typed shapes, 400 ms after the last keystroke
        self._opening: BackgroundJob | None = None  # the file being read, not yet the window's model
        window.model.reload_requested.connect(self._on_reload_requested)
        window.model.example_requested.connect(self._on_open_example_triggered)
        window.example_action.triggered.connect(self._on_open_example_triggered)
        window.model.changed.connect(self._probe_typed_shapes_soon)
        window.session.events.model_loaded.connect(self._on_model_loaded)  # after the model panel and picker
        self.data = DataChoice(window)  # (after the model panel too: it checks data against the inputs shown)

    def refuse_drops(self) -> None:
        """Make a drop anywhere on the window open the model, even over a line edit (which would take
        the file's URL as text) or the graph view (which would navigate to it): no child accepts
        drops, so Qt hands every drop to the window. Called again when widgets are added.

        (Not an event filter: a Python filter on the application or on the QWindow also sees
        events of Qt's internal objects while they are destroyed, and crashed QtWebEngine and
        closing windows.)
        """
        for child in self.window.findChildren(QWidget):
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

    def on_drag_entered(self, event) -> None:
        if self._dropped_file(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def on_dropped(self, event) -> None:
        path = self._dropped_file(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.is_dir() or (is_data(path) and self.window.model_path is not None):
            self.set_data(path)
        else:
            self.open_model(path)

    def set_data(self, path: str | Path):
        """Use ``path`` as the data set (calibration + evaluation) of the next conversions once a check in a
        worker thread finds that the data loader accepts it for this model (the returned job); a refusal is
        one line in the window and the data stays as it was."""
        return self.data.use(path)

    def open_model(self, path: str | Path, *, allow_pickle: bool = False, trusted_globals: tuple[str, ...] = (),
                   arch: str | None = None) -> bool:
        """Read ``path`` in the background and make it the window's model once it is read; False (with a
        message) when it is refused at once. Nothing the window shows changes before the file is read:
        a file that cannot be read leaves the model, its results, benchmark and diagnosis as they were,
        and never enters Open Recent. With jobs running the user is asked first (cancel them, or keep
        working). ``arch``: the network of a state dict, when the file has none remembered (another
        file's architecture is never carried over to it)."""
        from app.loaders.kinds import model_suffixes, supported

        w = self.window
        path = Path(path)
        if w.session.jobs_running:
            w.ask_to_stop_jobs(f"open {path.name}", lambda: self.open_model(
                path, allow_pickle=allow_pickle, trusted_globals=trusted_globals, arch=arch))
            return False
        if path.suffix.lower() not in model_suffixes():
            w.show_message(QMessageBox.Icon.Warning, "Not a model file",
                           f"{path.name} is not a model file Model Deployment Studio reads.\n\nSupported: "
                           f"{supported()}.")
            w.log.add(f"refused {path}: not a supported model file")
            return False
        if not path.is_file():
            w.show_message(QMessageBox.Icon.Warning, "File not found", f"{path} does not exist.")
            return False
        self._read(_Opening(path, allow_pickle, tuple(trusted_globals), *self._arch_for(path, arch)))
        return True

    def _arch_for(self, path: Path, given: str | None) -> tuple[str | None, str]:
        """The architecture (and its kwargs JSON) to read ``path`` with: the field's for the model on
        screen, else the one remembered for that file, else ``given``."""
        w = self.window
        if w.model_path is not None and path.resolve() == w.model_path.resolve():
            return w.model.arch(), w.model.kwargs_edit.text()
        remembered = w.settings.value("arch/by_file", {}).get(str(path.resolve()))
        if remembered and remembered.get("arch"):
            return remembered.get("arch"), remembered.get("kwargs", "")
        return given, ""

    def _read(self, opening: "_Opening") -> None:
        """Read ``opening.path`` in a child; the window's model, results and recent files change only
        when it is read (:meth:`_on_opened`)."""
        from app.errors import BadInput
        from app.request import ModelSource
        from app.safety.arch import parse_arch_kwargs
        from ui.workers import inspection_job

        w = self.window
        try:
            kwargs = parse_arch_kwargs(opening.kwargs.strip() or None)
        except BadInput as e:
            w.show_message(QMessageBox.Icon.Warning, "Architecture arguments", str(e))
            return
        source = ModelSource(opening.path, arch=opening.arch, arch_kwargs=tuple(kwargs.items()),
                             allow_pickle=opening.allow_pickle, trusted_globals=opening.trusted_globals)
        earlier = w.running.get(INSPECTION)
        if earlier is not None:  # the newest choice wins: the file read before it is dropped
            earlier.cancel()
        w.statusBar().showMessage(f"Reading {one_line(opening.path.name)}…")
        job = inspection_job(source, w)
        job.probe, job.opening = None, opening
        self._opening = job
        job.logged.connect(lambda line: w.log.add(f"loading {opening.path.name}: {line}"))
        w.running.start(INSPECTION, job, self._on_opened, self._on_open_failed)
        w.menus.update_actions()

    def _on_opened(self, job: BackgroundJob, summary: dict) -> None:
        """The file is read: now it replaces the window's model (its results are forgotten when it is
        another file) and goes into Open Recent."""
        if job is not self._opening:
            return
        self._opening = None
        w, opening = self.window, job.opening
        w.session.open(opening.path, allow_pickle=opening.allow_pickle, trusted_globals=opening.trusted_globals)
        w.model.set_arch(opening.arch, opening.kwargs)
        w.setWindowTitle(f"{one_line(opening.path.name)} — Model Deployment Studio")
        w.menus.fill_recent_menu(w.settings.add_recent_file(opening.path))
        w.session.loaded(summary)

    def _on_open_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        """The file cannot be read: say why; what the window showed stays as it was."""
        from app.errors import UnsafeModelError

        if job is not self._opening:
            return
        self._opening = None
        w, opening = self.window, job.opening
        w.menus.update_actions()
        w.statusBar().clearMessage()
        if state == CANCELLED:
            return
        w.log.add(f"could not load {opening.path}: {message}")
        needed = list((job.error.details or {}).get("globals", [])) if isinstance(job.error, UnsafeModelError) else []
        if needed and not opening.allow_pickle:
            self._ask_to_trust_pickle(opening, needed)
            return
        kept = f"\n\n{w.model_path.name} stays open, with its results." if w.model_path is not None else ""
        w.show_message(QMessageBox.Icon.Warning, "Cannot load the model", message + kept)

    def _inspect(self, typed=None) -> None:
        """Read the model in a child; ``typed``: the signature the user typed, to run it on (its outputs
        are then known, and an error is that of these shapes)."""
        from dataclasses import replace

        from app.errors import BadInput
        from ui.workers import inspection_job

        w = self.window
        try:
            kwargs = w.model.arch_kwargs()
        except BadInput as e:
            w.show_message(QMessageBox.Icon.Warning, "Architecture arguments", str(e))
            return
        source = w.session.source(arch=w.model.arch(), arch_kwargs=kwargs)
        probe = None
        if typed is not None:
            source = replace(source, inputs=tuple(typed.inputs), dynamic=tuple(typed.dynamic))
            probe = [s.describe() for s in typed.inputs]
            w.statusBar().showMessage(f"Running {w.model_path.name} on {', '.join(probe)}…")
        else:
            w.model.show_loading(w.model_path)
            w.statusBar().showMessage(f"Reading {w.model_path.name}…")
        w.setWindowTitle(f"{one_line(w.model_path.name)} — Model Deployment Studio")
        job = inspection_job(source, w)
        job.probe = probe
        job.logged.connect(lambda line: w.log.add(f"loading {source.path.name}: {line}"))
        w.running.start(INSPECTION, job, self._on_model_inspected, self._on_model_inspection_failed)
        w.menus.update_actions()

    def _on_open_example_triggered(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        if self.window.session.jobs_running:  # the example replaces the model: its jobs would be lost
            self.window.ask_to_stop_jobs("open the example", self._on_open_example_triggered)
            return
        folder = QFileDialog.getExistingDirectory(self.window, "A folder for the example (new or empty)",
                                                  str(Path.home()))
        if folder:
            self.open_example(Path(folder))

    def open_example(self, folder: Path):
        """Write the digits example into ``folder`` (in a child) and load it as a user would have it: the
        state dict with its architecture file, the 8x8 input shape (batch dynamic), the held-out digits
        as the data folder and ``folder/out`` as the output folder."""
        from ui.workers import example_job

        w = self.window
        w.log.add(f"writing the example into {folder}…")
        return w.start_job(JobKey("example", folder.name), f"Example · {folder.name}",
                           example_job(folder, w), self._on_example_written, self._on_example_failed)

    def _on_example_written(self, job: BackgroundJob, paths: dict) -> None:
        w = self.window
        w.session.job_ended(job.key, DONE, paths["folder"])  # (a running job would keep the model from opening)
        w.log.add(f"example in {paths['folder']}: {Path(paths['readme']).name} says what is there"
                  + (f" (its CNN's top-1 on the held-out digits: {paths['accuracy']})" if paths.get("accuracy") else ""))

        def set_up(summary: dict) -> None:  # once, for the example's model only, once it is read
            w.session.events.model_loaded.disconnect(set_up)
            if Path(summary["path"]) != Path(paths["model"]):
                return
            w.options.calibration.setText(paths["data"])
            w.options.out_dir.setText(str(Path(paths["folder"]) / "out"))
            if [s["name"] for s in summary.get("inputs", [])] == ["x"]:
                w.model.inputs.restore({"x": ("1x1x8x8", "float32", [(0, "batch")])})

        w.session.events.model_loaded.connect(set_up)
        self.open_model(paths["model"], arch=paths["arch"])

    def _on_example_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        w = self.window
        w.session.job_ended(job.key, state, message)
        w.log.add(f"the example: {state}: {message}")
        if state != CANCELLED:
            w.show_message(QMessageBox.Icon.Warning, "Cannot write the example", message)

    def _on_reload_requested(self) -> None:
        if self.window.model_path is not None:
            self._inspect()

    def _probe_typed_shapes_soon(self) -> None:
        """After an edit of the inputs: once every shape is typed for a model whose shapes could not be
        guessed, run it on them (in a child, 400 ms after the last keystroke) to learn its outputs."""
        from PySide6.QtCore import QTimer

        if self._probe_timer is None:
            self._probe_timer = QTimer(self.window)
            self._probe_timer.setSingleShot(True)
            self._probe_timer.setInterval(400)
            self._probe_timer.timeout.connect(self._probe_typed_shapes)
        if self.window.model.shapes_to_probe() is not None:
            self._probe_timer.start()

    def _probe_typed_shapes(self) -> None:
        w = self.window
        typed = w.model.shapes_to_probe()
        if typed is None or w.model_path is None:
            return
        if INSPECTION in w.running:  # one at a time: try again when this one is done
            self._probe_timer.start()
            return
        self._inspect(typed=typed)

    def _on_model_inspected(self, job: BackgroundJob, summary: dict) -> None:
        if job.probe is not None:  # run on the typed shapes: its outputs are known, for these inputs
            summary = dict(summary, probed_with=job.probe, inputs_given=True)
        self.window.session.loaded(summary)

    def _on_model_loaded(self, summary: dict) -> None:
        """After the model panel and the target picker have shown it (they observe the session)."""
        w = self.window
        self.refuse_drops()  # the inputs table has new line edits
        if w.model.arch():
            by_file = w.settings.value("arch/by_file", {})
            by_file[str(Path(summary["path"]).resolve())] = {"arch": w.model.arch(),
                                                             "kwargs": w.model.kwargs_edit.text()}
            w.settings.set_value("arch/by_file", dict(list(by_file.items())[-50:]))
        w.log.add(f"loaded {summary['path']}: {summary['format']}, {summary.get('parameters') or 0:,} parameters")
        for warning in summary.get("warnings", []):
            w.log.add(f"warning: {warning}")
        w.statusBar().showMessage(f"Loaded {Path(summary['path']).name} ({summary['format']})", 5000)
        w.menus.update_actions()

    def _on_model_inspection_failed(self, job: BackgroundJob, state: str, message: str) -> None:
        from app.errors import UnsafeModelError

        w = self.window
        if job.probe is not None:  # the typed shapes do not fit: say so under the table
            if state != CANCELLED:
                w.model.set_shape_error(job.probe, message)
                w.log.add(f"{w.model_path.name} on {', '.join(job.probe)}: {message}")
                w.statusBar().clearMessage()
            w.menus.update_actions()
            return
        w.menus.update_actions()
        if state == CANCELLED:
            w.model.format_label.setText("not loaded")
            return
        w.log.add(f"could not load {w.model_path}: {message}")
        needed = list((job.error.details or {}).get("globals", [])) if isinstance(job.error, UnsafeModelError) else []
        if needed and not w.allow_pickle:
            self._ask_to_trust_pickle(_Opening(w.model_path, False, (), w.model.arch(), w.model.kwargs_edit.text()),
                                      needed)
        else:
            w.show_message(QMessageBox.Icon.Warning, "Cannot load the model", message)
        w.session.failed(message)

    def _ask_to_trust_pickle(self, opening: "_Opening", needed: list[str]) -> QMessageBox:
        """The pickle dialog: list every class and function the file would use (each name from outside
        torch.nn on a line of its own); its one "Trust these" button approves them all."""
        from dataclasses import replace

        from app.safety.unpickling import TORCH_NN_EXCLUDED, TORCH_NN_PREFIX

        w = self.window
        torch_nn = [n for n in needed if n.startswith(TORCH_NN_PREFIX) and not n.startswith(TORCH_NN_EXCLUDED)]
        others = [n for n in needed if n not in torch_nn]
        # one name a line, each as stored: a name cannot add lines or reorder what is read (one_line),
        # and the box is plain text, so no tag or comment in a name hides the next one (plain_box)
        lines = [f"{one_line(opening.path.name)} is a whole pickled Python object. Loading it creates and calls "
                 "these classes and functions (checked by PyTorch's weights-only unpickler; nothing else is "
                 "imported):", ""]
        if torch_nn:
            lines.append(f"PyTorch layers (torch.nn): {', '.join(one_line(n.rpartition('.')[2]) for n in torch_nn)}")
        if others:
            lines.append("Code from elsewhere, trusted by name:")
            lines += [f"    {one_line(n)}" for n in others]
        lines += ["", "Trust them only if you trust where the file came from. (Safer: save model.state_dict() "
                  "and give the architecture.)", "", f"Trust these {len(needed)} and load it?"]
        box = w.ask("Trust this file?", "\n".join(lines),
                    lambda: self._read(replace(opening, allow_pickle=True, trusted_globals=tuple(others))),
                    yes="Trust these", no="Don't load")  # one button trusts every name listed
        return box
