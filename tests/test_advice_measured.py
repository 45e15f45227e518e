"""Advice from measurement: `targets --measured` says what won on this machine in a saved benchmark,
beside the expectations (which are labelled as such)."""

import json

import pytest

from tests.runs import make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory, model_files):
    return make_run(tmp_path_factory.mktemp("measured"), model_files["cnn_state"])


def test_targets_says_what_won_here_beside_each_expectation(cli, run):
    out = cli("targets", "--measured", run["run"], "--json")
    assert out.code == 0, out.err
    data = json.loads(out.out)
    measured = data["measured"]
    assert measured["file"] == str(run["bench"]) and measured["batch"] == 1
    bench = json.loads(run["bench"].read_text())
    rows = [r for r in bench["results"] if r["batch"] == 1 and not r.get("baseline") and (r.get("cosine") or 1) >= 0.99]
    assert measured["winner"]["name"] == min(rows, key=lambda r: r["p50_ms"])["name"]  # the fastest accurate row
    onnx = next(t for t in data["targets"] if t["target"] == "onnx")
    assert all(a["basis"] == "expectation" for t in data["targets"] for a in t["advice"].values())
    assert onnx["advice"]["fp32"]["measured"]["name"] == "cnn.fp32.onnx"
    human = cli("targets", "--measured", run["bench"])
    assert "expected faster" in human.out and f"measured here ({run['bench']}, batch 1): fastest accurate:" in human.out


def test_an_inaccurate_row_does_not_win_and_other_machines_do_not_count(cli, run, tmp_path):
    bench = json.loads(run["bench"].read_text())
    fastest = min((r for r in bench["results"] if r["batch"] == 1 and not r.get("baseline")), key=lambda r: r["p50_ms"])
    fastest["cosine"] = 0.5
    (tmp_path / "here.json").write_text(json.dumps(bench))
    measured = json.loads(cli("targets", "--measured", tmp_path / "here.json", "--json").out)["measured"]
    assert measured["winner"] is not None and measured["winner"]["name"] != fastest["name"]

    bench["machine"]["cpu"] = "Another CPU"
    (tmp_path / "here.json").write_text(json.dumps(bench))
    out = cli("targets", "--measured", tmp_path)
    assert out.code == 0 and "measured here: no benchmark result of this machine (1 result(s) from other machines left out)" in out.out


def test_a_precision_measured_no_faster_than_fp32_is_labelled_so(cli, run, tmp_path):
    """Advice from measurement (issue 34): a lower precision whose p50 is not below fp32's on this machine
    (bf16 without AMX, uint8 weights on VNNI) is named as no faster, in --json and in the table."""
    bench = json.loads(run["bench"].read_text())
    rows = [r for r in bench["results"] if r["batch"] == 1 and not r.get("baseline") and r["runtime"] == "onnxruntime"]
    fp32 = next(r for r in rows if r["precision"] == "fp32")
    lower = next(r for r in rows if r["precision"] != "fp32")
    lower["p50_ms"] = fp32["p50_ms"] * 1.02
    (tmp_path / "here.json").write_text(json.dumps(bench))
    data = json.loads(cli("targets", "--measured", tmp_path / "here.json", "--json").out)
    key = f"onnx/{lower['precision']}"
    assert key in data["measured"]["no_faster_than_fp32"] and "onnx/fp32" not in data["measured"]["no_faster_than_fp32"]
    onnx = next(t for t in data["targets"] if t["target"] == "onnx")
    assert onnx["advice"][lower["precision"]]["measured"]["no_faster_than_fp32"] is True
    assert onnx["advice"]["fp32"]["measured"]["no_faster_than_fp32"] is False
    human = cli("targets", "--measured", tmp_path / "here.json").out
    assert "no faster than fp32 on this CPU" in human and key in human

    lower["p50_ms"] = fp32["p50_ms"] * 0.5
    (tmp_path / "here.json").write_text(json.dumps(bench))
    data = json.loads(cli("targets", "--measured", tmp_path / "here.json", "--json").out)
    assert key not in data["measured"]["no_faster_than_fp32"]


def test_optimize_rows_name_a_precision_no_faster_than_fp32():
    from app.bench.stats import rows_no_faster_than_fp32

    rows = [{"name": "eager", "runtime": "pytorch", "precision": "fp32", "batch": 1, "p50_ms": 30.0, "baseline": True},
            {"name": "m.openvino.fp32.xml", "runtime": "openvino", "precision": "fp32", "batch": 1, "p50_ms": 17.4},
            {"name": "m.openvino.bf16.xml", "runtime": "openvino", "precision": "bf16", "batch": 1, "p50_ms": 17.7},
            {"name": "m.openvino.int8.xml", "runtime": "openvino", "precision": "int8", "batch": 1, "p50_ms": 6.9},
            {"name": "m.int8.onnx", "runtime": "onnxruntime", "precision": "int8", "batch": 1, "p50_ms": 34.0}]
    slow = rows_no_faster_than_fp32(rows)
    assert set(slow) == {"openvino/bf16"} and slow["openvino/bf16"]["fp32_p50_ms"] == 17.4  # no ORT fp32 row: unjudged
