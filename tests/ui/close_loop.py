"""Open the window, tick a target, close it and open the next one, N times in one process (issue 31: a
window closed while its start-up jobs were finishing crashed PySide6 within 1-46 rounds).

    PYTHONPATH=. python tests/ui/close_loop.py 200      # prints "200 rounds, no crash" and exits 0
    PYTHONPATH=. python tests/ui/close_loop.py 200 -v   # and "round N" before each round

Run as a script it uses a private settings, cache and temporary folder (removed at the end); the
window's tests import :func:`open_tick_close` to run the same round under pytest-qt.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path


def wait_for(signal, timeout_ms: int = 30_000) -> bool:
    """Run the event loop until ``signal`` fires (True) or ``timeout_ms`` passes (False)."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, heard = QEventLoop(), []
    timer = QTimer(singleShot=True)
    timer.timeout.connect(loop.quit)

    def on_signal(*_args) -> None:
        heard.append(True)
        loop.quit()

    signal.connect(on_signal)
    timer.start(timeout_ms)
    loop.exec()
    signal.disconnect(on_signal)
    timer.stop()
    return bool(heard)


def open_tick_close(round_no: int) -> None:
    """One round: a window opened and shown, then closed and deleted, by ``round_no % 3``: 0, once ready
    (targets probed; the engine's warm-up may still be queued or running) with a target ticked; 1, at
    once, before the start-up jobs are started; 2, right after they are started (both queued or
    running), as a user who closes the window at once does."""
    from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEvent, Qt
    from PySide6.QtTest import QTest

    from app.session import JobKey
    from ui.main_window import MainWindow

    window = MainWindow()
    window.show()
    mode = round_no % 3
    if mode == 0:
        assert wait_for(window.ready), "the window did not become ready within 30 s"
        box = window.targets.box("onnx", "fp32")
        if box.isEnabled():
            QTest.mouseClick(box, Qt.MouseButton.LeftButton)
    elif mode == 2:
        deadline = QDeadlineTimer(30_000)
        while JobKey("probe targets") not in window.running and not window.is_ready:
            assert not deadline.hasExpired(), "the start-up jobs did not start within 30 s"
            QCoreApplication.processEvents()
    window.close()
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    numbers = [a for a in argv if a != "-v"]
    rounds = int(numbers[0]) if numbers else 200
    private = Path(tempfile.mkdtemp(prefix="close-loop-"))
    for var in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "TMPDIR"):
        (private / var).mkdir()
        os.environ[var] = str(private / var)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    tempfile.tempdir = None
    from PySide6.QtWidgets import QApplication

    from tests.ui.user import private_settings

    app = QApplication.instance() or QApplication([])
    private_settings(private / "settings")
    started = time.perf_counter()
    for n in range(rounds):
        if verbose:
            print(f"round {n}", flush=True)
        open_tick_close(n)
    print(f"{rounds} rounds, no crash ({time.perf_counter() - started:.1f} s)", flush=True)
    from ui.workers import all_pools

    for pool in all_pools():
        pool.waitForDone(10_000)
    del app
    import shutil

    shutil.rmtree(private, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main(sys.argv[1:]))
