"""Allow-list unpickling of full pickled modules (``torch.save(model)``).

A pickle is a program: every global it names is imported and may be called. So a pickled module is
loaded only by torch's *weights-only* unpickler (``torch.load(weights_only=True)``), which refuses
every global, opcode and ``__setstate__`` target that is not on its allow-list; we extend that list,
for one load, with exactly the globals the user approved (``torch.serialization.safe_globals``):

- ``--allow-pickle`` approves ``nn.Module`` subclasses defined in ``torch.nn`` (not
  ``torch.nn.parallel``) and in the ``--arch`` package (or file);
- every other global the file names (configs, functions such as ``torch._C._nn.gelu``) needs an
  explicit ``--trust-global NAME``.

Names are resolved only among modules already imported (torch, the ``--arch`` code) or, for a name
the user trusted explicitly, by importing that name's own module: nothing is imported because the
file names it. The list of names comes from ``torch.serialization.get_unsafe_globals_in_checkpoint``,
which reads zip checkpoints only; legacy (non-zip) files and zip/pickle polyglots are refused with the
reason. The one way around all this is ``--unsafe-run-code-from-file`` (``run_code_from_file``):
plain ``pickle`` semantics, for files the user made themselves.
"""

from __future__ import annotations

import importlib
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.errors import ModelLoadError, UnsafeModelError, first_line as _first_line
from app.safety.arch import resolve_factory

ZIP_MAGIC = b"PK\x03\x04"
# nn.Module subclasses under torch.nn that --allow-pickle approves; torch.nn.parallel's wrappers
# talk to process groups and devices in __setstate__, so they need --trust-global
TORCH_NN_PREFIX = "torch.nn."
TORCH_NN_EXCLUDED = ("torch.nn.parallel.",)


def starts_like_zip(path: Path) -> bool:
    """True when the file starts with a zip local header: how ``torch.load`` decides (not
    ``zipfile.is_zipfile``, which looks for a directory at the end of the file)."""
    with open(path, "rb") as f:
        return f.read(4) == ZIP_MAGIC


def check_not_polyglot(path: Path, *, head: bytes | None = None, stream: BinaryIO | None = None,
                       archive: zipfile.ZipFile | None = None) -> None:
    """Refuse a file that two readers would see differently: a pickle with a zip appended (torch
    reads the pickle, zip tools the archive) or a zip with something in front of its first member.

    The front door (:mod:`app.loaders.front_door`) hands over what it already has open (the file's first bytes,
    the file, the parsed archive), so the check reads nothing twice; given none, it opens the file."""
    if starts_like_zip(path) if head is None else head[:4] == ZIP_MAGIC:
        if archive is None:
            try:
                with zipfile.ZipFile(path if stream is None else stream) as z:
                    first = min((i.header_offset for i in z.infolist()), default=0)
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as e:
                raise ModelLoadError(f"{path} is a damaged zip archive ({e}); re-export the model") from None
        else:
            first = min((i.header_offset for i in archive.infolist()), default=0)
        if first != 0:
            raise UnsafeModelError(f"{path} is a zip archive with {first:,} bytes of something else before its "
                                   "first member (a polyglot file); refused")
    elif zipfile.is_zipfile(path if stream is None else stream):
        raise UnsafeModelError(f"{path} is a pickle with a zip archive hidden at its end (a polyglot file: torch "
                               "reads the pickle, other tools the archive); refused")


@dataclass
class Approval:
    """Which globals a pickle names, which may be loaded (name -> object) and which not (name -> why)."""

    approved: dict[str, Any] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)      # approved as nn.Module classes (--allow-pickle)
    trusted: list[str] = field(default_factory=list)      # approved by --trust-global


