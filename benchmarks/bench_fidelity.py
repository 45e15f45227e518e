"""Fidelity of the harness: its p50 against a bare ``time.perf_counter()`` loop on the same session.

    python benchmarks/bench_fidelity.py [--rounds 5] [--runs 200] [--threads N] [--json FILE]

For each model (the ResNet-18 of :mod:`benchmarks.bench_models` exported to ONNX fp32, and the
tests' SmallCNN, whose ~30 µs calls make any per-call overhead of the harness visible), one ONNX
Runtime session is created through the harness's :class:`~app.runtimes.onnxrt.OnnxRuntimeRunner`.
Then, alternating, ``--rounds`` times: the harness's loop (``app.bench.harness.time_calls``) and a
bare loop ``t = perf_counter(); session.run(None, feeds); perf_counter() - t`` with the same
warm-up, each ``--runs`` calls. Reported: the median over rounds of each p50 and their ratio
(goal: within 3 %).

Then the whole interleaved benchmark (``app.bench.harness.run_benchmark``: two sessions of the same
file, A and B, timed in ``--rounds`` rotating rounds of ``--runs`` calls in all), alternated with a bare
loop on a third session, ``--rounds`` times: A's p50 against the bare p50 (goal: within 3 %). And
what 50 runs buy: the width of A's p50 95 % interval and B's speed-up interval over A — the same file
twice, so the honest verdict is "no measurable difference".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger("torch.onnx").setLevel(logging.ERROR)  # "torchvision is not installed" chatter

import numpy as np  # noqa: E402


def export(model, example, path: Path) -> Path:
    import contextlib
    import io

    import torch

    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (example,), str(path), input_names=["x"], dynamo=True, external_data=False)
    return path


def bare_p50(session, feeds: dict, runs: int, warmup: int) -> float:
    for _ in range(warmup):
        session.run(None, feeds)
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(None, feeds)
        out.append(time.perf_counter() - t)
    return float(np.percentile(out, 50)) * 1000.0


def measure(path: Path, shape: tuple[int, ...], args) -> dict:
    from app.bench.harness import BenchConfig, default_threads, time_calls
    from app.runtimes.onnxrt import OnnxRuntimeRunner
    from app.bench.stats import LatencyStats

    threads = args.threads or default_threads()
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    config = BenchConfig(warmup=args.warmup, warmup_seconds=0.0, runs=args.runs, min_seconds=0.0)
    harness, bare = [], []
    with OnnxRuntimeRunner(path, path.name, threads=threads) as runner:
        runner.load()
        prepared = runner.prepare(feeds)
        for _ in range(args.rounds):
            samples, _ = time_calls(runner, prepared, config, should_cancel=lambda: False,
                                    on_tick=lambda phase, part: None)
            harness.append(LatencyStats.from_seconds(samples).p50_ms)
            bare.append(bare_p50(runner.session, feeds, args.runs, args.warmup))
    h, b = statistics.median(harness), statistics.median(bare)
    return {"model": path.name, "threads": threads, "rounds": args.rounds, "runs": args.runs,
            "harness_p50_ms": h, "bare_p50_ms": b, "ratio": h / b, "within_3pct": abs(h / b - 1) <= 0.03,
            "harness_rounds": harness, "bare_rounds": bare}


def measure_interleaved(path: Path, shape: tuple[int, ...], args) -> dict:
    from app.bench.harness import BenchConfig, default_threads, run_benchmark
    from app.runtimes.onnxrt import OnnxRuntimeRunner
    from app.model.specs import TensorSpec

    threads = args.threads or default_threads()
    specs = [TensorSpec("x", "float32", shape)]
    feeds = {"x": np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    bare_runner = OnnxRuntimeRunner(path, "bare", threads=threads)  # the same session options as A and B
    bare_runner.load()
    bare_session = bare_runner.session

    def bench(runs: int):
        pair = [OnnxRuntimeRunner(path, name, threads=threads) for name in ("A", "B")]
        config = BenchConfig(warmup=args.warmup, warmup_seconds=0.0, runs=runs, min_seconds=0.0,
                             rounds=args.rounds, threads=threads)
        return {r.name: r for r in run_benchmark(pair[0], pair[1:], specs, config).rows}

    harness, bare = [], []
    for _ in range(args.rounds):
        harness.append(bench(args.runs)["A"].stats.p50_ms)
        bare.append(bare_p50(bare_session, feeds, args.runs, args.warmup))
    h, b = statistics.median(harness), statistics.median(bare)
    bare_runner.close()
    fifty = bench(50)
    a, other = fifty["A"], fifty["B"]
    half_width = (a.p50_ci_ms[1] - a.p50_ci_ms[0]) / 2 / a.stats.p50_ms
    return {"model": path.name, "threads": threads, "rounds": args.rounds, "runs": args.runs,
            "interleaved_p50_ms": h, "bare_p50_ms": b, "ratio": h / b, "within_3pct": abs(h / b - 1) <= 0.03,
            "p50_ci_half_width_pct_at_50_runs": 100 * half_width,
            "speedup_B_over_A_at_50_runs": other.speedup_vs_baseline, "speedup_ci_at_50_runs": list(other.speedup_ci),
            "verdict_at_50_runs": other.verdict}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--threads", type=int)
    p.add_argument("--json", type=Path, metavar="FILE")
    args = p.parse_args()
    import torch

    from benchmarks.bench_models import resnet18
    from tests.models import make

    rows, interleaved = [], []
    with tempfile.TemporaryDirectory(prefix="bench-fidelity-") as tmp:
        for name, model, shape in (("resnet18", resnet18(), (1, 3, 224, 224)), ("small_cnn", make("cnn"), (1, 3, 32, 32))):
            path = export(model, torch.randn(*shape), Path(tmp) / f"{name}.onnx")
            rows.append(measure(path, shape, args))
            interleaved.append(measure_interleaved(path, shape, args))
    print(f"{'model':14} {'threads':>7} {'harness p50 ms':>15} {'bare p50 ms':>12} {'ratio':>7}  within 3 %")
    for r in rows:
        print(f"{r['model']:14} {r['threads']:7d} {r['harness_p50_ms']:15.4f} {r['bare_p50_ms']:12.4f} "
              f"{r['ratio']:7.4f}  {'yes' if r['within_3pct'] else 'NO'}")
    print()
    print(f"{'model':14} {'interleaved p50 ms':>19} {'bare p50 ms':>12} {'ratio':>7}  within 3 %   "
          f"{'p50 ±95% @50 runs':>18}  B/A speed-up @50 runs [95 %]        verdict")
    for r in interleaved:
        lo, hi = r["speedup_ci_at_50_runs"]
        print(f"{r['model']:14} {r['interleaved_p50_ms']:19.4f} {r['bare_p50_ms']:12.4f} {r['ratio']:7.4f}  "
              f"{'yes' if r['within_3pct'] else 'NO':9}   {r['p50_ci_half_width_pct_at_50_runs']:16.1f} %  "
              f"{r['speedup_B_over_A_at_50_runs']:.3f}× [{lo:.3f}–{hi:.3f}]        {r['verdict_at_50_runs']}")
    if args.json:
        args.json.write_text(json.dumps({"harness_loop": rows, "interleaved": interleaved}, indent=2))
    return 0 if all(r["within_3pct"] for r in rows + interleaved) else 1


if __name__ == "__main__":
    raise SystemExit(main())
