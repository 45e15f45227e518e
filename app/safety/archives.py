"""Code inside model archives: what a ``.pt2`` or TorchScript file would run, checked before loading.

TorchScript and ``torch.export`` archives are programs. TorchScript's code runs when it is loaded and
called (it is run in the fenced child, see :mod:`app.safety.sandbox`, and the user is told). A ``.pt2`` is
data plus a graph of ATen operators, except for entries ``torch.export.load`` hands to full
unpickling or native loaders (torch 2.13, ``torch/export/pt2_archive/_package.py``):

- weights and constants whose config says ``use_pickle: true`` (``torch.load(weights_only=False)``);
- legacy ``data/weights/<model>.pt`` / ``data/constants/<model>.pt`` files and the sample inputs,
  which torch loads weights-only but *falls back to full unpickling* when that fails;
- ``custom_obj_*`` (TorchBind) and ``opaque_obj_*`` (``pickle.loads``) constants;
- AOTInductor's compiled shared libraries under ``data/aotinductor/``.

:func:`check_pt2` refuses those before ``torch.export.load`` sees the file, unless approved.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from app.errors import ModelLoadError, UnsafeModelError
from app.safety.unpickling import weights_only_reason

TORCHSCRIPT_NOTE = ("a TorchScript archive is a program: its code runs when it is loaded, inspected and "
                    "verified (in the fenced child process)")


def _weights_only_problem(data: bytes) -> str | None:
    """None when ``data`` (a torch.save payload) loads with the weights-only unpickler, else why not."""
    import torch

    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure means torch would fall back or unpickle fully
        return weights_only_reason(e)
    return None


def check_pt2(path: Path, *, allow_pickle: bool = False, run_code_from_file: bool = False,
              archive: zipfile.ZipFile | None = None) -> list[str]:
    """Refuse a ``.pt2`` whose loading would unpickle or load native code without approval.

    ``allow_pickle`` approves pickled weights/constants and legacy payloads that pass the
    weights-only unpickler (torch then unpickles the same bytes in full); custom/opaque objects and
    AOTInductor libraries need ``run_code_from_file``. ``archive``: the file's archive, already open
    (the front door's, :mod:`app.loaders.front_door`); else it is opened here. Returns notes for the user.
    """
    notes: list[str] = []
    try:
        if archive is not None:
            _check_entries(path, archive, allow_pickle, run_code_from_file, notes)
        else:
            with zipfile.ZipFile(path) as z:
                _check_entries(path, z, allow_pickle, run_code_from_file, notes)
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"{path} is a damaged torch.export archive ({e}); re-export it") from None
    return notes


def _check_entries(path: Path, z: zipfile.ZipFile, allow_pickle: bool, run_code: bool, notes: list[str]) -> None:
    for name in z.namelist():
        refused = _entry_problem(z, name, allow_pickle, run_code)
        if refused:
            raise UnsafeModelError(f"{path}: archive entry {name} {refused}")
        if allow_pickle and _pickled_entry(z, name):
            notes.append(f"archive entry {name} is pickled; loaded after a weights-only check")


def _configs(z: zipfile.ZipFile) -> dict[str, dict]:
    """Archive entry -> its payload config entry (``{"path_name", "use_pickle", ...}``)."""
    cached = getattr(z, "_studio_configs", None)
    if cached is not None:
        return cached
    found: dict[str, dict] = {}
    for name in z.namelist():
        if name.endswith(("_weights_config.json", "_constants_config.json")):
            folder = name.rpartition("/")[0]
            try:
                config = json.loads(z.read(name))["config"]
            except (ValueError, KeyError, TypeError) as e:
                raise ModelLoadError(f"archive entry {name} is not a valid payload config ({e})") from None
            for fqn, meta in (config or {}).items():
                if isinstance(meta, dict) and isinstance(meta.get("path_name"), str):
                    found[f"{folder}/{meta['path_name']}"] = {**meta, "fqn": fqn}
    z._studio_configs = found  # type: ignore[attr-defined]
    return found


def _pickled_entry(z: zipfile.ZipFile, name: str) -> bool:
    meta = _configs(z).get(name)
    return bool(meta and meta.get("use_pickle"))


def _entry_problem(z: zipfile.ZipFile, name: str, allow_pickle: bool, run_code: bool) -> str | None:
    if run_code:
        return None
    parts = name.split("/")
    inner = "/".join(parts[1:])  # without the archive's root folder
    if inner.startswith(("data/aotinductor/", "data/executorch/", "data/mtia")) or name.endswith((".so", ".dll", ".dylib")):
        return ("holds compiled native code (AOTInductor/ExecuTorch) that loading would run; refused "
                "(--unsafe-run-code-from-file loads it, for files you made yourself)")
    base = parts[-1]
    if inner.startswith("data/constants/") and base.startswith(("custom_obj_", "opaque_obj_")):
        return ("is a pickled Python object (a custom or opaque constant) that loading would unpickle with "
                "no checks; refused (--unsafe-run-code-from-file loads it, for files you made yourself)")
    meta = _configs(z).get(name)
    legacy = inner.startswith(("data/weights/", "data/constants/")) and base.endswith(".pt")
    sample = inner.startswith("data/sample_inputs/")
    if not (legacy or sample or (meta and meta.get("use_pickle"))):
        return None
    problem = _weights_only_problem(z.read(name))
    if problem is not None:
        what = "sample inputs" if sample else f"pickled {'payload' if legacy else 'entry ' + str(meta.get('fqn'))}"
        return f"({what}) needs full unpickling ({problem}); refused"
    if sample or allow_pickle:
        return None
    kind = "a legacy weights/constants file" if legacy else f"marked use_pickle for {meta.get('fqn')}"
    return (f"is {kind}: torch.export.load unpickles it in full; refused. It passes a weights-only check: "
            "re-run with --allow-pickle to load it")
