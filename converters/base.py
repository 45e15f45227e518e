"""The converter interface, the registry, and the context a conversion runs in.

Each target is one :class:`Converter` subclass in its own module. Subclasses register themselves
(``__init_subclass__``) and declare their precisions, sources and options, so the CLI's ``--to``
choices and flags, the window's target grid and option form, and ``optimize``'s search space come
from here (:func:`all_converters`, :func:`all_options`, :func:`options_of`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar

from app.errors import Cancelled, UnsupportedCombination
from app.loaders.front_door import load_model
from app.machine.hardware import detect_cpu
from app.model.inputs import make_feeds
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec
from app.request import ConversionRequest
from converters.options import Option, PIPELINE_OPTIONS, SEED

TORCH_MODULE_FORMATS = ("state-dict", "pickle")
ALL_SOURCES = ("state-dict", "pickle", "torchscript", "torch-export", "onnx")

_REGISTRY: dict[str, type["Converter"]] = {}
# what app.targets.advice expects of a target × precision here (Converter.advice's verdicts)
FASTER, NO_SPEEDUP, SLOWER, UNAVAILABLE = "faster", "no speed-up", "slower", "unavailable"
_MODULES = ("converters.torchscript", "converters.torch_export", "converters.onnx_export", "converters.openvino",
            "converters.tensorrt", "converters.executorch", "converters.litert")


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
    calibration: Any = None             # app.accuracy.data.DataSet: the calibration part of --data
    exclude_nodes: tuple[str, ...] = ()  # fp16/int8: nodes kept in float (the accuracy-budget loop)
    quantizer: Any = None               # int8: the quantizer's settings (onnx_precision.QuantizerConfig, openvino.
                                        # NncfSettings); the budget loop sets them, a build records what it used
    accuracy_control: Any = None        # OpenVINO int8: (samples, metric, max drop) for NNCF's accuracy control
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

    def counted(self, what: str):
        """A ``step(i, n)`` for :func:`app.accuracy.evaluation.run_all` and calibration readers: ``what: sample i
        of n`` as the stage, with its fraction (at most ~40 times a pass; each checks for a cancel)."""
        def step(i: int, n: int) -> None:
            if i == n or i == 1 or i % max(1, -(-n // 40)) == 0:
                self.stage(f"{what}: sample {i} of {n}", i / n if n else None)
        return step

    def example_args(self, dtype_override: str | None = None) -> tuple:
        """Torch tensors for tracing/exporting, at export-safe sizes."""
        import torch

        feeds = make_feeds(self.export_inputs, seed=SEED.of(self.request), int_high=self.model.details.get("int_high", 2))
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
    options: ClassVar[tuple[Option, ...]] = ()  # the options that shape its artifacts (converters.options.Option)
    accuracy_budget: ClassVar[tuple[str, ...]] = ()  # precisions where --accuracy-budget runs its loop (app.accuracy.budget)
    pinned: ClassVar[dict[str, dict[str, Any]]] = {}  # precision → what it always does where others take an option
    kind: ClassVar[str] = ""                  # the artifact kind it writes (app.model.kinds; default: its name):
                                              # Triton's platform, pack's runtime, the GPU it needs come from it
    # the budget loop (app.accuracy.budget): what the same runtime's fp32 runs in (its speed floor), and the
    # name of the quantizer's own accuracy-controlled loop, run as the node stage's peer ("": none)
    fp32_runtime: ClassVar[str] = ""
    own_accuracy_control: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _REGISTRY[cls.name] = cls
            if not cls.kind:
                cls.kind = cls.name

    # -- availability and validity
    @classmethod
    def available(cls) -> tuple[bool, str]:
        """Whether this machine can build the target at all, and why not."""
        return True, ""

    @classmethod
    def advice(cls, precision: str, hardware) -> tuple[str, str] | None:
        """Whether ``precision`` is expected to be faster on ``hardware`` (an :class:`app.machine.hardware.Hardware`)
        than eager PyTorch fp32, and why in one sentence: ``(FASTER|NO_SPEEDUP|SLOWER|UNAVAILABLE, why)``;
        None: :func:`app.targets.advice.advise`'s own rules of thumb speak for the target."""
        return None

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        """Why this machine cannot build ``precision`` (hardware, a missing library); "" when it can.

        bf16 needs AVX-512 BF16 or AMX (:mod:`app.machine.hardware`): elsewhere it is emulated and slower than fp32.
        """
        if precision == "bf16":
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

    @classmethod
    def search_space(cls, precision: str) -> list[dict[str, Any]]:
        """The settings ``optimize`` tries at ``precision``: every combination of the choices of its
        searchable options (a pinned one keeps its one value; one that matters only with another
        option's value is tried only then). Pinned values of options it does not take are named too,
        for the candidate's label; :meth:`options_in` keeps what a request takes."""
        pinned = cls.pinned.get(precision, {})
        combos: list[dict[str, Any]] = [dict(pinned)]
        for o in cls.options:
            if not o.searchable or (o.precisions and precision not in o.precisions) or o.name in pinned:
                continue
            grown: list[dict[str, Any]] = []
            for c in combos:
                if o.only_with and c.get(o.only_with[0]) != o.only_with[1]:
                    grown.append(c)  # it does not matter in this combination
                else:
                    grown += [{**c, o.name: v} for v in o.search_space()]
            combos = grown
        return combos

    @classmethod
    def options_in(cls, settings: dict[str, Any], precision: str | None = None) -> dict[str, Any]:
        """The entries of ``settings`` that are options of this target. With ``precision`` (a form
        shared by every target: the window's), only those that shape that precision and that the
        target does not pin there (TensorRT's int8 is static whatever the form says for ONNX)."""
        pinned = cls.pinned.get(precision, {}) if precision else {}
        names = {o.name for o in cls.options if o.name not in pinned
                 and (precision is None or not o.precisions or precision in o.precisions)}
        return {k: v for k, v in settings.items() if k in names}

    def artifact_name(self, stem: str, precision: str) -> str:
        parts = [stem] + ([self.tag] if self.tag else []) + [precision]
        return ".".join(parts) + self.extension

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        """Every name a conversion of ``stem`` at ``precision`` may hand back, primary first: its artifact
        and the side files it writes beside it (external data, hand-off files). The job's result may
        name these only (:func:`app.pipeline.check_result`); the manifest is the pipeline's."""
        return (self.artifact_name(stem, precision),)

    def model_files(self, stem: str, precision: str) -> tuple[str, ...]:
        """The names among :meth:`declared_files` that make up the model (its size counts these, not the
        hand-off files written beside it): all of them unless a target says otherwise."""
        return self.declared_files(stem, precision)

    # -- the work
    def convert(self, ctx: ConversionContext) -> list[Path]:
        """Write the artifact (and any side files) into ``ctx.work_dir``; return them, primary first."""
        raise NotImplementedError

    def load_artifact(self, path: Path) -> LoadedModel:
        """Re-load the artifact in its own runtime, for verification."""
        return load_model(path)

    def rank_nodes(self, ctx: ConversionContext, samples: list, settings: Any, excluded: list[str]) -> list | None:
        """For ``--accuracy-budget``: the nodes of the build with ``settings`` and ``excluded`` nodes in float,
        ranked by the error they add (objects with ``node``, ``op_type`` and ``added``), for a target
        whose artifact is not an ONNX graph; None: :func:`app.accuracy.diagnose.rank_nodes` on the ONNX
        files (the fp32 reference and the artifact)."""
        return None


