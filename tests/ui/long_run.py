"""Long runs of the real app, then quit (issue 33, item 9: ``Fatal Python error: bool_dealloc`` while the
interpreter finalized after convert + benchmark + diagnosis/graph + sweep).

One run is ``python main.py MODEL`` (the app's own entry, its teardown included) driven through the
window as a user drives it: the model opens, the data folder is set, ONNX fp32 + int8 and OpenVINO int8
are converted, a benchmark runs, the int8 artifact is diagnosed, the graph is shown (its server is a
child process), a sweep runs, and Quit is pressed. Every step waits on the window's own signals; the
run's exit code is main's.

    PYTHONPATH=. python tests/ui/long_run.py --runs 20     # "20 runs: exit code 0 every time", exit 0
    PYTHONPATH=. xvfb-run -a python tests/ui/long_run.py --runs 20 --webengine    # the graph in QtWebEngine
    PYTHONPATH=. xvfb-run -a python tests/ui/long_run.py --webengine --screenshots docs/screens  # every tab, 1280x860

Each run gets a private settings/config/cache folder; the model is the app's own example (a CNN trained
on scikit-learn's digits, with its data folder), written once into a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DRIVER = r"""
import sys
from pathlib import Path
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import main
from app.session import JobKey
from ui import app as ui_app

model, arch, data, out, shape = sys.argv[1:5] + [sys.argv[7]]
made = ui_app.create_window
steps = []

def say(text):
    print(text, flush=True)

def create_window(argv):
    global w
    w = made(argv)
    w.session.events.model_loaded.connect(on_loaded)
    QTimer.singleShot(int(sys.argv[5]) * 1000, lambda: (say("timed out at: " + (steps[-1] if steps else "start")),
                                                        QApplication.exit(4)))
    return w

ui_app.create_window = create_window

def step(name):
    steps.append(name)
    say(name)

def on_loaded(summary):
    if summary.get("format") == "state-dict" and not getattr(w, "_arch_typed", False):
        w._arch_typed = True
        step("architecture")
        w.model.arch_edit.setText(arch)
        w.model.load_button.click()
        return
    if not getattr(w, "_shaped", False):   # the example's input shape, typed as a user types it
        w._shaped = True
        step("shape")
        from PySide6.QtTest import QTest
        editor = w.model.inputs
        edit = editor.shape_edit(editor.row_of("x"))
        edit.selectAll()
        QTest.keyClicks(edit, shape)          # a guessed shape replaced: no new inspection to wait for
    w.session.events.model_loaded.disconnect(on_loaded)
    step("data")
    w.opening.set_data(data).succeeded.connect(convert)

def convert(*_):
    step("convert")
    for target, precision in (("onnx", "fp32"), ("onnx", "int8"), ("openvino", "int8")):
        w.targets.check(target, precision)
    w.options.out_dir.setText(out)
    w.jobs.all_finished.connect(converted)
    QTimer.singleShot(0, w.convert_button.click)

def converted(*_):
    w.jobs.all_finished.disconnect(converted)
    rows = w.results.rows
    say("converted: " + ", ".join(f"{r.target} {r.precision}" for r in rows))
    step("benchmark")
    w.bench_options.batches.setText("1")
    w.bench_options.runs.setValue(5)
    w.session.events.benchmark_finished.connect(benchmarked)
    w.benchmark_button.click()

def benchmarked(*_):
    w.session.events.benchmark_finished.disconnect(benchmarked)
    step("diagnosis")
    int8 = next(i for i, r in enumerate(w.results.rows) if r.target == "onnx" and r.precision == "int8")
    w.session.events.diagnosis_finished.connect(diagnosed)
    if w.measuring.diagnose(int8) is None:
        say("diagnosis did not start")
        QApplication.exit(5)

def diagnosed(*_):
    w.session.events.diagnosis_finished.disconnect(diagnosed)
    step("graph")
    w.graph_tab.show_graph_tab()
    QTimer.singleShot(0, sweep)

