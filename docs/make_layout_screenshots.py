"""Take the layout and progress screenshots at the window's default size, 1280×860 (issue 33, items 4 and
5), into docs/screenshots/: the digits example (a CNN trained in seconds, its held-out digits as data)
converted to ONNX and OpenVINO at fp32 and int8 on its data (``main-1280x860.png``), a benchmark while it
runs (``benchmark-running-1280x860.png``: the jobs pane grown, the row's stage, clock and estimate, the
Latency tab saying a benchmark runs), its result (``benchmarked-1280x860.png``), and a sweep whose points
come as they are measured (``sweep-running-1280x860.png``).

    QT_QPA_PLATFORM=offscreen .venv/bin/python docs/make_layout_screenshots.py [OUT_DIR]

It drives the window as a user would; every figure on screen is measured.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = [("onnx", "fp32"), ("onnx", "int8"), ("openvino", "fp32"), ("openvino", "int8")]


def wait_for(app, condition, timeout: float = 600.0) -> None:
    """Run the event loop until ``condition()`` holds, looking every 50 ms. One QEventLoop rather than
    ``processEvents()`` in a loop: PySide6 6.12 on CPython 3.11 drops a reference to None at each call of a
    method that returns nothing, and some thousands of them end the interpreter (``none_dealloc``)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.monotonic() + timeout
    loop, timer = QEventLoop(), QTimer()
    timer.setInterval(50)
    timer.timeout.connect(lambda: (condition() or time.monotonic() > end) and loop.quit())
    timer.start()
    if not condition():
        loop.exec()
    timer.stop()
    if not condition():
        raise TimeoutError("the window did not get there in time")


def shoot(app, window, path: Path) -> None:
    wait_for(app, lambda: True)
    assert (window.width(), window.height()) == (1280, 860), window.size()
    window.grab().save(str(path))
    print(f"wrote {path}")


def main(out_dir: Path) -> int:
    from PySide6.QtCore import QSettings

    from app.session import BENCHMARK, SWEEP
    from ui.app import application, shut_down
    from ui.main_window import MainWindow

    work = Path(tempfile.mkdtemp(prefix="studio-layout-shot-"))
    app = application([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    window = MainWindow()   # a first start: the default size, 1280×860
    window.show()
    wait_for(app, lambda: window.is_ready)
    window.opening.open_example(work / "example")
    wait_for(app, lambda: window.options.data_note.isVisible() and window.model.summary is not None
             and not window.session.jobs_running)
    for target, precision in TARGETS:
        if window.targets.box(target, precision).isEnabled():
            window.targets.check(target, precision)
    window.convert_button.click()
    wait_for(app, lambda: window.jobs.rows and not window.jobs.running, timeout=900)
    shoot(app, window, out_dir / "main-1280x860.png")

    window.bench_options.batches.setText("1, 4")
    window.bench_options.runs.setValue(60)
    window.benchmark_button.click()
    wait_for(app, lambda: BENCHMARK in window.session.jobs and window.session.jobs[BENCHMARK].stage.startswith("time")
             and window.session.jobs[BENCHMARK].remaining() is not None)
    shoot(app, window, out_dir / "benchmark-running-1280x860.png")
    wait_for(app, lambda: window.session.jobs[BENCHMARK].ended, timeout=900)
    shoot(app, window, out_dir / "benchmarked-1280x860.png")

    panel = window.sweep_panel
    panel.threads.setText("1, 2")
    panel.batches.setText("1, 4")
    panel.concurrency.setText("1, 2")
    panel.seconds.setValue(0.5)
    window.tabs.setCurrentWidget(window.sweep_page)
    panel.run_button.click()
    wait_for(app, lambda: len(panel.live_points()) >= 6)
    shoot(app, window, out_dir / "sweep-running-1280x860.png")
    wait_for(app, lambda: window.session.jobs[SWEEP].ended, timeout=900)
    shut_down(app, window)   # Qt torn down in order before the interpreter finalizes
    return 0


if __name__ == "__main__":
    code = main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs" / "screenshots")
    sys.stdout.flush()
    # not the interpreter's finalization: the references to None that PySide6 6.12 dropped while the charts
    # were painted (see wait_for) make it abort there, after the screenshots are written
    os._exit(code)
