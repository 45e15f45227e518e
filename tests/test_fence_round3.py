"""Attack round 3 against the fence core (issue 31): code that runs inside a job (an ``--arch`` file)
types into the user's terminal, leaves a process behind, sends a datagram out, starves the watchdog,
or forges messages the parent must decode. Each is a hostile file run through the real CLI in a
process of its own, with private TMPDIR and HOME (tests/test_fence_channel.py's helpers)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import round3_payloads as payloads
from tests.channel_attacks import hostile_model
from tests.conftest import REPO
from tests.fuzz import assert_sentences
from tests.test_fence_channel import leftovers, needs_fence, private_env, run_cli
from tests.test_fence_channel import tmp_path  # noqa: F401 - the short-folder fixture
from tests.test_jobs import _alive
from app.safety.sandbox import landlock_abi

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: sessions, ttys, seccomp")


def _gone_within(pid: int, seconds: float) -> bool:
    """Whether ``pid`` has ended within ``seconds`` (a bounded poll on the pid, no fixed sleep)."""
    deadline = time.monotonic() + seconds
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _alive(pid)


def _kill(pid: int | None) -> None:
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)


def _pid_after(stderr: str, word: str) -> int | None:
    for line in stderr.splitlines():
        parts = line.split()
        if line.startswith(f"job: {word} ") and len(parts) > 2 and parts[2].isdigit():
            return int(parts[2])
    return None


# -------------------------------------------------------------------------- keystrokes into the terminal
@needs_fence
def test_a_job_cannot_type_into_the_terminal_the_cli_runs_in(tmp_path):
    """The CLI runs with a pseudo-terminal as its controlling terminal and its stdin/stdout/stderr (a
    shell's situation); the job pushes a command with TIOCSTI through every way to that terminal.
    Nothing may reach the terminal's input queue (what the shell would read and run)."""
    import fcntl
    import termios

    master, slave = os.openpty()
    attrs = termios.tcgetattr(slave)
    attrs[3] &= ~(termios.ICANON | termios.ECHO)  # what was typed is readable at once, and not echoed
    attrs[6][termios.VMIN], attrs[6][termios.VTIME] = 0, 0
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    marker, tty = tmp_path / "typed-by-the-job", os.ttyname(slave)
    args = hostile_model(tmp_path, payloads.tiocsti(tty, f"touch {marker}\n"))
    cli = subprocess.Popen([sys.executable, str(REPO / "main.py"), "inspect", *args], cwd=tmp_path,
                           env=private_env(tmp_path), stdin=slave, stdout=slave, stderr=slave,
                           start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    seen = b""
    try:
        deadline = time.monotonic() + 180
        while cli.poll() is None and time.monotonic() < deadline:  # drain the terminal's output
            if select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 65536)
        assert cli.poll() is not None, "the CLI did not finish"
        while select.select([master], [], [], 0)[0]:
            try:
                seen += os.read(master, 65536)
            except OSError:
                break
        os.set_blocking(slave, False)
        try:
            typed = os.read(slave, 65536)  # the terminal's input queue: what a shell would read next
        except (BlockingIOError, OSError):
            typed = b""
    finally:
        if cli.poll() is None:
            cli.kill()
        cli.wait()
        os.close(master)
        os.close(slave)
    text = seen.decode(errors="replace")
    assert cli.returncode == 0, text
    assert "tiocsti refused fd0" in text  # the attack ran
    assert b"touch" not in typed, f"the job typed into the user's terminal: {typed!r}"
    assert "INJECTED" not in text and "TOOK the terminal" not in text
    assert "open refused /dev/tty 6" in text  # ENXIO: the job has no controlling terminal
    assert f"tiocsti refused {tty} 1" in text  # EPERM: seccomp, though root may type into any terminal
    assert not marker.exists()


# -------------------------------------------------------------------------- nothing outlives the job
@needs_fence
def test_a_grandchild_that_calls_setsid_ends_with_the_job(tmp_path):
    args = hostile_model(tmp_path, payloads.escaping_grandchild(block=False))
    run = run_cli(tmp_path, "inspect", *args)
    grandchild = _pid_after(run.stderr, "grandchild")
    try:
        assert run.returncode == 0, run.stderr
        assert grandchild, run.stderr
        assert _gone_within(grandchild, 15), "a process the job started outlived the CLI"
        assert "job: setsid refused 1" in run.stderr and "job: setpgid refused 1" in run.stderr  # EPERM
    finally:
        _kill(grandchild)


@needs_fence
@pytest.mark.parametrize("kill_sweeper", [False, True], ids=["plain", "sweeper-attacked"])
def test_a_grandchild_that_calls_setsid_ends_when_the_cli_is_killed(tmp_path, kill_sweeper):
    if kill_sweeper and landlock_abi() < 6:
        pytest.skip("Landlock ABI < 6: no signal scope, so the job can kill its sweeper")
    args = hostile_model(tmp_path, payloads.escaping_grandchild(block=True, kill_sweeper=kill_sweeper))
    cli = subprocess.Popen([sys.executable, str(REPO / "main.py"), "inspect", *args], cwd=tmp_path,
                           env=private_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    grandchild, seen = None, b""
    try:
        deadline = time.monotonic() + 180
        while grandchild is None and time.monotonic() < deadline:
            if not select.select([cli.stderr], [], [], max(deadline - time.monotonic(), 0))[0]:
                break
            chunk = os.read(cli.stderr.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
            grandchild = _pid_after(seen.decode(errors="replace"), "grandchild")
        assert grandchild and _alive(grandchild), seen.decode(errors="replace")
        cli.send_signal(signal.SIGKILL)
        cli.wait(60)
        assert _gone_within(grandchild, 20), "a process the job started outlived the CLI killed with -9"
        if kill_sweeper:  # Landlock's signal scope: the sweeper is outside the job's domain
            assert "job: kill refused 1" in seen.decode(errors="replace") and "KILLED" not in seen.decode()
    finally:
        cli.kill()
        cli.wait()
        _kill(grandchild)


# -------------------------------------------------------------------------- no datagram out
@needs_fence
def test_a_job_cannot_send_a_datagram_to_a_socket_outside(tmp_path):
    sink_path = tmp_path / "sink.sock"
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(str(sink_path))
    sink.setblocking(False)
    try:
        args = hostile_model(tmp_path, payloads.datagram_out(str(sink_path)))
        run = run_cli(tmp_path, "inspect", *args)
        received = []
        while True:
            try:
                received.append(sink.recv(65536))
            except BlockingIOError:
                break
    finally:
        sink.close()
    assert run.returncode == 0, run.stderr
    assert received == [], f"a datagram left the fence: {received!r}"
    assert "SENT" not in run.stderr
    assert "job: socketpair refused 13" in run.stderr and "job: socket refused 13" in run.stderr


# -------------------------------------------------------------------------- the watchdog owns the clock
def _assert_timed_out(run: subprocess.CompletedProcess, took: float, seconds: int) -> None:
    assert run.returncode == 1, run.stderr
    assert (f"error: the job timed out after {seconds} s and was stopped (--timeout SECONDS gives it longer)"
            in run.stderr.splitlines())
    assert took < 60 + seconds, took
    assert_sentences(run.stderr)


def test_half_a_message_does_not_block_the_watchdog(tmp_path):
    args = hostile_model(tmp_path, payloads.half_frame())
    started = time.monotonic()
    run = run_cli(tmp_path, "inspect", *args, "--json", "--timeout", "5", timeout=150)
    _assert_timed_out(run, time.monotonic() - started, 5)
    assert json.loads(run.stdout)["exit_code"] == 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("pause", [0.005, 0], ids=["200-Hz", "flat-out"])
def test_a_flood_of_progress_does_not_starve_the_watchdog_nor_print_a_line_of_its_own(tmp_path, pause):
    args = hostile_model(tmp_path, payloads.progress_flood(seconds=90, pause=pause))
    started = time.monotonic()
    run = run_cli(tmp_path, "convert", *args, "--to", "onnx", "--out", tmp_path / "out", "--timeout", "5",
                  timeout=200)  # (convert shows its progress)
    _assert_timed_out(run, time.monotonic() - started, 5)
    assert "flood" in run.stderr  # its progress was shown
    assert not any(line.startswith("INJECTED") for line in run.stderr.splitlines()), run.stderr


# -------------------------------------------------------------------------- malformed messages
@pytest.mark.parametrize("name", ["overflowing-number", "huge-int-shape", "deep-nesting", "memory-bomb",
                                  "over-the-cap", "truncated"])
def test_a_malformed_message_is_one_line_and_nothing_kept(tmp_path, name):
    args = hostile_model(tmp_path, payloads.forged_frame(name))
    started = time.monotonic()
    run = run_cli(tmp_path, "inspect", *args, "--json", DEPLOYSTUDIO_RESULT_MEMORY_MB=64, timeout=150)
    took = time.monotonic() - started
    assert run.returncode == 1, run.stderr
    message = json.loads(run.stdout)["message"]
    assert message.startswith("the job's process sent an invalid result (") and message.endswith(
        "); nothing was kept"), message
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [f"error: {message}"]
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr
    assert_sentences(run.stderr)
    assert took < 120, took
    assert leftovers(tmp_path) == []


# -------------------------------------------------------------------------- resource limits
@needs_fence
def test_the_job_runs_under_file_size_and_address_space_limits(tmp_path):
    """RLIMIT_FSIZE caps one file (DEPLOYSTUDIO_JOB_FILE_MB; else the free space of the job's roomiest
    folder); RLIMIT_AS is the job's address space when fenced plus the memory available now, not the
    machine's RAM; RLIMIT_NPROC binds users other than root (the kernel exempts root)."""
    args = hostile_model(tmp_path, payloads.limits("big.bin"))
    run = run_cli(tmp_path, "inspect", *args, DEPLOYSTUDIO_JOB_FILE_MB=1)
    assert run.returncode == 0, run.stderr
    line = next(line for line in run.stderr.splitlines() if line.startswith("job: limits "))
    address_space, file_size, processes, vm = line.split()[2:6]
    assert file_size == str(1 << 20)
    assert "job: write refused 27" in run.stderr and "WROTE" not in run.stderr  # EFBIG
    if os.getuid() != 0:  # (root: the kernel ignores RLIMIT_NPROC, so none is set)
        assert processes != "unlimited"
    if not Path("/dev/nvidiactl").exists():
        available = next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo")
                         if line.startswith("MemAvailable:"))
        assert address_space != "unlimited"
        # what the job may add: about the memory available (read here just after), not the RAM
        added = int(address_space) - int(vm)
        assert added < max(available, 1 << 30) * 1.3, (added, available)
    run = run_cli(tmp_path, "inspect", *hostile_model(tmp_path, payloads.limits("big.bin")))
    line = next(line for line in run.stderr.splitlines() if line.startswith("job: limits "))
    assert line.split()[3] != "unlimited" and "job: WROTE 2 MiB" in run.stderr  # a cap, from the free space


# -------------------------------------------------------------------------- the decoder, in this process
def test_the_decoder_turns_every_failure_into_an_invalid_message(monkeypatch):
    from app.safety import wire

    bad = [b'{"$tuple":["result",{"$array":{"dtype":"float32","shape":[1e999],"data":""}}]}',
           b'{"$array":{"dtype":"uint8","shape":[0,' + b"9" * 40 + b'],"data":""}}',
           b"[" * 100000 + b"]" * 100000, b'{"$dc":"app.bench.stats:LatencyStats","fields":{"n":1e999}}']
    for data in bad:
        with pytest.raises(wire.InvalidMessage):
            wire.loads(data)
    monkeypatch.setenv("DEPLOYSTUDIO_RESULT_MEMORY_MB", "16")
    bomb = b"[" + b",".join([b"{}"] * 200_000) + b"]"  # 600 KB that would take ~30 MB decoded
    started = time.monotonic()
    with pytest.raises(wire.InvalidMessage, match="MiB of memory"):
        wire.loads(bomb)
    assert time.monotonic() - started < 5
    assert wire.message_limit() == 4 << 20  # a message longer than its decoding budget allows: refused unread


# -------------------------------------------------------------------------- forged messages the parent shows
def test_a_forged_error_cannot_print_a_line_of_its_own(tmp_path):
    """A job's error message with line breaks: every line after the first is indented beneath the
    app's ``error:`` line, so no line the job wrote starts where the app's own lines start."""
    payload = payloads.RESULT_PIPE_WRITE + '''
msg = b'{"$tuple":["error","BadInput","boom\\\\nFORGED: the model was verified by the fence\\\\n",null]}'
to_result_pipe(struct.pack("!i", len(msg)) + msg)
os._exit(0)
'''
    run = run_cli(tmp_path, "inspect", *hostile_model(tmp_path, payload), timeout=150)
    assert run.returncode == 2, run.stderr
    assert "error: boom" in run.stderr and "  FORGED: the model was verified" in run.stderr
    assert not any(line.startswith("FORGED") for line in run.stderr.splitlines()), run.stderr


def test_a_result_of_the_wrong_type_is_an_invalid_result(tmp_path):
    """``inspect``'s job returns a dict: a forged list used to end in "internal error: TypeError"."""
    payload = payloads.RESULT_PIPE_WRITE + '''
msg = b'{"$tuple":["result",[{},{}]]}'
to_result_pipe(struct.pack("!i", len(msg)) + msg)
os._exit(0)
'''
    run = run_cli(tmp_path, "inspect", *hostile_model(tmp_path, payload), "--json", timeout=150)
    assert run.returncode == 1, run.stderr
    message = json.loads(run.stdout)["message"]
    assert message == "the job's process sent an invalid result (a list where dict belongs); nothing was kept"
    assert "internal error" not in run.stderr and "Traceback" not in run.stderr


@needs_fence
def test_a_job_cannot_start_more_processes_than_its_cap(tmp_path):
    """A fork bomb: 300 processes asked for under a cap of 64 tasks. ``RLIMIT_NPROC`` binds a normal
    user; root, whom the kernel exempts from it, gets a pids cgroup of the job's own where the cgroup
    file system lets it (else this test cannot tell and is skipped). Nothing it started outlives it."""
    from app.safety.sandbox import _pids_cgroup_dir

    if os.getuid() == 0 and not (_pids_cgroup_dir() and os.access(_pids_cgroup_dir(), os.W_OK)):
        pytest.skip("root without a writable pids cgroup: the kernel does not cap root's processes")
    payload = '''
pids = []
for i in range(300):
    try:
        pids.append(os.posix_spawn("/bin/sleep", ["sleep", "60"], os.environ))
    except OSError as e:
        print("REFUSED", e, flush=True)
        break
print("SPAWNED", len(pids), " ".join(map(str, pids[:5])), flush=True)
print("JOB", os.getpid(), flush=True)
'''
    run = run_cli(tmp_path, "inspect", *hostile_model(tmp_path, payload), DEPLOYSTUDIO_JOB_PROCESSES=64, timeout=150)
    assert "job: REFUSED" in run.stderr, run.stderr
    line = next(line for line in run.stderr.splitlines() if line.startswith("job: SPAWNED"))
    assert int(line.split()[2]) < 64, line
    assert all(_gone_within(int(pid), 10) for pid in line.split()[3:])
    if os.getuid() == 0:   # the job's own group is gone (other apps' jobs running meanwhile keep theirs)
        job = next(line.split()[2] for line in run.stderr.splitlines() if line.startswith("job: JOB "))
        assert not (_pids_cgroup_dir() / f"deploystudio-job-{job}").exists(), job
