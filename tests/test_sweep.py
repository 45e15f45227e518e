"""Deployment sweep: real ONNX Runtime sessions called from several threads at once, the knee of
throughput vs p99, and the Triton settings it writes (checked with Triton's own protobuf)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import CNN_ARGS


@pytest.fixture(scope="module")
def swept(tmp_path_factory, model_files):
    """A CNN, its ONNX artifact, and a small sweep of it saved as JSON."""
    from main import main

    root = tmp_path_factory.mktemp("sweep")
    state = root / "cnn.pt"
    state.write_bytes(model_files["cnn_state"].read_bytes())
    assert main(["convert", str(state), "--to", "onnx", *CNN_ARGS, "--out", str(root)]) == 0
    return root, state, root / "cnn.fp32.onnx"


def run_sweep_cli(cli, state, artifact, *extra):
    r = cli("bench", state, artifact, *CNN_ARGS, "--sweep", "threads=1", "batch=1,2", "concurrency=1,2",
            "--sweep-seconds", "0.15", "--json", *extra)
    assert r.code == 0, r.err
    return json.loads(r.out)


def test_sweep_measures_every_point_and_proposes_settings(cli, swept, tmp_path):
    root, state, artifact = swept
    data = run_sweep_cli(cli, state, artifact, "--plot", tmp_path / "sweep.png")
    assert data["kind"] == "sweep" and data["grid"] == {"threads": [1], "batch": [1, 2], "concurrency": [1, 2]}
    points = data["points"]
    assert {(p["batch"], p["concurrency"]) for p in points} == {(1, 1), (1, 2), (2, 1), (2, 2)}
    for p in points:
        assert p["calls"] >= p["concurrency"] and p["throughput"] > 0 and 0 < p["p50_ms"] <= p["p99_ms"]
        assert p["artifact"] == str(artifact.resolve()) and p["runtime"] == "onnxruntime"
    (proposal,) = data["proposals"]
    knee = proposal["knee"]
    assert knee in points
    assert proposal["instances"] == knee["concurrency"] and proposal["threads_per_instance"] == knee["threads"]
    assert proposal["preferred_batch_sizes"] == ([2] if knee["batch"] == 2 else [])
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_serve_bundle_from_sweep_writes_the_proposal_into_config_pbtxt(cli, swept, tmp_path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    root, state, artifact = swept
    data = run_sweep_cli(cli, state, artifact, "--p99-budget-ms", "10000")  # every point fits: the fastest wins
    proposal = data["proposals"][0]
    assert proposal["knee"]["throughput"] == max(p["throughput"] for p in data["points"])
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(data))
    r = cli("serve-bundle", artifact, "--out", tmp_path / "repo", "--from-sweep", sweep_file, "--json")
    assert r.code == 0, r.err
    config = text_format.Parse((tmp_path / "repo" / "cnn_fp32" / "config.pbtxt").read_text(),
                               model_config_pb2.ModelConfig())
    assert config.instance_group[0].count == proposal["instances"]
    assert config.parameters["intra_op_thread_count"].string_value == str(proposal["threads_per_instance"])
    assert list(config.dynamic_batching.preferred_batch_size) == proposal["preferred_batch_sizes"]
    if proposal["preferred_batch_sizes"]:
        assert config.dynamic_batching.max_queue_delay_microseconds == proposal["max_queue_delay_us"] > 0
    assert config.max_batch_size >= proposal["knee"]["batch"]


def test_knee_of_a_known_curve():
    from app.bench.sweep import SweepPoint, knee, pareto

    def point(tp, p99, c):
        return SweepPoint("a.onnx", "a.onnx", "onnxruntime", 1, 1, c, 100, tp, p99 / 2, p99)

    # throughput climbs fast, then flattens while p99 keeps growing: the knee is where it flattens
    curve = [point(100, 1.0, 1), point(190, 1.2, 2), point(260, 1.5, 3), point(270, 4.0, 4), point(275, 9.0, 5)]
    dominated = point(150, 5.0, 6)
    assert [p.concurrency for p in pareto(curve + [dominated])] == [1, 2, 3, 4, 5]
    assert knee(curve + [dominated]).concurrency == 3
    assert knee(curve, p99_budget_ms=5.0).concurrency == 4
    assert knee(curve, p99_budget_ms=0.5).concurrency == 1  # nothing fits: the lowest-latency point


@pytest.mark.parametrize("items, message", [
    (["threads=1", "threads=2"], "threads given twice"),
    (["cores=2"], "KEY one of threads, batch, concurrency"),
    (["batch=1,x"], "not a list of whole numbers"),
    (["concurrency=0"], "positive whole numbers"),
    (["concurrency=100"], "at most 64 sessions"),
])
def test_bad_sweep_is_one_line(cli, swept, items, message):
    _, state, artifact = swept
    r = cli("bench", state, artifact, *CNN_ARGS, "--sweep", *items)
    assert r.code == 2 and message in r.err and len(r.err.strip().splitlines()) == 1


def test_from_sweep_refuses_what_it_cannot_use(cli, swept, tmp_path):
    _, _, artifact = swept
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "sweep", "points": [], "proposals": []}))
    r = cli("serve-bundle", artifact, "--out", tmp_path / "repo", "--from-sweep", other)
    assert r.code == 2 and "no proposal for cnn.fp32.onnx" in r.err
    not_sweep = tmp_path / "bench.json"
    not_sweep.write_text("{}")
    r = cli("serve-bundle", artifact, "--out", tmp_path / "repo", "--from-sweep", not_sweep)
    assert r.code == 2 and "not a sweep result" in r.err
    r = cli("serve-bundle", artifact, "--out", tmp_path / "repo", "--from-sweep", other, "--instances", "2")
    assert r.code == 2 and "--instances and --from-sweep" in r.err
    assert not (tmp_path / "repo").exists()


def test_a_saved_sweep_goes_into_the_report(cli, swept, tmp_path):
    root, state, artifact = swept
    data = run_sweep_cli(cli, state, artifact)
    (tmp_path / "sweep.json").write_text(json.dumps(data))
    out = tmp_path / "report.html"
    r = cli("report", tmp_path / "sweep.json", "--out", out)
    assert r.code == 0, r.err
    text = out.read_text(encoding="utf-8")
    assert '<section id="sweep">' in text and '<figure id="chart-sweep"><svg' in text
    table = text[text.index('<table class="sweep">'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 1 + len(data["points"])  # header + one row per point
    assert f"instance_group count {data['proposals'][0]['instances']}" in text and "--from-sweep" in text


# ---------------------------------------------------------------------------- the artifact's own axes
FIXED_SOURCE = ["--arch", "tests.models:SmallCNN", "--input", "x:1x3x32x32"]  # no --dynamic: batch 1 fixed
FAST = ["--warmup", "1", "--warmup-seconds", "0", "--runs", "5", "--min-seconds", "0", "--rounds", "1"]


def test_sweep_takes_the_artifacts_own_dynamic_batch_axis(cli, swept):
    root, state, onnx_file = swept  # converted with --dynamic x:0:batch; the source given at a fixed batch 1
    r = cli("bench", state, onnx_file, *FIXED_SOURCE, "--sweep", "threads=1", "batch=1,2", "concurrency=1",
            "--sweep-seconds", "0.1", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert sorted(p["batch"] for p in data["points"]) == [1, 2]
    assert data["grid"]["batch"] == [1, 2] and data["proposals"][0]["max_batch"] == 2
    assert not any("no dynamic batch axis" in n for n in data["notes"])
    assert any("cnn.fp32.onnx: its own batch axis is dynamic" in n and "fixed batch size 1" in n for n in data["notes"])


def test_bench_takes_the_artifacts_own_dynamic_batch_axis(cli, swept):
    root, state, onnx_file = swept
    r = cli("bench", state, onnx_file, *FIXED_SOURCE, *FAST, "--batch", "1,2", "--no-openvino", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    rows = {(row["name"], row["batch"]): row for row in data["results"]}
    assert set(rows) == {("PyTorch eager", 1), ("cnn.fp32.onnx", 1), ("cnn.fp32.onnx", 2)}
    assert rows[("cnn.fp32.onnx", 1)]["cosine"] > 0.999  # against the source at batch 1
    assert rows[("cnn.fp32.onnx", 2)]["speedup_vs_baseline"] is None  # no source at batch 2 to compare with
    source_note = [n for n in data["notes"] if n.startswith("the source model has no dynamic batch axis")]
    assert len(source_note) == 1 and "batch size 1 only, not at 2" in source_note[0]
    assert "cnn.fp32.onnx measured there" in source_note[0] and "--dynamic NAME:0:batch" in source_note[0]


def test_an_artifacts_fixed_batch_axis_is_measured_at_its_own_size(cli, swept, tmp_path):
    root, state, _ = swept
    assert cli("convert", state, "--to", "onnx", *FIXED_SOURCE, "--out", tmp_path).code == 0
    fixed = tmp_path / "cnn.fp32.onnx"  # batch fixed at 1 in the file; the source given dynamic
    r = cli("bench", state, fixed, *CNN_ARGS, *FAST, "--batch", "1,2", "--no-openvino", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert sorted((row["name"], row["batch"]) for row in data["results"]) == [
        ("PyTorch eager", 1), ("PyTorch eager", 2), ("cnn.fp32.onnx", 1)]
    assert not data["skipped"]  # not fed batch 2 and failed: measured at the size the file takes
    assert any(n.startswith("cnn.fp32.onnx: its batch axis is fixed in the file, so only batch 1") for n in data["notes"])


def test_each_measured_point_is_said_as_a_stage_the_window_reads_back():
    from app.bench.sweep import SweepPoint, measured_point, point_stage

    point = SweepPoint("/m/cnn.fp32.onnx", "cnn: fp32 (2).onnx", "onnxruntime", 2, 4, 3, 120, 812.34567, 1.5, 4.25)
    stage = point_stage(point)
    assert stage.startswith("measured cnn: fp32 (2).onnx: 2 thread(s), batch 4, 3 at once: 812.346 items/s")
    assert measured_point(stage) == {"name": "cnn: fp32 (2).onnx", "threads": 2, "batch": 4, "concurrency": 3,
                                     "throughput": 812.346, "p99_ms": 4.25}
    assert measured_point("cnn.fp32.onnx: 2 thread(s), batch 4, 3 at once") is None   # measuring, not measured
    assert measured_point(stage[:60]) is None                                            # cut on its way
