"""Untrusted model files: limits, refusals, isolation, and nothing lost or half-written."""

from __future__ import annotations

import json
import random
import shutil
import struct
import zipfile
import zlib

import pytest

from app.errors import Cancelled, ModelLoadError
from app.jobs import run_conversion, run_inspection
from app.request import ModelSource
from app.loaders.front_door import load_model
from app.safety.security import dependency_problems
from tests.conftest import CNN_ARGS, sha256


def test_dependency_floors():
    assert dependency_problems() == []  # this environment is patched
    old = dependency_problems({"torch": "2.9.1+cpu", "onnx": "1.20.1", "onnxruntime": "1.23.0", "netron": "9.0"})
    assert len(old) == 2
    assert old[0].startswith("torch 2.9.1+cpu is older than 2.10") and "pip install -U" in old[0]
    assert "onnx 1.20.1" in old[1] and "CVE-2024-27318" in old[1]


def test_absurd_shape_refused_before_allocating(cli, workdir):
    r = cli("convert", workdir["cnn_state"], "--arch", "tests.models:SmallCNN",
            "--input", "x:100000x3x10000x10000", "--to", "onnx", "--out", workdir["out"])
    assert r.code == 2 and "elements" in r.err and "realistic" in r.err


def test_safetensors_header_claiming_100_gb(tmp_path):
    forged = tmp_path / "weights.safetensors"
    forged.write_bytes(struct.pack("<Q", 100 * 2**30) + b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}')
    with pytest.raises(ModelLoadError, match="claims 107,374,182,400 bytes"):
        load_model(forged)


def test_zip_bomb_dressed_as_pt_is_refused_before_inflating(tmp_path):
    bomb = tmp_path / "model.pt"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("model/data.pkl", b"\0" * (100 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(ModelLoadError, match="zip bomb"):
        load_model(bomb)


def test_external_data_symlink_out_of_folder_is_refused(model_files, tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    shutil.copy2(model_files["cnn_onnx_external"], folder / "cnn_ext.onnx")
    secret = tmp_path / "secret.bin"
    secret.write_bytes((model_files["cnn_onnx_external"].parent / "cnn_ext.onnx.data").read_bytes())
    (folder / "cnn_ext.onnx.data").symlink_to(secret)
    with pytest.raises(ModelLoadError, match="link leading outside"):
        load_model(folder / "cnn_ext.onnx")


def test_path_with_spaces_and_non_ascii(cli, model_files, tmp_path):
    folder = tmp_path / "Modèles de l'équipe"
    folder.mkdir()
    src = folder / "mein Modell ü.onnx"
    shutil.copy2(model_files["cnn_onnx"], src)
    r = cli("convert", src, "--to", "onnx", "--precision", "fp16", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["artifact"] == str(folder / "mein Modell ü.fp16.onnx")


def test_conversion_contacts_no_host(workdir, network_attempts):
    """Nothing in a conversion opens a network connection (in-process, so a socket patch sees it)."""
    from app.jobs import convert_in_process as convert
    from tests.requests import CNN, request

    result = convert(request(workdir["cnn_state"], "onnx", "int8", out_dir=workdir["out"], **CNN))
    assert result.verification.passed and network_attempts == []


def test_hostile_pickle_is_parsed_in_a_child_and_never_runs(tmp_path):
    from tests.hostile import SystemCall
    import pickle

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(SystemCall(marker)))
    from app.errors import UnsafeModelError

    with pytest.raises(UnsafeModelError):
        run_inspection(ModelSource(evil, allow_pickle=True))
    assert not marker.exists()


def test_inspection_in_child_returns_the_summary(model_files):
    summary = run_inspection(ModelSource(model_files["cnn_onnx"]))
    assert summary["format"] == "onnx" and summary["inputs"][0]["name"] == "image"


def test_killing_the_converter_at_random_points_never_leaves_a_broken_artifact(workdir):
    """Cancel (SIGTERM, then SIGKILL) at random moments: the artifact is either absent or the
    previous valid file, and no temporaries remain."""
    from tests.requests import CNN, request

    out = workdir["out"]
    first = run_conversion(request(workdir["cnn_state"], "onnx", out_dir=out, **CNN))
    valid = sha256(first.artifact)
    rng = random.Random(7)
    import time

    for _ in range(6):
        deadline = time.monotonic() + rng.uniform(0.0, 4.0)
        try:
            res = run_conversion(request(workdir["cnn_state"], "onnx", out_dir=out, overwrite=True, **CNN),
                                 should_cancel=lambda: time.monotonic() > deadline)
            valid = sha256(res.artifact)  # finished before the kill: the new file is the valid one
        except Cancelled:
            pass
        assert first.artifact.exists() and sha256(first.artifact) == valid
        assert load_model(first.artifact).format == "onnx"
        assert not list(out.glob(".studio-tmp-*"))


@pytest.mark.parametrize("fmt", ["cnn_state", "cnn_torchscript", "cnn_pt2", "cnn_onnx", "mlp_safetensors", "mlp_pickle"])
def test_fuzzed_files_end_in_a_model_or_a_clean_error(model_files, tmp_path, fmt):
    """A bounded fuzz run per format, in one fenced child (benchmarks/fuzz_loaders.py runs 10,000)."""
    from tests.fuzz import mutate, run_batch

    rng = random.Random(zlib.crc32(fmt.encode()))
    data = model_files[fmt].read_bytes()
    cases = []
    for i in range(8):
        case = tmp_path / f"case{i}{model_files[fmt].suffix}"
        case.write_bytes(mutate(data, rng))
        cases.append(case)
    raw: dict[str, str] = {}  # an error that starts with an exception's class name: not a sentence
    outcomes = run_batch(cases, allow_pickle=fmt == "mlp_pickle", messages=raw)
    assert len(outcomes) == 8 and set(outcomes) <= {"ok", "error"}, (outcomes, raw)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(c.name for c in cases)  # nothing else written


def test_the_suite_runs_with_private_settings_and_its_guard_sees_changes(tmp_path):
    """conftest points every process at private XDG folders and checks the real ones at the end."""
    import os

    from tests.conftest import REAL_USER_FOLDERS, snapshot_user_folders

    assert all(not str(f).startswith(os.environ["XDG_CONFIG_HOME"]) for f in REAL_USER_FOLDERS)
    before = snapshot_user_folders([tmp_path])
    (tmp_path / "Model Deployment Studio.ini").write_text("[General]\nout=/x\n")
    assert snapshot_user_folders([tmp_path]) != before


@pytest.mark.parametrize("kind", ["cnn_state", "cnn_torchscript", "cnn_pt2", "mlp_safetensors"])
def test_a_file_swapped_after_its_checks_is_not_loaded(model_files, tmp_path, kind):
    """torch's and safetensors' readers open the file by name after the front door checked it: a file
    put in its place in between (a swap, a rewrite) is refused, not loaded unchecked."""
    import os

    from app.errors import UnsafeModelError
    from app.loaders.front_door import checked_file
    from app.model.kinds import get_kind

    path = tmp_path / model_files[kind].name
    shutil.copy(model_files[kind], path)
    with checked_file(path) as checked:
        replacement = tmp_path / "replacement"
        shutil.copy(model_files[kind], replacement)  # same bytes, another file: the checks ran on the first
        os.replace(replacement, path)
        with pytest.raises(UnsafeModelError, match="changed on disk while it was being checked"):
            get_kind(checked.kind).load(checked, ModelSource(path, arch="tests.models:MLP"), True)
    assert load_model(path, arch="tests.models:MLP" if kind == "mlp_safetensors" else "tests.models:SmallCNN")