def unsafe_globals(path: Path, *, is_zip: bool | None = None) -> list[str]:
    """The globals the checkpoint's ``data.pkl`` names beyond torch's weights-only allow-list
    (``is_zip``: whether the file starts like a zip, when the caller has read its first bytes)."""
    import pickle

    import torch

    if not (starts_like_zip(path) if is_zip is None else is_zip):
        raise UnsafeModelError(f"{path} is a legacy (non-zip) torch.save file or a plain pickle: the globals it "
                               "would import cannot be listed before running it; refused. Re-save it with a "
                               "current torch.save, or save model.state_dict() and pass --arch")
    try:
        return sorted(torch.serialization.get_unsafe_globals_in_checkpoint(str(path)))
    except pickle.UnpicklingError as e:
        # an opcode the weights-only unpickler never runs (INST, STACK_GLOBAL, OBJ, ...): hand-made
        raise UnsafeModelError(f"{path}: its pickle uses {_opcode_name(e)}, an instruction weights-only loading "
                               "refuses; refused (torch.save never writes it)") from None
    except Exception as e:  # noqa: BLE001 - a damaged pickle fails in the opcode walk with many types
        raise ModelLoadError(f"{path} is damaged or not a torch.save checkpoint ({_first_line(e)})") from None


def weights_only_reason(error: Exception) -> str:
    """The useful line of torch's weights-only refusal (``Unsupported global: GLOBAL io.open ...``)."""
    for line in str(error).splitlines():
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].split(". Please")[0].strip()
    return _first_line(error)


def _opcode_name(error: Exception) -> str:
    """``Unsupported operand 147`` -> ``STACK_GLOBAL (opcode 147)``."""
    import pickletools

    code = str(error).rsplit(" ", 1)[-1]
    op = pickletools.code2op.get(chr(int(code))) if code.isdigit() and int(code) < 256 else None
    return f"{op.name} (opcode {code})" if op else _first_line(error)


def user_packages(arch: str | None) -> dict[str, Any]:
    """Module-name prefixes of the ``--arch`` code -> its module (None: look in ``sys.modules``).

    ``pkg.sub:Factory`` approves the top-level package ``pkg``; ``path/models.py:Factory`` approves
    the module name ``models`` (how a script that imported the file pickled its classes).
    """
    if not arch:
        return {}

    factory = resolve_factory(arch)  # imports the user's code, which they named
    where = arch.rpartition(":")[0]
    if where.endswith(".py") or "/" in where or "\\" in where:
        return {Path(where).stem: sys.modules.get(getattr(factory, "__module__", ""), None)}
    return {where.split(".")[0]: None}


def _lookup(name: str, roots: dict[str, Any], import_ok: bool) -> Any:
    """The object called ``name`` (``module.attr``), from already imported modules only unless
    ``import_ok`` (the user named it); raises LookupError."""
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:i])
        module = roots.get(module_name) or sys.modules.get(module_name)
        if module is None and import_ok and i == len(parts) - 1:
            try:
                module = importlib.import_module(module_name)
            except Exception as e:  # noqa: BLE001 - any import failure means "not resolvable"
                raise LookupError(f"cannot import {module_name} ({type(e).__name__})") from None
        if module is None:
            continue
        obj = module
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                raise LookupError(f"{module_name} has no {'.'.join(parts[i:])}")
            obj = getattr(obj, attr)
        return obj
    raise LookupError("its module is not imported here")


def approve(names: list[str], *, allow_pickle: bool, arch: str | None = None,
            trusted: tuple[str, ...] = ()) -> Approval:
    """Decide, name by name, what the load may use. Nothing the file names is imported here."""
    import torch

    result = Approval()
    packages = user_packages(arch) if allow_pickle else {}
    file_roots = {k: v for k, v in packages.items() if v is not None}
    for name in names:
        if name in trusted:
            try:
                result.approved[name] = _lookup(name, file_roots, import_ok=True)
                result.trusted.append(name)
            except LookupError as e:
                result.refused[name] = f"trusted but not found: {e}"
            continue
        in_torch_nn = name.startswith(TORCH_NN_PREFIX) and not name.startswith(TORCH_NN_EXCLUDED)
        in_user = any(name == p or name.startswith(p + ".") for p in packages)
        if not allow_pickle or not (in_torch_nn or in_user):
            result.refused[name] = "needs --trust-global"
            continue
        try:
            obj = _lookup(name, file_roots, import_ok=False)
        except LookupError as e:
            result.refused[name] = f"not resolvable ({e}); needs --trust-global"
            continue
        module_name = name.split(".")[0] if in_user and name.split(".")[0] in file_roots else None
        defined_as = f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}"
        same_place = defined_as == name or (module_name is not None and isinstance(obj, type))
        if isinstance(obj, type) and issubclass(obj, torch.nn.Module) and same_place:
            result.approved[name] = obj
            result.modules.append(name)
        else:
            result.refused[name] = "not an nn.Module class; needs --trust-global"
    return result


