"""``litert``: a LiteRT (formerly TensorFlow Lite) model (``.tflite``) for Android and embedded Linux.

The module is converted by ``litert-torch`` (``litert_torch.convert``: ``torch.export``, then its MLIR
lowering to LiteRT's operators) and verified by the LiteRT interpreter with its XNNPACK delegate — the
CPU kernels an Android or embedded-Linux build runs (:mod:`app.runtimes.litert`).

- **fp32**; **fp16**: fp16 weights (``ai-edge-quantizer``'s float casting; the arithmetic stays fp32 on
  CPUs, XNNPACK dequantizes the weights once when it loads the model); **int8**: PT2E post-training
  quantization with ``litert-torch``'s quantizer — symmetric int8 weights (per channel), static int8
  activations calibrated on ``--data`` with the convolution reading the image kept in float
  (:mod:`converters.onnx_bias` says why), or dynamic range (weights int8, activations quantized per
  call). Automatic, as for ONNX and ExecuTorch: static for convolutional models, dynamic for the rest.
- Where the graph runs (XNNPACK or LiteRT's built-in kernels), counted per operator:
  :func:`app.runtimes.litert.delegation`, in the result, the manifest and the hand-off README.
- The hand-off files (:func:`converters.handoff.write_handoff`): a README with the signature, the Kotlin and C++ calls,
  and sample inputs with the outputs this model gave here (``.npz``).
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from app.errors import BadInput, ConversionFailed, StudioError, first_line
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec
from app.runtimes import litert as lt_runtime
from converters.base import FASTER, NO_SPEEDUP, ConversionContext, Converter
from converters.handoff import SAMPLES_SUFFIX, handoff_files, write_handoff
from converters.onnx_precision import QUANTIZATION, _calibration
from converters.torch_export import dynamic_shapes_for



def quiet_import():
    """``litert_torch`` without its progress lines on standard output (they would break ``--json``)."""
    for name in ("torchao", "torch.utils._pytree", "litert_torch", "absl", "jax"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), lt_runtime.quiet_output():
        warnings.simplefilter("ignore")
        import litert_torch

    litert_torch.config.show_progress = False
    return litert_torch


class LiteRTConverter(Converter):
    """A LiteRT flatbuffer by litert-torch; verified by the LiteRT interpreter (XNNPACK)."""

    name = "litert"
    label = "LiteRT / TFLite (XNNPACK)"
    extension = ".tflite"
    fp32_runtime = "LiteRT XNNPACK, the fp32 model"
    precisions = ("fp32", "fp16", "int8")
    sources = ("state-dict", "pickle", "torch-export")
    options = (QUANTIZATION,)
    unsupported_reasons = {
        "source:torchscript": "litert-torch starts from torch.export, which cannot read TorchScript; export from "
                              "the Python model (--arch)",
        "source:onnx": "ONNX cannot be turned back into a PyTorch program; litert-torch needs the PyTorch model",
    }

    @classmethod
    def available(cls) -> tuple[bool, str]:
        ok, why = lt_runtime.available()
        if ok and not _has("litert_torch"):
            return False, f"litert-torch is not installed: {lt_runtime.INSTALL}"
        return ok, why

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        ok, why = cls.available()
        if not ok:  # refused before a job starts: one line saying how to install it (exit 2)
            return why
        return super().precision_refusal(precision)

    @classmethod
    def advice(cls, precision: str, hardware) -> tuple[str, str]:
        """LiteRT runs XNNPACK's kernels, the ones Android and embedded Linux run: its speed here is a hint."""
        if precision == "fp32":
            return FASTER, ("LiteRT with XNNPACK: packed CPU kernels without Python or PyTorch, what Android and "
                            "embedded-Linux apps ship (x86 speed here is a hint; time it on the device)")
        if precision == "fp16":
            return NO_SPEEDUP, ("FP16 weights in LiteRT: half the file; XNNPACK computes in fp32 on CPUs (the GPU "
                                "delegate of a phone computes fp16) — no speed-up here")
        cpu = hardware.cpu
        units = "VNNI dot products" if cpu.vnni or cpu.amx else "AVX2 products" if cpu.avx2 else "generic int8 kernels"
        return FASTER, (f"INT8 in LiteRT's XNNPACK: quantized kernels ({units} here; dot-product instructions on ARM "
                        "phones), a quarter of the fp32 weights")

    def __init__(self):
        self.signature: tuple[list[TensorSpec], list[TensorSpec]] | None = None

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        name = self.artifact_name(stem, precision)
        return (name, *handoff_files(name))

    def model_files(self, stem: str, precision: str) -> tuple[str, ...]:
        return (self.artifact_name(stem, precision),)

    def convert(self, ctx: ConversionContext) -> list[Path]:
        precision = ctx.request.precision
        litert_torch = quiet_import()
        ctx.stage("prepare model")
        module = contiguous(copy.deepcopy(ctx.model.torch_callable()).eval())
        args = ctx.example_args()
        quant_config = self._quantize(ctx, module, args) if precision == "int8" else None
        if quant_config is not None:
            module, quant_config = quant_config
        ctx.stage("convert with litert-torch")
        try:
            with warnings.catch_warnings(), lt_runtime.quiet_output():
                warnings.simplefilter("ignore")
                edge = litert_torch.convert(module, args, quant_config=quant_config,
                                            dynamic_shapes=dynamic_shapes_for(ctx))
                content = edge.model_content()
        except StudioError:
            raise
        except Exception as e:  # noqa: BLE001 - torch.export, the lowering and the MLIR converter raise many types
            raise ConversionFailed(conversion_failure(
                e, sorted({d for s in ctx.inputs for d in s.dynamic_axes.values()}))) from e
        if precision == "fp16":
            content = fp16_weights(ctx, content)
        ctx.artifact_path.write_bytes(content)
        ctx.record.update(litert_torch=importlib.metadata.version("litert-torch"),
                          litert=lt_runtime.available()[1], backend="XNNPACK")
        self.signature = (list(ctx.inputs), list(ctx.model.outputs))
        ctx.stage("delegation")
        report = lt_runtime.delegation(lt_runtime.interpreter(ctx.artifact_path))
        ctx.record["delegation"] = report
        ctx.warnings[:] = [w for w in ctx.warnings if not w.startswith("LiteRT: ")]
        if report["builtin"]:
            ctx.warnings.append(f"LiteRT: {report['summary']}")
        ctx.stage("hand-off files")
        return [ctx.artifact_path, *write_handoff(ctx, self.load_artifact(ctx.artifact_path), handoff_readme)]

    def load_artifact(self, path: Path) -> LoadedModel:
        return lt_runtime.load_tflite(Path(path), signature=self.signature)

    # -- int8: PT2E with litert-torch's quantizer
    def _quantize(self, ctx: ConversionContext, module, args):
        """The module prepared, calibrated and converted by PT2E, and litert-torch's QuantConfig for it."""
        import torch
        from litert_torch.quantize import pt2e_quantizer as pt2eq
        from litert_torch.quantize.quant_config import QuantConfig
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        from converters.executorch import input_layers
        from converters.torch_export import export_program

        mode = QUANTIZATION.of(ctx.request)
        ctx.stage("capture for quantization")
        graph = export_program(ctx, module, args).module()
        if mode is None:
            convolutional = any("conv" in str(n.target) for n in graph.graph.nodes)
            mode = "static" if convolutional else "dynamic"
            ctx.record["quantization_choice"] = f"automatic: {mode} ({'convolutions' if convolutional else 'no convolutions'})"
        if mode not in ("static", "dynamic"):
            raise BadInput(f"--quantization {mode} is not a LiteRT int8 mode; choose static or dynamic")
        dynamic = mode == "dynamic"
        config = pt2eq.get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic)
        stem = [] if dynamic else input_layers(graph)
        if stem:   # the convolution reading the image stays float (converters.onnx_bias says why)
            ctx.record["float_input_layers"] = stem
        quantizer = float_edges_quantizer(stem).set_global(config)
        try:
            prepared = prepare_pt2e(graph, quantizer)
            samples = _calibration(ctx) if not dynamic else None
            if samples is not None:
                ctx.stage(f"calibrate ({len(samples)} samples)")
                with torch.no_grad():
                    for sample in samples:
                        ctx.check_cancel()
                        prepared(*[torch.from_numpy(np.asarray(sample[s.name])) for s in ctx.inputs])
                ctx.record["calibration_samples"] = len(samples)
            else:
                with torch.no_grad():
                    prepared(*args)     # the weights' observers see their tensors
            converted = convert_pt2e(prepared, fold_quantize=False)
        except StudioError:
            raise
        except Exception as e:  # noqa: BLE001
            raise ConversionFailed(f"LiteRT int8 quantization failed: {first_line(e)}") from e
        ctx.record.update(quantization=f"PT2E litert-torch quantizer ({mode})", weights="int8 symmetric per channel",
                          activations="int8 per call (dynamic range)" if dynamic else "int8 (calibrated ranges)")
        return converted, QuantConfig(pt2e_quantizer=quantizer)


