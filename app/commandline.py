"""The command line that reproduces a :class:`ConversionRequest`: what the window's "Copy CLI command" copies.

Only options that differ from the CLI's defaults are written, so the line reads like one a person
would type; ``app.cli`` parses it back into an equal request (a test checks the round trip).
"""

from __future__ import annotations

import json
import shlex
import sys

from app.request import ConversionRequest
from app.specs import TensorSpec

_DEFAULTS = ConversionRequest(model_path=".", target="onnx")


def input_flag(spec: TensorSpec) -> str:
    """``NAME:SHAPE:DTYPE`` with the example sizes of the spec (the ``--input`` syntax)."""
    dims = "x".join(str(d) for d in spec.example_shape())
    return f"{spec.name}:{dims}:{spec.dtype}"


def dynamic_flag(name: str, axis: int, label: str) -> str:
    """``NAME:AXIS:LABEL`` (the ``--dynamic`` syntax)."""
    return f"{name}:{axis}:{label}"


def convert_args(request: ConversionRequest) -> list[str]:
    """The arguments after ``main.py`` that make ``python main.py`` run ``request``."""
    r, d = request, _DEFAULTS
    args = ["convert", str(r.model_path), "--to", r.target, "--precision", r.precision]
    for spec in r.inputs:
        args += ["--input", input_flag(spec)]
    for name, axis, label in r.dynamic:
        args += ["--dynamic", dynamic_flag(name, axis, label)]
    if r.arch:
        args += ["--arch", r.arch]
    if r.arch_kwargs:
        args += ["--arch-kwargs", json.dumps(r.arch_kwargs_dict, separators=(",", ":"))]
    if r.opset is not None:
        args += ["--opset", str(r.opset)]
    if r.exporter != d.exporter:
        args += ["--exporter", r.exporter]
    if r.quantization:
        args += ["--quantization", r.quantization]
    if r.calibration:
        args += ["--data", str(r.calibration)]
    if r.tokenizer:
        args += ["--tokenizer", str(r.tokenizer)]
    if r.normalize:
        args += ["--normalize", r.normalize]
    if r.data_limit != d.data_limit:
        args += ["--data-limit", str(r.data_limit)]
    if r.accuracy_budget:
        args += ["--accuracy-budget", r.accuracy_budget]
    if r.max_float_nodes != d.max_float_nodes:
        args += ["--max-float-nodes", str(r.max_float_nodes)]
    if r.calibration_method != d.calibration_method:
        args += ["--calibration-method", r.calibration_method]
    if r.workspace_mb != d.workspace_mb:
        args += ["--workspace-mb", str(r.workspace_mb)]
    if r.out_dir:
        args += ["--out", str(r.out_dir)]
    if r.seed != d.seed:
        args += ["--seed", str(r.seed)]
    for name in r.trusted_globals:
        args += ["--trust-global", name]
    for flag, on in (("--overwrite", r.overwrite), ("--keep-failed", r.keep_failed),
                     ("--allow-pickle", r.allow_pickle), ("--unsafe-run-code-from-file", r.run_code_from_file)):
        if on:
            args.append(flag)
    return args


def convert_command(request: ConversionRequest, program: str = "python main.py") -> str:
    """One shell line (quoted for the platform's shell) that runs ``request`` headless."""
    args = convert_args(request)
    if sys.platform.startswith("win"):
        import subprocess

        return program + " " + subprocess.list2cmdline(args)
    return program + " " + shlex.join(args)
