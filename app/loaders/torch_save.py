"""``torch.save`` files and safetensors: state dicts (built into ``--arch``'s network) and full pickled
modules (through the weights-only unpickler, with the globals the user approved)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.errors import BadInput, ModelLoadError, StudioError
from app.errors import first_line as _first_line
from app.loaders.modules import from_module
from app.model import LoadedModel

@dataclass(frozen=True)
class PickleTrust:
    """What the user approved for a full pickled module (see :mod:`app.unpickling`)."""

    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()
    run_code_from_file: bool = False


def read_safetensors(path: Path) -> dict:
    try:
        from safetensors.torch import load_file  # maps the file: tensors stay in the page cache, not copied

        return load_file(str(path))
    except Exception as e:
        raise ModelLoadError(f"{path} is not a readable safetensors file ({e}); re-export it") from None


def load_torch_save(path: Path, arch, arch_kwargs, trust: PickleTrust, guess: bool = True) -> LoadedModel:
    import pickle

    import torch

    try:
        from app.unpickling import starts_like_zip

        # zip archives are memory-mapped: the weights stay in the page cache, not copied (issue 16)
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=starts_like_zip(path))
    except pickle.UnpicklingError as e:
        if "Weights only load failed" not in str(e) and "Unsupported global" not in str(e):
            raise ModelLoadError(f"{path} is damaged or not a PyTorch file ({_first_line(e)}); re-export it") from None
        return _load_pickled_module(path, arch, arch_kwargs, trust, guess)
    except Exception as e:  # noqa: BLE001 - torch's readers fail on damage with many types (found by fuzzing)
        raise ModelLoadError(f"{path} is damaged or truncated ({_first_line(e)}); re-export the model") from None
    if isinstance(obj, torch.nn.Module):  # allowed by weights_only only for trivial modules
        return from_module(path, obj, "pickle", guess=guess)
    state = _find_state_dict(obj)
    if state is None:
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not a state dict or model; "
                             "save model.state_dict() or the model itself")
    return load_state_dict(path, state, arch, arch_kwargs, guess)


def _find_state_dict(obj: Any) -> dict | None:
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):  # training checkpoints: {"state_dict": ..., "optimizer": ...}
        for key in ("state_dict", "model_state_dict", "model", "module", "net", "ema"):
            if key in obj:
                found = _find_state_dict(obj[key])
                if found is not None:
                    return found
    return None


def load_state_dict(path: Path, state: dict, arch: str | None, arch_kwargs: dict | None,
                     guess: bool = True) -> LoadedModel:
    import torch

    params = sum(int(t.numel()) for t in state.values() if isinstance(t, torch.Tensor))
    if not arch:
        # A state dict alone cannot run; inspect still shows what it holds.
        return LoadedModel(path, "state-dict", [], [], params, path.stat().st_size,
                           details={"tensors": len(state)},
                           warnings=[f"{path.name} holds weights only; pass --arch file.py:Factory "
                                     "(the class or function that builds the network) to convert it"])
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    module, result = _module_with_weights(arch, arch_kwargs, state)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise BadInput(f"{path.name} does not fit --arch {arch}: {'; '.join(parts)}; "
                       "check the architecture and --arch-kwargs")
    return from_module(path, module, "state-dict", guess=guess)


def _module_with_weights(arch: str, arch_kwargs: dict | None, state: dict):
    """Build ``arch`` and give it ``state``'s weights: (module, load_state_dict's result).

    The network is first built on the meta device (no memory, no random init) and the state dict's
    tensors — memory-mapped from the file — are assigned rather than copied, so the weights exist
    once. Architectures that cannot be built on meta, buffers the state dict lacks, or dtypes that
    differ from the module's fall back to a normal build and copy."""
    import torch

    from app.arch import build_module

    try:
        with torch.device("meta"):
            module = build_module(arch, arch_kwargs)
        own = dict(module.state_dict(keep_vars=True))
        fits = all(k in state and state[k].dtype == v.dtype for k, v in own.items())
        if fits:
            result = module.load_state_dict(state, strict=False, assign=True)
            if not any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
                return module, result
    except StudioError:
        raise
    except Exception:  # noqa: BLE001 - e.g. an __init__ that computes on its tensors: build it normally
        pass
    module = build_module(arch, arch_kwargs)
    return module, module.load_state_dict(state, strict=False)


def _load_pickled_module(path: Path, arch, arch_kwargs, trust: PickleTrust, guess: bool = True) -> LoadedModel:
    import torch

    from app.unpickling import load_pickled_module

    obj = load_pickled_module(path, allow_pickle=trust.allow_pickle, arch=arch, trusted=trust.trusted_globals,
                              run_code_from_file=trust.run_code_from_file)
    if not isinstance(obj, torch.nn.Module):
        state = _find_state_dict(obj)
        if state is not None:
            return load_state_dict(path, state, arch, arch_kwargs, guess)
        raise ModelLoadError(f"{path} holds a {type(obj).__name__}, not an nn.Module")
    return from_module(path, obj, "pickle", guess=guess)
