"""CLI commands ``bench`` and ``optimize``.

Registered by :func:`app.cli.parser.build_parser` through :func:`add_bench_commands`; each subcommand sets
``handler`` so ``app.cli.parser.main`` dispatches to it. Exit codes as everywhere: 0 success, 1 a runner
or candidate failed (the others are still reported), 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.bench import output as report, sweep
from app.bench.harness import BenchConfig, parse_batches
from app.artifacts.atomic_output import prepare_out_dir
from app.bench.optimize import default_out_dir, optimize_job
from app.bench.run import BenchRequest, run_bench
from app.bench.sweep import sweep_job
from app.cli.console import StderrProgress
from app.cli.flags import add_budget_args, add_data_args, add_model_args, data_source_of, source_of
from app.errors import BadInput
from app.jobs import run_job
from app.runtimes.onnxrt import onnxruntime_providers, short_provider


def add_bench_commands(sub) -> None:
    """Add ``bench`` and ``optimize`` to the ``main.py`` subparsers ``sub``."""

    b = sub.add_parser("bench", help="benchmark the source model and its artifacts side by side",
                       description="Time the source model (the baseline: PyTorch eager for a state dict) and every "
                                   "artifact on the same inputs; latency percentiles, throughput, cold start, load "
                                   "time, size, peak memory and accuracy against the source, per batch size.")
    add_model_args(b)
    b.add_argument("artifacts", nargs="*", type=Path, metavar="ARTIFACT",
                   help="artifacts to time: TorchScript .pt, .pt2, .onnx, TensorRT .engine")
    _add_timing_args(b, runs=50, min_seconds=1.0)
    b.add_argument("--batch", metavar="LIST", help="batch sizes to sweep, e.g. 1,2,4,8 (needs a dynamic batch axis)")
    add_data_args(b)
    b.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows as CSV")
    b.add_argument("--plot", type=Path, metavar="FILE.png", help="also write a PNG chart (p50 bars, p90/p99 whiskers)")
    b.add_argument("--sweep", nargs="+", metavar="KEY=LIST",
                   help="deployment sweep of the artifacts instead: threads=1,2 batch=1,4,16 concurrency=1,2,4 — "
                        "throughput vs p99, the knee, and Triton settings (serve-bundle --from-sweep)")
    b.add_argument("--sweep-seconds", type=float, default=1.0, metavar="S",
                   help="how long each sweep point runs (default 1.0)")
    b.add_argument("--p99-budget-ms", type=float, metavar="MS",
                   help="sweep: propose the highest throughput whose p99 stays within MS (default: the knee)")
    b.set_defaults(handler=cmd_bench)

    o = sub.add_parser("optimize", help="try every target × precision, benchmark them, recommend the fastest accurate one",
                       description="Convert to every available target and precision (static INT8 with each "
                                   "calibration method), verify and benchmark each, and recommend the fastest "
                                   "artifact whose cosine similarity to the source is within the budget.")
    add_model_args(o)
    o.add_argument("--budget-cosine", type=float, default=0.99, metavar="C",
                   help="lowest acceptable cosine similarity to the source (default 0.99)")
    add_data_args(o, eval_data=True)
    add_budget_args(o, "with --data: the budget read on the data, e.g. cosine=0.99, top1-drop=1%%, "
                       "confident-agreement=0.99 or kl=0.01, or several that must all hold, comma-separated: "
                       "confident-agreement=0.99,cosine=0.99 (default: "
                       "cosine=--budget-cosine); ONNX fp16/int8 keep their worst nodes in float until it holds")
    o.add_argument("--out", type=Path, metavar="DIR", help="where the artifacts go (default: MODEL's folder/<stem>.optimize/)")
    o.add_argument("--only", action="append", default=[], metavar="TEXT",
                   help="only candidates whose label contains TEXT, e.g. --only onnx --only 'int8 static' (repeatable)")
    _add_timing_args(o, runs=30, min_seconds=0.5, max_seconds=10.0)
    o.add_argument("--csv", type=Path, metavar="FILE", help="also write the rows as CSV")
    o.add_argument("--plot", type=Path, metavar="FILE.png", help="also write a PNG chart")
    o.set_defaults(handler=cmd_optimize)


def _add_timing_args(p: argparse.ArgumentParser, *, runs: int, min_seconds: float,
                     max_seconds: float | None = None) -> None:
    p.add_argument("--warmup", type=int, default=10, metavar="N", help="warm-up calls (at least; default 10)")
    p.add_argument("--warmup-seconds", type=float, default=0.2, metavar="S", help="warm-up time (at least; default 0.2)")
    p.add_argument("--runs", type=int, default=runs, metavar="N", help=f"timed calls (at least; default {runs})")
    p.add_argument("--min-seconds", type=float, default=min_seconds, metavar="S",
                   help=f"timed duration (at least; default {min_seconds})")
    p.add_argument("--max-seconds", type=float, default=max_seconds, metavar="S",
                   help="cap on one runner's timed phase" + (f" (default {max_seconds})" if max_seconds else ""))
    p.add_argument("--rounds", type=int, default=5, metavar="N",
                   help="split the timed calls into N interleaved rounds (A B C, B C A, …) so drift hits every "
                        "runner alike (default 5)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="intra-op threads of every CPU runner (torch and ONNX Runtime; default: physical cores)")
    p.add_argument("--providers", metavar="LIST",
                   help="ONNX Runtime execution providers, e.g. CPU,CUDA,TensorRT,OpenVINO (default: every one "
                        "installed); 'list' prints them")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="where the PyTorch runners run")
    p.add_argument("--no-openvino", dest="openvino", action="store_false",
                   help="do not also time .onnx files in OpenVINO (by default they run in ONNX Runtime and, where "
                        "it is installed, OpenVINO)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")


def config_from_args(args: argparse.Namespace, batches: tuple[int, ...] = ()):
    """A :class:`~app.bench.harness.BenchConfig` from the timing flags (checked)."""
    for flag, value in (("--warmup", args.warmup), ("--runs", args.runs)):
        if value < (0 if flag == "--warmup" else 1):
            raise BadInput(f"{flag} {value}: give a {'non-negative' if flag == '--warmup' else 'positive'} count")
    for flag, value in (("--warmup-seconds", args.warmup_seconds), ("--min-seconds", args.min_seconds)):
        if value < 0:
            raise BadInput(f"{flag} {value}: give a non-negative number of seconds")
    if args.max_seconds is not None and args.max_seconds <= 0:
        raise BadInput(f"--max-seconds {args.max_seconds}: give a positive number of seconds")
    return BenchConfig(batches=batches, warmup=args.warmup, warmup_seconds=args.warmup_seconds, runs=args.runs,
                       min_seconds=args.min_seconds, max_seconds=args.max_seconds, threads=args.threads, seed=args.seed,
                       rounds=args.rounds)


def _providers(args: argparse.Namespace) -> list[str] | None:
    if not args.providers:
        return None
    return [p for p in args.providers.split(",") if p.strip()]


def _list_providers() -> int:
    for p in onnxruntime_providers():
        print(f"{short_provider(p):12} {p}")
    return 0


def _write_extras(args: argparse.Namespace, data: dict, title: str) -> None:
    if args.csv:
        report.write_csv(data["results"], args.csv)
        print(f"wrote {args.csv}", file=sys.stderr)
    if args.plot:
        report.write_png(data, args.plot, title=title)
        print(f"wrote {args.plot}", file=sys.stderr)


def _run(args: argparse.Namespace, work):
    """Run ``work(progress)`` with progress on stderr, print its result (JSON or the table); returns
    the result and its JSON data."""
    progress = StderrProgress()
    try:
        result = work(progress)
    finally:
        progress.done()
    data = result.to_json()
    print(json.dumps(data, indent=2, default=str) if args.json else report.format_table(data))
    return result, data


def cmd_bench(args: argparse.Namespace) -> int:
    """``python main.py bench MODEL [ARTIFACT ...]``."""
    if (args.providers or "").strip().lower() == "list":
        return _list_providers()
    if args.sweep:
        return cmd_sweep(args)
    config = config_from_args(args, parse_batches(args.batch))

    providers = _providers(args)
    payload = BenchRequest(source_of(args), tuple(args.artifacts), config, tuple(providers) if providers else None,
                           args.device, None if args.openvino else False, data_source_of(args))
    result, data = _run(args, lambda progress: run_job(run_bench, payload, progress=progress))
    _write_extras(args, data, Path(args.model).name)
    return 1 if any(s.status == "failed" for s in result.skipped) else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """``bench MODEL ARTIFACT... --sweep threads=... batch=... concurrency=...``."""
    sweep.parse_sweep(args.sweep)  # a bad grid is one line before the child starts
    if args.batch:
        raise BadInput("--batch and --sweep: give the batch sizes in the sweep (--sweep batch=1,4,16)")
    progress = StderrProgress()
    try:
        progress("load model", None)
        payload = sweep.SweepRequest(source_of(args), tuple(args.artifacts), tuple(args.sweep), args.sweep_seconds,
                                     args.p99_budget_ms)
        result = run_job(sweep_job, payload, progress=progress)
    finally:
        progress.done()
    data = result.to_json()
    print(json.dumps(data, indent=2, default=str) if args.json else sweep.format_sweep(data))
    if args.plot:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        fig = sweep.sweep_figure(data)
        FigureCanvasAgg(fig)
        fig.savefig(str(args.plot), format="png")
        print(f"wrote {args.plot}", file=sys.stderr)
    return 1 if result.skipped else 0


def cmd_optimize(args: argparse.Namespace) -> int:
    """``python main.py optimize MODEL``."""
    if (args.providers or "").strip().lower() == "list":
        return _list_providers()
    config = config_from_args(args)
    # optimize converts many candidates: its child may write beneath its output folder only (--out, else
    # <stem>.optimize/ beside the model), never the model's own folder
    out_dir = Path(args.out) if args.out else default_out_dir(Path(args.model))
    if Path(args.model).resolve().is_relative_to(out_dir.resolve()):
        raise BadInput(f"--out {out_dir}: the model is in it, and optimize's job may write anything beneath its "
                       f"output folder; choose a folder of its own (default: {default_out_dir(Path(args.model)).name}/ "
                       "beside the model)")
    out_dir = prepare_out_dir(out_dir)
    kwargs = dict(data=data_source_of(args), budget_cosine=args.budget_cosine, out_dir=out_dir,
                  accuracy_budget=args.accuracy_budget, max_float_nodes=args.max_float_nodes,
                  providers=_providers(args), only=args.only or None, openvino=None if args.openvino else False)
    result, data = _run(args, lambda progress: run_job(optimize_job, (source_of(args), config, kwargs), progress=progress,
                                                       writable=[out_dir]))
    if not args.json:
        rec = result.recommended
        budget = data.get("accuracy_budget") or f"cosine ≥ {args.budget_cosine}"
        if rec:
            on_data = (f", on data: mean cosine {rec['eval_cosine_mean']:.5f}" if rec.get("eval_cosine_mean") is not None
                       else "")
            if rec.get("eval_confident_samples"):
                on_data += (f", confident agreement {rec['eval_confident_agreement']:.1%} on "
                            f"{rec['eval_confident_samples']} of {rec['eval_samples']} samples")
            if rec.get("eval_kl_mean") is not None:
                on_data += f", KL mean {rec['eval_kl_mean']:.3g}"
            if rec.get("eval_top1_drop") is not None:
                on_data += f", top-1 drop {100 * rec['eval_top1_drop']:.2f} points"
            if rec.get("float_nodes"):
                on_data += f", {rec['float_nodes']} nodes kept in float"
            print(f"recommended: {rec['name']} — {rec['artifact']}\n  p50 {rec['p50_ms']:.3f} ms, "
                  f"×{rec['speedup_vs_baseline']:.2f} vs the source, cosine {rec['accuracy_cosine']:.6f}{on_data} "
                  f"(budget {budget})")
        else:
            print(f"recommended: none — no artifact met the accuracy budget ({budget})")
        for key, v in (data.get("no_faster_than_fp32") or {}).items():
            print(f"measured: {key} ({v['name']}) ran no faster than fp32 on this CPU: {v['p50_ms']:.3g} ms vs "
                  f"{v['fp32_p50_ms']:.3g} ms")
    _write_extras(args, data, Path(args.model).name)
    return 0 if result.recommended else 1
