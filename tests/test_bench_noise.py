"""Comparisons that survive a noisy desktop: interleaved rounds, bootstrap intervals on p50 and on each
speed-up, and the verdicts they allow — on real ONNX Runtime sessions and on samples with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import CNN_ARGS


@pytest.fixture(scope="module")
def onnx_cnn(tmp_path_factory, model_files):
    from app.jobs import convert_in_process as convert
    from tests.requests import CNN
    from tests.requests import request as make_request

    root = tmp_path_factory.mktemp("noise")
    state = root / "cnn.pt"
    state.write_bytes(model_files["cnn_state"].read_bytes())
    req = make_request(state, "onnx", **CNN, out_dir=root)
    return state, convert(req).artifact


def test_median_interval_covers_the_true_median_and_narrows_with_more_runs():
    from app.bench.stats import median_ci

    rng = np.random.default_rng(1)
    # 200 repetitions of an experiment whose true median is 10 ms: a 95 % interval covers it ~95 % of the time
    covered = sum(lo <= 10.0 <= hi for lo, hi in (median_ci(10.0 + rng.standard_normal(50), resamples=400, seed=i)
                                                   for i in range(200)))
    assert 0.88 * 200 <= covered <= 200
    few = median_ci(10.0 + rng.standard_normal(20))
    many = median_ci(10.0 + rng.standard_normal(2000))
    assert (many[1] - many[0]) < (few[1] - few[0]) / 3


def test_speedup_verdicts_on_samples_with_known_answers():
    from app.bench.stats import speedup_ci, verdict

    rng = np.random.default_rng(2)
    base = 10.0 + rng.standard_normal(200)
    same = 10.0 + rng.standard_normal(200)
    half = 5.0 + 0.5 * rng.standard_normal(200)
    assert verdict(speedup_ci(base, same)) == "no measurable difference"
    lo, hi = speedup_ci(base, half)
    assert 1.8 < lo < 2.0 < hi < 2.2 and verdict((lo, hi)) == "faster"
    assert verdict(speedup_ci(half, base)) == "slower"


def test_runners_are_timed_in_interleaved_rotating_rounds(onnx_cnn):
    from app.bench.harness import BenchConfig, run_benchmark
    from app.runtimes.onnxrt import OnnxRuntimeRunner
    from app.model.specs import parse_dynamic, parse_input, apply_dynamic

    _, artifact = onnx_cnn
    order: list[str] = []

    class Recording(OnnxRuntimeRunner):
        def timed_call(self, prepared):
            order.append(self.name)
            return super().timed_call(prepared)

    runners = [Recording(artifact, name, threads=1) for name in ("A", "B", "C")]
    specs = apply_dynamic([parse_input("x:1x3x32x32")], [parse_dynamic("x:0:batch")])
    config = BenchConfig(batches=(1,), warmup=0, warmup_seconds=0, runs=6, min_seconds=0, rounds=3, threads=1)
    result = run_benchmark(runners[0], runners[1:], specs, config)
    # phase 1: one cold call each, alone; then 3 rounds of 2 timed calls, the order rotating
    assert order == ["A", "B", "C"] + ["A", "A", "B", "B", "C", "C"] + ["B", "B", "C", "C", "A", "A"] \
        + ["C", "C", "A", "A", "B", "B"]
    rows = {r.name: r for r in result.rows}
    assert all(r.stats.count == 6 for r in rows.values())
    assert result.config.rounds == 3 and result.to_json()["config"]["rounds"] == 3


def test_the_verdict_follows_the_interval_on_a_real_benchmark(cli, onnx_cnn):
    """Two sessions of one file: whatever this machine's noise, the report must not claim a difference
    that its own interval does not support."""
    import json

    state, artifact = onnx_cnn
    r = cli("bench", state, artifact, *CNN_ARGS, "--runs", "60", "--min-seconds", "0.3", "--rounds", "6",
            "--threads", "1", "--json")
    assert r.code == 0, r.err
    row = next(x for x in json.loads(r.out)["results"] if not x["baseline"])
    lo, hi = row["speedup_ci_low"], row["speedup_ci_high"]
    assert lo <= row["speedup_vs_baseline"] <= hi
    assert row["p50_ci_low_ms"] <= row["p50_ms"] <= row["p50_ci_high_ms"]
    assert row["verdict"] == ("faster" if lo > 1 else "slower" if hi < 1 else "no measurable difference")


def test_rounds_must_be_positive(cli, onnx_cnn):
    state, artifact = onnx_cnn
    r = cli("bench", state, artifact, *CNN_ARGS, "--rounds", "0")
    assert r.code == 2 and "--rounds 0: give a positive number of rounds" in r.err


def test_drift_between_rounds_widens_the_p50_interval_and_cancels_out_of_paired_speedups():
    from app.bench.stats import median_ci, speedup_ci, verdict

    rng = np.random.default_rng(3)
    drift = [1.0, 1.6, 1.0, 1.3, 1.0]  # the machine got busy in rounds 2 and 4, for both runners alike
    a = [d * (10.0 + 0.1 * rng.standard_normal(200)) for d in drift]
    b = [d * (10.0 + 0.1 * rng.standard_normal(200)) for d in drift]
    by_round = median_ci(a)
    flat = median_ci(np.concatenate(a))  # as if every call were independent of when it ran
    assert (by_round[1] - by_round[0]) > 5 * (flat[1] - flat[0])
    assert verdict(speedup_ci(a, b)) == "no measurable difference"
    faster = [r / 2.0 for r in b]
    assert verdict(speedup_ci(a, faster)) == "faster"
