"""A full pickled module (``torch.save(model)``), unpickled by the weights-only unpickler with the
globals the user approved (:mod:`app.safety.unpickling`); the front door has already refused polyglots."""

from __future__ import annotations

from pathlib import Path

from app.errors import ModelLoadError
from app.loaders import state_dict
from app.loaders.checked import CheckedFile
from app.loaders.modules import from_module
from app.model.loaded import LoadedModel
from app.request import ModelSource
from app.safety.unpickling import load_pickled_module


def load(file: CheckedFile, source: ModelSource, guess: bool = True) -> LoadedModel:
    import torch

    notes: list[str] = []  # trusted names the file does not use
    obj = load_pickled_module(Path(file.reader_path()), allow_pickle=source.allow_pickle, arch=source.arch,
                              trusted=source.trusted_globals, run_code_from_file=source.run_code_from_file,
                              checked_zip=file.is_zip, notes=notes)
    if not isinstance(obj, torch.nn.Module):
        state = state_dict.find_state_dict(obj)
        if state is not None:
            model = state_dict.build(file, state, source, guess)
            model.warnings[:0] = notes
            return model
        raise ModelLoadError(f"{file.path} holds a {type(obj).__name__}, not an nn.Module")
    model = from_module(file.path, obj, "pickle", guess=guess, size=file.size)
    model.warnings[:0] = notes
    return model
