"""The flags several commands share: the source model and its signature (``model``, ``--input``,
``--dynamic``, ``--arch``, trust choices), ``--data``; and the request fields they give."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_model_args(p: argparse.ArgumentParser) -> None:
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


def data_fields(args) -> dict:
    """The :class:`~app.request.ConversionRequest` fields that :func:`add_data_args`' flags give."""
    return dict(calibration=args.calibration, tokenizer=args.tokenizer, normalize=args.normalize,
                data_limit=args.data_limit)


def model_fields(args) -> dict:
    """The :class:`~app.request.ConversionRequest` fields that :func:`add_model_args`' flags give
    (the source model and its signature), for every command that loads a model."""
    from app.arch import parse_arch_kwargs
    from app.specs import parse_dynamic, parse_input

    return dict(model_path=args.model, inputs=tuple(parse_input(s) for s in args.input),
                dynamic=tuple(parse_dynamic(s) for s in args.dynamic), arch=args.arch,
                arch_kwargs=tuple(parse_arch_kwargs(args.arch_kwargs).items()), allow_pickle=args.allow_pickle,
                trusted_globals=tuple(args.trust_global), run_code_from_file=args.run_code_from_file)
