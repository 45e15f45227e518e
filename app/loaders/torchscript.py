"""TorchScript archives: the module, and the signature recorded in it (else read from ``forward()``).

TorchScript archives are programs: their code runs when they are loaded (``inspect`` says so)."""

from __future__ import annotations

from app.errors import ModelLoadError, first_line as _first_line
from app.loaders.checked import CheckedFile
from app.loaders.modules import SIGNATURE_FILE, from_module, recorded_signature
from app.model.loaded import LoadedModel
from app.request import ModelSource
from app.safety.archives import TORCHSCRIPT_NOTE


def load(file: CheckedFile, source: ModelSource, guess: bool = True) -> LoadedModel:
    import torch

    path, reader = file.path, file.reader_path()
    extra = {SIGNATURE_FILE: ""}
    try:
        module = torch.jit.load(reader, map_location="cpu", _extra_files=extra)
    except Exception as e:
        raise ModelLoadError(f"{path} is a damaged TorchScript archive ({_first_line(e)}); re-export it") from None
    inputs, outputs, details = recorded_signature(extra[SIGNATURE_FILE])
    model = from_module(path, module, "torchscript", inputs, outputs, details, guess=guess, size=file.size)

    model.warnings.insert(0, TORCHSCRIPT_NOTE)
    return model
