"""A torch ``nn.Module`` (or scripted module) as a :class:`~app.model.loaded.LoadedModel`: input names from
``forward()``, a guessed signature from the first layer, outputs from one probe run; and the
signature this app records inside the TorchScript and ``.pt2`` archives it writes."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from app.errors import first_line as _first_line
from app.model import layer_facts as layers
from app.model.inputs import make_feeds
from app.model.loaded import LoadedModel, flatten_outputs
from app.model.specs import TensorSpec
from app.runtimes.pytorch import runs_in_torch

SIGNATURE_FILE = "deploystudio_signature.json"  # recorded inside TorchScript/.pt2 archives we write


def _module_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def forward_input_names(module) -> list[str]:
    """Names of the required positional parameters of ``module.forward``."""
    try:
        schema = getattr(module.forward, "schema", None)  # ScriptModule
        if schema is not None:
            return [a.name for a in schema.arguments[1:] if not a.has_default_value()]
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError, AttributeError):
        return ["input"]
    names = [p.name for p in sig.parameters.values()
             if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names or ["input"]


_GUESSABLE = {"Conv1d", "Conv2d", "Conv3d", "Linear", "Embedding", "LSTM", "GRU", "RNN"}


def _guess_for(sub) -> tuple[tuple[int, ...], str] | None:
    """(example shape, dtype) of what ``sub`` takes as its input, if it is a layer that tells. Base
    classes count: a padded ``Conv2d`` subclass, as EfficientNet's and timm's stems are, is a Conv2d."""
    kinds = [layers.kind_of(sub)] + [c.__name__ for c in type(sub).__mro__]
    kind = next((k for k in kinds if k in _GUESSABLE), None)
    if kind in ("Conv1d", "Conv2d", "Conv3d") and layers.in_channels(sub):
        c = layers.in_channels(sub)
        return {"Conv1d": (1, c, 128), "Conv2d": (1, c, 224, 224), "Conv3d": (1, c, 16, 112, 112)}[kind], "float32"
    if kind == "Linear" and layers.in_features(sub):
        return (1, layers.in_features(sub)), "float32"
    if kind == "Embedding":
        return (1, 16), "int64"
    if kind in ("LSTM", "GRU", "RNN") and layers.rnn_input_size(sub):
        size = layers.rnn_input_size(sub)
        return ((1, 16, size) if getattr(sub, "batch_first", False) else (16, 1, size)), "float32"
    return None


def _specs(names: list[str], guess: tuple[tuple[int, ...], str] | None) -> list[TensorSpec] | None:
    if guess is None:
        return None
    shape, dtype = guess
    if len(names) == 1 or dtype == "int64":
        return [TensorSpec(n, dtype, shape, shape) for n in names]
    return None


def guess_inputs(module, names: list[str]) -> list[TensorSpec] | None:
    """Propose input shapes from the first layer in module order (a guess, reported as such)."""
    for _, sub in layers.named_layers(module):
        guess = _guess_for(sub)
        if guess is not None:
            return _specs(names, guess)
    return None


def first_layer_called(module, inputs: list[TensorSpec]):
    """The first layer that tells its input's shape which ``module``'s forward actually calls, when run
    on ``inputs`` (a wrong guess fails at that layer, after its hook saw it); None when none was
    reached or the module takes no hooks (TorchScript)."""
    seen: list = []

    class _Reached(Exception):
        pass

    def hook(sub, args):
        seen.append(sub)
        raise _Reached

    handles = []
    try:
        for sub in module.modules():
            if sub is not module and _guess_for(sub) is not None:
                handles.append(sub.register_forward_pre_hook(hook))
    except (AttributeError, RuntimeError):
        return None
    try:
        probe_outputs(module, inputs)
    except Exception:  # noqa: BLE001 - _Reached, or the wrong guess failing before any layer
        pass
    finally:
        for h in handles:
            h.remove()
    return seen[0] if seen else None


def output_specs(outputs: list, names: list[str] | None = None) -> list[TensorSpec]:
    specs = []
    for i, t in enumerate(outputs):
        name = names[i] if names and i < len(names) else ("output" if len(outputs) == 1 else f"output_{i}")
        specs.append(TensorSpec(name, str(t.dtype).removeprefix("torch."), tuple(t.shape), tuple(t.shape)))
    return specs


def probe_outputs(fn, inputs: list[TensorSpec]) -> list:
    """Run ``fn`` once on zeros-like example inputs; returns the flat output tensors."""
    import torch

    feeds = make_feeds(inputs, seed=0)
    args = [torch.from_numpy(feeds[s.name]) for s in inputs]
    with torch.inference_mode():
        return flatten_outputs(fn(*args))


def _guess_warning(where: str, inputs: list[TensorSpec]) -> str:
    return (f"input shapes are a guess from {where} (" + ", ".join(s.describe() for s in inputs)
            + "); pass --input NAME:SHAPE[:DTYPE] to set them")


def from_module(path: Path, module, fmt: str, inputs: list[TensorSpec] | None = None,
                 outputs: list[TensorSpec] | None = None, details: dict | None = None,
                 guess: bool = True, size: int | None = None) -> LoadedModel:
    module.eval()
    names = forward_input_names(module)
    guessed = False
    warnings: list[str] = []
    if inputs is None and guess:
        inputs = guess_inputs(module, names)
        guessed = inputs is not None
        if guessed:
            warnings.append(_guess_warning("the first layer", inputs))
    model = LoadedModel(path, fmt, inputs or [TensorSpec(n) for n in names], outputs or [],
                        _module_params(module), path.stat().st_size if size is None else size, module=module,
                        inputs_guessed=guessed, details=dict(details or {}), warnings=warnings)
    model.details["input_names_from_forward"] = names
    if inputs and not outputs:
        try:
            model.outputs = output_specs(probe_outputs(module, inputs))
        except Exception as first:
            error: Exception | None = first
            # the guess came from the first layer in module order; the forward may start elsewhere
            better = _specs(names, _guess_for(first_layer_called(module, inputs))) if guessed else None
            if better and [s.example for s in better] != [s.example for s in inputs]:
                try:
                    model.outputs = output_specs(probe_outputs(module, better))
                    model.inputs, error = better, None
                    model.warnings = [_guess_warning("the first layer the model calls", better)]
                except Exception as retried:  # noqa: BLE001 - the error of the better guess is the one to report
                    error = retried
            if error is not None and guessed:
                model.inputs = [TensorSpec(n) for n in names]
                model.inputs_guessed = False
                model.warnings = [f"could not guess the input shapes ({_first_line(error)}); "
                                  "pass --input NAME:SHAPE[:DTYPE] for " + ", ".join(names)]
            elif error is not None:
                model.warnings.append(f"running the model on its recorded inputs failed: {_first_line(error)}")
    model.make_runner = lambda: runs_in_torch(model)
    return model


def recorded_signature(raw: str | bytes | None) -> tuple[list[TensorSpec] | None, list[TensorSpec] | None, dict]:
    if not raw:
        return None, None, {}
    try:
        data = json.loads(raw)
        return ([TensorSpec.from_json(d) for d in data["inputs"]],
                [TensorSpec.from_json(d) for d in data["outputs"]], data.get("details", {}))
    except (ValueError, KeyError, TypeError):
        return None, None, {}
