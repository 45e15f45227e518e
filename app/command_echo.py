"""The command-line echo of a window job: the ``python main.py convert …`` line that reproduces a
:class:`ConversionRequest` (what the window's "Copy CLI command" copies).

Only options that differ from the CLI's defaults are written (the flags come from
:mod:`app.options`), so the line reads like one a person would type; ``app.cli`` parses it back into
an equal request (a test checks the round trip).
"""

from __future__ import annotations

import json
import shlex
import sys

from app.options import CONVERSION_OPTIONS, DATA_OPTIONS, SEED, TUNING_OPTIONS, flags_of
from app.request import ConversionRequest
from app.specs import TensorSpec

def input_flag(spec: TensorSpec) -> str:
    """``NAME:SHAPE:DTYPE`` with the example sizes of the spec (the ``--input`` syntax)."""
    dims = "x".join(str(d) for d in spec.example_shape())
    return f"{spec.name}:{dims}:{spec.dtype}"


def dynamic_flag(name: str, axis: int, label: str) -> str:
    """``NAME:AXIS:LABEL`` (the ``--dynamic`` syntax)."""
    return f"{name}:{axis}:{label}"


def convert_args(request: ConversionRequest) -> list[str]:
    """The arguments after ``main.py`` that make ``python main.py`` run ``request``."""
    r = request
    args = ["convert", str(r.model_path), "--to", r.target, "--precision", r.precision]
    for spec in r.inputs:
        args += ["--input", input_flag(spec)]
    for name, axis, label in r.dynamic:
        args += ["--dynamic", dynamic_flag(name, axis, label)]
    if r.arch:
        args += ["--arch", r.arch]
    if r.arch_kwargs:
        args += ["--arch-kwargs", json.dumps(r.arch_kwargs_dict, separators=(",", ":"))]
    args += flags_of(r, CONVERSION_OPTIONS + DATA_OPTIONS + TUNING_OPTIONS)
    if r.out_dir:
        args += ["--out", str(r.out_dir)]
    args += flags_of(r, (SEED,))
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
