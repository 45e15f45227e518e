"""``openvino``: OpenVINO IR (``.xml`` graph + ``.bin`` weights) for OpenVINO's CPU plugin.

- **From PyTorch**: ``openvino.convert_model`` on a trace of the module (``torch.jit.trace`` with the
  example inputs, as the TorchScript target does), on a TorchScript archive as it is, or on a
  ``torch.export`` program; where OpenVINO's PyTorch frontend cannot convert the model, the ONNX
  target's fp32 export is converted instead (recorded as ``openvino_route``). **From ONNX**: the file.
- **fp32**; **fp16**: weights compressed to fp16 in the ``.bin`` (half the size; computed in fp32 on
  CPU); **bf16**: fp32 weights, inference precision bf16 — only where the CPU has AVX-512 BF16 or
  AMX (:mod:`app.machine.hardware`); **int8**: NNCF post-training quantization calibrated on the same data
  as ONNX static INT8 (``--calibration DIR``, random data with a loud warning otherwise).
- The inference precision is recorded in the IR's ``rt_info`` (``deploy_studio/precision`` and
  ``runtime_options/INFERENCE_PRECISION_HINT``) and in the manifest, and every place this app
  compiles an IR or ONNX file with OpenVINO passes it as ``INFERENCE_PRECISION_HINT`` explicitly:
  the CPU plugin otherwise runs *fp32* models in bf16 on CPUs that have it (measured: 4 % of a
  pretrained CNN's top-1 changed).
- Dynamic axes stay dynamic (``-1`` in the IR's partial shapes).

OpenVINO and NNCF ship a telemetry client (``openvino_telemetry``) that sends usage data to Google
Analytics and writes a consent file under ``~/intel`` unless the user opted out; this app never
lets it load (:func:`app.runtimes.openvino.openvino_module`).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import io
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from app.errors import BadInput, ConversionFailed, first_line
from app.model.loaded import LoadedModel
from app.runtimes import openvino as ov_runtime
from converters.base import ALL_SOURCES, ConversionContext, Converter
from converters.onnx_export import EXPORT_OPTIONS, build_onnx
from converters.onnx_precision import INPUT_LAYER, QUANTIZATION, TARGET_ISA, _calibration, int8_kernels_for
from converters.options import Option
from app.runtimes.openvino import (
    INFERENCE_PRECISION,
    IR_SUFFIX,
    OV_DTYPES,
    RT_HINT,
    RT_PRECISION,
    load_ir,
    openvino_module,
)

def nncf_module():
    """``import nncf`` with telemetry kept out (see :func:`openvino_module`)."""
    openvino_module()
    import logging

    import nncf

    logging.getLogger("nncf").setLevel(logging.ERROR)
    return nncf


# NNCF's activation range estimators (``AdvancedQuantizationParameters(activations_range_estimator_params=…)``):
# nncf: NNCF's own choice, none given (per-tensor activations: the mean over the samples of each one's min and
# max; per-channel: min-max); minmax: the smallest and largest value over all calibration samples (as ONNX
# Runtime's MinMax), for every activation; mean_minmax: the per-sample mean for every activation (given
# explicitly it also replaces the min-max of per-channel activations: it lost most of a pretrained
# EfficientNet's confident predictions); histogram: the range minimising the quantization error on the
# calibration's histogram. The defaults are the ones that held on photos the calibration never saw
# (docs/accuracy.md, "Calibration that generalizes").
RANGE_ESTIMATORS = ("nncf", "minmax", "mean_minmax", "histogram")
# measured on EfficientNet-Lite0 (docs/accuracy.md): NNCF's own, minmax and histogram within two of 74 confident
# photos of each other, NNCF's own with the best mean cosine (0.961 vs 0.958 and 0.959); mean_minmax 0.73
DEFAULT_RANGE_ESTIMATOR = "nncf"
DEFAULT_FAST_BIAS_CORRECTION = True


RANGE_ESTIMATOR = Option(
    "range_estimator", ("--range-estimator",), str, None, RANGE_ESTIMATORS,
    help="OpenVINO int8: how NNCF reads activation ranges from the calibration samples: nncf (NNCF's own choice, "
         "the default: what held on inputs the calibration never saw), minmax, mean_minmax, histogram",
    precisions=("int8",), default_label="automatic")


INT8_ENGINES = ("qdq", "nncf")
INT8_ENGINE = Option(
    "int8_engine", ("--int8-engine",), str, None, INT8_ENGINES,
    help="OpenVINO int8: qdq (the app's ONNX Runtime QDQ graph with bias correction and the stem in float, read by "
         "OpenVINO; the default for convolutional models) or nncf (NNCF's post-training quantization; the default "
         "for transformers)",
    precisions=("int8",), label="INT8 quantizer", default_label="automatic")


class OpenVINOConverter(Converter):
    """OpenVINO IR at fp32/fp16/bf16/int8; verified by compiling it on OpenVINO's CPU plugin."""

    name = "openvino"
    label = "OpenVINO IR"
    extension = IR_SUFFIX
    tag = "openvino"
    precisions = ("fp32", "fp16", "bf16", "int8")
    sources = ALL_SOURCES
    options = (*EXPORT_OPTIONS, QUANTIZATION, TARGET_ISA, RANGE_ESTIMATOR, INT8_ENGINE, INPUT_LAYER)     # the ONNX route's export; int8 is NNCF's static quantization
    accuracy_budget = ("int8",)   # the quantizer search, the node stage (ignored_scope), NNCF's accuracy control
    pinned = {"int8": {"quantization": "static"}}
    fp32_runtime = "OpenVINO CPU, the fp32 IR (INFERENCE_PRECISION_HINT f32)"
    own_accuracy_control = "NNCF quantize"    # NNCF's quantize_with_accuracy_control

    def __init__(self):
        # for the budget's node stage: the float model NNCF quantized, and each int8 build's model
        self.float_model = None
        self._float_of = None           # the conversion (context) it belongs to
        self.int8_models: dict = {}

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, detail = ov_runtime.available()
        return (True, "") if ok else (False, detail)

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        if precision == "int8" and importlib.util.find_spec("nncf") is None:
            return "OpenVINO int8 needs NNCF (pip install nncf)"
        return super().precision_refusal(precision)

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        xml = Path(self.artifact_name(stem, precision))
        return (xml.name, xml.with_suffix(".bin").name)

    def convert(self, ctx: ConversionContext) -> list[Path]:
        ov = openvino_module()
        precision = ctx.request.precision
        if precision == "int8" and QUANTIZATION.of(ctx.request) == "dynamic":
            raise BadInput("OpenVINO int8 is NNCF's static post-training quantization; drop --quantization dynamic "
                           "(give --calibration DIR with real samples)")
        if precision == "int8" and ctx.keep_reference and self.float_model is not None and self._float_of is ctx:
            # a rebuild in the budget loop: the same float model, so that its operation names (auto-numbered
            # on each conversion: ``Multiply_3164``) are the ones the node stage ranked and names
            model = self.float_model.clone()
        else:
            model = self._convert_model(ctx, ov)
            self._name_ports(ctx, model)
        if precision == "int8":
            if ctx.keep_reference and self._float_of is not ctx:
                self.float_model, self._float_of = model.clone(), ctx
            model = self._qdq_int8(ctx, ov) if int8_engine(ctx, model) == "qdq" else quantize_int8(ctx, model)
            if ctx.keep_reference:      # the budget loop: ranked by rank_nodes (the last few builds)
                self.int8_models = dict(list(self.int8_models.items())[-3:])
                self.int8_models[(ctx.quantizer, tuple(ctx.exclude_nodes))] = model
        hint = INFERENCE_PRECISION[precision]
        model.set_rt_info(precision, RT_PRECISION)
        model.set_rt_info(hint, RT_HINT)
        ctx.record.update(openvino=ov.get_version(), inference_precision=hint,
                          weights="float16 (compressed)" if precision == "fp16" else (
                              f"int8 ({ctx.record.get('openvino_int8_engine', 'NNCF')})" if precision == "int8"
                              else "float32"))
        ctx.stage("save IR")
        xml = ctx.artifact_path
        try:
            ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
        except Exception as e:  # noqa: BLE001
            raise ConversionFailed(f"OpenVINO could not save the IR: {first_line(e)}") from e
        return [xml, xml.with_suffix(".bin")]

    def load_artifact(self, path: Path) -> LoadedModel:
        return load_ir(Path(path))

    # -- the accuracy budget's node stage: names NNCF's ignored_scope takes
    def node_graph(self, ctx: ConversionContext) -> list | None:
        """The operations of the float model NNCF quantizes, with module paths from the PyTorch frontend's
        names (``__module._blocks.6._project_conv/aten::_convolution/Convolution``)."""
        return None if self.float_model is None else ov_graph_nodes(self.float_model)

    def rank_nodes(self, ctx: ConversionContext, samples: list, settings, excluded: list[str]) -> list | None:
        """The float model's operations ranked by the error they add in the int8 build with ``settings``
        and ``excluded`` operations in float: both models run with every ranked operation's output exposed,
        matched by operation name (NNCF keeps them and inserts FakeQuantize operations beside them)."""
        quantized = self.int8_models.get((settings, tuple(excluded)))
        if quantized is None or self.float_model is None:
            raise ConversionFailed("the OpenVINO int8 build to rank is gone (rank_nodes after a rebuild)")
        return rank_ov_nodes(self.float_model, quantized, samples)

    def _qdq_int8(self, ctx: ConversionContext, ov):
        """int8 as ONNX Runtime's static QDQ graph (:func:`converters.onnx_precision.to_int8`: per-channel int8
        weights, bias correction, the stem in float), which OpenVINO's ONNX frontend reads as FakeQuantize
        operations and its CPU plugin runs with int8 kernels. Measured on EfficientNet-Lite0 (photos the
        calibration never saw, AMD EPYC VNNI): confident agreement 1.000, cosine 0.9977, 1.5–1.9× the fp32 IR;
        NNCF's quantization of the same model 1.000 / 0.977 at best (full bias correction, stem ignored)."""
        ctx.stage("export ONNX for the int8 QDQ graph")
        qdq = ctx.work_dir / "openvino-int8-qdq.onnx"
        settings, keep = ctx.quantizer, ctx.keep_reference
        ctx.quantizer, ctx.keep_reference = None, False
        files = []
        try:
            files = build_onnx(ctx, "int8", qdq)      # the fp32 export (or staged ONNX source), then to_int8
            onnx_config = ctx.quantizer
            model = _convert(ov, str(qdq), what="the int8 QDQ graph")
        finally:
            ctx.quantizer, ctx.keep_reference = settings, keep
            for f in files:
                f.unlink(missing_ok=True)
        self._name_ports(ctx, model)
        ctx.quantizer = (settings or NncfSettings()).with_(engine="qdq")
        ctx.record.update(openvino_int8_engine="ONNX Runtime's static QDQ graph, read by OpenVINO",
                          onnx_quantizer=onnx_config.to_json() if onnx_config is not None else None,
                          quantizer=ctx.quantizer.to_json())
        return model

    # -- the source → openvino.Model
    def _convert_model(self, ctx: ConversionContext, ov):
        fmt = ctx.model.format
        ctx.stage("convert to OpenVINO")
        if fmt == "onnx":
            ctx.record["openvino_route"] = "onnx file"
            return _convert(ov, str(ctx.model.path), what=f"{ctx.model.path.name}")
        try:
            model = self._from_torch(ctx, ov)
            return model
        except (ConversionFailed, BadInput) as e:
            first_error = str(e)
        # OpenVINO's PyTorch frontend failed: go through the ONNX exporters (dynamo, then TorchScript)
        ctx.stage("export ONNX for OpenVINO")

        try:
            files = build_onnx(ctx, "fp32", ctx.work_dir / "openvino-source.onnx")
        except Exception as e:  # noqa: BLE001
            raise ConversionFailed(f"OpenVINO cannot convert this model: {first_error}; the ONNX route failed "
                                   f"too ({first_line(e)})") from e
        ctx.warnings.append(f"OpenVINO's PyTorch frontend failed ({first_error[:200]}); converted the ONNX export")
        ctx.record["openvino_route"] = "onnx export"
        try:
            return _convert(ov, str(files[0]), what="the ONNX export")
        finally:
            for f in files:
                f.unlink(missing_ok=True)

    def _from_torch(self, ctx: ConversionContext, ov):
        import torch

        fmt = ctx.model.format
        args = ctx.example_args()
        # positional (shape, type): a TorchScript archive's graph names its inputs "x.1", not "x"; the
        # signature's names are set afterwards (_name_ports)
        shapes = [(ov.PartialShape([d if isinstance(d, int) else -1 for d in s.shape] if s.shape
                                           else list(s.example_shape())), getattr(ov.Type, _ov_type(s.dtype)))
                  for s in ctx.inputs]
        if fmt == "torch-export":
            ctx.record["openvino_route"] = "torch.export program"
            return _convert(ov, ctx.model.module, what="the torch.export program", example_input=args, input=shapes)
        module = ctx.model.torch_callable().eval()
        if fmt == "torchscript":
            ctx.record["openvino_route"] = "TorchScript archive"
            return _convert(ov, module, what="the TorchScript archive", example_input=args, input=shapes)
        ctx.stage("trace for OpenVINO")
        with warnings.catch_warnings(record=True) as caught, torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("always")
            try:
                traced = torch.jit.trace(module, args, check_trace=False, strict=False)
            except Exception as e:  # noqa: BLE001
                raise ConversionFailed(f"torch.jit.trace failed ({first_line(e)})") from e
        tracer = [str(w.message).splitlines()[0] for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        if tracer:
            ctx.record["tracer_warnings"] = tracer[:10]
            ctx.warnings.append("the tracer warned that results may not generalise (data-dependent Python "
                                f"control flow or values): {tracer[0][:160]}")
        ctx.record["openvino_route"] = "PyTorch trace"
        ctx.stage("convert to OpenVINO")
        return _convert(ov, traced, what="the traced model", example_input=args, input=shapes)

    @staticmethod
    def _name_ports(ctx: ConversionContext, model) -> None:
        """Inputs get the signature's names, outputs the source's output names (an ONNX file's stay as
        they are): clients and Triton address tensors by name."""
        if len(model.inputs) == len(ctx.inputs):
            for port, spec in zip(model.inputs, ctx.inputs):
                port.get_tensor().set_names({spec.name})
        names = [o.name for o in ctx.model.outputs]
        rename = ctx.model.format != "onnx"  # an ONNX file's output names are kept as they are
        for i, port in enumerate(model.outputs):
            tensor = port.get_tensor()
            if rename or not tensor.get_names():
                tensor.set_names({names[i] if i < len(names) and len(names) == len(model.outputs) else
                                  ("output" if len(model.outputs) == 1 else f"output_{i}")})


def _ov_type(dtype: str) -> str:
    return {v: k for k, v in OV_DTYPES.items()}.get(dtype, "f32")


def _convert(ov, source, *, what: str, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ov.convert_model(source, **kwargs)
    except Exception as e:  # noqa: BLE001 - OpenVINO raises OpConversionFailure, RuntimeError, ...
        text = str(e).strip()
        unsupported = [line.strip() for line in text.splitlines() if "No conversion rule" in line
                       or "not supported" in line.lower()]
        detail = unsupported[0] if unsupported else first_line(e)
        raise ConversionFailed(f"OpenVINO cannot convert {what}: {detail[:300]}") from e


# ---------------------------------------------------------------------------- int8 (NNCF)
def _looks_like_transformer(model) -> bool:
    """Attention in the graph: NNCF's transformer preset then keeps the accuracy-critical parts
    (softmax inputs, masks, LayerNorm) in float. PyTorch's SDPA converts to one
    ScaledDotProductAttention op, hand-written attention to MatMul + Softmax."""
    ops = {op.get_type_name() for op in model.get_ops()}
    return "ScaledDotProductAttention" in ops or ("Softmax" in ops and "MatMul" in ops)


@dataclass(frozen=True)
class NncfSettings:
    """The whole-model choices of NNCF's post-training quantization that the accuracy-budget loop
    searches (:func:`app.accuracy.budget.meet_budget`), as :class:`converters.onnx_precision.QuantizerConfig` is
    ONNX Runtime's. ``None``: chosen per model and CPU (:func:`quantize_int8`): the preset and the range
    estimator by the model's kind, the overflow fix by the CPU."""

    preset: str | None = None            # performance: symmetric activations; mixed: asymmetric (transformers')
    overflow_fix: str | None = None      # enable | first_layer_only | disable (7-bit weights: no u8×s8 saturation)
    fast_bias_correction: bool = DEFAULT_FAST_BIAS_CORRECTION   # False: NNCF's full bias correction (slower)
    range_estimator: str | None = None   # activation ranges, one of RANGE_ESTIMATORS (None: see quantize_int8)
    engine: str | None = None            # qdq: ONNX Runtime's static QDQ graph, read by OpenVINO | nncf (None: by model)

    def with_(self, **change) -> "NncfSettings":
        return replace(self, **change)

    def to_json(self) -> dict:
        return asdict(self)

    def choices(self, fixed_weights: bool = False) -> list[tuple[str, tuple]]:
        """The settings worth trying from here, one field at a time (``fixed_weights``: the CPU is
        another's, whose overflow fix this machine's figures cannot choose)."""
        if self.engine == "qdq":    # NNCF's own settings do not apply to the QDQ graph: NNCF is the one choice
            return [("engine", ("nncf",))]
        fix = () if fixed_weights else tuple(f for f in ("enable", "disable") if f != self.overflow_fix)
        return [("preset", tuple(p for p in ("performance", "mixed") if p != self.preset)), ("overflow_fix", fix),
                ("fast_bias_correction", (not self.fast_bias_correction,)),
                ("range_estimator", tuple(r for r in RANGE_ESTIMATORS if r != self.range_estimator))]


def int8_engine(ctx: ConversionContext, model) -> str:
    """``qdq`` (the app's ONNX Runtime QDQ graph, converted) for convolutional models; ``nncf`` for transformers
    (NNCF's transformer preset), for NNCF's accuracy control, for the budget's node stage (``ignored_scope``
    names NNCF's operations) and where the search chose it. Recorded with the reason."""
    settings = ctx.quantizer if isinstance(ctx.quantizer, NncfSettings) else None
    chosen = settings.engine if settings is not None else None
    why = "the accuracy budget's choice" if chosen else "convolutional model"
    if chosen is None and INT8_ENGINE.of(ctx.request):
        chosen, why = INT8_ENGINE.of(ctx.request), "--int8-engine"
    if ctx.accuracy_control is not None:
        chosen, why = "nncf", "NNCF's accuracy control"
    elif ctx.exclude_nodes:
        chosen, why = "nncf", "nodes kept in float are NNCF's ignored_scope"
    elif chosen is None and _looks_like_transformer(model):
        chosen, why = "nncf", "attention in the graph: NNCF's transformer preset"
    elif chosen is None and ctx.calibration is None:
        chosen, why = "nncf", "no --data: the QDQ graph's bias correction needs real samples"
    elif chosen is None and not any(op.get_type_name() in ("Convolution", "GroupConvolution") for op in model.get_ops()):
        chosen, why = "nncf", "no convolution: ONNX Runtime's static QDQ is for convolutional models"
    chosen = chosen or "qdq"
    ctx.record["openvino_int8_engine_why"] = why
    return chosen


def _nncf_kwargs(nncf, settings: NncfSettings) -> dict:
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    advanced = {}
    if settings.range_estimator and settings.range_estimator != "nncf":
        if settings.range_estimator not in RANGE_ESTIMATORS:
            raise BadInput(f"NNCF range estimator {settings.range_estimator!r}: choose {', '.join(RANGE_ESTIMATORS)}")
        advanced["activations_range_estimator_params"] = getattr(RangeEstimatorParametersSet,
                                                                 settings.range_estimator.upper())
    if settings.overflow_fix:
        advanced["overflow_fix"] = OverflowFix(settings.overflow_fix)
    return {"preset": nncf.QuantizationPreset(settings.preset), "fast_bias_correction": settings.fast_bias_correction,
            "advanced": AdvancedQuantizationParameters(**advanced)}


def quantize_int8(ctx: ConversionContext, model):
    """NNCF post-training quantization with the ONNX static INT8 calibration data; with
    ``ctx.accuracy_control`` (the budget loop's peer), NNCF's ``quantize_with_accuracy_control``."""
    from converters.onnx_precision import _calibration

    nncf = nncf_module()
    samples = _calibration(ctx)
    names = [p.get_any_name() for p in model.inputs]
    missing = [n for n in names if n not in samples[0]]
    if missing:
        raise BadInput(f"the calibration samples have no input(s) {', '.join(missing)}; they need one array per "
                       f"input: {names}")
    transformer = _looks_like_transformer(model)
    ctx.stage(f"calibrate and quantize (NNCF, {len(samples)} samples)")
    kwargs = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
    kernels = int8_kernels_for(ctx)
    settings = ctx.quantizer or NncfSettings(range_estimator=RANGE_ESTIMATOR.of(ctx.request))
    if settings.preset is None:   # NNCF's default: mixed for transformers, performance otherwise
        settings = settings.with_(preset="mixed" if transformer else "performance")
    if settings.overflow_fix is None:
        # without VNNI, oneDNN's u8×s8 products saturate 16-bit sums as ONNX Runtime's do: NNCF's overflow
        # fix keeps every layer's weights to 7 bits (by default only the first layer's)
        settings = settings.with_(overflow_fix="enable" if kernels.saturates else "first_layer_only")
    if settings.range_estimator is None:   # what held on photos the calibration never saw (docs/accuracy.md)
        settings = settings.with_(range_estimator=DEFAULT_RANGE_ESTIMATOR)
    settings = settings.with_(engine="nncf")
    ctx.record["openvino_int8_engine"] = "NNCF"
    ctx.quantizer = settings
    ctx.record["nncf_overflow_fix"] = {"enable": "enable (every layer)", "first_layer_only": "NNCF's default (first layer)",
                                       "disable": "disable"}[settings.overflow_fix]
    ctx.record["quantizer"] = settings.to_json()
    options = _nncf_kwargs(nncf, settings)
    kwargs.update(preset=options["preset"], fast_bias_correction=options["fast_bias_correction"])
    read: set[int] = set()   # the calibration samples NNCF read (all of them: subset_size is their count)

    def feeds(sample):
        read.add(id(sample))
        return {n: sample[n] for n in names}

    calibration = nncf.Dataset(samples, feeds)
    float_input = not transformer and INPUT_LAYER.of(ctx.request) == "float"
    stem = [n for n in ov_input_layers(model) if n not in ctx.exclude_nodes] if float_input else []
    if stem:   # the convolution reading the image stays float (converters.onnx_bias says why)
        ctx.record["float_input_layers"] = stem
    if ctx.exclude_nodes:   # the budget loop's node stage: operations NNCF leaves in float
        known = {op.get_friendly_name() for op in model.get_ops()}
        missing = [n for n in ctx.exclude_nodes if n not in known]
        if missing:
            ctx.record.setdefault("float_nodes_unchanged", {}).update(
                dict.fromkeys(missing, "no operation of that name in the OpenVINO model NNCF quantizes"))
        ctx.record["float_nodes"] = list(ctx.exclude_nodes)
        stem += [n for n in ctx.exclude_nodes if n in known]
    if stem:
        kwargs["ignored_scope"] = nncf.IgnoredScope(names=stem, validate=False)
    try:
        # NNCF draws progress bars on the console: keep them off stdout (--json) and stderr (our progress)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if ctx.accuracy_control is not None:
                quantized = _with_accuracy_control(nncf, ctx, model, calibration, names, len(samples), kwargs,
                                                   options["advanced"])
            else:
                quantized = nncf.quantize(model, calibration, subset_size=len(samples),
                                          advanced_parameters=options["advanced"], **kwargs)
    except (BadInput, ConversionFailed):
        raise
    except Exception as e:  # noqa: BLE001
        raise ConversionFailed(f"NNCF int8 quantization failed: {first_line(e)}") from e
    ctx.record.update(quantization="NNCF post-training (static)", calibration_samples=len(samples),
                      nncf_subset_size=len(samples), nncf_samples_read=len(read), nncf_range_estimator=settings.range_estimator,
                      nncf_bias_correction="fast" if settings.fast_bias_correction else "full",
                      nncf=importlib.metadata.version("nncf"),
                      nncf_model_type="transformer" if transformer else "default")
    return quantized


def _with_accuracy_control(nncf, ctx: ConversionContext, model, calibration, names: list[str], subset: int,
                           kwargs: dict, advanced):
    """NNCF's own accuracy-aware loop: quantize, then return the layers it ranks worst to float until the
    metric holds. ``ctx.accuracy_control``: (evaluation samples, ``metric(run, indices)`` of a function
    that runs one sample, the largest drop of that metric NNCF may accept)."""
    import numpy as np

    samples, metric, max_drop = ctx.accuracy_control
    ctx.stage(f"NNCF accuracy control (max drop {max_drop:.6g}, {len(samples)} samples)")

    def validate(compiled, indices) -> tuple[float, None]:
        outputs = compiled.outputs
        return float(metric(lambda feeds: [np.asarray(compiled(feeds)[o]) for o in outputs], list(indices))), None

    validation = nncf.Dataset(list(range(len(samples))), lambda i: {n: samples[i][n] for n in names})
    quantized = nncf.quantize_with_accuracy_control(
        model, calibration, validation, validate, max_drop=max_drop, subset_size=subset,
        advanced_quantization_parameters=advanced, **kwargs)
    ctx.record["quantization_engine"] = f"NNCF quantize_with_accuracy_control (max drop {max_drop:.6g})"
    return quantized


# ---------------------------------------------------------------------------- the budget's node stage
# OpenVINO operation types as the node stage knows them (ONNX's names): what it ranks and groups
OV_OPS = {"Convolution": "Conv", "GroupConvolution": "Conv", "ConvolutionBackpropData": "ConvTranspose",
          "MatMul": "MatMul", "Add": "Add", "Multiply": "Mul", "Subtract": "Sub", "Divide": "Div",
          "AvgPool": "AveragePool", "ReduceMean": "ReduceMean", "Concat": "Concat", "Clamp": "Clip", "Relu": "Relu",
          "MaxPool": "MaxPool"}
LAYER_OPS = ("aten::_convolution", "aten::conv", "aten::linear", "aten::addmm", "aten::matmul")


def ov_input_layers(model) -> list[str]:
    """Convolutions that read a model input (through a Pad at most) with ≤ 4 channels: an image's stem."""
    from converters.onnx_bias import MAX_INPUT_CHANNELS

    found = []
    for op in model.get_ops():
        if op.get_type_name() != "Convolution":
            continue
        source = op.input_value(0).get_node()
        if source.get_type_name() == "Pad":
            source = source.input_value(0).get_node()
        shape = op.input_value(1).get_partial_shape()
        if source.get_type_name() == "Parameter" and shape.rank.is_static and len(shape) >= 2 \
                and shape[1].is_static and shape[1].get_length() <= MAX_INPUT_CHANNELS:
            found.append(op.get_friendly_name())
    return found


def ov_graph_nodes(model) -> list:
    """A :class:`converters.float_islands.GraphNode` for the operations of an OpenVINO model the node stage ranks:
    the module path from the PyTorch frontend's ``__module.<path>/aten::<op>/<Type>`` names where present."""
    from converters.float_islands import GraphNode

    nodes = []
    for op in model.get_ordered_ops():
        kind = OV_OPS.get(op.get_type_name())
        if kind is None:
            continue
        name = op.get_friendly_name()
        module = block = None
        layer = True
        head = name.split("/")[0]
        if head.startswith("__module."):
            module = head.removeprefix("__module.")
            layer = any(a in name for a in LAYER_OPS)
            block = (module.rpartition(".")[0] or module) if layer else module
        elif kind in ("Conv", "ConvTranspose"):
            # a convolution the frontend folded a batch norm into is renamed (Multiply_14840): the Add after it
            # keeps the batch norm's path (__module._blocks.14._bn0/aten::batch_norm/...), which names it
            after = [t.get_node().get_friendly_name() for t in op.output(0).get_target_inputs()]
            if len(after) == 1 and after[0].startswith("__module.") and "aten::batch_norm" in after[0]:
                norm = after[0].split("/")[0].removeprefix("__module.")
                module, block = f"{norm} (its convolution)", norm.rpartition(".")[0] or norm
        nodes.append(GraphNode(name, kind, module, block, layer))
    return nodes


def rank_ov_nodes(float_model, quantized, samples: list) -> list:
    """:func:`app.accuracy.diagnose.rank_nodes` for OpenVINO models (see :meth:`OpenVINOConverter.rank_nodes`)."""
    import numpy as np

    from converters.float_islands import RankedNode

    ov = openvino_module()
    nodes = ov_graph_nodes(float_model)
    both = {op.get_friendly_name() for op in quantized.get_ops()}
    names = [n.name for n in nodes if n.name in both]

    def outputs(model) -> dict[str, list]:
        clone = model.clone()
        ops = {op.get_friendly_name(): op for op in clone.get_ops()}
        for i, n in enumerate(names):      # a name of our own on each output (some are the model's already)
            ops[n].output(0).get_tensor().add_names({f"deploy_studio_rank_{i}"})
        clone.add_outputs([ops[n].output(0) for n in names])
        compiled = ov.Core().compile_model(clone, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        index = {t: k for k, port in enumerate(compiled.outputs) for t in port.get_names()}
        ports = {n: index[f"deploy_studio_rank_{i}"] for i, n in enumerate(names) if f"deploy_studio_rank_{i}" in index}
        got: dict[str, list] = {n: [] for n in ports}
        for feeds in samples:
            result = compiled({p.get_any_name(): feeds[p.get_any_name()] for p in clone.inputs})
            for n, k in ports.items():
                got[n].append(np.asarray(result[compiled.outputs[k]], np.float64))
        return got

    ref, got = outputs(float_model), outputs(quantized)
    error = {}
    for n in [n for n in names if n in ref and n in got]:
        if all(a.shape == b.shape for a, b in zip(ref[n], got[n])):
            num = sum(float(np.sum((a - b) ** 2)) for a, b in zip(ref[n], got[n]))
            den = sum(float(np.sum(a ** 2)) for a in ref[n])
            error[n] = float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))
    ops = {op.get_friendly_name(): op for op in float_model.get_ops()}
    kinds = {n.name: n.op_type for n in nodes}

    def inherited(op) -> float:     # the largest error among the inputs, through plumbing operations
        worst, stack, seen = 0.0, [v.get_node() for v in op.input_values()], set()
        while stack:
            p = stack.pop()
            name = p.get_friendly_name()
            if name in seen:
                continue
            seen.add(name)
            if name in error:
                worst = max(worst, error[name])
            elif p.get_type_name() not in ("Constant", "Parameter"):
                stack.extend(v.get_node() for v in p.input_values())
        return worst

    ranked = {n: RankedNode(n, kinds[n], n, error[n], error[n] - inherited(ops[n])) for n in names if n in error}
    # NNCF quantizes a convolution's (or matmul's) inputs and weights, never a batch norm or an activation after
    # it (the PyTorch frontend folds a batch norm into an Add after the convolution, named after the batch norm):
    # ignored_scope on those changes nothing (EfficientNet-Lite0: five node rounds kept such Adds in "float" and
    # none changed a figure). Their added error goes to the layer that feeds them.
    def follower(name: str) -> bool:        # a batch norm's scale/shift (the frontend names them), or an activation
        return "aten::batch_norm" in name or kinds.get(name) in ("Clip", "Relu")

    for n in [n for n in ranked if follower(n)]:
        node, producer = ranked.pop(n), ops[n]
        for _ in range(4):      # up through the batch norm's Multiply/Add and the activation to the layer
            producer = producer.input_value(0).get_node()
            if not follower(producer.get_friendly_name()):
                break
        p = ranked.get(producer.get_friendly_name())
        if p is not None and p.op_type in ("Conv", "MatMul", "ConvTranspose"):
            ranked[p.node] = p._replace(error=max(p.error, node.error), added=max(p.added, node.added))
    return sorted(ranked.values(), key=lambda r: -r.added)
