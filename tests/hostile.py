"""Hostile model files, one per known way of running code from a pickle, each leaving a marker file
when its payload runs. Tests build them in a temporary folder and check refusal and no marker."""

from __future__ import annotations

import codecs
import functools
import io
import operator
import os
import pathlib
import pickle
import pydoc
import zipfile
from pathlib import Path


class Reduce:
    """An object that unpickles as ``func(*args)`` (``func`` may itself be a Reduce: a call result)."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # the pickler wants a callable in a reduce tuple; unpickled, it is one
        raise TypeError("only meaningful once unpickled")


def _save(obj, path: Path, legacy: bool = False) -> Path:
    import torch

    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def replace_data_pkl(path: Path, data: bytes) -> Path:
    """A zip checkpoint written by torch.save whose ``data.pkl`` is replaced by ``data``."""
    _save({}, path)
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            z.writestr(name, data if name.endswith("/data.pkl") else content)
    return path


def _short(text: str) -> bytes:
    raw = text.encode()
    return b"\x8c" + bytes([len(raw)]) + raw  # SHORT_BINUNICODE


def stack_global_via_memo(command: str) -> bytes:
    """Protocol 4: memoise harmless strings, then STACK_GLOBAL on BINGETs of ``posix``/``system``
    (a scanner pairing STACK_GLOBAL with the last two literals sees ``torch.nn``)."""
    return (b"\x80\x04" + _short("posix") + b"q\x00" + _short("system") + b"q\x01"
            + _short("torch") + _short("nn") + b"0" + b"0"          # pushed and popped: a decoy
            + b"h\x00h\x01\x93" + _short(command) + b"\x85R.")


def inst_opcode(command: str) -> bytes:
    """Protocol 0 INST: ``(S'cmd'\\nios\\nsystem\\n`` calls os.system(cmd)."""
    return b"(S'" + command.encode() + b"'\nios\nsystem\n."


def dotted_global(command: str) -> bytes:
    """Protocol 4 GLOBAL with a dotted name: ``torch.serialization`` / ``os.system``."""
    return b"\x80\x04ctorch.serialization\nos.system\n" + _short(command) + b"\x85R."


def build_swap(command: str) -> bytes:
    """BUILD sets an instance attribute ``__setstate__ = os.system``; a second BUILD calls it."""
    return (b"\x80\x02cargparse\nNamespace\n)\x81"                    # Namespace.__new__
            + b"N}" + _short("__setstate__") + b"cos\nsystem\ns\x86b"  # BUILD (None, {"__setstate__": os.system})
            + _short(command) + b"b.")                                # BUILD "touch marker" -> os.system(...)


def _conv_with_hidden(marker: Path):
    import torch

    conv = torch.nn.Conv2d(3, 4, 3)
    conv.hidden = Reduce(io.open, str(marker), "w")  # an attribute forward() never uses
    return conv


def build(case: str, folder: Path) -> tuple[Path, Path]:
    """Write the hostile file for ``case`` into ``folder``; returns (file, marker its payload creates)."""
    import numpy as np

    marker = folder / f"marker-{case}"
    path = folder / f"{case}.pt"
    touch = f"touch '{marker}'"
    if case == "io_open":
        _save(Reduce(io.open, str(marker), "w"), path)
    elif case == "codecs_open":
        _save(Reduce(codecs.open, str(marker), "w"), path)
    elif case == "functools_partial":
        _save(Reduce(functools.partial(io.open, str(marker), "w")), path)
    elif case == "operator_methodcaller":
        _save(Reduce(operator.methodcaller("touch"), pathlib.Path(marker)), path)
    elif case == "operator_attrgetter":
        _save(Reduce(Reduce(operator.attrgetter("touch"), pathlib.Path(marker))), path)
    elif case == "pathlib_write_text":
        _save(Reduce(operator.methodcaller("write_text", "pwned"), pathlib.Path(marker)), path)
    elif case == "pydoc_locate":
        _save(Reduce(Reduce(pydoc.locate, "os.system"), touch), path)
    elif case == "torch_serialization_os_system":
        replace_data_pkl(path, dotted_global(touch))
    elif case == "torch_save":
        import torch

        _save(Reduce(torch.save, {}, str(marker)), path)
    elif case == "numpy_save":
        marker = folder / f"marker-{case}.npy"
        _save(Reduce(np.save, str(marker), np.zeros(1)), path)
    elif case == "nested_torch_load":
        import torch

        inner = folder / "inner.pkl"
        inner.write_bytes(pickle.dumps(Reduce(io.open, str(marker), "w")))
        _save(Reduce(functools.partial(torch.load, weights_only=False), str(inner)), path)
    elif case == "build_setstate_swap":
        replace_data_pkl(path, build_swap(touch))
    elif case == "inst_opcode":
        replace_data_pkl(path, inst_opcode(touch))
    elif case == "stack_global_memo":
        replace_data_pkl(path, stack_global_via_memo(touch))
    elif case == "legacy_multiple_pickles":
        # legacy format: magic, protocol and sys-info pickles, then the object: the payload is in the 4th
        _save({"weights": Reduce(os.system, touch)}, path, legacy=True)
    elif case == "polyglot_zip_after_pickle":
        evil = pickle.dumps(Reduce(os.system, touch), protocol=2)
        clean = folder / "clean.pt"
        _save({}, clean)
        path.write_bytes(evil + clean.read_bytes())  # torch reads the pickle, zipfile the archive
    elif case == "conv2d_hidden_attribute":
        _save(_conv_with_hidden(marker), path)
    else:
        raise ValueError(case)
    return path, marker


CASES = ["io_open", "codecs_open", "functools_partial", "operator_methodcaller", "operator_attrgetter",
         "pathlib_write_text", "pydoc_locate", "torch_serialization_os_system", "torch_save", "numpy_save",
         "nested_torch_load", "build_setstate_swap", "inst_opcode", "stack_global_memo",
         "legacy_multiple_pickles", "polyglot_zip_after_pickle", "conv2d_hidden_attribute"]




# ---------------------------------------------------------------------------- .pt2 archives
class _WithConstant:
    """A tiny exported program with a weight and a tensor constant."""

    @staticmethod
    def save(path: Path) -> Path:
        import torch

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.lin = torch.nn.Linear(4, 2)
                self.c = torch.ones(2)

            def forward(self, x):
                return self.lin(x) + self.c

        torch.export.save(torch.export.export(M(), (torch.randn(1, 4),)), str(path))
        return path


def rewrite_zip(path: Path, change) -> Path:
    """Rewrite the zip at ``path``: ``change(members)`` edits the name -> bytes dict in place."""
    with zipfile.ZipFile(path) as z:
        members = {i.filename: z.read(i.filename) for i in z.infolist()}
    change(members)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            z.writestr(name, content)
    return path


def _torch_save_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def build_pt2(case: str, folder: Path) -> tuple[Path, Path]:
    """A ``.pt2`` whose loading would run the payload; returns (file, marker)."""
    import json

    marker = folder / f"marker-{case}"
    path = _WithConstant.save(folder / f"{case}.pt2")
    payload = _torch_save_bytes(Reduce(io.open, str(marker), "w"))

    def config_entry(members, suffix):
        name = next(n for n in members if n.endswith(suffix))
        return name, json.loads(members[name])

    def use_pickle(members):  # weight_0 marked as pickled, its bytes a hostile torch.save
        name, config = config_entry(members, "_weights_config.json")
        meta = next(iter(config["config"].values()))
        meta["use_pickle"] = True
        members[name] = json.dumps(config).encode()
        members[name.rpartition("/")[0] + "/" + meta["path_name"]] = payload

    def opaque(members):  # the tensor constant replaced by an opaque object (pickle.loads)
        name, config = config_entry(members, "_constants_config.json")
        meta = next(iter(config["config"].values()))
        folder_name = name.rpartition("/")[0]
        del members[f"{folder_name}/{meta['path_name']}"]
        meta["path_name"], meta["use_pickle"] = "opaque_obj_0", True  # skipped when tensors are mapped
        members[name] = json.dumps(config).encode()
        members[f"{folder_name}/opaque_obj_0"] = pickle.dumps(Reduce(io.open, str(marker), "w"))

    def legacy_constants(members):  # data/constants/model.pt instead of a config (torch falls back to pickle)
        name, _ = config_entry(members, "_constants_config.json")
        members[name.rpartition("/")[0] + "/model.pt"] = payload

    def sample_inputs(members):
        name = next(n for n in members if "/data/sample_inputs/" in n)
        members[name] = payload

    rewrite_zip(path, {"pt2_use_pickle": use_pickle, "pt2_opaque_object": opaque,
                       "pt2_legacy_constants": legacy_constants, "pt2_sample_inputs": sample_inputs}[case])
    return path, marker


PT2_CASES = ["pt2_use_pickle", "pt2_opaque_object", "pt2_legacy_constants", "pt2_sample_inputs"]


# ---------------------------------------------------------------------------- TorchScript programs
def build_torchscript_writer(folder: Path, how: str = "from_file") -> tuple[Path, Path]:
    """A scripted module whose forward writes a file: ``torch.save`` creates the marker;
    ``torch.from_file(shared=True)`` overwrites an existing 16-byte file of zeros (the marker) with
    ``A``s. Inspection and verification load and run such programs."""
    import torch

    marker = folder / f"marker-torchscript-{how}"
    if how == "from_file":
        marker.write_bytes(bytes(16))
    path = folder / f"writes_in_forward_{how}.pt"
    module = (_FromFileWriter if how == "from_file" else _SaveWriter)(str(marker))
    torch.jit.save(torch.jit.script(module), str(path))
    return path, marker


def _torch_module():
    import torch

    return torch


torch = _torch_module()


class _FromFileWriter(torch.nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.lin = torch.nn.Linear(4, 3)  # inspection guesses a 1x4 input from it and runs forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.path, True, 16, dtype=torch.uint8)
        written.fill_(65)
        return self.lin(x) + written[:1].float() * 0  # used, so TorchScript keeps it


class _SaveWriter(torch.nn.Module):
    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        torch.save(x, self.path)
        return self.lin(x)


class SystemCall:
    """Pickles into ``os.system("touch MARKER")``: a plain pickle that runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
