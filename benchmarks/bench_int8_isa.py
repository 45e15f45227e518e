"""INT8 weight type against the CPU's instruction set: accuracy of signed vs unsigned int8 weights on
real models, on the CPU this runs on.

    python benchmarks/bench_int8_isa.py [--runs 100] [--json FILE]
    sh tests/under_avx2.sh --python benchmarks/bench_int8_isa.py --runs 5 --only digits   # AVX2-only numerics (qemu)

For the pretrained all-MiniLM-L6-v2 (dynamic int8 on the held-out sentences) and a CNN trained on
scikit-learn's digits (static QDQ on held-out digits), the app's int8 conversion is run twice: with
the choice for a VNNI CPU (int8 weights, u8×s8 kernels) and for an AVX2-only CPU (uint8 weights,
u8×u8 kernels), forced through ``DEPLOY_STUDIO_CPU_FLAGS``. Both artifacts run on *this* CPU: on one
without VNNI the int8-weight column shows the saturation, on one with VNNI both are exact. Reported:
the evaluation on held-out data (mean cosine to the fp32 source; top-1 agreement for the CNN) and the
median int8 latency at batch 1. The kernel ISA is PyTorch's reading of CPUID (true under qemu, where
/proc/cpuinfo is the host's).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.bench_accuracy import convert, onnx_ms  # noqa: E402

CHOICES = {"int8 weights (VNNI choice)": "avx2 avx512f avx512bw avx512_vnni",
           "uint8 weights (AVX2 choice)": "avx2"}


def _run(label: str, model_path: Path, out: Path, feeds: dict, runs: int, **kw) -> dict:
    from app.machine.hardware import CPU_FLAGS_ENV

    os.environ[CPU_FLAGS_ENV] = CHOICES[label]   # the app's choice only; the kernels stay this CPU's
    result = convert(model_path, "int8", out, **kw)
    recorded = json.loads(Path(result.manifest).read_text())["recorded"]
    e = result.evaluation
    return {"weights": label, "weight_type": recorded.get("int8_weights_type"), "samples": e.samples,
            "cosine_mean": e.cosine_mean, "cosine_p5": e.cosine_p5, "top1_agreement": e.top1_agreement,
            "int8_ms": onnx_ms(result.artifact, feeds, runs)}


def minilm(out: Path, runs: int) -> list[dict]:
    from app.accuracy.data import load_data
    from app.request import DataSource
    from app.model.specs import TensorSpec
    from tests.minilm import weights_path
    from tests.real_data import SENTENCES, minilm_folder

    seq = 64
    kw = dict(arch="tests.minilm:SentenceEncoder", inputs=[f"input_ids:1x{seq}:int64", f"attention_mask:1x{seq}:int64"],
              calibration=SENTENCES, tokenizer=minilm_folder())
    specs = [TensorSpec("input_ids", "int64", (1, seq)), TensorSpec("attention_mask", "int64", (1, seq))]
    feeds = load_data(DataSource(SENTENCES, tokenizer=minilm_folder()), specs).samples[0]
    return [dict(model="all-MiniLM-L6-v2 (pretrained), dynamic int8", **_run(label, weights_path(), out, feeds, runs, **kw))
            for label in CHOICES]


def digits(out: Path, runs: int) -> list[dict]:
    import torch

    from app.accuracy.data import load_data
    from app.model.specs import TensorSpec
    from tests.real_data import train_digits_cnn, write_digit_images

    size = 32
    model = train_digits_cnn(size=size, width=16, epochs=6)
    state = out / "digits32.pt"
    torch.save(model.state_dict(), state)
    images = write_digit_images(out / "digits32-images", size=size)
    kw = dict(arch="tests.models:DigitsCNN", arch_kwargs=(("width", 16), ("size", size)), inputs=[f"x:1x1x{size}x{size}"],
              calibration=images)
    feeds = load_data(images, [TensorSpec("x", "float32", (1, 1, size, size))]).samples[0]
    return [dict(model="DigitsCNN trained on digits (32x32), static QDQ", **_run(label, state, out, feeds, runs, **kw))
            for label in CHOICES]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--json", type=Path)
    p.add_argument("--only", choices=("minilm", "digits"), help="one of the two models (MiniLM is slow under qemu)")
    args = p.parse_args()
    import platform

    import onnxruntime
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        rows = ((minilm(Path(tmp), args.runs) if args.only != "digits" else [])
                + (digits(Path(tmp), args.runs) if args.only != "minilm" else []))
    from app.machine.hardware import CPU_FLAGS_ENV, detect_cpu

    os.environ.pop(CPU_FLAGS_ENV, None)
    cpu = detect_cpu()
    machine = (f"{cpu.name or platform.machine()} (/proc/cpuinfo: {', '.join(cpu.features())}); "
               f"kernels picked from CPUID: {torch.backends.cpu.get_cpu_capability()}; torch {torch.__version__}, "
               f"onnxruntime {onnxruntime.__version__}")
    print(f"machine: {machine}")
    print("| model | int8 weights | samples | mean cosine | p5 cosine | top-1 agreement | int8 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        agree = "—" if r["top1_agreement"] is None else f"{r['top1_agreement']:.3f}"
        print(f"| {r['model']} | {r['weights']} | {r['samples']} | {r['cosine_mean']:.4f} | {r['cosine_p5']:.4f} | "
              f"{agree} | {r['int8_ms']:.2f} |")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
