"""Targets × precisions to build, and the options that shape them.

Each check box is one job. A choice this machine or this model cannot build is disabled and its
tooltip says why, in the engine's own words (``Converter.check`` / ``available()``), so the window
and ``python main.py convert`` refuse the same things for the same reasons.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLineEdit, QSpinBox, QToolButton, QWidget)

from app.request import PRECISIONS
from app.session import Session
from ui.plain_text import PlainLabel, tooltip


class TargetPicker(QGroupBox):
    """A grid: one row per target, one check box per precision; a loaded model (the session's event)
    enables what can be built from its format."""

    selection_changed = Signal()
    ticked_by_user = Signal()        # a box clicked (not set by the window: format changes, restored settings)

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__("Targets", parent)
        self.session = session
        session.events.model_loaded.connect(self._on_model_loaded)
        self.setAccessibleName("Targets")
        self.choices: list = []
        self.boxes: dict[tuple[str, str], QCheckBox] = {}
        self.source_format: str | None = None
        self._grid = QGridLayout(self)
        self._grid.setHorizontalSpacing(14)
        self._placeholder = PlainLabel("Probing the targets this machine can build…")
        self._grid.addWidget(self._placeholder, 0, 0, 1, 4)

    @property
    def is_ready(self) -> bool:
        return bool(self.choices)

    def set_choices(self, choices: list) -> None:
        """Build the grid from :class:`app.targets.probe.TargetChoice` objects (once, after probing)."""
        self.choices = list(choices)
        self._placeholder.hide()
        for col, p in enumerate(PRECISIONS, start=1):
            head = PlainLabel(p.upper())
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(head, 0, col)
        for row, choice in enumerate(self.choices, start=1):
            name = PlainLabel(choice.label)
            if not choice.available:
                name.setToolTip(tooltip(choice.reason))
                name.setEnabled(False)
            self._grid.addWidget(name, row, 0)
            for col, p in enumerate(PRECISIONS, start=1):
                box = QCheckBox()
                box.setAccessibleName(f"{choice.label} {p.upper()}")
                box.toggled.connect(self.selection_changed)
                box.clicked.connect(self.ticked_by_user)
                self.boxes[(choice.name, p)] = box
                self._grid.addWidget(box, row, col, alignment=Qt.AlignmentFlag.AlignCenter)
        self._grid.setColumnStretch(0, 1)
        self.set_source_format((self.session.summary or {}).get("format", self.source_format))

    def _on_model_loaded(self, summary: dict) -> None:
        self.set_source_format(summary["format"])

    def set_source_format(self, fmt: str | None) -> None:
        """Enable what can be built from a model of this format (everything available when None)."""
        self.source_format = fmt
        for choice in self.choices:
            for p in PRECISIONS:
                box = self.boxes[(choice.name, p)]
                why = choice.reason_for(p, fmt)
                box.setEnabled(not why)
                advice = choice.advice.get(p, "")
                if why:
                    box.setChecked(False)
                    box.setToolTip(tooltip(f"unavailable: {why}"))
                    box.setAccessibleDescription(f"unavailable: {why}")
                else:
                    # what to expect on this machine's CPU/GPU, e.g. "no speed-up: FP16 on CPU in ONNX Runtime…"
                    box.setToolTip(tooltip(f"build {choice.label} at {p.upper()}" + (f"\nhere: {advice}" if advice else "")))
                    box.setAccessibleDescription(advice)
        self.selection_changed.emit()

    # -- reading and setting the choice
    def box(self, target: str, precision: str) -> QCheckBox:
        return self.boxes[(target, precision)]

    def check(self, target: str, precision: str, on: bool = True) -> None:
        self.box(target, precision).setChecked(on)

    def checked(self) -> list[tuple[str, str]]:
        """Ticked and buildable (target, precision) pairs, in grid order."""
        return [k for k, b in self.boxes.items() if b.isChecked() and b.isEnabled()]

    def reason(self, target: str, precision: str) -> str:
        return self.box(target, precision).toolTip().removeprefix("unavailable: ")

    def choice(self, target: str):
        """The :class:`app.targets.probe.TargetChoice` of ``target``."""
        return next(c for c in self.choices if c.name == target)

    def advice(self, target: str, precision: str) -> str:
        """The cell's speed expectation on this machine ("faster: …", "no speed-up: …")."""
        return self.choice(target).advice.get(precision, "")

    def set_checked_keys(self, keys: list[str]) -> None:
        """Restore ``["onnx/fp16", ...]`` (from settings), skipping what is not buildable."""
        for key in keys:
            target, _, precision = key.partition("/")
            box = self.boxes.get((target, precision))
            if box is not None and box.isEnabled():
                box.setChecked(True)

    def checked_keys(self) -> list[str]:
        return [f"{t}/{p}" for t, p in self.checked()]

    def set_only_checked(self, keys: list[str]) -> None:
        """Tick exactly ``keys`` among the buildable boxes (a model's remembered choice)."""
        wanted = set(keys)
        for (target, precision), box in self.boxes.items():
            if box.isEnabled():
                box.setChecked(f"{target}/{precision}" in wanted)


class PathEdit(QWidget):
    """A line edit with a "…" button that picks a folder."""

    def __init__(self, placeholder: str, accessible: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setAccessibleName(accessible)
        self.button = QToolButton()
        self.button.setText("…")
        self.button.setAccessibleName(f"Choose {accessible.lower()}")
        self.button.setToolTip(f"choose the {accessible.lower()}")
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.button)
        self.button.clicked.connect(self._on_browse_clicked)

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, self.edit.accessibleName(), self.edit.text())
        if folder:
            self.edit.setText(folder)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:  # noqa: N802 - Qt naming, so it reads like a Qt widget
        self.edit.setText(text)