def contiguous(module):
    """``module`` with every weight and buffer in the default (row-major) layout. litert-torch 0.10 reads a
    channels-last weight (what the loader leaves for eager PyTorch's speed) as if it were row-major: the
    pretrained EfficientNet-Lite0 came out with cosine -0.1 to its source, verified and refused."""
    for tensors in (module.parameters(), module.buffers()):
        for t in tensors:
            if not t.is_contiguous():
                t.data = t.data.contiguous()
    return module


def float_edges_quantizer(float_nodes: list[str]):
    """litert-torch's PT2E quantizer with the model's edges left in float: ``float_nodes`` (the convolution
    reading the image: :mod:`converters.onnx_bias`) take float inputs and weights, and the graph's outputs
    stay float — its own quantizes the logits to int8 (clipped to the calibration's range, 256 steps), which
    costs a classifier its confident margins; a float output costs one DEQUANTIZE. Its module-name filter
    cannot do the first (the convolution + batch norm + ReLU pattern is matched whole), so the annotations
    are trimmed after it annotated."""
    from litert_torch.quantize import pt2e_quantizer as pt2eq

    keep = set(float_nodes)

    class FloatEdgesQuantizer(pt2eq.PT2EQuantizer):
        def annotate(self, model):
            config = self.global_config
            if config is not None and config.input_activation is not None and not config.input_activation.is_dynamic:
                fuse_clamps(model, config)
                quantized_pads(model, config)
            model = super().annotate(model)
            for node in model.graph.nodes:
                annotation = node.meta.get("quantization_annotation")
                if node.name in keep and annotation is not None:
                    annotation.input_qspec_map = {}
                if node.op == "output":
                    for source in _flat(node.args):
                        made = source.meta.get("quantization_annotation")
                        if made is not None:
                            made.output_qspec = None
            return model

    return FloatEdgesQuantizer()


