"""The ExecuTorch target (``--to executorch``): XNNPACK-lowered ``.pte`` programs at fp32/fp16/int8,
verified and evaluated by ExecuTorch's own runtime, their delegation report, the hand-off files, and
``.pte`` files as sources for inspect, bench and evaluate. Real models: a CNN trained on scikit-learn's
digits and the pretrained all-MiniLM-L6-v2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import DIGITS_ARGS, REPO

pytest.importorskip("executorch", reason="the ExecuTorch extra is not installed (pip install -e '.[executorch]')")


def _convert(cli, digits, out, precision, *extra):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--dynamic", "x:0:batch", "--to", "executorch",
            "--precision", precision, "--data", digits["images"], "--out", out, "--json", *extra)
    return r, json.loads(r.out)


@pytest.fixture(scope="module")
def digits_pte(tmp_path_factory, digits):
    """The digits CNN at fp32 and int8 (calibrated on the digit images), converted once."""
    from main import main

    out = tmp_path_factory.mktemp("pte")
    for precision in ("fp32", "int8"):
        assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--dynamic", "x:0:batch", "--to", "executorch",
                     "--precision", precision, "--data", str(digits["images"]), "--out", str(out)]) == 0
    return {p: out / f"digits.xnnpack.{p}.pte" for p in ("fp32", "int8")}


def _manifest(pte):
    return json.loads(pte.with_name(pte.name + ".manifest.json").read_text())


def test_fp32_program_verifies_at_float_tolerance_and_says_where_its_operators_run(digits_pte):
    m = _manifest(digits_pte["fp32"])
    assert m["status"] == "ok" and m["verification"]["passed"] and m["verification"]["enforced"]
    assert m["verification"]["cosine"] > 0.99999 and m["verification"]["max_abs_err"] < 1e-3
    assert "second size" in "; ".join(m["verification"]["checks"])     # the batch axis stayed dynamic
    assert m["evaluation"]["top1_agreement"] == 1.0
    d = m["recorded"]["delegation"]
    assert d["delegated"]["aten.convolution"] == 3 and d["delegated"]["aten.linear"] == 1
    assert d["delegated_count"] > d["portable_count"] and "run in XNNPACK" in d["summary"]
    assert m["recorded"]["executorch"].startswith("1.") and m["recorded"]["backend"] == "XNNPACK"


def test_int8_program_is_calibrated_on_the_data_and_keeps_the_digits(digits_pte):
    m = _manifest(digits_pte["int8"])
    rec = m["recorded"]
    assert rec["weights"] == "int8 symmetric per channel" and rec["calibration_samples"] > 0
    assert "random" not in rec["calibration"]
    e = m["evaluation"]
    assert e["top1_agreement"] >= 0.95 and e["cosine_mean"] > 0.99        # behaviour, not one CPU's figures
    assert rec["delegation"]["delegated"].get("quantized_decomposed.quantize_per_tensor", 0) > 0
    assert digits_pte["int8"].stat().st_size < 0.6 * digits_pte["fp32"].stat().st_size


def test_handoff_samples_reproduce_on_the_runtime_and_the_readme_names_the_signature(digits_pte):
    from app.runtimes.executorch import load_pte

    pte = digits_pte["fp32"]
    readme = pte.with_name(pte.name + ".README.md").read_text()
    import importlib.metadata

    assert importlib.metadata.version("executorch") in readme and "| x | float32 | batch×1×8×8 |" in readme
    samples = np.load(pte.with_name(pte.name + ".samples.npz"))
    model = load_pte(pte)                      # names and axes from the manifest beside it
    assert [s.name for s in model.inputs] == ["x"] and model.inputs[0].shape[0] == "batch"
    out = model.run({"x": samples["sample0/input/x"]})[0]
    np.testing.assert_allclose(out, samples["sample0/expected/output"], rtol=0, atol=1e-5)
    assert np.abs(samples["sample0/source/output"] - out).max() < 1e-3
    names = {f["name"] for f in _manifest(pte)["files"]}
    assert names == {pte.name, pte.name + ".samples.npz", pte.name + ".README.md"}


def test_pte_is_a_source_for_inspect_bench_and_evaluate(cli, digits, digits_pte, tmp_path):
    r = cli("inspect", digits_pte["int8"], "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["format"] == "executorch" and info["methods"] == ["forward"]
    assert info["inputs"][0]["name"] == "x" and "XnnpackBackend" in info["delegation"]["delegate_calls"]
    r = cli("bench", digits["state"], *digits_pte.values(), *DIGITS_ARGS, "--dynamic", "x:0:batch", "--threads", "1",
            "--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0", "--rounds", "1", "--json")
    assert r.code == 0, r.err
    rows = [row for row in json.loads(r.out)["results"] if row["runtime"] == "executorch"]
    assert {row["precision"] for row in rows} == {"fp32", "int8"} and all(row["p50_ms"] > 0 for row in rows)
    r = cli("evaluate", digits["state"], digits_pte["fp32"], *DIGITS_ARGS, "--data", digits["images"], "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["artifacts"][0]["evaluation"]["top1_agreement"] == 1.0



def test_profile_times_each_xnnpack_kernel_and_its_precision(digits_pte):
    """``profile`` on a ``.pte``: ExecuTorch's event tracer, one row per XNNPACK kernel inside the delegate
    (int8 kernels for the int8 program) and per portable operator, their sum beside the program's median."""
    from app.bench.harness import BenchConfig
    from app.bench.profile import profile_artifact
    from app.request import ModelSource

    config = BenchConfig(warmup=3, warmup_seconds=0.05, runs=10, min_seconds=0.1, threads=1)
    fp32, int8 = (profile_artifact(ModelSource(digits_pte[p]), config) for p in ("fp32", "int8"))
    for profile, precision in ((fp32, "fp32"), (int8, "int8")):
        kernels = [n for n in profile.nodes if n.provider == "XNNPACK" and not n.layout]
        assert profile.runtime == "executorch" and profile.granularity == "node" and kernels, profile.notes
        assert any(n.op_type == "Convolution" and n.precision == precision for n in kernels), \
            [(n.name, n.precision) for n in kernels]
        assert profile.run_sum_ms > 0 and profile.median_ms > 0

