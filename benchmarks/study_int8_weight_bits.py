"""Which int8 weights keep a model *and* run fast on this CPU (ONNX Runtime): 8-bit int8, 7-bit int8
(``reduce_range``, on every layer or only some), uint8, and 7-bit activations — the study behind the
weight choice for x86 without VNNI (docs/accuracy.md, "int8 weights follow the CPU").

Pretrained EfficientNet-Lite0, static QDQ (min-max, per-channel), calibrated on 64 crops of 8 photos and
judged on 128 crops of 8 *other* photos against the fp32 ONNX; the pretrained all-MiniLM-L6-v2, dynamic
per-channel, judged on the test sentences. Each artifact is timed interleaved with its fp32 (blocks of
10 calls, median), so a machine's load falls on both.

    python benchmarks/study_int8_weight_bits.py [--only cnn|minilm] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]


def interleaved(fp32, other, feeds: dict, blocks: int = 6, calls: int = 10) -> tuple[float, float]:
    """Median ms of ``other`` and of ``fp32``, timed in alternating blocks (A B B A)."""
    def block(s) -> float:
        t = time.perf_counter()
        for _ in range(calls):
            s.run(None, feeds)
        return (time.perf_counter() - t) / calls * 1e3

    for _ in range(3):
        block(other), block(fp32)
    a, r = [], []
    for _ in range(blocks):
        r.append(block(fp32)), a.append(block(other)), a.append(block(other)), r.append(block(fp32))
    return statistics.median(a), statistics.median(r)


def session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def cnn(work: Path) -> list[dict]:
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import bench_int8_photos as photos_bench

    calib_dir, eval_dir = photos_bench.write_crops(work, "lite0", 8, 16)
    calib, ev = photos_bench.load_crops(calib_dir), photos_bench.load_crops(eval_dir)
    out = work / "fp32"
    result = photos_bench.run_convert(photos_bench.convert_command(
        "lite0", "onnx", "fp32", calib_dir, eval_dir, out, budget="", flags=set()), 1800)
    fp32 = Path(result["artifact"])
    pre = work / "pre.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=False)
    model = onnx.load(str(pre))
    inits = {i.name for i in model.graph.initializer}
    depthwise, full, axes = [], [], {}
    for n in model.graph.node:
        if n.op_type == "Conv":
            group = next((a.i for a in n.attribute if a.name == "group"), 1)
            (depthwise if group > 1 else full).append(n.input[1])
        elif n.op_type == "Gemm" and n.input[1] in inits:
            full.append(n.input[1])
            axes[n.input[1]] = 0 if any(a.name == "transB" and a.i for a in n.attribute) else 1

    class Reader:
        def __init__(self):
            self.it = iter([{"x": calib[i:i + 1]} for i in range(len(calib))])

        def get_next(self):
            return next(self.it, None)

        def rewind(self):
            self.__init__()

    def build(name: str, weight=QuantType.QInt8, reduce_range=False, seven_bit=(), overrides=None) -> Path:
        path = work / f"{name}.onnx"
        extra = {"ActivationSymmetric": False}
        if seven_bit:
            extra["TensorQuantOverrides"] = {t: [{"axis": axes.get(t, 0), "reduce_range": True}] for t in seven_bit}
        if overrides:
            extra["TensorQuantOverrides"] = overrides
        quantize_static(str(pre), str(path), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=weight,
                        calibrate_method=CalibrationMethod.MinMax, extra_options=extra)
        return path

    def seven_bit_activations() -> dict:
        """Every uint8 activation's scale doubled and zero point halved: values 0…127 (no saturation)."""
        q = onnx.load(str(work / "int8-8bit.onnx"))
        values = {i.name: onnx.numpy_helper.to_array(i) for i in q.graph.initializer}
        found = {}
        for n in q.graph.node:
            zp = values.get(n.input[2]) if n.op_type == "QuantizeLinear" and len(n.input) > 2 else None
            if zp is not None and zp.dtype == np.uint8:
                found[n.input[0]] = [{"scale": np.array(2 * float(values[n.input[1]]), np.float32),
                                      "zero_point": np.array(int(zp) // 2, np.uint8)}]
        return found

    variants = [("int8-8bit", {}), ("int8-7bit", {"reduce_range": True}),
                ("uint8", {"weight": QuantType.QUInt8}),
                ("int8-7bit-pointwise-only", {"seven_bit": full}),
                ("int8-7bit-depthwise-only", {"seven_bit": depthwise}),
                ("int8-7bit-activations", None)]
    ref_s = session(fp32)
    ref = np.concatenate([ref_s.run(None, {"x": ev[i:i + 1]})[0] for i in range(len(ev))])
    rows = []
    for name, kwargs in variants:
        path = build(name, **(kwargs if kwargs is not None else {"overrides": seven_bit_activations()}))
        s = session(path)
        got = np.concatenate([s.run(None, {"x": ev[i:i + 1]})[0] for i in range(len(ev))])
        fig = photos_bench.figures(ref, got)
        ms, fp32_ms = interleaved(ref_s, s, {"x": ev[:1]})
        rows.append({"model": "EfficientNet-Lite0", "weights": name, **fig, "ms": ms, "fp32_ms": fp32_ms,
                     "speedup": fp32_ms / ms})
        print(_line(rows[-1]), flush=True)
    return rows


def minilm(work: Path, seq: int = 64) -> list[dict]:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry
    from onnxruntime.quantization.shape_inference import quant_pre_process

    import bench_accuracy
    from app.accuracy.data import load_data
    from app.model.specs import TensorSpec
    from app.request import DataSource
    from tests.minilm import weights_path
    from tests.real_data import SENTENCES, minilm_folder

    fp32 = Path(bench_accuracy.convert(weights_path(), "fp32", work, arch="tests.minilm:SentenceEncoder",
                                       inputs=[f"input_ids:1x{seq}:int64", f"attention_mask:1x{seq}:int64"]).artifact)
    pre = work / "pre-minilm.onnx"
    quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
    specs = [TensorSpec("input_ids", "int64", (1, seq)), TensorSpec("attention_mask", "int64", (1, seq))]
    data = load_data(DataSource(SENTENCES, tokenizer=minilm_folder()), specs).samples
    ops = [op for op in IntegerOpsRegistry if op != "Conv"]
    ref_s = session(fp32)
    ref = [ref_s.run(None, f)[0].ravel() for f in data]
    rows = []
    for name, weight, seven in (("int8-8bit", QuantType.QInt8, False), ("int8-7bit", QuantType.QInt8, True),
                                ("uint8", QuantType.QUInt8, False)):
        path = work / f"minilm-{name}.onnx"
        quantize_dynamic(str(pre), str(path), weight_type=weight, per_channel=True, reduce_range=seven,
                         op_types_to_quantize=ops)
        s = session(path)
        cos = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in
               zip(ref, (s.run(None, f)[0].ravel() for f in data))]
        ms, fp32_ms = interleaved(ref_s, s, data[0])
        rows.append({"model": "all-MiniLM-L6-v2", "weights": name, "samples": len(data), "cosine": float(np.mean(cos)),
                     "cosine_min": float(np.min(cos)), "ms": ms, "fp32_ms": fp32_ms, "speedup": fp32_ms / ms})
        print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict) -> str:
    conf = (f"conf. agreement {r['confident_agreement']:.3f} ({r['confident_n']}) · "
            if "confident_agreement" in r else "")
    return (f"| {r['model']} | {r['weights']} | {conf}cosine {r['cosine']:.4f} | {r['ms']:.2f} ms | "
            f"fp32 {r['fp32_ms']:.2f} ms | {r['speedup']:.2f}× |")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", choices=("cnn", "minilm"))
    p.add_argument("--json")
    args = p.parse_args(argv)
    from app.machine.hardware import detect_cpu

    cpu = detect_cpu()
    print(f"CPU: {cpu.name} ({', '.join(cpu.features()) or 'no AVX2'})", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="weight-bits-") as tmp:
        if args.only in (None, "cnn"):
            rows += cnn(Path(tmp))
        if args.only in (None, "minilm"):
            rows += minilm(Path(tmp))
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": cpu.to_json(), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
