"""The front door opens a model file once (issue 14, "one loader per format"): sniffing, the checks
(polyglots, zip bombs, CRCs, forged headers) and the format's loader share what it opened, so a
conversion's ``prepare_model`` no longer re-opens and re-scans the source at every step.

Counted: every open of the source file by Python code (the ``open`` audit event: ``open()``,
``io.open``, ``os.open``, zipfile, and torch's or onnx's Python-side openers). Native readers'
own opens (TorchScript's C++ reader, memory-mapping, safetensors) are not seen and did not change."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from app.loaders.front_door import prepare_model
from app.request import ModelSource
from app.model.specs import TensorSpec

_watch: dict = {}


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _watch and args and isinstance(args[0], (str, bytes, os.PathLike)):
        if os.path.abspath(os.fsdecode(args[0])) == _watch["path"]:
            _watch["opens"] += 1


sys.addaudithook(_audit)  # audit hooks cannot be removed: it counts only while _watch is set


@contextmanager
def counting_opens(path: Path):
    _watch.update(path=os.path.abspath(path), opens=0)
    try:
        yield _watch
    finally:
        _watch.clear()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    from tests import models

    root = tmp_path_factory.mktemp("once")
    mlp, x = models.make("mlp"), torch.zeros(1, 32)
    made = {name: root / name for name in ("state.pt", "full.pt", "legacy.pt", "traced.pt", "exported.pt2",
                                           "mlp.onnx", "mlp.safetensors")}
    torch.save(mlp.state_dict(), made["state.pt"])
    torch.save(mlp, made["full.pt"])
    torch.save(mlp.state_dict(), made["legacy.pt"], _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.trace(mlp, x), str(made["traced.pt"]))
    torch.export.save(torch.export.export(mlp, (x,)), str(made["exported.pt2"]))
    torch.onnx.export(mlp, (x,), str(made["mlp.onnx"]), input_names=["x"], dynamo=False)
    save_file(mlp.state_dict(), str(made["mlp.safetensors"]))
    return made


ARCH = {"arch": "tests.models:MLP"}
# file -> (what the user said, opens of the file by Python code during prepare_model). Before the
# front door held the file open these were 6, 12, 5, 4, 5, 3 and 1: the polyglot check, the sniffing,
# the CRC test, the .pt2 check, the pickle scan and the mmap decision each opened it again, and
# the ONNX graph was parsed a second time for its embedding sizes.
BUDGETS = {
    "state.pt": (ARCH, 2),             # the front door; torch.load
    "full.pt": ({**ARCH, "allow_pickle": True}, 4),  # + the globals it names; the approved load
    "legacy.pt": (ARCH, 2),            # a non-zip torch.save: its polyglot check reads the open file
    "traced.pt": ({}, 1),              # torch.jit.load reads it natively
    "exported.pt2": ({}, 1),           # check_pt2 reads the front door's open archive; torch.export.load natively
    "mlp.onnx": ({}, 1),               # parsed from the front door's open file, once
    "mlp.safetensors": (ARCH, 1),      # safetensors maps it natively
}


@pytest.mark.parametrize("name", list(BUDGETS))
def test_prepare_model_opens_the_source_once_per_reader(files, name):
    said, budget = BUDGETS[name]
    source = ModelSource(files[name], inputs=(TensorSpec("x", "float32", (1, 32)),), **said)
    with counting_opens(files[name]) as seen:
        model = prepare_model(source)
        opens = seen["opens"]
    assert model.inputs[0].shape == (1, 32) and model.outputs
    assert opens <= budget, f"{name}: opened {opens} times during prepare_model (at most {budget})"
