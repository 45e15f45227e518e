"""The benchmark: statistics, the timing loop, the batch sweep, reports, unavailable and failing runners,
``bench``/``optimize`` on the command line and the window's job — on small real models, real ONNX
Runtime sessions and real files. Speed goals are measured in benchmarks/, never asserted here."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import CNN_ARGS, ENCODER_ARGS

FAST = ["--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0"]


@pytest.fixture(scope="module")
def cnn_artifacts(tmp_path_factory, model_files) -> dict[str, Path]:
    """The CNN's state dict with an ONNX fp32 and a TorchScript artifact converted from it."""
    from app.jobs import convert_in_process as convert
    from tests.requests import CNN
    from tests.requests import request as make_request

    root = tmp_path_factory.mktemp("bench")
    state = root / "cnn.pt"
    state.write_bytes(model_files["cnn_state"].read_bytes())
    out = {"state": state}
    for key, target in (("onnx", "onnx"), ("trace", "torchscript-trace")):
        req = make_request(state, target, **CNN, out_dir=root)
        out[key] = convert(req).artifact
    return out


def _check_row_statistics(row: dict, runs: int) -> None:
    assert row["runs"] >= runs
    assert row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p95_ms"] <= row["p99_ms"] <= row["max_ms"]
    assert row["min_ms"] <= row["mean_ms"] <= row["max_ms"] and row["std_ms"] >= 0
    assert row["throughput"] == pytest.approx(row["batch"] * 1000.0 / row["mean_ms"])
    assert row["load_ms"] > 0 and row["cold_ms"] > 0 and row["size_bytes"] > 0


# ---------------------------------------------------------------------------- statistics and the loop
def test_latency_stats_match_the_definitions():
    from app.bench.stats import LatencyStats

    rng = np.random.default_rng(3)
    seconds = rng.lognormal(-6, 0.5, 1001)  # skewed, like real latencies
    s = LatencyStats.from_seconds(seconds)
    ms = np.sort(seconds * 1000)
    assert s.count == 1001
    assert s.p50_ms == pytest.approx(ms[500]) and s.p90_ms == pytest.approx(ms[900]) and s.p99_ms == pytest.approx(ms[990])
    assert s.min_ms == pytest.approx(ms[0]) and s.max_ms == pytest.approx(ms[-1])
    assert s.mean_ms == pytest.approx(ms.mean()) and s.std_ms == pytest.approx(ms.std(ddof=1))
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p95_ms <= s.p99_ms <= s.max_ms
    assert s.throughput(4) == pytest.approx(4000.0 / ms.mean())
    with pytest.raises(ValueError):
        LatencyStats.from_seconds([])


def _counting_runner(path: Path):
    from app.runtimes.onnxrt import OnnxRuntimeRunner

    class Counting(OnnxRuntimeRunner):
        calls = 0

        def _call_impl(self, prepared):
            Counting.calls += 1
            return super()._call_impl(prepared)

    return Counting(path, path.name, threads=1)


def test_time_calls_meets_both_the_count_and_the_duration(cnn_artifacts):
    from app.bench.harness import BenchConfig, time_calls
    from app.model.inputs import make_feeds

    with _counting_runner(cnn_artifacts["onnx"]) as runner:
        runner.load()
        prepared = runner.prepare(make_feeds(runner.inputs))
        samples, capped = time_calls(runner, prepared, BenchConfig(warmup=4, warmup_seconds=0, runs=7, min_seconds=0))
        assert len(samples) == 7 and not capped
        assert type(runner).calls == 4 + 7  # warm-up calls are not timed
        samples, _ = time_calls(runner, prepared, BenchConfig(warmup=0, warmup_seconds=0, runs=3, min_seconds=0.25))
        assert len(samples) > 3 and sum(samples) <= 0.25 + max(samples) * 2  # ran on for the time, then stopped
        samples, capped = time_calls(runner, prepared, BenchConfig(warmup=0, warmup_seconds=0, runs=10**9,
                                                                   min_seconds=0, max_seconds=0.05))
        assert capped and 0 < len(samples) < 10**9
    assert runner.session is None  # the context manager closed it


def test_cancel_stops_the_timing_loop(cnn_artifacts):
    from app.bench.harness import BenchConfig, time_calls
    from app.errors import Cancelled
    from app.model.inputs import make_feeds

    with _counting_runner(cnn_artifacts["onnx"]) as runner:
        runner.load()
        prepared = runner.prepare(make_feeds(runner.inputs))
        asked = []
        with pytest.raises(Cancelled):
            time_calls(runner, prepared, BenchConfig(warmup=2, runs=10**9, min_seconds=1e9),
                       should_cancel=lambda: asked.append(1) or len(asked) > 20)
        assert len(asked) == 21


