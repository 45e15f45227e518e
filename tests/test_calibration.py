"""Calibration that generalizes: ``--eval-data`` (calibrate on all of ``--data``, evaluate on other samples),
the split of one folder and its loud warning, and the calibration settings of each int8 runtime (NNCF reads
every calibration sample; PT2E's activation observer is a setting that is recorded and changes the program).
Real conversions of the digits CNN; assertions on behaviour, not on one CPU's figures."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app.accuracy import data as data_module
from app.accuracy.data import calibration_count, held_out, load_data
from app.errors import BadInput
from app.model.specs import TensorSpec
from app.request import DataSource
from tests.conftest import DIGITS_ARGS

IMAGE = [TensorSpec("x", "float32", (1, 1, 8, 8))]


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """40 digit images: few samples, as a user's folder of photo crops is."""
    from tests import real_data

    return real_data.write_digit_images(tmp_path_factory.mktemp("few") / "images", count=40)


def test_few_samples_calibrate_on_half_many_on_thirty_percent_and_the_count_never_jumps():
    assert calibration_count(4) == 2 and calibration_count(64) == 32       # few: half (NNCF on 19 of 64 did not hold)
    assert calibration_count(180) == 90 and calibration_count(300) == 90   # up to 90 ...
    assert calibration_count(1000) == 256 and calibration_count(2) == 1    # ... then 30 %, at most 256; one evaluates
    counts = [calibration_count(n) for n in range(2, 1200)]
    assert all(b - a in (0, 1) for a, b in zip(counts, counts[1:]))        # grows with n, no jump down


def test_eval_data_is_read_like_data_and_a_bad_one_names_its_flag(few, digits, tmp_path):
    source = DataSource(few, eval_path=digits["arrays"], limit=100)
    model = SimpleNamespace(inputs=IMAGE, outputs=[])
    from app.pipeline import split_data

    calibration, evaluation = split_data(source, model, seed=0)
    assert len(calibration) == 40 and len(evaluation) == 100                # all of --data; --eval-data (its limit)
    assert calibration.kind == "images" and evaluation.kind == "arrays"
    for bad, words in ((tmp_path / "none", "no such file"), (tmp_path, "empty")):
        with pytest.raises(BadInput) as e:
            split_data(DataSource(few, eval_path=bad), model, seed=0)
        assert str(e.value).startswith(f"--eval-data {bad}") and words in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(BadInput, match="the same as --data"):
        split_data(DataSource(few, eval_path=few), model, seed=0)


def test_many_calibration_samples_are_capped_by_a_seeded_pick(digits, monkeypatch):
    monkeypatch.setattr(data_module, "MAX_CALIBRATION", 50)
    data = load_data(DataSource(digits["arrays"], limit=120), IMAGE)
    part = data.calibration_part(seed=0)
    assert len(part) == 50 and len(data.calibration_part(seed=0)) == 50
    keys = lambda d: {s["x"].tobytes() for s in d.samples}  # noqa: E731
    assert keys(part) == keys(data.calibration_part(seed=0)) != keys(data.calibration_part(seed=1))


def test_evaluate_finds_the_held_out_part_from_the_recorded_counts(digits):
    data = load_data(DataSource(digits["arrays"], limit=100), IMAGE)
    calibration, evaluation = data.split(seed=3)
    recorded = {"source": str(digits["arrays"]), "split_seed": 3, "same_folder": True,
                "calibration_samples": len(calibration), "evaluation_samples": len(evaluation)}
    part, note = held_out(data, recorded, digits["arrays"])
    assert [s["x"].tobytes() for s in part.samples] == [s["x"].tobytes() for s in evaluation.samples]
    assert "one folder" in note
    # a manifest of the old 30 % split: its counts, not today's policy, find its part
    old = data.split(seed=0, calibration=30)[1]
    part, _ = held_out(data, {**recorded, "split_seed": 0, "calibration_samples": 30, "evaluation_samples": 70},
                       digits["arrays"])
    assert len(part) == 70 and [s["x"].tobytes() for s in part.samples] == [s["x"].tobytes() for s in old.samples]


def test_openvino_int8_with_eval_data_calibrates_on_all_of_data_with_every_sample_given_to_nncf(cli, few, digits,
                                                                                                 tmp_path):
    pytest.importorskip("nncf")
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "openvino", "--precision", "int8", "--data", few,
            "--eval-data", digits["arrays"], "--out", tmp_path, "--json", "--int8-engine", "nncf")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["evaluation"]["samples"] == 300                           # all of --eval-data
    assert not any("SAME FOLDER" in w for w in result["warnings"]) and "SAME FOLDER" not in r.err
    manifest = json.loads(open(result["manifest"]).read())
    d = manifest["recorded"]["data"]
    assert d == result["data"]
    assert (d["calibration_samples"], d["evaluation_samples"], d["same_folder"]) == (40, 300, False)
    assert d["source"] == str(few) and d["evaluation_source"] == str(digits["arrays"]) and "warning" not in d
    assert manifest["options"]["data"]["eval_path"] == str(digits["arrays"])
    recorded = manifest["recorded"]
    # NNCF was given, and read, every calibration sample (not its own subset of 300, not the 30 % of a split)
    assert recorded["calibration_samples"] == recorded["nncf_subset_size"] == recorded["nncf_samples_read"] == 40
    assert recorded["nncf_range_estimator"] == recorded["quantizer"]["range_estimator"] == "nncf"   # its own
    # evaluate agrees: --eval-data is not what it was calibrated on; --data is, and it says so
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, result["artifact"], "--data", digits["arrays"], "--json")
    assert r.code == 0 and "its --eval-data" in json.loads(r.out)["split"]
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, result["artifact"], "--data", few, "--json")
    assert r.code == 0 and "CALIBRATED ON THESE SAMPLES" in json.loads(r.out)["split"]


