"""The Graph tab (netron on the selected model) and the details of the selected result."""

from __future__ import annotations

from pathlib import Path


class GraphTab:
    """The Graph tab (netron on the selected model) and the details of the selected result."""

    def __init__(self, window) -> None:
        self.window = window
        window.results.itemSelectionChanged.connect(self._show_selected_details)
        window.diagnosis.node_chosen.connect(self.show_node)
        window.profile_panel.node_chosen.connect(self.show_node)
        window.tabs.currentChanged.connect(self._on_tab_changed)
        events = window.session.events  # after the results table: the models offered include its rows
        events.model_loaded.connect(lambda _summary: self.refresh())
        events.outcome_added.connect(lambda _outcome, _replaced: self.refresh())
        events.outcomes_cleared.connect(self.refresh)

    def graph_models(self) -> list[tuple[str, Path]]:
        """What the Graph tab offers: the source model, then every artifact on disk."""
        w = self.window
        models = []
        if w.model_path is not None and w.model.summary:
            models.append((f"Source: {w.model_path.name}", w.model_path))
        for info in w.results.rows:
            if info.artifact is not None and info.artifact.exists():
                models.append((f"{info.target} · {info.precision.upper()}: {info.artifact.name}", info.artifact))
        return models

    def show_graph_tab(self) -> None:
        w = self.window
        if w.graph_window.detached:
            w.graph_window.window.raise_()
            w.graph_window.window.activateWindow()
        else:
            w.tabs.setCurrentWidget(w.graph_page)

    def _on_tab_changed(self, index: int) -> None:
        if self.window.tabs.widget(index) is self.window.graph_page:
            self.ensure_graph()

    def ensure_graph(self) -> None:
        """Build the Graph view on first sight (its servers start only then) and show the current models."""
        w = self.window
        if w.graph is None:
            from ui.graph_view import GraphView

            w.graph = GraphView()
            w.graph_page.put(w.graph)
            for pane in w.graph.panes:  # a pane's web view exists once it has drawn
                pane.graph_drawn.connect(w.opening.refuse_drops)
        self.refresh()

    def refresh(self) -> None:
        """Offer the current models in the Graph tab (only once the tab exists: it starts servers)."""
        if self.window.graph is not None:
            self.window.graph.set_models(self.graph_models())

    def _show_selected_details(self) -> None:
        w = self.window
        row = w.results.selected_row()
        w.details.show_row(w.results.rows[row] if row is not None else None)

    def show_node(self, artifact: str, node: str, output: str = "") -> None:
        """Show ``artifact``'s graph in the Graph tab with ``node`` selected."""
        self.show_graph_tab()
        self.ensure_graph()
        if not self.window.graph.panes[0].show_node(Path(artifact), node, output):
            self.window.statusBar().showMessage(f"{Path(artifact).name} is not among the models in the Graph tab", 5000)
