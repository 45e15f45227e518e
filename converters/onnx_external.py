"""fp16 for ONNX models whose weights live in external data, without loading the weights.

ONNX Runtime's float16 converter works on a ModelProto holding every weight (and runs ONNX shape
inference on it, which cannot serialise past protobuf's 2 GB): on a 2.7 GB model it failed after
holding 5.4x the model's size. Here the graph is converted with the weights left out — each external
float initializer is swapped for a one-number stand-in while the converter decides which tensors become
float16 and where Casts go — and the weights are then streamed from the source's data file to the
artifact's, a slice at a time, with the converter's own clipping (``convert_np_to_float16``). Peak
memory: the graph plus one slice.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from app.runtimes.onnxrt import onnx_tensors

CHUNK = 16 << 20  # float32 elements read, converted and written at a time (64 MB)
ALIGN = 4096      # data offsets aligned to pages, so ONNX Runtime can map each tensor
INLINE = 1024       # external tensors up to this size (axes, shapes) are read into the graph


def external_initializers(proto) -> list:
    """The main graph's initializers kept in external data (None when other tensors are external too:
    subgraphs, Constant attributes, sparse tensors — the caller then uses the in-memory converter)."""
    import onnx

    external = [t for t in onnx_tensors(proto) if t.data_location == onnx.TensorProto.EXTERNAL]
    ids = {id(t) for t in proto.graph.initializer}
    if any(id(t) not in ids for t in external):
        return None
    return [t for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]


def to_fp16_streamed(src: Path, out: Path, *, node_block_list=None, progress=None) -> list[Path] | None:
    """Write ``out`` (+ ``out.data``) as the fp16 version of ``src``; None when ``src`` is not a model
    this can do (no external weights, or external tensors outside the main graph's initializers)."""
    import onnx
    from onnx import TensorProto
    from onnxruntime.transformers.float16 import convert_float_to_float16, convert_np_to_float16

    proto = onnx.load(str(src), load_external_data=False)
    initializers = external_initializers(proto)
    if not initializers:
        return None
    proto = onnx.shape_inference.infer_shapes(proto)  # on the real dims, before the stand-ins hide them
    saved = {}
    for t in proto.graph.initializer:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        where = {e.key: e.value for e in t.external_data}
        location, offset = where["location"], int(where.get("offset", 0))
        length = int(where["length"]) if "length" in where else None
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT
        if length is not None and length <= INLINE:
            # small constants (axes, shapes) go inline: ONNX Runtime's shape inference cannot read them
            # from external data, and the converter must see their values
            with open(src.parent / location, "rb") as f:
                f.seek(offset)
                t.raw_data = f.read(length)
            continue
        saved[t.name] = (list(t.dims), t.data_type, location, offset, length)
        del t.dims[:]
        t.raw_data = np.zeros(1, dtype=onnx.helper.tensor_dtype_to_np_dtype(t.data_type)).tobytes()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        converted = convert_float_to_float16(proto, keep_io_types=True, node_block_list=node_block_list,
                                             disable_shape_infer=True)
    # the converter described the stand-ins (scalars) in value_info: the initializers describe themselves
    kept = [v for v in converted.graph.value_info if v.name not in saved]
    del converted.graph.value_info[:]
    converted.graph.value_info.extend(kept)
    data = out.with_name(out.name + ".data")
    total = sum(n for *_, n in saved.values() if n) or 1
    done = 0
    with open(data, "wb") as sink:
        for t in converted.graph.initializer:
            if t.name not in saved:
                continue
            dims, dtype, location, offset, length = saved[t.name]
            t.dims.extend(dims)
            t.ClearField("raw_data")
            source_type = onnx.helper.tensor_dtype_to_np_dtype(dtype)
            count = int(np.prod(dims)) if dims else 1
            weights = np.memmap(src.parent / location, dtype=source_type, mode="r", offset=offset, shape=(count,))
            start = (sink.tell() + ALIGN - 1) // ALIGN * ALIGN
            sink.seek(start)
            for i in range(0, count, CHUNK):
                part = np.asarray(weights[i:i + CHUNK])
                if dtype == TensorProto.FLOAT and t.data_type == TensorProto.FLOAT16:
                    part = convert_np_to_float16(part).astype(np.float16)
                sink.write(part.tobytes())
            del weights
            written = sink.tell() - start
            t.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", str(start)), ("length", str(written))):
                entry = t.external_data.add()
                entry.key, entry.value = key, value
            done += length or 0
            if progress:
                progress(f"convert to fp16: {done / 1e9:.1f} / {total / 1e9:.1f} GB of weights", done / total)
    onnx.save_model(converted, str(out))
    if not saved:  # only small constants were external: all inline now
        data.unlink()
        return [out]
    return [out, data]


# ---------------------------------------------------------------------------- dynamic int8
def _external_location(t) -> tuple[str, int]:
    where = {e.key: e.value for e in t.external_data}
    return where["location"], int(where.get("offset", 0))


def _weight_node(node, weights: dict, excluded: set):
    """(weight name, transposed) for a MatMul/Gemm whose second input is a big external float matrix
    (Gemm: plain alpha/beta, no transA); None for every other node."""
    from onnx import TensorProto, helper

    if node.name in excluded or node.op_type not in ("MatMul", "Gemm") or len(node.input) < 2:
        return None
    w = weights.get(node.input[1])
    if w is None or w.data_type != TensorProto.FLOAT or len(w.dims) != 2:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Gemm" and (attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0
                                   or attrs.get("transA", 0)):
        return None
    return w.name, bool(attrs.get("transB", 0)) if node.op_type == "Gemm" else False


