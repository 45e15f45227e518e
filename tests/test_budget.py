"""Accuracy-aware int8/fp16 (--accuracy-budget), the automatic int8 choice, and ``main.py diagnose``,
on a CNN trained on scikit-learn's digits."""

from __future__ import annotations

import json

import numpy as np
import pytest

from app.machine.hardware import detect_cpu, int8_kernels
from tests.conftest import DIGITS_ARGS, ENCODER_ARGS


def _convert(cli, digits, out, *extra):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--data", digits["images"], "--out", out,
            "--json", *extra)
    return r, json.loads(r.out)


def _check_speed(b: dict) -> dict:
    """The kept round against the speed floor (the digits CNN's int8 runs near its fp32's speed, faster or
    slower by CPU and load, so both ways are checked): met means the fastest round that meets the budget at
    or above the floor; else no round does, and a kept round below the floor only with ``too_slow``
    (written under --keep-failed). Returns the kept round."""
    measured = [rnd for rnd in b["rounds"] if "latency_ms" in rnd]
    floor = b["speed_floor"]
    assert floor == max(1.0, b["min_speedup"]) and b["fp32_latency_ms"] > 0 and b["fp32_runtime"]
    # each round over the fp32 timed beside it (interleaved); the report's fp32 is the median of those
    assert all(rnd["speedup"] == pytest.approx(rnd["fp32_latency_ms"] / rnd["latency_ms"], rel=1e-3) for rnd in measured)
    fp32 = sorted(rnd["fp32_latency_ms"] for rnd in measured)
    assert fp32[0] - 1e-9 <= b["fp32_latency_ms"] <= fp32[-1] + 1e-9
    kept = b["rounds"][b["best_round"]]
    assert kept.get("kept") and kept["round"] in b["pareto"] and "kept_because" in kept
    both = [rnd for rnd in measured if rnd["met"] and rnd["speedup"] >= floor]
    assert b["met"] == bool(both)
    if both:
        assert kept["latency_ms"] == min(rnd["latency_ms"] for rnd in both) and kept["speedup"] >= floor
    else:
        assert b["too_slow"] == all(rnd["speedup"] < floor for rnd in measured)
        assert b["too_slow"] or kept["speedup"] >= floor
    return kept


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
    r, data = _convert(cli, digits, tmp_path, "--precision", "int8", "--accuracy-budget", f"cosine={goal:.9f}",
                       "--keep-failed")
    b = data["accuracy_budget"]
    kept = _check_speed(b)
    assert b["rounds"][0]["float_nodes"] == 0 and not b["rounds"][0]["met"]
    assert abs(b["rounds"][0]["cosine_mean"] - first) < 1e-9   # same split, same calibration: same artifact
    assert len(b["rounds"]) >= 2 and all("added" in rnd for rnd in b["rounds"] if rnd["stage"] == "nodes")
    if b["met"]:
        assert r.code == 0 and data["status"] == "ok" and b["float_nodes"]
        assert data["evaluation"]["cosine_mean"] >= goal
    else:
        assert r.code == 1 and data["status"] == "unmet"
    assert data["evaluation"]["cosine_mean"] == pytest.approx(kept["cosine_mean"])
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["accuracy_budget"] == b and manifest["recorded"]["float_nodes"] == b["float_nodes"]
    assert b["latency_ms"] == kept["latency_ms"] > 0 and b["speedup"] == kept["speedup"]
    if b["float_nodes"]:  # the nodes named are really left unquantized in the written graph
        import onnx

        graph = onnx.load(data["artifact"]).graph
        kept = [n for n in graph.node if n.name in b["float_nodes"]]
        assert kept and all(not any(i.endswith("_DequantizeLinear_Output") for i in n.input) for n in kept)


