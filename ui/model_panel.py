"""The loaded model: format, size, parameters, its inputs (editable) and outputs, the architecture.

The panel shows the summary an inspection returned (``LoadedModel.summary()``) and lets the user
complete it: shapes a model does not know, dynamic axes per dimension, and for a state dict the
architecture that builds the network. It never loads anything itself; it asks by signal, and it
observes the session: a loaded model is shown, a forgotten one cleared, a failed one marked.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QHBoxLayout, QLineEdit, QPushButton, QVBoxLayout, QWidget

from app.session import Session
from ui.inputs_editor import InputsEditor, Signature
from ui.wording import window_words
from ui.plain_text import PlainLabel, tooltip


def human_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


DROP_HINT = "Drop a model file anywhere on the window, or use File ▸ Open (Ctrl+O)."


class ModelPanel(QGroupBox):
    """Summary of the loaded model, its editable signature and (for state dicts) the architecture."""

    reload_requested = Signal()
    example_requested = Signal()
    changed = Signal()

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Model", parent)
        self.session = session
        session.events.model_forgotten.connect(self.clear)
        session.events.model_loaded.connect(self.show_model)
        session.events.model_failed.connect(self._on_model_failed)
        self.summary: dict | None = None
        # the typed shapes the model failed on, and its one-line error (shown under the table)
        self.shape_error: tuple[list[str], str] | None = None
        self.setAccessibleName("Model")
        layout = QVBoxLayout(self)
        # the formats are the artifact kinds' (app.model.kinds), set once the warm-up has read them
        # (show_supported): the first paint imports none of the runtimes that declare them
        self.hint = PlainLabel(f"{DROP_HINT}\nPyTorch .pt/.pth/.bin/.ckpt, .safetensors, torch.export .pt2, ONNX .onnx")
        self.hint.setWordWrap(True)
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setMinimumHeight(60)
        layout.addWidget(self.hint)
        # two lines: the left column stays narrow enough for the results table beside it
        self.example_button = QPushButton("New here? Open an example\n(a small CNN and real data, nothing to download)")
        self.example_button.setAccessibleName("Open an example")
        self.example_button.setToolTip("write a CNN trained on handwritten digits, its architecture file and a folder "
                                       "of held-out digits into a folder you choose, and load it")
        self.example_button.clicked.connect(self.example_requested)
        layout.addWidget(self.example_button, 0, Qt.AlignmentFlag.AlignHCenter)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.file_label = PlainLabel("—")
        self.file_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.format_label = PlainLabel("—")
        self.params_label = PlainLabel("—")
        for w, name in ((self.file_label, "Model file"), (self.format_label, "Model format"),
                        (self.params_label, "Parameters and size")):
            w.setAccessibleName(name)
        form.addRow("File:", self.file_label)
        form.addRow("Format:", self.format_label)
        form.addRow("Parameters:", self.params_label)

        arch_row = QHBoxLayout()
        self.arch_edit = QLineEdit()
        self.arch_edit.setPlaceholderText("file.py:Factory or pkg.module:Factory")
        self.arch_edit.setToolTip("the class or function that builds the network (needed for a state dict)")
        self.arch_edit.setAccessibleName("Architecture")
        self.kwargs_edit = QLineEdit()
        self.kwargs_edit.setPlaceholderText('kwargs JSON, e.g. {"num_classes": 10}')
        self.kwargs_edit.setToolTip("keyword arguments for the architecture, as a JSON object")
        self.kwargs_edit.setAccessibleName("Architecture keyword arguments")
        self.load_button = QPushButton("Load")
        self.load_button.setToolTip("load the model again with this architecture")
        self.load_button.setAccessibleName("Load with architecture")
        arch_row.addWidget(self.arch_edit, 2)
        arch_row.addWidget(self.kwargs_edit, 1)
        arch_row.addWidget(self.load_button)
        form.addRow("Architecture:", arch_row)
        layout.addLayout(form)

        inputs_note = PlainLabel("Inputs (shapes editable where the model does not fix them; "
                                 "press an axis to make it dynamic):")
        inputs_note.setWordWrap(True)   # wraps rather than widening the left column
        layout.addWidget(inputs_note)
        self.inputs = InputsEditor()
        layout.addWidget(self.inputs)
        self.outputs_label = PlainLabel("Outputs: —")
        self.outputs_label.setWordWrap(True)
        self.outputs_label.setAccessibleName("Model outputs")
        layout.addWidget(self.outputs_label)
        self.warnings_label = PlainLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setAccessibleName("Model warnings")
        self.warnings_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.warnings_label)

        self.load_button.clicked.connect(self.reload_requested)
        self.arch_edit.returnPressed.connect(self.reload_requested)
        self.kwargs_edit.returnPressed.connect(self.reload_requested)
        self.inputs.changed.connect(self.changed)
        self.inputs.changed.connect(self._show_notes)
        self._set_details_visible(False)

    # -- showing
    def show_supported(self, formats: str) -> None:
        """The hint's second line: every file format the loaders read (``app.loaders.kinds.supported``)."""
        self.hint.setText(f"{DROP_HINT}\n{formats}")

    def _set_details_visible(self, on: bool) -> None:
        self.hint.setVisible(not on)
        self.example_button.setVisible(not on)
        self.inputs.setVisible(on)
        self.outputs_label.setVisible(on)

    def show_loading(self, path: Path) -> None:
        self.file_label.setText(Path(path).name)
        self.file_label.setToolTip(tooltip(str(path)))
        self.format_label.setText("reading…")

    def show_model(self, summary: dict) -> None:
        typed = self._typed_rows() if self.summary else {}
        self.summary = summary
        self.shape_error = None
        fmt = summary["format"]
        self.file_label.setText(Path(summary["path"]).name)
        self.file_label.setToolTip(tooltip(summary["path"]))
        extra = [f"opset {summary['opset']}"] if summary.get("opset") else []
        self.format_label.setText(fmt + (f" ({', '.join(extra)})" if extra else ""))
        params = summary.get("parameters") or 0
        self.params_label.setText(f"{params:,} · {human_size(int(summary.get('size_bytes') or 0))} on disk")
        editable = fmt in ("state-dict", "pickle", "torchscript") or summary.get("inputs_guessed") \
            or any(not s.get("shape") for s in summary.get("inputs", []))
        self.inputs.set_inputs(summary.get("inputs", []), editable=bool(editable))
        if editable and typed and list(typed) == [s["name"] for s in summary.get("inputs", [])] \
                and not summary.get("inputs_given"):
            self.inputs.restore(typed)  # Load again: what the user typed for the same inputs stays
        outs = [f"{o['name']}: {o.get('dtype', '?')}[{'x'.join(str(d) for d in o.get('shape') or []) or '?'}]"
                for o in summary.get("outputs", [])]
        self.outputs_label.setText("Outputs: " + (", ".join(outs) or "— (known after loading the architecture)"))
        self._show_notes()
        self._set_details_visible(True)
        self.changed.emit()

    def _on_model_failed(self, _message: str) -> None:
        self.format_label.setText("not loaded")

    def _typed_rows(self) -> dict[str, tuple[str, str, list[tuple[int, str]]]]:
        """What the table holds now, by input name, when the user typed it (else nothing)."""
        if not (self.inputs.signature().edited or (self.summary or {}).get("inputs_given")):
            return {}
        return {self.inputs.toggles(r).name: (self.inputs.shape_edit(r).text(), self.inputs.dtype_box(r).currentText(),
                                              self.inputs.toggles(r).dynamic_axes())
                for r in range(self.inputs.rowCount())}

    def shapes_to_probe(self) -> Signature | None:
        """The typed signature to run the model on, when the model runs in PyTorch, its outputs are
        unknown (its input shapes could not be guessed) and every input now has a valid shape that
        was not tried yet; else None."""
        summary = self.summary or {}
        if (summary.get("format") not in ("state-dict", "pickle", "torchscript") or summary.get("outputs")
                or self.needs_architecture):
            return None
        sig = self.inputs.signature()
        if sig.problems or not sig.inputs:
            return None
        key = [s.describe() for s in sig.inputs]
        if key == summary.get("probed_with") or (self.shape_error and self.shape_error[0] == key):
            return None
        return sig

    def set_shape_error(self, shapes: list[str], message: str) -> None:
        """The model did not run on the typed ``shapes``: its error goes under the table and blocks Convert."""
        self.shape_error = (list(shapes), message)
        self._show_notes()
        self.changed.emit()

    def _current_shape_error(self) -> str | None:
        if not self.shape_error:
            return None
        sig = self.inputs.signature()
        return self.shape_error[1] if [s.describe() for s in sig.inputs] == self.shape_error[0] else None

    def _show_notes(self) -> None:
        """The model's warnings; the guessed-shapes one goes once the user has set the shapes."""
        summary = self.summary or {}
        notes = list(summary.get("warnings", []))
        error = self._current_shape_error()
        if error:
            notes.insert(0, error)
        elif self.inputs.signature().edited and not summary.get("outputs"):
            notes = [w for w in notes if not w.startswith("could not guess the input shapes")]
        if summary.get("inputs_guessed"):
            if self.inputs.signature().edited:
                notes = [w for w in notes if "are a guess" not in w]
            elif not any("guess" in w for w in notes):
                notes.insert(0, "the input shapes are a guess: check them before converting")
        self.warnings_label.setText("\n".join(f"⚠ {window_words(w)}" for w in notes))

    def clear(self) -> None:
        self.summary = None
        for w in (self.file_label, self.format_label, self.params_label):
            w.setText("—")
        self.outputs_label.setText("Outputs: —")
        self.warnings_label.setText("")
        self.inputs.set_inputs([], editable=False)
        self._set_details_visible(False)
        self.changed.emit()

    # -- reading
    @property
    def source_format(self) -> str | None:
        return self.summary["format"] if self.summary else None

    @property
    def needs_architecture(self) -> bool:
        """A state dict whose network is not built yet (once it is, its inputs are known by name)."""
        return bool(self.summary) and self.summary["format"] == "state-dict" and not self.summary.get("inputs")

    def arch(self) -> str | None:
        return self.arch_edit.text().strip() or None

    def arch_kwargs(self) -> dict:
        """The kwargs JSON as a dict (raises ``BadInput`` with a readable message)."""
        from app.safety.arch import parse_arch_kwargs

        return parse_arch_kwargs(self.kwargs_edit.text().strip() or None)

    def inputs_must_be_given(self) -> bool:
        """Whether a job must carry the inputs as flags: the user edited them, or the model does not
        know them (guessed from its first layer, or shapes missing)."""
        summary = self.summary or {}
        return (self.signature().edited or bool(summary.get("inputs_guessed")) or bool(summary.get("inputs_given"))
                or any(not s.get("shape") for s in summary.get("inputs", [])))

    def signature(self) -> Signature:
        sig = self.inputs.signature() if self.summary else Signature(problems=["load a model first"])
        if self.needs_architecture:
            sig.problems.insert(0, "a state dict needs its architecture: fill in Architecture and press Load")
        error = self._current_shape_error() if self.summary else None
        if error:
            sig.problems.insert(0, f"{error}; change the shapes")
        return sig

    def set_arch(self, arch: str | None, kwargs_json: str = "") -> None:
        self.arch_edit.setText(arch or "")
        self.kwargs_edit.setText(kwargs_json)
