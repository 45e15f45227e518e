"""Evaluation on real data: a CNN trained on scikit-learn's digits, converted with --data, scored on
the held-out part against its source and the labels; ``main.py evaluate`` does the same for any
artifacts, with JSON and CSV."""

from __future__ import annotations

import csv
import json

from tests.conftest import DIGITS_ARGS


def test_int8_with_data_calibrates_on_one_part_and_evaluates_on_the_other(cli, digits, tmp_path):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
            "--data", digits["images"], "--out", tmp_path, "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    e = data["evaluation"]
    assert e["samples"] == 210                       # 300 held-out digits: 90 calibrate, 210 evaluate
    assert e["source_top1"] > 0.85                   # a trained network on real digits
    assert e["cosine_mean"] > 0.99 and e["cosine_min"] <= e["cosine_p5"] <= e["cosine_mean"]
    assert abs(e["top1_drop"]) <= 0.03 and e["top1_agreement"] > 0.95
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["evaluation"] == e
    recorded = manifest["recorded"]
    assert recorded["quantization"] == "static"      # data given: static QDQ
    assert recorded["calibration_samples"] == 90
    assert recorded["data"]["evaluation_samples"] == 210 and recorded["data"]["split_seed"] == 0
    assert "unit" in recorded["data"]["notes"][0]
    assert not any("RANDOM DATA" in w for w in data["warnings"])


def test_evaluate_command_scores_artifacts_with_labels_json_and_csv(cli, digits, tmp_path):
    for precision in ("fp32", "fp16"):
        r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", precision, "--out", tmp_path)
        assert r.code == 0, r.err
    artifacts = [tmp_path / "digits.fp32.onnx", tmp_path / "digits.fp16.onnx"]
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, *artifacts, "--data", digits["arrays"],
            "--csv", tmp_path / "eval.csv", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["split"] == "all samples" and "300 samples" in data["data"]
    fp32, fp16 = (row["evaluation"] for row in data["artifacts"])
    assert fp32["cosine_min"] > 0.99999 and fp32["top1_agreement"] == 1.0
    assert fp32["artifact_top1"] == fp32["source_top1"] > 0.85 and fp32["source_top5"] >= fp32["source_top1"]
    assert fp16["cosine_mean"] > 0.999
    rows = list(csv.DictReader(open(tmp_path / "eval.csv")))
    assert [row["artifact"] for row in rows] == [str(a) for a in artifacts]
    assert float(rows[0]["cosine_mean"]) == fp32["cosine_mean"]
    human = cli("evaluate", digits["state"], *DIGITS_ARGS, artifacts[1], "--data", digits["arrays"])
    assert human.code == 0 and "digits.fp16.onnx: cosine mean" in human.out and "top-1" in human.out


def test_evaluate_leaves_out_the_samples_an_artifact_was_calibrated_on(cli, digits, tmp_path):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
            "--calibration", digits["arrays"], "--out", tmp_path, "--json")   # the old flag still works
    assert r.code == 0, r.err
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, tmp_path / "digits.int8.onnx", "--data", digits["arrays"], "--json")
    data = json.loads(r.out)
    assert "calibrated on part of this data" in data["split"]
    assert data["artifacts"][0]["evaluation"]["samples"] == 210


def test_evaluate_bad_input(cli, digits, tmp_path):
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, tmp_path / "none.onnx", "--data", digits["arrays"], "--json")
    assert r.code == 2 and json.loads(r.out)["status"] == "failed" and "no such artifact" in r.err
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, digits["state"])
    assert r.code == 2 and "--data" in r.err


def test_the_diagnosis_reference_is_exported_as_the_artifact_was(model_files, tmp_path):
    """diagnose matches tensors by name: its fp32 reference uses the artifact's exporter and opset."""
    from app.cli.accuracy_commands import fp32_reference
    from app.loaders.front_door import prepare_model
    from app.artifacts.manifest import read_manifest
    from tests.requests import CNN, source

    src = source(model_files["cnn_state"], **CNN)
    made_with = {"exporter": "torchscript", "opset": 17, "quantization": "static", "calibration_method": "entropy"}
    reference = fp32_reference(src, prepare_model(src), tmp_path, made_with)
    options = read_manifest(reference)["options"]
    assert (options["exporter"], options["opset"]) == ("torchscript", 17) and reference.name == "cnn.fp32.onnx"
    assert options["quantization"] is None  # an int8 choice does not follow an fp32 export


def test_an_int8_miss_on_random_inputs_is_not_shouted_as_a_failure():
    from app.accuracy.verify import Verification

    miss = Verification(precision="int8", cosine=0.7, passed=False, enforced=False)
    assert "FAILED" not in miss.summary() and "not enforced: the data decides" in miss.summary()
    assert Verification(precision="fp16", cosine=0.7, passed=False).summary().endswith("→ FAILED")