def sweep():
    step("sweep")
    panel = w.sweep_panel
    panel.threads.setText("1")
    panel.batches.setText("1, 2")
    panel.concurrency.setText("1")
    panel.seconds.setValue(0.1)
    w.session.events.sweep_finished.connect(swept)
    panel.run_button.click()

def swept(*_):
    w.session.events.sweep_finished.disconnect(swept)
    shots = sys.argv[6] if len(sys.argv) > 6 else ""
    if not shots:
        return finish()
    step("screenshots")
    w.showNormal()
    w.resize(1280, 860)
    QTimer.singleShot(0, lambda: shoot(Path(shots), 0))

def shoot(folder, index):
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication
    if index >= w.tabs.count():
        return finish()
    w.tabs.setCurrentIndex(index)
    for _ in range(30):   # the tab's paints (a web view's frames) land
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    name = w.tabs.tabText(index).replace("&", "").strip().lower().replace(" ", "-")
    folder.mkdir(parents=True, exist_ok=True)
    image = w.grab()
    image.save(str(folder / f"window-{index}-{name}.png"))
    say(f"saved window-{index}-{name}.png ({image.width()}x{image.height()})")
    QTimer.singleShot(300 if name == "graph" else 0, lambda: shoot(folder, index + 1))

def finish():
    step("quit")
    w.quit_action.trigger()

sys.exit(main.main([model]))
"""


def write_model(folder: Path) -> dict[str, str]:
    """The app's example (a digits CNN trained here, its data folder) in ``folder``."""
    from app.examples.digits import write_example

    return write_example(folder, epochs=2)


def one_run(paths: dict[str, str], work: Path, timeout_s: int, webengine: bool = False,
            screenshots: Path | None = None) -> tuple[int, str]:
    """One long run in a fresh process with private settings; its exit code and its output. ``webengine``:
    the graph in QtWebEngine (needs a display: run under ``xvfb-run``), else offscreen with the graph's
    "open in browser" pane (its server still runs)."""
    config = work / "config"
    env = dict(os.environ, PYTHONPATH=str(REPO), XDG_CONFIG_HOME=str(config), XDG_CACHE_HOME=str(work / "cache"),
               XDG_DATA_HOME=str(work / "data"), HOME=str(work / "home"))
    if webengine:
        env.setdefault("QTWEBENGINE_CHROMIUM_FLAGS", "--no-sandbox")
        env["QT_QPA_PLATFORM"] = "xcb"
    else:
        env["DEPLOYSTUDIO_NO_WEBENGINE"] = "1"
        env.setdefault("QT_QPA_PLATFORM", "offscreen")
    for d in ("config", "cache", "data", "home"):
        (work / d).mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", DRIVER, paths["model"], paths["arch"], paths["data"],
                           str(work / "out"), str(timeout_s), str(screenshots or ""),
                           paths["input"].partition(":")[2]], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout_s + 60)
    text = proc.stdout + proc.stderr
    return proc.returncode, text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--timeout", type=int, default=600, help="seconds one run may take")
    p.add_argument("-v", action="store_true", help="print each run's steps")
    p.add_argument("--webengine", action="store_true", help="draw the graph in QtWebEngine (under xvfb-run)")
    p.add_argument("--screenshots", type=Path, help="before quitting, grab every tab at 1280x860 into this folder")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long-run-") as tmp:
        root = Path(tmp)
        paths = write_model(root / "example")
        codes = []
        for n in range(1, args.runs + 1):
            started = time.perf_counter()
            code, text = one_run(paths, root / f"run{n}", args.timeout, args.webengine,
                                 args.screenshots.resolve() if args.screenshots and n == 1 else None)
            codes.append(code)
            crashed = "Fatal Python error" in text or "Traceback" in text
            print(f"run {n}: exit code {code}{' (crash text in its output)' if crashed else ''}, "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            if args.v or code != 0 or crashed:
                print(text[-4000:], flush=True)
            if crashed and code == 0:
                codes[-1] = 99
    bad = [c for c in codes if c != 0]
    print(f"{len(codes)} runs: " + ("exit code 0 every time" if not bad else f"{len(bad)} ended otherwise: {codes}"))
    return 0 if not bad else 1


if __name__ == "__main__":
    sys.exit(main())
