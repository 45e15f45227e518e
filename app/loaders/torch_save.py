"""``torch.save`` files: read weights-only; a state dict is built into ``--arch``'s network
(:mod:`app.loaders.state_dict`), a full pickled module that names other globals goes to the
allow-list unpickler (:mod:`app.loaders.pickled`)."""

from __future__ import annotations

from app.errors import ModelLoadError, first_line as _first_line
from app.loaders import pickled, state_dict
from app.loaders.checked import CheckedFile
from app.loaders.modules import from_module
from app.model.loaded import LoadedModel
from app.request import ModelSource


def load(file: CheckedFile, source: ModelSource, guess: bool = True) -> LoadedModel:
    import pickle

    import torch

    path, reader = file.path, file.reader_path()
    try:
        # zip archives are memory-mapped: the weights stay in the page cache, not copied (issue 16)
        obj = torch.load(reader, map_location="cpu", weights_only=True, mmap=file.is_zip)
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e) and "Unsupported global" not in str(e):
            raise ModelLoadError(f"{path} is damaged or not a PyTorch file ({_first_line(e)}); re-export it") from None
        return pickled.load(file, source, guess)
    except Exception as e:  # noqa: BLE001 - torch's readers fail on damage with many types (found by fuzzing)
        raise ModelLoadError(f"{path} is damaged or truncated ({_first_line(e)}); re-export the model") from None
    if isinstance(obj, torch.nn.Module):  # allowed by weights_only only for trivial modules
        return from_module(path, obj, "pickle", guess=guess, size=file.size)
    state = state_dict.find_state_dict(obj)
    if state is None:
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not a state dict or model; "
                             "save model.state_dict() or the model itself")
    return state_dict.build(file, state, source, guess)