def test_bad_eval_data_is_one_line_and_exit_2(cli, few, digits, tmp_path):
    args = ("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8")
    r = cli(*args, "--eval-data", digits["arrays"], "--json")                     # no --data
    out = json.loads(r.out)
    assert r.code == 2 and out["status"] == "failed" and "--eval-data" in out["message"] and "--data" in out["message"]
    r = cli(*args, "--data", few, "--eval-data", tmp_path / "missing", "--out", tmp_path, "--json")
    out = json.loads(r.out)
    assert r.code == 2 and out["exit_code"] == 2
    assert out["message"] == f"--eval-data {tmp_path / 'missing'}: no such file or folder"
    assert [ln for ln in r.err.splitlines() if ln.startswith("error:")] == [f"error: {out['message']}"]


@pytest.fixture(scope="module")
def observers(tmp_path_factory, few, digits):
    """ExecuTorch int8 of the digits CNN: the default (PT2E's histogram observer, with --eval-data) and the
    minmax observer (one folder, split), converted once."""
    from main import main

    out = tmp_path_factory.mktemp("observers")
    common = [str(digits["state"]), *DIGITS_ARGS, "--to", "executorch", "--precision", "int8", "--data", str(few)]
    assert main(["convert", *common, "--eval-data", str(digits["arrays"]), "--data-limit", "100",
                 "--out", str(out / "default")]) == 0
    assert main(["convert", *common, "--activation-observer", "minmax", "--out", str(out / "minmax")]) == 0
    return {k: out / k / "digits.xnnpack.int8.pte" for k in ("default", "minmax")}


def test_pt2e_activation_observer_is_recorded_and_changes_the_program(observers):
    pytest.importorskip("executorch")
    manifests = {k: json.loads(p.with_name(p.name + ".manifest.json").read_text()) for k, p in observers.items()}
    default, minmax = manifests["default"]["recorded"], manifests["minmax"]["recorded"]
    assert default["activation_observer"] == default["quantizer"]["activation_observer"] == "histogram"
    assert minmax["activation_observer"] == minmax["quantizer"]["activation_observer"] == "minmax"
    assert manifests["minmax"]["options"]["activation_observer"] == "minmax"
    assert default["quantizer"]["per_channel"] is True and default["weights"] == "int8 symmetric per channel"
    assert observers["default"].read_bytes() != observers["minmax"].read_bytes()
    assert default["calibration_samples"] == 40 and minmax["calibration_samples"] == 20   # all; half of one folder


def test_one_folder_says_loudly_that_calibration_and_evaluation_share_it(observers):
    manifest = json.loads(observers["minmax"].with_name("digits.xnnpack.int8.pte.manifest.json").read_text())
    d = manifest["recorded"]["data"]
    assert d["same_folder"] is True and (d["calibration_samples"], d["evaluation_samples"]) == (20, 20)
    assert d["warning"].startswith("CALIBRATION AND EVALUATION FROM THE SAME FOLDER") and "--eval-data" in d["warning"]
    assert d["warning"] in manifest["warnings"]
    assert not json.loads(observers["default"].with_name("digits.xnnpack.int8.pte.manifest.json").read_text())[
        "recorded"]["data"].get("warning")


def test_the_cli_text_says_the_split_and_warns(cli, few, digits, tmp_path):
    r = cli("convert", digits["state"], *DIGITS_ARGS, "--to", "onnx", "--precision", "int8", "--data", few,
            "--exporter", "torchscript", "--out", tmp_path)
    assert r.code == 0, r.err
    assert "data:         one folder: 20 samples calibrate, the other 20 evaluate" in r.out and "--eval-data" in r.out
    assert "warning: CALIBRATION AND EVALUATION FROM THE SAME FOLDER" in r.err
    # automatic int8 timed against the fp32 ONNX the quantizer read: recorded, and a warning when slower
    import json

    [manifest] = tmp_path.glob("*.int8.onnx.manifest.json")
    speed = json.loads(manifest.read_text())["recorded"]["speed_vs_fp32"]
    assert speed["int8_ms"] > 0 and speed["fp32_ms"] > 0
    assert speed["speedup"] == pytest.approx(speed["fp32_ms"] / speed["int8_ms"], rel=0.01)
    assert ("this int8 artifact runs at" in r.err) == (speed["speedup"] < 1), r.err


def test_the_settings_search_tries_each_runtimes_other_range_choices():
    """The budget loop's quantizer stage tries the ranges the defaults did not use: NNCF's other estimators,
    PT2E's histogram observer (static only: dynamic int8 reads no ranges)."""
    from converters.executorch import XnnpackSettings
    from converters.openvino import NncfSettings

    assert dict(NncfSettings(range_estimator="minmax").choices())["range_estimator"] == ("nncf", "mean_minmax",
                                                                                        "histogram")
    assert dict(XnnpackSettings().choices()) == {"per_channel": (False,), "activation_observer": ("minmax",)}
    assert dict(XnnpackSettings("dynamic").choices()) == {"per_channel": (False,)}
