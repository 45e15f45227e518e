"""The Profile tab: where the selected artifact's time goes, per node, from its runtime's own profiler
(``python main.py profile``, :mod:`app.bench.profile`); choosing a row shows that node in the Graph tab.

The Profile button asks the window to profile the artifact selected in the results (in a job's child,
never on the UI thread). The tab shows the nodes ranked by their median milliseconds (share of the node
sum, the precision the kernel ran in, where it ran, whether an int8 convolution fell back to float), the
operator types grouped, and the node sum beside the whole model's median (coverage) with the profile's
notes. Where the same artifact was diagnosed too, the last column is the error each node adds, joined on
the artifact's graph node (:func:`app.bench.profile.ms_by_node`, :func:`app.accuracy.diagnose.added_by_node`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from app.accuracy.diagnose import ERROR_UNIT, added_by_node, percent
from app.session import Session
from ui.plain_text import PlainLabel, tooltip, visible_text

COLUMNS = ("#", "Node", "Op type", "ms", "Share", "Error it adds", "Precision", "Where", "Fell back")
MS, SHARE, ERROR, PRECISION, WHERE, FELL_BACK = 3, 4, 5, 6, 7, 8
GROUP_COLUMNS = ("Op type", "Nodes", "ms", "Share")
HEADER_TIPS = {
    1: "the kernel as the runtime ran it (ONNX Runtime renames the nodes it fuses)",
    MS: "median milliseconds per run over the profiled runs",
    SHARE: "of the per-node sum",
    PRECISION: "the precision the kernel really ran in",
    WHERE: "ONNX Runtime's execution provider, OpenVINO's kernel (exec type), XNNPACK or portable for ExecuTorch",
    FELL_BACK: "a convolution or matmul of an int8 artifact that ran in float",
    ERROR: f"the error this node adds ({ERROR_UNIT}, in percent), from the Diagnosis of the same artifact "
           "(joined on the artifact's graph node); — where it was not diagnosed",
}
GROUPS_WIDTH = 250  # the groups table's width at most: the node table takes the rest
NODE_WIDTH = 170    # the node column at least (names elided in the middle)
SHOWN = 50  # rows at most: the slowest nodes are the ones that matter

EMPTY = ("Where does an artifact's time go? Select it in the results and press Profile: each node timed by "
         "its runtime's own profiler.")


def _right(item: QTableWidgetItem) -> QTableWidgetItem:
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class ProfilePanel(QWidget):
    """The Profile button, a summary line (sum, median, coverage, notes), the ranked nodes and the groups.

    Signals
    -------
    profile_requested()          the Profile button: profile the artifact selected in the results
    node_chosen(str, str, str)   the user chose a row: artifact path, the artifact's graph node, "" (no tensor)

    It shows the session's finished profiles (``profile_finished``) and, beside them, the error per node
    of a diagnosis of the same artifact (``diagnosis_finished``).
    """

    profile_requested = Signal()
    node_chosen = Signal(str, str, str)

    def __init__(self, session: Session | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        if session is not None:
            session.events.profile_finished.connect(self.show_profile)
            session.events.diagnosis_finished.connect(self._on_diagnosed)
        self.artifact: Path | None = None
        self.nodes: list[dict] = []
        self.errors: dict[str, float] = {}
        self.button = QPushButton("Profile")
        self.button.setAccessibleName("Profile")
        self.button.setToolTip("time each node of the artifact selected in the results with its runtime's profiler")
        self.button.clicked.connect(self.profile_requested.emit)
        self.summary = PlainLabel(EMPTY, wordWrap=True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)  # it quotes file names
        top = QHBoxLayout()
        top.addWidget(self.button, 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.summary, 1)
        self.table = self._make_table(COLUMNS, "Slowest nodes")
        for col, tip in HEADER_TIPS.items():
            self.table.horizontalHeaderItem(col).setToolTip(tip)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setToolTip("choose a node to see it in the Graph tab")
        self.table.itemSelectionChanged.connect(self._on_selection_changed)
        self.groups = self._make_table(GROUP_COLUMNS, "Time by operator type")
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # fused names end in what tells them apart
        self.groups.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.split = QSplitter(Qt.Orientation.Horizontal)
        self.split.addWidget(self.table)
        self.split.addWidget(self.groups)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 1)
        self.groups.setMaximumWidth(GROUPS_WIDTH)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.split, 1)

    @staticmethod
    def _make_table(columns: tuple[str, ...], name: str) -> QTableWidget:
        table = QTableWidget(0, len(columns))
        table.setHorizontalHeaderLabels(columns)
        table.setAccessibleName(name)
        table.verticalHeader().hide()
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        return table

    def show_profile(self, artifact: Path, result: dict) -> None:
        """Show ``result`` (the ``profile --json`` object of :func:`app.bench.profile.profile_job`) for ``artifact``."""
        self.artifact = Path(artifact)
        self.result = result
        self.nodes = list(result.get("nodes") or [])[:SHOWN]
        diagnosis = self.session.diagnoses.get(self.artifact) if self.session is not None else None
        self.errors = added_by_node(diagnosis["ranking"]) if diagnosis else {}
        self.summary.setText(self._summary_text(result))
        self._fill_nodes()
        self._fill_groups(result.get("groups") or [])

    def _summary_text(self, r: dict) -> str:
        coverage = f"{r['coverage']:.0%}" if r.get("coverage") is not None else "—"
        text = (f"{self.artifact.name}: {r['runtime']} ({r['provider']}), {r['precision']}, {r['threads']} thread(s), "
                f"median of {r['runs']} profiled run(s) per node. Node sum {r['node_sum_ms']:.3f} ms · median "
                f"{r['median_ms']:.3f} ms (timed as the benchmark times it) · coverage {coverage}")
        if r.get("run_coverage") is not None:
            text += f" · per run {r['run_coverage']:.0%}"
        text += "." + (" The error per node is from this artifact's diagnosis." if self.errors else "")
        text += "".join(f"\nNote: {n}" for n in r.get("notes") or [])
        return text

    def _fill_nodes(self) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for i, n in enumerate(self.nodes):
            self.table.insertRow(i)
            error = self.errors.get(n.get("graph_node") or "")
            cells = (str(i + 1), n["name"], n["op_type"], f"{n['ms']:.4f}", f"{n['share']:.1%}",
                     percent(error) if error is not None else "—", n.get("precision") or "—",
                     n.get("provider") or "", "yes" if n.get("fell_back") else "")
            tip = (f"{n['name']}: {n['op_type']}, {n['ms']:.4f} ms ({n['share']:.1%} of the node time), ran in "
                   f"{n.get('precision') or 'an unknown precision'} on {n.get('provider')}"
                   + (f"; graph node {n['graph_node']}" if n.get("graph_node") else "; inserted by the runtime")
                   + (f"; {n['note']}" if n.get("note") else ""))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(visible_text(text))  # names from the file, as stored
                if col in (0, MS, SHARE, ERROR):
                    _right(item)
                if col == MS:
                    item.setData(Qt.ItemDataRole.UserRole, float(n["ms"]))
                if col == ERROR and error is not None:
                    item.setData(Qt.ItemDataRole.UserRole, float(error))
                item.setToolTip(tooltip(tip))
                self.table.setItem(i, col, item)
        self.table.blockSignals(False)
        self.table.resizeColumnsToContents()
        self.table.setColumnWidth(1, max(NODE_WIDTH, min(self.table.columnWidth(1), 2 * NODE_WIDTH)))

    def _fill_groups(self, groups: list[dict]) -> None:
        self.groups.setRowCount(0)
        for i, g in enumerate(groups):
            self.groups.insertRow(i)
            for col, text in enumerate((g["op_type"], str(g["count"]), f"{g['ms']:.4f}", f"{g['share']:.1%}")):
                item = QTableWidgetItem(visible_text(text))
                self.groups.setItem(i, col, _right(item) if col else item)
        self.groups.resizeColumnsToContents()

    def _on_diagnosed(self, artifact: Path, _result: dict) -> None:
        """A diagnosis of the artifact shown: add the error per node beside the time."""
        if self.artifact is not None and Path(artifact) == self.artifact:
            self.show_profile(self.artifact, self.result)

    def value(self, row: int, column: int) -> float | None:
        """The figure behind a cell (ms, or the error as a fraction); None where there is none."""
        data = self.table.item(row, column).data(Qt.ItemDataRole.UserRole)
        return None if data is None else float(data)

    def choose(self, row: int) -> None:
        """Select ``row`` (as a click does): its node is shown in the Graph tab."""
        self.table.selectRow(row)

    def _on_selection_changed(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) == 1 and self.artifact is not None:
            node = self.nodes[rows.pop()]
            if node.get("graph_node"):
                self.node_chosen.emit(str(self.artifact), node["graph_node"], "")
