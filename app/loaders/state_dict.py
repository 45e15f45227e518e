"""A state dict (from ``torch.save`` or safetensors) built into the ``--arch`` network; without
``--arch`` it cannot run, but ``inspect`` still shows what it holds."""

from __future__ import annotations

from typing import Any

from app.errors import BadInput, StudioError
from app.loaders.checked import CheckedFile
from app.loaders.modules import from_module
from app.model.loaded import LoadedModel
from app.request import ModelSource
from app.safety.arch import build_module


def find_state_dict(obj: Any) -> dict | None:
    """The state dict in ``obj``: itself, or inside a training checkpoint."""
    import torch

    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):  # training checkpoints: {"state_dict": ..., "optimizer": ...}
        for key in ("state_dict", "model_state_dict", "model", "module", "net", "ema"):
            if key in obj:
                found = find_state_dict(obj[key])
                if found is not None:
                    return found
    return None


def build(file: CheckedFile, state: dict, source: ModelSource, guess: bool = True) -> LoadedModel:
    """``state`` (read from ``file``) in ``source.arch``'s network."""
    import torch

    path, arch = file.path, source.arch
    params = sum(int(t.numel()) for t in state.values() if isinstance(t, torch.Tensor))
    if not arch:
        # A state dict alone cannot run; inspect still shows what it holds.
        return LoadedModel(path, "state-dict", [], [], params, file.size,
                           details={"tensors": len(state)},
                           warnings=[f"{path.name} holds weights only; pass --arch file.py:Factory "
                                     "(the class or function that builds the network) to convert it"])
    state = {k.removeprefix("module."): v for k, v in state.items()}  # DataParallel checkpoints
    module, result = _module_with_weights(arch, source.arch_kwargs_dict, state)
    missing, unexpected = list(result.missing_keys), list(result.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} (e.g. {', '.join(unexpected[:3])})")
        raise BadInput(f"{path.name} does not fit --arch {arch}: {'; '.join(parts)}; "
                       "check the architecture and --arch-kwargs")
    return from_module(path, module, "state-dict", guess=guess, size=file.size)


def _module_with_weights(arch: str, arch_kwargs: dict | None, state: dict):
    """Build ``arch`` and give it ``state``'s weights: (module, load_state_dict's result).

    The network is first built on the meta device (no memory, no random init) and the state dict's
    tensors — memory-mapped from the file — are assigned rather than copied, so the weights exist
    once. Architectures that cannot be built on meta, buffers the state dict lacks, or dtypes that
    differ from the module's fall back to a normal build and copy."""
    import torch

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