DATA_ROWS = 3   # the options form's first rows: Data…, its note, Evaluation data…


class ConversionOptions(QGroupBox):
    """The options shared by the jobs: one row per option the converters declare (built from their
    declarations once the targets are probed: :meth:`set_catalogue`), the data set, the output folder.

    Each option's widget is an attribute named after it (``options.opset``, ``options.quantization``)
    and in :attr:`fields`; a choice option is a combo box (its unset default named, e.g. "automatic"),
    an int option a spin box (0: the default)."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Options", parent)
        self.setAccessibleName("Conversion options")
        self.fields: dict[str, QWidget] = {}
        self._declared: dict = {}                 # option name → converters.options.Option
        self._pending: dict = {}                  # saved values for the options not built yet
        self._form = form = QFormLayout(self)
        # the data set: calibration for static INT8 and evaluation of every artifact (--data)
        self.calibration = PathEdit("none: drop a data folder on the window", "Data folder")
        self.calibration.edit.setToolTip(
            "real samples, split into calibration and evaluation: a folder of .npy/.npz files, an image folder "
            "(class subfolders give labels), or a .txt/.jsonl file of sentences with a tokenizer folder")
        self.eval_data = PathEdit("none: the data folder is split (and says so)", "Evaluation data folder")
        self.eval_data.edit.setToolTip(
            "samples of other photos or recordings than the data folder's (--eval-data): every artifact is "
            "evaluated on them and the whole data folder calibrates; without it, the data folder is split into "
            "calibration and evaluation, which flatters the figures")
        self.tokenizer = PathEdit("only for sentences", "Tokenizer folder")
        self.tokenizer.edit.setToolTip("a Hugging Face tokenizer folder (tokenizer.json), read offline")
        self.out_dir = PathEdit("beside the model", "Output folder")
        self.overwrite = QCheckBox("Replace existing artifacts")
        self.overwrite.setChecked(False)  # unticked: Convert asks before it replaces a file
        self.overwrite.setAccessibleName("Replace existing artifacts")
        self.data_note = PlainLabel("")   # how many samples the data holds, or why a drop was refused
        self.data_note.setAccessibleName("What the data holds")
        self.data_note.setWordWrap(True)
        self.data_note.hide()
        form.addRow("Data…:", self.calibration)
        form.addRow("", self.data_note)
        form.addRow("Evaluation data…:", self.eval_data)
        form.addRow("Tokenizer:", self.tokenizer)
        form.addRow("Output folder:", self.out_dir)
        form.addRow("", self.overwrite)
        for signal in (self.calibration.edit.textChanged, self.eval_data.edit.textChanged, self.tokenizer.edit.textChanged,
                       self.out_dir.edit.textChanged, self.overwrite.toggled):
            signal.connect(self.changed)

    def __getattr__(self, name: str):
        fields = self.__dict__.get("fields") or {}
        if name in fields:
            return fields[name]
        raise AttributeError(name)

    def set_catalogue(self, choices: list) -> None:
        """One row per option the targets (:class:`app.targets.probe.TargetChoice`) declare with a window label,
        under the data rows (the data and its note first: in view at the window's default size), its tooltip naming the targets it shapes; saved values are restored."""
        shapes: dict[str, list[str]] = {}
        for choice in choices:
            for o in choice.options:
                if o.label and o.name not in self._declared:
                    self._declared[o.name] = o
                if o.label:
                    shapes.setdefault(o.name, []).append(choice.label)
        for row, (name, o) in enumerate(self._declared.items()):
            if name in self.fields:
                continue
            widget = self._widget_for(o)
            widget.setAccessibleName(o.label)
            # the help is argparse's, where a percent sign is written %%
            tip = (o.help or o.label).replace("%%", "%")
            widget.setToolTip(f"{tip}\nshapes: {', '.join(shapes[name])} ({o.flags[0]})")
            self.fields[name] = widget
            self._form.insertRow(DATA_ROWS + row, f"{o.label}:", widget)
        self.restore(self._pending)

    def _widget_for(self, o) -> QWidget:
        if o.choices:
            box = QComboBox()
            box.addItems(([o.default_label] if o.default is None else []) + [str(c) for c in o.choices])
            if o.default is not None:
                box.setCurrentText(str(o.default))
            box.currentTextChanged.connect(self.changed)
            return box
        if o.type is int:
            spin = QSpinBox()
            spin.setRange(0, o.maximum or 1_000_000)
            if o.default is None:
                spin.setSpecialValueText(o.default_label)
            else:
                spin.setValue(int(o.default))
            spin.valueChanged.connect(self.changed)
            return spin
        edit = QLineEdit("" if o.default is None else str(o.default))
        edit.setPlaceholderText(o.default_label)
        edit.textChanged.connect(self.changed)
        return edit

    def _value_of(self, name: str):
        o, widget = self._declared[name], self.fields[name]
        if isinstance(widget, QComboBox):
            text = widget.currentText()
            return None if o.default is None and text == o.default_label else o.type(text)
        if isinstance(widget, QSpinBox):
            return (widget.value() or None) if o.default is None else widget.value()
        return o.type(widget.text()) if widget.text().strip() else None

    def values(self) -> dict:
        """The option values set (name → value; those at their defaults left out), for
        ``ConversionRequest.options``; each target keeps those it declares (``TargetChoice.options_in``)."""
        return {n: v for n in self.fields if not self._declared[n].is_default(v := self._value_of(n))}

    def data_source(self):
        """The data folder, evaluation data folder and tokenizer as an ``app.request.DataSource`` (None when no
        data folder is chosen)."""
        from pathlib import Path

        from app.request import DataSource

        if not self.calibration.text():
            return None
        tokenizer = Path(self.tokenizer.text()).expanduser() if self.tokenizer.text() else None
        evaluation = Path(self.eval_data.text()).expanduser() if self.eval_data.text() else None
        return DataSource(Path(self.calibration.text()).expanduser(), tokenizer=tokenizer, eval_path=evaluation)

    def output_folder(self):
        from pathlib import Path

        return Path(self.out_dir.text()).expanduser() if self.out_dir.text() else None

    def state(self) -> dict:
        """What settings remember."""
        state = dict(self._pending)
        for name, widget in self.fields.items():
            state[name] = widget.currentText() if isinstance(widget, QComboBox) else (
                widget.value() if isinstance(widget, QSpinBox) else widget.text())
        return {**state, "calibration": self.calibration.text(), "eval_data": self.eval_data.text(),
                "tokenizer": self.tokenizer.text(),
                "out_dir": self.out_dir.text(), "overwrite": self.overwrite.isChecked()}

    def restore(self, state: dict) -> None:
        state = dict(state or {})
        for name, widget in self.fields.items():
            if name not in state:
                continue
            value = state.pop(name)
            if isinstance(widget, QComboBox):
                if str(value) in [widget.itemText(i) for i in range(widget.count())]:
                    widget.setCurrentText(str(value))
            elif isinstance(widget, QSpinBox):
                try:
                    widget.setValue(int(value))
                except (TypeError, ValueError):
                    pass
            else:
                widget.setText(str(value))
        for key, edit in (("calibration", self.calibration), ("eval_data", self.eval_data), ("tokenizer", self.tokenizer),
                          ("out_dir", self.out_dir)):
            if key in state:
                edit.setText(str(state.pop(key)))
        if "overwrite" in state:
            self.overwrite.setChecked(bool(state.pop("overwrite")))
        self._pending = {k: v for k, v in state.items() if k not in self.fields}


class BenchmarkOptions(QGroupBox):
    """Batch sizes and run counts for the benchmark."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Benchmark", parent)
        self.setAccessibleName("Benchmark options")
        form = QFormLayout(self)
        self.batches = QLineEdit("1, 4, 16")
        self.batches.setAccessibleName("Batch sizes")
        self.batches.setToolTip("batch sizes to measure, separated by commas (the first one is charted as bars)")
        self.runs = QSpinBox()
        self.runs.setRange(3, 10_000)
        self.runs.setValue(50)
        self.runs.setAccessibleName("Timed runs")
        self.warmup = QSpinBox()
        self.warmup.setRange(0, 1000)
        self.warmup.setValue(5)
        self.warmup.setAccessibleName("Warm-up runs")
        row = QHBoxLayout()
        row.addWidget(PlainLabel("runs"))
        row.addWidget(self.runs)
        row.addWidget(PlainLabel("warm-up"))
        row.addWidget(self.warmup)
        form.addRow("Batch sizes:", self.batches)
        form.addRow("", row)

    def batch_sizes(self) -> list[int]:
        """The batch sizes typed, e.g. ``1, 4, 8`` (as ``bench --batch`` reads them); raises ``BadInput``."""
        from app.bench.harness import parse_batches

        return list(parse_batches(self.batches.text())) or [1]

    def state(self) -> dict:
        return {"batches": self.batches.text(), "runs": self.runs.value(), "warmup": self.warmup.value()}

    def restore(self, state: dict) -> None:
        self.batches.setText(str(state.get("batches", self.batches.text())))
        for box, key in ((self.runs, "runs"), (self.warmup, "warmup")):
            try:
                box.setValue(int(state.get(key, box.value())))
            except (TypeError, ValueError):
                pass
