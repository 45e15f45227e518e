"""The model's inputs as a table the user completes: a shape and dtype per input, and per dimension a
button that makes the axis dynamic; :meth:`InputsEditor.signature` reads them in the engine's terms."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLineEdit, QSizePolicy,
                               QTableWidget, QToolButton, QWidget)
from ui.plain_text import PlainLabel, tooltip

DTYPES = ("float32", "float16", "bfloat16", "float64", "int64", "int32", "int8", "uint8", "bool")
_SHAPE_RE = re.compile(r"^\s*\d+(\s*[xX×*,]\s*\d+)*\s*$")


@dataclass
class Signature:
    """The inputs as the user settled them, in the engine's terms."""

    inputs: list = field(default_factory=list)           # TensorSpec per input
    dynamic: list[tuple[str, int, str]] = field(default_factory=list)
    edited: bool = False                                 # differs from what the model declared
    problems: list[str] = field(default_factory=list)    # why a conversion cannot start yet


class DimToggles(QWidget):
    """One checkable button per dimension: checked = the axis is dynamic."""

    toggled = Signal()

    def __init__(self, name: str, rank: int, labels: dict[int, str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.labels = dict(labels)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(2, 0, 2, 0)
        layout.setSpacing(2)
        self.buttons: list[QToolButton] = []
        for axis in range(rank):
            b = QToolButton(self)
            b.setText(str(axis))
            b.setCheckable(True)
            b.setChecked(axis in labels)
            label = self.label(axis)
            b.setToolTip(tooltip(f"axis {axis} of {name}: dynamic when pressed (named {label!r})"))
            b.setAccessibleName(f"{name} axis {axis} dynamic")
            b.toggled.connect(self.toggled)
            layout.addWidget(b)
            self.buttons.append(b)
        layout.addStretch(1)

    def label(self, axis: int) -> str:
        return self.labels.get(axis) or ("batch" if axis == 0 else f"{self.name}_dim{axis}")

    def dynamic_axes(self) -> list[tuple[int, str]]:
        return [(i, self.label(i)) for i, b in enumerate(self.buttons) if b.isChecked()]


class InputsEditor(QTableWidget):
    """Name | dtype | shape (example sizes, e.g. 1x3x224x224) | dynamic axes."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Input", "Type", "Shape", "Dynamic axes"])
        self.verticalHeader().hide()
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Interactive)
        self.setAccessibleName("Model inputs")
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self._declared: list[dict] = []

    def set_inputs(self, specs: list[dict], editable: bool) -> None:
        self._declared = [dict(s) for s in specs]
        self.setRowCount(0)
        for row, spec in enumerate(specs):
            self.insertRow(row)
            name = spec["name"]
            self.setCellWidget(row, 0, PlainLabel(f" {name} "))
            dtype = QComboBox()
            dtype.addItems(DTYPES)
            dtype.setCurrentText(spec.get("dtype", "float32"))
            dtype.setEnabled(editable)
            dtype.setAccessibleName(f"{name} element type")
            dtype.currentTextChanged.connect(self.changed)
            self.setCellWidget(row, 1, dtype)
            shape = QLineEdit("x".join(str(d) for d in spec.get("example") or []))
            shape.setPlaceholderText("e.g. 1x3x224x224")
            shape.setAccessibleName(f"{name} shape")
            shape.setToolTip("example sizes of every dimension, joined by x")
            shape.setReadOnly(not editable)
            shape.textChanged.connect(lambda _t, r=row: self._on_shape_edited(r))
            self.setCellWidget(row, 2, shape)
            labels = {i: d for i, d in enumerate(spec.get("shape") or []) if isinstance(d, str)}
            self._set_toggles(row, name, len(spec.get("example") or []), labels)
        self.resizeRowsToContents()
        for col in (0, 1, 3):  # cell widgets do not count towards ResizeToContents
            widths = [self.cellWidget(r, col).sizeHint().width() for r in range(self.rowCount())]
            self.setColumnWidth(col, max(widths + [self.horizontalHeader().sectionSizeHint(col)]) + 4)
        self.setFixedHeight(self._fitting_height())

    def _fitting_height(self) -> int:
        rows = sum(self.rowHeight(r) for r in range(self.rowCount())) or 28
        return self.horizontalHeader().height() + rows + 2 * self.frameWidth() + 4

    def _set_toggles(self, row: int, name: str, rank: int, labels: dict[int, str]) -> None:
        toggles = DimToggles(name, rank, labels)
        toggles.toggled.connect(self.changed)
        self.setCellWidget(row, 3, toggles)

    def _on_shape_edited(self, row: int) -> None:
        shape = self.shape_edit(row)
        dims = _dims(shape.text())
        toggles = self.toggles(row)
        if dims is not None and len(dims) != len(toggles.buttons):
            self._set_toggles(row, toggles.name, len(dims),
                              {a: lbl for a, lbl in toggles.dynamic_axes() if a < len(dims)})
        self.changed.emit()

    def restore(self, typed: dict[str, tuple[str, str, list[tuple[int, str]]]]) -> None:
        """Put back shapes, element types and dynamic axes the user typed (by input name)."""
        for row in range(self.rowCount()):
            name = self.toggles(row).name
            if name in typed:
                text, dtype, axes = typed[name]
                self.dtype_box(row).setCurrentText(dtype)
                self.shape_edit(row).setText(text)
                toggles = self.toggles(row)
                for axis, _label in axes:
                    if axis < len(toggles.buttons):
                        toggles.buttons[axis].setChecked(True)
        self.changed.emit()

    # -- access (also what tests drive)
    def row_of(self, name: str) -> int:
        for row in range(self.rowCount()):
            if self.toggles(row).name == name:
                return row
        raise KeyError(name)

    def shape_edit(self, row: int) -> QLineEdit:
        return self.cellWidget(row, 2)

    def dtype_box(self, row: int) -> QComboBox:
        return self.cellWidget(row, 1)

    def toggles(self, row: int) -> DimToggles:
        return self.cellWidget(row, 3)

    def signature(self) -> Signature:
        from app.errors import BadInput
        from app.model.specs import parse_input

        sig = Signature()
        for row, declared in enumerate(self._declared):
            name = declared["name"]
            text = self.shape_edit(row).text().strip()
            dtype = self.dtype_box(row).currentText()
            dims = _dims(text)
            if not text:
                sig.problems.append(f"enter the shape of input {name} (e.g. 1x3x224x224)")
                continue
            if dims is None:
                sig.problems.append(f"the shape of {name} must be sizes joined by x, e.g. 1x3x224x224")
                continue
            try:
                sig.inputs.append(parse_input(f"{name}:{'x'.join(map(str, dims))}:{dtype}"))
            except BadInput as e:
                sig.problems.append(str(e))
                continue
            axes = self.toggles(row).dynamic_axes()
            sig.dynamic += [(name, a, label) for a, label in axes]
            declared_axes = [(i, d) for i, d in enumerate(declared.get("shape") or []) if isinstance(d, str)]
            if (list(dims) != list(declared.get("example") or []) or dtype != declared.get("dtype")
                    or axes != declared_axes):
                sig.edited = True
        return sig


def _dims(text: str) -> list[int] | None:
    if not _SHAPE_RE.match(text or ""):
        return None
    return [int(d) for d in re.split(r"\s*[xX×*,]\s*", text.strip())]
