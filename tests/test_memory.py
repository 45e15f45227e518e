"""Big models on small machines (issue 16), each mechanism on small real models: weights memory-mapped,
verification one model at a time, the memory estimate refusing or warning, out-of-memory and full-disk
children reported as such, free disk checked, weights kept in external data on both sides."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.machine import memory
from app.errors import StudioError
from app.model.inputs import make_feeds
from app.jobs import run_conversion, run_job
from app.loaders.front_door import load_model
from app.request import ConversionRequest
from tests.requests import request as make_request
from app.model.specs import TensorSpec

X = (TensorSpec("x", "float32", (1, 32)),)


def _sessions(model) -> list:
    """The ONNX Runtime sessions an ONNX model's runner holds (none once released)."""
    loaded = model._loaded_runner
    return [loaded[1].session] if loaded is not None and loaded[1].session is not None else []


def _mapped_files(tensor) -> list[str]:
    """The files whose memory mapping holds ``tensor``'s data (from /proc/self/maps)."""
    ptr = tensor.untyped_storage().data_ptr()
    found = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            start, end = (int(a, 16) for a in parts[0].split("-"))
            if start <= ptr < end and len(parts) >= 6:
                found.append(parts[5])
    return found


@pytest.mark.parametrize("kind", ["mlp_state", "mlp_safetensors"])
def test_state_dict_weights_stay_memory_mapped_from_the_file(model_files, tmp_path, kind):
    import torch

    from tests import models

    path = model_files.get(kind)
    if path is None:  # the session fixture has no .pt of the MLP: save one
        path = tmp_path / "mlp.pt"
        torch.save(models.make("mlp").state_dict(), path)
    model = load_model(path, arch="tests.models:MLP")
    params = list(model.module.parameters())
    assert params and all(str(path) in _mapped_files(p) for p in params), "weights were copied, not mapped"
    # assigned, not copied, yet the network computes what the eagerly built one does
    eager = models.make("mlp")
    eager.load_state_dict(torch.load(path, weights_only=True) if path.suffix == ".pt"
                          else __import__("safetensors.torch").torch.load_file(str(path)))
    x = np.random.default_rng(0).standard_normal((1, 32)).astype(np.float32)
    np.testing.assert_allclose(model.run({"x": x})[0], eager(torch.from_numpy(x)).detach().numpy(), rtol=1e-6)


def test_a_full_pickled_module_is_memory_mapped_too(model_files):
    model = load_model(model_files["mlp_pickle"], allow_pickle=True, arch="tests.models:MLP")
    params = list(model.module.parameters())
    assert params and all(str(model_files["mlp_pickle"]) in _mapped_files(p) for p in params)


