"""The Diagnosis tab: the nodes of an fp16/int8 ONNX artifact ranked by the error they add on the data
(``python main.py diagnose``); choosing a row shows that node in the Graph tab.

A node's *added* error is its output's relative L2 error minus the largest among its inputs
(:mod:`app.accuracy.diagnose`): the nodes at the top are the ones ``--accuracy-budget`` keeps in float first.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.session import Session
from ui.plain_text import PlainLabel, tooltip, visible_text

COLUMNS = ("#", "Node", "Op", "Added error", "Error at output")
SHOWN = 30  # rows at most: the worst nodes are the ones that matter

EMPTY = ("Where does an fp16/int8 artifact lose accuracy? Right-click its row in the results ▸ "
         "“Where does the error come from?” (needs a data folder).")


def _field(node, name: str):
    """A ranking entry's field: :class:`app.accuracy.diagnose.NodeError` or its JSON dict."""
    return node[name] if isinstance(node, dict) else getattr(node, name)


class DiagnosisPanel(QWidget):
    """Summary line over a table of the worst nodes.

    Signals
    -------
    node_chosen(str, str, str)   the user chose a row: artifact path, node name, its output tensor

    It shows the session's finished diagnosis (``diagnosis_finished``).
    """

    node_chosen = Signal(str, str, str)

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if session is not None:
            session.events.diagnosis_finished.connect(self.show_ranking)
        self.artifact: Path | None = None
        self.nodes: list = []
        self.summary = PlainLabel(EMPTY, wordWrap=True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # it quotes file names
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setAccessibleName("Worst nodes")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("choose a node to see it in the Graph tab")
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def show_ranking(self, artifact: Path, result: dict) -> None:
        """Show ``result`` of ``app.cli.accuracy_commands:diagnose_entry`` for ``artifact``."""
        self.artifact = Path(artifact)
        ranking = list(result["ranking"])
        self.nodes = ranking[:SHOWN]
        self.summary.setText(f"{self.artifact.name}: {len(ranking)} nodes compared on {result['samples']} samples "
                             f"of {result['data']} ({result['split']}); the {len(self.nodes)} that add the most "
                             "error first. Choose one to see it in the Graph tab.")
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for i, node in enumerate(self.nodes):
            self.table.insertRow(i)
            cells = (str(i + 1), _field(node, "node"), _field(node, "op_type"), f"{_field(node, 'added'):.4g}",
                     f"{_field(node, 'error'):.4g}")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(visible_text(text))  # names from the file, as stored
                if col in (0, 3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                item.setToolTip(tooltip(f"{_field(node, 'node')} ({_field(node, 'op_type')}) computes "
                                        f"{_field(node, 'output')}"))
                self.table.setItem(i, col, item)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()

    def choose(self, row: int) -> None:
        """Select ``row`` (as a click does): the node is shown in the Graph tab."""
        self.table.selectRow(row)

    def _on_selection_changed(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1 and self.artifact is not None:
            node = self.nodes[rows.pop()]
            self.node_chosen.emit(str(self.artifact), _field(node, "node"), _field(node, "output"))
