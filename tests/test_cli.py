"""The command line: exit codes, one-line errors, JSON output, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CNN_ARGS, REPO, sha256


def _one_line_error(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_convert_json_output(cli, workdir):
    r = cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", "onnx", "--out", workdir["out"], "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert set(data) >= {"artifact", "target", "precision", "size_bytes", "seconds", "verification", "warnings"}
    assert data["target"] == "onnx" and data["precision"] == "fp32"
    v = data["verification"]
    assert v["passed"] is True and v["rel_l2"] <= 1e-4 and v["cosine"] > 0.9999 and v["max_abs_err"] < 1e-4
    assert os.path.getsize(data["artifact"]) == data["size_bytes"]


def test_human_output_and_progress_on_stderr(cli, workdir):
    r = cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", "torchscript-script", "--out", workdir["out"])
    assert r.code == 0
    assert "verification:" in r.out and "passed" in r.out
    assert "… load model" in r.err and "… verify" in r.err


def test_targets_lists_availability(cli):
    r = cli("targets", "--json")
    rows = {row["target"]: row for row in json.loads(r.out)["targets"]}
    assert {"torchscript-trace", "torchscript-script", "torch-export", "onnx"} <= set(rows)
    assert rows["onnx"]["available"] is True


@pytest.mark.parametrize("case", ["missing", "empty", "truncated_onnx", "wrong_shape", "pickle",
                                  "combination", "unwritable_out", "bad_input_syntax", "no_arch", "exists"])
def test_errors_exit_2_with_one_clear_line_and_no_leftovers(cli, workdir, tmp_path, case):
    out = workdir["out"]
    args = ["--out", out]
    if case == "missing":
        args = [tmp_path / "nope.onnx", "--to", "onnx", "--precision", "fp16", *args]
        expect = "no such file"
    elif case == "empty":
        empty = tmp_path / "empty.pt"
        empty.write_bytes(b"")
        args = [empty, "--to", "onnx", *args]
        expect = "empty"
    elif case == "truncated_onnx":
        bad = tmp_path / "cut.onnx"
        bad.write_bytes(workdir["cnn_onnx"].read_bytes()[:500])
        args = [bad, "--to", "onnx", "--precision", "fp16", *args]
        expect = "truncated or damaged"
    elif case == "wrong_shape":
        args = [workdir["cnn_state"], "--arch", "tests.models:SmallCNN", "--input", "x:1x5", "--to", "onnx", *args]
        expect = "does not run on the given inputs"
    elif case == "pickle":
        args = [workdir["mlp_pickle"], "--to", "onnx", *args]
        expect = "--allow-pickle"
    elif case == "combination":
        args = [workdir["cnn_onnx"], "--to", "torchscript-trace", *args]
        expect = "onnx (fp16/int8)"
    elif case == "unwritable_out":
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        out = blocker / "sub"
        args = [workdir["cnn_state"], *CNN_ARGS, "--to", "onnx", "--out", out]
        expect = "choose another with --out"
    elif case == "bad_input_syntax":
        args = [workdir["cnn_state"], "--arch", "tests.models:SmallCNN", "--input", "x=1,3", "--to", "onnx", *args]
        expect = "NAME:SHAPE"
    elif case == "no_arch":
        args = [workdir["cnn_state"], "--to", "onnx", *args]
        expect = "--arch"
    else:  # exists
        assert cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", "torchscript-script", *args).code == 0
        args = [workdir["cnn_state"], *CNN_ARGS, "--to", "torchscript-script", *args]
        expect = "--overwrite"
    before = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    r = cli("convert", *args)
    assert r.code == 2, r.err
    assert expect in _one_line_error(r.err)
    after = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    assert after == before, "a failed conversion must leave nothing behind"


def test_verification_failure_exits_1(cli, workdir):
    r = cli("convert", workdir["branchy_state"], "--arch", "tests.models:BranchyNet", "--input", "x:1x16",
            "--to", "torchscript-trace", "--out", workdir["out"])
    assert r.code == 1
    assert "control flow" in _one_line_error(r.err)
    assert not workdir["out"].exists() or not any(workdir["out"].iterdir())


def test_keep_failed_keeps_artifact_marked_failed(cli, workdir):
    r = cli("convert", workdir["branchy_state"], "--arch", "tests.models:BranchyNet", "--input", "x:1x16",
            "--to", "torchscript-trace", "--out", workdir["out"], "--keep-failed", "--json")
    assert r.code == 1
    data = json.loads(r.out)
    assert data["status"] == "failed" and data["verification"]["passed"] is False
    manifest = json.loads(open(data["manifest"]).read())
    assert manifest["status"] == "failed"


def test_debug_shows_traceback(cli, tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    r = cli("inspect", empty, "--debug")
    assert r.code == 2 and "Traceback" in r.err


def test_real_process_default_output_beside_model_and_source_untouched(workdir):
    """``python main.py convert`` as a user runs it: artifact beside the model by default."""
    src = workdir["cnn_onnx"]
    before = sha256(src)
    proc = subprocess.run([sys.executable, str(REPO / "main.py"), "convert", str(src), "--to", "onnx",
                           "--precision", "fp16", "--json"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # stdout holds exactly one JSON object, no exporter chatter
    assert data["artifact"] == str(src.parent / "cnn.fp16.onnx")
    assert sha256(src) == before


def test_timeout_stops_the_child_and_says_so(cli, workdir):
    r = cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", "onnx", "--out", workdir["out"], "--timeout", "0.5")
    assert r.code == 1 and "timed out after 0.5 s" in _one_line_error(r.err)
    assert not workdir["out"].exists() or not any(workdir["out"].iterdir())
    ok = cli("convert", workdir["cnn_state"], *CNN_ARGS, "--to", "onnx", "--out", workdir["out"], "--timeout", "120", "--json")
    assert ok.code == 0 and json.loads(ok.out)["verification"]["passed"]
