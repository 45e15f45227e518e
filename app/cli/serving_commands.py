"""CLI commands for serving: ``serve-bundle`` (a Triton model folder), ``native-check``
(run an artifact from C++, no Python, and compare) and ``pack`` (a check that travels with the artifact).

Registered by :func:`app.cli.parser.build_parser` through :func:`add_serving_commands`; each subcommand
sets ``handler`` so ``app.cli.parser.main`` dispatches to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from app.cli.console import StderrProgress
from app.errors import BadInput
from app.model.specs import apply_dynamic, parse_dynamic, parse_input
from app.cli.flags import add_trust_args, trust_of_args
from app.serving.pack import DEFAULT_SAMPLES, check_packable, make_pack


def add_serving_commands(sub) -> None:
    """Add ``serve-bundle`` and ``native-check`` to the ``main.py`` subparsers ``sub``."""
    s = sub.add_parser("serve-bundle", help="write a Triton Inference Server model folder for an artifact",
                       description="Write REPO_DIR/NAME/{config.pbtxt, README.md, 1/model.*} for an ONNX, "
                                   "TorchScript or TensorRT artifact, ready for tritonserver --model-repository.")
    s.add_argument("artifact", type=Path, help="the artifact: .onnx, TorchScript .pt, or TensorRT .engine/.plan")
    s.add_argument("--out", required=True, type=Path, metavar="REPO_DIR", help="the Triton model repository folder")
    s.add_argument("--name", help="model name (default: the artifact's file name, e.g. resnet_fp16)")
    s.add_argument("--max-batch", type=int, metavar="N",
                   help="max_batch_size for a model with a dynamic batch axis (default 8; 0 turns batching off)")
    s.add_argument("--instances", type=int, metavar="N", help="model instances (default 1)")
    s.add_argument("--from-sweep", type=Path, metavar="SWEEP.json",
                   help="take instances, threads per instance and dynamic batching from a saved "
                        "`bench ... --sweep ... --json` result")
    s.add_argument("--kind", choices=["cpu", "gpu"], help="where the instances run (default: gpu for TensorRT, else cpu)")
    s.add_argument("--ort-tensorrt", action="store_true",
                   help="ONNX only: let ONNX Runtime run the model through its TensorRT accelerator (needs --kind gpu)")
    s.add_argument("--input", action="append", default=[], metavar="NAME:SHAPE[:DTYPE]",
                   help="an input's shape and dtype, for TorchScript files that do not record them (repeatable)")
    s.add_argument("--dynamic", action="append", default=[], metavar="NAME:AXIS[:LABEL]",
                   help="mark an input axis dynamic, e.g. x:0:batch (repeatable, with --input)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing REPO_DIR/NAME folder")
    s.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    s.add_argument("--debug", action="store_true", help="show tracebacks")
    s.set_defaults(handler=cmd_serve_bundle)

    n = sub.add_parser("native-check", help="load and run an artifact from C++ (no Python) and compare the results",
                       description="Build (once) a small C++ program against the LibTorch inside the torch wheel, "
                                   "run a TorchScript artifact with it and compare with the Python result.")
    n.add_argument("artifact", type=Path, help="a TorchScript .pt artifact (ONNX: reports whether its C API is usable)")
    n.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    n.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    n.add_argument("--debug", action="store_true", help="show tracebacks")
    n.set_defaults(handler=cmd_native_check)


def _inputs(args) -> list | None:
    if not args.input:
        if args.dynamic:
            raise BadInput("--dynamic needs --input for every input (the shapes it makes dynamic)")
        return None
    return apply_dynamic([parse_input(s) for s in args.input], [parse_dynamic(s) for s in args.dynamic])


def cmd_serve_bundle(args: argparse.Namespace) -> int:
    from app.jobs import run_job
    from app.serving.triton import serve_bundle_job

    repo = Path(args.out)
    created = not repo.exists()
    repo.mkdir(parents=True, exist_ok=True)  # the child may write beneath the model repository only
    kwargs = dict(artifact=args.artifact, out_repo=args.out, name=args.name, max_batch=args.max_batch,
                  instances=args.instances, kind=args.kind, ort_tensorrt=args.ort_tensorrt,
                  overwrite=args.overwrite, inputs=_inputs(args), from_sweep=args.from_sweep)
    try:
        bundle = run_job(serve_bundle_job, kwargs, writable=[repo])
    except BaseException:
        if created and repo.is_dir() and not any(repo.iterdir()):
            repo.rmdir()  # refused: leave nothing behind, not even the empty folder made for the child
        raise
    if args.json:
        print(json.dumps(bundle.to_json(), indent=2))
    else:
        c = bundle.config
        print(f"{bundle.path} ({c.platform}, max_batch_size {c.max_batch_size}, {c.instances} × {c.kind})")
        for f in bundle.files:
            print(f"  {f.relative_to(bundle.repository)}")
        print(f"serve:     {bundle.to_json()['docker']}")
        print(f"load test: {bundle.to_json()['perf_analyzer']}")
    for w in bundle.warnings:
        print(f"warning: {w}", file=sys.stderr)
    return 0


def cmd_native_check(args: argparse.Namespace) -> int:
    """Exit 0 when the check passed or could not run here (the reason is printed), 1 when it failed."""
    from app.serving.native_check import check_native_fenced

    def progress(stage: str, fraction: float | None = None) -> None:
        if not args.json:
            print(f"… {stage}", file=sys.stderr)

    result = check_native_fenced(args.artifact, seed=args.seed, progress=progress)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
        if result.built:
            print(f"  built the C++ program in {result.build_seconds:.1f} s: {result.program}")
        if result.checks:
            print(f"  inputs: {'; '.join(result.checks)}")
    if result.passed is False:
        print(f"error: native check failed: {result.reason}", file=sys.stderr)
        return 1
    return 0


def add_pack_command(sub) -> None:
    p = sub.add_parser("pack", help="write an artifact with samples, its accuracy budget and a one-file checker "
                                    "to run on the deployment machine",
                       description="Write into DIR the artifact (and its side files), samples of evaluation inputs "
                                   "with the source model's outputs (samples.npz), pack.json (accuracy budget, "
                                   "the build machine's CPU instruction sets and runtime versions) and check.py, "
                                   "which needs only numpy and the artifact's runtime: `python check.py` prints "
                                   "the metrics on that machine and exits 0 when the budget holds, 1 when not.")
    p.add_argument("artifact", type=Path, metavar="ARTIFACT", help="an .onnx or OpenVINO .xml with its manifest")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="the folder to write (new or empty)")
    p.add_argument("--samples", type=int, default=DEFAULT_SAMPLES, metavar="N",
                   help=f"evaluation samples to pack (default {DEFAULT_SAMPLES})")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an earlier pack in DIR")
    add_trust_args(p, "pack runs the source model the manifest names; what runs code comes from these flags "
                      "only, never from the manifest")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.set_defaults(handler=cmd_pack)


# ---------------------------------------------------------------------------- the command
def cmd_pack(args) -> int:
    artifact = args.artifact.expanduser().resolve()
    check_packable(artifact)
    if args.samples < 1:
        raise BadInput("--samples takes a positive number")
    out = args.out.expanduser().absolute()
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise BadInput(f"--out {out}: {'a link' if out.is_symlink() else 'a file'}, not a folder")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        raise BadInput(f"--out {out}: not empty; choose a new folder or pass --overwrite")
    progress = StderrProgress()
    try:  # a failed pack writes nothing: the files are placed only once all of them are made
        result = make_pack(artifact, out, samples=args.samples, overwrite=args.overwrite, trust=trust_of_args(args),
                           progress=progress)
    finally:
        progress.done()
    if args.json:
        print(json.dumps(dict(result, status="ok"), indent=2))
    else:
        m, b = result["metrics"], result["budget"]
        top1 = f", top-1 agreement {m['top1_agreement']:.1%}" if m.get("top1_agreement") is not None else ""
        print(f"wrote {out}: {artifact.name} with {result['samples']} samples ({result['sample_origin']}), "
              f"budget {b['metric']} {b['op']} {b['value']:g}; here: cosine mean {m['cosine_mean']:.6f} / "
              f"min {m['cosine_min']:.6f}, max|Δ| {m['max_abs_err']:.3g}{top1}")
        print(f"on the deployment machine: cd {out} && python check.py", file=sys.stderr)
    return 0