def _int8_weights(path) -> tuple[set[int], bool]:
    """The element types of an int8 graph's quantized Conv/Gemm weights, and whether their scales are per-channel."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {t.name: t for t in graph.initializer}
    types, per_channel = set(), False
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits and inits[node.input[0]].dims and \
                len(inits[node.input[0]].dims) > 1:        # a weight, not a bias or an activation's range
            types.add(inits[node.input[0]].data_type)
            per_channel |= numpy_helper.to_array(inits[node.input[1]]).size > 1
    return types, per_channel


def test_budget_loop_searches_the_quantizer_before_the_nodes_and_reaches_the_budget(cli, digits, tmp_path,
                                                                                   plain_int8):
    """Round 0 is the plain int8 build; then each quantizer setting is tried once from the best so far (a
    byte-identical model is named, not measured); only then are nodes kept in float, and the budget — a
    cosine the plain artifact misses and the fp32 graph meets — is reached. Round 0's weights are this
    CPU's choice (int8, 7-bit without VNNI); the weight-type round tries uint8, or says why it does not."""
    import onnx

    first = plain_int8[1]["cosine_mean"]
    goal = first + (1 - first) * 0.6
    r, data = _convert(cli, digits, tmp_path, "--precision", "int8", "--accuracy-budget", f"cosine={goal:.9f}",
                       "--keep-failed")
    b = data["accuracy_budget"]
    rounds = b["rounds"]
    kept = _check_speed(b)
    assert [rnd["round"] for rnd in rounds] == list(range(len(rounds)))
    start, kernels = rounds[0]["quantizer"], int8_kernels(detect_cpu())
    assert rounds[0]["stage"] == "first" and (start["weight_type"], start["reduce_range"]) == (kernels.weight_type,
                                                                                              kernels.reduce_range)
    stages = [rnd["stage"] for rnd in rounds]
    assert "quantizer" in stages and stages == sorted(stages, key=["first", "quantizer", "nodes"].index)
    tried = [rnd["change"] for rnd in rounds if rnd["stage"] == "quantizer"]
    if not any(rnd["met"] for rnd in rounds if rnd["stage"] == "quantizer"):   # the search ran to its end
        assert tried == ["weight_type=uint8", "per_channel=False", f"reduce_range={not start['reduce_range']}",
                         "calibration_method=entropy", "calibration_method=percentile", "activation_symmetric=True",
                         "bias_correction=False", "float_input_layer=False"]
    for rnd in rounds[1:]:
        name, value = rnd["change"].split("=") if rnd["stage"] == "quantizer" else (None, None)
        if name:
            assert str(rnd["quantizer"][name]) == value
        if "identical_to" in rnd:   # reported as such, no figures of its own
            assert rnd["identical_to"] < rnd["round"] and "cosine_mean" not in rnd
            assert rnd["quantizer"] != rounds[rnd["identical_to"]]["quantizer"]
        elif "skipped" in rnd:      # uint8 weights on x86, below the floor: said, not built
            assert rnd["change"] == "weight_type=uint8" and "u8×u8 kernels" in rnd["skipped"] and "cosine_mean" not in rnd
        else:
            assert 0 < rnd["cosine_mean"] <= 1 and rnd["latency_ms"] > 0 and rnd["met"] == (rnd["cosine_mean"] >= goal)
    assert any(rnd["met"] for rnd in rounds) and b["stopped"] == "met"        # the accuracy is reached
    assert (r.code == 0) == b["met"] and data["status"] == ("ok" if b["met"] else "unmet")
    assert (data["evaluation"]["cosine_mean"] >= goal) == kept["met"]
    assert [rnd["round"] for rnd in rounds if rnd.get("kept")] == [kept["round"]]
    assert kept["quantizer"] == b["quantizer"] and kept["float_nodes"] == len(b["float_nodes"])
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["accuracy_budget"] == b
    assert manifest["recorded"]["quantizer"] == b["quantizer"]   # the record is the kept build's, not the last
    assert manifest["recorded"]["int8_weights_type"] == b["quantizer"]["weight_type"]
    types, per_channel = _int8_weights(data["artifact"])   # the written graph is the chosen quantizer's
    want = onnx.TensorProto.UINT8 if b["quantizer"]["weight_type"] == "uint8" else onnx.TensorProto.INT8
    assert types <= {want} and (not types or per_channel == b["quantizer"]["per_channel"])


