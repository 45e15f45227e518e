"""``openvino``: OpenVINO IR (``.xml`` graph + ``.bin`` weights) for OpenVINO's CPU plugin.

- **From PyTorch**: ``openvino.convert_model`` on a trace of the module (``torch.jit.trace`` with the
  example inputs, as the TorchScript target does), on a TorchScript archive as it is, or on a
  ``torch.export`` program; where OpenVINO's PyTorch frontend cannot convert the model, the ONNX
  target's fp32 export is converted instead (recorded as ``openvino_route``). **From ONNX**: the file.
- **fp32**; **fp16**: weights compressed to fp16 in the ``.bin`` (half the size; computed in fp32 on
  CPU); **bf16**: fp32 weights, inference precision bf16 — only where the CPU has AVX-512 BF16 or
  AMX (:mod:`app.hardware`); **int8**: NNCF post-training quantization calibrated on the same data
  as ONNX static INT8 (``--calibration DIR``, random data with a loud warning otherwise).
- The inference precision is recorded in the IR's ``rt_info`` (``deploy_studio/precision`` and
  ``runtime_options/INFERENCE_PRECISION_HINT``) and in the manifest, and every place this app
  compiles an IR or ONNX file with OpenVINO passes it as ``INFERENCE_PRECISION_HINT`` explicitly:
  the CPU plugin otherwise runs *fp32* models in bf16 on CPUs that have it (measured: 4 % of a
  pretrained CNN's top-1 changed).
- Dynamic axes stay dynamic (``-1`` in the IR's partial shapes).

OpenVINO and NNCF ship a telemetry client (``openvino_telemetry``) that sends usage data to Google
Analytics and writes a consent file under ``~/intel`` unless the user opted out; this app never
lets it load (:func:`openvino_module`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import importlib.util
import sys
import warnings
from pathlib import Path

from app.errors import BadInput, ConversionFailed, ModelLoadError, first_line
from app.model import LoadedModel
from app.specs import TensorSpec
from converters.base import ALL_SOURCES, ConversionContext, Converter, torch_module_of

# OpenVINO's name for each artifact precision's inference precision on CPU
INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f32", "int8": "f32", "bf16": "bf16"}
RT_PRECISION = ["deploy_studio", "precision"]
RT_HINT = ["runtime_options", "INFERENCE_PRECISION_HINT"]
IR_SUFFIX = ".xml"

OV_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i64": "int64",
             "i32": "int32", "i8": "int8", "u8": "uint8", "boolean": "bool", "i16": "int16"}


def openvino_module():
    """``import openvino`` with its telemetry client kept out (no network, nothing written to ~/intel)."""
    if sys.modules.get("openvino_telemetry", None) is None:
        # a None entry makes `import openvino_telemetry` raise ImportError: OpenVINO's converter then
        # uses its built-in no-op stub, and NNCF its MagicMock stub
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino

    return openvino


def nncf_module():
    """``import nncf`` with telemetry kept out (see :func:`openvino_module`)."""
    openvino_module()
    import logging

    import nncf

    logging.getLogger("nncf").setLevel(logging.ERROR)
    return nncf


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    # find_spec, not import: the window asks from its own process and must stay light
    if importlib.util.find_spec("openvino") is None:
        return False, "OpenVINO is not installed (pip install openvino)"
    try:
        version = importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return False, "OpenVINO is installed incompletely (no package metadata); reinstall it: pip install openvino"
    return True, version


def compile_config(precision: str, threads: int | None = None) -> dict:
    """The CPU plugin's configuration for an artifact of ``precision``: its inference precision is
    always explicit (never the plugin's bf16 default), latency-oriented, ``threads`` intra-op threads."""
    config: dict = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION.get(precision, "f32"),
                    "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def ir_precision(model) -> str | None:
    """The precision recorded in an ``openvino.Model``'s rt_info by this app, if any."""
    try:
        if model.has_rt_info(RT_PRECISION):
            return str(model.get_rt_info(RT_PRECISION).astype(str))
    except Exception:  # noqa: BLE001 - foreign IRs may carry anything
        pass
    return None


def _spec(port, index: int, kind: str) -> TensorSpec:
    try:
        name = port.get_any_name()
    except RuntimeError:
        name = f"{kind}_{index}"
    ps = port.get_partial_shape()
    dims: tuple = ()
    if ps.rank.is_static:
        dims = tuple(int(d.get_length()) if d.is_static else f"{name}_dim{axis}" for axis, d in enumerate(ps))
    dtype = OV_DTYPES.get(port.get_element_type().get_type_name(), "float32")
    return TensorSpec(name, dtype, dims)


def read_ir(path: Path):
    """``openvino.Model`` of an IR ``.xml`` (with its ``.bin`` beside it); errors become one line."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    bin_path = path.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelLoadError(f"{path.name} is an OpenVINO IR graph but its weights file {bin_path.name} is missing; "
                             "keep the .bin beside the .xml")
    ov = openvino_module()
    try:
        return ov.Core().read_model(str(path), str(bin_path))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"OpenVINO cannot read {path.name} ({first_line(e)}); re-convert the model") from None


def load_ir(path: Path, *, precision: str | None = None, threads: int | None = None) -> LoadedModel:
    """An OpenVINO IR as a :class:`LoadedModel` (format ``openvino``), compiled on CPU at the
    precision recorded with it (fp32 unless it says bf16)."""
    path = Path(path)
    model = read_ir(path)
    precision = precision or ir_precision(model) or _manifest_precision(path) or "fp32"
    inputs = [_spec(p, i, "input") for i, p in enumerate(model.inputs)]
    outputs = [_spec(p, i, "output") for i, p in enumerate(model.outputs)]
    params = sum(_numel(op.get_output_shape(0)) for op in model.get_ops()
                 if op.get_type_name() == "Constant" and op.get_output_partial_shape(0).is_static)
    bin_path = path.with_suffix(".bin")
    loaded = LoadedModel(path, "openvino", inputs, outputs, params, path.stat().st_size + bin_path.stat().st_size,
                         module=model, details={"precision": precision,
                                                "inference_precision": INFERENCE_PRECISION.get(precision, "f32"),
                                                "operators": _op_counts(model)})
    compiled: list = []

    def run(feeds):
        if not compiled:
            compiled.append(compile_model(model, precision, threads, name=path.name))
        result = compiled[0]([feeds[s.name] for s in inputs])
        return [result[i] for i in range(len(outputs))]

    loaded._runner = run
    return loaded


def compile_model(model, precision: str, threads: int | None = None, *, name: str = "the model"):
    """Compile ``model`` (an ``openvino.Model`` or a file path) on CPU with :func:`compile_config`."""
    ov = openvino_module()
    try:
        return ov.Core().compile_model(model if not isinstance(model, Path) else str(model), "CPU",
                                       compile_config(precision, threads))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"OpenVINO cannot compile {name} for CPU: {first_line(e)}") from None


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in model.get_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _manifest_precision(path: Path) -> str | None:
    from app.pipeline import read_manifest

    return (read_manifest(path) or {}).get("precision")


class OpenVINOConverter(Converter):
    """OpenVINO IR at fp32/fp16/bf16/int8; verified by compiling it on OpenVINO's CPU plugin."""

    name = "openvino"
    label = "OpenVINO IR"
    extension = IR_SUFFIX
    tag = "openvino"
    precisions = ("fp32", "fp16", "bf16", "int8")
    sources = ALL_SOURCES

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, detail = _probe()
        return (True, "") if ok else (False, detail)

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        if precision == "int8" and importlib.util.find_spec("nncf") is None:
            return "OpenVINO int8 needs NNCF (pip install nncf)"
        return super().precision_refusal(precision)

    def convert(self, ctx: ConversionContext) -> list[Path]:
        ov = openvino_module()
        precision = ctx.request.precision
        if precision not in INFERENCE_PRECISION:
            raise BadInput(f"--precision {precision}: OpenVINO takes {', '.join(self.precisions)}")
        if precision == "int8" and ctx.request.quantization == "dynamic":
            raise BadInput("OpenVINO int8 is NNCF's static post-training quantization; drop --quantization dynamic "
                           "(give --calibration DIR with real samples)")
        model = self._convert_model(ctx, ov)
        self._name_ports(ctx, model)
        if precision == "int8":
            model = quantize_int8(ctx, model)
        hint = INFERENCE_PRECISION[precision]
        model.set_rt_info(precision, RT_PRECISION)
        model.set_rt_info(hint, RT_HINT)
        ctx.record.update(openvino=ov.get_version(), inference_precision=hint,
                          weights="float16 (compressed)" if precision == "fp16" else (
                              "int8 (NNCF)" if precision == "int8" else "float32"))
        ctx.stage("save IR")
        xml = ctx.artifact_path
        try:
            ov.save_model(model, str(xml), compress_to_fp16=precision == "fp16")
        except Exception as e:  # noqa: BLE001
            raise ConversionFailed(f"OpenVINO could not save the IR: {first_line(e)}") from e
        return [xml, xml.with_suffix(".bin")]

    def load_artifact(self, path: Path) -> LoadedModel:
        return load_ir(Path(path))

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
        from converters.onnx_export import build_onnx

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
        module = torch_module_of(ctx.model).eval()
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


def quantize_int8(ctx: ConversionContext, model):
    """NNCF post-training quantization with the ONNX static INT8 calibration data."""
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
    try:
        # NNCF draws progress bars on the console: keep them off stdout (--json) and stderr (our progress)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            quantized = nncf.quantize(model, nncf.Dataset(samples, lambda s: {n: s[n] for n in names}),
                                      subset_size=len(samples), **kwargs)
    except (BadInput, ConversionFailed):
        raise
    except Exception as e:  # noqa: BLE001
        raise ConversionFailed(f"NNCF int8 quantization failed: {first_line(e)}") from e
    ctx.record.update(quantization="NNCF post-training (static)", calibration_samples=len(samples),
                      nncf=importlib.metadata.version("nncf"),
                      nncf_model_type="transformer" if transformer else "default")
    return quantized
