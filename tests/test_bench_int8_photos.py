"""benchmarks/bench_int8_photos.py's pieces: the crops split by photo, the figures, the goal, the table, the
commands it gives the CLI (the conversions themselves take minutes: the benchmark's ``--quick`` runs them)."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from benchmarks import bench_int8_photos as b
from tests import photos


def test_crops_are_split_by_photo_and_read_as_the_app_reads_them(tmp_path):
    calib, evaluation = b.write_crops(tmp_path, "lite0", calib_per_photo=1, eval_per_photo=2)
    judged = b.check_split(calib, evaluation)
    assert judged == set(photos.EVALUATION_PHOTOS)
    assert {b.photo_of(p) for p in calib.glob("*.png")} == set(photos.CALIBRATION_PHOTOS)
    x = b.load_crops(evaluation)
    assert x.shape == (2 * len(photos.EVALUATION_PHOTOS), 3, 224, 224) and x.dtype == np.float32
    # imagenet normalisation: a 0..255 pixel lands within [(0-0.485)/0.229, (1-0.406)/0.225]
    assert -2.2 < float(x.min()) < 0 < float(x.max()) < 2.7
    # a crop of an evaluation photo among the calibration crops is caught
    stray = next(evaluation.glob("*.png"))
    shutil.copy(stray, calib / stray.name)
    with pytest.raises(ValueError, match=b.photo_of(stray)):
        b.check_split(calib, evaluation)


def test_figures_and_goal():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((40, 10)) * 4
    same = b.figures(ref, ref)
    assert same["confident_agreement"] == 1.0 and same["top1_agreement"] == 1.0
    assert same["cosine"] == pytest.approx(1.0) and same["samples"] == 40 and 0 < same["confident_n"] <= 40
    flipped = ref.copy()
    flipped[:10] = -flipped[:10]               # a quarter of the samples changed beyond recognition
    worse = b.figures(ref, flipped)
    assert worse["top1_agreement"] <= 0.8 and worse["cosine"] < 0.8
    assert worse["confident_n"] == same["confident_n"] and worse["confident_agreement"] < 1.0

    good = {"runtime": "onnx", "confident_agreement": 0.995, "cosine": 0.993, "speedup": 1.6}
    assert b.goal_met(good) is True
    assert b.goal_met({**good, "speedup": 1.3}) is False
    assert b.goal_met({**good, "runtime": "executorch", "speedup": 1.3}) is True   # XNNPACK's floor is 1.2×
    assert b.goal_met({**good, "confident_agreement": 0.98}) is False
    assert b.goal_met({**good, "cosine": 0.98}) is False
    assert b.goal_met({**good, "speedup": None}) is None
    assert b.goal_met({**good, "confident_agreement": math.nan}) is None


def test_table_rows():
    rows = [b.Row("lite0", "onnx", "automatic", 1.0, 70, 128, 0.97, 0.995, 3.0, 6.0).finish(),
            b.Row("lite0", "openvino", "budget", 0.9, 70, 128, 0.8, 0.96, 2.0, 6.0, note="3 rounds, not met").finish(),
            b.Row("lite1", "executorch", "automatic", note="error: failed").finish()]
    text = b.table(rows)
    lines = text.splitlines()
    assert len(lines) == 2 + len(rows) and lines[0].startswith("| model | runtime | int8 mode")
    assert "| 1.000 (70) |" in lines[2] and "2.00×" in lines[2] and lines[2].endswith("| yes |")
    assert "budget (3 rounds, not met)" in lines[3] and lines[3].endswith("| **no** |")
    assert lines[4].endswith("| – |") and "– (–)" in lines[4]
    assert rows[0].speedup == pytest.approx(2.0) and rows[2].speedup is None


def test_convert_commands_follow_the_cli(tmp_path):
    flags = b.convert_flags()
    assert {"--accuracy-budget", "--data", "--precision", "--json"} <= flags
    calib, evaluation, out = tmp_path / "c", tmp_path / "e", tmp_path / "o"
    fp32 = b.convert_command("lite1", "openvino", "fp32", calib, evaluation, out, budget="cosine=0.99", flags=flags)
    assert fp32[fp32.index("--precision") + 1] == "fp32" and "--data" not in fp32
    assert fp32[fp32.index("--input") + 1] == "x:1x3x240x240" and fp32[fp32.index("--to") + 1] == "openvino"
    auto = b.convert_command("lite0", "onnx", "automatic", calib, evaluation, out, budget="cosine=0.99",
                             flags=flags | {"--eval-data"})
    assert auto[auto.index("--data") + 1] == str(calib) and auto[auto.index("--eval-data") + 1] == str(evaluation)
    assert "--accuracy-budget" not in auto
    budget = b.convert_command("lite0", "executorch", "budget", calib, evaluation, out, budget="kl=0.01",
                               flags=flags - {"--eval-data"})
    assert budget[budget.index("--accuracy-budget") + 1] == "kl=0.01" and "--eval-data" not in budget
    with pytest.raises(ValueError):
        b.convert_command("lite0", "onnx", "int4", calib, evaluation, out, budget="", flags=flags)


def test_bad_runtime_is_refused_with_exit_2(capsys):
    assert b.main(["--runtimes", "tflite"]) == 2
    assert "tflite" in capsys.readouterr().err
