"""Finished conversions: artifact, size, time, verification metrics (pass/fail colour), warnings.

Double-click opens the artifact's folder; the context menu copies the path or the equivalent
``python main.py convert ...`` line.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QUrl, Signal
from PySide6.QtGui import QBrush, QColor, QDesktopServices, QGuiApplication, QPalette
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QMenu, QTableWidget, QTableWidgetItem, QWidget

from app.session import Outcome, Session
from ui.jobs_view import status_color
from ui.model_panel import human_size
from ui.plain_text import tooltip, visible_text

COLUMNS = ("Target", "Precision", "Artifact", "Size", "Time", "Max abs err", "Cosine", "Verification",
           "Accuracy on data", "Top-1 (source → artifact)", "Warnings")


class ResultsTable(QTableWidget):
    """One row per finished conversion (failed ones too, in red, with the reason): a view of the
    session's outcomes (:class:`app.session.Outcome`), drawn as the session reports them."""

    open_folder_requested = Signal(str)
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
        for i in range(len(COLUMNS) - 1):
            header.setSectionResizeMode(i, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
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
        if r is not None:
            verdict = "passed" if info.verification_passed else ("failed" if v is not None else "not run")
            if v is not None and not v.passed and not v.enforced:
                verdict = "failed (not enforced)"
                if _data_decides(r):  # int8 ranges come from the data: random inputs fall outside them
                    verdict = "on data: " + ("passed" if r.evaluation.cosine_mean >= _min_cosine() else "low")
            cells = [info.target, info.precision, info.artifact.name if info.artifact else "—",
                     human_size(r.size_bytes), f"{r.seconds:.1f} s",
                     _num(v.max_abs_err) if v else "—", _num(v.cosine, 6) if v else "—", verdict,
                     *accuracy_cells(r.evaluation), "; ".join(r.warnings + ([r.message] if r.message else []))]
        else:
            verdict = "failed"
            cells = [info.target, info.precision, "—", "—", "—", "—", "—", "failed", "—", "—", info.message]
        warnings_col = COLUMNS.index("Warnings")
        notes = (r.warnings + ([r.message] if r.message else [])) if r is not None else [info.message]
        for col, text in enumerate(cells):
            item = QTableWidgetItem(visible_text(text))  # names from files, as stored
            if col in (3, 4, 5, 6, 8, 9):
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            # every cell's full text on hover, as rich text so Qt wraps a long line instead of cutting it
            if col == warnings_col and text:
                item.setToolTip(full_text_tooltip(notes))
            elif col in (8, 9) and r is not None and r.evaluation is not None:
                e = r.evaluation
                item.setToolTip(full_text_tooltip([e.summary(), e.data, *e.notes]))
            else:
                full = str(info.artifact) if col == 2 and info.artifact else text
                delegation = r.delegation if col == 2 and r is not None else None
                if full:
                    item.setToolTip(full_text_tooltip([full, *([f"Delegation: {delegation['summary']}"]
                                                               if delegation else [])]))
            self.setItem(row, col, item)
        verdict_item = self.item(row, 7)
        good = info.verification_passed or verdict == "on data: passed"
        verdict_item.setForeground(QBrush(QColor(status_color(self, "pass" if good else "fail"))))
        font = verdict_item.font()
        font.setBold(True)
        verdict_item.setFont(font)
        if v is not None:
            verdict_item.setToolTip(full_text_tooltip([v.summary(), *([v.failure] if v.failure else []),
                                                       f"checks: {'; '.join(v.checks)}"]))
        if r is not None and v is not None and verdict.startswith("on data"):
            # the random-input figures are not what judged this int8 artifact: grey them, say why
            why = (f"on random inputs, outside the ranges int8 was calibrated on; judged on the data instead: "
                   f"mean cosine {r.evaluation.cosine_mean:.4f} (Accuracy on data)")
            for col in (5, 6):
                self.item(row, col).setForeground(QBrush(self.palette().color(QPalette.ColorRole.PlaceholderText)))
                self.item(row, col).setToolTip(full_text_tooltip([self.item(row, col).text(), why]))

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
        info = self.rows[row]
        from app.serving.triton import servable_targets

        return (info.target in servable_targets() and info.artifact is not None and info.artifact.exists()
                and info.verification_passed)

    def can_diagnose(self, row: int) -> bool:
        """Whether the row's artifact is an fp16/int8 ONNX file whose nodes can be ranked by added error."""
        info = self.rows[row]
        return (info.precision in ("fp16", "int8") and info.artifact is not None and info.artifact.suffix == ".onnx"
                and info.artifact.exists())

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
        copy_path = menu.addAction("Copy path", lambda: self.copy_path(row))
        copy_path.setEnabled(self.rows[row].artifact is not None)
        menu.addAction("Copy CLI command", lambda: self.copy_command(row))
        menu.addSeparator()
        menu.addAction("Open folder", lambda: self.open_folder(row))
        export = menu.addAction("Export for serving (Triton)…", lambda: self.export_requested.emit(row))
        export.setEnabled(self.can_export(row))
        export.setToolTip("write a Triton model folder (config.pbtxt, README, version 1) for this artifact")
        diagnose = menu.addAction("Where does the error come from?", lambda: self.diagnose_requested.emit(row))
        diagnose.setEnabled(self.can_diagnose(row))
        diagnose.setToolTip("rank this fp16/int8 ONNX artifact's nodes by the error they add on the data")
        return menu

    def _on_cell_double_clicked(self, row: int, _column: int) -> None:
        self.open_folder(row)

    def _on_context_menu_requested(self, pos: QPoint) -> None:
        row = self.rowAt(pos.y())
        if 0 <= row < len(self.rows):
            self.selectRow(row)
            self.context_menu(row).popup(self.viewport().mapToGlobal(pos))


def _data_decides(result) -> bool:
    """Whether the artifact's accuracy is judged on the user's data (int8 evaluated on ``--data``)."""
    return result.evaluation is not None and result.precision == "int8"


def _min_cosine() -> float:
    from app.accuracy.verify import INT8_MIN_COSINE

    return INT8_MIN_COSINE


def accuracy_cells(evaluation) -> list[str]:
    """The two accuracy columns of a result: mean cosine on the data, and top-1 — source → artifact with
    labels, and for a classifier the agreement on the source's confident calls, with how many they are
    (``92.0% → 91.5% · confident 100.0% of 180/210``)."""
    if evaluation is None:
        return ["—", "—"]
    parts = []
    if evaluation.artifact_top1 is not None:
        parts.append(f"{evaluation.source_top1:.1%} → {evaluation.artifact_top1:.1%}")
    confident = getattr(evaluation, "confident_samples", None)
    if confident:
        parts.append(f"confident {evaluation.confident_agreement:.1%} of {confident}/{evaluation.samples}")
    elif confident == 0:
        parts.append(f"no confident call of {evaluation.samples}")
    return [f"{evaluation.cosine_mean:.5f}", " · ".join(parts) or "—"]


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