def _quantize_matrix(src_file: Path, offset: int, dims: list[int], transposed: bool, sink, align: int,
                     unsigned: bool = False):
    """Per-output-channel symmetric int8 of a float32 matrix read a slice at a time, written as
    [K, N] (MatMulInteger's layout) to ``sink``; returns (offset, length, scales). Numerics as ONNX
    Runtime's dynamic quantizer: scale = max|w| / 127 per channel (1 where all zero), round half to even.
    ``unsigned``: the same values shifted by 128 into uint8 (zero point 128), for CPUs whose u8×s8
    kernels saturate (:func:`app.machine.hardware.int8_kernels`)."""
    rows, cols = dims
    w = np.memmap(src_file, dtype=np.float32, mode="r", offset=offset, shape=(rows, cols))
    step = max(1, CHUNK // cols)
    channels = rows if transposed else cols          # the output channel: W's rows when transB
    absmax = np.zeros(channels, np.float32)
    for i in range(0, rows, step):
        part = np.abs(np.asarray(w[i:i + step]))
        if transposed:
            absmax[i:i + step] = part.max(axis=1)
        else:
            np.maximum(absmax, part.max(axis=0), out=absmax)
    scales = np.where(absmax > 0, absmax * 2 / 254, 1.0).astype(np.float32)
    start = (sink.tell() + align - 1) // align * align
    k, n = (cols, rows) if transposed else (rows, cols)
    sink.seek(start + k * n - 1)
    sink.write(b"\0")
    sink.flush()
    shift, dtype = (128, np.uint8) if unsigned else (0, np.int8)
    out = np.memmap(sink.name, dtype=dtype, mode="r+", offset=start, shape=(k, n))
    for i in range(0, rows, step):
        part = np.asarray(w[i:i + step])
        if transposed:
            q = (np.clip(np.rint(part / scales[i:i + step, None]), -127, 127) + shift).astype(dtype)
            out[:, i:i + step] = q.T
        else:
            out[i:i + step] = (np.clip(np.rint(part / scales), -127, 127) + shift).astype(dtype)
    out.flush()
    del out, w
    sink.seek(start + k * n)
    return start, k * n, scales


def _copy_slices(path: Path, offset: int, length: int, sink) -> int:
    """Copy ``length`` bytes of ``path`` from ``offset`` to ``sink`` at its next aligned offset, a slice
    at a time; that offset."""
    start = (sink.tell() + ALIGN - 1) // ALIGN * ALIGN
    sink.seek(start)
    with open(path, "rb") as f:
        f.seek(offset)
        for i in range(0, length, CHUNK * 4):
            sink.write(f.read(min(CHUNK * 4, length - i)))
    return start


def _integer_matmul(node, w_q: str, scales: np.ndarray, unsigned: bool) -> tuple[list, list]:
    """ONNX Runtime's dynamic int8 pattern in place of a MatMul/Gemm ``node`` whose weight is ``w_q``:
    DynamicQuantizeLinear on the activation, MatMulInteger, the scales multiplied back (and a Gemm's
    bias added); the nodes and the new initializers (weight scales and zero points)."""
    from onnx import TensorProto, helper, numpy_helper

    base = (node.name or node.output[0]) + "_quant"
    inits = [numpy_helper.from_array(scales, base + "_w_scale"),
             numpy_helper.from_array(np.full(len(scales), 128, np.uint8) if unsigned
                                     else np.zeros(len(scales), np.int8), base + "_w_zero_point")]
    nodes = [
        helper.make_node("DynamicQuantizeLinear", [node.input[0]], [base + "_x", base + "_x_scale", base + "_x_zero_point"],
                         name=base + "_dql"),
        helper.make_node("MatMulInteger", [base + "_x", w_q, base + "_x_zero_point", base + "_w_zero_point"],
                         [base + "_int32"], name=base + "_matmul"),
        helper.make_node("Cast", [base + "_int32"], [base + "_float"], to=TensorProto.FLOAT, name=base + "_cast"),
        helper.make_node("Mul", [base + "_x_scale", base + "_w_scale"], [base + "_scale"], name=base + "_scale_mul"),
    ]
    bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] else None
    scaled = base + "_scaled" if bias else node.output[0]
    nodes.append(helper.make_node("Mul", [base + "_float", base + "_scale"], [scaled], name=base + "_output_mul"))
    if bias:
        nodes.append(helper.make_node("Add", [scaled, bias], [node.output[0]], name=base + "_bias_add"))
    return nodes, inits


