"""Triton bundles: every config.pbtxt parses with Triton's own ModelConfig protobuf and matches the
model's signature; one bundle per platform (ONNX Runtime, LibTorch, TensorRT plan)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2  # the dev extra: tritonclient[grpc]

from app.errors import BadInput, OutputExists
from app.artifacts.atomic_output import TMP_PREFIX
from app.serving.triton import build_bundle, export_for_serving
from tests.conftest import CNN_ARGS, ENCODER_ARGS


def parse(folder: Path) -> model_config_pb2.ModelConfig:
    """Parse a bundle's config with Triton's protobuf (a typo or unknown field raises here)."""
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def io(tensors) -> list[tuple[str, str, list[int]]]:
    return [(t.name, model_config_pb2.DataType.Name(t.data_type), list(t.dims)) for t in tensors]


KIND_CPU = model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_CPU")
KIND_GPU = model_config_pb2.ModelInstanceGroup.Kind.Value("KIND_GPU")


@pytest.fixture(scope="module")
def artifacts(model_files, tmp_path_factory) -> dict[str, Path]:
    """Artifacts our pipeline wrote (with manifests and recorded signatures)."""
    from main import main

    out = tmp_path_factory.mktemp("serving-artifacts")
    assert main(["convert", str(model_files["cnn_state"]), *CNN_ARGS, "--to", "torchscript-script",
                 "--out", str(out)]) == 0
    assert main(["convert", str(model_files["encoder_state"]), *ENCODER_ARGS, "--to", "torchscript-script",
                 "--out", str(out)]) == 0
    return {"cnn_ts": out / "cnn.script.fp32.pt", "encoder_ts": out / "encoder.script.fp32.pt"}


def no_temporaries(repo: Path) -> bool:
    return not list(repo.glob(TMP_PREFIX + "*"))


# ---------------------------------------------------------------------------- the three platforms
def test_onnx_bundle_matches_the_model(model_files, tmp_path):
    repo = tmp_path / "repo"
    folder = build_bundle(model_files["cnn_onnx"], repo)
    assert folder == repo / "cnn"
    assert (folder / "1" / "model.onnx").read_bytes() == model_files["cnn_onnx"].read_bytes()
    c = parse(folder)
    assert c.name == "cnn" and c.platform == "onnxruntime_onnx"
    # the ONNX file: image[batch, 3, 32, 32] -> logits[batch, 10]; the batch axis leaves dims
    assert c.max_batch_size == 8
    assert io(c.input) == [("image", "TYPE_FP32", [3, 32, 32])]
    assert io(c.output) == [("logits", "TYPE_FP32", [10])]
    assert c.HasField("dynamic_batching")
    assert [(g.count, g.kind) for g in c.instance_group] == [(1, KIND_CPU)]
    assert not c.HasField("optimization")
    assert no_temporaries(repo)


def test_torchscript_bundle_uses_forward_names_and_indexed_outputs(artifacts, tmp_path):
    folder = build_bundle(artifacts["cnn_ts"], tmp_path / "repo", name="cnn")
    assert (folder / "1" / "model.pt").read_bytes() == artifacts["cnn_ts"].read_bytes()
    c = parse(folder)
    assert c.platform == "pytorch_libtorch"
    assert c.max_batch_size == 8 and c.HasField("dynamic_batching")
    # forward(self, x): the argument name; outputs have no names in TorchScript
    assert io(c.input) == [("x", "TYPE_FP32", [3, 32, 32])]
    assert io(c.output) == [("OUTPUT__0", "TYPE_FP32", [10])]
    readme = (folder / "README.md").read_text()
    assert "OUTPUT__0" in readme and "forward()" in readme


def test_torchscript_int64_inputs_with_dynamic_sequence(artifacts, tmp_path):
    c = parse(build_bundle(artifacts["encoder_ts"], tmp_path / "repo"))
    assert c.max_batch_size == 8
    assert io(c.input) == [("input_ids", "TYPE_INT64", [-1]), ("attention_mask", "TYPE_INT64", [-1])]
    # the pooled output does not depend on the sequence length: found by running at two sizes
    assert io(c.output) == [("OUTPUT__0", "TYPE_FP32", [32])]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_openvino_ir_bundle_for_the_openvino_backend(model_files, tmp_path, precision):
    from app.machine.hardware import CPU_FLAGS_ENV, detect_cpu
    from main import main

    out = tmp_path / "ir"
    if precision == "bf16" and not detect_cpu().bf16:
        pytest.skip(f"this CPU has no BF16 (the refusal is tested in test_openvino.py; {CPU_FLAGS_ENV} cannot add it)")
    assert main(["convert", str(model_files["cnn_state"]), *CNN_ARGS, "--to", "openvino", "--precision", precision,
                 "--out", str(out)]) == 0
    xml = out / f"cnn.openvino.{precision}.xml"
    folder = build_bundle(xml, tmp_path / "repo")
    assert folder.name == f"cnn_openvino_{precision}"
    assert (folder / "1" / "model.xml").read_bytes() == xml.read_bytes()
    assert (folder / "1" / "model.bin").read_bytes() == xml.with_suffix(".bin").read_bytes()
    assert sorted(p.name for p in (folder / "1").iterdir()) == ["model.bin", "model.xml"]
    c = parse(folder)
    assert c.backend == "openvino" and c.platform == ""  # Triton's OpenVINO backend, named by `backend:`
    assert c.max_batch_size == 8 and c.HasField("dynamic_batching")
    assert io(c.input) == [("x", "TYPE_FP32", [3, 32, 32])]
    assert io(c.output) == [("output", "TYPE_FP32", [10])]
    assert [(g.count, g.kind) for g in c.instance_group] == [(1, KIND_CPU)]
    params = {k: v.string_value for k, v in c.parameters.items()}
    assert params["PERFORMANCE_HINT"] == "LATENCY"
    assert params.get("HINT_BF16") == ("YES" if precision == "bf16" else None)  # bf16 only where it was verified
    assert "model.bin" in (folder / "README.md").read_text()
    with pytest.raises(BadInput, match="CPU only"):
        build_bundle(xml, tmp_path / "repo2", kind="gpu")
    assert no_temporaries(tmp_path / "repo")


def test_tensorrt_plan_from_its_manifest(model_files, tmp_path):
    """Without TensorRT here: the plan file plus the manifest our pipeline writes beside it."""
    engine = tmp_path / "cnn.fp16.engine"
    engine.write_bytes(b"ftrt" + bytes(64))  # never parsed: the manifest gives the I/O
    manifest = {"artifact": engine.name, "target": "tensorrt", "precision": "fp16",
                "inputs": [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 32, 32], "example": [1, 3, 32, 32]}],
                "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 10], "example": [1, 10]}]}
    (tmp_path / (engine.name + ".manifest.json")).write_text(json.dumps(manifest))
    folder = build_bundle(engine, tmp_path / "repo", max_batch=32)
    assert (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    c = parse(folder)
    assert c.name == "cnn_fp16" and c.platform == "tensorrt_plan"
    assert c.max_batch_size == 32
    assert io(c.input) == [("image", "TYPE_FP32", [3, 32, 32])]
    assert io(c.output) == [("logits", "TYPE_FP32", [10])]
    assert [(g.count, g.kind) for g in c.instance_group] == [(1, KIND_GPU)]  # plans run on the GPU
    assert "--gpus all" in (folder / "README.md").read_text()
    with pytest.raises(BadInput, match="GPU only"):
        build_bundle(engine, tmp_path / "repo2", kind="cpu")


def test_tensorrt_plan_without_manifest_is_refused_clearly(tmp_path):
    engine = tmp_path / "bare.plan"
    engine.write_bytes(b"ftrt" + bytes(64))
    with pytest.raises(BadInput, match="manifest"):
        build_bundle(engine, tmp_path / "repo")


# ---------------------------------------------------------------------------- options
def test_onnx_runtime_tensorrt_accelerator_and_gpu_instances(model_files, tmp_path):
    c = parse(build_bundle(model_files["cnn_onnx"], tmp_path / "repo", instances=2, kind="gpu", ort_tensorrt=True))
    assert [(g.count, g.kind) for g in c.instance_group] == [(2, KIND_GPU)]
    accelerators = c.optimization.execution_accelerators.gpu_execution_accelerator
    assert [a.name for a in accelerators] == ["tensorrt"]
    assert accelerators[0].parameters["precision_mode"] == "FP32"
    with pytest.raises(BadInput, match="--kind gpu"):
        build_bundle(model_files["cnn_onnx"], tmp_path / "repo2", ort_tensorrt=True)


def test_batching_off_keeps_the_full_shape(model_files, tmp_path):
    c = parse(build_bundle(model_files["cnn_onnx"], tmp_path / "repo", max_batch=0))
    assert c.max_batch_size == 0 and not c.HasField("dynamic_batching")
    assert io(c.input) == [("image", "TYPE_FP32", [-1, 3, 32, 32])]
    assert io(c.output) == [("logits", "TYPE_FP32", [-1, 10])]


def test_fixed_batch_model_has_no_batching_and_refuses_max_batch(model_files, tmp_path, cli):
    """A scripted file without a recorded signature, given a fixed shape: nothing to batch over."""
    ts = model_files["cnn_torchscript"]
    bundle = export_for_serving(ts, tmp_path / "repo", inputs=[_spec("x", (2, 3, 32, 32))])
    c = parse(bundle.path)
    assert c.max_batch_size == 0
    assert io(c.input) == [("x", "TYPE_FP32", [2, 3, 32, 32])]
    assert io(c.output) == [("OUTPUT__0", "TYPE_FP32", [2, 10])]
    r = cli("serve-bundle", ts, "--out", tmp_path / "repo2", "--input", "x:2x3x32x32", "--max-batch", "4")
    assert r.code == 2 and "no dynamic batch axis" in r.err
    # the same file with the batch axis declared dynamic
    r = cli("serve-bundle", ts, "--out", tmp_path / "repo3", "--input", "x:1x3x32x32", "--dynamic", "x:0:batch",
            "--max-batch", "16", "--json")
    assert r.code == 0, r.err
    c = parse(Path(json.loads(r.out)["model"]))
    assert c.max_batch_size == 16 and io(c.input) == [("x", "TYPE_FP32", [3, 32, 32])]


def test_guessed_shapes_are_flagged(model_files, tmp_path):
    bundle = export_for_serving(model_files["cnn_torchscript"], tmp_path / "repo")
    assert any("guess" in w for w in bundle.warnings)
    assert "warning" in (bundle.path / "README.md").read_text()
    parse(bundle.path)


def test_onnx_external_data_travels_with_the_model(model_files, tmp_path):
    folder = build_bundle(model_files["cnn_onnx_external"], tmp_path / "repo", name="ext")
    assert (folder / "1" / "model.onnx").exists()
    assert (folder / "1" / "cnn_ext.onnx.data").exists()
    from app.loaders.front_door import load_model

    import numpy as np

    copy = load_model(folder / "1" / "model.onnx")  # the copy runs: its weights were found
    out = copy.run({"image": np.zeros((1, 3, 32, 32), np.float32)})
    assert out[0].shape == (1, 10)


# ---------------------------------------------------------------------------- writing
def test_existing_model_folder_needs_overwrite(model_files, tmp_path):
    repo = tmp_path / "repo"
    folder = build_bundle(model_files["cnn_onnx"], repo, name="m")
    (folder / "stale.txt").write_text("from an older export")
    with pytest.raises(OutputExists, match="--overwrite"):
        build_bundle(model_files["cnn_onnx"], repo, name="m")
    folder = build_bundle(model_files["cnn_onnx"], repo, name="m", max_batch=4, overwrite=True)
    assert not (folder / "stale.txt").exists()
    assert parse(folder).max_batch_size == 4
    assert no_temporaries(repo)
    assert sorted(p.name for p in repo.iterdir()) == ["m"]


def test_bad_names_and_sources_exit_2(model_files, tmp_path, cli):
    r = cli("serve-bundle", model_files["cnn_onnx"], "--out", tmp_path / "repo", "--name", "../evil")
    assert r.code == 2 and "--name" in r.err
    r = cli("serve-bundle", model_files["cnn_pt2"], "--out", tmp_path / "repo")
    assert r.code == 2 and "torch-export" in r.err
    r = cli("serve-bundle", model_files["cnn_state"], "--out", tmp_path / "repo")
    assert r.code == 2 and "convert it first" in r.err
    r = cli("serve-bundle", model_files["cnn_onnx"], "--out", tmp_path / "repo")
    assert r.code == 0
    r = cli("serve-bundle", model_files["cnn_onnx"], "--out", tmp_path / "repo")
    assert r.code == 2 and "exists already" in r.err


def test_cli_prints_the_commands_and_the_readme_has_them(model_files, tmp_path, cli):
    repo = tmp_path / "my repo"
    r = cli("serve-bundle", model_files["cnn_onnx"], "--out", repo, "--name", "classifier")
    assert r.code == 0, r.err
    assert "docker run" in r.out and "perf_analyzer -m classifier" in r.out
    readme = (repo / "classifier" / "README.md").read_text()
    assert f"-v '{repo.resolve()}':/models" in readme  # quoted: the path has a space
    assert "tritonserver --model-repository=/models" in readme
    assert "perf_analyzer -m classifier" in readme and "-b 4" in readme
    data = json.loads(cli("serve-bundle", model_files["cnn_onnx"], "--out", repo, "--name", "classifier",
                          "--overwrite", "--json").out)
    assert data["platform"] == "onnxruntime_onnx" and data["inputs"][0]["dims"] == [3, 32, 32]
    assert sorted(Path(f).name for f in data["files"]) == ["README.md", "config.pbtxt", "model.onnx"]


def test_every_written_config_parses(model_files, artifacts, tmp_path):
    """All options together over every source: nothing Triton's parser rejects."""
    sources = [model_files["cnn_onnx"], artifacts["cnn_ts"], artifacts["encoder_ts"]]
    for i, src in enumerate(sources):
        for kind in ("cpu", "gpu"):
            for max_batch in (None, 0):
                folder = build_bundle(src, tmp_path / "all", name=f"m{i}_{kind}_{max_batch}", kind=kind,
                                      max_batch=max_batch, instances=3)
                c = parse(folder)
                assert c.instance_group[0].count == 3
                assert (c.max_batch_size > 0) == (max_batch is None)
    shutil.rmtree(tmp_path / "all")