def _import_all() -> None:
    for name in _MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name != name:  # a converter's own dependency missing is a bug to surface
                raise


def all_converters() -> list[type[Converter]]:
    _import_all()
    # in the order of _MODULES (the window's grid, `targets`), whatever order imports registered them in
    rank = {name: i for i, name in enumerate(_MODULES)}
    return sorted(_REGISTRY.values(), key=lambda c: rank.get(c.__module__, len(rank)))


def get_converter(name: str) -> type[Converter]:
    _import_all()
    if name not in _REGISTRY:
        raise UnsupportedCombination(f"unknown target {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


def target_names() -> list[str]:
    return [c.name for c in all_converters()]


def converter_options() -> dict[Option, list[str]]:
    """Every option the converters declare, each once, with the targets that take it."""
    seen: dict[str, Option] = {}
    takers: dict[Option, list[str]] = {}
    for c in all_converters():
        for o in c.options:
            if seen.setdefault(o.name, o) is not o:
                raise TypeError(f"{c.__name__} declares another option named {o.name!r}")
            takers.setdefault(o, []).append(c.name)
    return takers


def all_options() -> tuple[Option, ...]:
    """Every option: the converters' (:func:`converter_options`), then those of every target
    (:data:`converters.options.PIPELINE_OPTIONS`)."""
    return (*converter_options(), *PIPELINE_OPTIONS)


def options_of(target: str) -> tuple[Option, ...]:
    """The options that shape ``target``'s artifacts: its converter's, then those of every target."""
    return (*get_converter(target).options, *PIPELINE_OPTIONS)


def check_options(request: ConversionRequest) -> None:
    """Raise :class:`UnsupportedCombination` when ``request`` sets an option its target does not take."""
    takes = options_of(request.target)
    foreign = [name for name in request.options if name not in {o.name for o in takes}]
    if foreign:
        flags = {o.name: o.flags[0] for o in all_options()}
        raise UnsupportedCombination(f"{', '.join(flags.get(n, n) for n in foreign)} does not apply to --to "
                                     f"{request.target}; its options: {', '.join(o.flags[0] for o in takes)}")


def check_request(request: ConversionRequest) -> None:
    """What can be refused before a model is loaded, checked once where a job starts: an option the
    target does not take, and a precision this machine cannot build (bf16 without BF16/AMX, a missing
    library). The precision's name is checked where the request is made (:class:`~app.request.Precision`);
    what the source's format allows, once it is loaded (:meth:`Converter.check`)."""
    converter = get_converter(request.target)
    check_options(request)
    refusal = converter.precision_refusal(request.precision) if request.precision in converter.precisions else ""
    if refusal:
        raise UnsupportedCombination(f"--to {request.target} --precision {request.precision} is not possible on this "
                                     f"machine: {refusal}")