def to_int8_dynamic_streamed(src: Path, out: Path, *, exclude=(), progress=None,
                             unsigned: bool = False) -> list[str] | None:
    """Dynamic int8 of ``src``'s MatMul/Gemm weights, streamed from its external data to ``out.data``:
    DynamicQuantizeLinear on the activation, MatMulInteger on per-channel int8 weights, the scales
    multiplied back — ONNX Runtime's own dynamic pattern, which its optimiser fuses into
    MatMulIntegerToFloat. Other weights are copied as they are. Returns the quantized nodes' names;
    None when ``src`` keeps no weights in external data (the caller uses ONNX Runtime's quantizer).
    ``unsigned``: uint8 weights with zero point 128 (see :func:`_quantize_matrix`)."""
    import onnx
    from onnx import TensorProto

    proto = onnx.load(str(src), load_external_data=False)
    initializers = external_initializers(proto)
    if not initializers:
        return None
    weights = {t.name: t for t in initializers}
    excluded = set(exclude)
    targets = {}
    for node in proto.graph.node:
        found = _weight_node(node, weights, excluded)
        if found:
            targets.setdefault(found[0], found[1])
            if targets[found[0]] != found[1]:  # one matrix used both ways: leave it in float
                excluded.add(node.name)
    data = out.with_name(out.name + ".data")
    total = sum(int(np.prod(t.dims)) * 4 for t in initializers) or 1
    done = 0
    quantized: dict[str, tuple] = {}
    new_inits = []
    with open(data, "wb") as sink:
        for t in initializers:
            location, offset = _external_location(t)
            if t.name in targets:
                start, length, scales = _quantize_matrix(src.parent / location, offset, list(t.dims), targets[t.name],
                                                         sink, ALIGN, unsigned)
                q = TensorProto(name=t.name + "_quantized", data_type=TensorProto.UINT8 if unsigned else TensorProto.INT8,
                                dims=list(t.dims)[::-1] if targets[t.name] else list(t.dims))
                quantized[t.name] = (q.name, scales)
            else:  # copied as it is, a slice at a time
                length = int({e.key: e.value for e in t.external_data}["length"])
                start = _copy_slices(src.parent / location, offset, length, sink)
                q = TensorProto()
                q.CopyFrom(t)
                del q.external_data[:]
            q.data_location = TensorProto.EXTERNAL
            for key, value in (("location", data.name), ("offset", str(start)), ("length", str(length))):
                entry = q.external_data.add()
                entry.key, entry.value = key, value
            new_inits.append(q)
            done += int(np.prod(t.dims)) * 4
            if progress:
                progress(f"quantize (dynamic int8, streamed): {done / 1e9:.1f} / {total / 1e9:.1f} GB of weights",
                         done / total)
    nodes, names = [], []
    for node in proto.graph.node:
        found = _weight_node(node, weights, excluded)
        if not found or found[0] not in quantized:
            nodes.append(node)
            continue
        w_q, scales = quantized[found[0]]
        replacement, inits = _integer_matmul(node, w_q, scales, unsigned)
        nodes += replacement
        new_inits += inits
        names.append(node.name)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    small = [t for t in proto.graph.initializer if t.name not in weights]
    del proto.graph.initializer[:]
    proto.graph.initializer.extend(small + new_inits)
    onnx.save_model(proto, str(out))
    return names
