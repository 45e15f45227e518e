"""The LiteRT target (``--to litert``): ``.tflite`` models by litert-torch at fp32/fp16/int8, verified and
evaluated by the LiteRT interpreter with its XNNPACK delegate, the delegation report, the hand-off files,
and ``.tflite`` files as sources for inspect, bench and evaluate. Real models: a CNN trained on
scikit-learn's digits, the test MLP. Without the ``[litert]`` extra only the install line is checked."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DIGITS_ARGS, REPO

needs_litert = pytest.mark.skipif(
    importlib.util.find_spec("litert_torch") is None or importlib.util.find_spec("ai_edge_litert") is None,
    reason="the LiteRT extra is not installed (pip install -e '.[litert]'; not in [dev]: see pyproject.toml)")


def test_without_litert_the_target_says_how_to_install_it(tmp_path, digits):
    argv = ["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "litert", "--out", str(tmp_path / "out")]
    hide = "import sys; sys.modules['ai_edge_litert'] = None; sys.modules['litert_torch'] = None"
    code = f"{hide}; from main import main; sys.exit(main({argv!r}))"
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2, run.stderr
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("error: --to litert") and "pip install" in line and "[litert]" in line
    assert "Traceback" not in run.stderr and not (tmp_path / "out").exists()


def test_the_kind_is_declared_and_sniffed_by_its_magic(tmp_path):
    """Declared without the extra too: the front door names .tflite among what it reads."""
    from app.loaders import kinds
    from app.loaders.front_door import sniff_format

    kind = kinds.get_kind("litert")
    assert ".tflite" in kinds.model_suffixes() and ".tflite (LiteRT)" in kinds.supported() and kind.draws
    path = tmp_path / "renamed.bin"
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))
    assert sniff_format(path) == "litert"


@pytest.fixture(scope="module")
def digits_tflite(tmp_path_factory, digits):
    """The digits CNN at fp32 and int8 (calibrated on the digit images), converted once."""
    from main import main

    out = tmp_path_factory.mktemp("tflite")
    for precision in ("fp32", "int8"):
        assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "litert", "--precision", precision,
                     "--data", str(digits["images"]), "--out", str(out)]) == 0
    return {p: out / f"digits.{p}.tflite" for p in ("fp32", "int8")}


def _manifest(path):
    return json.loads(path.with_name(path.name + ".manifest.json").read_text())


@needs_litert
def test_fp32_model_verifies_at_float_tolerance_and_says_where_its_operators_run(digits_tflite):
    m = _manifest(digits_tflite["fp32"])
    assert m["status"] == "ok" and m["verification"]["passed"] and m["verification"]["enforced"]
    assert m["verification"]["cosine"] > 0.99999 and m["verification"]["max_abs_err"] < 1e-3
    assert m["evaluation"]["top1_agreement"] == 1.0
    d = m["recorded"]["delegation"]
    assert d["delegated"]["FULLY_CONNECTED"] == 1 and d["delegated"].get("CONV_2D", 0) >= 2
    assert d["builtin_count"] == 0 and d["delegate_calls"] >= 1 and "run in XNNPACK" in d["summary"]
    assert m["recorded"]["litert_torch"].startswith("0.") and m["recorded"]["backend"] == "XNNPACK"


@needs_litert
def test_int8_model_is_calibrated_keeps_float_edges_and_the_digits(digits_tflite):
    from app.runtimes.litert import load_tflite

    m = _manifest(digits_tflite["int8"])
    rec = m["recorded"]
    assert rec["weights"] == "int8 symmetric per channel" and rec["calibration_samples"] > 0
    assert "random" not in rec["calibration"] and rec["float_input_layers"]        # the stem convolution
    e = m["evaluation"]
    assert e["top1_agreement"] >= 0.95 and e["cosine_mean"] > 0.99        # behaviour, not one CPU's figures
    assert rec["delegation"]["delegated"].get("QUANTIZE", 0) >= 1 and rec["delegation"]["builtin_count"] == 0
    model = load_tflite(digits_tflite["int8"])      # the image in and the logits out stay float
    assert model.inputs[0].dtype == "float32" and model.outputs[0].dtype == "float32"
    assert digits_tflite["int8"].stat().st_size < 0.8 * digits_tflite["fp32"].stat().st_size


@needs_litert
def test_handoff_samples_reproduce_on_the_interpreter_and_the_readme_names_the_signature(digits_tflite):
    from app.runtimes.litert import load_tflite

    path = digits_tflite["fp32"]
    readme = path.with_name(path.name + ".README.md").read_text()
    assert "| x | float32 | 1×1×8×8 |" in readme and "```kotlin" in readme and "```cpp" in readme
    samples = np.load(path.with_name(path.name + ".samples.npz"))
    model = load_tflite(path)                      # names from the manifest beside it
    assert [s.name for s in model.inputs] == ["x"]
    out = model.run({"x": samples["sample0/input/x"]})[0]
    np.testing.assert_allclose(out, samples["sample0/expected/output"], rtol=0, atol=1e-5)
    assert np.abs(samples["sample0/source/output"] - out).max() < 1e-3
    names = {f["name"] for f in _manifest(path)["files"]}
    assert {path.name + ".samples.npz", path.name + ".README.md"} <= names


@needs_litert
def test_tflite_is_a_source_for_inspect_bench_and_evaluate(cli, digits, digits_tflite):
    r = cli("inspect", digits_tflite["int8"], "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["format"] == "litert" and info["inputs"][0]["name"] == "x"
    assert info["delegation"]["builtin_count"] == 0 and "run in XNNPACK" in info["delegation"]["summary"]
    r = cli("bench", digits["state"], *digits_tflite.values(), *DIGITS_ARGS, "--threads", "1", "--warmup", "1",
            "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0", "--rounds", "1", "--json")
    assert r.code == 0, r.err
    rows = [row for row in json.loads(r.out)["results"] if row["runtime"] == "litert"]
    assert {row["precision"] for row in rows} == {"fp32", "int8"} and all(row["p50_ms"] > 0 for row in rows)
    r = cli("evaluate", digits["state"], digits_tflite["fp32"], *DIGITS_ARGS, "--data", digits["images"], "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["artifacts"][0]["evaluation"]["top1_agreement"] == 1.0


@needs_litert
def test_fp16_weights_and_dynamic_range_int8_of_a_pickled_mlp(cli, model_files, tmp_path):
    sizes = {}
    for precision in ("fp32", "fp16", "int8"):
        r = cli("convert", model_files["mlp_pickle"], "--allow-pickle", "--trust-global", "tests.models.MLP",
                "--to", "litert", "--precision", precision, "--out", tmp_path, "--json")
        assert r.code == 0, r.err
        data = json.loads(r.out)
        assert data["verification"]["passed"], data["verification"]
        sizes[precision] = data["size_bytes"]
        recorded = _manifest(tmp_path / f"mlp_full.{precision}.tflite")["recorded"]
    assert "dynamic" in recorded["quantization_choice"] and "dynamic range" in recorded["activations"]
    assert sizes["fp16"] < 0.7 * sizes["fp32"] and sizes["int8"] < 0.6 * sizes["fp32"]


@needs_litert
def test_an_exported_program_converts(cli, model_files, tmp_path):
    r = cli("convert", model_files["cnn_pt2"], "--to", "litert", "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["verification"]["cosine"] > 0.99999


def _weights(tmp_path, name):
    import torch

    from tests import models

    path = tmp_path / f"{name}.pt"
    torch.manual_seed(0)
    torch.save(getattr(models, name)().state_dict(), path)
    return path


@needs_litert
def test_delegation_report_names_an_operator_xnnpack_does_not_take(cli, tmp_path):
    r = cli("convert", _weights(tmp_path, "RunningSumNet"), "--arch", "tests.models:RunningSumNet", "--input",
            "x:1x1x8x8", "--to", "litert", "--out", tmp_path / "out", "--json")
    data = json.loads(r.out)
    assert r.code == 0, r.err
    assert data["delegation"]["builtin"] == {"CUMSUM": 1}
    assert "CUMSUM ×1" in data["delegation"]["summary"] and any("CUMSUM" in w for w in data["warnings"])


@needs_litert
def test_an_operator_litert_cannot_convert_is_named_and_nothing_is_written(cli, tmp_path):
    r = cli("convert", _weights(tmp_path, "ErfinvNet"), "--arch", "tests.models:ErfinvNet", "--input", "x:2x16",
            "--to", "litert", "--out", tmp_path / "out")
    assert r.code == 1
    line = r.err.strip().splitlines()[-1]
    assert "aten.erfinv" in line and "nothing was written" in line and "Traceback" not in r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@needs_litert
def test_targets_row_and_advice(cli):
    r = cli("targets", "--json")
    row = next(t for t in json.loads(r.out)["targets"] if t["target"] == "litert")
    assert row["available"] and set(row["precisions"]) >= {"fp32", "fp16", "int8"}
    assert "XNNPACK" in row["advice"]["int8"]["why"] and row["advice"]["fp16"]["expected"] == "no speed-up"


@needs_litert
def test_pretrained_efficientnet_lite0_fp32_verifies_at_float_tolerance(cli, tmp_path):
    """The pretrained weights are stored channels-last: litert-torch 0.10 read them as row-major (cosine -0.1 to
    the source, refused by verification) until the converter made them contiguous (converters.litert.contiguous)."""
    from tests import photos

    r = cli("convert", photos.weights("lite0"), "--arch", "tests.photos:efficientnet_lite0", "--input",
            "x:1x3x224x224", "--to", "litert", "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["verification"]["passed"] and data["verification"]["cosine"] > 0.99999
    assert data["delegation"]["builtin_count"] == 0


@needs_litert
def test_int8_quantizes_a_convolution_and_its_relu6_as_one_range(cli, tmp_path):
    """Two convolutions clamped by ReLU6 with pre-clamp outputs about ±40 wide: quantized over that range (the
    quantizer's own way) the clamped 0..6 channels lose their steps; as one pattern (converters.litert.fuse_clamps)
    the int8 model keeps the source, the clamp is fused and everything runs in XNNPACK."""
    import torch

    from tests.models import WideConvReLU6

    state = tmp_path / "wide.pt"
    torch.save(WideConvReLU6().state_dict(), state)
    data, rng = tmp_path / "data", np.random.default_rng(0)
    data.mkdir()
    for i in range(24):
        np.save(data / f"sample{i}.npy", rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    r = cli("convert", state, "--arch", "tests.models:WideConvReLU6", "--input", "x:1x3x16x16",
            "--to", "litert", "--precision", "int8", "--data", data, "--out", tmp_path / "out", "--json")
    out = json.loads(r.out)
    assert r.code == 0, out
    assert not out["delegation"]["builtin"] and "RELU6" not in out["delegation"]["delegated"], out["delegation"]
    assert out["evaluation"]["cosine_mean"] > 0.999, out["evaluation"]
