"""The conversion options, declared once: what each is, its type, default, choices and help.

The ``convert`` command's flags (:func:`add_flags`), the command line that reproduces a window job
(:func:`flags_of`), the window's option form (its choices) and ``optimize``'s search space (the
options marked ``searchable``) all come from here, so they cannot drift apart. Each option's
``field`` is the :class:`~app.request.ConversionRequest` field it sets (a test checks the defaults
agree), ``targets`` the targets it shapes.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EXPORTERS = ("dynamo", "torchscript")
QUANTIZATION_MODES = ("dynamic", "static")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class Option:
    """One option of a conversion: a ``ConversionRequest`` field and its command-line flag."""

    field: str
    flags: tuple[str, ...]                 # the first is the one written back
    type: type = str
    default: Any = None
    choices: tuple = ()
    help: str | None = None
    metavar: str | None = None
    targets: tuple[str, ...] = ()          # the targets it shapes (empty: every target)
    searchable: bool = False               # optimize tries each choice

    def add_to(self, parser: argparse.ArgumentParser, *, required: bool = False) -> None:
        kwargs: dict = {"dest": self.field, "default": self.default, "help": self.help}
        if self.type is not str:
            kwargs["type"] = self.type
        if self.choices:
            kwargs["choices"] = list(self.choices)
        if self.metavar:
            kwargs["metavar"] = self.metavar
        if required:
            kwargs["required"] = True
        parser.add_argument(*self.flags, **kwargs)

    def flag_args(self, value: Any) -> list[str]:
        """``[flag, value]`` when ``value`` is not the default (what a person would leave out), else ``[]``."""
        if value is None or value == self.default or (value == "" and self.default is None):
            return []
        return [self.flags[0], str(value)]


CONVERSION_OPTIONS: tuple[Option, ...] = (
    Option("opset", ("--opset",), int, help="ONNX opset version (default: the exporter's)",
           targets=("onnx", "tensorrt", "openvino")),
    Option("exporter", ("--exporter",), str, "dynamo", EXPORTERS,
           help="ONNX exporter (dynamo falls back to torchscript when it cannot capture the model)",
           targets=("onnx", "tensorrt", "openvino")),
    Option("quantization", ("--quantization",), str, None, QUANTIZATION_MODES,
           help="int8 mode (default: static QDQ with --calibration, else dynamic; TensorRT: static)",
           targets=("onnx", "tensorrt"), searchable=True),
)

DATA_OPTIONS: tuple[Option, ...] = (
    Option("calibration", ("--data", "--calibration"), Path, metavar="PATH",
           help="real samples for calibration and evaluation: a folder of .npy/.npz files, an image "
                "folder (class subfolders give labels), or a .txt/.jsonl file of sentences with --tokenizer"),
    Option("tokenizer", ("--tokenizer",), Path, metavar="DIR",
           help="Hugging Face tokenizer folder (tokenizer.json) for text data"),
    Option("normalize", ("--normalize",), str, metavar="NAME",
           help="image normalisation: imagenet (3-channel default), unit [0,1] (1-channel default), "
                "signed [-1,1], none (0-255), or 'MEAN,..;STD,..'"),
    Option("data_limit", ("--data-limit",), int, 2000, metavar="N", help="read at most N samples (default 2000)"),
)

TUNING_OPTIONS: tuple[Option, ...] = (
    Option("accuracy_budget", ("--accuracy-budget",), str, metavar="BUDGET",
           help="fp16/int8 on --data: keep the nodes that add the most error in float until the budget "
                "holds, e.g. cosine=0.99 or top1-drop=1%% (exit 1 with the best artifact if it cannot)"),
    Option("max_float_nodes", ("--max-float-nodes",), int, 32, metavar="N",
           help="at most N nodes kept in float by --accuracy-budget (default 32)"),
    Option("calibration_method", ("--calibration-method",), str, "minmax", CALIBRATION_METHODS,
           targets=("onnx", "tensorrt"), searchable=True),
    Option("workspace_mb", ("--workspace-mb",), int, 4096, help="TensorRT builder workspace limit",
           targets=("tensorrt",)),
)

SEED = Option("seed", ("--seed",), int, 0, help="seed of the random verification inputs")

ALL_OPTIONS: tuple[Option, ...] = CONVERSION_OPTIONS + DATA_OPTIONS + TUNING_OPTIONS + (SEED,)


def option(field: str) -> Option:
    """The option that sets ``field``."""
    return next(o for o in ALL_OPTIONS if o.field == field)


def search_space(field: str) -> tuple:
    """The values ``optimize`` tries for ``field``: every choice of a searchable option, else its default."""
    o = option(field)
    return o.choices if o.searchable else (o.default,)


def add_flags(parser: argparse.ArgumentParser, options: tuple[Option, ...], *, required: bool = False) -> None:
    for o in options:
        o.add_to(parser, required=required)


def fields_of(args: argparse.Namespace, options: tuple[Option, ...]) -> dict:
    """The request fields the parsed flags of ``options`` give."""
    return {o.field: getattr(args, o.field) for o in options}


def flags_of(request, options: tuple[Option, ...] = ALL_OPTIONS) -> list[str]:
    """The flags that reproduce ``request``'s options (only those that differ from the defaults)."""
    return [a for o in options for a in o.flag_args(getattr(request, o.field))]
