"""An option of a conversion, declared once: what it is, its type, default, choices and help.

Each converter declares the options that shape its artifacts (``Converter.options``: the ONNX
exporter and opset in :mod:`converters.onnx_export`, the int8 mode and calibration method in
:mod:`converters.onnx_precision`, TensorRT's workspace in :mod:`converters.tensorrt`); the options of
every target (the accuracy budget, the seed) and the flags of ``--data`` are declared here. The
``convert`` command's flags, the command line that reproduces a window job, the window's option
form and ``optimize``'s search space (options marked ``searchable``) all come from these
declarations (:func:`converters.base.all_options`), so they cannot drift apart. A request holds
only the values the user set (:class:`app.request.Options`); :meth:`Option.of` reads one with its
default.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Option:
    """One option: its name (the key in ``ConversionRequest.options``) and its command-line flag."""

    name: str
    flags: tuple[str, ...]                 # the first is the one written back
    type: type = str
    default: Any = None
    choices: tuple = ()
    help: str | None = None
    metavar: str | None = None
    searchable: bool = False               # optimize tries each choice
    precisions: tuple[str, ...] = ()       # the precisions it shapes (empty: every one)
    only_with: tuple[str, Any] | None = None  # it matters only when this other option has this value
    label: str = ""                        # the window's form shows the option under this label ("" : not shown)
    default_label: str = "default"         # the window's word for "not set" (a None default)
    maximum: int = 0                       # int options in the window: the largest value offered

    def of(self, request) -> Any:
        """This option's value in ``request`` (a :class:`~app.request.ConversionRequest`), else its default."""
        return request.options.get(self.name, self.default)

    def search_space(self) -> tuple:
        """The values ``optimize`` tries: every choice of a searchable option, else its default."""
        return self.choices if self.searchable else (self.default,)

    def add_to(self, parser: argparse.ArgumentParser, *, required: bool = False) -> None:
        kwargs: dict = {"dest": self.name, "default": self.default, "help": self.help}
        if self.type is not str:
            kwargs["type"] = self.type
        if self.choices:
            kwargs["choices"] = list(self.choices)
        if self.metavar:
            kwargs["metavar"] = self.metavar
        if required:
            kwargs["required"] = True
        parser.add_argument(*self.flags, **kwargs)

    def is_default(self, value: Any) -> bool:
        return value is None or value == self.default or (value == "" and self.default is None)

    def flag_args(self, value: Any) -> list[str]:
        """``[flag, value]`` when ``value`` is not the default (what a person would leave out), else ``[]``."""
        return [] if self.is_default(value) else [self.flags[0], str(value)]


# -- the options of every target (read by the pipeline, not by a converter)
ACCURACY_BUDGET = Option(
    "accuracy_budget", ("--accuracy-budget",), str, metavar="BUDGET",
    help="ONNX fp16/int8 on --data: int8 first searches the quantizer's settings, then keeps the nodes that add "
         "the most error in float, until the budget holds at --min-speedup over the same runtime's fp32: "
         "cosine=0.99 (lowest mean cosine), top1-drop=1%% (most top-1 points lost, labelled data), "
         "confident-agreement=0.99 (lowest top-1 agreement on the samples the source calls by a softmax margin of "
         "0.1 or more) or kl=0.01 (highest mean softmax KL divergence); several, comma-separated, must all hold: "
         "confident-agreement=0.99,cosine=0.99 (NNCF's accuracy control follows the first) (exit 1 with the best "
         "artifact if it cannot; with none, if no round reaches the speed floor)",
    precisions=("fp16", "int8"), label="Accuracy budget",
    default_label="none (e.g. cosine=0.99, top1-drop=1%, kl=0.01 or confident-agreement=0.99,cosine=0.99)")
MAX_FLOAT_NODES = Option("max_float_nodes", ("--max-float-nodes",), int, 32, metavar="N",
                         help="at most N nodes kept in float by --accuracy-budget (default 32)")
MIN_SPEEDUP = Option("min_speedup", ("--min-speedup",), float, 1.2, metavar="X",
                     help="the speed floor of --accuracy-budget: a round is kept only at X times the speed of the "
                          "same runtime's fp32 or faster (default 1.2; never below 1: an int8 artifact slower "
                          "than fp32 is never returned)",
                     precisions=("fp16", "int8"))
SEED = Option("seed", ("--seed",), int, 0, help="seed of the random verification inputs")

PIPELINE_OPTIONS: tuple[Option, ...] = (ACCURACY_BUDGET, MAX_FLOAT_NODES, MIN_SPEEDUP, SEED)

# -- --data: the fields of app.request.DataSource
DATA_OPTIONS: tuple[Option, ...] = (
    Option("path", ("--data", "--calibration"), Path, metavar="PATH",
           help="real samples for calibration and evaluation: a folder of .npy/.npz files, an image "
                "folder (class subfolders give labels), or a .txt/.jsonl file of sentences with --tokenizer"),
    Option("tokenizer", ("--tokenizer",), Path, metavar="DIR",
           help="Hugging Face tokenizer folder (tokenizer.json) for text data"),
    Option("normalize", ("--normalize",), str, metavar="NAME",
           help="image normalisation: imagenet (3-channel default), unit [0,1] (1-channel default), "
                "signed [-1,1], none (0-255), or 'MEAN,..;STD,..'"),
    Option("limit", ("--data-limit",), int, 2000, metavar="N", help="read at most N samples (default 2000)"),
    Option("eval_path", ("--eval-data",), Path, metavar="PATH",
           help="evaluate on these samples (read as --data is: same --tokenizer/--normalize), and calibrate on "
                "all of --data; give samples of other photos/recordings than --data's, so the figures say what "
                "holds on inputs the calibration never saw"),
)
EVAL_DATA = DATA_OPTIONS[-1]


def add_flags(parser: argparse.ArgumentParser, options: tuple[Option, ...], *, required: bool = False) -> None:
    for o in options:
        o.add_to(parser, required=required)


def values_of(args: argparse.Namespace, options: tuple[Option, ...]) -> dict:
    """The values the parsed flags of ``options`` give, left out where they are the defaults."""
    return {o.name: getattr(args, o.name) for o in options if not o.is_default(getattr(args, o.name))}


def flags_of(values: dict, options: tuple[Option, ...]) -> list[str]:
    """The flags that reproduce ``values`` of ``options`` (only those that differ from the defaults)."""
    return [a for o in options for a in o.flag_args(values.get(o.name))]
