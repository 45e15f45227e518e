"""CLI command ``profile``: where one artifact's time goes, per node, from its runtime's own profiler
(:mod:`app.bench.profile`), run in a fenced child like ``bench``. Exit codes as everywhere: 0 success,
2 bad input (a file that is not an artifact, a runtime that is missing here)."""

from __future__ import annotations

import argparse
import json

from app.bench.harness import BenchConfig
from app.bench.profile import format_profile, profile_entry
from app.cli.console import StderrProgress
from app.cli.flags import add_model_args, source_of
from app.errors import BadInput
from app.jobs import run_job


def add_profile_command(sub) -> None:
    """Add ``profile`` to the ``main.py`` subparsers ``sub``."""
    p = sub.add_parser("profile", help="where an artifact's time goes: per node, from its runtime's own profiler",
                       description="Profile one artifact per node with its runtime's own profiler (ONNX Runtime's "
                                   "profiling JSON, OpenVINO's per-layer counters, ExecuTorch's event tracer, "
                                   "TensorRT's layer profiler): nodes ranked by median time with the precision "
                                   "their kernel ran in, grouped by operator type, and their sum beside the whole "
                                   "model's median timed as bench times it (coverage).")
    add_model_args(p)
    p.add_argument("--runs", type=int, default=50, metavar="N",
                   help="timed calls of the whole model, each followed by a profiled one (at least; default 50)")
    p.add_argument("--warmup", type=int, default=10, metavar="N", help="warm-up calls (default 10)")
    p.add_argument("--min-seconds", type=float, default=1.0, metavar="S",
                   help="timed and profiled calls go on at least this long (up to 10 × --runs; default 1.0)")
    p.add_argument("--threads", type=int, metavar="N", help="intra-op threads (default: physical cores)")
    p.add_argument("--runtime", choices=["onnxruntime", "openvino", "executorch", "tensorrt"],
                   help="for an .onnx file: onnxruntime (default) or openvino; other artifacts have one runtime")
    p.add_argument("--provider", default="CPU", metavar="NAME", help="ONNX Runtime execution provider (default CPU)")
    p.add_argument("--top", type=int, default=20, metavar="K", help="nodes listed in the table (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    p.set_defaults(handler=cmd_profile)


def cmd_profile(args: argparse.Namespace) -> int:
    """``python main.py profile ARTIFACT``."""
    for flag, value, least in (("--runs", args.runs, 1), ("--warmup", args.warmup, 0), ("--top", args.top, 1)):
        if value < least:
            raise BadInput(f"{flag} {value}: give a {'positive' if least else 'non-negative'} count")
    if args.min_seconds < 0:
        raise BadInput(f"--min-seconds {args.min_seconds}: give a non-negative number of seconds")
    config = BenchConfig(warmup=args.warmup, runs=args.runs, min_seconds=args.min_seconds, threads=args.threads,
                         seed=args.seed).with_threads()
    if not args.model.is_file():
        raise BadInput(f"{args.model}: no such file")
    progress = StderrProgress()
    try:
        result = run_job(profile_entry, (source_of(args), config, args.runtime, args.provider), progress=progress)
    finally:
        progress.done()
    data = result.to_json()
    print(json.dumps(data, indent=2, default=str) if args.json else format_profile(data, args.top))
    return 0
