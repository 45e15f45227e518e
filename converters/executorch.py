"""``executorch``: an ExecuTorch program (``.pte``) for phones and boards, lowered to XNNPACK.

PyTorch's on-device runtime. The module is captured with ``torch.export`` (the same input and
dynamic-shape handling as the ``torch-export`` target), turned into the edge dialect, and every
subgraph XNNPACK takes is lowered to it (``to_edge_transform_and_lower`` with the
``XnnpackPartitioner``); what it does not take runs in ExecuTorch's portable kernels. The XNNPACK
kernels that run the program here are the ones Android, iOS and Linux-ARM builds link, so the
verification on this machine speaks for the device (within the float tolerance: x86 and ARM round
differently).

- **fp32**; **fp16**: the module in half precision, run by XNNPACK's f16 kernels (on x86 they need
  F16C; without it the cell is refused); **int8**: PT2E post-training quantization with the XNNPACK
  quantizer — symmetric int8 weights (per channel by default, ``--weight-granularity``), static
  int8 activations calibrated on ``--data`` (random calibration only with a loud warning, as for
  ONNX), or dynamic (activations quantized per call: linear layers only). Automatic, as for ONNX:
  static for convolutional models, dynamic for the rest (transformers).
- The artifact comes with what the app developer needs on the device (:func:`converters.handoff.write_handoff`): a
  README with the signature and the ExecuTorch version, and sample inputs with the outputs this
  program gave here (``.npz``).
- Where a graph ran (XNNPACK or the portable kernels) is counted per operator: the delegation
  report, in the result, the manifest and the report (:func:`delegation_report`).
"""

from __future__ import annotations

import contextlib
import copy
import importlib.metadata
import importlib.util
import io
import json
import logging
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from app.errors import BadInput, ConversionFailed, first_line
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec
from app.runtimes import executorch as et_runtime
from converters.base import FASTER, NO_SPEEDUP, ConversionContext, Converter
from converters.handoff import SAMPLES_SUFFIX, handoff_files, write_handoff
from converters.onnx_precision import INPUT_LAYER, QUANTIZATION, _calibration
from converters.options import Option
from converters.torch_export import export_program

WEIGHT_GRANULARITY = Option(
    "weight_granularity", ("--weight-granularity",), str, "per-channel", ("per-channel", "per-tensor"),
    help="ExecuTorch int8: one weight scale per output channel (default; what keeps trained models accurate) "
         "or one per tensor", searchable=True, precisions=("int8",), label="INT8 weight scales")

# static int8's activation ranges: "minmax" (the largest and smallest value the calibration saw, as ONNX
# Runtime's MinMax), "histogram" (PT2E's default: the range that minimises the quantization error on the
# calibration's histogram, which clips what it saw rarely). The default is the one that held on photos the
# calibration never saw (docs/accuracy.md, "Calibration that generalizes").
ACTIVATION_OBSERVERS = ("histogram", "minmax")
# measured on EfficientNet-Lite0 judged on other photos (docs/accuracy.md): minmax kept 0.554 of the confident
# top-1 (mean cosine 0.813) where PT2E's histogram keeps the most; minmax stays a choice of the settings search
DEFAULT_OBSERVER = "histogram"


ACTIVATION_OBSERVER = Option(
    "activation_observer", ("--activation-observer",), str, DEFAULT_OBSERVER, ACTIVATION_OBSERVERS,
    help="ExecuTorch static int8: how activation ranges are read from the calibration samples: histogram (PT2E's "
         "own, the default: what held on inputs the calibration never saw) or minmax",
    precisions=("int8",))


