"""The Graph tab (netron on the selected model) and the details of the selected result.

A part of :class:`ui.main_window.MainWindow` (which builds the widgets and wires them).
"""

from __future__ import annotations

from pathlib import Path


class GraphAndDetails:
    """The Graph tab (netron on the selected model) and the details of the selected result."""

    def _selected_row(self) -> int | None:
        rows = self.results.selectionModel().selectedRows()
        return rows[0].row() if rows else None

    def graph_models(self) -> list[tuple[str, Path]]:
        """What the Graph tab offers: the source model, then every artifact on disk."""
        models = []
        if self.model_path is not None and self.model.summary:
            models.append((f"Source: {self.model_path.name}", self.model_path))
        for info in self.results.rows:
            if info.artifact is not None and info.artifact.exists():
                models.append((f"{info.target} · {info.precision.upper()}: {info.artifact.name}", info.artifact))
        return models

    def show_graph_tab(self) -> None:
        if self.graph_window.detached:
            self.graph_window.window.raise_()
            self.graph_window.window.activateWindow()
        else:
            self.tabs.setCurrentWidget(self._graph_holder)

    def _on_tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self._graph_holder:
            self._ensure_graph()

    def _ensure_graph(self) -> None:
        """Build the Graph view on first sight (its servers start only then) and show the current models."""
        if self.graph is None:
            from ui.graph_view import GraphView

            self.graph = GraphView()
            self._graph_holder.put(self.graph)
            for pane in self.graph.panes:  # a pane's web view exists once it has drawn
                pane.graph_drawn.connect(self._refuse_drops)
        self._refresh_graph()

    def _refresh_graph(self) -> None:
        """Offer the current models in the Graph tab (only once the tab exists: it starts servers)."""
        if self.graph is not None:
            self.graph.set_models(self.graph_models())

    def _show_selected_details(self) -> None:
        row = self._selected_row()
        self.details.show_row(self.results.rows[row] if row is not None else None)

    def show_node(self, artifact: str, node: str, output: str = "") -> None:
        """Show ``artifact``'s graph in the Graph tab with ``node`` selected."""
        self.show_graph_tab()
        self._ensure_graph()
        if not self.graph.panes[0].show_node(Path(artifact), node, output):
            self.statusBar().showMessage(f"{Path(artifact).name} is not among the models in the Graph tab", 5000)
