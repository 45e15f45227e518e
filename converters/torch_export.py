"""``torch-export``: a ``torch.export`` program saved as ``.pt2`` (fp32, fp16, bf16 on CPUs with BF16).

int8 is refused: core PyTorch has no int8 path for exported programs; quantizing them is the PT2E
flow with a backend-specific quantizer (torchao, XNNPACK, X86 Inductor) whose output is only fast
after lowering to that backend — the ONNX int8 path gives a deployable int8 artifact instead.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

from app.errors import ConversionFailed, first_line
from app.loaders.modules import SIGNATURE_FILE
from converters.base import ConversionContext, Converter
from converters.signature import signature_json
from converters.torchscript import HALF_DTYPES


def dynamic_shapes_for(ctx: ConversionContext):
    """torch.export dynamic_shapes (positional tuple) with one shared Dim per label."""
    import torch

    if not any(s.dynamic_axes for s in ctx.inputs):
        return None
    # Dim.AUTO lets torch.export infer each axis' range and relations (a model that slices a
    # 64-long position table bounds "seq" at 64) instead of failing on a named Dim without bounds;
    # an axis the model actually fixes is caught by verification at a second size.
    return tuple({axis: torch.export.Dim.AUTO for axis in spec.dynamic_axes} or None for spec in ctx.inputs)


def export_program(ctx: ConversionContext, module, args):
    import torch

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.export(module, args, dynamic_shapes=dynamic_shapes_for(ctx), strict=False)
    except Exception as e:
        text = str(e).strip()
        first = first_line(e)
        if "data-dependent" in text or "GuardOnDataDependent" in type(e).__name__ or "Could not guard on data-dependent" in text:
            raise ConversionFailed("torch.export cannot capture data-dependent control flow in forward() "
                                   f"({first}); rewrite the branch with torch.cond, or use --to torchscript-script") from e
        if "Constraints violated" in text or "specialized" in text:
            raise ConversionFailed(f"torch.export: a dimension marked dynamic is fixed by the model ({first}); "
                                   "drop that --dynamic axis") from e
        raise ConversionFailed(f"torch.export failed: {first}") from e


class TorchExport(Converter):
    """``torch.export.export`` + ``torch.export.save``."""

    name = "torch-export"
    label = "torch.export (.pt2)"
    extension = ".pt2"
    precisions = ("fp32", "fp16", "bf16")
    sources = ("state-dict", "pickle", "torch-export")
    precision_sources = {"fp16": ("state-dict", "pickle"), "bf16": ("state-dict", "pickle")}
    unsupported_reasons = {
        "fp16:torch-export": "an exported program's lifted constants stay fp32; export fp16 from the Python "
                             "model (--arch), or use --to onnx --precision fp16",
        "bf16:torch-export": "an exported program's lifted constants stay fp32; export bf16 from the Python "
                             "model (--arch), or use --to openvino --precision bf16",
        "int8": "core PyTorch has no int8 path for exported programs (PT2E quantization needs a "
                "backend-specific quantizer and lowering); use --to onnx --precision int8",
        "source:torchscript": "torch.export cannot read TorchScript; export from the Python model (--arch)",
        "source:onnx": "ONNX cannot be turned back into a PyTorch program",
    }

    def convert(self, ctx: ConversionContext) -> list[Path]:
        import torch

        ctx.stage("prepare model")
        module = copy.deepcopy(ctx.model.torch_callable()).eval()
        half = HALF_DTYPES.get(ctx.request.precision)
        if half:
            module = module.to(getattr(torch, half))
        args = ctx.example_args(half)
        ctx.stage("export")
        ep = export_program(ctx, module, args)
        ctx.stage("save")
        extra = {SIGNATURE_FILE: signature_json(ctx.inputs, ctx.model.outputs, float_dtype=half,
                                                details={"precision": ctx.request.precision})}
        torch.export.save(ep, str(ctx.artifact_path), extra_files=extra)
        return [ctx.artifact_path]
