"""The fence around jobs: model code cannot write outside its work folder, reach the network, or
take unbounded memory or CPU time; and where there is no fence, the app says so."""

from __future__ import annotations

import json
import socket

import pytest
import torch

from app.errors import BadInput, ConversionFailed, StudioError
from app.jobs import run_job
from app.safety.sandbox import landlock_abi, status
from tests.hostile import build_torchscript_writer

fenced = pytest.mark.skipif(landlock_abi() < 1, reason="this kernel has no Landlock: jobs run unfenced "
                                                       "(the app says 'not sandboxed')")


def test_kernel_landlock_version_and_status_line():
    abi = landlock_abi()
    ok, line = status()
    assert ok == (abi > 0)
    assert line.startswith("sandboxed: ") if ok else line.startswith("not sandboxed: ")


@fenced
def test_job_cannot_write_outside_or_connect_while_an_unfenced_control_can(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    try:
        inside = run_job("tests.crashers:try_everything", {"write": str(tmp_path / "fenced"), "port": port})
        control = run_job("tests.crashers:try_everything", {"write": str(tmp_path / "control"), "port": port},
                          fenced=False)
    finally:
        listener.close()
    assert inside["write"].startswith("blocked") and not (tmp_path / "fenced").exists()
    assert inside["tcp"].startswith("blocked") and inside["udp"].startswith("blocked")
    assert control == {**control, "write": "written", "tcp": "connected", "udp": "sent"}


@fenced
def test_job_writes_beneath_its_writable_folder_only(tmp_path):
    allowed = tmp_path / "work"
    allowed.mkdir()
    inside = run_job("tests.crashers:try_everything", {"write": str(allowed / "artifact"), "port": 9},
                     writable=[allowed])
    assert inside["write"] == "written" and (allowed / "artifact").read_text() == "pwned"


def test_memory_limit_turns_a_huge_allocation_into_an_error(monkeypatch):
    probe = run_job("tests.crashers:try_everything", {"write": "/nonexistent/x", "port": 9})
    monkeypatch.setenv("DEPLOYSTUDIO_JOB_MEMORY_MB", str(probe["vm_kb"] // 1024 + 512))
    with pytest.raises(StudioError, match="MemoryError"):
        run_job("tests.crashers:allocate", 2 << 30)  # 2 GiB against a 512 MiB margin
    assert run_job("tests.crashers:allocate", 64 << 20) == 64 << 20


def test_cpu_time_limit_stops_a_spinning_job(monkeypatch):
    monkeypatch.setenv("DEPLOYSTUDIO_JOB_CPU_SECONDS", "1")
    with pytest.raises(ConversionFailed, match="CPU-time limit"):
        run_job("tests.crashers:spin", None, timeout=60)


@fenced
def test_torchscript_forward_cannot_write_a_file_during_inspect_or_convert(cli, tmp_path):
    """torch.save inside a scripted forward: the program runs (fenced) during inspect, conversion and
    verification, and its write goes nowhere (aten::save does not report the refused open)."""
    path, marker = build_torchscript_writer(tmp_path, "save")
    r = cli("inspect", path, "--json")
    assert r.code == 0 and not marker.exists()
    summary = json.loads(r.out)
    assert summary["inputs_guessed"]  # the guessed input was run through forward
    assert summary["sandboxed"] is True and summary["sandbox"].startswith("sandboxed")
    assert "TorchScript archive is a program" in summary["warnings"][0]
    out = tmp_path / "out"
    r = cli("convert", path, "--input", "x:1x4", "--to", "onnx", "--out", out)
    assert r.code == 0 and not marker.exists()
    assert sorted(p.name for p in out.iterdir()) == ["writes_in_forward_save.fp32.onnx",
                                                     "writes_in_forward_save.fp32.onnx.manifest.json"]
    torch.jit.load(str(path))(torch.ones(1, 4))  # the control: unfenced, the program writes
    assert marker.exists()


@fenced
def test_torchscript_forward_cannot_overwrite_an_existing_file(tmp_path):
    from app.jobs import run_inspection
    from app.request import ModelSource

    path, victim = build_torchscript_writer(tmp_path, "from_file")
    summary = run_inspection(ModelSource(path))
    assert victim.read_bytes() == bytes(16), "the fenced program wrote into a file outside its folder"
    # forward ran on the guessed input and failed at the refused open
    assert any("could not guess the input shapes" in w for w in summary["warnings"]), summary["warnings"]
    torch.jit.load(str(path))(torch.ones(1, 4))  # the control
    assert victim.read_bytes() == b"A" * 16


def test_targets_say_whether_jobs_are_sandboxed(cli):
    r = cli("targets", "--json")
    data = json.loads(r.out)
    assert data["sandbox"] == {"sandboxed": status()[0], "description": status()[1]}
    assert all(row["sandbox"] == status()[1] for row in data["targets"])
    assert "sandbox: " in cli("targets").out


def test_bad_input_from_the_fenced_child_is_one_line(cli, tmp_path):
    with pytest.raises(BadInput):
        run_job("tests.crashers:bad_input", None)
    r = cli("inspect", tmp_path / "missing.onnx")
    assert r.code == 2 and r.err.count("\n") == 1 and "no such file" in r.err


def test_without_landlock_targets_say_not_sandboxed(cli, monkeypatch):
    """A kernel without Landlock (probed as ABI 0): the app says so instead of pretending."""
    import app.safety.sandbox as sandbox

    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 0)
    rows = json.loads(cli("targets", "--json").out)["targets"]
    assert all(row["sandboxed"] is False and row["sandbox"].startswith("not sandboxed: ") for row in rows)
    assert "sandbox: not sandboxed" in cli("targets").out
