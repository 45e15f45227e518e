"""Start the desktop app: ``python main.py [MODEL]`` or the ``deploy-studio-gui`` launcher.

Importing this module imports Qt and the window's modules only (no torch, onnx, pyqtgraph), so
the window paints well within a second; the rest warms up after the first paint.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from ui.settings import APPLICATION, ORGANIZATION

DESKTOP_FILE = "deploy-studio"  # resources/deploy-studio.desktop: lets Wayland/X11 match the window to its icon


def application(argv: list[str] | None = None) -> QApplication:
    """The one QApplication (created on first call), named for QSettings and the desktop."""
    app = QApplication.instance()
    if app is None:
        # fractional scaling (125 %, 150 %) renders crisply instead of rounding to whole factors
        QGuiApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
        # the Graph tab's QtWebEngine needs shared OpenGL contexts set before the application exists
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
        app = QApplication([sys.argv[0] if sys.argv else "deploy-studio", *(argv or [])])
    QCoreApplication.setOrganizationName(ORGANIZATION)
    QCoreApplication.setApplicationName(APPLICATION)
    QGuiApplication.setApplicationDisplayName(APPLICATION)
    QGuiApplication.setDesktopFileName(DESKTOP_FILE)
    from ui.main_window import app_icon

    app.setWindowIcon(app_icon())
    return app


def create_window(argv: list[str] | None = None):
    """Build and show the main window; a model path in ``argv`` is opened once the window is ready."""
    from ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    paths = [a for a in (argv or []) if not a.startswith("-")]
    if paths:
        model = Path(paths[0]).expanduser()
        window.ready.connect(lambda: window.opening.open_model(model))
    return window


def run_gui(argv: list[str] | None = None) -> int:
    """Open the window (and ``argv[0]``, a model file, if given); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print("usage: main.py [MODEL]   (opens the window; main.py convert|inspect|targets ... for the CLI)")
        return 0
    app = application(argv)
    window = create_window(argv)
    code = app.exec()
    shut_down(app, window)
    return int(code)


def shut_down(app: QApplication, window) -> None:
    """Tear the Qt side down in order while Python is whole (issue 33: ``Fatal Python error:
    bool_dealloc`` twice in seven long runs, while the interpreter finalized with Qt objects alive):
    the window closed (its jobs cancelled, graph servers stopped), every worker thread returned to its
    pool, their last queued signals delivered while the receivers live, the window deleted, then the
    QApplication itself — nothing of Qt is left for the interpreter's finalization to destroy."""
    import gc

    from PySide6.QtCore import QEvent

    from ui.workers import all_pools

    if not window.closed:  # app.exec() ended without a close (app.quit()): no question now
        window.quit_now()
    for pool in all_pools():
        pool.waitForDone(10_000)
    app.processEvents()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    del window
    gc.collect()
    from app.graph import netron_server

    netron_server.stop_all()
    app.shutdown()  # PySide6: the QApplication is deleted now, not during finalization


def main() -> int:
    """The ``deploy-studio-gui`` entry point."""
    return run_gui(sys.argv[1:])


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