def test_unmet_budget_exits_1_with_the_best_artifact_marked_and_every_round_shown(cli, digits, tmp_path):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--data", digits["images"], "--out", tmp_path,
            "--precision", "int8", "--accuracy-budget", "cosine=1", "--max-float-nodes", "1", "--target-isa", "vnni",
            "--keep-failed")   # no round may reach the speed floor on this CPU: kept all the same
    assert r.code == 1 and "error: accuracy budget cosine=1 not met" in r.err
    manifest = json.loads((tmp_path / "digits.int8.onnx.manifest.json").read_text())
    assert (tmp_path / "digits.int8.onnx").is_file() and manifest["status"] == "unmet"
    b = manifest["accuracy_budget"]
    assert not b["met"] and b["stopped"] and len(b["float_nodes"]) <= 1
    assert manifest["evaluation"]["cosine_mean"] > 0.99
    assert [rnd["round"] for rnd in b["rounds"] if rnd.get("kept")] == [b["best_round"]]   # the best, marked
    assert all("identical_to" in rnd or rnd["cosine_mean"] < 1 for rnd in b["rounds"])
    # --target-isa fixes the weight type: this CPU's figures cannot choose it for another
    assert not any(rnd.get("change", "").startswith("weight_type") for rnd in b["rounds"])
    assert {rnd["quantizer"]["weight_type"] for rnd in b["rounds"]} == {"int8"}
    # every round's figures on the console: one line each, in order, the kept one marked
    lines = [line.strip() for line in r.out.splitlines() if line.strip().startswith("round ")]
    assert [x.split()[1] for x in lines] == [str(rnd["round"]) for rnd in b["rounds"]]
    assert lines[0].startswith("round  0 first build") and any("quantizer: per_channel=False" in x for x in lines)
    assert all("cosine 0." in x or "same model as round" in x for x in lines)
    assert sum("← kept" in x for x in lines) == 1 and "← kept" in lines[b["best_round"]]
    # the report has the same rounds: one table row each, under a header row
    from tests.test_report import Page

    report = cli("report", tmp_path / "digits.int8.onnx.manifest.json", "--out", tmp_path / "report.html")
    assert report.code == 0, report.err
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert Page(text).rows["rounds"] == 1 + len(lines)
    assert "quantizer: per_channel=False" in text and "not met" in text and ">kept<" in text


def test_fp16_budget_uses_the_node_block_list(cli, digits, tmp_path):
    r, data = _convert(cli, digits, tmp_path, "--precision", "fp16", "--accuracy-budget", "top1-drop=0%",
                       "--keep-failed")
    assert r.code in (0, 1) and data["accuracy_budget"]["budget"] == "top1-drop=0%"
    assert data["evaluation"]["top1_drop"] is not None


def test_budget_bad_input(cli, digits, tmp_path):
    for extra, words in ((["--precision", "int8", "--accuracy-budget", "cosine=2"], "(0, 1]"),
                         (["--precision", "int8", "--accuracy-budget", "speed=3"], "cosine=0.99"),
                         (["--precision", "fp32", "--accuracy-budget", "cosine=0.9"], "fp16/int8"),
                         (["--precision", "int8", "--accuracy-budget", "cosine=0.9", "--min-speedup", "-1"],
                          "--min-speedup -1")):
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


# ---------------------------------------------------------------------------- optimize on data
def test_optimize_with_data_reads_the_budget_on_the_evaluation(cli, digits, tmp_path):
    """``optimize --data``: every candidate is evaluated on the held-out digits, the budget (top-1 drop)
    is read there, ONNX int8 runs the budget loop, and the recommendation is the fastest that fits."""
    r = cli("optimize", digits["state"], *DIGITS_ARGS, "--data", digits["images"], "--accuracy-budget", "top1-drop=1%",
            "--only", "onnx fp32", "--only", "onnx int8 static/minmax", "--only", "onnx int8 dynamic",
            "--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0",
            "--no-openvino", "--out", tmp_path, "--json")
    assert r.code in (0, 1), r.err
    data = json.loads(r.out)
    assert data["accuracy_budget"] == "top1-drop=1%"
    rows = [row for row in data["results"] if not row["baseline"]]
    assert {row["candidate"] for row in rows} == {"onnx fp32", "onnx int8 static/minmax", "onnx int8 dynamic"}
    assert len({row["eval_samples"] for row in rows}) == 1 and 0 < rows[0]["eval_samples"] < 300  # held-out part
    for row in rows:
        assert 0.5 < row["eval_source_top1"] <= 1 and row["eval_top1_drop"] is not None
        assert row["within_budget"] == (row["eval_top1_drop"] <= 0.01 + 1e-12)
        manifest = json.loads(open(row["artifact"] + ".manifest.json").read())
        assert manifest["evaluation"]["top1_drop"] == row["eval_top1_drop"]
        if row["precision"] == "int8":
            assert row["float_nodes"] is not None and manifest["accuracy_budget"]["budget"] == "top1-drop=1%"
        else:
            assert row["float_nodes"] is None
    fits = [row for row in rows if row["within_budget"]]
    assert (r.code == 0) == bool(fits)
    if fits:
        assert data["recommended"]["name"] == min(fits, key=lambda row: row["p50_ms"])["name"]
        assert data["recommended"]["eval_top1_drop"] <= 0.01 + 1e-12


def test_optimize_budget_without_data_is_one_clear_line(cli, digits, tmp_path):
    r = cli("optimize", digits["state"], *DIGITS_ARGS, "--accuracy-budget", "cosine=0.99", "--out", tmp_path)
    assert r.code == 2 and "needs --data" in r.err and r.err.count("\n") == 1


