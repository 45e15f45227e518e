"""Supervised child-process jobs: results, errors, crashes, cancel and time-outs."""

import os
import time

import pytest

from app.errors import BadInput, Cancelled, ConversionFailed
from app.jobs import JobTimeout, run_conversion, run_job


def test_result_and_progress_come_back():
    events = []
    result = run_job("tests.crashers:echo", [1, 2], progress=lambda s, f: events.append((s, f)))
    assert result["got"] == [1, 2] and result["pid"] != os.getpid()
    assert [f for _, f in events] == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_a_job_sees_the_settings_its_parent_has_now_not_the_forkserver_s(monkeypatch):
    """The forkserver's environment is the parent's when it started; a setting made later (a test
    faking a VNNI CPU, a user rehearsing less memory) reaches the jobs started after it, and one
    removed is gone from them."""
    monkeypatch.setenv("DEPLOY_STUDIO_CPU_FLAGS", "avx2 fma")
    assert run_job("tests.crashers:setting", "DEPLOY_STUDIO_CPU_FLAGS") == "avx2 fma"  # the forkserver runs now
    monkeypatch.setenv("DEPLOY_STUDIO_CPU_FLAGS", "avx2 fma avx512f avx512_vnni")
    assert run_job("tests.crashers:setting", "DEPLOY_STUDIO_CPU_FLAGS") == "avx2 fma avx512f avx512_vnni"
    monkeypatch.delenv("DEPLOY_STUDIO_CPU_FLAGS")
    assert run_job("tests.crashers:setting", "DEPLOY_STUDIO_CPU_FLAGS") is None


def test_error_type_survives_the_process_boundary():
    with pytest.raises(BadInput, match="unreadable"):
        run_job("tests.crashers:bad_input", None)


def test_native_crash_is_reported_and_parent_lives():
    with pytest.raises(ConversionFailed, match=r"crashed \(signal 6, SIGABRT\)"):
        run_job("tests.crashers:abort", None)


def test_cancel_stops_child_within_a_second_and_cleans_temporaries(tmp_path):
    started = []

    def progress(stage, fraction):
        started.append(time.monotonic())

    def should_cancel():
        return bool(started)

    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        run_job("tests.crashers:hang", tmp_path, progress=progress, should_cancel=should_cancel,
                cleanup_dir=tmp_path, writable=[tmp_path])
    assert time.monotonic() - started[0] < 1.0
    assert list(tmp_path.iterdir()) == []
    assert time.monotonic() - t0 < 30


def test_timeout_is_reported_as_such():
    with pytest.raises(JobTimeout, match="timed out after 1 s"):
        run_job("tests.crashers:hang", None, timeout=1)


def test_real_conversion_in_child(workdir):
    from tests.requests import CNN, request

    result = run_conversion(request(workdir["cnn_state"], "onnx", out_dir=workdir["out"], **CNN))
    assert result.status == "ok" and result.artifact.exists()


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has ended)."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc")
def test_a_job_ends_when_the_process_that_started_it_is_killed(tmp_path):
    """``kill -9`` of the CLI (or the window) must not leave its job running and holding memory."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    pid_file = tmp_path / "child.pid"
    starter = subprocess.Popen(
        [sys.executable, "-c", "import sys; from app.jobs import run_job; "
         f"run_job('tests.crashers:hang_after_writing_pid', sys.argv[1], writable=[sys.argv[2]])",
         str(pid_file), str(tmp_path)], cwd=REPO)
    deadline = time.monotonic() + 120
    while not pid_file.exists() or not pid_file.read_text():
        assert starter.poll() is None and time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    child = int(pid_file.read_text())
    assert _alive(child)
    starter.send_signal(signal.SIGKILL)
    starter.wait()
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the job's child outlived the process that started it"