@dataclass(frozen=True)
class XnnpackSettings:
    """The whole-model choices of the XNNPACK quantizer that the accuracy-budget loop searches
    (:func:`app.accuracy.budget.meet_budget`) before it keeps any operator in float, as
    :class:`converters.onnx_precision.QuantizerConfig` is ONNX Runtime's."""

    mode: str = "static"        # static: calibrated activation ranges; dynamic: per call, linear layers only
    per_channel: bool = True    # one weight scale per output channel
    activation_observer: str = DEFAULT_OBSERVER   # static: minmax | histogram (PT2E's default), see ACTIVATION_OBSERVERS

    def with_(self, **change) -> "XnnpackSettings":
        return replace(self, **change)

    def to_json(self) -> dict:
        return asdict(self)

    def choices(self, fixed_weights: bool = False) -> list[tuple[str, tuple]]:
        """The settings worth trying from here, one field at a time (XNNPACK's int8 kernels are the same on
        every CPU: nothing depends on ``fixed_weights``). The mode is not searched, as ONNX Runtime's is
        not: dynamic int8 leaves a CNN's convolutions in float — the node stage's job, done by name there
        (the digits CNN met cosine=0.99999 "by quantizer" that way, all three convolutions fp32)."""
        choices = [("per_channel", (not self.per_channel,))]
        if self.mode == "static":
            choices.append(("activation_observer", tuple(o for o in ACTIVATION_OBSERVERS if o != self.activation_observer)))
        return choices


def quantization_config(settings: XnnpackSettings):
    """The XNNPACK quantizer's config for ``settings``: ``get_symmetric_quantization_config`` (symmetric int8
    weights per channel or per tensor, int8 activations), its activation observer replaced by ``settings``'
    (PT2E's own default is the histogram observer)."""
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import get_symmetric_quantization_config

    config = get_symmetric_quantization_config(is_per_channel=settings.per_channel,
                                               is_dynamic=settings.mode == "dynamic")
    if settings.mode == "dynamic" or settings.activation_observer == "histogram":
        return config
    from torchao.quantization.pt2e import observer

    if settings.activation_observer not in ACTIVATION_OBSERVERS:
        raise BadInput(f"activation observer {settings.activation_observer!r}: choose {', '.join(ACTIVATION_OBSERVERS)}")
    made = {"minmax": observer.MinMaxObserver}[settings.activation_observer]
    spec = replace(config.input_activation, observer_or_fake_quant_ctr=made.with_args(eps=2 ** -12))
    return replace(config, input_activation=spec, output_activation=spec)


CLAMPS = ("hardtanh.default", "hardtanh_.default")


def clamp_fusing_quantizer():
    """XNNPACK's quantizer, with a convolution followed by a clamp (``nn.ReLU6``, ``F.hardtanh``) annotated as
    one pattern, as it annotates convolution + ReLU: one int8 range at the clamp's output, none between the two.

    XNNPACK's own quantizer treats the clamp as an operator that shares its input's range, so the convolution's
    output is quantized over its whole pre-clamp range (EfficientNet-Lite0's are tens wide where the clamp keeps
    0..6): four to ten times coarser steps than needed. Its lowering fuses a clamp that follows a convolution
    directly into the convolution's output bounds (``FuseActivationPass``), so the fused pattern also runs as
    one XNNPACK operator. Measured (pretrained EfficientNet-Lite0, 64 calibration crops, 128 crops of 8 other
    photos, Intel Xeon with AVX-512 VNNI + AMX): confident agreement with fp32 0.649 → 0.892, mean cosine
    0.851 → 0.986, the same latency."""
    import torch
    from executorch.backends.xnnpack.quantizer import xnnpack_quantizer_utils as xq
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
    from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

    class ClampFusingQuantizer(XNNPACKQuantizer):
        def annotate(self, model):
            config = self.global_config
            if config is not None and not config.input_activation.is_dynamic:
                for clamp in model.graph.nodes:
                    if clamp.op != "call_function" or not str(clamp.target).endswith(CLAMPS):
                        continue
                    conv = clamp.args[0]
                    if not isinstance(conv, torch.fx.Node) or not xq._is_conv_node(conv) or len(conv.users) > 1:
                        continue
                    qspecs = {conv.args[0]: xq.get_input_act_qspec(config), conv.args[1]: xq.get_weight_qspec(config)}
                    pattern = [clamp, conv, conv.args[1]]
                    bias = conv.args[2] if len(conv.args) > 2 else None
                    if isinstance(bias, torch.fx.Node):
                        qspecs[bias] = xq.get_bias_qspec(config)
                        pattern.append(bias)
                    if xq._is_annotated(pattern) or (self.filter_fn and not all(self.filter_fn(n) for n in pattern)):
                        continue
                    conv.meta["quantization_annotation"] = QuantizationAnnotation(input_qspec_map=qspecs, _annotated=True)
                    clamp.meta["quantization_annotation"] = QuantizationAnnotation(
                        output_qspec=xq.get_output_act_qspec(config), _annotated=True)
                    xq._mark_nodes_as_annotated(pattern)
            return super().annotate(model)

    return ClampFusingQuantizer()




