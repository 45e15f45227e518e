"""The no-Python check: a C++ program built against the torch wheel's LibTorch loads TorchScript
artifacts and computes what Python computes. The program is built once per session (and cached per
torch version); the tests need g++ and cmake, which CI installs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from app.serving import native_check
from app.serving.native_check import (
    build_libtorch_program,
    check_native,
    run_libtorch_program,
    toolchain_problem,
)
from app.model.specs import TensorSpec
from tests.conftest import CNN_ARGS, ENCODER_ARGS

needs_toolchain = pytest.mark.skipif(toolchain_problem() is not None,
                                     reason=f"no C++ toolchain: {toolchain_problem()}")


@pytest.fixture(scope="session")
def program() -> Path:
    """The C++ check program: built here on a fresh machine (about 20-60 s), reused from the cache after."""
    path, seconds = build_libtorch_program()
    print(f"\nLibTorch check program: {path} ({'built in %.1f s' % seconds if seconds else 'cached'})")
    return path


@pytest.fixture(scope="module")
def artifacts(model_files, tmp_path_factory) -> dict[str, Path]:
    from main import main

    out = tmp_path_factory.mktemp("native-artifacts")
    assert main(["convert", str(model_files["cnn_state"]), *CNN_ARGS, "--to", "torchscript-script",
                 "--out", str(out)]) == 0
    assert main(["convert", str(model_files["encoder_state"]), *ENCODER_ARGS, "--to", "torchscript-trace",
                 "--out", str(out)]) == 0
    return {"cnn": out / "cnn.script.fp32.pt", "encoder": out / "encoder.trace.fp32.pt"}


@needs_toolchain
def test_cpp_matches_python_for_a_torchscript_artifact(program, artifacts):
    result = check_native(artifacts["cnn"])
    assert result.passed is True, result.reason
    assert result.runtime == "libtorch" and result.program == program
    v = result.verification
    assert v.rel_l2 <= 1e-6 and v.cosine > 0.999999
    # run at the recorded size and at a second batch size: the dynamic axis works natively too
    assert result.checks == ["random inputs", "second size (batch=2)"]
    assert result.timings_ms["load_ms"] > 0 and result.timings_ms["mean_run_ms"] > 0
    print(result.summary())


@needs_toolchain
def test_cpp_runs_int64_inputs_and_dynamic_sequence(program, artifacts):
    result = check_native(artifacts["encoder"])
    assert result.passed is True, result.reason
    assert any(c.startswith("second size") and "seq=" in c for c in result.checks)


@needs_toolchain
def test_program_flattens_tuple_outputs_and_keeps_dtypes(program, tmp_path):
    """Several outputs of different dtypes come back in order and bit-exact."""
    import torch

    class TwoHeads(torch.nn.Module):
        def forward(self, x: torch.Tensor, k: torch.Tensor):
            return {"scaled": x * 2.0 + k.to(x.dtype).unsqueeze(1)}, (x.argmax(dim=1), x.to(torch.float16))

    path = tmp_path / "two_heads.pt"
    torch.jit.save(torch.jit.script(TwoHeads()), str(path))
    specs = [TensorSpec("x", "float32", (3, 5), (3, 5)), TensorSpec("k", "int64", (3,), (3,))]
    x = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    k = np.array([1, -2, 7], dtype=np.int64)
    outputs, timings = run_libtorch_program(program, path, specs, {"x": x, "k": k})
    assert [o.dtype for o in outputs] == [np.float32, np.int64, np.float32]
    np.testing.assert_array_equal(outputs[0], x * np.float32(2) + k[:, None].astype(np.float32))
    np.testing.assert_array_equal(outputs[1], x.argmax(1))
    np.testing.assert_array_equal(outputs[2], x.astype(np.float16).astype(np.float32))
    assert timings["runs"] == native_check.RUNS


@needs_toolchain
def test_a_difference_fails_the_check(program, artifacts, monkeypatch, cli):
    real = native_check.run_libtorch_program

    def off_by_a_bit(*args):
        outputs, timings = real(*args)
        return [o + 0.01 for o in outputs], timings

    monkeypatch.setattr(native_check, "run_libtorch_program", off_by_a_bit)
    result = check_native(artifacts["cnn"])
    assert result.passed is False and "relative L2" in result.reason
    # the CLI checks in a fenced job, which this test's patch does not reach: the CLI's exit code for a failure
    monkeypatch.setattr(native_check, "check_native_fenced", lambda path, **kw: check_native(path))
    r = cli("native-check", artifacts["cnn"])
    assert r.code == 1 and "native check failed" in r.err


@needs_toolchain
def test_cli_native_check_json(program, artifacts, cli):
    r = cli("native-check", artifacts["cnn"], "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["passed"] is True and data["runtime"] == "libtorch"
    assert data["verification"]["rel_l2"] <= 1e-6


def test_missing_toolchain_is_a_result_not_an_exception(artifacts, monkeypatch, cli, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no compiler
    monkeypatch.delenv("CXX", raising=False)
    result = check_native(artifacts["cnn"])
    assert result.passed is None and not result.ran
    assert "cmake" in result.reason and "compiler" in result.reason
    r = cli("native-check", artifacts["cnn"])
    assert r.code == 0 and "not run" in r.out


def test_onnx_reports_why_the_c_api_check_cannot_run(model_files):
    result = check_native(model_files["cnn_onnx"])
    assert result.passed is None and result.runtime == "onnxruntime-c"
    if native_check.onnxruntime_c_headers() is None:
        assert result.reason.startswith("not feasible here: the onnxruntime wheel ships no C headers")


def test_other_formats_are_not_run(model_files):
    result = check_native(model_files["cnn_pt2"])
    assert result.passed is None and "TorchScript" in result.reason
