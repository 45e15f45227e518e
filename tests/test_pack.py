"""``main.py pack``: an int8 ONNX of the digits CNN with real samples, its budget and a one-file
``check.py`` that re-checks it with numpy and onnxruntime alone (no torch, no app)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DIGITS_ARGS

# runs check.py and says, at exit, which of the app's heavy modules it imported (none may be)
WRAPPER = """import runpy, sys, os
os.chdir(sys.argv[1]); sys.argv = ["check.py"]
code = 0
try:
    runpy.run_path("check.py", run_name="__main__")
except SystemExit as e:
    code = e.code
print("IMPORTED:" + ",".join(m for m in ("torch", "app", "onnx") if m in sys.modules))
sys.exit(code)
"""


def _versions() -> tuple[str, str]:
    import numpy
    import onnxruntime

    return numpy.__version__, onnxruntime.__version__


@pytest.fixture(scope="module")
def checker_python(tmp_path_factory) -> tuple[list[str], str]:
    """A Python holding only numpy and onnxruntime (a fresh virtual environment, same versions as
    the app's, pip from its cache); offline without them: this Python isolated (-I), and the wrapper
    proves torch and the app stay unimported."""
    venv = tmp_path_factory.mktemp("checker") / "venv"
    numpy_v, ort_v = _versions()
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=60)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"numpy=={numpy_v}", f"onnxruntime=={ort_v}"],
                       check=True, capture_output=True, timeout=180)
        return [str(venv / "bin" / "python")], "venv"
    except (subprocess.SubprocessError, OSError):
        return [sys.executable, "-I"], "isolated"


@pytest.fixture(scope="module")
def packed(tmp_path_factory, digits):
    from main import main

    out = tmp_path_factory.mktemp("conv")
    assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
                 "--data", str(digits["images"]), "--out", str(out)]) == 0
    artifact = out / "digits.int8.onnx"
    pack = tmp_path_factory.mktemp("pack") / "p"
    assert main(["pack", str(artifact), "--out", str(pack), "--samples", "24", "--arch", DIGITS_ARGS[1]]) == 0
    return artifact, pack


def _check(python: list[str], folder: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([*python, "-c", WRAPPER, str(folder)], capture_output=True, text=True, timeout=60,
                          env=env, cwd=folder)


def _metrics(stdout: str) -> dict:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("metrics: "))
    return json.loads(line[len("metrics: "):])


def test_pack_writes_the_artifact_samples_budget_and_a_checker(packed):
    import numpy as np

    artifact, pack = packed
    names = {p.name for p in pack.iterdir()}
    assert {"digits.int8.onnx", "digits.int8.onnx.manifest.json", "samples.npz", "pack.json", "check.py"} <= names
    meta = json.loads((pack / "pack.json").read_text())
    assert meta["runtime"] == "onnxruntime" and meta["precision"] == "int8"
    assert meta["samples"]["kind"] == "data" and meta["samples"]["count"] == 24 and meta["samples"]["labels"]
    assert "evaluated on the other part" in meta["samples"]["part"]   # never the digits it was calibrated on
    assert meta["budget"] == {"metric": "cosine_mean", "op": ">=", "value": 0.99, "from": meta["budget"]["from"]}
    assert meta["build_machine"]["isa"]["features"] == meta["build_machine"]["manifest_isa"]["features"]
    assert meta["build_machine"]["versions"]["onnxruntime"] and meta["build_metrics"]["cosine_mean"] > 0.99
    with np.load(pack / "samples.npz", allow_pickle=False) as z:
        assert z["s0_in0"].shape == (1, 1, 8, 8) and z["s0_out0"].shape == (1, 10) and len(z.files) == 24 * 3
    text = (pack / "check.py").read_text()
    assert "import torch" not in text and "from app" not in text and "import app" not in text


def test_check_reproduces_the_app_metrics_with_numpy_and_onnxruntime_alone(packed, checker_python):
    _, pack = packed
    python, how = checker_python
    r = _check(python, pack)
    assert r.returncode == 0, r.stdout + r.stderr
    imported = next(ln for ln in r.stdout.splitlines() if ln.startswith("IMPORTED:"))
    assert imported == "IMPORTED:", r.stdout                           # no torch, no app, no onnx
    assert "this machine:" in r.stdout and "OK: budget cosine_mean >= 0.99" in r.stdout
    got, built = _metrics(r.stdout), json.loads((pack / "pack.json").read_text())["build_metrics"]
    for key in ("cosine_mean", "cosine_min", "top1_agreement"):
        assert abs(got[key] - built[key]) <= 1e-6, (key, got[key], built[key], how)
    assert abs(got["max_abs_err"] - built["max_abs_err"]) <= 1e-5 * max(1.0, built["max_abs_err"])
    assert got["samples"] == 24


def test_check_exits_1_when_the_budget_does_not_hold(packed, checker_python, tmp_path):
    import shutil

    _, pack = packed
    copy = tmp_path / "impossible"
    shutil.copytree(pack, copy)
    meta = json.loads((copy / "pack.json").read_text())
    meta["budget"] = {"metric": "cosine_min", "op": ">=", "value": 1.5, "from": "an impossible budget"}
    (copy / "pack.json").write_text(json.dumps(meta))
    r = _check(checker_python[0], copy)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL: budget cosine_min >= 1.5" in r.stdout


def test_pack_without_a_manifest_or_of_another_format_is_one_line_and_writes_nothing(cli, packed, tmp_path):
    import shutil

    artifact, _ = packed
    bare = tmp_path / "bare.onnx"
    shutil.copy(artifact, bare)
    out = tmp_path / "out"
    r = cli("pack", bare, "--out", out)
    assert r.code == 2 and not out.exists()
    assert r.err.strip().count("\n") == 0 and "no manifest" in r.err and "bare.onnx" in r.err
    pt = tmp_path / "m.pt"
    pt.write_bytes(b"x")
    (tmp_path / "m.pt.manifest.json").write_text(json.dumps({"target": "torchscript-trace", "precision": "fp32"}))
    r = cli("pack", pt, "--out", out)
    assert r.code == 2 and not out.exists() and "supports ONNX (.onnx) and OpenVINO IR (.xml)" in r.err
    assert r.err.strip().count("\n") == 0
    out.mkdir()
    (out / "keep.txt").write_text("mine")                              # a folder in use is never mixed into
    r = cli("pack", artifact, "--out", out)
    assert r.code == 2 and "not empty" in r.err and [p.name for p in out.iterdir()] == ["keep.txt"]


def test_evaluate_warns_when_the_manifest_names_another_cpu(cli, digits, packed, monkeypatch):
    from app.machine.hardware import cpu_from_flags, isa_warning
    from app.artifacts.manifest import read_manifest

    manifest = read_manifest(packed[0])
    here = cpu_from_flags(" ".join(manifest["build_isa"]["flags"]), manifest["build_isa"]["cpu"])
    assert isa_warning(manifest, "digits.int8.onnx", here) is None
    # "another CPU": AVX2-only where the artifact was built on a VNNI/AMX one, else a VNNI one (this test
    # runs on AVX2-only, VNNI and AMX machines alike)
    if here.features() == cpu_from_flags("sse4_2 avx avx2 fma").features():
        flags, name, words = "sse4_2 avx avx2 fma avx512f avx512bw avx512_vnni", "a VNNI CPU", "VNNI"
    else:
        flags, name, words = "sse4_2 avx avx2 fma", "an AVX2-only CPU", "AVX2-only"
    other = cpu_from_flags(flags, name)
    assert other.features() != here.features()
    warning = isa_warning(manifest, "digits.int8.onnx", other)
    assert warning and "digits.int8.onnx was built and verified on" in warning and words in warning, warning
    monkeypatch.setenv("DEPLOY_STUDIO_CPU_FLAGS", flags)   # evaluate "on" the other CPU
    r = cli("evaluate", digits["state"], *DIGITS_ARGS, packed[0], "--data", digits["arrays"])
    assert r.code == 0 and "warning: digits.int8.onnx was built and verified on a CPU with" in r.err, r.err


def test_the_checker_names_instruction_sets_as_the_app_does():
    import runpy

    from app.machine.hardware import ISA_FEATURES
    from app.serving.pack import CHECKER

    assert runpy.run_path(str(CHECKER), run_name="not_main")["ISA"] == ISA_FEATURES
