"""The command-line echo of a window job: the ``python main.py convert …`` line that reproduces a
:class:`ConversionRequest` (what the window's "Copy CLI command" copies).

Only options that differ from the CLI's defaults are written (the flags come from the options the
target's converter declares), so the line reads like one a person would type; ``app.cli`` parses it back into
an equal request (a test checks the round trip).
"""

from __future__ import annotations

import json
import shlex
import sys

from app.model.specs import TensorSpec
from app.request import ConversionRequest, DataSource, ModelSource
from converters.options import DATA_OPTIONS, flags_of

def input_flag(spec: TensorSpec) -> str:
    """``NAME:SHAPE:DTYPE`` with the example sizes of the spec (the ``--input`` syntax)."""
    dims = "x".join(str(d) for d in spec.example_shape())
    return f"{spec.name}:{dims}:{spec.dtype}"


def dynamic_flag(name: str, axis: int, label: str) -> str:
    """``NAME:AXIS:LABEL`` (the ``--dynamic`` syntax)."""
    return f"{name}:{axis}:{label}"


def source_args(source: ModelSource) -> list[str]:
    """The model and the flags that give its signature, network and trust choices (after ``convert``)."""
    args = [str(source.path)]
    for spec in source.inputs:
        args += ["--input", input_flag(spec)]
    for name, axis, label in source.dynamic:
        args += ["--dynamic", dynamic_flag(name, axis, label)]
    if source.arch:
        args += ["--arch", source.arch]
    if source.arch_kwargs:
        args += ["--arch-kwargs", json.dumps(source.arch_kwargs_dict, separators=(",", ":"))]
    for name in source.trusted_globals:
        args += ["--trust-global", name]
    for flag, on in (("--allow-pickle", source.allow_pickle), ("--unsafe-run-code-from-file", source.run_code_from_file)):
        if on:
            args.append(flag)
    return args


def data_args(data: DataSource | None) -> list[str]:
    """``--data PATH`` and how to read it (nothing without data)."""
    return flags_of(vars(data), DATA_OPTIONS) if data else []


def convert_args(request: ConversionRequest) -> list[str]:
    """The arguments after ``main.py`` that make ``python main.py`` run ``request``: the source, the
    target and precision, the options its converter declares (:func:`converters.base.options_of`)."""
    from converters.base import options_of

    r = request
    args = ["convert", *source_args(r.source), "--to", r.target, "--precision", str(r.precision)]
    args += flags_of(dict(r.options), options_of(r.target)) + data_args(r.data)
    if r.out_dir:
        args += ["--out", str(r.out_dir)]
    for flag, on in (("--overwrite", r.overwrite), ("--keep-failed", r.keep_failed),
                     ("--ignore-memory-check", r.ignore_memory_check)):
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