def load_pickled_module(path: Path, *, allow_pickle: bool, arch: str | None = None,
                        trusted: tuple[str, ...] = (), run_code_from_file: bool = False,
                        checked_zip: bool | None = None, notes: list[str] | None = None) -> Any:
    """Unpickle ``torch.save(model)`` with only the approved globals; raises UnsafeModelError, whose
    message lists every global still needed, one a line (its ``details["globals"]``: the same names).

    ``notes`` (a list) gains a line for each trusted name the file does not use (ignored).

    ``checked_zip``: the front door (:mod:`app.loaders.front_door`) has already refused polyglots and read the
    file's first bytes, and says whether it starts like a zip; None checks and looks here."""
    import pickle

    import torch

    if checked_zip is None:
        check_not_polyglot(path)
        checked_zip = starts_like_zip(path)
    if run_code_from_file:
        return _load_running_code(path, arch)
    names = unsafe_globals(path, is_zip=checked_zip)
    approval = approve(names, allow_pickle=allow_pickle, arch=arch, trusted=tuple(trusted))
    needing = sorted(approval.refused)
    if not allow_pickle:
        err = UnsafeModelError(
            f"{path} is a pickled Python object (a whole nn.Module) that names {len(names)} classes and "
            f"functions ({', '.join(names[:4])}{', …' if len(names) > 4 else ''}); if you trust it, re-run "
            "with --allow-pickle (approves nn.Module classes from torch.nn and --arch) plus --trust-global "
            "NAME for anything else; safer: save model.state_dict() and pass --arch")
        err.details = {"globals": names}
        raise err
    if needing:
        err = UnsafeModelError(still_needed_message(path, needing, approval.refused))
        err.details = {"globals": needing, "approved": sorted(approval.approved),
                       "reasons": {n: approval.refused[n] for n in needing}}
        raise err
    if notes is not None:
        notes += [f"trusted global {name}: {path.name} does not use it; ignored" for name in trusted
                  if name not in names]
    pairs = [(obj, name) for name, obj in approval.approved.items()]
    try:
        with torch.serialization.safe_globals(pairs):
            # memory-mapped like state dicts: the module's weights stay in the page cache
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=checked_zip)
    except pickle.UnpicklingError as e:
        raise UnsafeModelError(f"{path}: refused by the weights-only unpickler ({weights_only_reason(e)})") from None
    except Exception as e:  # noqa: BLE001 - an approved class failing to rebuild itself
        raise ModelLoadError(f"{path} could not be unpickled ({_first_line(e)})") from None


TRUST_FILE_HINT = ("save these names one per line in a file and pass --trust-globals-from FILE, or add "
                   "--trust-global NAME for each")


def still_needed_message(path: Path, needing: list[str], reasons: dict[str, str]) -> str:
    """The refusal of a pickle that names globals nobody approved: what and which file on the first line,
    then every name still needed, one a line (with its reason where it is not just "not trusted"),
    then what to do."""
    plain = "needs --trust-global"
    lines = [f"{path}: refused: unpickling it needs {len(needing)} global{'s' if len(needing) != 1 else ''} that "
             "--allow-pickle does not approve (it approves torch.nn layers and --arch classes only):"]
    lines += [f"  {n}" if reasons.get(n, plain) == plain else f"  {n}  ({reasons[n]})" for n in needing]
    lines.append(f"If you trust where the file came from: {TRUST_FILE_HINT}. Safer: save model.state_dict() "
                 "and pass --arch")
    return "\n".join(lines)


def _load_running_code(path: Path, arch: str | None) -> Any:
    """``--unsafe-run-code-from-file``: plain unpickling, which runs whatever the file says."""
    import os

    import torch

    if arch:  # makes the architecture's classes importable by name
        user_packages(arch)
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    try:
        return torch.load(str(path), map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError) as e:
        raise ModelLoadError(f"{path} refers to code that is not importable here ({e}); run from the "
                             "model's project folder, or save a state dict and pass --arch") from None
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"{path} could not be unpickled ({_first_line(e)})") from None
