"""Speed of what we produce: the best artifact against eager PyTorch, batch 1, on this machine.

    python benchmarks/bench_speed.py [--models resnet18,bert] [--runs 100] [--min-seconds 3]
                                     [--threads N] [--json FILE] [--work DIR]

Builds the two networks of :mod:`benchmarks.bench_models` (ResNet-18 at 1x3x224x224; a 6-layer,
384-wide, 6-head BERT-style encoder at sequence 128 with int64 ids and mask), converts each with
``app.pipeline.convert`` to the targets below (default options: what a user gets), and times them
with the benchmark harness (``app.bench``) beside eager PyTorch. Goals: best artifact with cosine
≥ 0.99 at least 4× (ResNet-18) / 2× (encoder) faster than eager at p50. Static INT8 calibrates on
random inputs here (no data set ships with the repository), as the table's notes say.
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

from benchmarks.bench_models import BERT_ARGS, RESNET_ARGS  # noqa: E402

MODELS = {
    "resnet18": {"factory": "resnet18", "flags": RESNET_ARGS, "goal": 4.0,
                 "targets": [("onnx", "fp32", None), ("onnx", "int8", "static"), ("onnx", "int8", "dynamic"),
                             ("torchscript-trace", "fp32", None)]},
    "bert": {"factory": "bert_encoder", "flags": BERT_ARGS, "goal": 2.0,
             "targets": [("onnx", "fp32", None), ("onnx", "int8", "dynamic"), ("onnx", "int8", "static"),
                         ("torchscript-trace", "fp32", None)]},
}
BUDGET = 0.99


def _request(state: Path, flags: list[str], target: str = "bench", precision: str = "fp32",
             quantization: str | None = None, out: Path | None = None):
    from app.request import ConversionRequest, ModelSource
    from app.model.specs import parse_dynamic, parse_input

    it = iter(flags)
    opts: dict[str, list[str]] = {"--arch": [], "--input": [], "--dynamic": []}
    for flag in it:
        opts[flag].append(next(it))
    source = ModelSource(state, inputs=tuple(parse_input(s) for s in opts["--input"]),
                         dynamic=tuple(parse_dynamic(s) for s in opts["--dynamic"]), arch=opts["--arch"][0])
    return ConversionRequest(source, target, precision, {"quantization": quantization} if quantization else {},
                             out_dir=out, overwrite=True)


def run_model(key: str, work: Path, args) -> dict:
    import torch

    from app.bench.benchmark import benchmark
    from app.bench.harness import BenchConfig
    from app.bench.output import format_table
    from app.jobs import convert_in_process as convert
    from benchmarks import bench_models

    spec = MODELS[key]
    state = work / f"{key}.pt"
    torch.save(getattr(bench_models, spec["factory"])().state_dict(), state)
    artifacts, names = [], {}
    for target, precision, quant in spec["targets"]:
        out = work / f"{target}-{precision}-{quant or 'default'}"
        print(f"[{key}] convert {target} {precision} {quant or ''}".rstrip(), file=sys.stderr, flush=True)
        result = convert(_request(state, spec["flags"], target, precision, quant, out))
        artifacts.append(result.artifact)
        names[str(result.artifact)] = " ".join(p for p in (target, precision, quant) if p)
    config = BenchConfig(runs=args.runs, min_seconds=args.min_seconds, warmup=10, warmup_seconds=0.5,
                         threads=args.threads)
    print(f"[{key}] benchmark", file=sys.stderr, flush=True)
    result = benchmark(_request(state, spec["flags"]).source, artifacts, config)
    data = result.to_json()
    for row in data["results"]:
        row["name"] = names.get(row["artifact"] or "", row["name"])
    print(f"\n== {key} ==")
    print(format_table(data))
    fits = [r for r in data["results"] if not r["baseline"] and (r["cosine"] or 0) >= BUDGET]
    best = max(fits, key=lambda r: r["speedup_vs_baseline"]) if fits else None
    if best:
        verdict = "met" if best["speedup_vs_baseline"] >= spec["goal"] else "MISSED"
        print(f"best within cosine ≥ {BUDGET}: {best['name']}  ×{best['speedup_vs_baseline']:.2f} "
              f"(goal ≥ {spec['goal']:.0f}×: {verdict}), cosine {best['cosine']:.6f}")
    data["best"] = best
    data["goal"] = spec["goal"]
    return data


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="resnet18,bert")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--min-seconds", type=float, default=3.0)
    p.add_argument("--threads", type=int)
    p.add_argument("--json", type=Path, metavar="FILE")
    p.add_argument("--work", type=Path, metavar="DIR", help="keep the models and artifacts here (default: a temp dir)")
    args = p.parse_args()
    report = {}
    with tempfile.TemporaryDirectory(prefix="bench-speed-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for key in args.models.split(","):
            report[key] = run_model(key.strip(), work, args)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0 if all(r["best"] and r["best"]["speedup_vs_baseline"] >= r["goal"] for r in report.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
