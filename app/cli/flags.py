"""The flags several commands share: the source model and its signature (``model``, ``--input``,
``--dynamic``, ``--arch``, trust choices), ``--data``; and the typed values they give
(:class:`~app.request.ModelSource`, :class:`~app.request.DataSource`)."""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from pathlib import Path

from app.artifacts.json_file import read_bytes_bounded
from app.errors import BadInput
from app.model.specs import parse_dynamic, parse_input
from app.request import DataSource, ModelSource
from app.safety.arch import parse_arch_kwargs
from converters.options import ACCURACY_BUDGET, DATA_OPTIONS, EVAL_DATA, MAX_FLOAT_NODES, add_flags


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
    p.add_argument("--trust-globals-from", type=Path, metavar="FILE", dest="trust_globals_from",
                   help="approve the globals named in FILE, one per line (blank lines and # comments ignored); "
                        "a name the pickle does not use is ignored with a note")
    p.add_argument("--unsafe-run-code-from-file", action="store_true", dest="run_code_from_file",
                   help="unpickle with no checks at all: RUNS CODE FROM THE FILE (only files you made yourself)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--debug", action="store_true", help="show tracebacks and library warnings")


def add_data_args(p: argparse.ArgumentParser, *, required: bool = False, eval_data: bool = False) -> None:
    """``--data`` (alias ``--calibration``), ``--tokenizer``, ``--normalize``, ``--data-limit``; ``eval_data``:
    also ``--eval-data`` (commands that calibrate: ``convert``, ``optimize``)."""
    add_flags(p, DATA_OPTIONS[:1], required=required)
    add_flags(p, tuple(o for o in DATA_OPTIONS[1:] if eval_data or o is not EVAL_DATA))


def add_budget_args(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--accuracy-budget`` (with this command's ``help_text``) and the limit of its loop, ``--max-float-nodes``."""
    add_flags(p, (replace(ACCURACY_BUDGET, help=help_text), MAX_FLOAT_NODES))


def data_source_of(args):
    """The :class:`~app.request.DataSource` that :func:`add_data_args`' flags give (None without ``--data``)."""
    if getattr(args, "path", None) is None:
        if getattr(args, EVAL_DATA.name, None) is not None:
            raise BadInput(f"--eval-data {getattr(args, EVAL_DATA.name)}: needs --data PATH (the samples to "
                           "calibrate on); give both")
        return None
    return DataSource(**{o.name: getattr(args, o.name, o.default) for o in DATA_OPTIONS})


def source_of(args):
    """The :class:`~app.request.ModelSource` that :func:`add_model_args`' flags give: the source model,
    its signature, its network and what the user trusted in it (every command that loads a model)."""
    return ModelSource(path=args.model, inputs=tuple(parse_input(s) for s in args.input),
                       dynamic=tuple(parse_dynamic(s) for s in args.dynamic), arch=args.arch,
                       arch_kwargs=tuple(parse_arch_kwargs(args.arch_kwargs).items()),
                       allow_pickle=args.allow_pickle, trusted_globals=trusted_globals_of(args),
                       run_code_from_file=args.run_code_from_file)


MAX_TRUST_FILE_BYTES = 1 << 20
_GLOBAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+")


def read_trust_file(path: Path) -> list[str]:
    """The global names in a ``--trust-globals-from`` file: one a line; blank lines and ``#`` comments
    (whole lines or the end of one) ignored. Raises BadInput naming the file (and the line)."""
    try:  # a regular file only (a FIFO would block the CLI forever), at most 1 MiB
        text = read_bytes_bounded(path, "list of global names", MAX_TRUST_FILE_BYTES).decode("utf-8")
    except BadInput as e:  # (its message starts with the path)
        reason = str(e).removeprefix(f"{path}: ")
        raise BadInput(f"--trust-globals-from {path}: cannot read it ({reason})") from None
    except UnicodeDecodeError:
        raise BadInput(f"--trust-globals-from {path}: not UTF-8 text; write one global name per line") from None
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if not _GLOBAL_NAME.fullmatch(name):
            raise BadInput(f"--trust-globals-from {path}, line {number}: {name[:80]!r} is not a global's name "
                           "(module.name, e.g. torch._C._nn.gelu); write one name per line")
        names.append(name)
    return names


def trusted_globals_of(args) -> tuple[str, ...]:
    """Each ``--trust-global`` then the names of ``--trust-globals-from``, each once, in that order."""
    names = list(args.trust_global)
    if getattr(args, "trust_globals_from", None) is not None:
        names += read_trust_file(args.trust_globals_from)
    return tuple(dict.fromkeys(names))


def add_trust_args(p: argparse.ArgumentParser, why: str) -> None:
    """The flags that say what may run code (``--arch``, ``--arch-kwargs``, ``--allow-pickle``,
    ``--trust-global``, ``--trust-globals-from``, ``--unsafe-run-code-from-file``) for a command whose model
    comes from elsewhere (``pack``: the manifest names it); ``why`` heads their group's help."""
    g = p.add_argument_group("trust", why)
    g.add_argument("--arch", metavar="FILE.py:Factory|pkg.module:Factory",
                   help="class or function that builds the source's network (a state dict)")
    g.add_argument("--arch-kwargs", metavar="JSON", help="keyword arguments for --arch")
    g.add_argument("--allow-pickle", action="store_true",
                   help="load a fully pickled nn.Module through the weights-only unpickler")
    g.add_argument("--trust-global", action="append", default=[], metavar="NAME", dest="trust_global",
                   help="also approve this global of a pickled module (repeatable)")
    g.add_argument("--trust-globals-from", type=Path, metavar="FILE", dest="trust_globals_from",
                   help="approve the globals named in FILE, one per line")
    g.add_argument("--unsafe-run-code-from-file", action="store_true", dest="run_code_from_file",
                   help="unpickle with no checks at all: RUNS CODE FROM THE FILE (only files you made yourself)")


def trust_of_args(args) -> ModelSource:
    """What :func:`add_trust_args`' flags trust, as a :class:`~app.request.ModelSource` (its path unused)."""
    return ModelSource(path=Path("."), arch=args.arch, arch_kwargs=tuple(parse_arch_kwargs(args.arch_kwargs).items()),
                       allow_pickle=args.allow_pickle, trusted_globals=trusted_globals_of(args),
                       run_code_from_file=args.run_code_from_file)
