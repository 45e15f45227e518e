"""GraphPane: one netron view of the Graph tab (:class:`ui.graph_view.GraphView` holds one, or two side
by side) — a model selector over a ``QWebEngineView`` of the model's private local server, or a note
where there is no graph to show."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QStackedWidget, QVBoxLayout, QWidget
from superqt.utils import create_worker

from app.errors import StudioError
from app.graph.netron_server import GraphServer, check_drawable
from ui.web_engine import DRAW_TIMEOUT_MS, PROBE_JS, PROBE_MS, SELECT_NODE_JS, web_engine_available, web_modules
from ui.plain_text import PlainLabel

log = logging.getLogger("ui.graph_view")  # the Graph tab's logger, whichever of its modules logs


class GraphPane(QWidget):
    """A model selector over one netron view (or a message where there is no graph to show).

    Signals
    -------
    graph_drawn(int)    netron drew the selected model; the number of nodes on screen
    graph_failed(str)   no graph: netron's error, a model it cannot draw, or no QtWebEngine
    node_shown(str)     after :meth:`show_node`: the node netron selected, "" when it has none such

    ``state`` says where the selected model is: empty, preparing (copying, starting the server),
    loading (netron's page is drawing), drawn or failed (``message`` says why).
    """

    graph_drawn = Signal(int)
    graph_failed = Signal(str)
    node_shown = Signal(str)

    def __init__(self, owner: QWidget) -> None:
        super().__init__(owner)
        self._owner = owner  # the GraphView: its web profile and scripts are the panes'
        self.server: GraphServer | None = None
        self.state = "empty"
        self.web_view = None  # QWebEngineView, created on first use
        self._models: list[tuple[str, Path]] = []
        self._wanted: Path | None = None  # the model a background start is for
        self._pending_node: tuple[str, str] | None = None  # show_node's (node, output), once drawn
        self._probe = QTimer(self, interval=PROBE_MS)
        self._probe.timeout.connect(self._on_probe)
        self._probe_left = 0

        self.selector = QComboBox()
        self.selector.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.selector.currentIndexChanged.connect(self._on_model_selected)
        self.message = PlainLabel(wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.message.setTextFormat(Qt.TextFormat.PlainText)  # it quotes file names and netron's errors
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.onnx_button = QPushButton("Show the ONNX graph")
        self.onnx_button.clicked.connect(self._on_show_onnx)
        self.browser_button = QPushButton("Open in browser")
        self.browser_button.setToolTip("Open this graph in your web browser (served on this machine only)")
        self.browser_button.clicked.connect(self.open_in_browser)

        note = QWidget()
        buttons = QHBoxLayout()
        buttons.addStretch()
        buttons.addWidget(self.onnx_button)
        buttons.addWidget(self.browser_button)
        buttons.addStretch()
        note_layout = QVBoxLayout(note)
        note_layout.addStretch()
        note_layout.addWidget(self.message)
        note_layout.addLayout(buttons)
        note_layout.addStretch()
        self._stack = QStackedWidget()
        self._stack.addWidget(note)

        header = QHBoxLayout()
        header.addWidget(PlainLabel("Model:"))
        header.addWidget(self.selector, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self._stack, 1)
        self._show_note("Load a model to see its graph.")

    # ------------------------------------------------------------------ public
    def set_models(self, models: Sequence[tuple[str, Path]], prefer: int = 0) -> None:
        """Offer ``models``; keep the current one if it is still there, else show ``models[prefer]``."""
        current = self.current_path()
        self._models = [(label, Path(path)) for label, path in models]
        paths = [p for _, p in self._models]
        index = paths.index(current) if current in paths else min(prefer, len(paths) - 1)
        self.selector.blockSignals(True)
        self.selector.clear()
        for label, path in self._models:
            self.selector.addItem(label, str(path))
            self.selector.setItemData(self.selector.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        self.selector.setCurrentIndex(index)
        self.selector.blockSignals(False)
        # a new model, or a note that may read differently now (an ONNX artifact arrived): select
        # again; a graph on screen or on its way stays
        if self.current_path() != current or self.state == "empty" or (self.state == "failed" and not self.server):
            self._on_model_selected(self.selector.currentIndex())
        else:
            self.onnx_button.setVisible(self._onnx_index() is not None)

    def current_path(self) -> Path | None:
        """The selected model's file."""
        data = self.selector.currentData()
        return Path(data) if data else None

    def open_in_browser(self) -> None:
        """Show the graph in the user's browser, from the same local server."""
        if self.server is not None and self.server.running:
            QDesktopServices.openUrl(QUrl(self.server.url))

    def run_js(self, source: str, callback, world: int | None = None) -> None:
        """Run ``source`` in the page (the main world unless ``world`` is given); for checks and tests."""
        if self.web_view is None:
            raise RuntimeError("no web view in this pane")
        self.web_view.page().runJavaScript(source, world if world is not None else 0, callback)

    def show_node(self, path: Path, node: str, output: str = "") -> bool:
        """Show ``path``'s graph with ``node`` (or the node computing ``output``) selected and in view;
        ``node_shown`` follows. False when ``path`` is not among the models offered."""
        wanted = Path(path).resolve()
        index = next((i for i, (_, p) in enumerate(self._models) if p.resolve() == wanted), -1)
        if index < 0:
            return False
        self._pending_node = (node, output)
        if index != self.selector.currentIndex():
            self.selector.setCurrentIndex(index)  # drawn later: _on_probe_result selects the node
        elif self.state == "drawn":
            self._select_pending_node()
        elif self.state in ("empty", "failed"):
            self._on_model_selected(index)
        return True

    def _select_pending_node(self, tries: int = 100) -> None:
        if self._pending_node is None or self.web_view is None:
            return
        node, output = self._pending_node

        def done(found) -> None:
            if found == "\u0000" and tries > 0 and self._pending_node == (node, output) and self.state == "drawn":
                QTimer.singleShot(PROBE_MS, self, lambda: self._select_pending_node(tries - 1))
                return
            if self._pending_node == (node, output):
                self._pending_node = None
                self.node_shown.emit(found if found and found != "\u0000" else "")

        self.web_view.page().runJavaScript(SELECT_NODE_JS % (json.dumps(node), json.dumps(output)), 0, done)

    def release(self) -> None:
        """Stop this pane's server (closing its port, removing its private copy)."""
        self._wanted = None
        self._probe.stop()
        self._stop_server()

    # ------------------------------------------------------------------ selection
    def _on_model_selected(self, index: int) -> None:
        self.release()
        self.onnx_button.setVisible(self._onnx_index() is not None)
        self.state = "empty"
        if index < 0:
            self._show_note("Load a model to see its graph.")
            return
        label, path = self._models[index]
        drawable = check_drawable(path)
        if not drawable.drawable:
            self._fail(f"{label}: Netron cannot draw this model ({drawable.reason}). "
                       + ("Its ONNX version can be shown." if self._onnx_index() is not None else
                          "Convert it to ONNX to see its graph here."))
            return
        self._wanted = path
        self.state = "preparing"
        self._show_note(f"Preparing the graph of {label}…")
        worker = create_worker(GraphServer, path, guard_page=self._owner.server_guard, _start_thread=False)
        worker.returned.connect(functools.partial(self._on_server_started, path))
        worker.errored.connect(functools.partial(self._on_server_failed, path))
        worker.start()

    def _on_server_started(self, path: Path, server: GraphServer) -> None:
        if path != self._wanted or not self._owner.is_open:  # the user moved on meanwhile
            server.stop()
            return
        self.server = server
        available, reason = web_engine_available()
        if not available:
            self._fail(f"The graph cannot be shown inside the window: {reason}. "
                       f"It is served on this machine at {server.url} — use “Open in browser”.")
            return
        view = self._ensure_view()
        self._owner.interceptor.ports.add(server.port)
        view.setUrl(QUrl(server.url))
        self.state = "loading"
        self._stack.setCurrentWidget(view)
        self._probe_left = DRAW_TIMEOUT_MS // PROBE_MS

    def _on_server_failed(self, path: Path, error: BaseException) -> None:
        if path != self._wanted:
            return
        text = str(error) if isinstance(error, StudioError) else f"{type(error).__name__}: {error}"
        self._fail(f"The graph server could not start: {text}")

    def _on_show_onnx(self) -> None:
        index = self._onnx_index()
        if index is not None:
            self.selector.setCurrentIndex(index)

    def _onnx_index(self) -> int | None:
        current = self.selector.currentIndex()
        for i, (_, path) in enumerate(self._models):
            if i != current and check_drawable(path).format == "onnx":
                return i
        return None

    # ------------------------------------------------------------------ the web view
    def _ensure_view(self):
        if self.web_view is None:
            web = web_modules()
            self.web_view = web.View(self)
            page = web.Page(self._owner.profile, self.web_view, self._owner.interceptor)
            self.web_view.setPage(page)
            page.loadFinished.connect(self._on_load_finished)
            page.renderProcessTerminated.connect(self._on_render_process_terminated)
            self._stack.addWidget(self.web_view)
        return self.web_view

    def _on_load_finished(self, ok: bool) -> None:
        if self.server is None or self.web_view.url().port() != self.server.port:
            return  # the blank page between two models, or a load the next model interrupted
        if not ok:
            self._fail("The embedded viewer could not load the graph page.")
            return
        self._probe.start()

    def _on_probe(self) -> None:
        self._probe_left -= 1
        if self._probe_left < 0:
            self._probe.stop()
            self._fail("Netron did not draw the graph within a minute.")
            return
        self.web_view.page().runJavaScript(PROBE_JS, int(web_modules().APP_WORLD), self._on_probe_result)

    def _on_probe_result(self, result) -> None:
        if not self._probe.isActive() or not result:
            return
        state = json.loads(result)
        if state["nodes"] > 0:
            self._probe.stop()
            self.state = "drawn"
            self.graph_drawn.emit(state["nodes"])
            self._select_pending_node()
        elif state["message"]:
            self._probe.stop()
            self._fail(f"Netron could not draw this model: {state['message']}")

    def _on_render_process_terminated(self, status, code: int) -> None:
        self._probe.stop()
        log.error("Graph view: the web engine's render process ended (%s, exit code %d)", status, code)
        self._fail("The embedded viewer stopped unexpectedly (this happens on some remote desktops). "
                   "Use “Open in browser” to see the graph.")

    # ------------------------------------------------------------------ notes
    def _show_note(self, text: str) -> None:
        self.message.setText(text)
        self.browser_button.setVisible(self.server is not None)
        self._stack.setCurrentIndex(0)

    def _fail(self, text: str) -> None:
        self._show_note(text)
        self.state = "failed"
        self.graph_failed.emit(self.message.text())

    def _stop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            if self.web_view is not None:
                self.web_view.setUrl(QUrl("about:blank"))  # before the port closes: no error page
                self._owner.interceptor.ports.discard(server.port)
            server.stop()
