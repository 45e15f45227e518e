"""LoadedModel: one object for every supported file, that knows its signature and runs itself."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from app.model.specs import TensorSpec

Feeds = dict[str, np.ndarray]

# the file names the loaders read and the "supported: …" sentence: app.model.kinds (model_suffixes, supported)


@dataclass
class LoadedModel:
    """A model file loaded into memory.

    ``format`` is one of ``torchscript``, ``torch-export``, ``state-dict``, ``pickle``, or the name of
    the artifact kind it was read as (``onnx``, ``openvino``, ``tensorrt``, ``executorch``, …:
    :mod:`app.model.kinds`). ``module`` is the in-memory object converters consume: an
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
    # ONNX: (input name, rows) of each initializer table a Gather indexes with a graph input, read
    # with the graph by its loader (the embedding sizes then need no second parse of the file)
    gather_tables: tuple[tuple[str, int], ...] | None = field(default=None, repr=False, compare=False)
    # set by the loader: this model in its runtime, an app.runtimes Runner (not loaded yet)
    make_runner: Callable[[], Any] | None = field(default=None, repr=False, compare=False)
    _loaded_runner: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def is_torch(self) -> bool:
        return self.format in ("torchscript", "torch-export", "state-dict", "pickle")

    def torch_callable(self):
        """The callable behind a torch-format model: the ``nn.Module``/``ScriptModule``, or an
        ``ExportedProgram``'s ``module()``."""
        return self.module.module() if self.format == "torch-export" else self.module

    def runner(self):
        """This model in its runtime (an :class:`app.runtimes.base.Runner`), loaded on first use and kept
        while the signature stays the same: verification, evaluation and the benchmark all run it."""
        key = tuple(self.inputs)
        if self._loaded_runner is None or self._loaded_runner[0] != key:
            if self.make_runner is None:
                raise RuntimeError(f"{self.path.name}: this {self.format} model cannot be run")
            if self._loaded_runner is not None:
                self._loaded_runner[1].close()
            runner = self.make_runner()
            runner.load()
            self._loaded_runner = (key, runner)
        return self._loaded_runner[1]

    def release(self) -> None:
        """Free what running it holds on to between runs (its runner: an ONNX Runtime session, a
        compiled model); the next :meth:`run` loads it again (verification: before the artifact loads)."""
        if self._loaded_runner is not None:
            self._loaded_runner[1].close()
            self._loaded_runner = None

    def run(self, feeds: Feeds) -> list[np.ndarray]:
        """Run one inference; feeds are cast to the declared input dtypes; floating outputs as float32."""
        return self.runner().infer(feeds)

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
