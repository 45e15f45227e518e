"""The converter interface, the registry, and the context a conversion runs in.

Each target is one :class:`Converter` subclass in its own module. Subclasses register themselves
(``__init_subclass__``) so the CLI's ``--to`` choices and the window's target list come from here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from app.errors import Cancelled, UnsupportedCombination
from app.model import LoadedModel
from app.request import ConversionRequest
from app.specs import TensorSpec

TORCH_MODULE_FORMATS = ("state-dict", "pickle")
ALL_SOURCES = ("state-dict", "pickle", "torchscript", "torch-export", "onnx")

_REGISTRY: dict[str, type["Converter"]] = {}
_MODULES = ("converters.torchscript", "converters.torch_export", "converters.onnx_export", "converters.openvino",
            "converters.tensorrt")


@dataclass
class ConversionContext:
    """What a converter gets: the request, the loaded source, where to write, and progress hooks."""

    request: ConversionRequest
    model: LoadedModel
    inputs: list[TensorSpec]            # final signature (names, dtypes, dynamic labels)
    export_inputs: list[TensorSpec]     # the same with example sizes safe for tracing/export
    work_dir: Path                      # private temporary folder inside the output folder
    artifact_name: str                  # final file name of the primary artifact
    progress: Callable[[str, float | None], None] = lambda stage, fraction=None: None
    should_cancel: Callable[[], bool] = lambda: False
    warnings: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)   # what shaped the artifact → manifest
    only_exporter: str | None = None    # ONNX: this exporter only (the retry after a failed verification)
    calibration: Any = None             # app.data.DataSet: the calibration part of --data
    exclude_nodes: tuple[str, ...] = ()  # fp16/int8: nodes kept in float (the accuracy-budget loop)
    keep_reference: bool = False        # keep the fp32 (pre-processed) ONNX for diagnosis and rebuilds
    reference_onnx: Path | None = None  # that fp32 ONNX, node names as the quantizer saw them

    @property
    def artifact_path(self) -> Path:
        return self.work_dir / self.artifact_name

    def check_cancel(self) -> None:
        if self.should_cancel():
            raise Cancelled("cancelled by the user")

    def stage(self, name: str, fraction: float | None = None) -> None:
        self.check_cancel()
        self.progress(name, fraction)

    def example_args(self, dtype_override: str | None = None) -> tuple:
        """Torch tensors for tracing/exporting, at export-safe sizes."""
        import torch

        from app.inputs import make_feeds

        feeds = make_feeds(self.export_inputs, seed=self.request.seed, int_high=self.model.details.get("int_high", 2))
        args = []
        for spec in self.export_inputs:
            t = torch.from_numpy(feeds[spec.name])
            if dtype_override and t.is_floating_point():
                t = t.to(getattr(torch, dtype_override))
            args.append(t)
        return tuple(args)


class Converter:
    """One deployment target. Subclasses set the class attributes and implement :meth:`convert`."""

    name: ClassVar[str]                       # the --to value
    label: ClassVar[str]                      # shown in the window
    extension: ClassVar[str]                  # artifact file extension
    tag: ClassVar[str] = ""                   # part of the artifact name, e.g. "trace"
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16", "int8")
    sources: ClassVar[tuple[str, ...]] = ALL_SOURCES
    precision_sources: ClassVar[dict[str, tuple[str, ...]]] = {}  # precision → sources, where narrower
    unsupported_reasons: ClassVar[dict[str, str]] = {}   # "source:FMT", "PRECISION" or "PRECISION:FMT" → why not
    servable: ClassVar[bool] = True           # Triton serves its artifacts (Export for serving, serve-bundle)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls

    # -- availability and validity
    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this machine can build the target at all, and why not."""
        return True, ""

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        """Why this machine cannot build ``precision`` (hardware, a missing library); "" when it can.

        bf16 needs AVX-512 BF16 or AMX (:mod:`app.hardware`): elsewhere it is emulated and slower than fp32.
        """
        if precision == "bf16":
            from app.hardware import detect_cpu

            return detect_cpu().bf16_refusal()
        return ""

    @classmethod
    def valid_precisions(cls, source_format: str) -> list[str]:
        return [p for p in cls.precisions if source_format in cls.sources_for(p) and not cls.precision_refusal(p)]

    @classmethod
    def sources_for(cls, precision: str) -> tuple[str, ...]:
        return cls.precision_sources.get(precision, cls.sources)

    @classmethod
    def check(cls, source_format: str, precision: str) -> None:
        """Raise :class:`UnsupportedCombination` with one line listing what is valid."""
        valid = cls.valid_precisions(source_format)
        if precision in valid:
            return
        reasons = cls.unsupported_reasons
        if precision in cls.precisions and source_format in cls.sources_for(precision):
            why = cls.precision_refusal(precision)
        elif source_format not in cls.sources:
            why = reasons.get(f"source:{source_format}")
        else:
            why = reasons.get(f"{precision}:{source_format}") or reasons.get(precision)
        others = [f"{c.name} ({'/'.join(c.valid_precisions(source_format))})" for c in all_converters()
                  if c.valid_precisions(source_format)]
        head = f"--to {cls.name} --precision {precision} is not possible for this {source_format} model"
        raise UnsupportedCombination(f"{head}{': ' + why if why else ''}. Valid here: "
                                     + (", ".join(others) or "none"))

    def artifact_name(self, stem: str, precision: str) -> str:
        parts = [stem] + ([self.tag] if self.tag else []) + [precision]
        return ".".join(parts) + self.extension

    # -- the work
    def convert(self, ctx: ConversionContext) -> list[Path]:
        """Write the artifact (and any side files) into ``ctx.work_dir``; return them, primary first."""
        raise NotImplementedError

    def load_artifact(self, path: Path) -> LoadedModel:
        """Re-load the artifact in its own runtime, for verification."""
        from app.loading import load_model

        return load_model(path)


def _import_all() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a converter's own dependency missing is a bug to surface
                raise


def all_converters() -> list[type[Converter]]:
    _import_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY, key=lambda n: list(_REGISTRY).index(n))]


def get_converter(name: str) -> type[Converter]:
    _import_all()
    if name not in _REGISTRY:
        raise UnsupportedCombination(f"unknown target {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def target_names() -> list[str]:
    return [c.name for c in all_converters()]


def torch_module_of(model: LoadedModel):
    """The callable nn.Module behind a torch-format model (an ExportedProgram's module() too)."""
    if model.format == "torch-export":
        return model.module.module()
    return model.module
