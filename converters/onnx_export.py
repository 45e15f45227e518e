"""``onnx``: export to ONNX (fp32), then write precision into the graph (fp16, int8).

fp32: ``torch.onnx.export`` with the dynamo exporter (torch's default), falling back to the
TorchScript exporter when dynamo cannot capture the model (``--exporter torchscript`` picks it
directly). Weights are embedded in the ``.onnx`` unless the model is over ~1.5 GB, where ONNX's
2 GB protobuf limit forces an external-data file beside it.
fp16/int8: see :mod:`converters.onnx_precision`; the same graphs feed the TensorRT target.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

from app.errors import ConversionFailed, first_line
from converters import onnx_precision
from converters.base import ConversionContext, Converter
from converters.onnx_files import EXTERNAL_DATA_THRESHOLD, produced, save_onnx
from converters.onnx_precision import CALIBRATION_METHOD, INPUT_LAYER, QUANTIZATION, TARGET_ISA
from converters.options import Option

EXPORTERS = ("dynamo", "torchscript")

OPSET = Option("opset", ("--opset",), int, help="ONNX opset version (default: the exporter's)",
               label="ONNX opset", default_label="exporter default", maximum=25)
EXPORTER = Option("exporter", ("--exporter",), str, "dynamo", EXPORTERS,
                  help="ONNX exporter (dynamo falls back to torchscript when it cannot capture the model)",
                  label="ONNX exporter")
EXPORT_OPTIONS = (OPSET, EXPORTER)      # every target that goes through an ONNX export



def export_onnx_fp32(ctx: ConversionContext, out: Path) -> Path:
    """Export the source torch model to ``out`` (fp32) and return it; records exporter and opset."""
    import torch

    # the exporter logs registry chatter ("torchvision is not installed ...") at WARNING through
    # torch's own handler; the user sees our warnings instead (TORCH_LOGS=onnx shows them again)
    if not os.environ.get("TORCH_LOGS"):
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    source = ctx.model.torch_callable() if ctx.model.format != "torch-export" else ctx.model.module
    args = ctx.example_args()
    input_names = [s.name for s in ctx.inputs]
    output_names = [s.name for s in ctx.model.outputs] or None
    dynamic_axes = {s.name: dict(s.dynamic_axes) for s in ctx.inputs if s.dynamic_axes} or None
    param_bytes = sum(p.numel() * p.element_size() for p in ctx.model.torch_callable().parameters())
    external = param_bytes > EXTERNAL_DATA_THRESHOLD
    opset = OPSET.of(ctx.request)
    exporters = ["dynamo", "torchscript"] if EXPORTER.of(ctx.request) == "dynamo" else ["torchscript"]
    if ctx.model.format == "torchscript":
        exporters = ["torchscript"]  # the dynamo exporter takes Python modules, not ScriptModules
        if EXPORTER.of(ctx.request) == "dynamo":
            ctx.record["exporter_note"] = "TorchScript sources are exported with the TorchScript exporter"
    if ctx.model.format == "torch-export":
        exporters = ["dynamo"]       # an ExportedProgram is what the dynamo exporter consumes
    if ctx.only_exporter:
        exporters = [ctx.only_exporter]
    errors = []
    for exporter in exporters:
        ctx.stage(f"export onnx ({exporter} exporter)")
        kwargs = dict(input_names=input_names, output_names=output_names, opset_version=opset)
        if exporter == "dynamo":
            kwargs.update(dynamo=True, external_data=external, optimize=True, verbose=False)
            if ctx.model.format != "torch-export":
                kwargs["dynamic_axes"] = dynamic_axes
        else:
            kwargs.update(dynamo=False, dynamic_axes=dynamic_axes, do_constant_folding=True)
        log = io.StringIO()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(log):
                warnings.simplefilter("ignore")
                torch.onnx.export(source, args, str(out), **kwargs)
        except Exception as e:
            errors.append(f"{exporter} exporter: {first_line(e)}")
            for p in out.parent.glob(out.name + "*"):
                p.unlink()
            continue
        ctx.record["exporter"] = exporter
        if errors:
            ctx.record["exporters_failed"] = errors
            ctx.warnings.append(f"the dynamo exporter failed ({errors[0]}); used the TorchScript exporter instead")
        import onnx

        proto = onnx.load(str(out), load_external_data=False)
        ctx.record["opset"] = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
        return out
    raise ConversionFailed("ONNX export failed — " + "; ".join(errors))


def stage_onnx_source(ctx: ConversionContext, out: Path) -> Path:
    """Copy a source ``.onnx`` (and its external data, already checked to lie beside it) to ``out``."""
    import shutil

    import onnx

    data = ctx.model.details.get("external_data") or []
    if data:
        # big models: copy the files as they are (streamed, no copy in memory); the graph names its
        # data files relative to itself, so they keep their locations beside the renamed graph. Each
        # is the location the loader checked (app.runtimes.onnxrt.onnx_external_files), relative to
        # the resolved folder it checked it in: the file copied is the file checked
        ctx.stage(f"copy the ONNX source and its external data ({ctx.model.size_bytes / 1e9:.1f} GB)")
        folder = ctx.model.path.parent.resolve()
        shutil.copyfile(ctx.model.path, out)
        for location in data:
            target = out.parent / location
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / location, target)
        return out
    proto = onnx.load(str(ctx.model.path))  # small: self-contained from here on
    save_onnx(proto, out)
    return out


def build_onnx(ctx: ConversionContext, precision: str, out: Path, *, for_tensorrt: bool = False) -> list[Path]:
    """fp32 export (or staged ONNX source), then fp16/int8 in the graph. Returns files, model first."""
    fp32 = out if precision == "fp32" else ctx.work_dir / ("fp32-" + out.name)
    rebuild = ctx.keep_reference and precision != "fp32" and fp32.exists()  # the budget loop keeps its fp32
    if not rebuild and ctx.model.format == "onnx":
        stage_onnx_source(ctx, fp32)
    elif not rebuild:
        export_onnx_fp32(ctx, fp32)
    if precision == "fp16":
        ctx.stage("convert to fp16")
        onnx_precision.to_fp16(fp32, out, ctx)
    elif precision == "int8":
        onnx_precision.to_int8(fp32, out, ctx, for_tensorrt=for_tensorrt)
    if fp32 != out and not ctx.keep_reference:
        for p in produced(fp32):
            p.unlink()
    elif fp32 != out and precision == "fp16":
        ctx.reference_onnx = fp32
    return produced(out)


class OnnxConverter(Converter):
    """ONNX at fp32/fp16/int8; verified with an ONNX Runtime session."""

    name = "onnx"
    label = "ONNX"
    extension = ".onnx"
    options = (*EXPORT_OPTIONS, QUANTIZATION, CALIBRATION_METHOD, TARGET_ISA, INPUT_LAYER)
    accuracy_budget = ("fp16", "int8")
    fp32_runtime = "ONNX Runtime, the fp32 ONNX"

    precision_sources = {"fp32": ("state-dict", "pickle", "torchscript", "torch-export")}
    unsupported_reasons = {"fp32:onnx": "the model is already ONNX fp32; convert it to fp16 or int8, or to tensorrt",
                           "bf16": "ONNX Runtime has no fast bf16 CPU path; use --to openvino --precision bf16 "
                                   "(OpenVINO runs the same graph in bf16)"}

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        name = self.artifact_name(stem, precision)
        return (name, name + ".data")   # the weights beside a graph over protobuf's limit (onnx_files.save_onnx)

    def convert(self, ctx: ConversionContext) -> list[Path]:
        return build_onnx(ctx, ctx.request.precision, ctx.artifact_path)

