"""TorchScript targets: ``torchscript-trace`` and ``torchscript-script``.

fp32: trace/script, then ``torch.jit.freeze`` (folds weights and BatchNorm into constants).
fp16: weights and floating inputs in half precision.
bf16: weights and floating inputs in bfloat16 — only on CPUs with AVX-512 BF16 or AMX (elsewhere it is
emulated and slower). bf16 weights were chosen over CPU autocast: on this repository's 2-core Xeon
(AMX) a frozen bf16 trace ran ResNet-18 in 206 ms and the 6-layer encoder in 152 ms against
autocast's 275/227 ms (fp32 trace: 512/212 ms; one run on a heavily shared machine), both cosine ≥ 0.9999.
int8: dynamic quantization of Linear/LSTM/GRU (weights int8, activations quantized at run time);
convolutions stay float — there is no dynamic int8 convolution in PyTorch.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from app.errors import ConversionFailed
from app.loaders.modules import SIGNATURE_FILE
from converters.base import ConversionContext, Converter
from converters.signature import signature_json

DYNAMIC_QUANT_TYPES = ("Linear", "LSTM", "GRU", "LSTMCell", "GRUCell", "RNNCell")
# 16-bit float precisions: weights and floating inputs in this dtype
HALF_DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def prepare_module(ctx: ConversionContext):
    """A private copy of the source module in eval mode at the requested precision."""
    import torch

    precision = ctx.request.precision
    module = ctx.model.torch_callable().eval()
    if precision != "fp32":  # .half() and quantization work in place: never touch the source model
        module = copy.deepcopy(module)
    if precision in HALF_DTYPES:
        module = module.to(getattr(torch, HALF_DTYPES[precision]))
    elif precision == "int8":
        kinds = {type(m) for m in module.modules()}
        layer_names = {k.__name__ for k in kinds}
        quantizable = {getattr(torch.nn, n) for n in DYNAMIC_QUANT_TYPES if n in layer_names}
        if not quantizable:
            ctx.warnings.append("the model has no Linear/LSTM/GRU layers: TorchScript int8 (dynamic "
                                "quantization) leaves it unchanged; use --to onnx --precision int8 for convolutions")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.ao is deprecated in favour of torchao
                warnings.simplefilter("ignore", UserWarning)
                from torch.ao.quantization import quantize_dynamic

                module = quantize_dynamic(module, quantizable, dtype=torch.qint8)
            ctx.record["quantized_layers"] = sorted(k.__name__ for k in quantizable)
    return module


def _advice(ctx: ConversionContext, default: str) -> str:
    if ctx.request.precision == "int8":
        # e.g. nn.TransformerEncoderLayer's fast path reads .weight.device, which dynamically
        # quantized Linear layers no longer have
        return "dynamic int8 quantization made the model untraceable; use --to onnx --precision int8"
    return default


def save_torchscript(ctx: ConversionContext, scripted) -> Path:
    import torch

    ctx.stage("freeze")
    try:
        frozen = torch.jit.freeze(scripted.eval())
        ctx.record["frozen"] = True
    except Exception as e:  # freezing is an optimisation; a model that cannot be frozen still deploys
        frozen = scripted
        ctx.record["frozen"] = False
        ctx.warnings.append(f"torch.jit.freeze failed ({str(e).splitlines()[0][:200]}); saved unfrozen")
    ctx.stage("save")
    float_dtype = HALF_DTYPES.get(ctx.request.precision)
    extra = {SIGNATURE_FILE: signature_json(ctx.inputs, ctx.model.outputs, float_dtype=float_dtype,
                                            details={"precision": ctx.request.precision})}
    torch.jit.save(frozen, str(ctx.artifact_path), _extra_files=extra)
    return ctx.artifact_path


_COMPILED = "a compiled archive"


class _TorchScript(Converter):
    """What both TorchScript targets share: precisions, sources, the refusals, and the steps around
    turning the module into TorchScript (:meth:`to_torchscript`): prepare it at the precision, then
    freeze and save."""

    extension = ".pt"
    kind = "torchscript"
    sources = ("state-dict", "pickle", "torchscript")
    precisions = ("fp32", "fp16", "bf16", "int8")
    pinned = {"int8": {"quantization": "dynamic"}}   # torch.ao dynamic quantization of Linear/LSTM/GRU
    precision_sources = {"fp16": ("state-dict", "pickle"), "bf16": ("state-dict", "pickle"),
                         "int8": ("state-dict", "pickle")}
    unsupported_reasons = {
        "source:onnx": "ONNX cannot be turned back into TorchScript",
        "fp16": "fp16 needs the Python nn.Module (a frozen archive keeps its weights as fp32 constants); "
                "load the state dict with --arch, or use --to onnx --precision fp16",
        "bf16": "bf16 needs the Python nn.Module (a frozen archive keeps its weights as fp32 constants); "
                "load the state dict with --arch, or use --to openvino --precision bf16",
        "int8": "dynamic int8 quantization needs the Python nn.Module (a state dict with --arch, or a "
                "pickled module), not " + _COMPILED,
    }

    def convert(self, ctx: ConversionContext) -> list[Path]:
        ctx.stage("prepare model")
        module = prepare_module(ctx)
        return [save_torchscript(ctx, self.to_torchscript(ctx, module))]

    def to_torchscript(self, ctx: ConversionContext, module):
        raise NotImplementedError


class TorchScriptTrace(_TorchScript):
    """``torch.jit.trace``: records the operations run on an example input."""

    name = "torchscript-trace"
    label = "TorchScript (trace)"
    tag = "trace"
    unsupported_reasons = {
        **_TorchScript.unsupported_reasons,
        "source:torch-export": "tracing a torch.export program's module records its input guards and fixed "
                               "shapes; trace the Python model (--arch) instead",
    }

    def to_torchscript(self, ctx: ConversionContext, module):
        import torch

        args = ctx.example_args(HALF_DTYPES.get(ctx.request.precision))
        ctx.stage("trace")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                traced = torch.jit.trace(module, args, check_trace=False, strict=False)
            except Exception as e:
                raise ConversionFailed(f"torch.jit.trace failed: {str(e).splitlines()[0][:300]}; "
                                       + _advice(ctx, "try --to torchscript-script or torch-export")) from e
        tracer = [str(w.message).splitlines()[0] for w in caught if issubclass(w.category, torch.jit.TracerWarning)]
        if tracer:
            ctx.record["tracer_warnings"] = tracer[:10]
            ctx.warnings.append("the tracer warned that results may not generalise (data-dependent Python "
                                f"control flow or values): {tracer[0][:160]}")
        return traced


class TorchScriptScript(_TorchScript):
    """``torch.jit.script``: compiles forward() and keeps its control flow."""

    name = "torchscript-script"
    label = "TorchScript (script)"
    tag = "script"
    unsupported_reasons = {
        **_TorchScript.unsupported_reasons,
        "source:torch-export": "a torch.export program's graph module cannot be scripted; use torchscript-trace",
    }

    def to_torchscript(self, ctx: ConversionContext, module):
        import torch

        ctx.stage("script")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return module if isinstance(module, torch.jit.ScriptModule) else torch.jit.script(module)
        except Exception as e:
            first = str(e).strip().splitlines()
            raise ConversionFailed("torch.jit.script cannot compile this model ("
                                   + (first[0][:300] if first else type(e).__name__)
                                   + "); " + _advice(ctx, "TorchScript supports a subset of Python — try --to "
                                                        "torchscript-trace or torch-export")) from e
