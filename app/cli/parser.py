"""Command line: ``python main.py convert|inspect|targets ...``.

Exit codes: 0 success; 1 conversion or verification failed; 2 bad input (usage, unreadable or
unsafe model, invalid combination, existing output). Errors are one line on stderr; ``--debug``
adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import traceback
import warnings
from dataclasses import replace
from pathlib import Path

from app.cli.accuracy_commands import add_data_commands
from app.cli.console import STAGE, StderrProgress, cleaned_output, failure_json
from app.cli.flags import add_data_args, add_model_args, data_source_of, source_of
from app.cli.pipes import print_out, quiet_when_stdout_closes, stdout_gone
from app.cli.serving_commands import add_pack_command, add_serving_commands
from app.errors import BadInput, StudioError, describe
from app.examples.digits import cmd_example
from app.machine.hardware import detect
from app.model.specs import TensorSpec
from app.request import ConversionRequest, PRECISIONS, Precision
from app.safety.sandbox import status
from app.safety.security import dependency_problems
from app.safety.text import one_line
from app.targets.advice import advise, describe_measured, measured_here
from app.targets.probe import probe_targets
from converters.options import ACCURACY_BUDGET, MAX_FLOAT_NODES, MIN_SPEEDUP, SEED, add_flags, values_of


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 with one line, like every other bad input
        self.print_usage(sys.stderr)
        raise BadInput(f"{self.prog}: {message}")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


# the commands that run a job in a fenced child (each gets --timeout)
JOB_COMMANDS = ("convert", "inspect", "bench", "optimize", "evaluate", "diagnose", "serve-bundle", "example", "pack", "profile",
                "native-check")


def build_parser() -> argparse.ArgumentParser:
    from converters.base import converter_options, target_names

    parser = _Parser(prog="main.py", description="Model Deployment Studio: convert, verify and inspect models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("convert", help="convert a model to a deployment target and verify it")
    add_model_args(c)
    c.add_argument("--to", required=True, choices=target_names(), dest="target", help="deployment target")
    c.add_argument("--precision", default=Precision.FP32.value, metavar="{" + ",".join(PRECISIONS) + "}",
                   help="bf16: openvino and the PyTorch targets, on CPUs with AVX-512 BF16 or AMX")
    group = c.add_argument_group("options of the targets (each converter declares its own)")
    for o, takers in converter_options().items():
        add_flags(group, (replace(o, help=f"{o.help or ''} [--to {', '.join(takers)}]".strip()),))
    add_data_args(c, eval_data=True)
    add_flags(c, (ACCURACY_BUDGET, MAX_FLOAT_NODES, MIN_SPEEDUP))
    c.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: beside the model)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    c.add_argument("--keep-failed", action="store_true", help="keep an artifact that failed verification")
    c.add_argument("--ignore-memory-check", action="store_true",
                   help="run even when the job's estimated peak memory exceeds the memory available")
    add_flags(c, (SEED,))
    c.set_defaults(handler=cmd_convert)

    i = sub.add_parser("inspect", help="print a model's format, inputs, outputs, size and operators")
    add_model_args(i)
    i.set_defaults(handler=cmd_inspect)

    t = sub.add_parser("targets", help="list deployment targets, their precisions and availability")
    t.add_argument("--measured", nargs="+", type=Path, default=[], metavar="BENCH.json|RUN_DIR",
                   help="saved `bench --json`/`optimize --json` results (or folders of them): say what won on "
                        "this machine in the newest one, beside the expectations")
    t.add_argument("--json", action="store_true")
    t.add_argument("--debug", action="store_true")
    t.set_defaults(handler=cmd_targets)
    add_serving_commands(sub)
    from app.cli.bench_commands import add_bench_commands
    add_bench_commands(sub)
    from app.cli.profile_commands import add_profile_command
    add_profile_command(sub)
    add_data_commands(sub)
    e = sub.add_parser("example", help="write a small real example to start from: a CNN trained on handwritten "
                                       "digits, its architecture file and a folder of held-out digits",
                       description="Write into FOLDER a CNN trained (in seconds, nothing downloaded) on the UCI "
                                   "handwritten digits: its state dict, the .py file that builds it and 300 held-out "
                                   "digits as an image folder, with a README of commands to try.")
    e.add_argument("folder", type=Path, metavar="FOLDER")
    e.add_argument("--overwrite", action="store_true", help="replace an example already in FOLDER")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--debug", action="store_true", help="show tracebacks")
    e.set_defaults(handler=cmd_example)
    add_pack_command(sub)
    r = sub.add_parser("report", help="write one self-contained HTML report from manifests and benchmark results",
                       description="Collect the manifests (*.manifest.json) and benchmark results (saved "
                                   "`bench --json` / `optimize --json` output) in RUN_DIRs or named files and write "
                                   "one HTML file: machine, source model, every artifact with its verification, "
                                   "warnings and the command that remakes it, benchmark tables and charts.")
    r.add_argument("inputs", nargs="+", type=Path, metavar="RUN_DIR|MANIFEST|BENCH.json")
    r.add_argument("--out", type=Path, required=True, metavar="FILE.html", help="the report to write")
    r.add_argument("--overwrite", action="store_true", help="replace an existing report")
    r.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    r.add_argument("--debug", action="store_true", help="show tracebacks")
    r.set_defaults(handler=cmd_report)
    for name in JOB_COMMANDS:  # every command that starts a job in a fenced child has a watchdog
        sub.choices[name].add_argument(
            "--timeout", type=float, metavar="SECONDS",
            help="stop the job (run in a fenced child process) after SECONDS of wall-clock time "
                 "(default: 10 minutes for inspect, 4 hours for convert, 2 hours for the others)")
    return parser


def cmd_report(args) -> int:
    from app.reports.html import write_report

    STAGE["name"] = "report"
    written = write_report(args.inputs, args.out, overwrite=args.overwrite)  # a failure: main prints its JSON
    if args.json:
        print(json.dumps(written, indent=2))
    else:
        print(f"wrote {written['report']} ({len(written['artifacts'])} artifact(s), "
              f"{len(written['benchmarks'])} benchmark result(s), {written['bytes'] / 1e3:.0f} kB)")
    return 0


def _quiet_libraries(debug: bool) -> None:
    if debug:
        return
    warnings.filterwarnings("ignore")  # torch.jit/torch.ao deprecations etc.; our own warnings are collected
    for name in ("onnxruntime", "onnxscript", "torch", "torch.onnx", "root"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)


def _request(args):
    """The :class:`~app.request.ConversionRequest` of ``convert``'s flags (a flag of another target's
    option is kept, and refused in one line by :func:`app.jobs.run_conversion`)."""
    from converters.base import all_options

    return ConversionRequest(
        source_of(args), args.target, args.precision, values_of(args, all_options()), data=data_source_of(args),
        out_dir=args.out, overwrite=args.overwrite, keep_failed=args.keep_failed,
        ignore_memory_check=args.ignore_memory_check)


def cmd_convert(args) -> int:
    from app.jobs import run_conversion

    progress = StderrProgress()
    try:
        result = run_conversion(_request(args), progress=progress)  # --timeout: time_limit() in _main
    finally:
        progress.done()
    if args.json:
        data = result.to_json()
        if result.status == "failed":
            data.update(stage="verify", message=f"verification failed: {result.verification.failure}")
        print(json.dumps(data, indent=2, default=str))
    else:
        v = result.verification
        print(f"{result.target} {result.precision}: {result.artifact} "
              f"({result.size_bytes / 1e6:.2f} MB, {result.seconds:.1f} s)")
        for extra in result.files[1:]:
            print(f"  + {extra.name}")
        print(f"  verdict:      {result.verdict.text()}")
        if v:
            print(f"  verification: {v.summary()} [{'; '.join(v.checks)}]")
        if result.evaluation:
            print(f"  evaluation:   {result.evaluation.summary()}")
        if result.data:
            print(f"  data:         {one_line(result.data['split'])}"
                  + (" — the same folder: figures flattered (pass --eval-data)" if result.data.get("same_folder") else ""))
        if result.delegation:
            print(f"  delegation:   {result.delegation['summary']}")
        b = result.accuracy_budget
        if b:
            speed = (f", {b['speedup']:.2f}x the fp32 ({b.get('fp32_runtime')}, {b['fp32_latency_ms']:.2f} ms)"
                     if b.get("speedup") is not None else "")
            print(f"  budget {b['budget']} at ≥ {b.get('speed_floor', 1):g}x fp32: {'met' if b['met'] else 'NOT met'} "
                  f"with {len(b['float_nodes'])} nodes in "
                  f"float ({', '.join(b['float_nodes'][:6]) or 'none'}{'…' if len(b['float_nodes']) > 6 else ''}); "
                  f"{b['latency_ms']:.2f} ms a sample{speed}; kept: round {b['best_round']}, by {b['engine']}")
            from app.accuracy.budget import budget_rounds_text

            for line in budget_rounds_text(b):
                print("    " + line)
    for w in result.warnings:  # one line each, whatever the job put in it
        print(f"warning: {one_line(w)}", file=sys.stderr)
    if result.message:
        print(result.message, file=sys.stderr)
    if result.status == "failed":
        print(f"error: verification failed: {result.verification.failure} (artifact kept: --keep-failed)", file=sys.stderr)
        return 1
    if result.status == "unmet":
        b = result.accuracy_budget
        why = f" ({b['unmet_reason']})" if b.get("unmet_reason") else ""
        print(f"error: accuracy budget {b['budget']} not met{why}; the best artifact was written "
              f"with {len(b['float_nodes'])} nodes in float", file=sys.stderr)
        return 1
    return 0


def cmd_inspect(args) -> int:
    from app.jobs import run_inspection

    # the model is parsed (and, for TorchScript, run) in the fenced child, never in this process
    summary = run_inspection(source_of(args))
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    # each name on its own line, as one line: a name from the file cannot start a line of its own
    print(one_line(summary["path"]))
    print(f"  format:     {one_line(summary['format'])}")
    print(f"  size:       {summary['size_bytes'] / 1e6:.2f} MB")
    print(f"  parameters: {summary['parameters']:,}")
    for key in ("opset", "ir_version", "producer"):
        if summary.get(key) not in (None, ""):
            print(f"  {key + ':':11} {one_line(summary[key])}")
    print("  inputs:" + (" (guessed)" if summary["inputs_guessed"] else ""))
    for s in summary["inputs"]:
        print(f"    {one_line(TensorSpec.from_json(s).describe())}")
    print("  outputs:")
    for s in summary["outputs"]:
        print(f"    {one_line(TensorSpec.from_json(s).describe())}")
    ops = summary.get("operators")
    if ops:
        print("  operators:")
        for op, n in ops.items():
            print(f"    {n:6d}  {one_line(op)}")
    print(f"  sandbox:    {summary['sandbox']}")
    for w in summary["warnings"]:
        print(f"warning: {one_line(w)}", file=sys.stderr)
    return 0


def cmd_targets(args) -> int:
    hw = detect()
    sandboxed, sandbox = status()
    rows = []
    for t in probe_targets(hw):
        refusals = {p: t.converter.precision_refusal(p) for p in t.precisions}
        rows.append({"target": t.name, "label": t.label, "precisions": list(t.precisions), "available": t.available,
                     "reason": t.reason, "refused": {p: r for p, r in refusals.items() if r},
                     "advice": {p: dict(advise(t.name, p, hw).to_json(), basis="expectation") for p in t.precisions},
                     "sandboxed": sandboxed, "sandbox": sandbox})
    measured = measured_here(args.measured, hw) if args.measured else None
    if measured is not None and not args.json:  # --json: they are in its "ignored" list
        for left_out in measured["ignored"]:
            print(f"warning: {left_out['why']}", file=sys.stderr)
    for r in rows:  # a measurement of this machine beside each expectation it covers
        for p, a in r["advice"].items():
            row = (measured or {}).get("best", {}).get(f"{r['target']}/{p}")
            if row:
                a["measured"] = {k: row[k] for k in ("name", "p50_ms", "speedup_vs_baseline", "cosine")}
                a["measured"]["no_faster_than_fp32"] = f"{r['target']}/{p}" in measured.get("no_faster_than_fp32", {})
    if args.json:
        print(json.dumps({"hardware": hw.to_json(), "sandbox": {"sandboxed": sandboxed, "description": sandbox},
                          "targets": rows, "measured": measured}, indent=2))
    else:
        print(hw.summary())
        for r in rows:
            state = "available" if r["available"] else f"unavailable: {r['reason']}"
            print(f"{r['target']:20} {'/'.join(r['precisions']):20} {state}")
            if r["available"]:
                for p, a in r["advice"].items():
                    seen = a.get("measured")
                    here = (f" [measured here: {seen['name']} {seen['p50_ms']:.3g} ms"
                            + (f", {seen['speedup_vs_baseline']:.2f}×" if seen.get("speedup_vs_baseline") else "")
                            + ("; no faster than fp32 on this CPU" if seen.get("no_faster_than_fp32") else "")
                            + "]") if seen else ""
                    print(f"  {p:5} expected {a['expected']}: {a['why']}{here}")
        if measured is not None:
            print(describe_measured(measured))
        print(f"sandbox: {sandbox}")
    return 0


class Terminated(BaseException):
    """SIGTERM arrived (a CI runner's time-out, ``kill``): not an ``Exception``, so nothing on the way
    out mistakes it for a failure to handle."""


@contextlib.contextmanager
def _terminated_as_exit():
    """SIGTERM ends the command as :class:`Terminated` (exit 143, its ``--json`` object printed), so
    every job's ``finally`` runs: its child's process group stopped, its temporary folders removed."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminated(signum, frame):
        raise Terminated

    before = signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def main(argv: list[str] | None = None) -> int:
    with cleaned_output():  # every line printed: control characters and bidi controls shown escaped
        return quiet_when_stdout_closes(_main, list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    as_json = "--json" in argv
    _quiet_libraries(debug)
    STAGE["name"] = "parse arguments"

    def fail(message: str, code: int, error: str = "", details: dict | None = None) -> int:
        if as_json:  # --json prints one object on every exit, failures included (a closed stdout: on stderr only)
            data = failure_json(message, code, error, details)
            if argv[:1] == ["convert"]:  # no artifact: the verdict a conversion's --json always carries
                from app.accuracy.verdict import cancelled, failed

                data["verdict"] = (cancelled(message) if code in (130, 143) else failed(message)).to_json()
            print_out(json.dumps(data, indent=2, default=str))
        return _fail(message, code)

    try:
        args = build_parser().parse_args(argv)
        STAGE["name"] = "load model"
        if args.command not in ("targets",):
            problems = dependency_problems()
            if problems:  # these versions have known holes in the code that reads untrusted files
                return fail(problems[0], 2, "dependency")
        handler = args.handler  # every subcommand sets its own (set_defaults)
        from app.jobs import time_limit

        with time_limit(getattr(args, "timeout", None)), _terminated_as_exit():
            return handler(args)
    except SystemExit as e:
        return int(e.code or 0)
    except StudioError as e:
        if debug:
            traceback.print_exc()
        return fail(str(e), e.exit_code, type(e).__name__, e.details)
    except KeyboardInterrupt:
        return fail("interrupted", 130, "KeyboardInterrupt")
    except Terminated:
        return fail("terminated (SIGTERM): the running job was stopped and its temporary files removed", 143,
                    "Terminated")
    except BrokenPipeError:  # `main.py ... | head` stopped reading: nothing went wrong here
        stdout_gone()  # no second error at exit
        return 0
    except Exception as e:  # a bug or a library failure we did not anticipate
        if debug:
            traceback.print_exc()
        return fail(f"internal error: {describe(e)} "
                    "(run with --debug for the traceback)", 1, "internal")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
