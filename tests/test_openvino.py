"""OpenVINO IR target, OpenVINO runtime, BF16 gated by the CPU, and the hardware-aware advice.

Real OpenVINO sessions on the small test models. Which BF16 path runs natively depends on this
machine's CPU (detected, never assumed); the other path runs with ``DEPLOY_STUDIO_CPU_FLAGS`` set to a
CPU without BF16, so both the conversion and the refusal are tested on every machine that has BF16,
and the refusal everywhere.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from app.targets.advice import FASTER, NO_SPEEDUP, UNAVAILABLE, advise
from app.machine.hardware import CPU_FLAGS_ENV, Hardware, _read_cpuinfo, cpu_from_flags, detect_cpu
from tests.conftest import CNN_ARGS, ENCODER_ARGS, sha256

HERE_BF16 = detect_cpu().bf16
NO_BF16_FLAGS = "fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni"  # Xeon Cascade Lake: no BF16
HERE_PRECISIONS = ["fp32", "fp16", "int8"] + (["bf16"] if HERE_BF16 else [])

# /proc/cpuinfo flag lines (abridged to what matters) of CPUs users have
XEON_ICELAKE = "fpu sse sse2 avx f16c avx2 fma avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_vbmi2"
EPYC_ZEN4 = "fpu sse sse2 avx avx2 fma avx512f avx512bw avx512vl avx512_vnni avx512_bf16 avx512_vbmi2"
XEON_SAPPHIRE = XEON_ICELAKE + " avx_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx512_fp16"
OLD_DESKTOP = "fpu sse sse2 avx f16c avx2 fma"
NO_AVX2 = "fpu sse sse2 ssse3 sse4_1 sse4_2"


def one_error_line(err: str) -> bool:
    """stderr holds progress lines ("… stage") and exactly one error line, no traceback."""
    lines = [line for line in err.splitlines() if not line.startswith("…")]
    return len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err


# ---------------------------------------------------------------------------- detection and advice
@pytest.mark.parametrize("flags, features, bf16, vnni", [
    (XEON_ICELAKE, ["AVX2", "AVX-512", "VNNI"], False, True),
    (EPYC_ZEN4, ["AVX2", "AVX-512", "VNNI", "AVX-512 BF16"], True, True),
    (XEON_SAPPHIRE, ["AVX2", "AVX-512", "VNNI", "AVX-512 BF16", "AMX"], True, True),
    (OLD_DESKTOP, ["AVX2"], False, False),
    (NO_AVX2, [], False, False),
])
def test_cpu_features_from_flag_sets(flags, features, bf16, vnni):
    cpu = cpu_from_flags(flags, "test CPU")
    assert cpu.features() == features and cpu.bf16 is bf16 and cpu.vnni is vnni
    assert bool(cpu.bf16_refusal()) is not bf16
    if not bf16:
        assert "no BF16 instructions" in cpu.bf16_refusal() and "test CPU" in cpu.bf16_refusal()
    data = cpu.to_json()
    assert data["features"] == features and data["bf16"] is bf16


def test_cpuinfo_parser_reads_name_and_flags(tmp_path):
    text = ("processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14 96-Core Processor\n"
            f"flags\t\t: {EPYC_ZEN4}\n\nprocessor\t: 1\nmodel name\t: ignored\nflags\t\t: fpu\n")
    (tmp_path / "cpuinfo").write_text(text)
    name, flags = _read_cpuinfo(str(tmp_path / "cpuinfo"))
    assert name == "AMD EPYC 9R14 96-Core Processor" and "avx512_bf16" in flags and len(flags) == len(EPYC_ZEN4.split())
    assert _read_cpuinfo(str(tmp_path / "missing")) is None


def test_this_machine_matches_proc_cpuinfo():
    found = _read_cpuinfo()
    if found is None:
        pytest.skip("no /proc/cpuinfo on this OS (OpenVINO's capabilities are used instead)")
    assert detect_cpu().bf16 == bool({"avx512_bf16", "amx_bf16"} & found[1])


def test_advice_depends_on_the_hardware():
    sapphire, icelake, old = (Hardware(cpu_from_flags(f, n)) for f, n in (
        (XEON_SAPPHIRE, "Xeon SPR"), (XEON_ICELAKE, "Xeon ICX"), (NO_AVX2, "old")))
    fp16 = advise("onnx", "fp16", icelake)
    assert fp16.verdict == NO_SPEEDUP and "meant for GPU/TensorRT" in fp16.why
    assert advise("onnx", "fp16", Hardware(icelake.cpu, gpu="NVIDIA L4")).verdict == FASTER
    assert advise("openvino", "bf16", sapphire).verdict == FASTER and "AMX" in advise("openvino", "bf16", sapphire).why
    assert advise("openvino", "bf16", icelake).verdict == UNAVAILABLE
    assert advise("torchscript-trace", "bf16", icelake).verdict == UNAVAILABLE
    assert advise("onnx", "int8", icelake).verdict == FASTER and "VNNI" in advise("onnx", "int8", icelake).why
    assert advise("onnx", "int8", old).verdict == NO_SPEEDUP
    assert advise("tensorrt", "fp16", icelake).verdict == UNAVAILABLE
    assert advise("torchscript-script", "fp16", icelake).verdict == "slower"


def test_targets_json_reports_hardware_and_advice(cli):
    r = cli("targets", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    cpu = data["hardware"]["cpu"]
    assert cpu["features"] == detect_cpu().features() and cpu["bf16"] is HERE_BF16
    assert "gpu" in data["hardware"]
    rows = {row["target"]: row for row in data["targets"]}
    ov = rows["openvino"]
    assert ov["available"] and ov["precisions"] == ["fp32", "fp16", "bf16", "int8"]
    assert set(ov["advice"]) == set(ov["precisions"])
    assert ("bf16" in ov["refused"]) is not HERE_BF16
    if not data["hardware"]["gpu"]:
        assert rows["onnx"]["advice"]["fp16"]["expected"] == NO_SPEEDUP


# ---------------------------------------------------------------------------- the target
@pytest.fixture(scope="module")
def ir_artifacts(model_files, tmp_path_factory) -> dict[str, Path]:
    """The test CNN converted to OpenVINO at every precision this CPU offers (CLI, real OpenVINO)."""
    from main import main

    out = tmp_path_factory.mktemp("openvino")
    for precision in HERE_PRECISIONS:
        assert main(["convert", str(model_files["cnn_state"]), *CNN_ARGS, "--to", "openvino", "--precision",
                     precision, "--out", str(out)]) == 0
    return {p: out / f"cnn.openvino.{p}.xml" for p in HERE_PRECISIONS} | {"out": out}


@pytest.mark.parametrize("precision", HERE_PRECISIONS)
def test_cli_converts_to_openvino_at_each_precision(ir_artifacts, precision):
    from app.runtimes.openvino import openvino_module

    ov = openvino_module()  # with its telemetry kept out, as the app imports it

    xml = ir_artifacts[precision]
    assert xml.is_file() and xml.with_suffix(".bin").is_file()
    manifest = json.loads(Path(str(xml) + ".manifest.json").read_text())
    assert manifest["target"] == "openvino" and manifest["precision"] == precision
    assert manifest["verification"]["passed"]
    assert [f["name"] for f in manifest["files"]] == [xml.name, xml.with_suffix(".bin").name]
    assert manifest["files"][1]["sha256"] == sha256(xml.with_suffix(".bin"))
    hint = "bf16" if precision == "bf16" else "f32"
    assert manifest["recorded"]["inference_precision"] == hint
    model = ov.Core().read_model(str(xml))
    assert model.get_rt_info(["deploy_studio", "precision"]).astype(str) == precision
    assert model.get_rt_info(["runtime_options", "INFERENCE_PRECISION_HINT"]).astype(str) == hint
    assert model.inputs[0].get_any_name() == "x" and model.outputs[0].get_any_name() == "output"
    assert model.inputs[0].get_partial_shape()[0].is_dynamic  # --dynamic x:0:batch kept
    ops = {op.get_type_name() for op in model.get_ops()}
    if precision == "int8":
        # int8 weights in the IR: NNCF's FakeQuantize, or the QDQ graph's int8 constants (the CNN default)
        int8_weights = any(op.get_type_name() == "Constant" and op.get_element_type().get_type_name() in ("i8", "u8")
                           for op in model.get_ops())
        assert "FakeQuantize" in ops or int8_weights
        assert manifest["recorded"]["openvino_int8_engine"] in ("NNCF", "ONNX Runtime's static QDQ graph, read by OpenVINO")
        assert "RANDOM DATA" in " ".join(manifest["warnings"])  # no --calibration: said loudly
    if precision == "fp16":
        assert any(op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "f16"
                   for op in model.get_ops())


def test_fp32_artifacts_never_run_in_the_plugins_bf16_default(ir_artifacts):
    """The CPU plugin picks bf16 for fp32 models on BF16 CPUs unless told; the studio always tells it."""
    from app.loaders.front_door import load_model
    from app.runtimes.openvino import compile_model, compile_config

    assert compile_config("fp32", 2) == {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
                                         "INFERENCE_NUM_THREADS": 2}
    model = load_model(ir_artifacts["fp32"])
    assert model.format == "openvino" and model.details["inference_precision"] == "f32"
    compiled = compile_model(model.module, "fp32", 1)
    assert compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "f32"
    if HERE_BF16:
        bf16 = compile_model(model.module, "bf16", 1)
        assert bf16.get_property("INFERENCE_PRECISION_HINT").get_type_name() == "bf16"


def test_encoder_with_int64_ids_keeps_dynamic_batch_and_sequence(cli, model_files, tmp_path):
    r = cli("convert", model_files["encoder_state"], *ENCODER_ARGS, "--to", "openvino", "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["verification"]["passed"] and any("seq=" in c for c in result["verification"]["checks"])
    from app.loaders.front_door import load_model

    model = load_model(Path(result["artifact"]))
    assert [(s.name, s.dtype) for s in model.inputs] == [("input_ids", "int64"), ("attention_mask", "int64")]
    assert all(isinstance(d, str) for s in model.inputs for d in s.shape)  # both axes dynamic
    ids = np.random.default_rng(0).integers(0, 100, (3, 11))
    [out] = model.run({"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert out.shape == (3, 32)
    # int8: attention in the graph gets NNCF's transformer preset (softmax, masks, LayerNorm kept float)
    r = cli("convert", model_files["encoder_state"], *ENCODER_ARGS, "--to", "openvino", "--precision", "int8",
            "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    manifest = json.loads(Path(json.loads(r.out)["manifest"]).read_text())
    assert manifest["recorded"]["nncf_model_type"] == "transformer"


def test_onnx_source_with_external_data(cli, workdir):
    r = cli("convert", workdir["cnn_onnx_external"], "--to", "openvino", "--out", workdir["out"], "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["verification"]["passed"]
    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["recorded"]["openvino_route"] == "onnx file"


@pytest.mark.parametrize("where", ["here", "cpu without bf16"])
@pytest.mark.parametrize("target", ["openvino", "torchscript-trace", "torch-export"])
def test_bf16_built_where_the_cpu_has_it_refused_where_not(cli, workdir, monkeypatch, target, where):
    if where == "cpu without bf16":
        monkeypatch.setenv(CPU_FLAGS_ENV, NO_BF16_FLAGS)
    has_bf16 = detect_cpu().bf16
    r = cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", target, "--precision", "bf16",
            "--out", workdir["out"])
    if has_bf16:
        assert r.code == 0, r.err
        assert "passed" in r.out
        return
    assert r.code == 2 and one_error_line(r.err), r.err
    assert "no BF16 instructions" in r.err and "AVX-512 BF16 or AMX" in r.err
    assert not workdir["out"].exists() or not list(workdir["out"].iterdir()), "nothing may be written"


def test_a_model_openvino_cannot_convert_is_one_line_and_writes_nothing(cli, tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example.custom")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.example.custom", 1)])
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "out"
    r = cli("convert", path, "--to", "openvino", "--out", out)
    assert r.code == 1 and one_error_line(r.err), r.err
    assert "OpenVINO cannot convert" in r.err and "Traceback" not in r.err
    assert not out.exists() or not list(out.iterdir())  # a failed job leaves no folder behind


def test_an_ir_without_its_weights_is_refused(cli, ir_artifacts, tmp_path):
    lonely = tmp_path / "lonely.xml"
    lonely.write_bytes(ir_artifacts["fp32"].read_bytes())
    r = cli("inspect", lonely)
    assert r.code == 2 and "lonely.bin" in r.err and "missing" in r.err


def test_openvino_telemetry_is_kept_out(workdir, monkeypatch, tmp_path, network_attempts):
    """OpenVINO's converter would send usage data and write ~/intel/openvino_telemetry: neither happens."""
    from app.jobs import convert_in_process as convert
    from tests.requests import CNN, request

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    result = convert(request(workdir["cnn_state"], "openvino", "fp32", out_dir=workdir["out"], **CNN))
    assert result.verification.passed and network_attempts == []
    assert sys.modules.get("openvino_telemetry") is None
    assert not (tmp_path / "home" / "intel").exists()


