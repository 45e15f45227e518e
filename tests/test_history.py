"""What was made from a model before (issue 33, item 2): the artifacts found from their manifests on disk,
the run history beside them and the last saved benchmark — each read from untrusted JSON that may be
garbled or hostile, which is skipped with a note, never raised."""

from __future__ import annotations

import json
import os
import shutil

from app.accuracy.verdict import verdict_of_manifest
from app.artifacts.history import (MAX_RUNS, artifacts_for, history_path, new_run, read_runs, record_run)
from app.artifacts.manifest import manifest_path_of
from app.bench.saved import latest_benchmark_for, plain_result
from app.jobs import convert_in_process as convert
from app.pipeline import from_manifest
from tests.requests import request


def test_artifacts_made_from_the_model_are_found_with_their_verdicts_and_the_rest_is_noted(workdir):
    out = workdir["out"]
    fp16 = convert(request(workdir["cnn_onnx"], "onnx", "fp16", out_dir=out))
    int8 = convert(request(workdir["cnn_onnx"], "onnx", "int8", out_dir=out))
    other = convert(request(workdir["mlp_safetensors"], "onnx", "fp32", arch="tests.models:MLP", out_dir=out))  # another model's
    (out / "garbled.onnx").write_bytes(b"x")
    (out / "garbled.onnx.manifest.json").write_text('{"artifact": "garbled.onnx", "source": ')   # cut short
    (out / "wrong.onnx").write_bytes(b"x")
    (out / "wrong.onnx.manifest.json").write_text(json.dumps({"artifact": "wrong.onnx", "files": "nope"}))
    (out / "deep.onnx.manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    os.mkfifo(out / "fifo.onnx.manifest.json")   # would block a plain open(); refused without reading
    moved = json.loads(fp16.manifest.read_text())   # its artifact deleted, its manifest left behind
    (out / "cnn.moved.onnx.manifest.json").write_text(json.dumps(dict(moved, artifact="cnn.moved.onnx")))

    found = artifacts_for(workdir["cnn_onnx"], out)
    assert sorted(a.artifact for a in found.artifacts) == sorted([fp16.artifact, int8.artifact])
    assert other.artifact not in [a.artifact for a in found.artifacts]   # not noted either: another model's
    notes = "\n".join(found.notes)
    for name in ("garbled.onnx.manifest.json", "wrong.onnx.manifest.json", "deep.onnx.manifest.json",
                 "fifo.onnx.manifest.json", "cnn.moved.onnx"):
        assert name in notes, notes
    assert "no longer on disk" in notes and "FIFO" in notes
    by_name = {a.artifact.name: a for a in found.artifacts}
    assert verdict_of_manifest(by_name["cnn.fp16.onnx"].manifest) == fp16.verdict
    assert by_name["cnn.fp16.onnx"].when[:4].isdigit()

    # read back as the window's table shows it: the same figures and verdict as the run that made it
    req, result = from_manifest(by_name["cnn.int8.onnx"].manifest, int8.artifact)
    assert (req.target, str(req.precision), req.out_dir) == ("onnx", "int8", out)
    assert result.verification.cosine == int8.verification.cosine and result.size_bytes == int8.size_bytes
    assert result.verdict == int8.verdict and result.manifest == manifest_path_of(int8.artifact)

    # the model's own folder when no output folder is given
    assert artifacts_for(workdir["cnn_onnx"], None).artifacts == []


def test_an_artifact_of_an_earlier_version_of_the_model_is_left_out_with_a_note(workdir, tmp_path):
    out = workdir["out"]
    convert(request(workdir["cnn_onnx"], "onnx", "fp16", out_dir=out))
    shutil.copy(workdir["cnn_pt2"], tmp_path / "x.bin")
    with open(workdir["cnn_onnx"], "ab") as f:   # the user retrained: same path, other content
        f.write(b"\0")
    found = artifacts_for(workdir["cnn_onnx"], out)
    assert found.artifacts == [] and "earlier version of cnn.onnx" in found.notes[0]


def test_a_manifest_whose_figures_are_not_numbers_still_reads_back_with_its_recorded_verdict(workdir):
    out = workdir["out"]
    made = convert(request(workdir["cnn_onnx"], "onnx", "fp16", out_dir=out))
    m = json.loads(made.manifest.read_text())
    m["verification"].update(cosine="high", max_abs_err=[1]), m["options"].update(opset={"x": 1})
    m["seconds"], m["files"][0]["size_bytes"] = "soon", -5
    made.manifest.write_text(json.dumps(m))
    (found,) = artifacts_for(workdir["cnn_onnx"], out).artifacts
    req, result = from_manifest(found.manifest, found.artifact)
    assert result.verification is None and result.seconds == 0.0 and result.size_bytes == 0
    assert verdict_of_manifest(found.manifest).kind == "passed"


def test_the_run_history_keeps_runs_in_order_and_survives_a_damaged_file(tmp_path):
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model")
    out, store = tmp_path / "out", tmp_path / "settings" / "history"   # the artifacts' folder; the history's
    out.mkdir()
    assert read_runs(store, model) == ([], [])
    verdict = {"kind": "passed", "label": "passed", "reason": "r", "figure": None}
    for i in range(3):
        record_run(store, model, new_run("convert", model, out, [{"target": "onnx", "precision": "fp32",
                                                                    "artifact": out / f"a{i}", "verdict": verdict}]))
    runs, notes = read_runs(store, model)
    assert [r["artifacts"][0]["artifact"] for r in runs] == [str(out / f"a{i}") for i in range(3)] and not notes
    assert runs[0]["folder"] == str(out) and not list(out.iterdir())   # nothing written among the artifacts
    name = history_path(store, model).name
    assert name.startswith("m.onnx.") and name.endswith(".history.json")
    assert history_path(store, tmp_path / "other" / "m.onnx") != history_path(store, model)

    # another model's runs in the same file are kept, not shown; entries not shaped like runs are left out
    data = json.loads(history_path(store, model).read_text())
    data["runs"] += [dict(data["runs"][0], model=str(tmp_path / "other" / "m.onnx")), "junk", {"id": 5}]
    history_path(store, model).write_text(json.dumps(data))
    runs, notes = read_runs(store, model)
    assert len(runs) == 3 and "3 entries" in notes[0]

    for _ in range(MAX_RUNS + 2):
        record_run(store, model, new_run("benchmark", model, out, [], {"results": []}))
    runs, _ = read_runs(store, model)
    assert len(runs) <= MAX_RUNS and runs[-1]["kind"] == "benchmark"

    history_path(store, model).write_bytes(b"\xff\xfe not json")
    runs, notes = read_runs(store, model)
    assert runs == [] and name in notes[0] and "UTF-8" in notes[0]
    record_run(store, model, new_run("convert", model, out, []))   # a damaged history is replaced
    assert len(read_runs(store, model)[0]) == 1


def test_the_newest_saved_benchmark_of_these_artifacts_is_found_and_drawn_safely(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    art = out / "m.fp16.onnx"
    art.write_bytes(b"x")
    row = {"name": "m.fp16.onnx", "batch": 1, "p50_ms": 1.0, "p90_ms": 1.2, "p99_ms": 1.5, "artifact": str(art),
           "speedup_vs_baseline": 2.0, "runtime": "onnxruntime"}
    old = {"machine": {}, "results": [row]}
    (out / "old.json").write_text(json.dumps(old))
    os.utime(out / "old.json", (1, 1))
    hostile = {"machine": {}, "results": [dict(row, speedup_vs_baseline=[1], runtime={"a": 1}, p50_ci_low_ms=0.9),
                                          dict(row, p90_ms="fast"), dict(row, batch="1"), dict(row, p50_ms=None),
                                          "row"], "notes": ["n"]}
    (out / "m.onnx.bench.json").write_text(json.dumps(hostile))   # bench --json > out/m.onnx.bench.json
    (out / "garbage.json").write_text("{")
    (out / "other.json").write_text(json.dumps({"machine": {}, "results": [dict(row, artifact="/elsewhere")]}))

    result, path, notes = latest_benchmark_for([art], [out])
    assert path.name == "m.onnx.bench.json"  # the newest that timed this artifact
    assert any("garbage.json" in n for n in notes)
    plain = plain_result(result)
    assert len(plain["results"]) == 1 and plain["notes"] == ["n"]
    (r,) = plain["results"]
    assert r["p90_ms"] == 1.2 and r["speedup_vs_baseline"] is None and r["runtime"] is None
    assert r["p50_ci_low_ms"] is None   # an interval without its other end is no interval
    assert latest_benchmark_for([out / "nothing.onnx"], [out]) is None
