"""CLI commands that run models on real data: ``evaluate`` (and ``diagnose``).

Registered by :func:`app.cli.parser.build_parser` through :func:`add_data_commands`. Exit codes: 0 every
artifact evaluated, 1 one failed to run (the others are still reported), 2 bad input.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from app.artifacts.manifest import load_manifest
from app.cli.console import StderrProgress
from app.cli.flags import add_data_args, add_model_args, data_source_of, source_of
from app.errors import BadInput
from app.machine.hardware import isa_warning
from app.safety.text import one_line
from converters.options import add_flags, values_of


def add_data_commands(sub) -> None:
    """Add ``evaluate`` to the ``main.py`` subparsers ``sub``."""

    e = sub.add_parser("evaluate", help="compare artifacts with their source on real data (and labels)",
                       description="Run the source and every artifact on the samples of --data: cosine mean/min/p5, "
                                   "relative L2, top-1 agreement, and top-1/top-5 accuracy of both when the data "
                                   "has labels. Samples an artifact was calibrated on (its manifest says) are left out.")
    add_model_args(e)
    e.add_argument("artifacts", nargs="+", type=Path, metavar="ARTIFACT", help="artifacts: .onnx, TorchScript .pt, .pt2")
    add_data_args(e, required=True)
    e.add_argument("--csv", type=Path, metavar="FILE", help="also write one row per artifact as CSV")
    e.set_defaults(handler=cmd_evaluate)

    d = sub.add_parser("diagnose", help="rank the nodes of an fp16/int8 ONNX artifact by the error they add",
                       description="Run the fp32 source (exported to ONNX when it is a PyTorch model) and the artifact "
                                   "on a few --data samples with every intermediate tensor exposed, match tensors by "
                                   "name, and rank nodes by the error they add (their output's relative L2 error "
                                   "minus their inputs'). The worst ones are what --accuracy-budget keeps in float.")
    add_model_args(d)
    d.add_argument("artifact", type=Path, metavar="ARTIFACT", help="an fp16/int8 .onnx built from MODEL")
    add_data_args(d, required=True)
    from converters.onnx_export import EXPORT_OPTIONS

    add_flags(d, EXPORT_OPTIONS)  # the fp32 reference is exported as the artifact was: tensor names must match
    d.add_argument("--samples", type=int, default=8, metavar="N", help="samples to run (default 8)")
    d.add_argument("--top", type=int, default=15, metavar="N", help="nodes to list (default 15)")
    d.set_defaults(handler=cmd_diagnose)


def cmd_evaluate(args) -> int:
    from app.accuracy.evaluation import evaluate_job
    from app.jobs import run_job

    missing = [a for a in args.artifacts if not a.is_file()]
    if missing:
        raise BadInput(f"{missing[0]}: no such artifact file")

    for a in args.artifacts:  # figures measured on another CPU than the one it was built on may differ there
        try:
            warning = isa_warning(load_manifest(a), a.name)
        except BadInput as e:  # a manifest that cannot be used (a FIFO, damaged) is left out, said once
            warning = f"{e}; evaluating {a.name} without its manifest"
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
    progress = StderrProgress()
    try:
        result = run_job(evaluate_job,
                         (source_of(args), data_source_of(args), list(args.artifacts)),
                         progress=progress)
    finally:
        progress.done()
    rows = result["artifacts"]
    code = 0
    for row in rows:
        summary = row.pop("summary", None)
        if row["status"] == "failed":
            code = 1
            print(f"error: {one_line(Path(row['artifact']).name)}: {one_line(row['message'])}", file=sys.stderr)
        elif not args.json:
            print(f"{one_line(Path(row['artifact']).name)}: {summary}")
    if args.csv:
        write_rows_csv(rows, args.csv)
    if args.json:
        print(json.dumps({"status": "ok" if code == 0 else "failed", "source": str(args.model),
                          "data": result["data"], "split": result["split"], "notes": result["notes"],
                          "artifacts": rows}, indent=2))
    else:
        print(f"data: {result['data']} ({result['split']})")
        for n in result["notes"]:
            print(f"note: {n}")
    return code


def cmd_diagnose(args) -> int:
    from app.accuracy.diagnose import ERROR_UNIT, format_ranking, percent
    from app.jobs import diagnose_job, run_job
    from converters.onnx_export import EXPORT_OPTIONS

    if not args.artifact.is_file() or args.artifact.suffix.lower() != ".onnx":
        raise BadInput(f"{args.artifact}: give an fp16/int8 .onnx artifact to diagnose")
    if args.samples < 1 or args.top < 1:
        raise BadInput("--samples and --top take positive numbers")
    progress = StderrProgress()
    try:
        result = run_job(diagnose_job,
                         (source_of(args), data_source_of(args), args.artifact, args.samples,
                          values_of(args, EXPORT_OPTIONS)),
                         progress=progress)
    finally:
        progress.done()
    ranking = result["ranking"]
    top = ranking[:args.top]
    if args.json:
        print(json.dumps({"status": "ok", "artifact": str(args.artifact), "samples": result["samples"],
                          "data": result["data"], "split": result["split"], "nodes_compared": len(ranking),
                          "error_unit": ERROR_UNIT, "outputs": result.get("outputs", {}),
                          "nodes": [n.to_json() for n in top]}, indent=2))
    else:
        print(f"{args.artifact.name}: {len(ranking)} nodes compared on {result['samples']} samples; "
              f"the {len(top)} that add the most error:")
        print(format_ranking(top))
        outputs = ", ".join(f"{name} {percent(e)}" for name, e in result.get("outputs", {}).items())
        print(f"errors: {ERROR_UNIT}, in percent" + (f"; at the model's output: {outputs}" if outputs else ""))
    return 0


def write_rows_csv(rows: list[dict], path: Path) -> Path:
    """One line per artifact: its path, status and every evaluation figure."""
    fields = ["artifact", "status"] + list(dict.fromkeys(k for r in rows for k in (r.get("evaluation") or {})
                                                         if k != "notes"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({"artifact": r["artifact"], "status": r["status"], **(r.get("evaluation") or {})})
    return path