# ---------------------------------------------------------------------------- the runtime
def test_bench_runs_ir_in_openvino_and_onnx_in_both_runtimes(cli, ir_artifacts, model_files, tmp_path):
    import csv

    onnx_out = tmp_path / "onnx"
    assert cli("convert", model_files["cnn_state"], *CNN_ARGS, "--to", "onnx", "--out", onnx_out).code == 0
    onnx_file = onnx_out / "cnn.fp32.onnx"
    csv_path = tmp_path / "bench.csv"
    r = cli("bench", model_files["cnn_state"], ir_artifacts["fp32"], ir_artifacts["int8"], onnx_file, *CNN_ARGS,
            "--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0", "--threads", "1",
            "--json", "--csv", csv_path)
    assert r.code == 0, r.err
    rows = {row["name"]: row for row in json.loads(r.out)["results"]}
    assert set(rows) == {"PyTorch eager", "cnn.openvino.fp32.xml", "cnn.openvino.int8.xml", "cnn.fp32.onnx",
                         "cnn.fp32.onnx [OpenVINO]"}
    assert rows["cnn.fp32.onnx"]["runtime"] == "onnxruntime"
    for name in ("cnn.openvino.fp32.xml", "cnn.openvino.int8.xml", "cnn.fp32.onnx [OpenVINO]"):
        assert rows[name]["runtime"] == "openvino" and rows[name]["threads"] == 1
        assert rows[name]["runs"] >= 5
    assert rows["cnn.openvino.fp32.xml"]["cosine"] > 0.99999 and rows["cnn.openvino.fp32.xml"]["rel_l2"] < 1e-4
    assert rows["cnn.fp32.onnx [OpenVINO]"]["rel_l2"] < 1e-4  # fp32 means fp32, even on a BF16 CPU
    assert rows["cnn.openvino.int8.xml"]["precision"] == "int8" and rows["cnn.openvino.int8.xml"]["cosine"] > 0.99
    with csv_path.open(newline="") as f:
        table = {t["name"]: t for t in csv.DictReader(f)}
    assert table["cnn.fp32.onnx [OpenVINO]"]["runtime"] == "openvino"
    r = cli("bench", model_files["cnn_state"], onnx_file, *CNN_ARGS, "--warmup", "0", "--runs", "3",
            "--min-seconds", "0", "--no-openvino", "--json")
    assert {row["name"] for row in json.loads(r.out)["results"]} == {"PyTorch eager", "cnn.fp32.onnx"}