def test_bench_with_data_puts_the_evaluation_beside_the_speed(cli, digits, plain_int8, tmp_path):
    """``bench --data``: each artifact row (JSON and CSV) carries its agreement and top-1 on the data —
    the same figures ``convert`` recorded, since the split is the one its manifest names."""
    import csv

    artifact, recorded = plain_int8
    r = cli("bench", digits["state"], artifact, *DIGITS_ARGS, "--data", digits["images"], "--no-openvino",
            "--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0",
            "--json", "--csv", tmp_path / "bench.csv")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert "calibrated on part of this data" in data["data"]
    row = next(row for row in data["results"] if not row["baseline"])
    assert row["eval_samples"] == recorded["samples"]
    assert row["eval_cosine_mean"] == pytest.approx(recorded["cosine_mean"], abs=1e-6)
    assert row["eval_top1_drop"] == pytest.approx(recorded["top1_drop"], abs=1e-9)
    baseline = next(row for row in data["results"] if row["baseline"])
    assert "eval_cosine_mean" not in baseline
    with open(tmp_path / "bench.csv", newline="") as f:
        lines = list(csv.DictReader(f))
    art = next(line for line in lines if line["artifact"] == row["artifact"])
    assert float(art["eval_cosine_mean"]) == pytest.approx(row["eval_cosine_mean"])
    assert float(art["eval_artifact_top1"]) == pytest.approx(recorded["artifact_top1"])


def test_openvino_int8_budget_searches_nncf_then_runs_its_accuracy_control_and_says_which_won(cli, digits, tmp_path):
    """The same loop drives OpenVINO int8: NNCF's settings one at a time (preset, overflow fix, bias
    correction, range estimator), then — while the budget still misses — NNCF's own
    ``quantize_with_accuracy_control`` as the peer; the better of the two is kept, and named."""
    import importlib.util

    if importlib.util.find_spec("nncf") is None:   # found, not imported: importing it starts OpenVINO's telemetry
        pytest.skip("OpenVINO int8 needs NNCF (pip install nncf)")
    from converters.openvino import NncfSettings

    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "openvino", "--precision", "int8", "--data",
            digits["images"], "--out", tmp_path, "--json", "--accuracy-budget", "cosine=0.99999", "--keep-failed")
    data = json.loads(r.out)
    b = data["accuracy_budget"]
    rounds = b["rounds"]
    fields = set(NncfSettings.__dataclass_fields__)
    assert rounds[0]["stage"] == "first" and all(set(rnd["quantizer"]) == fields for rnd in rounds)
    searched = [rnd for rnd in rounds if rnd["stage"] == "quantizer"]
    assert searched and {rnd["change"].split("=")[0] for rnd in searched} <= fields
    nodes = [rnd for rnd in rounds if rnd["stage"] == "nodes"]       # the node stage, NNCF's ignored_scope
    assert all("identical_to" not in rnd or rnd["unchanged"] for rnd in nodes)
    assert not nodes or any("identical_to" not in rnd for rnd in nodes)   # the names reached NNCF's graph
    peer = [rnd for rnd in rounds if rnd["stage"] == "nncf-accuracy-control"]
    if any(rnd["met"] for rnd in rounds[:1] + searched):
        assert not nodes and not peer
    elif any(rnd["met"] for rnd in nodes):
        assert not peer
    else:
        assert len(peer) == 1 and peer[0] is rounds[-1]
    kept = _check_speed(b)
    assert "OpenVINO" in b["fp32_runtime"] and "f32" in b["fp32_runtime"]
    assert kept["kept"] and (b["engine"] == "NNCF quantize_with_accuracy_control") == (kept["stage"] == peer[0]["stage"]
                                                                                     if peer else False)
    assert (r.code == 0) == b["met"] and data["status"] == ("ok" if b["met"] else "unmet")
    recorded = json.loads(open(data["manifest"]).read())["recorded"]
    assert recorded["quantizer"] == kept["quantizer"] == b["quantizer"]
    assert ("quantization_engine" in recorded) == (kept["stage"] == "nncf-accuracy-control")
    assert data["artifact"].endswith(".xml") and data["evaluation"]["cosine_mean"] == pytest.approx(kept["cosine_mean"])


