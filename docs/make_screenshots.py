"""Take the README's screenshots: the window with a real ResNet-18 loaded, converted and benchmarked
(docs/screenshot-main.png), then its Graph tab on the INT8 ONNX artifact (docs/screenshot-graph.png);
and a CNN trained on scikit-learn's digits, converted to INT8 on its data, diagnosed (the Diagnosis
tab: docs/screenshot-diagnosis.png) and its worst node shown in the graph (docs/screenshot-node.png).
``... make_screenshots.py docs diagnosis`` takes only the last two; ``... docs/screenshots profile`` the
Profile tab (docs/screenshots/profile-tab-1280x860.png).

    QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox --disable-gpu" \
        xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/make_screenshots.py

It drives the window as a user would: opens the model, gives its architecture, makes the batch axis
dynamic, ticks targets, converts, benchmarks, opens the Graph tab. Every number on screen is measured.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGETS = [("torchscript-trace", "fp32"), ("torch-export", "fp32"), ("onnx", "fp32"), ("onnx", "fp16"),
           ("onnx", "int8")]
BATCHES = [1, 4, 8]


def wait_for(app, condition, timeout: float = 300.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def open_studio(work: Path, model_path: Path, arch: str):
    """The window (settings private to ``work``), ready, with ``model_path`` loaded through ``arch``."""
    from PySide6.QtCore import QSettings

    from ui.app import application
    from ui.main_window import MainWindow

    app = application([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    window = MainWindow()
    window.resize(1560, 980)
    window.show()
    wait_for(app, lambda: window.is_ready)
    window.opening.open_model(model_path)
    wait_for(app, lambda: window.model.summary is not None)
    window.model.arch_edit.setText(arch)
    window.model.load_button.click()
    wait_for(app, lambda: window.model.summary is not None and window.model.summary.get("outputs"))
    return app, window


def main(out_dir: Path) -> int:
    import torch

    from benchmarks.bench_models import ResNet18

    work = Path(tempfile.mkdtemp(prefix="studio-shot-"))
    model_path = work / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(ResNet18().eval().state_dict(), model_path)

    app, window = open_studio(work, model_path, "benchmarks.bench_models:ResNet18")
    editor = window.model.inputs
    editor.toggles(editor.row_of("x")).buttons[0].setChecked(True)
    window.options.out_dir.setText(str(work / "artifacts"))
    window.options.quantization.setCurrentText("dynamic")  # int8 without data: chosen, so nothing is asked
    for target, precision in TARGETS:
        window.targets.check(target, precision)
    window.convert_button.click()
    wait_for(app, lambda: window.jobs.rows and not window.jobs.running, timeout=900)

    window.bench_options.batches.setText(", ".join(map(str, BATCHES)))
    window.benchmark_button.click()
    wait_for(app, lambda: not window.session.jobs_running and window.latency_chart.rows, timeout=900)
    window.tabs.setCurrentIndex(0)
    window.results.resizeColumnsToContents()
    shoot(app, window, out_dir / "screenshot-main.png")

    window.graph_tab.show_graph_tab()
    pane = window.graph.panes[0]
    int8 = window.results.row_for("onnx", "int8").artifact
    pane.selector.setCurrentIndex([pane.selector.itemData(i) for i in range(pane.selector.count())].index(str(int8)))
    wait_for(app, lambda: pane.state in ("drawn", "failed"), timeout=120)
    if pane.state != "drawn":
        raise RuntimeError(f"no graph: {pane.message.text()}")
    shoot(app, window, out_dir / "screenshot-graph.png")
    print(f"artifacts in {work}")
    window.close()
    return 0


def diagnosis(out_dir: Path) -> int:
    """The Diagnosis tab and the Graph tab with the worst node selected, for a trained digits CNN."""
    import torch

    from tests import real_data

    work = Path(tempfile.mkdtemp(prefix="studio-shot-"))
    model_path = work / "digits.pt"
    torch.save(real_data.train_digits_cnn().state_dict(), model_path)
    images = real_data.write_digit_images(work / "digits", count=600)

    app, window = open_studio(work, model_path, "tests.models:DigitsCNN")
    editor = window.model.inputs
    editor.shape_edit(editor.row_of("x")).setText("1x1x8x8")
    window.options.out_dir.setText(str(work / "artifacts"))
    window.set_data(images)
    for target, precision in (("onnx", "fp32"), ("onnx", "int8")):
        window.targets.check(target, precision)
    wait_for(app, window.convert_button.isEnabled)
    window.convert_button.click()
    wait_for(app, lambda: window.jobs.rows and not window.jobs.running, timeout=900)
    int8 = next(i for i, r in enumerate(window.results.rows) if r.precision == "int8")
    window.diagnose(int8)
    wait_for(app, lambda: window.diagnosis.table.rowCount() > 0, timeout=300)
    window.results.resizeColumnsToContents()
    shoot(app, window, out_dir / "screenshot-diagnosis.png")
    window.diagnosis.choose(0)
    pane = window.graph.panes[0]
    shown: list[str] = []
    pane.node_shown.connect(shown.append)
    wait_for(app, lambda: shown, timeout=120)
    shoot(app, window, out_dir / "screenshot-node.png")
    print(f"worst node {shown[0]!r}; artifacts in {work}")
    window.close()
    return 0


def profile(out_dir: Path) -> int:
    """The Profile tab at 1280x860 on the digits CNN's int8 ONNX artifact, diagnosed first, so the error each
    node adds stands beside its time (``... make_screenshots.py docs/screenshots profile``)."""
    import torch

    from tests import real_data

    work = Path(tempfile.mkdtemp(prefix="studio-shot-"))
    model_path = work / "digits.pt"
    torch.save(real_data.train_digits_cnn().state_dict(), model_path)
    images = real_data.write_digit_images(work / "digits", count=300)
    app, window = open_studio(work, model_path, "tests.models:DigitsCNN")
    editor = window.model.inputs
    editor.shape_edit(editor.row_of("x")).setText("1x1x8x8")
    window.options.out_dir.setText(str(work / "artifacts"))
    window.opening.set_data(images)
    wait_for(app, lambda: window.options.calibration.text() == str(images), timeout=60)
    window.targets.check("onnx", "int8")
    wait_for(app, window.convert_button.isEnabled)
    window.convert_button.click()
    wait_for(app, lambda: any(r.artifact is not None for r in window.results.rows), timeout=900)
    int8 = next(i for i, r in enumerate(window.results.rows) if r.precision == "int8")
    window.measuring.diagnose(int8)
    wait_for(app, lambda: window.diagnosis.table.rowCount() > 0, timeout=300)
    window.results.selectRow(int8)
    window.profile_panel.button.click()
    wait_for(app, lambda: window.profile_panel.table.rowCount() > 0, timeout=300)
    window.showNormal()
    window.resize(1280, 860)
    window.tabs.setCurrentWidget(window.profile_panel)
    shoot(app, window, out_dir / "profile-tab-1280x860.png")
    window.close()
    return 0


def shoot(app, window, path: Path) -> None:
    for _ in range(50):  # let the last paints (and the web view's frames) land
        app.processEvents()
        time.sleep(0.02)
    image = window.grab()
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(str(path))
    print(f"saved {path} ({image.width()}x{image.height()})")


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "docs"
    which = {"diagnosis": diagnosis, "profile": profile}.get(sys.argv[2] if len(sys.argv) > 2 else "", main)
    raise SystemExit(which(folder))
