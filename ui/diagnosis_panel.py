"""The Diagnosis tab: the nodes of an fp16/int8 ONNX artifact ranked by the error they add on the data
(``python main.py diagnose``); choosing a row shows that node in the Graph tab.

Each row names the layer as the model's code does (its module path, ``_blocks.14._project_conv``) and
two figures in one unit, the relative L2 error ‖artifact − fp32‖ / ‖fp32‖ of a tensor, in percent
(:mod:`app.accuracy.diagnose`): the error the node *adds* (its output's minus the largest among its
inputs) and the error *at its output* (accumulated from every node before it). The nodes at the top are
the ones the Accuracy budget keeps in float first. The last column is the artifact's node the Graph tab
selects for the row (a Clip the quantizer folded into the Conv before it is that Conv, and says so);
where the Profile tab profiled the same artifact, the time that node took beside it (joined on it).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from app.accuracy.diagnose import ERROR_UNIT, percent
from app.session import Session
from ui.plain_text import PlainLabel, tooltip, visible_text

COLUMNS = ("#", "Layer", "Op", "Error it adds (rel. L2)", "Error at its output (rel. L2)", "Node in the graph",
           "ms (profile)")
ADDED, AT_OUTPUT, MS = 3, 4, 6
HEADER_TIPS = {
    1: "the module of the PyTorch model the node comes from (an operation written in a module's forward: "
       "module/operation)",
    ADDED: f"how much error this node adds: the error at its output minus the largest error among its inputs "
           f"({ERROR_UNIT}, in percent); below zero, it shrinks the error it reads",
    AT_OUTPUT: f"the error of this node's output tensor in the artifact, with every node before it quantized too "
               f"({ERROR_UNIT}, in percent)",
    5: "the artifact's node that computes it: the one selected in the Graph tab",
    MS: "its median milliseconds per run in the Profile tab's profile of the same artifact (joined on the "
        "artifact's node); — where it was not profiled",
}
SHOWN = 30  # rows at most: the worst nodes are the ones that matter

EMPTY = ("Where does an fp16/int8 artifact lose accuracy? Right-click its row in the results ▸ "
         "“Where does the error come from?” (needs a data folder).")


def _field(node, name: str):
    """A ranking entry's field: :class:`app.accuracy.diagnose.NodeError` or its JSON dict ("" where an
    older ranking lacks it)."""
    return node.get(name, "") if isinstance(node, dict) else getattr(node, name, "")


def graph_node(node) -> str:
    """The node the Graph tab selects for a ranking entry: the artifact's, else the reference's name."""
    return _field(node, "graph_node") or _field(node, "node")


class DiagnosisPanel(QWidget):
    """Summary line over a table of the worst nodes.

    Signals
    -------
    node_chosen(str, str, str)   the user chose a row: artifact path, the artifact's node, its output tensor

    It shows the session's finished diagnosis (``diagnosis_finished``).
    """

    node_chosen = Signal(str, str, str)

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        if session is not None:
            session.events.diagnosis_finished.connect(self.show_ranking)
            session.events.profile_finished.connect(self._on_profiled)
        self.artifact: Path | None = None
        self.result: dict | None = None
        self.nodes: list = []
        self.summary = PlainLabel(EMPTY, wordWrap=True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # it quotes file names
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for col, tip in HEADER_TIPS.items():
            self.table.horizontalHeaderItem(col).setToolTip(tip)
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
        """Show ``result`` of :func:`app.jobs.diagnose_job` for ``artifact``."""
        from app.bench.profile import ms_by_node

        self.artifact, self.result = Path(artifact), result
        profile = self.session.profiles.get(self.artifact) if self.session is not None else None
        times = ms_by_node(profile) if profile else {}
        ranking = list(result["ranking"])
        self.nodes = ranking[:SHOWN]
        outputs = result.get("outputs") or {}
        at_output = (f" At the model's output: {', '.join(percent(e) for e in outputs.values())}."
                     if outputs else "")
        self.summary.setText(f"{self.artifact.name}: {len(ranking)} nodes compared on {result['samples']} samples "
                             f"of {result['data']} ({result['split']}); the {len(self.nodes)} that add the most "
                             f"error first. Errors are relative L2 (‖artifact − fp32‖ / ‖fp32‖ of a tensor), in "
                             f"percent.{at_output} Choose a row to see its node in the Graph tab.")
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for i, node in enumerate(self.nodes):
            self.table.insertRow(i)
            op, shown_op = _field(node, "op_type"), _field(node, "graph_op")
            folded = shown_op and shown_op != op
            layer = _field(node, "layer") or _field(node, "node")
            ms = times.get(graph_node(node))
            cells = (str(i + 1), layer, f"{op} → {shown_op}" if folded else op,
                     percent(_field(node, "added")), percent(_field(node, "error")), graph_node(node),
                     f"{ms:.4f}" if ms is not None else "—")
            tip = (f"{layer}: {op} node {_field(node, 'node')} of the fp32 graph, computing {_field(node, 'output')}; "
                   f"it adds {percent(_field(node, 'added'))}, {percent(_field(node, 'error'))} at its output")
            if folded:
                tip += (f". In the artifact the quantizer made it (or merged it into) the {shown_op} "
                        f"{graph_node(node)}, which the Graph tab shows")
            for col, text in enumerate(cells):
                item = QTableWidgetItem(visible_text(text))  # names from the file, as stored
                if col == MS and ms is not None:
                    item.setData(Qt.ItemDataRole.UserRole, float(ms))
                if col in (0, ADDED, AT_OUTPUT, MS):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if col in (ADDED, AT_OUTPUT):
                    item.setData(Qt.ItemDataRole.UserRole, float(_field(node, "added" if col == ADDED else "error")))
                item.setToolTip(tooltip(tip))
                self.table.setItem(i, col, item)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()

    def _on_profiled(self, artifact: Path, _result: dict) -> None:
        """A profile of the artifact shown: add the time per node beside the error."""
        if self.artifact is not None and Path(artifact) == self.artifact and self.result is not None:
            self.show_ranking(self.artifact, self.result)

    def value(self, row: int, column: int) -> float:
        """The figure behind an error cell (a fraction: 0.112 is shown as 11.2 %), or a time cell's ms."""
        return float(self.table.item(row, column).data(Qt.ItemDataRole.UserRole))

    def choose(self, row: int) -> None:
        """Select ``row`` (as a click does): the node is shown in the Graph tab."""
        self.table.selectRow(row)

    def _on_selection_changed(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1 and self.artifact is not None:
            node = self.nodes[rows.pop()]
            self.node_chosen.emit(str(self.artifact), graph_node(node), _field(node, "output"))
