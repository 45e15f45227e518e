"""What a job works on, frozen and picklable (jobs take them across the process boundary): the
source model (:class:`ModelSource`) and a conversion of it (:class:`ConversionRequest`), which the
CLI and the window both build; the precisions (:class:`Precision`)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from app.specs import TensorSpec


class Precision(str, enum.Enum):
    """The precision of an artifact (``--precision``); each converter declares the ones it builds."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"

    def __str__(self) -> str:
        return self.value


PRECISIONS: tuple[str, ...] = tuple(p.value for p in Precision)


@dataclass(frozen=True)
class ModelSource:
    """A model file and what the user said about it: its signature (``--input``/``--dynamic``), the
    network of a state dict (``--arch``), and what they trusted in a pickle."""

    path: Path
    inputs: tuple[TensorSpec, ...] = ()
    dynamic: tuple[tuple[str, int, str], ...] = ()
    arch: str | None = None
    arch_kwargs: tuple[tuple[str, object], ...] = ()
    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()
    run_code_from_file: bool = False

    @property
    def arch_kwargs_dict(self) -> dict:
        return dict(self.arch_kwargs)


@dataclass(frozen=True)
class ConversionRequest:
    """What to convert, to what, and how. Paths are as the user gave them."""

    model_path: Path
    target: str
    precision: str = "fp32"
    inputs: tuple[TensorSpec, ...] = ()
    dynamic: tuple[tuple[str, int, str], ...] = ()
    arch: str | None = None
    arch_kwargs: tuple[tuple[str, object], ...] = ()
    opset: int | None = None
    exporter: str = "dynamo"
    quantization: str | None = None          # int8: "dynamic" | "static" (default: static with calibration)
    calibration: Path | None = None          # --data (alias --calibration): calibration + evaluation samples
    tokenizer: Path | None = None            # --tokenizer: Hugging Face tokenizer folder for text data
    normalize: str | None = None             # --normalize: image normalisation (default per channel count)
    data_limit: int = 2000                   # --data-limit: samples read at most
    accuracy_budget: str | None = None       # --accuracy-budget: cosine=0.99 | top1-drop=1%
    max_float_nodes: int = 32                # --max-float-nodes: limit of the budget loop
    calibration_method: str = "minmax"       # static int8: minmax | entropy | percentile
    out_dir: Path | None = None
    overwrite: bool = False
    keep_failed: bool = False
    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()    # --trust-global: globals a full pickle may use beyond nn.Module classes
    run_code_from_file: bool = False         # --unsafe-run-code-from-file: plain unpickling (files the user made)
    workspace_mb: int = 4096                 # TensorRT builder workspace limit
    ignore_memory_check: bool = False        # --ignore-memory-check: run even if the estimate says it will not fit
    seed: int = 0

    @property
    def source(self) -> ModelSource:
        """The source model of this request."""
        return ModelSource(Path(self.model_path), self.inputs, self.dynamic, self.arch, self.arch_kwargs,
                           self.allow_pickle, self.trusted_globals, self.run_code_from_file)

    def data_options(self):
        """How to read ``--data`` (:class:`app.data.DataOptions`)."""
        from app.data import DataOptions

        return DataOptions(tokenizer=self.tokenizer, normalize=self.normalize, limit=self.data_limit)

    @property
    def arch_kwargs_dict(self) -> dict:
        return dict(self.arch_kwargs)

    def recorded_options(self) -> dict:
        """Everything that shapes the artifact, for the manifest."""
        return {
            "inputs": [s.to_json() for s in self.inputs], "dynamic": [list(d) for d in self.dynamic],
            "arch": self.arch, "arch_kwargs": self.arch_kwargs_dict, "trusted_globals": list(self.trusted_globals), "opset": self.opset,
            "exporter": self.exporter, "quantization": self.quantization,
            "calibration": str(self.calibration) if self.calibration else None,
            "tokenizer": str(self.tokenizer) if self.tokenizer else None, "normalize": self.normalize,
            "data_limit": self.data_limit, "accuracy_budget": self.accuracy_budget,
            "max_float_nodes": self.max_float_nodes,
            "calibration_method": self.calibration_method, "workspace_mb": self.workspace_mb,
            "seed": self.seed,
        }