def test_quantizer_choices_follow_the_mode_and_the_cpu_the_artifact_is_for():
    """Each setting is tried once, as the other value(s) of the start; dynamic int8 has no calibration or
    activation ranges to try, and --target-isa (another CPU) takes the weight type out of the search."""
    from converters.onnx_precision import QuantizerConfig
    from converters.openvino import NncfSettings

    static = QuantizerConfig("uint8", calibration_method="entropy", activation_symmetric=False)
    assert static.choices() == [("weight_type", ("int8",)), ("per_channel", (False,)), ("reduce_range", (True,)),
                                ("calibration_method", ("minmax", "percentile")), ("activation_symmetric", (True,))]
    assert [name for name, _ in QuantizerConfig("int8").choices()] == ["weight_type", "per_channel", "reduce_range"]
    assert "weight_type" not in dict(static.choices(fixed_weights=True))
    nncf = NncfSettings(preset="performance", overflow_fix="enable", range_estimator="minmax")
    assert dict(nncf.choices()) == {"preset": ("mixed",), "overflow_fix": ("disable",),
                                    "fast_bias_correction": (False,),
                                    "range_estimator": ("nncf", "mean_minmax", "histogram")}
    assert dict(nncf.choices(fixed_weights=True))["overflow_fix"] == ()


def _scores(**kw):
    from app.accuracy.evaluation import Evaluation

    base = dict(samples=100, data="hand-made", cosine_mean=0.99, cosine_min=0.9, cosine_p5=0.95, rel_l2_mean=0.1,
                rel_l2_max=0.2, top1_agreement=0.9, confident_agreement=0.98, confident_samples=75,
                confident_margin=0.1, kl_mean=0.02, kl_max=0.3, kl_samples=100)
    return Evaluation(**(base | kw))


def test_confident_agreement_and_kl_budgets_parse_judge_and_compare():
    from app.accuracy.budget import AccuracyBudget
    from app.errors import BadInput

    ca = AccuracyBudget.parse("confident-agreement=0.99")
    assert (ca.metric, ca.value, str(ca)) == ("confident-agreement", 0.99, "confident-agreement=0.99")
    assert AccuracyBudget.parse("confident-agreement = 99%") == ca and AccuracyBudget.parse(str(ca)) == ca
    kl = AccuracyBudget.parse("kl=1e-2")
    assert (kl.metric, kl.value, str(kl)) == ("kl", 0.01, "kl=0.01")
    assert not ca.met(_scores()) and ca.met(_scores(confident_agreement=0.99)) and ca.met(_scores(confident_agreement=1.0))
    assert not kl.met(_scores()) and kl.met(_scores(kl_mean=0.01)) and kl.met(_scores(kl_mean=0.0))
    assert "98.0% on 75 of 100 samples (margin ≥ 0.1)" in ca.describe(_scores())
    assert "mean KL 0.02" in kl.describe(_scores()) and "100 samples" in kl.describe(_scores())
    # better: closer to 1 (agreement) or to 0 (KL); with a margin, by that share of the gap; an agreement
    # tie is broken by the mean cosine
    assert ca.better(_scores(confident_agreement=0.99), _scores())
    assert not ca.better(_scores(confident_agreement=0.981), _scores(), margin=0.1)
    assert ca.better(_scores(cosine_mean=0.995), _scores()) and not ca.better(_scores(), _scores())
    assert kl.better(_scores(kl_mean=0.01), _scores()) and not kl.better(_scores(kl_mean=0.0199), _scores(), margin=0.1)
    assert kl.better(_scores(kl_mean=5.0), _scores(kl_mean=float("inf")))
    # NNCF's accuracy control maximises a figure: the agreement, or the negated KL; the drop it may lose
    assert ca.control_metric(_scores()) == 0.98 and ca.control_max_drop() == pytest.approx(0.01)
    assert kl.control_metric(_scores()) == -0.02 and kl.control_max_drop() == 0.01
    # a figure that cannot be measured never meets the budget, and is refused in one line
    none = _scores(confident_agreement=None, confident_samples=0)
    assert not ca.met(none)
    with pytest.raises(BadInput) as e:
        ca.check_scores(none)
    assert "none of the 100 evaluation samples is a confident call" in str(e.value) and "\n" not in str(e.value)
    for budget in (ca, kl):
        with pytest.raises(BadInput, match="needs a classifier output"):
            budget.check_scores(_scores(confident_agreement=None, confident_samples=None, kl_mean=None, kl_samples=None))
    ca.check_scores(_scores())
    kl.check_scores(_scores())
    for text, words in (("confident-agreement=1.5", "(0, 1]"), ("kl=0", "positive"), ("kl=1%", "positive"),
                        ("kl=", "kl=0.01"), ("cosine=0.9.9", "confident-agreement=0.99")):
        with pytest.raises(BadInput) as e:
            AccuracyBudget.parse(text)
        assert words in str(e.value) and "\n" not in str(e.value), text
