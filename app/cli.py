"""Command line: ``python main.py convert|inspect|targets ...``.

Exit codes: 0 success; 1 conversion or verification failed; 2 bad input (usage, unreadable or
unsafe model, invalid combination, existing output). Errors are one line on stderr; ``--debug``
adds the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import traceback
import warnings
from pathlib import Path

from app.errors import BadInput, StudioError, describe


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # usage errors exit 2 with one line, like every other bad input
        self.print_usage(sys.stderr)
        raise BadInput(f"{self.prog}: {message}")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", type=Path, help="model file: .pt/.pth/.bin/.safetensors/.pt2/.onnx")
    p.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                   help="an input's shape and dtype, e.g. input:1x3x224x224 or input_ids:1x128:int64 (repeatable)")
    p.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS[:LABEL]",
                   help="mark an axis dynamic, e.g. input_ids:0:batch input_ids:1:seq (repeatable)")
    p.add_argument("--arch", metavar="FILE.py:Factory|pkg.module:Factory",
                   help="class or function that builds the network, for state dicts")
    p.add_argument("--arch-kwargs", metavar="JSON", help="keyword arguments for --arch, e.g. '{\"num_classes\": 10}'")
    p.add_argument("--allow-pickle", action="store_true",
                   help="load a fully pickled nn.Module through the weights-only unpickler, approving its "
                        "nn.Module classes from torch.nn and --arch")
    p.add_argument("--trust-global", action="append", default=[], metavar="NAME", dest="trust_global",
                   help="also approve this global of a pickled module, e.g. torch._C._nn.gelu (repeatable)")
    p.add_argument("--unsafe-run-code-from-file", action="store_true", dest="run_code_from_file",
                   help="unpickle with no checks at all: RUNS CODE FROM THE FILE (only files you made yourself)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")


def add_data_args(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """``--data`` (alias ``--calibration``), ``--tokenizer``, ``--normalize``, ``--data-limit``."""
    p.add_argument("--data", "--calibration", dest="calibration", type=Path, metavar="PATH", required=required,
                   help="real samples for calibration and evaluation: a folder of .npy/.npz files, an image "
                        "folder (class subfolders give labels), or a .txt/.jsonl file of sentences with --tokenizer")
    p.add_argument("--tokenizer", type=Path, metavar="DIR", help="Hugging Face tokenizer folder (tokenizer.json) for text data")
    p.add_argument("--normalize", metavar="NAME",
                   help="image normalisation: imagenet (3-channel default), unit [0,1] (1-channel default), "
                        "signed [-1,1], none (0-255), or 'MEAN,..;STD,..'")
    p.add_argument("--data-limit", type=int, default=2000, metavar="N", help="read at most N samples (default 2000)")


def add_budget_args(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--accuracy-budget`` and the limit of its loop, ``--max-float-nodes``."""
    p.add_argument("--accuracy-budget", metavar="BUDGET", help=help_text)
    p.add_argument("--max-float-nodes", type=int, default=32, metavar="N",
                   help="at most N nodes kept in float by --accuracy-budget (default 32)")


def data_fields(args) -> dict:
    """The :class:`~app.request.ConversionRequest` fields that :func:`add_data_args`' flags give."""
    return dict(calibration=args.calibration, tokenizer=args.tokenizer, normalize=args.normalize,
                data_limit=args.data_limit)


def build_parser() -> argparse.ArgumentParser:
    from converters.base import target_names

    parser = _Parser(prog="main.py", description="Model Deployment Studio: convert, verify and inspect models.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    c = sub.add_parser("convert", help="convert a model to a deployment target and verify it")
    _add_model_args(c)
    c.add_argument("--to", required=True, choices=target_names(), dest="target", help="deployment target")
    c.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16", "int8"],
                   help="bf16: openvino and the PyTorch targets, on CPUs with AVX-512 BF16 or AMX")
    c.add_argument("--opset", type=int, help="ONNX opset version (default: the exporter's)")
    c.add_argument("--exporter", choices=["dynamo", "torchscript"], default="dynamo",
                   help="ONNX exporter (dynamo falls back to torchscript when it cannot capture the model)")
    c.add_argument("--quantization", choices=["dynamic", "static"],
                   help="int8 mode (default: static QDQ with --calibration, else dynamic; TensorRT: static)")
    add_data_args(c)
    add_budget_args(c, "fp16/int8 on --data: keep the nodes that add the most error in float until the budget "
                       "holds, e.g. cosine=0.99 or top1-drop=1%% (exit 1 with the best artifact if it cannot)")
    c.add_argument("--calibration-method", choices=["minmax", "entropy", "percentile"], default="minmax")
    c.add_argument("--workspace-mb", type=int, default=4096, help="TensorRT builder workspace limit")
    c.add_argument("--out", type=Path, metavar="DIR", help="output folder (default: beside the model)")
    c.add_argument("--overwrite", action="store_true", help="replace an existing artifact")
    c.add_argument("--keep-failed", action="store_true", help="keep an artifact that failed verification")
    c.add_argument("--ignore-memory-check", action="store_true",
                   help="run even when the job's estimated peak memory exceeds the memory available")
    c.add_argument("--seed", type=int, default=0, help="seed of the random verification inputs")
    c.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="stop the conversion (always run in a fenced child process) after SECONDS")

    i = sub.add_parser("inspect", help="print a model's format, inputs, outputs, size and operators")
    _add_model_args(i)

    t = sub.add_parser("targets", help="list deployment targets, their precisions and availability")
    t.add_argument("--json", action="store_true")
    t.add_argument("--debug", action="store_true")
    from app.serving_commands import add_serving_commands
    add_serving_commands(sub)
    from app.bench.commands import add_bench_commands
    add_bench_commands(sub)
    from app.data_commands import add_data_commands
    add_data_commands(sub)
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
    return parser


