"""safetensors files: a state dict, memory-mapped, built into the ``--arch`` network. The front door
has already refused a header whose claimed length does not fit the file (forged or truncated)."""

from __future__ import annotations

from app.errors import ModelLoadError
from app.loaders import state_dict
from app.loaders.checked import CheckedFile
from app.model.loaded import LoadedModel
from app.request import ModelSource


def load(file: CheckedFile, source: ModelSource, guess: bool = True) -> LoadedModel:
    reader = file.reader_path()
    try:
        from safetensors.torch import load_file  # maps the file: tensors stay in the page cache, not copied

        state = load_file(reader)
    except Exception as e:
        raise ModelLoadError(f"{file.path} is not a readable safetensors file ({e}); re-export it") from None
    return state_dict.build(file, state, source, guess)
