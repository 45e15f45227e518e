"""Take docs/screenshot-main.png: the window with a real ResNet-18 loaded, converted and benchmarked.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python tests/ui/make_screenshot.py docs/screenshot-main.png

(also works with QT_QPA_PLATFORM=offscreen). It drives the window as a user would: opens the model,
gives its architecture, makes the batch axis dynamic, ticks targets, converts, benchmarks. When the
benchmark engine (app.bench) is not in the checkout it measures the same runners itself with
``LoadedModel.run`` (real timings, fewer statistics) and charts those rows.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
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


def measure(model_path: Path, artifacts: list[Path], runs: int = 10) -> dict:
    """Latency of the source and each artifact through the engine's own loaders (real numbers)."""
    import numpy as np

    from app.inputs import make_feeds
    from app.loading import load_model
    from app.specs import TensorSpec

    source = load_model(model_path, arch="tests.models:ResNet18")
    runners = [("source (PyTorch)", source)] + [(p.name, load_model(p)) for p in artifacts]
    rows, base = [], {}
    for batch in BATCHES:
        spec = TensorSpec("x", "float32", (batch, 3, 224, 224), (batch, 3, 224, 224))
        feeds = make_feeds([spec], seed=0)
        ref = None
        for name, model in runners:
            feed = {model.inputs[0].name: feeds["x"]}
            for _ in range(3):
                out = model.run(feed)[0]
            ms = []
            for _ in range(runs):
                t = time.perf_counter()
                model.run(feed)
                ms.append((time.perf_counter() - t) * 1000)
            ms = np.array(ms)
            out = out.astype(np.float64).ravel()
            ref = out if ref is None else ref
            p50 = float(np.percentile(ms, 50))
            base.setdefault(batch, p50)
            rows.append({"name": name, "runtime": "torch" if name.endswith((".pt", ".pt2")) or "source" in name
                         else "onnxruntime", "provider": "CPU", "precision": name.split(".")[-2] if "." in name else "fp32",
                         "batch": batch, "p50_ms": p50, "p90_ms": float(np.percentile(ms, 90)),
                         "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "std_ms": float(ms.std()),
                         "throughput": batch * 1000 / float(ms.mean()), "speedup_vs_baseline": base[batch] / p50,
                         "cosine": float(out @ ref / (np.linalg.norm(out) * np.linalg.norm(ref))),
                         "rel_l2": float(np.linalg.norm(out - ref) / np.linalg.norm(ref))})
    return {"machine": {"measured_by": "tests/ui/make_screenshot.py"}, "results": rows}


def main(out: str) -> int:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    import torch

    from tests.models import ResNet18
    from ui.app import application
    from ui.main_window import BENCH_KEY, MainWindow

    work = Path(tempfile.mkdtemp(prefix="studio-shot-"))
    model_path = work / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(ResNet18().eval().state_dict(), model_path)

    app: QApplication = application([])
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "settings"))
    window = MainWindow()
    window.resize(1560, 980)
    window.show()
    wait_for(app, lambda: window.is_ready)

    window.open_model(model_path)
    wait_for(app, lambda: window.model.summary is not None)
    window.model.arch_edit.setText("tests.models:ResNet18")
    window.model.load_button.click()
    wait_for(app, lambda: window.model.summary is not None and window.model.summary.get("outputs"))
    editor = window.model.inputs
    editor.toggles(editor.row_of("x")).buttons[0].setChecked(True)
    window.options.out_dir.setText(str(work / "artifacts"))
    for target, precision in TARGETS:
        window.targets.check(target, precision)
    window.convert_button.click()
    wait_for(app, lambda: window.jobs.rows and not window.jobs.running, timeout=900)

    if window.bench_available:
        window.bench_options.batches.setText(", ".join(map(str, BATCHES)))
        window.benchmark_button.click()
        wait_for(app, lambda: window.bench is None and window.latency_chart.rows, timeout=900)
    else:
        window.jobs.add_job(BENCH_KEY, "Benchmark")
        result = measure(model_path, window.results.artifacts())
        window.show_benchmark(result)
        window.jobs.show_outcome(BENCH_KEY, "done", f"{len(result['results'])} measurements")
    window.tabs.setCurrentIndex(0)
    window.results.resizeColumnsToContents()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    image = window.grab()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    image.save(out)
    print(f"saved {out} ({image.width()}x{image.height()}); artifacts in {work}")
    window.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else str(REPO / "docs" / "screenshot-main.png")))