def quiet_import():
    """Import ExecuTorch's exporter without the noise its dependencies print (torchao's optional CUDA
    kernels, pytree deprecations): ``(to_edge_transform_and_lower, XnnpackPartitioner)``."""
    for name in ("torchao", "torch.utils._pytree", "executorch"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower
    return to_edge_transform_and_lower, XnnpackPartitioner


class ExecuTorchConverter(Converter):
    """An ExecuTorch program with its XNNPACK delegate; verified by ExecuTorch's own runtime."""

    name = "executorch"
    label = "ExecuTorch (XNNPACK)"
    extension = ".pte"
    tag = "xnnpack"
    fp32_runtime = "ExecuTorch XNNPACK, the fp32 program"
    precisions = ("fp32", "fp16", "int8")
    sources = ("state-dict", "pickle", "torch-export")
    precision_sources = {"fp16": ("state-dict", "pickle")}
    options = (QUANTIZATION, WEIGHT_GRANULARITY, ACTIVATION_OBSERVER, INPUT_LAYER)
    accuracy_budget = ("int8",)   # the quantizer's settings, then the operators that add the most error kept in float
    unsupported_reasons = {
        "fp16:torch-export": "an exported program's lifted constants stay fp32; export fp16 from the Python "
                             "model (--arch)",
        "source:torchscript": "ExecuTorch starts from torch.export, which cannot read TorchScript; export from "
                              "the Python model (--arch)",
        "source:onnx": "ONNX cannot be turned back into a PyTorch program; ExecuTorch needs the PyTorch model",
    }

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return et_runtime.available()

    @classmethod
    def advice(cls, precision: str, hardware) -> tuple[str, str]:
        """ExecuTorch runs XNNPACK's kernels, the ones phones and boards run: its speed here is a hint, the
        device's is what counts."""
        if precision == "fp32":
            return FASTER, ("ExecuTorch with XNNPACK: packed CPU kernels without Python or PyTorch, the ones "
                            "Android/iOS/Linux-ARM builds run (x86 speed here is a hint; time it on the device)")
        if precision == "fp16":
            if hardware.cpu.has("asimdhp", "fphp"):
                return FASTER, "FP16 in XNNPACK on this ARM CPU: native half-precision arithmetic (about 2× fp32)"
            return NO_SPEEDUP, ("FP16 in XNNPACK on x86: computed through F16C conversions — no speed-up here; "
                                "meant for ARMv8.2+ phones, which compute fp16 natively")
        cpu = hardware.cpu
        units = ("VNNI dot products" if cpu.vnni or cpu.amx else "AVX2 16-bit products (no saturation: XNNPACK "
                 "widens before it multiplies)" if cpu.avx2 else "generic int8 kernels")
        return FASTER, (f"INT8 in XNNPACK: quantized kernels ({units} here; dot-product instructions on "
                        "ARM phones), a quarter of the fp32 weights")

    @classmethod
    def precision_refusal(cls, precision: str) -> str:
        ok, why = et_runtime.available()
        if not ok:  # refused before a job starts: one line saying how to install it (exit 2)
            return why
        if precision == "fp16":
            from app.machine.hardware import detect_cpu

            import platform

            cpu = detect_cpu()
            if platform.machine() in ("x86_64", "AMD64") and cpu.flags and not cpu.has("f16c"):
                return "XNNPACK's fp16 kernels need F16C on x86, which this CPU lacks"
        return super().precision_refusal(precision)

    def __init__(self):
        self.graphs: dict[tuple, tuple] = {}   # (settings, float operators) → (captured graph, quantized graph)
        self.signature: tuple[list[TensorSpec], list[TensorSpec]] | None = None  # what the .pte does not hold

    def declared_files(self, stem: str, precision: str) -> tuple[str, ...]:
        pte = self.artifact_name(stem, precision)
        return (pte, *handoff_files(pte))

    def model_files(self, stem: str, precision: str) -> tuple[str, ...]:
        return (self.artifact_name(stem, precision),)   # the program; the samples and README are hand-off files

    def convert(self, ctx: ConversionContext) -> list[Path]:
        import torch

        precision = ctx.request.precision
        lower, partitioner = quiet_import()
        ctx.stage("prepare model")
        half = precision == "fp16"
        if ctx.model.format == "torch-export" and precision == "fp32":
            module = None
            args = ctx.example_args()
        else:
            module = copy.deepcopy(ctx.model.torch_callable()).eval()
            if half:
                module = module.to(torch.float16)
            args = ctx.example_args("float16" if half else None)
        if precision == "int8":
            module = self._quantize(ctx, module, args)
        ctx.stage("export")
        program = ctx.model.module if module is None else export_program(ctx, module, args)
        ctx.stage("lower to XNNPACK")
        try:
            with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter("ignore")
                edge = lower(program, partitioner=[partitioner()])
                report = delegation_report(edge.exported_program().graph_module)
                ctx.stage("serialize")
                buffer = edge.to_executorch().buffer
        except Exception as e:  # noqa: BLE001 - the edge verifier, the partitioner and memory planning raise many types
            raise ConversionFailed(lowering_failure(e)) from e
        ctx.record.update(executorch=importlib.metadata.version("executorch"), backend="XNNPACK",
                          delegation=report)
        ctx.warnings[:] = [w for w in ctx.warnings if not w.startswith("ExecuTorch: ")]  # a rebuild's replaces it
        if report["portable"]:
            ctx.warnings.append(f"ExecuTorch: {report['summary']}")
        ctx.artifact_path.write_bytes(buffer)
        # the names and dynamic axes the program does not hold, for verification (then the manifest's)
        self.signature = (list(ctx.inputs), list(ctx.model.outputs))
        ctx.stage("hand-off files")
        return [ctx.artifact_path, *write_handoff(ctx, self.load_artifact(ctx.artifact_path), handoff_readme)]

    def load_artifact(self, path: Path) -> LoadedModel:
        return et_runtime.load_pte(Path(path), signature=self.signature)

    # -- int8: PT2E with the XNNPACK quantizer
    def _quantize(self, ctx: ConversionContext, module, args):
        import torch

        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        ctx.stage("capture for quantization")
        graph = export_program(ctx, module, args).module()
        settings = ctx.quantizer if isinstance(ctx.quantizer, XnnpackSettings) else self._settings(ctx, graph)
        ctx.quantizer = settings            # what this build used (the budget loop's rounds record it)
        per_channel, dynamic = settings.per_channel, settings.mode == "dynamic"
        config = quantization_config(settings)
        if dynamic:
            # dynamic int8 is for the linear layers: annotated globally it also takes the attention's
            # matmuls (all-MiniLM-L6-v2: cosine 0.26 to fp32; linear layers only: 0.99), and its
            # scalars-to-tensors pass turns the mask's index arithmetic into float tensors that the
            # second export refuses ("tensors used as indices must be long …"), which linears never need
            class LinearsOnly(XNNPACKQuantizer):
                def transform_for_annotation(self, model):
                    return model

            quantizer = LinearsOnly().set_module_type(torch.nn.Linear, config)
        else:
            quantizer = clamp_fusing_quantizer().set_global(config)
        graph_copy = copy.deepcopy(graph)
        excluded = set(ctx.exclude_nodes)
        if not dynamic and INPUT_LAYER.of(ctx.request) == "float":
            stem = [n for n in input_layers(graph) if n not in excluded]
            if stem:   # the convolution reading the image stays float (converters.onnx_bias says why)
                ctx.record["float_input_layers"] = stem
                excluded.update(stem)
        if excluded:
            quantizer.set_filter_function(lambda node: node.name not in excluded)
        try:
            prepared = prepare_pt2e(graph, quantizer)
            if not dynamic:
                samples = _calibration(ctx)
                missing = [s.name for s in ctx.inputs if s.name not in samples[0]]
                if missing:
                    raise BadInput(f"the calibration samples have no input(s) {', '.join(missing)}; they need one "
                                   f"array per input: {[s.name for s in ctx.inputs]}")
                ctx.stage(f"calibrate ({len(samples)} samples)")
                with torch.no_grad():
                    for i, sample in enumerate(samples):
                        ctx.check_cancel()
                        prepared(*[torch.from_numpy(np.asarray(sample[s.name])) for s in ctx.inputs])
                ctx.record["calibration_samples"] = len(samples)
            else:
                # no activation ranges to read, but the weights' observers only see their tensors when the
                # graph runs: without one call every weight gets the placeholder scale (one value) and
                # lowering refuses it ("Invalid size of per channel quantization scales")
                with torch.no_grad():
                    prepared(*args)
            converted = convert_pt2e(prepared)
            # for rank_nodes: the captured and the quantized graph of each build (the budget ranks its best)
            self.graphs[(settings, tuple(ctx.exclude_nodes))] = (graph_copy, converted)
        except (BadInput, ConversionFailed):
            raise
        except Exception as e:  # noqa: BLE001
            raise ConversionFailed(f"XNNPACK int8 quantization failed: {first_line(e)}") from e
        ctx.record.update(quantization=f"PT2E XNNPACK quantizer ({'dynamic' if dynamic else 'static'})",
                          weights=f"int8 symmetric {'per channel' if per_channel else 'per tensor'}",
                          activations="int8 per call (dynamic)" if dynamic else
                          f"int8 (calibrated ranges, {settings.activation_observer} observer)",
                          activation_observer=None if dynamic else settings.activation_observer,
                          quantizer=settings.to_json(),
                          torchao=importlib.metadata.version("torchao"))
        return converted


    @staticmethod
    def _settings(ctx: ConversionContext, graph) -> XnnpackSettings:
        """The request's settings; automatic int8, as for ONNX: static for convolutional models, else
        dynamic (linear layers)."""
        mode = QUANTIZATION.of(ctx.request)
        if mode is None:
            convolutional = any("convolution" in str(n.target) or "conv2d" in str(n.target) for n in graph.graph.nodes)
            mode = "static" if convolutional else "dynamic"
            ctx.record["quantization_choice"] = (f"automatic: {mode} "
                                                 f"({'convolutions' if convolutional else 'no convolutions'})")
        return XnnpackSettings(mode, WEIGHT_GRANULARITY.of(ctx.request) != "per-tensor",
                               ACTIVATION_OBSERVER.of(ctx.request))

    # -- the accuracy budget: which nodes add the most error
    def node_graph(self, ctx: ConversionContext) -> list | None:
        """The captured graph's operator nodes with their module paths (``nn_module_stack``), for the budget
        loop's names and groups."""
        from converters.float_islands import GraphNode

        if not self.graphs:
            return None
        captured = next(iter(self.graphs.values()))[0]
        kinds = {"conv": "Conv", "linear": "Gemm", "addmm": "Gemm", "mm": "MatMul", "bmm": "MatMul",
                 "matmul": "MatMul", "add": "Add", "mul": "Mul"}
        nodes = []
        for node in captured.graph.nodes:
            if not _quantizable(node):
                continue
            op = str(node.target).split("::")[-1].split(".")[0]
            kind = next((v for k, v in kinds.items() if op.startswith(k)), op)
            stack = list((node.meta.get("nn_module_stack") or {}).values())
            module = str(stack[-1][0]) if stack and stack[-1][0] else None
            layer = kind in ("Conv", "Gemm", "MatMul") and module is not None
            block = (module.rpartition(".")[0] or module) if layer else module
            nodes.append(GraphNode(node.name, kind, module, block, layer))
        return nodes

    def rank_nodes(self, ctx: ConversionContext, samples: list, settings: XnnpackSettings, excluded: list[str]) -> list:
        """The quantized operators of the int8 build with ``settings`` and ``excluded`` operators in float
        ranked by the error they add (their output's
        relative L2 error minus the largest among their inputs', as :mod:`app.accuracy.diagnose` does for ONNX),
        from the float and the quantized PT2E graphs run side by side on ``samples``; the names are
        the exported graph's node names, which ``--accuracy-budget`` keeps out of the quantizer."""
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        captured, quantized = self.graphs[(settings, tuple(excluded))]
        # the float reference goes through the same preparation with nothing annotated: batch norms folded
        # into their convolutions as in the quantized graph, so each node computes the same tensor in both
        float_graph = convert_pt2e(prepare_pt2e(copy.deepcopy(captured), XNNPACKQuantizer()))
        names = [s.name for s in ctx.inputs]
        reference = _node_outputs(float_graph, samples, names)
        actual = _node_outputs(quantized, samples, names)
        error = {n: _rel_l2(reference[n], actual[n]) for n in reference if n in actual
                 and all(a.shape == b.shape for a, b in zip(reference[n], actual[n]))}
        ranked = []
        for node in float_graph.graph.nodes:
            if node.name not in error or not _quantizable(node):
                continue
            inherited = max((error.get(p.name, 0.0) for p in node.all_input_nodes), default=0.0)
            ranked.append(RankedNode(node.name, str(node.target).split(".")[1] if "." in str(node.target) else
                                    str(node.target), node.name, error[node.name], error[node.name] - inherited))
        return sorted(ranked, key=lambda n: -n.added)


class RankedNode(NamedTuple):
    """One operator of the PT2E graph and the error at its output (the fields the budget loop reads, as
    :class:`app.accuracy.diagnose.NodeError` has them for ONNX)."""

    node: str
    op_type: str
    output: str
    error: float
    added: float


QUANTIZED_OPS = ("conv", "linear", "addmm", "mm", "bmm", "matmul", "add", "mul", "cat", "adaptive_avg_pool", "relu",
                 "hardtanh", "max_pool", "mean")


def input_layers(graph_module) -> list[str]:
    """Convolutions of a captured graph that read a graph input through ≤ 4 channels (an image's): the
    stem, which int8 serves worst (:mod:`converters.onnx_bias`)."""
    from converters.onnx_bias import MAX_INPUT_CHANNELS

    found = []
    for node in graph_module.graph.nodes:
        if node.op != "call_function" or not _op_name(node).startswith("conv"):
            continue
        source, weight = node.args[0], node.args[1] if len(node.args) > 1 else None
        while getattr(source, "op", None) == "call_function" and _plumbing(source):
            source = source.args[0]                 # a padding before the stem (TensorFlow's "same")
        shape = _shape_of(graph_module, weight)
        groups = node.args[6] if len(node.args) > 6 and isinstance(node.args[6], int) else 1
        if getattr(source, "op", None) == "placeholder" and shape is not None and len(shape) >= 2 \
                and int(shape[1]) * groups <= MAX_INPUT_CHANNELS:
            found.append(node.name)
    return found


def _plumbing(node) -> bool:
    """An op between the image and the stem that keeps its channels: padding, a copy, a dtype change."""
    return _op_name(node) in ("pad", "constant_pad_nd", "contiguous", "clone", "_to_copy", "to") and bool(node.args)


def _op_name(node) -> str:
    """``conv2d`` of ``aten.conv2d.default`` (and of ``aten::conv2d``)."""
    return str(node.target).split("::")[-1].removeprefix("aten.").split(".")[0]


def _shape_of(graph_module, weight):
    if getattr(weight, "op", None) == "get_attr":
        value = graph_module
        for part in str(weight.target).split("."):
            value = getattr(value, part, None)
        return getattr(value, "shape", None)
    return getattr(getattr(weight, "meta", {}).get("val"), "shape", None)


def _quantizable(node) -> bool:
    """An operator node of the kinds the XNNPACK quantizer annotates (not plumbing, not q/dq)."""
    if node.op != "call_function":
        return False
    name = str(node.target).split("::")[-1].split(".")[-2 if "." in str(node.target) else -1]
    return any(name.startswith(op) for op in QUANTIZED_OPS)


def _node_outputs(graph_module, samples: list, names: list[str]) -> dict[str, list]:
    """Every tensor-valued node's output, by node name, for each sample (an fx Interpreter run)."""
    import torch
    from torch.fx import Interpreter

    class Recorder(Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if isinstance(out, torch.Tensor) and out.is_floating_point():
                seen.setdefault(n.name, []).append(out.detach().float().numpy().copy())
            return out

    seen: dict[str, list] = {}
    with torch.no_grad():
        for sample in samples:
            Recorder(graph_module).run(*[torch.from_numpy(np.asarray(sample[n])) for n in names])
    return seen


def _rel_l2(reference: list, actual: list) -> float:
    num = sum(float(np.sum((a - r) ** 2)) for r, a in zip(reference, actual))
    den = sum(float(np.sum(r ** 2)) for r in reference)
    return float(np.sqrt(num / den)) if den > 0 else float(np.sqrt(num))


def lowering_failure(e: Exception) -> str:
    """One line for a program ExecuTorch cannot lower: an operator outside the core ATen set (neither
    XNNPACK nor the portable kernels have it) is named; any other reason is ExecuTorch's own."""
    text = str(e)
    for line in text.splitlines():
        if "is not in Core ATen opset" in line:
            op = line.split("Operator", 1)[-1].split("is not", 1)[0].strip()
            return (f"ExecuTorch has no kernel for {op} (neither XNNPACK nor the portable kernels): nothing was "
                    "written; replace the operation in the model, or use --to onnx / --to torch-export")
    return f"ExecuTorch could not lower the program: {first_line(e)}"


def delegation_report(graph_module) -> dict:
    """Which operators of the edge program run in XNNPACK and which fall back to the portable kernels,
    by name and count (ExecuTorch's ``get_delegation_info``), with a one-line summary."""
    from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    delegated: dict[str, int] = {}
    portable: dict[str, int] = {}
    for name, row in sorted(info.delegation_by_operator.items()):
        if name in ("getitem", "sym_size_int", "sym_size"):  # tuple and shape plumbing, not operators
            continue
        op = edge_op_name(name)
        if row.delegated:
            delegated[op] = delegated.get(op, 0) + row.delegated
        if row.non_delegated:
            portable[op] = portable.get(op, 0) + row.non_delegated
    n_del, n_port = sum(delegated.values()), sum(portable.values())
    summary = f"{n_del} of {n_del + n_port} operators run in XNNPACK"
    if portable:
        summary += "; in the portable kernels (not accelerated): " + ", ".join(f"{op} ×{n}" for op, n in portable.items())
    return {"delegated": delegated, "portable": portable, "delegated_count": n_del, "portable_count": n_port,
            "delegate_calls": info.num_delegated_subgraphs, "summary": summary}


# overload names ExecuTorch's report appends to an operator (``aten_add_tensor``), longest first
OVERLOADS = ("_tensor_scalar", "_tensor_tensor", "_scalar_tensor", "_dim_intlist", "_dim_int_list", "_start_step",
             "_default", "_tensor", "_scalar", "_int", "_dim", "_self", "_out")
NAMESPACES = ("aten", "quantized_decomposed", "dim_order_ops")


def edge_op_name(name: str) -> str:
    """``aten_convolution_default`` → ``aten.convolution``; ``dim_order_ops__to_dim_order_copy_default``
    → ``dim_order_ops._to_dim_order_copy``."""
    space = next((s for s in NAMESPACES if name.startswith(s + "_")), None)
    if space is None:
        return name  # scalar_tensor and other prims: as ExecuTorch names them
    op = name[len(space) + 1:]
    suffix = next((s for s in OVERLOADS if op.lower().endswith(s)), "")
    return f"{space}.{op[: len(op) - len(suffix)]}"


# ---------------------------------------------------------------------------- hand-off for the device
def handoff_readme(name: str, ctx: ConversionContext, samples: int) -> str:
    version = importlib.metadata.version("executorch")
    report = ctx.record.get("delegation", {})

    def row(s: TensorSpec) -> str:
        shape = "×".join(str(d) for d in s.shape) if s.shape else "?"
        dtype = "float16" if ctx.request.precision == "fp16" and s.is_float else s.dtype
        return f"| {s.name} | {dtype} | {shape} |"

    dims = sorted({d for s in ctx.inputs for d in (s.shape or ()) if isinstance(d, str)})
    lines = [
        f"# {name}", "",
        f"An ExecuTorch program ({ctx.request.precision}, XNNPACK delegate) made by Deployment Studio from "
        f"`{ctx.model.path.name}`. It needs the ExecuTorch runtime **{version}** (or a later one that reads "
        "this program's version) built with the XNNPACK backend.", "",
        "## Signature (method `forward`; tensors in this order)", "",
        "| input | dtype | shape |", "|---|---|---|", *[row(s) for s in ctx.inputs], "",
        "| output | dtype | shape |", "|---|---|---|", *[row(s) for s in ctx.model.outputs], "",
        *([f"Named dimensions ({', '.join(dims)}) may change from call to call, within the range the "
           "program was exported with.", ""] if dims else []),
        f"Delegation: {report.get('summary', 'see the manifest')}.", "",
        "## Check it on the device", "",
        f"`{name}{SAMPLES_SUFFIX}` holds {samples} sample(s): `sampleN/input/NAME` (the inputs), "
        "`sampleN/expected/NAME` (what this program returned on the build machine) and `sampleN/source/NAME` "
        "(the PyTorch model's outputs). Load the program, run `forward` on each sample's inputs and compare "
        "with `expected`: a maximum absolute difference within about 1e-4 of the outputs' scale (fp32), or the "
        "verification tolerance in the manifest, means the device computes what was verified here.", "",
        "With ExecuTorch's Python runtime (any machine with `pip install executorch`):", "",
        "```python",
        "import numpy as np, torch",
        "from executorch.runtime import Runtime",
        f"method = Runtime.get().load_program('{name}').load_method('forward')",
        f"data = np.load('{name}{SAMPLES_SUFFIX}')",
        f"inputs = [torch.from_numpy(data['sample0/input/' + n]) for n in {json.dumps([s.name for s in ctx.inputs])}]",
        "outputs = method.execute(inputs)",
        f"for out, n in zip(outputs, {json.dumps([s.name for s in ctx.model.outputs])}):",
        "    print(n, float(np.abs(out.float().numpy() - data['sample0/expected/' + n]).max()))",
        "```", "",
        "On Android/iOS: the `Module` API (`org.pytorch.executorch.Module.load(path).forward(...)`, "
        "`ExecuTorchModule`) with the same inputs.", "",
    ]
    return "\n".join(lines)