# ---------------------------------------------------------------------------- bench on the command line
def test_bench_sweeps_batches_and_reports_accuracy(cli, cnn_artifacts, tmp_path):
    a = cnn_artifacts
    csv_path, png_path = tmp_path / "bench.csv", tmp_path / "bench.png"
    r = cli("bench", a["state"], a["onnx"], a["trace"], *CNN_ARGS, *FAST, "--runs", "6", "--batch", "1,3",
            "--threads", "1", "--json", "--csv", csv_path, "--plot", png_path)
    assert r.code == 0, r.err
    data = json.loads(r.out)
    rows = data["results"]
    # the ONNX file runs in ONNX Runtime and, as a second row, in OpenVINO
    assert {(row["name"], row["batch"]) for row in rows} == {
        (name, b) for name in ("PyTorch eager", a["onnx"].name, a["onnx"].name + " [OpenVINO]", a["trace"].name)
        for b in (1, 3)}
    for row in rows:
        _check_row_statistics(row, 6)
        assert row["threads"] == 1
        assert row["cosine"] > 0.99999 and row["rel_l2"] < 1e-4  # fp32 artifacts compute what the source does
    by = {(row["name"], row["batch"]): row for row in rows}
    for b in (1, 3):
        base = by[("PyTorch eager", b)]
        assert base["baseline"] and base["speedup_vs_baseline"] == pytest.approx(1.0)
        onnx = by[(a["onnx"].name, b)]
        assert onnx["runtime"] == "onnxruntime" and onnx["provider"] == "CPUExecutionProvider"
        assert onnx["speedup_vs_baseline"] == pytest.approx(base["p50_ms"] / onnx["p50_ms"])
    assert by[(a["trace"].name, 1)]["runtime"] == "torchscript"
    assert by[(a["onnx"].name + " [OpenVINO]", 1)]["runtime"] == "openvino"
    assert data["machine"]["threads"] == 1 and data["machine"]["onnxruntime_providers"]
    with csv_path.open(newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(rows)
    assert {(t["name"], int(t["batch"])) for t in table} == set(by)
    assert all(float(t["p50_ms"]) == pytest.approx(by[(t["name"], int(t["batch"]))]["p50_ms"]) for t in table)
    from PIL import Image

    with Image.open(png_path) as img:
        assert img.format == "PNG" and img.width > 300 and img.height > 300


def test_bench_prints_a_table_and_reports_unavailable_runners(cli, cnn_artifacts, tmp_path):
    engine = tmp_path / "cnn.fp16.engine"
    engine.write_bytes(b"\x00not an engine built here" * 8)
    r = cli("bench", cnn_artifacts["state"], cnn_artifacts["onnx"], engine, *CNN_ARGS, *FAST,
            "--providers", "CPU,CUDA")
    assert r.code == 0, r.err  # unavailable is not a failure
    lines = r.out.splitlines()
    assert lines[0].startswith("machine:")
    assert any(line.startswith("PyTorch eager") for line in lines)
    assert any(line.startswith(cnn_artifacts["onnx"].name + " ") for line in lines)  # CPU measured
    unavailable = [line for line in lines if line.startswith("unavailable:")]
    assert len(unavailable) == 2
    assert any("CUDAExecutionProvider is not in this ONNX Runtime build" in line for line in unavailable)
    assert any(engine.name in line and "TensorRT" in line for line in unavailable)


def test_a_failing_runner_does_not_abort_the_others(cli, cnn_artifacts, model_files):
    # cnn.onnx names its input "image"; the source model's input is "x"
    r = cli("bench", cnn_artifacts["state"], model_files["cnn_onnx"], cnn_artifacts["onnx"], *CNN_ARGS, *FAST, "--json")
    assert r.code == 1
    data = json.loads(r.out)
    good = cnn_artifacts["onnx"].name
    assert {row["name"] for row in data["results"]} == {"PyTorch eager", good, good + " [OpenVINO]"}
    # the file fails in both runtimes, each reported with the reason
    assert {(s["name"], s["runtime"]) for s in data["skipped"]} == {("cnn.onnx", "onnxruntime"),
                                                                   ("cnn.onnx [OpenVINO]", "openvino")}
    for failed in data["skipped"]:
        assert failed["status"] == "failed" and "image" in failed["reason"]


def test_batch_sweep_needs_a_dynamic_batch_axis(cli, cnn_artifacts):
    r = cli("bench", cnn_artifacts["state"], "--arch", "tests.models:SmallCNN", "--input", "x:2x3x32x32",
            *FAST, "--batch", "1,2,4", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert [row["batch"] for row in data["results"]] == [2]
    assert any("no dynamic batch axis" in n for n in data["notes"])


def test_bench_two_int64_inputs_at_two_batch_sizes(cli, model_files):
    r = cli("bench", model_files["encoder_state"], *ENCODER_ARGS, *FAST, "--batch", "1,2", "--json")
    assert r.code == 0, r.err
    rows = json.loads(r.out)["results"]
    assert [(row["name"], row["batch"]) for row in rows] == [("PyTorch eager", 1), ("PyTorch eager", 2)]


@pytest.mark.parametrize("flags, message", [
    (["--batch", "1,x"], "not a positive integer"),
    (["--runs", "0"], "--runs 0"),
    (["--threads", "0"], "--threads 0"),
])
def test_bench_bad_flags_are_one_line_exit_2(cli, cnn_artifacts, flags, message):
    r = cli("bench", cnn_artifacts["state"], *CNN_ARGS, *flags)
    assert r.code == 2 and message in r.err and r.err.count("\n") == 1


def test_bench_missing_artifact_is_bad_input(cli, cnn_artifacts, tmp_path):
    r = cli("bench", cnn_artifacts["state"], tmp_path / "nope.onnx", *CNN_ARGS, *FAST)
    assert r.code == 2 and "nope.onnx" in r.err


# ---------------------------------------------------------------------------- the window's job, optimize
def test_bench_job_of_a_typed_request_from_the_window(cnn_artifacts):
    from app.bench.harness import BenchConfig
    from app.bench.run import BenchRequest, bench_job
    from tests.requests import CNN, source

    stages = []
    request = BenchRequest(source(cnn_artifacts["state"], **CNN), (cnn_artifacts["onnx"],),
                           BenchConfig(batches=(1, 2), warmup=1, runs=4, min_seconds=0.0, threads=None))
    result = bench_job(pickle.loads(pickle.dumps(request)),  # it crosses a process boundary as it is
                       progress=lambda stage, fraction=None: stages.append((stage, fraction)))
    json.dumps(result)  # plain data: it crosses a process boundary
    assert len(result["results"]) == 6  # eager, ONNX Runtime, OpenVINO × batch 1, 2
    fractions = [f for _, f in stages if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    # the stages count what the work is made of: runner N of M, batch size N of M (and rounds, rate-limited)
    said = [stage for stage, _ in stages]
    assert any(s.endswith("(3 of 3), batch 2 (2 of 2): first call") for s in said), said
    assert any(s.endswith("batch 2 (2 of 2): warm-up") for s in said), said


def test_optimize_tries_each_calibration_method_and_recommends_within_budget(cli, cnn_artifacts, tmp_path):
    out = tmp_path / "opt"
    r = cli("optimize", cnn_artifacts["state"], *CNN_ARGS, *FAST, "--only", "onnx int8 static", "--out", out,
            "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    rows = data["results"]
    methods = {row["calibration_method"] for row in rows if not row["baseline"]}
    assert methods == {"minmax", "entropy", "percentile"}
    for row in rows:
        _check_row_statistics(row, 5)
        if not row["baseline"]:
            assert Path(row["artifact"]).is_file() and Path(row["artifact"]).is_relative_to(out)
            assert row["within_budget"] == (row["accuracy_cosine"] >= data["budget_cosine"])
    fits = [row for row in rows if row["within_budget"]]
    assert data["recommended"]["name"] == min(fits, key=lambda row: row["p50_ms"])["name"]
    assert any(s["status"] == "unavailable" and s["name"] == "tensorrt" for s in data["skipped"])


def test_recommend_none_when_nothing_fits():
    from app.bench.optimize import recommend

    rows = [{"name": "PyTorch eager", "batch": 1, "baseline": True, "within_budget": None, "p50_ms": 2.0},
            {"name": "onnx int8", "batch": 1, "baseline": False, "within_budget": False, "p50_ms": 1.0}]
    assert recommend(rows, 0.99) is None
    rows.append({"name": "onnx fp32", "batch": 1, "baseline": False, "within_budget": True, "p50_ms": 1.5})
    assert recommend(rows, 0.99)["name"] == "onnx fp32"
