"""Targets × precisions to build, and the options that shape them.

Each check box is one job. A choice this machine or this model cannot build is disabled and its
tooltip says why, in the engine's own words (``Converter.check`` / ``available()``), so the window
and ``python main.py convert`` refuse the same things for the same reasons.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGridLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QSpinBox, QToolButton, QWidget)

from app.options import CALIBRATION_METHODS, EXPORTERS, QUANTIZATION_MODES
from app.request import PRECISIONS


class TargetPicker(QGroupBox):
    """A grid: one row per target, one check box per precision."""

    selection_changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Targets", parent)
        self.setAccessibleName("Targets")
        self.choices: list = []
        self.boxes: dict[tuple[str, str], QCheckBox] = {}
        self.source_format: str | None = None
        self._grid = QGridLayout(self)
        self._grid.setHorizontalSpacing(14)
        self._placeholder = QLabel("Probing the targets this machine can build…")
        self._grid.addWidget(self._placeholder, 0, 0, 1, 4)

    @property
    def is_ready(self) -> bool:
        return bool(self.choices)

    def set_choices(self, choices: list) -> None:
        """Build the grid from :class:`app.targets.TargetChoice` objects (once, after probing)."""
        self.choices = list(choices)
        self._placeholder.hide()
        for col, p in enumerate(PRECISIONS, start=1):
            head = QLabel(p.upper())
            head.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self._grid.addWidget(head, 0, col)
        for row, choice in enumerate(self.choices, start=1):
            name = QLabel(choice.label)
            if not choice.available:
                name.setToolTip(choice.reason)
                name.setEnabled(False)
            self._grid.addWidget(name, row, 0)
            for col, p in enumerate(PRECISIONS, start=1):
                box = QCheckBox()
                box.setAccessibleName(f"{choice.label} {p.upper()}")
                box.toggled.connect(self.selection_changed)
                self.boxes[(choice.name, p)] = box
                self._grid.addWidget(box, row, col, alignment=Qt.AlignmentFlag.AlignCenter)
        self._grid.setColumnStretch(0, 1)
        self.set_source_format(self.source_format)

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
                    box.setToolTip(f"unavailable: {why}")
                    box.setAccessibleDescription(f"unavailable: {why}")
                else:
                    # what to expect on this machine's CPU/GPU, e.g. "no speed-up: FP16 on CPU in ONNX Runtime…"
                    box.setToolTip(f"build {choice.label} at {p.upper()}" + (f"\nhere: {advice}" if advice else ""))
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

    def advice(self, target: str, precision: str) -> str:
        """The cell's speed expectation on this machine ("faster: …", "no speed-up: …")."""
        for choice in self.choices:
            if choice.name == target:
                return choice.advice.get(precision, "")
        return ""

    def set_checked_keys(self, keys: list[str]) -> None:
        """Restore ``["onnx/fp16", ...]`` (from settings), skipping what is not buildable."""
        for key in keys:
            target, _, precision = key.partition("/")
            box = self.boxes.get((target, precision))
            if box is not None and box.isEnabled():
                box.setChecked(True)

    def checked_keys(self) -> list[str]:
        return [f"{t}/{p}" for t, p in self.checked()]


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


