"""INT8 choices follow the CPU the artifact is verified on.

On x86 without VNNI, ONNX Runtime's u8×s8 kernels saturate 16-bit sums (a pretrained CNN's top-1
agreement fell to 0.60 on an AVX2-only EPYC); 7-bit int8 weights (reduce_range) keep those kernels exact
there and fast (uint8 weights, exact too, ran slower than fp32).
``DEPLOY_STUDIO_CPU_FLAGS`` drives the *choice* in these tests; the numerics are this machine's, so
what is asserted about them holds on every CPU: the artifact verifies and its weights have the
chosen type.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from app.machine.hardware import CPU_FLAGS_ENV, cpu_from_flags, int8_kernels
from app.jobs import convert_in_process as convert
from tests.requests import ENC, request

AVX2 = "sse4_2 avx fma avx2"
AVX512 = AVX2 + " avx512f avx512bw"           # Skylake-X: AVX-512 but no VNNI, saturates as AVX2 does
VNNI = AVX512 + " avx512_vnni"
AMX = VNNI + " avx512_bf16 amx_bf16 amx_int8 amx_tile"
ARM = "fp asimd asimddp"


@pytest.mark.parametrize("flags, bits", [(AVX2, 7), (AVX512, 7), (VNNI, 8), (AMX, 8), ("avx2 avx_vnni", 8), (ARM, 8)])
def test_weight_bits_follow_the_instruction_set(flags, bits):
    kernels = int8_kernels(cpu_from_flags(flags))
    assert kernels.weight_type == "int8"         # uint8 weights take u8×u8 kernels, slower than fp32 on x86
    assert kernels.reduce_range == (bits == 7) == kernels.saturates
    assert ("saturate" in kernels.reason) == kernels.saturates and ("7-bit" in kernels.reason) == (bits == 7)


def _weight_range(path) -> tuple[int, int]:
    """The smallest and largest quantized weight value of the int8 artifact at ``path``."""
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    values = [numpy_helper.to_array(inits[n.input[i]]) for n in graph.node
              for i in ((0,) if n.op_type == "DequantizeLinear" else (1,) if n.op_type == "MatMulInteger" else ())
              if n.input[i] in inits and inits[n.input[i]].data_type == onnx.TensorProto.INT8]
    return min(int(v.min()) for v in values), max(int(v.max()) for v in values)


def _weight_types(path) -> set[int]:
    """Element types of the quantized weights: DequantizeLinear's (QDQ) or MatMulInteger's B (dynamic)."""
    graph = onnx.load(str(path)).graph
    inits = {i.name: i.data_type for i in graph.initializer}
    found = set()
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            found.add(inits[node.input[0]])
        if node.op_type == "MatMulInteger" and node.input[1] in inits:
            found.add(inits[node.input[1]])
    return found - {onnx.TensorProto.INT32}   # biases


@pytest.mark.parametrize("flags, bits", [(AVX2, 7), (VNNI, 8)])
def test_dynamic_int8_of_an_encoder_stores_the_weights_this_cpu_computes_exactly(workdir, monkeypatch, flags, bits):
    monkeypatch.setenv(CPU_FLAGS_ENV, flags)
    result = convert(request(workdir["encoder_state"], "onnx", "int8", out_dir=workdir["out"], **ENC))
    assert result.status == "ok" and _weight_types(result.artifact) == {onnx.TensorProto.INT8}
    lo, hi = _weight_range(result.artifact)
    if bits == 7:   # 2·255·64 fits a 16-bit sum: exact on every CPU, so this encoder keeps > 0.99 anywhere
        assert -64 <= lo and hi <= 64, (lo, hi)
        assert result.verification.passed, result.verification.failure
    else:  # 8-bit weights chosen for a VNNI CPU: on one without, the sums saturate; either way it is measured
        assert lo < -64 or hi > 64
        assert -1.0 <= result.verification.cosine <= 1.0
    recorded = json.loads(result.manifest.read_text())["recorded"]
    assert recorded["int8_weights_type"] == "int8" and recorded["int8_weight_bits"] == bits
    assert recorded["int8_for_cpu"]["source"] == f"${CPU_FLAGS_ENV}"
    assert ("saturate" in recorded["int8_kernels"]) == (flags == AVX2)


def test_static_qdq_int8_follows_the_cpu(workdir, monkeypatch, tmp_path):
    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        np.save(calib / f"sample{i}.npy", rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    monkeypatch.setenv(CPU_FLAGS_ENV, AVX2)
    result = convert(request(workdir["cnn_onnx"], "onnx", "int8", data=calib, out_dir=workdir["out"]))
    assert result.status == "ok"
    assert _weight_types(result.artifact) == {onnx.TensorProto.INT8}
    lo, hi = _weight_range(result.artifact)
    assert -64 <= lo and hi <= 64 and hi - lo > 100, (lo, hi)        # 7 bits, and used
    assert {n.op_type for n in onnx.load(str(result.artifact)).graph.node} >= {"QuantizeLinear", "DequantizeLinear"}


def test_streamed_int8_weights_are_unsigned_where_the_cpu_saturates(tmp_path):
    """The >2 GB path writes its own MatMulInteger pattern: uint8 weights with zero point 128 hold the
    same values as int8 ones, and ONNX Runtime computes them exactly on any CPU (u8×u8 kernels)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    from converters.onnx_external import to_int8_dynamic_streamed

    rng = np.random.default_rng(1)
    w = rng.standard_normal((64, 32)).astype(np.float32)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 64])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 32])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    src = tmp_path / "mm.onnx"
    onnx.save_model(model, str(src), save_as_external_data=True, location="mm.onnx.data", size_threshold=0)
    x = rng.standard_normal((4, 64)).astype(np.float32)
    weights = {}
    for unsigned in (False, True):
        out = tmp_path / f"mm.{unsigned}.onnx"
        assert to_int8_dynamic_streamed(src, out, unsigned=unsigned) == ["mm"]
        assert _weight_types(out) == {TensorProto.UINT8 if unsigned else TensorProto.INT8}
        loaded = {i.name: numpy_helper.to_array(i, base_dir=str(tmp_path)) for i in onnx.load(str(out)).graph.initializer}
        weights[unsigned] = loaded
    q_signed = weights[False]["w_quantized"].astype(np.int32)
    q_unsigned = weights[True]["w_quantized"].astype(np.int32) - weights[True]["mm_quant_w_zero_point"].astype(np.int32)
    np.testing.assert_array_equal(q_unsigned, q_signed)
    # the exact integer arithmetic of the pattern (DynamicQuantizeLinear: round half to even)
    lo, hi = min(0.0, float(x.min())), max(0.0, float(x.max()))
    x_scale = np.float32((hi - lo) / 255)
    x_zp = np.clip(np.rint(-lo / x_scale), 0, 255)
    x_q = np.clip(np.rint(x / x_scale) + x_zp, 0, 255)
    expected = ((x_q - x_zp) @ q_signed) * x_scale * weights[False]["mm_quant_w_scale"]
    got = ort.InferenceSession(str(tmp_path / "mm.True.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert np.corrcoef(got.ravel(), (x @ w).ravel())[0, 1] > 0.999


def test_targets_says_why_int8_weights_are_unsigned_on_a_cpu_without_vnni(cli, monkeypatch):
    monkeypatch.setenv(CPU_FLAGS_ENV, AVX2)
    r = cli("targets", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    text = json.dumps(data)
    assert "saturate" in text and "7-bit" in text and "reduce_range" in text
    monkeypatch.setenv(CPU_FLAGS_ENV, VNNI)
    r = cli("targets", "--json")
    assert "saturate" not in r.out


@pytest.mark.parametrize("here, target, dtype, warned", [
    (VNNI, "avx2", onnx.TensorProto.INT8, "accuracy measured here holds there"),
    (AVX2, "vnni", onnx.TensorProto.INT8, "worse than on vnni"),
    (VNNI, "amx", onnx.TensorProto.INT8, None),
    (AVX2, "arm64", onnx.TensorProto.INT8, "worse than on arm64"),
])
def test_target_isa_builds_for_another_cpu_and_says_what_verification_here_proves(
        workdir, monkeypatch, here, target, dtype, warned):
    """``--target-isa`` picks the weight type for that CPU; where this machine computes it differently
    (``DEPLOY_STUDIO_CPU_FLAGS`` stands for this machine's CPU: only the choice and the words are
    asserted, never this machine's numerics), the result says so."""
    monkeypatch.setenv(CPU_FLAGS_ENV, here)
    result = convert(request(workdir["encoder_state"], "onnx", "int8", out_dir=workdir["out"], target_isa=target, **ENC))
    assert result.status == "ok" and _weight_types(result.artifact) == {dtype}
    recorded = json.loads(result.manifest.read_text())["recorded"]
    assert recorded["int8_for_cpu"]["source"] == "--target-isa" and recorded["int8_for_cpu"]["name"].startswith(target)
    notes = [w for w in result.warnings if w.startswith(f"int8 built for {target}")]
    assert [warned in n for n in notes] == ([True] if warned else [])


def test_target_isa_is_refused_where_it_means_nothing(cli, workdir):
    r = cli("convert", workdir["cnn_onnx"], "--to", "onnx", "--precision", "int8", "--target-isa", "sse4")
    assert r.code == 2 and "avx2" in r.err and "arm64" in r.err
    r = cli("convert", workdir["cnn_onnx"], "--to", "tensorrt", "--precision", "int8", "--target-isa", "avx2")
    assert r.code == 2 and "--target-isa" in r.err
