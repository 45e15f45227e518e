"""The TensorRT target: hand-off mode (runs everywhere) and real engine builds (NVIDIA GPU + TensorRT only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.errors import ModelLoadError
from app.runtimes import tensorrt_build
from converters.tensorrt import FORCE_HANDOFF_ENV, TensorRTConverter, trtexec_script

AVAILABLE, WHY = TensorRTConverter.available()
needs_tensorrt = pytest.mark.skipif(not AVAILABLE, reason=f"builds a real engine: {WHY}")
without_tensorrt = pytest.mark.skipif(AVAILABLE, reason="TensorRT and a GPU are available here")
CNN = ["--arch", "tests.models:SmallCNN", "--input", "x:2x3x32x32", "--dynamic", "x:0:batch"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    """A small CNN as a state dict (tests.models.SmallCNN) and as an ONNX file with a dynamic batch."""
    import torch
    from torch import nn

    from tests.models import SmallCNN

    root = tmp_path_factory.mktemp("trt-models")
    torch.manual_seed(0)
    state = root / "cnn.pt"
    torch.save(SmallCNN().state_dict(), state)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(8, 10)).eval()
    onnx_path = root / "tiny.onnx"
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.onnx.export(net, (torch.randn(2, 3, 16, 16),), str(onnx_path), input_names=["image"],
                      output_names=["logits"], dynamic_shapes=({0: batch},), dynamo=True, external_data=False,
                      verbose=False)
    return {"state": state, "onnx": onnx_path}


@pytest.fixture
def handoff(monkeypatch):
    """Hand-off mode even where TensorRT could build (so these tests mean the same on a GPU machine)."""
    monkeypatch.setenv(FORCE_HANDOFF_ENV, "1")


def _convert(model: Path, out: Path, precision: str, *, inputs=(), dynamic=(), arch=None):
    from app.jobs import convert_in_process as convert
    from tests.requests import request as make_request

    request = make_request(model, "tensorrt", precision, inputs=inputs, dynamic=dynamic, arch=arch, out_dir=out)
    return convert(request)


# -- availability and pure helpers -------------------------------------------------------------

@without_tensorrt
def test_unavailable_with_a_reason(cli):
    assert AVAILABLE is False
    assert "TensorRT" in WHY or "GPU" in WHY
    r = cli("targets", "--json")
    row = next(t for t in json.loads(r.out)["targets"] if t["target"] == "tensorrt")
    assert row["available"] is False and row["reason"] == WHY
    assert row["precisions"] == ["fp32", "fp16", "int8"]


def test_profile_rule():
    assert tensorrt_build.profile_range(0, 1) == (1, 1, 16)        # batch-like axis 0: max(4x, 16)
    assert tensorrt_build.profile_range(0, 8) == (1, 8, 32)
    assert tensorrt_build.profile_range(1, 128) == (1, 128, 256)   # other axes: 2x
    assert tensorrt_build.profile_for("x", [-1, 3, 32, 32], [2, 3, 32, 32]) == (
        [1, 3, 32, 32], [2, 3, 32, 32], [16, 3, 32, 32])
    assert tensorrt_build.profile_for("x", [1, 3, 32, 32], None) is None
    assert tensorrt_build.profile_for("ids", ["batch", "seq"], [2, 16]) == ([1, 1], [2, 16], [16, 32])
    with pytest.raises(tensorrt_build.EngineBuildError, match="no example size"):
        tensorrt_build.profile_for("ids", [1, -1], None)
    assert tensorrt_build.trtexec_shape("x", [1, 3, 224, 224]) == "x:1x3x224x224"
    assert tensorrt_build.trtexec_shape("input:0", [1, 8]) == "'input:0':1x8"


def test_artifact_name_follows_the_mode(monkeypatch):
    monkeypatch.setenv(FORCE_HANDOFF_ENV, "1")
    assert TensorRTConverter().artifact_name("resnet", "fp16") == "resnet.tensorrt.fp16.onnx"
    monkeypatch.delenv(FORCE_HANDOFF_ENV)
    expected = "resnet.fp16.engine" if AVAILABLE else "resnet.tensorrt.fp16.onnx"
    assert TensorRTConverter().artifact_name("resnet", "fp16") == expected


# -- hand-off mode ----------------------------------------------------------------------------

def test_handoff_from_state_dict_cli(cli, tiny, tmp_path, handoff):
    out = tmp_path / "out"
    r = cli("convert", tiny["state"], "--to", "tensorrt", "--precision", "fp32", *CNN, "--out", out, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["status"] == "handoff"
    assert result["verification"]["passed"] is True
    names = [Path(f).name for f in result["files"]]
    assert names == ["cnn.tensorrt.fp32.onnx", "cnn.tensorrt.fp32.trtexec.sh", "cnn.tensorrt.fp32.build_engine.py",
                     "cnn.tensorrt.fp32.inputs.json"]
    assert Path(result["artifact"]) == out / "cnn.tensorrt.fp32.onnx"
    assert all((out / n).is_file() for n in names)
    # one line saying why, what was written and what to run
    message = result["message"]
    assert "\n" not in message and "unavailable here" in message
    assert "sh cnn.tensorrt.fp32.trtexec.sh" in message and "cnn.tensorrt.fp32.build_engine.py" in message
    assert message in r.err

    script = (out / "cnn.tensorrt.fp32.trtexec.sh").read_text()
    assert script.startswith("#!/bin/sh") and 'cd "$(dirname "$0")"' in script
    for flag in ("--onnx=cnn.tensorrt.fp32.onnx", "--saveEngine=cnn.fp32.engine", "--stronglyTyped",
                 "--minShapes=x:1x3x32x32", "--optShapes=x:2x3x32x32", "--maxShapes=x:16x3x32x32",
                 "--memPoolSize=workspace:4096M", "--timingCacheFile=cnn.fp32.engine.timing.cache"):
        assert flag in script, flag
    command = "\n".join(line for line in script.splitlines() if not line.startswith("#"))
    assert "--fp16" not in command and "--int8" not in command  # precision comes from the graph
    assert subprocess.run(["sh", "-n", str(out / "cnn.tensorrt.fp32.trtexec.sh")]).returncode == 0

    inputs = json.loads((out / "cnn.tensorrt.fp32.inputs.json").read_text())
    assert inputs == [{"name": "x", "dtype": "float32", "shape": ["batch", 3, 32, 32], "example": [2, 3, 32, 32]}]
    manifest = json.loads((out / "cnn.tensorrt.fp32.onnx.manifest.json").read_text())
    assert manifest["status"] == "handoff" and manifest["recorded"]["handoff"] is True
    assert manifest["recorded"]["tensorrt_profile"]["x"]["max"] == [16, 3, 32, 32]

    # the hand-off ONNX loads and runs with the dynamic batch
    from app.loaders.front_door import load_model

    model = load_model(out / "cnn.tensorrt.fp32.onnx")
    assert model.inputs[0].shape[0] == "batch"
    (y,) = model.run({"x": np.zeros((5, 3, 32, 32), np.float32)})
    assert y.shape == (5, 10)


def test_generated_builder_script_is_standalone(tiny, tmp_path, handoff):
    out = tmp_path / "out"
    _convert(tiny["onnx"], out, "fp32")
    script = out / "tiny.tensorrt.fp32.build_engine.py"
    assert script.read_bytes() == Path(tensorrt_build.__file__).read_bytes()  # a verbatim copy
    compile(script.read_text(), str(script), "exec")
    # isolated interpreter, from the output folder: nothing of the studio is importable
    run = subprocess.run([sys.executable, "-I", script.name, "--help"], cwd=out, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert "--inputs-json" in run.stdout and "--workspace-mb" in run.stdout and "--engine" in run.stdout
    if not AVAILABLE:
        run = subprocess.run([sys.executable, "-I", script.name, "tiny.tensorrt.fp32.onnx", "--engine", "tiny.engine",
                              "--inputs-json", "tiny.tensorrt.fp32.inputs.json"], cwd=out, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 1
        assert run.stderr.strip().splitlines()[-1].startswith("error: TensorRT is not installed")
        assert not (out / "tiny.engine").exists()


def test_handoff_onnx_source_fp32_is_used_as_is(tiny, tmp_path, handoff):
    import onnx

    out = tmp_path / "out"
    result = _convert(tiny["onnx"], out, "fp32")
    assert result.status == "handoff" and result.verification.passed
    assert result.artifact == out / "tiny.tensorrt.fp32.onnx"
    source, staged = onnx.load(str(tiny["onnx"])), onnx.load(str(result.artifact))
    assert [n.op_type for n in staged.graph.node] == [n.op_type for n in source.graph.node]
    assert [i.name for i in staged.graph.initializer] == [i.name for i in source.graph.initializer]
    script = (out / "tiny.tensorrt.fp32.trtexec.sh").read_text()
    # the ONNX's own symbolic batch: example 1 → opt 1, max 16
    assert "--minShapes=image:1x3x16x16" in script and "--maxShapes=image:16x3x16x16" in script
    assert "unavailable here" in result.message


def test_handoff_int8_has_signed_qdq(cli, tiny, tmp_path, handoff, monkeypatch):
    import onnx

    from app.machine.hardware import CPU_FLAGS_ENV

    monkeypatch.setenv(CPU_FLAGS_ENV, "avx2 fma")   # where ONNX Runtime's own int8 would take 7-bit weights
    out = tmp_path / "out"
    r = cli("convert", tiny["state"], "--to", "tensorrt", "--precision", "int8", *CNN, "--out", out, "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["status"] == "handoff"
    proto = onnx.load(result["artifact"])
    ops = [n.op_type for n in proto.graph.node]
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    assert "DynamicQuantizeLinear" not in ops and "ConvInteger" not in ops and "QLinearConv" not in ops
    inits = {i.name: i for i in proto.graph.initializer}
    zero_points = [inits[n.input[2]] for n in proto.graph.node
                   if n.op_type in ("QuantizeLinear", "DequantizeLinear") and len(n.input) > 2 and n.input[2] in inits]
    assert zero_points
    assert {z.data_type for z in zero_points} == {onnx.TensorProto.INT8}  # signed, as TensorRT requires
    assert all(not onnx.numpy_helper.to_array(z).any() for z in zero_points)  # symmetric
    # no int32 (bias) Q/DQ left: TensorRT's Q/DQ layers take int8 only
    quantized = [inits[n.input[0]] for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits]
    assert quantized and {q.data_type for q in quantized} == {onnx.TensorProto.INT8}
    assert result["verification"]["cosine"] > 0.95
    # verified as TensorRT computes it (Q/DQ simulated in float), not with this CPU's int8 kernels
    from app.runtimes.onnxrt import OnnxRuntimeRunner
    from converters.tensorrt import VERIFIED_AS, TensorRTConverter

    manifest = json.loads(Path(result["manifest"]).read_text())
    assert manifest["recorded"]["verified_as"] == VERIFIED_AS
    import onnxruntime as ort

    runner = TensorRTConverter().load_artifact(Path(result["artifact"])).make_runner()
    assert isinstance(runner, OnnxRuntimeRunner)
    runner.load()
    level = runner.session.get_session_options().graph_optimization_level
    assert level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # no Q/DQ fusion into integer kernels
    assert "--stronglyTyped" in (out / "cnn.tensorrt.int8.trtexec.sh").read_text()
    assert "RANDOM DATA" in r.err  # calibrated on random inputs: said loudly


def test_handoff_fp16_graph_keeps_float32_io(tiny, tmp_path, handoff):
    import onnx

    result = _convert(tiny["onnx"], tmp_path / "out", "fp16")
    assert result.status == "handoff" and result.verification.passed
    proto = onnx.load(str(result.artifact))
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in proto.graph.initializer)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert proto.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT


def test_trtexec_script_for_static_inputs_has_no_shapes():
    from app.model.specs import TensorSpec

    text = trtexec_script("m.tensorrt.fp32.onnx", "m.fp32.engine", [TensorSpec("x", "float32", (1, 3, 8, 8))], 512,
                          "python b.py", "m.tensorrt.fp32.trtexec.sh")
    assert "Shapes=" not in text and "--memPoolSize=workspace:512M" in text and "--stronglyTyped" in text


# -- engines where TensorRT is missing -------------------------------------------------------------

@without_tensorrt
def test_loading_an_engine_here_is_one_clear_error(cli, tmp_path):
    from app.loaders.front_door import load_model

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x00" * 64 + b"not really an engine")
    with pytest.raises(ModelLoadError) as e:
        load_model(engine)
    text = str(e.value)
    assert "\n" not in text
    assert "TensorRT engine" in text and "cannot be loaded here" in text and WHY in text
    assert "GPU and TensorRT version they were built for" in text
    r = cli("inspect", engine)
    assert r.code == 2 and "cannot be loaded here" in r.err and "Traceback" not in r.err


# -- real engines (NVIDIA GPU + TensorRT) ----------------------------------------------------------

@needs_tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_build_engine_from_onnx(tiny, tmp_path, precision, monkeypatch):
    monkeypatch.delenv(FORCE_HANDOFF_ENV, raising=False)
    out = tmp_path / "out"
    result = _convert(tiny["onnx"], out, precision)
    assert result.status == "ok", result.verification
    assert result.verification.passed
    engine = out / f"tiny.{precision}.engine"
    assert result.artifact == engine
    assert [f.name for f in result.files] == [engine.name, engine.name + ".timing.cache", engine.name + ".tensorrt.json"]
    info = json.loads((out / (engine.name + ".tensorrt.json")).read_text())
    assert info["sha256"] == tensorrt_build.sha256_file(engine)
    assert info["tensorrt"] and info["compute_capability"] and info["strongly_typed"] is True
    assert info["profile"]["image"] == {"min": [1, 3, 16, 16], "opt": [1, 3, 16, 16], "max": [16, 3, 16, 16]}

    from app.loaders.front_door import load_model

    model = load_model(engine)
    assert model.format == "tensorrt"
    assert model.inputs[0].name == "image" and model.inputs[0].shape[1:] == (3, 16, 16)
    assert isinstance(model.inputs[0].shape[0], str)  # the dynamic batch
    (y,) = model.run({"image": np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)})
    assert y.shape == (3, 10) and np.isfinite(y).all()

    # a modified engine is refused before TensorRT deserialises it
    engine.write_bytes(engine.read_bytes()[:-1] + b"\x00")
    with pytest.raises(ModelLoadError, match="rebuild it"):
        load_model(engine)


@needs_tensorrt
def test_build_int8_engine_from_state_dict(tiny, tmp_path, monkeypatch):
    monkeypatch.delenv(FORCE_HANDOFF_ENV, raising=False)
    result = _convert(tiny["state"], tmp_path / "out", "int8", inputs=["x:2x3x32x32"], dynamic=["x:0:batch"],
                      arch="tests.models:SmallCNN")
    assert result.status == "ok"
    assert result.artifact.name == "cnn.int8.engine"
    assert result.verification.cosine > 0.9


@needs_tensorrt
def test_handoff_script_builds_a_loadable_engine(tiny, tmp_path, handoff):
    out = tmp_path / "out"
    _convert(tiny["onnx"], out, "fp16")
    run = subprocess.run([sys.executable, "tiny.tensorrt.fp16.build_engine.py", "tiny.tensorrt.fp16.onnx",
                          "--engine", "tiny.fp16.engine", "--inputs-json", "tiny.tensorrt.fp16.inputs.json",
                          "--workspace-mb", "1024"], cwd=out, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert (out / "tiny.fp16.engine.timing.cache").is_file()
    from app.loaders.front_door import load_model

    onnx_model = load_model(out / "tiny.tensorrt.fp16.onnx")
    engine_model = load_model(out / "tiny.fp16.engine")
    x = {"image": np.random.default_rng(1).standard_normal((4, 3, 16, 16)).astype(np.float32)}
    (a,), (b,) = onnx_model.run(x), engine_model.run(x)
    assert np.allclose(a, b, atol=5e-2, rtol=5e-2)