CLAMPS = ("hardtanh.default", "hardtanh_.default")


def fuse_clamps(model, config) -> None:
    """A convolution followed by a clamp (``nn.ReLU6``) annotated as one pattern, as litert-torch annotates
    convolution + ReLU: one int8 range at the clamp's output, none between the two. On its own the quantizer
    quantizes the convolution's output over its whole pre-clamp range (tens wide where the clamp keeps 0..6),
    and LiteRT cannot fuse the clamp into the convolution; ExecuTorch's quantizer had the same fault
    (:func:`converters.executorch.clamp_fusing_quantizer`)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer_utils as pu
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    for clamp in model.graph.nodes:
        if clamp.op != "call_function" or not str(clamp.target).endswith(CLAMPS):
            continue
        conv = clamp.args[0]
        if not isinstance(conv, torch.fx.Node) or "conv" not in str(conv.target) or len(conv.users) > 1:
            continue
        qspecs = {conv.args[0]: pu.get_input_act_qspec(config), conv.args[1]: pu.get_weight_qspec(config)}
        pattern = [clamp, conv]
        bias = conv.args[2] if len(conv.args) > 2 else None
        if isinstance(bias, torch.fx.Node):
            qspecs[bias] = pu.get_bias_qspec(config)
        if pu._is_annotated(pattern):  # noqa: SLF001 - the quantizer's own bookkeeping
            continue
        conv.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map=qspecs, _annotated=True)
        clamp.meta["quantization_annotation"] = QuantizationAnnotation(
            output_qspec=pu.get_output_act_qspec(config), _annotated=True)
        pu._mark_nodes_as_annotated(pattern)  # noqa: SLF001


PADS = ("constant_pad_nd.default", "pad.default")


def quantized_pads(model, config) -> None:
    """A zero padding between two quantized layers (TensorFlow's "same" padding, ``nn.ZeroPad2d``) pads the int8
    tensor with its input's range, as a max pooling does. Left out, it runs in float between a DEQUANTIZE and a
    QUANTIZE, and LiteRT can neither fold it into the convolution nor keep the layout: EfficientNet-Lite0's int8
    kept 17 PADs and 33 TRANSPOSEs where its fp32 has one of each. A padding of the image stays float (the
    convolution reading it does)."""
    import torch
    from litert_torch.quantize import pt2e_quantizer_utils as pu
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation, SharedQuantizationSpec

    for pad in model.graph.nodes:
        if pad.op != "call_function" or not str(pad.target).endswith(PADS) or pu._is_annotated([pad]):  # noqa: SLF001
            continue
        source = pad.args[0]
        rest = list(pad.args[2:])                    # pad: (mode, value); constant_pad_nd: (value,)
        mode = rest.pop(0) if str(pad.target).startswith("aten.pad") and rest else "constant"
        value = rest[0] if rest else pad.kwargs.get("value", 0.0)
        if not isinstance(source, torch.fx.Node) or source.op == "placeholder" or mode != "constant" \
                or value not in (0, 0.0, None):
            continue
        pad.meta["quantization_annotation"] = QuantizationAnnotation(
            input_qspec_map={source: pu.get_input_act_qspec(config)},
            output_qspec=SharedQuantizationSpec((source, pad)), _annotated=True)


def _flat(args) -> list:
    import torch

    found: list = []
    torch.fx.node.map_arg(args, found.append)
    return found


def fp16_weights(ctx: ConversionContext, content: bytes) -> bytes:
    """The fp32 model with its weights stored as fp16 (``ai-edge-quantizer``'s float casting)."""
    from ai_edge_quantizer import algorithm_manager, qtyping, quantizer

    ctx.stage("fp16 weights")
    try:
        with warnings.catch_warnings(), lt_runtime.quiet_output():
            warnings.simplefilter("ignore")
            q = quantizer.Quantizer(bytearray(content))
            q.add_weight_only_config(".*", qtyping.TFLOperationName.ALL_SUPPORTED, 16,
                                     algorithm_key=algorithm_manager.AlgorithmName.FLOAT_CASTING)
            out = q.quantize().quantized_model
    except Exception as e:  # noqa: BLE001
        raise ConversionFailed(f"LiteRT fp16 weights failed: {first_line(e)}") from e
    ctx.record.update(quantization="fp16 weights (ai-edge-quantizer float casting)",
                      ai_edge_quantizer=importlib.metadata.version("ai-edge-quantizer"))
    return bytes(out)


def conversion_failure(e: Exception, dynamic: list[str]) -> str:
    """One line for a model litert-torch cannot convert: the operator it has no lowering for is named; a
    failure with dynamic axes says to convert at fixed sizes (LiteRT's lowering often cannot keep them)."""
    text = str(e)
    for line in text.splitlines():
        if "Lowering not found:" in line:
            op = line.split("Lowering not found:", 1)[1].strip().removesuffix(".default")
            return (f"LiteRT has no operator for {op} (litert-torch cannot lower it): nothing was written; "
                    "replace the operation in the model, or use --to onnx / --to executorch")
    if dynamic:
        return (f"litert-torch could not convert the model with dynamic axes ({', '.join(dynamic)}): {first_line(e)}; "
                "nothing was written — convert without --dynamic (a .tflite is usually fixed-size)")
    return f"litert-torch could not convert the model: {first_line(e)}; nothing was written"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------------------- hand-off for the device
def handoff_readme(name: str, ctx: ConversionContext, samples: int) -> str:
    version = lt_runtime.available()[1]
    report = ctx.record.get("delegation", {})
    ins, outs = ctx.inputs, ctx.model.outputs

    def row(s: TensorSpec) -> str:
        return f"| {s.name} | {s.dtype} | {'×'.join(str(d) for d in s.shape) if s.shape else '?'} |"

    lines = [
        f"# {name}", "",
        f"A LiteRT (TensorFlow Lite) model ({ctx.request.precision}) made by Deployment Studio from "
        f"`{ctx.model.path.name}` with litert-torch {importlib.metadata.version('litert-torch')}, verified here "
        f"by the LiteRT interpreter {version} with its XNNPACK delegate.", "",
        "## Signature (`serving_default`; tensors in this order)", "",
        "| input | dtype | shape |", "|---|---|---|", *[row(s) for s in ins], "",
        "| output | dtype | shape |", "|---|---|---|", *[row(s) for s in outs], "",
        f"In the file the inputs are named `args_0`, `args_1`… and the outputs `output_0`…, in the order above. "
        f"Delegation: {report.get('summary', 'see the manifest')}.", "",
        "## Check it on the device", "",
        f"`{name}{SAMPLES_SUFFIX}` holds {samples} sample(s): `sampleN/input/NAME`, `sampleN/expected/NAME` "
        "(what this model returned on the build machine) and `sampleN/source/NAME` (the PyTorch model's). A "
        "maximum absolute difference to `expected` within about 1e-4 of the outputs' scale (fp32), or the "
        "verification tolerance in the manifest, means the device computes what was verified here.", "",
        "Python (`pip install ai-edge-litert`):", "",
        "```python",
        "import numpy as np",
        "from ai_edge_litert.interpreter import Interpreter",
        f"runner = Interpreter(model_path='{name}', num_threads=4).get_signature_runner()",
        f"data = np.load('{name}{SAMPLES_SUFFIX}')",
        f"outputs = runner(**{{f'args_{{i}}': data['sample0/input/' + n] for i, n in enumerate({json.dumps([s.name for s in ins])})}})",
        f"for i, n in enumerate({json.dumps([s.name for s in outs])}):",
        "    print(n, float(np.abs(outputs[f'output_{i}'] - data['sample0/expected/' + n]).max()))",
        "```", "",
        "Android (Kotlin, `com.google.ai.edge.litert:litert`; XNNPACK is the CPU default):", "",
        "```kotlin",
        "val options = Interpreter.Options().setNumThreads(4)",
        f"val interpreter = Interpreter(loadModelFile(context, \"{name}\"), options)",
        "val input = ByteBuffer.allocateDirect(4 * INPUT_SIZE).order(ByteOrder.nativeOrder())   // float32, row-major",
        f"val output = Array(1) {{ FloatArray({_last(outs)}) }}",
        "interpreter.run(input, output)",
        "```", "",
        "C++ (the LiteRT / TensorFlow Lite C++ API):", "",
        "```cpp",
        f"auto model = tflite::FlatBufferModel::BuildFromFile(\"{name}\");",
        "tflite::ops::builtin::BuiltinOpResolver resolver;   // applies XNNPACK by default",
        "std::unique_ptr<tflite::Interpreter> interpreter;",
        "tflite::InterpreterBuilder(*model, resolver)(&interpreter);",
        "interpreter->SetNumThreads(4);",
        "interpreter->AllocateTensors();",
        "float* in = interpreter->typed_input_tensor<float>(0);   // fill with sample0/input",
        "interpreter->Invoke();",
        "const float* out = interpreter->typed_output_tensor<float>(0);",
        "```", "",
    ]
    return "\n".join(lines)


def _last(specs: list[TensorSpec]) -> str:
    shape = specs[0].shape if specs and specs[0].shape else ("N",)
    return str(shape[-1])
