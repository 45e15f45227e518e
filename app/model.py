"""LoadedModel: one object for every supported file, that knows its signature and runs itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.specs import TensorSpec

Feeds = dict[str, np.ndarray]


@dataclass
class LoadedModel:
    """A model file loaded into memory.

    ``format`` is one of ``torchscript``, ``torch-export``, ``state-dict``, ``pickle``, ``onnx``
    (plus ``tensorrt`` for engines). ``module`` is the in-memory object converters consume: an
    ``nn.Module``/``ScriptModule``, an ``ExportedProgram``, or the ONNX file's path.
    """

    path: Path
    format: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    param_count: int
    size_bytes: int
    module: Any = None
    inputs_guessed: bool = False
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    _runner: Callable[[Feeds], list[np.ndarray]] | None = field(default=None, repr=False)
    # frees what running it built (an ONNX Runtime session); the next run() builds it again
    _release: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def is_torch(self) -> bool:
        return self.format in ("torchscript", "torch-export", "state-dict", "pickle")

    def release(self) -> None:
        """Free the memory a run holds on to between runs (verification: before the artifact loads)."""
        if self._release is not None:
            self._release()

    def run(self, feeds: Feeds) -> list[np.ndarray]:
        """Run one inference; feeds are cast to the declared input dtypes; outputs as float64-safe arrays."""
        if self._runner is None:
            raise RuntimeError(f"{self.path.name}: this {self.format} model cannot be run")
        cast = {}
        for spec in self.inputs:
            if spec.name not in feeds:
                raise KeyError(spec.name)
            cast[spec.name] = np.ascontiguousarray(feeds[spec.name]).astype(_np_dtype(spec.dtype), copy=False)
        return self._runner(cast)

    def summary(self) -> dict:
        """What ``inspect --json`` prints."""
        return {
            "path": str(self.path),
            "format": self.format,
            "inputs": [s.to_json() for s in self.inputs],
            "inputs_guessed": self.inputs_guessed,
            "outputs": [s.to_json() for s in self.outputs],
            "parameters": self.param_count,
            "size_bytes": self.size_bytes,
            **self.details,
            "warnings": list(self.warnings),
        }


def _np_dtype(dtype: str):
    if dtype == "bfloat16":  # numpy has no bfloat16; torch runners cast from float32
        return np.float32
    return np.dtype(dtype)


def torch_runner(fn: Callable, inputs: list[TensorSpec]) -> Callable[[Feeds], list[np.ndarray]]:
    """Wrap a torch callable (module, scripted module, exported program's module) as a numpy runner."""

    def run(feeds: Feeds) -> list[np.ndarray]:
        import torch

        args = []
        for spec in inputs:
            t = torch.from_numpy(np.array(feeds[spec.name]))
            if spec.dtype == "bfloat16":
                t = t.to(torch.bfloat16)
            args.append(t)
        with torch.inference_mode():
            out = fn(*args)
        return [t.detach().float().numpy() if t.is_floating_point() else t.detach().numpy()
                for t in flatten_outputs(out)]

    return run


def flatten_outputs(out: Any) -> list:
    """Tensors of a model's output in a stable order (tuples, lists, dicts, dataclass-like)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for k in out for t in flatten_outputs(out[k])]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flatten_outputs(o)]
    if hasattr(out, "to_tuple"):  # transformers ModelOutput
        return flatten_outputs(out.to_tuple())
    if out is None:
        return []
    return [torch.as_tensor(out)]