def test_an_architecture_that_cannot_be_built_on_meta_still_loads(tmp_path):
    import torch

    arch = tmp_path / "odd.py"
    # a non-persistent buffer is not in the state dict: left on meta, so the loader builds it normally
    arch.write_text("import torch\n\nclass Odd(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
                    "        self.fc = torch.nn.Linear(4, 2)\n        self.register_buffer('scale', torch.full((2,), 2.0), "
                    "persistent=False)\n\n    def forward(self, x):\n        return self.fc(x) * self.scale\n")
    state = tmp_path / "odd.pt"
    torch.manual_seed(0)
    fc = torch.nn.Linear(4, 2)
    torch.save({"fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()}, state)
    model = load_model(state, arch=f"{arch}:Odd")
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(model.run({"x": x})[0], (fc(torch.ones(1, 4)) * 2).detach().numpy(), rtol=1e-6)


def test_verification_runs_the_source_and_releases_it_before_loading_the_artifact(model_files):
    """Source and artifact are never in memory together: every source run, then its session freed,
    then the artifact loaded."""
    from app.accuracy.verify import verify_artifact

    source = load_model(model_files["cnn_onnx"])
    events = []
    run, release = source.run, source.release
    source.run = lambda feeds: (events.append("source runs"), run(feeds))[1]
    source.release = lambda: (events.append("source released"), release())

    def load_artifact():
        events.append(f"artifact loaded (source sessions alive: {len(_sessions(source))})")
        return load_model(model_files["cnn_onnx"])

    verification = verify_artifact(source, load_artifact, "fp32")
    assert verification.passed
    runs = events.count("source runs")
    assert runs >= 2 and events == ["source runs"] * runs + ["source released",
                                                             "artifact loaded (source sessions alive: 0)"]
    assert source.run(make_feeds(source.inputs, seed=1))  # released, not broken: it builds a session again
    assert len(_sessions(source)) == 1


def _request(path, out, **kw) -> ConversionRequest:
    return make_request(path, "onnx", arch="tests.models:MLP", inputs=X, out_dir=out, **kw)


def test_a_job_that_will_not_fit_is_refused_before_anything_starts(model_files, tmp_path, monkeypatch):
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", "900M")
    out = tmp_path / "out"
    with pytest.raises(memory.NotEnoughMemory) as refused:
        run_conversion(_request(model_files["mlp_safetensors"], out))
    message = str(refused.value)
    assert "needs about 1.2 GB" in message and "only 0.90 GB is available" in message
    assert "--ignore-memory-check" in message and refused.value.exit_code == 2
    assert not out.exists()
    # the user knows better: the same job runs
    result = run_conversion(_request(model_files["mlp_safetensors"], out, ignore_memory_check=True))
    assert result.status == "ok" and result.artifact.exists()


def test_the_cli_refuses_with_one_json_object_and_exit_2(model_files, tmp_path, monkeypatch, cli):
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", "0.5G")
    out = tmp_path / "out"
    r = cli("convert", model_files["mlp_safetensors"], "--arch", "tests.models:MLP", "--to", "onnx",
            "--precision", "int8", "--input", "x:1x32", "--out", out, "--json")
    assert r.code == 2
    data = json.loads(r.out)
    assert data["error"] == "NotEnoughMemory" and "needs about" in data["message"] and not out.exists()


def test_a_tight_fit_runs_with_a_warning(model_files, tmp_path, monkeypatch):
    need = memory.estimate(memory.source_bytes(model_files["mlp_safetensors"]), "onnx", "fp32").peak
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", str(int(need / 0.9)))
    result = run_conversion(_request(model_files["mlp_safetensors"], tmp_path / "out"))
    assert result.status == "ok" and any(w.startswith("memory is tight") for w in result.warnings)
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", "64G")
    assert memory.check_memory(_request(model_files["mlp_safetensors"], tmp_path / "out")) == []


def test_the_estimate_grows_with_the_model_and_suggests_a_lighter_target(monkeypatch):
    small, big = memory.estimate(10**8, "onnx", "int8"), memory.estimate(4 * 10**9, "onnx", "int8")
    assert small.calibrated and big.peak - small.peak == pytest.approx(3.9e9 * small.factor, rel=1e-6)
    assert memory.estimate(10**9, "tensorrt", "fp16").factor == memory.DEFAULT_FACTOR
    monkeypatch.setenv("DEPLOY_STUDIO_AVAILABLE_MEMORY", "9G")
    request = make_request("big.onnx", "tensorrt", "fp16")
    with pytest.raises(memory.NotEnoughMemory, match=r"choose another target \(--to onnx --precision \w+ needs"):
        memory.check_memory(request, source=3 * 10**9)  # about 10.2 GB where 9 GB are available


def test_free_disk_is_checked_naming_the_folder(model_files, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("DEPLOY_STUDIO_FREE_DISK", f"{out}=1K")
    with pytest.raises(memory.NotEnoughDisk, match=f"the output folder {out} has 0.00 GB free.*--out DIR"):
        run_conversion(_request(model_files["mlp_safetensors"], out))
    assert not out.exists()
    # int8 also needs room in the temporary folder (ONNX Runtime's pre-quantization copy)
    import tempfile

    monkeypatch.setenv("DEPLOY_STUDIO_FREE_DISK", f"{tempfile.gettempdir()}=0;{out}=10G")  # the longest path wins
    with pytest.raises(memory.NotEnoughDisk, match="temporary folder .*TMPDIR"):
        run_conversion(_request(model_files["mlp_safetensors"], out, precision="int8"))
    assert run_conversion(_request(model_files["mlp_safetensors"], out)).status == "ok"  # fp32 writes no temp


def test_an_allocation_past_the_memory_limit_is_reported_as_out_of_memory(monkeypatch):
    probe = run_job("tests.crashers:try_everything", {"write": "/nonexistent/x", "port": 9})
    monkeypatch.setenv("DEPLOYSTUDIO_JOB_MEMORY_MB", str(probe["vm_kb"] // 1024 + 256))
    with pytest.raises(memory.OutOfMemory, match=r"ran out of memory \(peak 0\.\d\d GB\): an allocation failed") as e:
        run_job("tests.crashers:allocate", 4 << 30)
    assert "raise DEPLOYSTUDIO_JOB_MEMORY_MB=" in str(e.value) and e.value.exit_code == 1
    # a loader that took the failed allocation for a bad file (a library mapped past the limit) is reworded too
    loader = memory.explain_failure(memory.BadInput("m.pt does not run on the given inputs: x.so: failed to map "
                                                    "segment from shared object"), 2 << 30, None)
    assert isinstance(loader, memory.OutOfMemory) and "(peak 2.1 GB)" in str(loader)
    refused = memory.BadInput("m.pt asks for more memory than a job may use (layer sizes from the file)")
    assert memory.explain_failure(refused, None, None) is refused  # a hostile file stays what it is


def test_a_child_killed_like_the_oom_killer_does_is_reported_with_its_peak():
    with pytest.raises(memory.OutOfMemory) as killed:
        run_job("tests.crashers:killed_after_allocating", 300 << 20)
    message = str(killed.value)
    assert "ran out of memory (peak" in message and "SIGKILL" not in message.split("(peak")[0]
    peak = float(message.split("(peak ")[1].split(" GB")[0])
    assert peak >= 0.3  # it touched 300 MB before it died


def test_a_disk_that_fills_up_mid_write_names_the_folder(tmp_path):
    target = tmp_path / "out" / ".studio-tmp-1-x" / "model.onnx.data"
    with pytest.raises(memory.DiskFull, match=f"the disk of {target.parent} filled up while writing"):
        run_job("tests.crashers:disk_full", str(target))


def test_progress_tells_how_much_a_long_write_has_written(model_files, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    seen = []
    progress, tick = memory.written_progress(lambda s, f=None: seen.append(s), work,
                                             _request(model_files["mlp_safetensors"], tmp_path), every=0)
    progress("export onnx (dynamo exporter)", None)
    tick()
    (work / "model.onnx.data").write_bytes(b"\0" * (100 << 20))
    tick()
    tick()  # nothing new written: said once
    assert seen == ["export onnx (dynamo exporter)", "export onnx (dynamo exporter): wrote 0.1 / ~0.0 GB"]


def test_quantization_and_fp16_keep_external_weights_external(model_files, tmp_path):
    for precision in ("fp16", "int8"):
        request = make_request(model_files["cnn_onnx_external"], "onnx", precision, out_dir=tmp_path / precision)
        result = run_conversion(request)
        assert result.status == "ok" and result.verification.passed
        names = [f.name for f in result.files]
        assert names == [f"cnn_ext.{precision}.onnx", f"cnn_ext.{precision}.onnx.data"], names


def test_over_2_gb_the_pre_quantization_pass_is_skipped_with_the_reason(model_files, tmp_path, monkeypatch):
    from app.jobs import convert_in_process as convert
    from converters import onnx_precision

    monkeypatch.setattr(onnx_precision, "PRE_PROCESS_LIMIT", 1000)  # the small model stands in for a big one
    request = make_request(model_files["cnn_onnx_external"], "onnx", "int8", out_dir=tmp_path)
    result = convert(request)
    assert result.status == "ok"
    assert any("skipped ONNX Runtime's pre-quantization pass" in w and "2 GB" in w for w in result.warnings)
    manifest = json.loads(result.manifest.read_text())
    assert manifest["recorded"]["quant_pre_process"].startswith("skipped:")


def test_sizes_parse_as_users_write_them():
    assert memory.parse_size("3G") == 3 * 10**9 and memory.parse_size("512MiB") == 512 << 20
    assert memory.parse_size("1000") == 1000 and memory.parse_size("1.5GB") == 1_500_000_000
    with pytest.raises(ValueError):
        memory.parse_size("lots")
    assert isinstance(memory.NotEnoughMemory("x"), StudioError)


def test_streamed_fp16_writes_what_the_in_memory_converter_does(model_files, tmp_path):
    """The big-model fp16 path (weights read and written a slice at a time) against ONNX Runtime's
    converter on the whole model in memory: same tensors, bit for bit, and the same outputs."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from converters import onnx_external

    src = model_files["cnn_onnx_external"]
    files = onnx_external.to_fp16_streamed(src, tmp_path / "cnn.fp16.onnx")
    assert [f.name for f in files] == ["cnn.fp16.onnx", "cnn.fp16.onnx.data"]
    streamed = onnx.load(str(files[0]))
    reference = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    ours = {t.name: onnx.numpy_helper.to_array(t) for t in streamed.graph.initializer}
    theirs = {t.name: onnx.numpy_helper.to_array(t) for t in reference.graph.initializer}
    assert ours.keys() == theirs.keys()
    for name, array in ours.items():
        assert array.dtype == theirs[name].dtype and np.array_equal(array, theirs[name]), name
    assert any(a.dtype == np.float16 and a.size > 100 for a in ours.values())
    feeds = make_feeds(load_model(src).inputs, seed=2)
    got = ort.InferenceSession(str(files[0])).run(None, feeds)[0]
    want = ort.InferenceSession(reference.SerializeToString()).run(None, feeds)[0]
    np.testing.assert_array_equal(got, want)
    assert onnx_external.to_fp16_streamed(model_files["cnn_onnx"], tmp_path / "x.onnx") is None  # nothing external


@pytest.fixture(scope="module")
def mlp_external(tmp_path_factory):
    """The test MLP as ONNX (Gemm layers) with every weight in external data."""
    import onnx
    import torch

    from tests import models

    folder = tmp_path_factory.mktemp("mlp_external")
    embedded = folder / "embedded.onnx"
    torch.onnx.export(models.make("mlp"), (torch.randn(1, 32),), str(embedded), input_names=["x"], dynamo=True)
    path = folder / "mlp.onnx"
    onnx.save_model(onnx.load(str(embedded)), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="mlp.onnx.data", size_threshold=0)
    embedded.unlink()
    return path


def test_streamed_int8_computes_what_onnx_runtimes_quantizer_does(mlp_external, tmp_path):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from converters import onnx_external

    names = onnx_external.to_int8_dynamic_streamed(mlp_external, tmp_path / "mlp.int8.onnx")
    assert len(names) == 2  # both Gemm layers
    quantize_dynamic(str(mlp_external), str(tmp_path / "ort.onnx"), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Gemm"])
    feeds = make_feeds(load_model(mlp_external).inputs, seed=4)
    ours = ort.InferenceSession(str(tmp_path / "mlp.int8.onnx")).run(None, feeds)[0]
    theirs = ort.InferenceSession(str(tmp_path / "ort.onnx")).run(None, feeds)[0]
    source = ort.InferenceSession(str(mlp_external)).run(None, feeds)[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    assert 0 < np.abs(ours - source).max() < 0.05  # quantized, and close
    import onnx

    graph = onnx.load(str(tmp_path / "mlp.int8.onnx"), load_external_data=False).graph
    int8 = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 2]
    assert len(int8) == 2 and all(t.data_location == onnx.TensorProto.EXTERNAL for t in int8)
    assert sorted(tuple(t.dims) for t in int8) == [(32, 64), (64, 5)]  # [K, N], as MatMulInteger reads them


def test_over_2_gb_int8_streams_the_weights_and_verifies(mlp_external, tmp_path, monkeypatch):
    from app.jobs import convert_in_process as convert
    from converters import onnx_precision

    monkeypatch.setattr(onnx_precision, "PRE_PROCESS_LIMIT", 1000)  # the small model stands in for a big one
    result = convert(make_request(mlp_external, "onnx", "int8", out_dir=tmp_path))
    assert result.status == "ok" and result.verification.passed
    manifest = json.loads(result.manifest.read_text())
    assert manifest["recorded"]["int8_weights"] == "streamed from external data (2 MatMul/Gemm nodes)"
    assert [f.name for f in result.files] == ["mlp.int8.onnx", "mlp.int8.onnx.data"]


def test_verification_sessions_map_external_weights_instead_of_copying_them(model_files):
    """ONNX Runtime pre-packs MatMul weights into copies of its own; for a model with external data the
    verification session keeps them in the file's mapping (the page cache) instead."""
    external = load_model(model_files["cnn_onnx_external"])
    embedded = load_model(model_files["cnn_onnx"])
    feeds = make_feeds(external.inputs, seed=5)
    np.testing.assert_allclose(external.run(feeds)[0], embedded.run(feeds)[0], rtol=1e-5, atol=1e-6)

    def prepacking(model) -> str:
        session = _sessions(model)[0]
        return session.get_session_options().get_session_config_entry("session.disable_prepacking")

    assert prepacking(external) == "1"
    with pytest.raises(Exception):  # never set: ONNX Runtime's default (pre-packed, fastest)
        prepacking(embedded)