class ConversionOptions(QGroupBox):
    """Options shared by the jobs: ONNX opset and exporter, INT8 calibration, output folder."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Options", parent)
        self.setAccessibleName("Conversion options")
        form = QFormLayout(self)
        self.opset = QSpinBox()
        self.opset.setRange(0, 25)
        self.opset.setSpecialValueText("exporter default")
        self.opset.setAccessibleName("ONNX opset")
        self.opset.setToolTip("ONNX opset version (0: the exporter's default)")
        self.exporter = QComboBox()
        self.exporter.addItems(list(EXPORTERS))
        self.exporter.setAccessibleName("ONNX exporter")
        self.exporter.setToolTip("dynamo falls back to torchscript when it cannot capture the model")
        self.quantization = QComboBox()
        self.quantization.addItems(["automatic", *QUANTIZATION_MODES])
        self.quantization.setAccessibleName("INT8 quantization")
        self.quantization.setToolTip("automatic: static QDQ for convolutional models given data, "
                                     "dynamic per-channel for transformers")
        # the data set: calibration for static INT8 and evaluation of every artifact (--data)
        self.calibration = PathEdit("none: drop a data folder on the window", "Data folder")
        self.calibration.edit.setToolTip(
            "real samples, split into calibration and evaluation: a folder of .npy/.npz files, an image folder "
            "(class subfolders give labels), or a .txt/.jsonl file of sentences with a tokenizer folder")
        self.tokenizer = PathEdit("only for sentences", "Tokenizer folder")
        self.tokenizer.edit.setToolTip("a Hugging Face tokenizer folder (tokenizer.json), read offline")
        self.calibration_method = QComboBox()
        self.calibration_method.addItems(list(CALIBRATION_METHODS))
        self.calibration_method.setAccessibleName("Calibration method")
        self.out_dir = PathEdit("beside the model", "Output folder")
        self.overwrite = QCheckBox("Replace existing artifacts")
        self.overwrite.setChecked(False)  # unticked: Convert asks before it replaces a file
        self.overwrite.setAccessibleName("Replace existing artifacts")
        form.addRow("ONNX opset:", self.opset)
        form.addRow("ONNX exporter:", self.exporter)
        form.addRow("INT8 mode:", self.quantization)
        form.addRow("Data…:", self.calibration)
        form.addRow("Tokenizer:", self.tokenizer)
        form.addRow("Calibration method:", self.calibration_method)
        form.addRow("Output folder:", self.out_dir)
        form.addRow("", self.overwrite)
        for signal in (self.opset.valueChanged, self.exporter.currentTextChanged,
                       self.quantization.currentTextChanged, self.calibration.edit.textChanged,
                       self.tokenizer.edit.textChanged,
                       self.calibration_method.currentTextChanged, self.out_dir.edit.textChanged,
                       self.overwrite.toggled):
            signal.connect(self.changed)

    def values(self) -> dict:
        """The options as ``ConversionRequest`` keyword arguments."""
        from pathlib import Path

        mode = self.quantization.currentText()
        return {
            "opset": self.opset.value() or None,
            "exporter": self.exporter.currentText(),
            "quantization": None if mode == "automatic" else mode,
            "calibration": Path(self.calibration.text()).expanduser() if self.calibration.text() else None,
            "tokenizer": Path(self.tokenizer.text()).expanduser() if self.tokenizer.text() else None,
            "calibration_method": self.calibration_method.currentText(),
            "out_dir": Path(self.out_dir.text()).expanduser() if self.out_dir.text() else None,
            "overwrite": self.overwrite.isChecked(),
        }

    def state(self) -> dict:
        """What settings remember."""
        return {"opset": self.opset.value(), "exporter": self.exporter.currentText(),
                "quantization": self.quantization.currentText(), "calibration": self.calibration.text(),
                "tokenizer": self.tokenizer.text(),
                "calibration_method": self.calibration_method.currentText(), "out_dir": self.out_dir.text(),
                "overwrite": self.overwrite.isChecked()}

    def restore(self, state: dict) -> None:
        try:
            self.opset.setValue(int(state.get("opset", 0)))
        except (TypeError, ValueError):
            pass
        for box, key in ((self.exporter, "exporter"), (self.quantization, "quantization"),
                         (self.calibration_method, "calibration_method")):
            if state.get(key) in [box.itemText(i) for i in range(box.count())]:
                box.setCurrentText(state[key])
        self.calibration.setText(str(state.get("calibration", "")))
        self.tokenizer.setText(str(state.get("tokenizer", "")))
        self.out_dir.setText(str(state.get("out_dir", "")))
        self.overwrite.setChecked(bool(state.get("overwrite", False)))


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
        row.addWidget(QLabel("runs"))
        row.addWidget(self.runs)
        row.addWidget(QLabel("warm-up"))
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
