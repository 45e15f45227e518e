"""Finished conversions: artifact, size, time, verification metrics (pass/fail colour), warnings.

Double-click opens the artifact's folder; the context menu copies the path or the equivalent
``python main.py convert ...`` line.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QMenu, QStyle, QTableWidget, QTableWidgetItem,
                               QWidget)

from app.session import Outcome, Session
from ui.wording import window_words
from ui.jobs_view import status_color, verdict_color_kind
from ui.model_panel import human_size
from ui.plain_text import tooltip, visible_text

# the verdict and the figures on data first: in view without scrolling sideways
COLUMNS = ("Target", "Precision", "Verdict", "Cosine on data", "Top-1 agreement", "Confident agreement",
           "Top-1 (source → artifact)", "Artifact", "Size", "Time", "Max abs err", "Cosine (random inputs)", "Warnings")
DATA_COLUMNS = ("Cosine on data", "Top-1 agreement", "Confident agreement", "Top-1 (source → artifact)")
RANDOM_COLUMNS = ("Max abs err", "Cosine (random inputs)")
NUMERIC_COLUMNS = (*DATA_COLUMNS, "Size", "Time", *RANDOM_COLUMNS)
# how much each column matters at a glance: 1 is always worth its room (what was made and its verdict on the
# data), 2 shown by default, 3 only when the user asks for it (the header's menu); the compact default set
# is priorities 1 and 2, and it fits beside the details at the window's default 1280×860
PRIORITY = {"Target": 1, "Precision": 1, "Verdict": 1, "Cosine on data": 1, "Top-1 agreement": 1,
            "Confident agreement": 3, "Top-1 (source → artifact)": 2, "Artifact": 2, "Size": 2, "Time": 2,
            "Max abs err": 3, "Cosine (random inputs)": 3, "Warnings": 2}
ALWAYS_SHOWN = ("Target", "Precision", "Verdict")   # a row is nothing without them: not in the menu
DEFAULT_SHOWN = tuple(c for c in COLUMNS if PRIORITY[c] <= 2)


class ResultsTable(QTableWidget):
    """One row per finished conversion (failed ones too, in red, with the reason): a view of the
    session's outcomes (:class:`app.session.Outcome`), drawn as the session reports them."""

    open_folder_requested = Signal(str)
    columns_changed = Signal()  # the user showed or hid a column (the header's menu): the window remembers it
    export_requested = Signal(int)  # "Export for serving…" on this row: the window asks where
    diagnose_requested = Signal(int)  # "Where does the error come from?" on this row

    def __init__(self, session: Session, parent: QWidget | None = None) -> None:
        super().__init__(0, len(COLUMNS), parent)
        self.session = session
        session.events.outcome_added.connect(self._on_outcome_added)
        session.events.outcomes_cleared.connect(lambda: self.setRowCount(0))
        self.setHorizontalHeaderLabels(COLUMNS)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.setAccessibleName("Results")
        header = self.horizontalHeader()
        for i in range(len(COLUMNS)):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)   # whichever column is last in view takes the room left
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._on_header_menu_requested)
        header.setToolTip("right-click to choose the columns")
        self.show_columns({name: name in DEFAULT_SHOWN for name in COLUMNS})
        self.cellDoubleClicked.connect(self._on_cell_double_clicked)
        self.customContextMenuRequested.connect(self._on_context_menu_requested)

    @property
    def rows(self) -> list[Outcome]:
        """The outcomes, in the table's row order."""
        return self.session.outcomes

    # -- filling
    def _on_outcome_added(self, info: Outcome, replaced: int | None) -> None:
        if replaced is not None:  # a re-run replaces the row of the same job
            self.removeRow(replaced)
        row = self.rowCount()
        self.insertRow(row)
        r = info.result
        v = r.verification if r is not None else None
        verdict = info.verdict
        notes = (r.warnings + ([r.message] if r.message else [])) if r is not None else [info.message]
        notes = [window_words(n) for n in notes]      # the core's command-line hints, in the window's terms
        if info.from_disk is not None:   # made earlier (by this window or the command line): said first
            notes = [f"from disk: made {info.from_disk.when}, read from its manifest", *notes]
        cells = {"Target": info.target, "Precision": info.precision, "Verdict": verdict.label,
                 **dict(zip(DATA_COLUMNS, accuracy_cells(r.evaluation if r is not None else None))),
                 "Artifact": info.artifact.name if info.artifact else "—",
                 "Size": human_size(r.size_bytes) if r is not None else "—",
                 "Time": f"{r.seconds:.1f} s" if r is not None else "—",
                 "Max abs err": _num(v.max_abs_err) if v else "—",
                 "Cosine (random inputs)": _num(v.cosine, 6) if v else "—", "Warnings": "; ".join(notes)}
        for col, name in enumerate(COLUMNS):
            text = cells[name]
            item = QTableWidgetItem(visible_text(text))  # names from files, as stored
            if name in NUMERIC_COLUMNS:
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            # every cell's full text on hover, as rich text so Qt wraps a long line instead of cutting it
            if name == "Warnings" and text:
                item.setToolTip(full_text_tooltip(notes))
            elif name in DATA_COLUMNS and r is not None and r.evaluation is not None:
                e = r.evaluation
                item.setToolTip(full_text_tooltip([e.summary(), e.data, *e.notes]))
            elif name in DATA_COLUMNS and r is not None:
                item.setToolTip(full_text_tooltip([text, "no data: add a data folder (Data…) to measure the "
                                                         "artifact on real samples"]))
            else:
                full = str(info.artifact) if name == "Artifact" and info.artifact else text
                delegation = r.delegation if name == "Artifact" and r is not None else None
                if full:
                    item.setToolTip(full_text_tooltip([full, *([f"Delegation: {delegation['summary']}"]
                                                               if delegation else [])]))
            self.setItem(row, col, item)
        if info.from_disk is not None:
            _mark_from_disk(self, row, info.from_disk.when)
        verdict_item = self.item(row, COLUMNS.index("Verdict"))
        color = verdict_color_kind(verdict)
        if color:
            verdict_item.setForeground(QBrush(QColor(status_color(self, color))))
        font = verdict_item.font()
        font.setBold(True)
        verdict_item.setFont(font)
        verdict_item.setToolTip(full_text_tooltip(
            [verdict.text(), *([f"verification on random inputs: {v.summary()}", f"checks: {'; '.join(v.checks)}"]
                               if v is not None else [])]))
        if r is not None and v is not None and _data_decides(r):
            # the random-input figures are not what judged this int8 artifact: grey them, say why
            why = (f"on random inputs, outside the ranges int8 was calibrated on; judged on the data instead: "
                   f"mean cosine {r.evaluation.cosine_mean:.4f} (Cosine on data)")
            for name in RANDOM_COLUMNS:
                item = self.item(row, COLUMNS.index(name))
                item.setForeground(QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
                item.setToolTip(full_text_tooltip([item.text(), why]))

    # -- columns
    def shown_columns(self) -> dict[str, bool]:
        """Each column's name and whether it is in view (what the window remembers)."""
        return {name: not self.isColumnHidden(i) for i, name in enumerate(COLUMNS)}

    def show_columns(self, shown: dict) -> None:
        """Show or hide columns by name (``shown``, as :meth:`shown_columns` gives it; names it lacks keep their
        place, unknown names are ignored); the verdict and what the row is stay in view whatever it says."""
        for i, name in enumerate(COLUMNS):
            if name in shown:
                self.setColumnHidden(i, not (bool(shown[name]) or name in ALWAYS_SHOWN))

    def columns_menu(self) -> QMenu:
        """The header's menu: one check-able entry per column the user may hide, most important first."""
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        shown = self.shown_columns()
        for name in sorted((c for c in COLUMNS if c not in ALWAYS_SHOWN), key=lambda c: (PRIORITY[c], COLUMNS.index(c))):
            action = menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(shown[name])
            action.toggled.connect(lambda on, n=name: self._on_column_toggled(n, on))
        menu.addSeparator()
        menu.addAction("Default columns", self._on_default_columns_triggered)
        return menu

    def _on_column_toggled(self, name: str, on: bool) -> None:
        self.show_columns({name: on})
        self.columns_changed.emit()

    def _on_default_columns_triggered(self) -> None:
        self.show_columns({name: name in DEFAULT_SHOWN for name in COLUMNS})
        self.columns_changed.emit()

    def _on_header_menu_requested(self, pos: QPoint) -> None:
        menu = self.columns_menu()
        menu.aboutToHide.connect(menu.deleteLater)
        menu.popup(self.horizontalHeader().viewport().mapToGlobal(pos))

    # -- reading
    def selected_row(self) -> int | None:
        rows = self.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def row_for(self, target: str, precision: str) -> Outcome:
        return self.session.outcome_for(target, precision)

    def artifacts(self) -> list[Path]:
        return self.session.artifacts()

    def can_export(self, row: int) -> bool:
        """Whether the row's artifact can become a Triton model folder (ONNX, TorchScript, a TensorRT plan)."""
        return self.why_not_export(row) is None

    def why_not_export(self, row: int) -> str | None:
        """Why "Export for serving (Triton)…" is greyed out for the row (None: it is not)."""
        from app.serving.triton import servable_targets

        info = self.rows[row]
        missing = _why_no_artifact(info)
        if missing:
            return missing
        if info.target not in servable_targets():
            return f"Triton serves ONNX, TorchScript and TensorRT artifacts, not {info.target}"
        if not info.verdict.good:
            return f"only an artifact that passed is exported for serving; this one {info.verdict.label}"
        return None

    def can_diagnose(self, row: int) -> bool:
        """Whether the row's artifact is an fp16/int8 ONNX file whose nodes can be ranked by added error."""
        return self.why_not_diagnose(row) is None

    def why_not_diagnose(self, row: int) -> str | None:
        """Why "Where does the error come from?" is greyed out for the row (None: it is not)."""
        info = self.rows[row]
        missing = _why_no_artifact(info)
        if missing:
            return missing
        if info.precision not in ("fp16", "int8"):
            return f"only int8 and fp16 artifacts have error to locate; this one is {info.precision}"
        if info.artifact.suffix != ".onnx":
            return (f"nodes are ranked in ONNX artifacts only; this one is {info.target} "
                    f"({info.artifact.suffix or 'a folder'}): convert to ONNX at {info.precision} to locate its error")
        return None

    def is_from_disk(self, row: int) -> bool:
        """Whether the row is an artifact made earlier, read from its manifest on disk (not converted now)."""
        return self.rows[row].from_disk is not None

    def text(self, row: int, column: str) -> str:
        return self.item(row, COLUMNS.index(column)).text()

    # -- actions
    def copy_path(self, row: int) -> None:
        info = self.rows[row]
        if info.artifact:
            QGuiApplication.clipboard().setText(str(info.artifact))

    def copy_command(self, row: int) -> None:
        from app.reports.command_echo import convert_command

        QGuiApplication.clipboard().setText(convert_command(self.rows[row].request))

    def open_folder(self, row: int) -> None:
        info = self.rows[row]
        folder = info.artifact.parent if info.artifact else _out_dir(info.request)
        self.open_folder_requested.emit(str(folder))
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    def context_menu(self, row: int) -> QMenu:
        menu = QMenu(self)
        menu.setToolTipsVisible(True)   # a greyed-out action says why on hover (and in the status bar)
        info = self.rows[row]
        copy_path = menu.addAction("Copy path", lambda: self.copy_path(row))
        _enable(copy_path, "copy the artifact's path", None if info.artifact is not None
                else "no artifact: the conversion failed")
        menu.addAction("Copy CLI command", lambda: self.copy_command(row))
        menu.addSeparator()
        menu.addAction("Open folder", lambda: self.open_folder(row))
        export = menu.addAction("Export for serving (Triton)…", lambda: self.export_requested.emit(row))
        _enable(export, "write a Triton model folder (config.pbtxt, README, version 1) for this artifact",
                self.why_not_export(row))
        diagnose = menu.addAction("Where does the error come from?", lambda: self.diagnose_requested.emit(row))
        _enable(diagnose, "rank this artifact's nodes by the error they add on the data", self.why_not_diagnose(row))
        return menu

    def _on_cell_double_clicked(self, row: int, _column: int) -> None:
        self.open_folder(row)

    def _on_context_menu_requested(self, pos: QPoint) -> None:
        row = self.rowAt(pos.y())
        if 0 <= row < len(self.rows):
            self.selectRow(row)
            self.context_menu(row).popup(self.viewport().mapToGlobal(pos))


def _mark_from_disk(table: QTableWidget, row: int, when: str) -> None:
    """A row read from disk: in italics, its Target cell saying so (with the date it was made) on hover."""
    for col in range(table.columnCount()):
        item = table.item(row, col)
        font = item.font()
        font.setItalic(True)
        item.setFont(font)
    target = table.item(row, COLUMNS.index("Target"))
    target.setIcon(table.style().standardIcon(QStyle.StandardPixmap.SP_DriveHDIcon))   # seen without hovering
    target.setToolTip(full_text_tooltip([f"From disk: made {when} (by this window earlier or by the command line) "
                                         "and read from its manifest; Convert again to replace it"]))


def _enable(action, tip: str, why_not: str | None) -> None:
    """Enable ``action`` (its tool tip and status text: ``tip``), or grey it out saying why not."""
    action.setEnabled(why_not is None)
    text = tip if why_not is None else f"not available: {why_not}"
    action.setToolTip(tooltip(text))
    action.setStatusTip(visible_text(text))


def _why_no_artifact(info) -> str | None:
    """Why a row has no artifact to act on (None: it has one on disk)."""
    if info.artifact is None:
        return "no artifact: the conversion failed"
    if not info.artifact.exists():
        return f"the artifact is no longer on disk ({info.artifact.name})"
    return None


def _data_decides(result) -> bool:
    """Whether the artifact's accuracy is judged on the user's data (int8 evaluated on ``--data``)."""
    return result.evaluation is not None and result.precision == "int8"


def accuracy_cells(evaluation) -> list[str]:
    """The figures on data of a result, one per :data:`DATA_COLUMNS`: mean cosine to the source; top-1
    agreement with it; for a classifier the agreement on the source's confident calls, with how many they
    are (``99.5% (180 of 210)``); and top-1 accuracy source → artifact with labels (``92.0% → 91.5%``)."""
    if evaluation is None:
        return ["—"] * len(DATA_COLUMNS)
    agreement = "—" if evaluation.top1_agreement is None else f"{evaluation.top1_agreement:.1%}"
    confident = getattr(evaluation, "confident_samples", None)
    if confident:
        confident_text = f"{evaluation.confident_agreement:.1%} ({confident} of {evaluation.samples})"
    elif confident == 0:
        confident_text = f"none of {evaluation.samples}"
    else:
        confident_text = "—"
    labels = (f"{evaluation.source_top1:.1%} → {evaluation.artifact_top1:.1%}" if evaluation.artifact_top1 is not None
              else "no labels")
    return [f"{evaluation.cosine_mean:.5f}", agreement, confident_text, labels]


def full_text_tooltip(lines: list[str]) -> str:
    """Rich text, so Qt wraps long lines instead of cutting them: one paragraph per line, escaped."""
    return tooltip([line for line in lines if line])


def _num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.{digits}g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.{digits + 1}f}"


def _out_dir(request) -> Path:
    return Path(request.out_dir) if request.out_dir else Path(request.source.path).parent