def _spec(name, shape):
    from app.model.specs import TensorSpec

    return TensorSpec(name, "float32", shape, shape)


def test_names_with_quotes_backslashes_and_line_breaks_round_trip(tmp_path, cli):
    """Tensor names are the model's own: written escaped, Triton's parser reads back each one as it is."""
    import onnx
    from onnx import TensorProto, helper

    names = ['in"put\\0', "out'put\nnext line\tand\r\x01\x7f é ✓"]
    graph = helper.make_graph([helper.make_node("Relu", [names[0]], [names[1]])], "g",
                              [helper.make_tensor_value_info(names[0], TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info(names[1], TensorProto.FLOAT, ["batch", 4])])
    artifact = tmp_path / 'a "quoted"\nfile.onnx'  # its name goes into a comment of the config
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(artifact))
    r = cli("serve-bundle", artifact, "--out", tmp_path / "repo", "--name", "relu")
    assert r.code == 0, r.err
    text = (tmp_path / "repo" / "relu" / "config.pbtxt").read_text(encoding="utf-8")
    c = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert c.name == "relu"
    assert io(c.input) == [(names[0], "TYPE_FP32", [4])] and io(c.output) == [(names[1], "TYPE_FP32", [4])]
    assert text.startswith("# Triton model configuration") and '# from a "quoted"?file.onnx (onnx)' in text
