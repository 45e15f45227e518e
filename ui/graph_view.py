"""GraphView: the Graph tab — netron's own viewer for the source model and every artifact.

Each pane (:class:`ui.graph_pane.GraphPane`) serves its model with
:class:`app.graph.netron_server.GraphServer` (a private copy, on 127.0.0.1) and shows it in a
``QWebEngineView`` that behaves like part of the app: an off-the-record profile, a request filter
that blocks (and logs) everything but the pane's local server, and netron's consent dialog,
telemetry and 180-day "update" wall neutralised by a user script
(:data:`app.graph.netron_server.PAGE_GUARD_JS`). Two panes side by side compare models (an ONNX FP32 model
next to its INT8 version shows the inserted Q/DQ nodes).

QtWebEngine is imported lazily: without it (or with ``DEPLOYSTUDIO_NO_WEBENGINE=1`` for remote
desktops where it crashes) the tab says so and offers "Open in browser" on the same local server.

Run standalone for manual checks: ``python -m ui.graph_view MODEL [MODEL2] [--screenshot PNG]``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QHBoxLayout, QSplitter, QVBoxLayout, QWidget

from ui.graph_pane import GraphPane
from ui.web_engine import prepare_web_engine, web_modules


# ---------------------------------------------------------------------------- the tab
class GraphView(QWidget):
    """The Graph tab: a selector of models and one netron view, or two side by side.

    Parameters
    ----------
    server_guard
        Also put the page guard into the served page (it then works in an ordinary browser too).
        The embedded view injects it either way; tests turn this off to check the injection alone.
    """

    def __init__(self, parent: QWidget | None = None, *, server_guard: bool = True) -> None:
        super().__init__(parent)
        self.server_guard = server_guard
        self.is_open = True
        self._profile = None
        self._interceptor = None
        self._models: list[tuple[str, Path]] = []
        self.split_box = QCheckBox("Side by side")
        self.split_box.setToolTip("Show two models next to each other, e.g. ONNX FP32 and its INT8 version")
        self.split_box.toggled.connect(self.set_split)
        self.panes = [GraphPane(self), GraphPane(self)]
        self.panes[1].hide()
        splitter = QSplitter(Qt.Orientation.Horizontal)
        for pane in self.panes:
            splitter.addWidget(pane)
        top = QHBoxLayout()
        top.addStretch()
        top.addWidget(self.split_box)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(splitter, 1)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.close_all)

    @property
    def profile(self):
        """The off-the-record QWebEngineProfile every pane's page uses (created on first use)."""
        if self._profile is None:
            self._profile, self._interceptor = web_modules().make_profile(self)
        return self._profile

    @property
    def interceptor(self):
        """The request filter: ``requests`` and ``blocked_urls`` list what the pages asked for."""
        self.profile  # noqa: B018 (creates both)
        return self._interceptor

    def add_user_script(self, name: str, source: str) -> None:
        """Run ``source`` in every page at document creation, before netron's scripts."""
        web_modules().add_script(self.profile, name, source)

    def set_models(self, models: Sequence[tuple[str, str | os.PathLike]]) -> None:
        """Offer ``[(label, path), ...]`` (the source model first, then the artifacts) in every pane."""
        self.is_open = True
        self._models = [(label, Path(path)) for label, path in models]
        self.panes[0].set_models(self._models, prefer=0)
        if self.split_box.isChecked():
            self.panes[1].set_models(self._models, prefer=1)

    def set_split(self, on: bool) -> None:
        """Show a second pane beside the first (or hide it and stop its server)."""
        if self.split_box.isChecked() != on:
            self.split_box.setChecked(on)  # comes back here through toggled
            return
        second = self.panes[1]
        second.setVisible(on)
        if on:
            second.set_models(self._models, prefer=1)
        else:
            second.release()
            second.set_models([])

    def close_all(self) -> None:
        """Stop every pane's server and forget the pages (called on close and when the app quits)."""
        self.is_open = False
        for pane in self.panes:
            pane.release()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.close_all()
        super().closeEvent(event)


# ---------------------------------------------------------------------------- standalone
def main(argv: list[str] | None = None) -> int:
    """``python -m ui.graph_view MODEL [MODEL2] [--screenshot PNG]``: the tab on its own."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m ui.graph_view", description=main.__doc__)
    parser.add_argument("models", nargs="+", type=Path, help="one model, or two to see side by side")
    parser.add_argument("--screenshot", type=Path, help="save a picture once the graphs are drawn, then quit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    prepare_web_engine()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    view = GraphView()
    view.setWindowTitle("Graph — Model Deployment Studio")
    view.resize(1280, 760)
    view.set_models([(path.name, path) for path in args.models])
    if len(args.models) > 1:
        view.set_split(True)
    if args.screenshot:
        waiting = {id(p) for p in view.panes if p.isVisibleTo(view)}

        def done(pane: GraphPane, *_):
            waiting.discard(id(pane))
            if not waiting:
                QTimer.singleShot(500, lambda: (view.grab().save(str(args.screenshot)), app.quit()))

        for pane in view.panes:
            pane.graph_drawn.connect(functools.partial(done, pane))
            pane.graph_failed.connect(functools.partial(done, pane))
            if pane.state in ("drawn", "failed"):  # a note shown at once (a model netron cannot draw)
                done(pane)
    view.show()
    code = app.exec()
    view.close_all()
    return code


if __name__ == "__main__":
    raise SystemExit(main())