def _weights(tmp_path, name):
    import torch

    from tests import models

    path = tmp_path / f"{name}.pt"
    torch.manual_seed(0)
    torch.save(getattr(models, name)().state_dict(), path)
    return path


def test_delegation_report_names_an_operator_xnnpack_does_not_take(cli, tmp_path):
    r = cli("convert", _weights(tmp_path, "RunningSumNet"), "--arch", "tests.models:RunningSumNet", "--input",
            "x:1x1x8x8", "--to", "executorch", "--out", tmp_path / "out", "--json")
    data = json.loads(r.out)
    assert r.code == 0, r.err
    assert data["delegation"]["portable"] == {"aten.cumsum": 1}
    assert "aten.cumsum ×1" in data["delegation"]["summary"] and any("aten.cumsum" in w for w in data["warnings"])


def test_an_operator_no_executorch_kernel_has_is_named_and_nothing_is_written(cli, tmp_path):
    r = cli("convert", _weights(tmp_path, "ErfinvNet"), "--arch", "tests.models:ErfinvNet", "--input", "x:2x16",
            "--to", "executorch", "--out", tmp_path / "out")
    assert r.code == 1
    line = r.err.strip().splitlines()[-1]
    assert "aten.erfinv" in line and "nothing was written" in line and "Traceback" not in r.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_pretrained_minilm_fp32_through_executorch(cli, tmp_path):
    from tests.minilm import weights_path
    from tests.real_data import SENTENCES, minilm_folder

    r = cli("convert", weights_path(), "--arch", "tests.minilm:SentenceEncoder", "--input", "input_ids:1x32:int64",
            "--input", "attention_mask:1x32:int64", "--to", "executorch", "--data", SENTENCES, "--tokenizer",
            minilm_folder(), "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["verification"]["passed"] and data["evaluation"]["cosine_min"] > 0.9999
    assert data["delegation"]["delegated"]["aten.linear"] >= 36     # 6 layers × (q, k, v, out, 2 FFN)


def test_without_executorch_the_target_says_how_to_install_it(tmp_path, digits):
    argv = ["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "executorch", "--out", str(tmp_path / "out")]
    code = f"import sys; sys.modules['executorch'] = None; from main import main; sys.exit(main({argv!r}))"
    env = dict(os.environ, HOME=str(tmp_path / "home"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith("error: --to executorch")
    assert "pip install" in run.stderr and "executorch" in run.stderr and not (tmp_path / "out").exists()


def test_targets_row_and_advice(cli):
    r = cli("targets", "--json")
    data = json.loads(r.out)
    row = next(t for t in data["targets"] if t["target"] == "executorch")
    assert row["available"] and set(row["precisions"]) >= {"fp32", "int8"}
    assert "XNNPACK" in row["advice"]["int8"]["why"]


def test_budget_loop_searches_the_quantizer_then_keeps_operators_in_float(cli, digits, digits_pte, tmp_path):
    first = _manifest(digits_pte["int8"])["evaluation"]["cosine_mean"]
    goal = first + (1 - first) / 2                      # halve the gap: the plain program misses it
    r, data = _convert(cli, digits, tmp_path, "int8", "--accuracy-budget", f"cosine={goal:.9f}", "--keep-failed")
    b = data["accuracy_budget"]
    assert b["rounds"][0]["float_nodes"] == 0 and not b["rounds"][0]["met"]
    assert b["rounds"][0]["quantizer"] == {"mode": "static", "per_channel": True, "activation_observer": "histogram"}
    stages = [rnd.get("stage") for rnd in b["rounds"][1:]]
    assert stages[0] == "quantizer" and b["rounds"][1]["change"] == "per_channel=False"
    # the speed-up is over an fp32 XNNPACK program of the same model; whether the digits CNN's int8 beats it
    # is the CPU's call (tests/test_budget.py's _check_speed checks the kept round both ways)
    from tests.test_budget import _check_speed

    kept = _check_speed(b)
    assert "ExecuTorch" in b["fp32_runtime"] and any(rnd["met"] for rnd in b["rounds"]), (r.err, b)
    assert (r.code == 0) == b["met"] and data["status"] == ("ok" if b["met"] else "unmet")
    assert (data["evaluation"]["cosine_mean"] >= goal) == kept["met"]
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["accuracy_budget"] == b and manifest["recorded"]["float_nodes"] == b["float_nodes"]
    # the operators kept in float are the exported graph's compute nodes, by name
    import torch

    from tests.models import DigitsCNN

    graph = torch.export.export(DigitsCNN().eval(), (torch.randn(1, 1, 8, 8),)).module().graph
    compute = {n.name for n in graph.nodes if n.op == "call_function" and ("conv" in n.name or "linear" in n.name
                                                                            or "relu" in n.name or "pool" in n.name)}
    added = {n for rnd in b["rounds"] if rnd.get("stage") == "nodes" for n in rnd["added_nodes"]}
    # ... and shown to the user by module path (features.0/conv2d)
    labels = [label for rnd in b["rounds"] if rnd.get("stage") == "nodes" for label in rnd["added"]]
    assert any("/" in label for label in labels), labels
    assert added and added <= compute and set(b["float_nodes"]) <= compute, (added, b["float_nodes"])


def test_int8_quantizes_a_convolution_and_its_relu6_as_one_range():
    """The clamp after a convolution gets the only int8 range (none between the two, as XNNPACK's quantizer does
    for ReLU; its lowering then fuses the clamp into the convolution), so the steps follow 0..6, not the
    convolution's ±40: the error is several times smaller than XNNPACK's stock quantizer gives."""
    import torch
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from converters.executorch import clamp_fusing_quantizer
    from tests.models import WideConvReLU6

    model, config = WideConvReLU6().eval(), get_symmetric_quantization_config(is_per_channel=True)
    calibration = [torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(i)) for i in range(16)]
    held_out = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(99))

    def quantized(quantizer):
        graph = torch.export.export(model, (calibration[0],), strict=False).module()
        prepared = prepare_pt2e(graph, quantizer.set_global(config))
        with torch.no_grad():
            for x in calibration:
                prepared(x)
        return convert_pt2e(prepared)

    fused, stock = quantized(clamp_fusing_quantizer()), quantized(XNNPACKQuantizer())
    clamps = [n for n in fused.graph.nodes if "hardtanh" in str(n.target)]
    assert len(clamps) == 2 and all("conv" in str(n.args[0].target) for n in clamps)      # nothing between
    assert all("quantize" in str(n.args[0].target) for n in stock.graph.nodes if "hardtanh" in str(n.target))
    with torch.no_grad():
        want = torch.cat([model(x[None]) for x in held_out])
        err = {name: (torch.cat([g(x[None]) for x in held_out]) - want).abs().mean().item()
               for name, g in (("fused", fused), ("stock", stock))}
    assert err["fused"] < err["stock"] / 3, err


def test_int8_program_of_a_relu6_network_runs_fused_in_xnnpack(cli, tmp_path):
    """End to end: the convolution + ReLU6 pairs are lowered (all in XNNPACK) and the program keeps the model."""
    import torch

    from tests.models import WideConvReLU6

    state = tmp_path / "wide.pt"
    torch.save(WideConvReLU6().state_dict(), state)
    data, rng = tmp_path / "data", np.random.default_rng(0)
    data.mkdir()
    for i in range(24):
        np.save(data / f"sample{i}.npy", rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    r = cli("convert", state, "--arch", "tests.models:WideConvReLU6", "--input", "x:1x3x16x16",
            "--to", "executorch", "--precision", "int8", "--data", data, "--out", tmp_path / "out", "--json")
    out = json.loads(r.out)
    assert r.code == 0, out
    assert not out["delegation"]["portable"], out["delegation"]
    assert out["evaluation"]["cosine_mean"] > 0.999, out["evaluation"]


def test_a_programs_size_is_the_pte_alone_not_its_hand_off_files(digits, digits_pte):
    """The results table's Size: the .pte, not the samples and README written beside it for the hand-off."""
    from app.pipeline import model_size
    from converters.executorch import ExecuTorchConverter

    pte = digits_pte["fp32"]
    produced = [pte, pte.with_name(pte.name + ".samples.npz"), pte.with_name(pte.name + ".README.md")]
    assert all(p.is_file() for p in produced) and produced[1].stat().st_size > 0
    assert model_size(ExecuTorchConverter(), digits["state"], "fp32", produced) == pte.stat().st_size