def cmd_report(args) -> int:
    from app.report import write_report

    _STAGE["name"] = "report"
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


# the stage the running command last reported: what a failure's ``--json`` object names
_STAGE = {"name": "start"}


def failure_json(message: str, code: int, error: str = "") -> dict:
    """The one ``--json`` object printed when a command fails before it has a result of its own."""
    return {"status": "failed", "stage": _STAGE["name"], "error": error, "message": message, "exit_code": code}


class StderrProgress:
    """Stage names on stderr: rewritten in place on a terminal, one line each otherwise."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.tty = sys.stderr.isatty()
        self.last = ""

    def __call__(self, stage: str, fraction: float | None = None) -> None:
        _STAGE["name"] = stage
        if not self.enabled or stage == self.last and fraction is None:
            return
        self.last = stage
        bar = ""
        if fraction is not None:
            n = int(max(0.0, min(1.0, fraction)) * 20)
            bar = f" [{'#' * n}{'.' * (20 - n)}] {fraction:4.0%}"
        if self.tty:
            sys.stderr.write(f"\r\033[K… {stage}{bar}")
        else:
            sys.stderr.write(f"… {stage}{bar}\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.tty and self.last:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def model_fields(args) -> dict:
    """The :class:`~app.request.ConversionRequest` fields that :func:`_add_model_args`' flags give
    (the source model and its signature), for every command that loads a model."""
    from app.arch import parse_arch_kwargs
    from app.specs import parse_dynamic, parse_input

    return dict(model_path=args.model, inputs=tuple(parse_input(s) for s in args.input),
                dynamic=tuple(parse_dynamic(s) for s in args.dynamic), arch=args.arch,
                arch_kwargs=tuple(parse_arch_kwargs(args.arch_kwargs).items()), allow_pickle=args.allow_pickle,
                trusted_globals=tuple(args.trust_global), run_code_from_file=args.run_code_from_file)


def _request(args):
    from app.request import ConversionRequest

    return ConversionRequest(
        **model_fields(args), target=args.target, precision=args.precision, opset=args.opset,
        exporter=args.exporter, quantization=args.quantization, **data_fields(args),
        calibration_method=args.calibration_method, accuracy_budget=args.accuracy_budget,
        max_float_nodes=args.max_float_nodes, out_dir=args.out, overwrite=args.overwrite,
        keep_failed=args.keep_failed, workspace_mb=args.workspace_mb, seed=args.seed,
        ignore_memory_check=args.ignore_memory_check)


def cmd_convert(args) -> int:
    from app.jobs import run_conversion

    progress = StderrProgress()
    try:
        result = run_conversion(_request(args), progress=progress, timeout=args.timeout)
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
        if v:
            print(f"  verification: {v.summary()} [{'; '.join(v.checks)}]")
        if result.evaluation:
            print(f"  evaluation:   {result.evaluation.summary()}")
        b = result.accuracy_budget
        if b:
            speed = f", {b['speedup_vs_fp32_onnx']:.2f}x the fp32 ONNX" if b.get("speedup_vs_fp32_onnx") else ""
            print(f"  budget {b['budget']}: {'met' if b['met'] else 'NOT met'} with {len(b['float_nodes'])} nodes in "
                  f"float ({', '.join(b['float_nodes'][:6]) or 'none'}{'…' if len(b['float_nodes']) > 6 else ''}); "
                  f"{b['latency_ms']:.2f} ms a sample{speed}")
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if result.message:
        print(result.message, file=sys.stderr)
    if result.status == "failed":
        print(f"error: verification failed: {result.verification.failure} (artifact kept: --keep-failed)", file=sys.stderr)
        return 1
    if result.status == "unmet":
        print(f"error: accuracy budget {result.accuracy_budget['budget']} not met; the best artifact was written "
              f"with {len(result.accuracy_budget['float_nodes'])} nodes in float", file=sys.stderr)
        return 1
    return 0


def cmd_inspect(args) -> int:
    from app.arch import parse_arch_kwargs
    from app.jobs import run_inspection
    from app.specs import TensorSpec

    # the model is parsed (and, for TorchScript, run) in the fenced child, never in this process
    summary = run_inspection({"path": str(args.model), "arch": args.arch,
                              "arch_kwargs": parse_arch_kwargs(args.arch_kwargs), "allow_pickle": args.allow_pickle,
                              "trusted_globals": list(args.trust_global),
                              "run_code_from_file": args.run_code_from_file,
                              "inputs": list(args.input), "dynamic": list(args.dynamic)})
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(summary["path"])
    print(f"  format:     {summary['format']}")
    print(f"  size:       {summary['size_bytes'] / 1e6:.2f} MB")
    print(f"  parameters: {summary['parameters']:,}")
    for key in ("opset", "ir_version", "producer"):
        if summary.get(key) not in (None, ""):
            print(f"  {key + ':':11} {summary[key]}")
    print("  inputs:" + (" (guessed)" if summary["inputs_guessed"] else ""))
    for s in summary["inputs"]:
        print(f"    {TensorSpec.from_json(s).describe()}")
    print("  outputs:")
    for s in summary["outputs"]:
        print(f"    {TensorSpec.from_json(s).describe()}")
    ops = summary.get("operators")
    if ops:
        print("  operators:")
        for op, n in ops.items():
            print(f"    {n:6d}  {op}")
    print(f"  sandbox:    {summary['sandbox']}")
    for w in summary["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_targets(args) -> int:
    from app.advice import advise
    from app.hardware import detect
    from app.sandbox import status
    from converters.base import all_converters

    hw = detect()
    sandboxed, sandbox = status()
    rows = []
    for c in all_converters():
        ok, why = c.available()
        refused = {p: c.precision_refusal(p) for p in c.precisions if c.precision_refusal(p)}
        rows.append({"target": c.name, "label": c.label, "precisions": list(c.precisions), "available": ok,
                     "reason": why, "refused": refused,
                     "advice": {p: advise(c.name, p, hw).to_json() for p in c.precisions},
                     "sandboxed": sandboxed, "sandbox": sandbox})
    if args.json:
        print(json.dumps({"hardware": hw.to_json(), "sandbox": {"sandboxed": sandboxed, "description": sandbox},
                          "targets": rows}, indent=2))
    else:
        print(hw.summary())
        for r in rows:
            state = "available" if r["available"] else f"unavailable: {r['reason']}"
            print(f"{r['target']:20} {'/'.join(r['precisions']):20} {state}")
            if r["available"]:
                for p, a in r["advice"].items():
                    print(f"  {p:5} {a['expected']}: {a['why']}")
        print(f"sandbox: {sandbox}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return _main(list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    debug = "--debug" in argv
    as_json = "--json" in argv
    _quiet_libraries(debug)
    _STAGE["name"] = "parse arguments"

    def fail(message: str, code: int, error: str = "") -> int:
        if as_json:  # --json prints one object on every exit, failures included
            print(json.dumps(failure_json(message, code, error), indent=2))
        return _fail(message, code)

    try:
        args = build_parser().parse_args(argv)
        _STAGE["name"] = "load model"
        if args.command not in ("targets",):
            from app.security import dependency_problems

            problems = dependency_problems()
            if problems:  # these versions have known holes in the code that reads untrusted files
                return fail(problems[0], 2, "dependency")
        if hasattr(args, "handler"):
            return args.handler(args)
        return {"convert": cmd_convert, "inspect": cmd_inspect, "targets": cmd_targets}[args.command](args)
    except SystemExit as e:
        return int(e.code or 0)
    except StudioError as e:
        if debug:
            traceback.print_exc()
        return fail(str(e), e.exit_code, type(e).__name__)
    except KeyboardInterrupt:
        return fail("interrupted", 130, "KeyboardInterrupt")
    except Exception as e:  # a bug or a library failure we did not anticipate
        if debug:
            traceback.print_exc()
        return fail(f"internal error: {describe(e)} "
                    "(run with --debug for the traceback)", 1, "internal")


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
