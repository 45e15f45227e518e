"""Every source format × every available target × every valid precision, verified, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from app.errors import Cancelled, ConversionFailed, UnsupportedCombination
from app.jobs import convert_in_process as convert
from tests.conftest import sha256
from tests.requests import CNN, ENC, request

# (source fixture key, flags, target, precision): the valid combinations users ask for most
MATRIX = [
    *[("cnn_state", CNN, t, p) for t in ("torchscript-trace", "torchscript-script") for p in ("fp32", "fp16", "int8")],
    *[("cnn_state", CNN, "torch-export", p) for p in ("fp32", "fp16")],
    *[("cnn_state", CNN, "onnx", p) for p in ("fp32", "fp16", "int8")],
    *[("encoder_state", ENC, t, p) for t in ("torchscript-script", "torch-export", "onnx") for p in ("fp32", "fp16")],
    ("encoder_state", ENC, "onnx", "int8"),
    ("mlp_pickle", dict(allow_pickle=True, trusted_globals=("tests.models.MLP",)), "torchscript-trace", "int8"),
    ("mlp_safetensors", dict(arch="tests.models:MLP"), "onnx", "fp32"),
    ("cnn_torchscript", dict(inputs=("x:1x3x32x32",)), "torchscript-trace", "fp32"),
    ("cnn_torchscript", dict(inputs=("x:1x3x32x32",)), "onnx", "fp32"),
    ("cnn_pt2", {}, "torch-export", "fp32"),
    ("cnn_pt2", {}, "onnx", "fp16"),
    ("cnn_onnx", {}, "onnx", "fp16"),
    ("cnn_onnx", {}, "onnx", "int8"),
    ("cnn_onnx_external", {}, "onnx", "fp16"),
]


@pytest.mark.parametrize("source,flags,target,precision", MATRIX,
                         ids=[f"{s}-{t}-{p}" for s, _, t, p in MATRIX])
def test_convert_verifies_and_writes_artifact_with_manifest(workdir, source, flags, target, precision):
    src = workdir[source]
    before = sha256(src)
    result = convert(request(src, target, precision, out_dir=workdir["out"], **flags))
    assert result.status == "ok", result.verification
    assert result.verification.passed, result.verification.failure
    assert len(result.verification.checks) >= 2  # fresh inputs + a differently-valued twin
    art = result.artifact
    assert art.exists() and art.parent == workdir["out"] and sum(f.stat().st_size for f in result.files) == result.size_bytes
    manifest = json.loads(result.manifest.read_text())
    assert manifest["source"]["sha256"] == before and manifest["target"] == target
    assert manifest["precision"] == precision and manifest["tools"]["torch"]
    assert manifest["files"][0]["sha256"] == sha256(art)
    assert sha256(src) == before, "the source model must never be modified"
    assert not list(workdir["out"].glob(".studio-tmp-*")), "temporaries must be gone"
    # the artifact reloads by itself (signature recorded inside it) in its own runtime
    from app.loaders.front_door import load_model

    reloaded = load_model(art)
    assert [s.name for s in reloaded.inputs] == [s["name"] for s in manifest["inputs"]]
    if precision == "fp16" and target.startswith("torch"):
        assert all(s.dtype in ("float16", "int64") for s in reloaded.inputs)


def test_encoder_dynamic_axes_survive_in_onnx(workdir):
    result = convert(request(workdir["encoder_state"], "onnx", out_dir=workdir["out"], **ENC))
    graph = onnx.load(str(result.artifact)).graph
    dims = [[d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input]
    assert dims == [["batch", "seq"], ["batch", "seq"]]
    assert any("seq=" in c for c in result.verification.checks)  # verified at a second length


def test_int8_static_with_calibration_folder_writes_qdq(workdir, tmp_path):
    import numpy as np

    calib = tmp_path / "calib"
    calib.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        np.save(calib / f"sample{i}.npy", rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    result = convert(request(workdir["cnn_onnx"], "onnx", "int8", data=calib, out_dir=workdir["out"]))
    ops = {n.op_type for n in onnx.load(str(result.artifact)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    manifest = json.loads(result.manifest.read_text())
    assert manifest["recorded"]["quantization"] == "static"
    # the data is split: few samples, so half calibrate (two), the other two evaluate
    assert manifest["recorded"]["calibration_samples"] == 2
    assert manifest["evaluation"]["samples"] == 2
    assert not any("RANDOM DATA" in w for w in result.warnings)


def test_static_int8_without_calibration_warns_loudly(workdir):
    result = convert(request(workdir["cnn_onnx"], "onnx", "int8", quantization="static", out_dir=workdir["out"]))
    assert any("RANDOM DATA" in w for w in result.warnings)


def test_tracing_data_dependent_control_flow_fails_verification_and_writes_nothing(workdir):
    from app.errors import VerificationFailed

    with pytest.raises(VerificationFailed) as e:
        convert(request(workdir["branchy_state"], "torchscript-trace", arch="tests.models:BranchyNet",
                        inputs=("x:1x16",), out_dir=workdir["out"]))
    assert "control flow" in str(e.value) and "torchscript-script" in str(e.value)
    assert not list(workdir["out"].glob("branchy*"))
    # scripting keeps the branch and passes
    ok = convert(request(workdir["branchy_state"], "torchscript-script", arch="tests.models:BranchyNet",
                         inputs=("x:1x16",), out_dir=workdir["out"]))
    assert ok.verification.passed


def test_torch_export_explains_data_dependent_control_flow(workdir):
    with pytest.raises(ConversionFailed, match="data-dependent control flow"):
        convert(request(workdir["branchy_state"], "torch-export", arch="tests.models:BranchyNet",
                        inputs=("x:1x16",), out_dir=workdir["out"]))


def test_invalid_combination_lists_valid_ones(workdir):
    with pytest.raises(UnsupportedCombination) as e:
        convert(request(workdir["cnn_state"], "torch-export", "int8", out_dir=workdir["out"], **CNN))
    assert "onnx (fp32/fp16/int8)" in str(e.value) and "PT2E" in str(e.value)


def test_existing_artifact_needs_overwrite(workdir):
    from app.errors import OutputExists

    first = convert(request(workdir["cnn_state"], "torchscript-script", out_dir=workdir["out"], **CNN))
    stamp = first.artifact.stat().st_mtime_ns
    with pytest.raises(OutputExists, match="--overwrite"):
        convert(request(workdir["cnn_state"], "torchscript-script", out_dir=workdir["out"], **CNN))
    assert first.artifact.stat().st_mtime_ns == stamp
    again = convert(request(workdir["cnn_state"], "torchscript-script", out_dir=workdir["out"], overwrite=True, **CNN))
    assert again.artifact == first.artifact


def test_cancel_leaves_no_partial_files(workdir):
    stages = []

    def should_cancel():
        return any(s.startswith("export onnx") for s in stages)

    with pytest.raises(Cancelled):
        convert(request(workdir["cnn_state"], "onnx", out_dir=workdir["out"], **CNN),
                progress=lambda stage, fraction=None: stages.append(stage), should_cancel=should_cancel)
    assert stages[0] == "load model"
    assert list(workdir["out"].iterdir()) == []


def test_progress_reports_stages_in_order(workdir):
    stages = []
    convert(request(workdir["cnn_state"], "onnx", "fp16", out_dir=workdir["out"], **CNN),
            progress=lambda stage, fraction=None: stages.append(stage))
    wanted = ["load model", "export onnx (dynamo exporter)", "convert to fp16", "verify", "write"]
    assert [s for s in stages if s in wanted] == wanted


def test_stale_temporaries_of_dead_processes_are_cleaned(workdir):
    out = workdir["out"]
    out.mkdir()
    stale = out / ".studio-tmp-999999999-abc"
    stale.mkdir()
    (stale / "half.onnx").write_bytes(b"partial")
    convert(request(workdir["cnn_state"], "torchscript-script", out_dir=out, **CNN))
    assert not stale.exists()


def test_nothing_is_littered_into_the_working_directory(workdir, tmp_path, monkeypatch):
    """ONNX Runtime's shape inference dumps files into the CWD when it gives up (it does on the
    encoder's attention); they must stay inside the private work folder."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    result = convert(request(workdir["encoder_state"], "onnx", "int8", out_dir=workdir["out"], **ENC))
    assert result.verification.passed
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in workdir["out"].iterdir()) == ["encoder.int8.onnx", "encoder.int8.onnx.manifest.json"]


def test_an_onnx_models_size_counts_its_external_data_and_openvinos_its_bin(tmp_path):
    """Size is the files that make up the model: .onnx + .onnx.data, .xml + .bin."""
    from app.pipeline import model_size
    from converters.onnx_export import OnnxConverter
    from converters.openvino import OpenVINOConverter

    files = {}
    for name, size in (("m.fp32.onnx", 100), ("m.fp32.onnx.data", 5000), ("m.openvino.fp32.xml", 30),
                       ("m.openvino.fp32.bin", 700)):
        files[name] = tmp_path / name
        files[name].write_bytes(b"x" * size)
    onnx = [files["m.fp32.onnx"], files["m.fp32.onnx.data"]]
    assert model_size(OnnxConverter(), tmp_path / "m.pt", "fp32", onnx) == 5100
    xml = [files["m.openvino.fp32.xml"], files["m.openvino.fp32.bin"]]
    assert model_size(OpenVINOConverter(), tmp_path / "m.pt", "fp32", xml) == 730
