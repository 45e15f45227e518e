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

CHUNK = 16 << 20  # float32 elements read, converted and written at a time (64 MB)
ALIGN = 4096      # data offsets aligned to pages, so ONNX Runtime can map each tensor
INLINE = 1024       # external tensors up to this size (axes, shapes) are read into the graph


def external_initializers(proto) -> list:
    """The main graph's initializers kept in external data (None when other tensors are external too:
    subgraphs, Constant attributes, sparse tensors — the caller then uses the in-memory converter)."""
    import onnx

    from app.loading import onnx_tensors

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