def test_optimize_offers_openvino_candidates(cli, model_files, tmp_path):
    out = tmp_path / "opt"
    r = cli("optimize", model_files["cnn_state"], *CNN_ARGS, "--only", "openvino", "--out", out,
            "--warmup", "1", "--warmup-seconds", "0", "--runs", "3", "--min-seconds", "0", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    built = {row["candidate"] for row in data["results"] if not row["baseline"]}
    assert {"openvino fp32", "openvino fp16", "openvino int8 static"} <= built
    assert ("openvino bf16" in built) is HERE_BF16
    assert data["recommended"]["target"] == "openvino"


def test_the_node_ranking_names_the_layers_nncf_quantizes_not_the_batch_norms_after_them():
    """OpenVINO's PyTorch frontend folds a batch norm into an Add after its convolution, named after the batch norm;
    NNCF quantizes the convolution's input and weights, so ignored_scope on that Add (or on the ReLU6 after it)
    changes nothing. The ranking gives their error to the convolution that feeds them."""
    import nncf
    import openvino as ov
    import torch

    from converters.openvino import rank_ov_nodes

    class ConvBnRelu6(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv1, self.bn1 = torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8)
            self.conv2, self.bn2 = torch.nn.Conv2d(8, 8, 3, padding=1, groups=8), torch.nn.BatchNorm2d(8)
            for bn in (self.bn1, self.bn2):
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.5, 2)
            self.act = torch.nn.ReLU6()

        def forward(self, x):
            return self.act(self.bn2(self.conv2(self.act(self.bn1(self.conv1(x))))))

    x = torch.randn(1, 3, 16, 16)
    model = ov.convert_model(torch.jit.trace(ConvBnRelu6().eval(), x), example_input=x, input=[([1, 3, 16, 16], ov.Type.f32)])
    name = model.inputs[0].get_any_name()
    samples = [{name: np.random.default_rng(i).standard_normal((1, 3, 16, 16)).astype(np.float32)} for i in range(8)]
    assert any("batch_norm" in op.get_friendly_name() for op in model.get_ops())       # what the ranking must skip
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=8)
    ranked = rank_ov_nodes(model, quantized, samples)
    assert ranked and {r.op_type for r in ranked} <= {"Conv", "MatMul", "Add", "Mul", "AveragePool", "MaxPool", "Concat"}
    assert not [r.node for r in ranked if "batch_norm" in r.node or "hardtanh" in r.node]
    convs = [r for r in ranked if r.op_type == "Conv"]
    assert len(convs) == 2 and all(r.added > 0 for r in convs)
    # and the node stage names them by the batch norm folded into them, in a block of their own
    from converters.openvino import ov_graph_nodes

    graph = {n.name: n for n in ov_graph_nodes(model)}
    assert {graph[r.node].module for r in convs} == {"bn1 (its convolution)", "bn2 (its convolution)"}
    assert all(graph[r.node].layer for r in convs)
    assert not [n for n in graph.values() if "batch_norm" in n.name and n.layer]
