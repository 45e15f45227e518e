"""Precision written into the ONNX graph: fp16 conversion and ONNX Runtime int8 quantization.

The same graphs feed TensorRT: TensorRT 11 dropped the FP16/INT8 builder flags and calibrators, so
precision must already be in the ONNX (an fp16 graph, or explicit QuantizeLinear/DequantizeLinear).
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from app.errors import BadInput, ConversionFailed
from app.machine.hardware import cpu_from_flags, detect_cpu, int8_kernels
from app.machine.memory import source_bytes
from app.runtimes.onnxrt import onnx_tensors
from converters.base import ConversionContext
from converters.calibration import feeds_reader, random_samples
from converters.onnx_external import to_fp16_streamed, to_int8_dynamic_streamed
from converters.onnx_files import save_onnx
from converters.options import Option

QUANTIZATION_MODES = ("dynamic", "static")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")

QUANTIZATION = Option(
    "quantization", ("--quantization",), str, None, QUANTIZATION_MODES,
    help="int8 mode (default: static QDQ with --data for convolutional models, else dynamic; TensorRT: static)",
    searchable=True, precisions=("int8",), label="INT8 mode", default_label="automatic")
CALIBRATION_METHOD = Option(
    "calibration_method", ("--calibration-method",), str, "minmax", CALIBRATION_METHODS,
    help="static int8: how activation ranges are read from the calibration samples",
    searchable=True, precisions=("int8",), only_with=("quantization", "static"), label="Calibration method")

INPUT_LAYER = Option(
    "input_layer", ("--int8-input-layer",), str, "float", ("float", "int8"),
    help="static int8: the convolution reading the image (≤ 4 input channels) in float (the default: faster and "
         "more accurate on CPUs) or int8 (for accelerators that run int8 only)",
    precisions=("int8",), label="INT8 input layer")

# --target-isa: /proc/cpuinfo flags that stand for each kind of CPU an int8 artifact may be built for
TARGET_ISAS = {
    "avx2": "avx2 fma",
    "avx512": "avx2 fma avx512f avx512bw",
    "vnni": "avx2 fma avx512f avx512bw avx512_vnni",
    "amx": "avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_tile amx_bf16 amx_int8",
    "arm64": "fp asimd asimddp",
}
TARGET_ISA = Option(
    "target_isa", ("--target-isa",), str, None, tuple(TARGET_ISAS),
    help="int8: the CPU the artifact will run on when it is not this one (avx2: x86 without VNNI; avx512: "
         "AVX-512 without VNNI; vnni; amx; arm64); it picks the int8 weight type for that CPU's kernels "
         "(default: this machine's)",
    precisions=("int8",), label="INT8 for CPU", default_label="this machine")


@dataclass(frozen=True)
class QuantizerConfig:
    """The whole-model choices of ONNX Runtime's quantizer, which the accuracy-budget loop searches
    (:func:`app.accuracy.budget.meet_budget`) before it keeps any node in float. ``None``: not a choice in this
    mode (dynamic int8 has no calibration and no activation ranges)."""

    weight_type: str                            # int8 | uint8
    per_channel: bool = True
    reduce_range: bool = False                  # 7-bit weights: no u8×s8 saturation on CPUs without VNNI
    calibration_method: str | None = None       # static: minmax | entropy | percentile
    activation_symmetric: bool | None = None    # static: ranges symmetric about zero
    bias_correction: bool | None = None         # static: each layer's mean shift from int8 weights removed
    float_input_layer: bool | None = None       # static: the convolution reading the image kept in float

    def with_(self, **change) -> "QuantizerConfig":
        return replace(self, **change)

    def to_json(self) -> dict:
        return asdict(self)

    def choices(self, fixed_weights: bool = False) -> list[tuple[str, tuple]]:
        """The settings worth trying from here, one field at a time; those that are not a choice are left
        out (dynamic int8 has no calibration; ``fixed_weights``: the weight type is another CPU's)."""
        choices = [] if fixed_weights else [("weight_type", ("uint8",) if self.weight_type == "int8" else ("int8",))]
        choices += [("per_channel", (not self.per_channel,)), ("reduce_range", (not self.reduce_range,))]
        if self.calibration_method is not None:
            choices.append(("calibration_method", tuple(m for m in CALIBRATION_METHODS if m != self.calibration_method)))
        if self.activation_symmetric is not None:
            choices.append(("activation_symmetric", (not self.activation_symmetric,)))
        for name in ("bias_correction", "float_input_layer"):
            if getattr(self, name) is not None:
                choices.append((name, (not getattr(self, name),)))
        return choices


def int8_kernels_for(ctx: ConversionContext):
    """The :class:`app.machine.hardware.Int8Kernels` of the CPU the int8 artifact is for (``--target-isa``'s, else
    this machine's), recorded with that CPU. Where this machine computes the chosen weights differently
    from that CPU, a warning says that verification here cannot stand for a run there."""
    here = detect_cpu()
    name = TARGET_ISA.of(ctx.request)
    cpu, kernels = (here, int8_kernels(here)) if name is None else _for_target(ctx, name, here)
    ctx.record.update(int8_kernels=kernels.reason,
                      int8_for_cpu={"name": cpu.name, "features": cpu.features(), "source": cpu.source})
    return kernels


def _for_target(ctx: ConversionContext, name: str, here):
    if name not in TARGET_ISAS:
        raise BadInput(f"--target-isa {name!r}: choose one of {', '.join(TARGET_ISAS)}")
    cpu = cpu_from_flags(TARGET_ISAS[name], name=f"{name} (--target-isa)", source="--target-isa")
    kernels = int8_kernels(cpu)
    mine = int8_kernels(here)
    note = ""
    if kernels.weight_type == "int8" and not kernels.reduce_range and mine.saturates:
        note = (f"int8 built for {name}: signed 8-bit weights, which this CPU ({here.name or 'unknown'}, no VNNI) "
                f"computes with saturating 16-bit sums — the accuracy measured here is worse than on {name}; check it there")
    elif kernels.reduce_range and not mine.reduce_range:
        note = (f"int8 built for {name}: 7-bit weights (reduce_range), which {name}'s saturating u8×s8 kernels compute "
                "exactly, as this CPU does; the accuracy measured here holds there (a little below what 8-bit weights "
                "keep on this CPU), the speed does not")
    if note and note not in ctx.warnings:   # once, though the budget loop rebuilds
        ctx.warnings.append(note)
    return cpu, kernels


def to_fp16(src: Path, out: Path, ctx: ConversionContext) -> None:
    """Float tensors to float16; graph inputs/outputs stay float32 so callers need no change."""
    import onnx

    # ONNX Runtime's copy of the float16 converter: unlike onnxconverter-common's it also rewrites
    # Cast(to=float) nodes, which the dynamo exporter emits (e.g. for attention masks)
    from onnxruntime.transformers.float16 import convert_float_to_float16

    ctx.record["fp16_io"] = "float32 (keep_io_types)"
    if ctx.exclude_nodes:
        ctx.record["float_nodes"] = list(ctx.exclude_nodes)
    external = _has_external_data(src)
    if external:  # weights stay on disk: streamed to float16 tensor by tensor

        if to_fp16_streamed(src, out, node_block_list=list(ctx.exclude_nodes) or None, progress=ctx.stage):
            ctx.record["fp16_weights"] = "streamed from external data"
            return
    proto = onnx.load(str(src))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_float_to_float16(proto, keep_io_types=True,
                                             node_block_list=list(ctx.exclude_nodes) or None)

    save_onnx(converted, out, external=external)


_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def _inside(folder: Path):
    """Run with ``folder`` as the working directory: ONNX Runtime's symbolic shape inference dumps
    ``sym_shape_infer_temp.onnx`` (+ a uuid-named .data file) into the CWD when it gives up; this
    keeps that litter inside our private work folder, which is removed afterwards."""
    with _CWD_LOCK:
        previous = os.getcwd()
        os.chdir(folder)
        try:
            yield
        finally:
            os.chdir(previous)


def _preprocess(src: Path, ctx: ConversionContext) -> Path:
    """ONNX Runtime's recommended pre-quantization pass (shape inference + graph optimisation)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = src.with_name("pre-" + src.name)
    size = onnx_bytes(src)
    if size > PRE_PROCESS_LIMIT:
        # the pass loads the whole model and runs an ONNX Runtime optimisation session beside it (two
        # copies: 6x the model's size at peak on a 2.7 GB MLP), and its symbolic shape inference
        # cannot serialise past protobuf's 2 GB; quantization works on the exporter's shapes
        ctx.record["quant_pre_process"] = f"skipped: {size / 1e9:.1f} GB of weights (over 2 GB)"
        ctx.warnings.append(f"skipped ONNX Runtime's pre-quantization pass: the model has {size / 1e9:.1f} GB of "
                            "weights, over ONNX's 2 GB protobuf limit, where the pass fails and holds two copies "
                            "in memory; quantized the graph as exported")
        return src
    error = None
    external = _has_external_data(src)
    # symbolic shape inference fails on some exporter outputs (e.g. attention with dynamic
    # sequence length); ONNX's own shape inference is enough for quantization then
    for skip_symbolic in (False, True):
        try:
            with warnings.catch_warnings(), _inside(ctx.work_dir):
                warnings.simplefilter("ignore")
                quant_pre_process(str(src), str(pre), skip_symbolic_shape=skip_symbolic,
                                  save_as_external_data=external, all_tensors_to_one_file=True,
                                  external_data_location=pre.name + ".data")
            ctx.record["quant_pre_process"] = "onnx shape inference" if skip_symbolic else "symbolic shape inference"
            return pre
        except Exception as e:
            error = e
    ctx.record["quant_pre_process"] = False
    ctx.warnings.append(f"ONNX Runtime's pre-quantization pass failed ({str(error).splitlines()[0][:160]}); "
                        "quantized the graph as exported")
    return src


PRE_PROCESS_LIMIT = 2 * 10**9


def onnx_bytes(path: Path) -> int:
    """Bytes of an ONNX file plus its external-data files (named ``<file>*`` beside it, as we write them)."""
    return source_bytes(path)


def quantization_mode(ctx: ConversionContext, src: Path, *, for_tensorrt: bool) -> str:
    """The request's --quantization, or automatic: static QDQ for TensorRT and for convolutional
    models given --data (Conv only gets fast int8 kernels in QDQ), dynamic per-channel otherwise.
    Why not static for transformers: on the pretrained all-MiniLM-L6-v2 with 88 real calibration
    sentences, static QDQ kept a mean cosine of 0.37 (attention-mask and softmax ranges) where
    dynamic per-channel kept 0.994."""
    mode = QUANTIZATION.of(ctx.request)
    if mode is None:
        convolutional = _count_ops(src, "Conv") > 0
        mode = "static" if for_tensorrt or (ctx.calibration is not None and convolutional) else "dynamic"
        ctx.record["quantization_choice"] = (
            "automatic: " + ("static QDQ (TensorRT takes explicit Q/DQ)" if for_tensorrt else
                             "static QDQ (convolutional model, --data given)" if mode == "static" else
                             "dynamic per-channel (no Conv: static activation ranges hurt transformers)"
                             if not convolutional else "dynamic (no --data to calibrate on)"))
    if mode not in QUANTIZATION_MODES:
        raise BadInput(f"--quantization {mode!r}: choose dynamic or static")
    if for_tensorrt and mode != "static":
        raise BadInput("TensorRT int8 needs static quantization (explicit Q/DQ nodes); drop --quantization dynamic")
    return mode


def to_int8(src: Path, out: Path, ctx: ConversionContext, *, for_tensorrt: bool = False) -> None:
    """Dynamic (weights int8, activations at run time) or static QDQ (calibrated activations)."""
    mode = quantization_mode(ctx, src, for_tensorrt=for_tensorrt)
    weights, reduce_range = _weight_type(ctx, for_tensorrt=for_tensorrt)
    # the budget loop's candidate, else the defaults (7-bit weights where this CPU's u8×s8 sums saturate)
    config = ctx.quantizer or QuantizerConfig(weights, reduce_range=reduce_range)
    if ctx.quantizer is not None:
        weights = ctx.record["int8_weights_type"] = config.weight_type
        ctx.record["int8_weight_bits"] = 7 if config.reduce_range else 8
    kept = src.with_name("pre-" + src.name)
    if ctx.keep_reference and kept.exists():   # a rebuild in the accuracy-budget loop
        pre = kept
    else:
        ctx.stage("prepare for quantization")
        pre = _preprocess(src, ctx)
    exclude = list(ctx.exclude_nodes)
    if exclude:
        ctx.record["float_nodes"] = exclude
        exclude = _exclusion_names(pre, exclude, ctx)
    ctx.record["quantization"] = mode
    if mode == "static" and not for_tensorrt:
        config = _static_defaults(config, INPUT_LAYER.of(ctx.request) == "float")
        exclude += _float_input_layers(pre, config, exclude, ctx)
    # weights in a file beside the graph on both sides: read mapped, written tensor by tensor
    external = _has_external_data(pre)
    try:
        if mode == "dynamic":
            _quantize_dynamic(pre, out, ctx, config, weights, exclude, external)
        else:
            samples = _quantize_static(pre, out, ctx, config, weights, exclude, external, for_tensorrt)
            if exclude:
                _keep_in_float(pre, out, exclude, ctx, external)
            if ctx.quantizer.bias_correction:
                _correct_biases(pre, out, samples, ctx, external)
    except (BadInput, ConversionFailed):
        raise
    except Exception as e:
        raise ConversionFailed(f"int8 quantization failed: {str(e).splitlines()[0][:300]}") from e
    finally:
        if pre != src and ctx.keep_reference:
            ctx.reference_onnx = pre
        elif pre != src:
            pre.unlink(missing_ok=True)
            pre.with_name(pre.name + ".data").unlink(missing_ok=True)
        elif ctx.keep_reference:
            ctx.reference_onnx = src
        for leftover in out.parent.glob("augmented_model*.onnx"):
            leftover.unlink()


def _quantize_dynamic(pre: Path, out: Path, ctx: ConversionContext, config: "QuantizerConfig", weights: str,
                      exclude: list[str], external: bool) -> None:
    """Dynamic int8: weights quantized, activations at run time (Conv left in float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    weight_type = QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8
    ctx.stage("quantize (dynamic int8)")

    # Conv is left in float: ONNX Runtime's ConvInteger has no fast CPU kernel, and dynamic
    # int8 made a ResNet-18 3.4x slower than fp32 (66.5 vs 19.5 ms at batch 1 on 2 cores;
    # without Conv: 17.3 ms). Static QDQ quantizes convolutions properly (6.3 ms there).
    # per_channel is on: on a random-weight encoder it looked useless (cosine 0.99994 vs
    # 0.99992, 2-4 % slower), but on the pretrained all-MiniLM-L6-v2 it is what keeps real
    # sentences above 0.99 (mean cosine 0.994 vs 0.966 per-tensor, 204 held-out sentences)
    ops = [op for op in IntegerOpsRegistry if op != "Conv"]
    if external and onnx_bytes(pre) > PRE_PROCESS_LIMIT and _streamed_int8(pre, out, ctx, exclude,
                                                                            "uint8" if config.reduce_range else weights):
        return
    quantize_dynamic(str(pre), str(out), weight_type=weight_type, per_channel=config.per_channel,
                     reduce_range=config.reduce_range, op_types_to_quantize=ops, nodes_to_exclude=exclude,
                     use_external_data_format=external)
    ctx.record.update(dynamic_quantized_ops=ops, per_channel=config.per_channel, quantizer=config.to_json())
    ctx.quantizer = config
    if _count_ops(pre, "Conv"):
        ctx.warnings.append("dynamic int8 leaves Conv layers in float (ONNX Runtime's dynamic ConvInteger is "
                            "slower than fp32 on CPU); --data DIR (real samples) makes automatic int8 static QDQ, which quantizes them")


def _quantize_static(pre: Path, out: Path, ctx: ConversionContext, config: "QuantizerConfig", weights: str,
                     exclude: list[str], external: bool, for_tensorrt: bool) -> None:
    """Static QDQ int8: activation ranges calibrated on the samples."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    weight_type = QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8
    samples = _calibration(ctx)
    method = (config.calibration_method or CALIBRATION_METHOD.of(ctx.request)).lower()
    if method not in CALIBRATION_METHODS:
        raise BadInput(f"--calibration-method {method!r}: choose one of {', '.join(CALIBRATION_METHODS)}")
    ctx.stage(f"calibrate and quantize (static QDQ, {method}, {len(samples)} samples)")
    calib = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
             "percentile": CalibrationMethod.Percentile}[method]
    # TensorRT only takes symmetric signed int8 Q/DQ; ONNX Runtime's CPU kernels are
    # fastest with unsigned activations (U8S8).
    act = QuantType.QInt8 if for_tensorrt else QuantType.QUInt8
    # TensorRT wants int8 weights and activations but float biases (it fuses them itself)
    extra = ({"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False}
             if for_tensorrt else {"ActivationSymmetric": bool(config.activation_symmetric)})
    config = config.with_(calibration_method=method, activation_symmetric=extra["ActivationSymmetric"])
    # the entropy/percentile calibrators print their progress on stdout, which would break
    # `--json` output; keep it out
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(str(pre), str(out), feeds_reader(samples, ctx.counted(f"calibrate ({method})")),
                        quant_format=QuantFormat.QDQ,
                        per_channel=config.per_channel, reduce_range=config.reduce_range,
                        activation_type=act, weight_type=weight_type,
                        calibrate_method=calib, extra_options=extra, nodes_to_exclude=exclude,
                        use_external_data_format=external)
    ctx.record.update(calibration_method=method, calibration_samples=len(samples),
                      activation_type=str(act), per_channel=config.per_channel, quantizer=config.to_json())
    ctx.quantizer = config
    return samples


def _static_defaults(config: "QuantizerConfig", float_input: bool = True) -> "QuantizerConfig":
    """Static int8 for ONNX Runtime on a CPU: bias correction and a float input layer (``--int8-input-layer``)
    unless the accuracy budget's search chose otherwise (:mod:`converters.onnx_bias` has the measurements)."""
    return config.with_(bias_correction=True if config.bias_correction is None else config.bias_correction,
                        float_input_layer=float_input if config.float_input_layer is None else config.float_input_layer)


def _per_layer(ctx: ConversionContext):
    """A ``step(i, n)`` over the layers of the layer-by-layer bias correction (checks for a cancel)."""
    def step(i: int, n: int) -> None:
        ctx.stage(f"bias correction: layer {i} of {n}", i / n if n else None)
    return step


def _float_input_layers(pre: Path, config: "QuantizerConfig", exclude: list[str], ctx: ConversionContext) -> list[str]:
    """The convolutions reading the image (≤ 4 channels) that the quantizer leaves in float, recorded."""
    import onnx

    from converters.onnx_bias import input_layers

    if not config.float_input_layer:
        return []
    found = [n for n in input_layers(onnx.load(str(pre), load_external_data=False).graph) if n not in exclude]
    if found:
        ctx.record["float_input_layers"] = found
    return found


def _correct_biases(pre: Path, out: Path, samples: list, ctx: ConversionContext, external: bool) -> None:
    """Bias correction of the int8 graph at ``out`` against ``pre`` on the calibration samples (real ones
    only: means of random inputs would move the biases away from what real data needs), recorded."""
    import onnx

    from converters.onnx_bias import correct_biases, refine_biases

    if ctx.calibration is None:
        ctx.record["bias_correction"] = "not applied: calibrated on random data (no --data)"
        return
    if external:
        ctx.record["bias_correction"] = "not applied: the model's weights are in external data"
        return
    proto = onnx.load(str(out))
    layers = correct_biases(proto, pre, samples, ctx.counted("bias correction (weights)"))
    ctx.stage("bias correction, layer by layer")
    measured = refine_biases(proto, pre, samples, _per_layer(ctx))
    save_onnx(proto, out, external=False)
    limit = " (the first ones: the 300 s limit)" if measured < layers else ""
    ctx.record["bias_correction"] = (f"{layers} layers from their weights, then {measured} measured one at a time{limit}, "
                                     f"on {min(len(samples), 128)} calibration samples")


def _exclusion_names(pre: Path, names: list[str], ctx: ConversionContext) -> list[str]:
    """The budget loop's float nodes as node names of the graph the quantizer reads (``pre``): by node
    name, else by the tensor the node computes; those not found are recorded with the reason."""
    import onnx

    from converters.float_islands import resolve

    found, missing = resolve(onnx.load(str(pre), load_external_data=False).graph, names)
    if missing:
        ctx.record.setdefault("float_nodes_unchanged", {}).update(missing)
    return found


def _keep_in_float(pre: Path, out: Path, names: list[str], ctx: ConversionContext, external: bool) -> None:
    """Static QDQ: ``nodes_to_exclude`` leaves the Q/DQ pairs that a node's neighbours put on its inputs and
    output (an excluded Add reads and writes int8 as before); :func:`converters.float_islands.keep_in_float`
    removes them, so the node really computes in float."""
    import onnx

    from converters.float_islands import keep_in_float

    proto = onnx.load(str(out))
    reference = onnx.load(str(pre), load_external_data=False)
    unchanged = keep_in_float(proto, names, reference.graph)
    if unchanged:
        ctx.record.setdefault("float_nodes_unchanged", {}).update(unchanged)
    save_onnx(proto, out, external=external)


def _weight_type(ctx: ConversionContext, *, for_tensorrt: bool) -> tuple[str, bool]:
    """int8 or uint8 weights, and whether 7-bit (``reduce_range``): TensorRT takes signed symmetric Q/DQ only;
    for ONNX Runtime on a CPU, what its kernels compute exactly and fast there
    (:func:`app.machine.hardware.int8_kernels`), recorded with the reason."""
    if for_tensorrt:
        ctx.record["int8_weights_type"] = "int8"
        return "int8", False
    kernels = int8_kernels_for(ctx)
    ctx.record["int8_weights_type"] = kernels.weight_type
    ctx.record["int8_weight_bits"] = 7 if kernels.reduce_range else 8
    return kernels.weight_type, kernels.reduce_range


def _streamed_int8(src: Path, out: Path, ctx: ConversionContext, exclude: list[str], weights: str = "int8") -> bool:
    """Over 2 GB, ONNX Runtime's quantizer saves and reloads the whole model several times (16 GB for
    a 2.7 GB MLP): quantize the MatMul/Gemm weights streamed from external data instead (same numerics
    and graph pattern; other ops stay float). It writes 8-bit weights only: where the CPU wants 7-bit ones
    (saturating u8×s8 sums) they are stored as uint8 (exact u8×u8). False when the model's external data
    cannot be streamed."""
    if weights == "uint8":
        ctx.record["int8_weights_type"], ctx.record["int8_weight_bits"] = "uint8", 8
    names = to_int8_dynamic_streamed(src, out, exclude=exclude, progress=ctx.stage, unsigned=weights == "uint8")
    if names is None:
        return False
    ctx.record.update(dynamic_quantized_ops=["MatMul", "Gemm"], per_channel=True,
                      int8_weights=f"streamed from external data ({len(names)} MatMul/Gemm nodes)")
    return True


def _has_external_data(path: Path) -> bool:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return any(t.data_location == onnx.TensorProto.EXTERNAL for t in onnx_tensors(proto))


def _count_ops(path: Path, op_type: str) -> int:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return sum(1 for n in proto.graph.node if n.op_type == op_type)


def _calibration(ctx: ConversionContext):
    specs = ctx.inputs
    if ctx.calibration is not None:
        ctx.record["calibration"] = f"{len(ctx.calibration)} of the --data samples (the rest evaluate)"
        return ctx.calibration.samples
    ctx.warnings.append("STATIC INT8 CALIBRATED ON RANDOM DATA: no --data folder was given, so the "
                        "quantization ranges come from random inputs and accuracy on real data may be poor; "
                        "pass --data DIR with a few hundred real samples")
    ctx.record["calibration"] = "random (no --data given)"
    return random_samples(specs, int_high=ctx.model.details.get("int_high", 2))
