"""Accuracy-aware int8/fp16 (--accuracy-budget), the automatic int8 choice, and ``main.py diagnose``,
on a CNN trained on scikit-learn's digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import DIGITS_ARGS, ENCODER_ARGS


def _convert(cli, digits, out, *extra):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--data", digits["images"], "--out", out,
            "--json", *extra)
    return r, json.loads(r.out)


@pytest.fixture(scope="module")
def plain_int8(tmp_path_factory, digits):
    from main import main

    out = tmp_path_factory.mktemp("plain")
    assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
                 "--data", str(digits["images"]), "--out", str(out)]) == 0
    manifest = json.loads((out / "digits.int8.onnx.manifest.json").read_text())
    return out / "digits.int8.onnx", manifest["evaluation"]


def test_budget_loop_keeps_the_worst_nodes_in_float_until_it_holds(cli, digits, tmp_path, plain_int8):
    first = plain_int8[1]["cosine_mean"]
    goal = first + (1 - first) / 2                      # halve the gap: the plain artifact misses it
    r, data = _convert(cli, digits, tmp_path, "--precision", "int8", "--accuracy-budget", f"cosine={goal:.9f}")
    b = data["accuracy_budget"]
    assert b["rounds"][0]["float_nodes"] == 0 and not b["rounds"][0]["met"]
    assert abs(b["rounds"][0]["cosine_mean"] - first) < 1e-9   # same split, same calibration: same artifact
    assert len(b["rounds"]) >= 2 and all("added" in rnd for rnd in b["rounds"][1:])
    if b["met"]:
        assert r.code == 0 and data["status"] == "ok" and b["float_nodes"]
        assert data["evaluation"]["cosine_mean"] >= goal
    else:
        assert r.code == 1 and data["status"] == "unmet"
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["accuracy_budget"] == b and manifest["recorded"]["float_nodes"] == b["float_nodes"]
    assert b["latency_ms"] > 0 and b["fp32_onnx_latency_ms"] > 0
    if b["float_nodes"]:  # the nodes named are really left unquantized in the written graph
        import onnx

        graph = onnx.load(data["artifact"]).graph
        kept = [n for n in graph.node if n.name in b["float_nodes"]]
        assert kept and all(not any(i.endswith("_DequantizeLinear_Output") for i in n.input) for n in kept)


def test_unmet_budget_exits_1_with_the_best_artifact_and_its_figures(cli, digits, tmp_path):
    r, data = _convert(cli, digits, tmp_path, "--precision", "int8", "--accuracy-budget", "cosine=1",
                       "--max-float-nodes", "1")
    assert r.code == 1 and data["status"] == "unmet"
    assert "accuracy budget cosine=1 not met" in r.err
    assert len(data["accuracy_budget"]["float_nodes"]) <= 1 and data["evaluation"]["cosine_mean"] > 0.99
    assert (tmp_path / "digits.int8.onnx").is_file() and (tmp_path / "digits.int8.onnx.manifest.json").is_file()


def test_fp16_budget_uses_the_node_block_list(cli, digits, tmp_path):
    r, data = _convert(cli, digits, tmp_path, "--precision", "fp16", "--accuracy-budget", "top1-drop=0%")
    assert r.code in (0, 1) and data["accuracy_budget"]["budget"] == "top1-drop=0%"
    assert data["evaluation"]["top1_drop"] is not None


def test_budget_bad_input(cli, digits, tmp_path):
    for extra, words in ((["--precision", "int8", "--accuracy-budget", "cosine=2"], "(0, 1]"),
                         (["--precision", "int8", "--accuracy-budget", "speed=3"], "cosine=0.99"),
                         (["--precision", "fp32", "--accuracy-budget", "cosine=0.9"], "fp16/int8")):
        r, data = _convert(cli, digits, tmp_path, *extra)
        assert r.code == 2 and data["status"] == "failed" and words in data["message"]
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
            "--accuracy-budget", "cosine=0.9", "--out", tmp_path)
    assert r.code == 2 and "needs --data" in r.err
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    np.savez(unlabelled / "x.npz", x=np.random.default_rng(0).random((6, 1, 1, 8, 8), dtype=np.float32))
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8", "--data", unlabelled,
            "--accuracy-budget", "top1-drop=1%", "--out", tmp_path)
    assert r.code == 2 and "labelled" in r.err
    assert not list(tmp_path.glob("*.onnx"))


def test_automatic_int8_is_dynamic_per_channel_for_transformers(cli, workdir):
    r = cli("convert", workdir["encoder_state"], *ENCODER_ARGS, "--to", "onnx", "--precision", "int8",
            "--out", workdir["out"], "--json")
    assert r.code == 0, r.err
    recorded = json.loads(open(json.loads(r.out)["manifest"]).read())["recorded"]
    assert recorded["quantization"] == "dynamic" and recorded["per_channel"] is True
    assert "automatic" in recorded["quantization_choice"]


def test_diagnose_ranks_nodes_by_added_error(cli, digits, plain_int8):
    artifact, _ = plain_int8
    r = cli("diagnose", digits["state"], *DIGITS_ARGS, artifact, "--data", digits["arrays"], "--samples", "4",
            "--top", "5", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    nodes = data["nodes"]
    assert 1 <= len(nodes) <= 5 and data["samples"] == 4 and data["nodes_compared"] >= len(nodes)
    added = [n["added"] for n in nodes]
    assert added == sorted(added, reverse=True) and added[0] > 0
    assert {n["op_type"] for n in nodes} & {"Conv", "Gemm", "MatMul"}
    assert all(n["error"] >= n["added"] - 1e-12 for n in nodes)
    human = cli("diagnose", digits["state"], *DIGITS_ARGS, artifact, "--data", digits["arrays"], "--top", "3")
    assert human.code == 0 and "added error" in human.out
    bad = cli("diagnose", digits["state"], *DIGITS_ARGS, digits["state"], "--data", digits["arrays"])
    assert bad.code == 2 and ".onnx" in bad.err
