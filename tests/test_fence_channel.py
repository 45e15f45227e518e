"""The fence holds against the code it fences: code that runs inside a job (here an ``--arch`` file,
the same as a class the user approved or a native parser's bug) attacks the channels to the outside.

Each attack is a real hostile file run through the real CLI in a process of its own (so multiprocessing's
forkserver and resource tracker are the CLI's, and end with it), with private TMPDIR and settings.
Each asserts what the user sees (exit code, one line, valid ``--json``) and that the attack's effect
did not happen (the marker file, the /dev/shm object, a connection).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.safety.sandbox import status
from tests.channel_attacks import hostile_model
from tests.conftest import REPO
from tests.fuzz import assert_sentences
from tests.test_jobs import _alive

SANDBOXED = status()[0]
needs_fence = pytest.mark.skipif(not SANDBOXED, reason="this kernel offers no Landlock: no fence to test")

@pytest.fixture
def tmp_path(tmp_path):
    """A short folder (a unix socket's path in it must fit 107 bytes) with the CLI's TMPDIR as tmp/."""
    import shutil
    import tempfile

    short = Path(tempfile.mkdtemp(prefix="fence-", dir="/tmp"))
    (short / "tmp").mkdir()
    yield short
    shutil.rmtree(short, ignore_errors=True)


def private_env(tmp_path: Path, **extra) -> dict:
    tmp = tmp_path / "tmp"
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(tmp_path / "home"), PYTHONPATH=str(REPO))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_cli(tmp_path: Path, *args, timeout: float = 240, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], cwd=tmp_path,
                          env=private_env(tmp_path, **env), capture_output=True, text=True, timeout=timeout)


def leftovers(tmp_path: Path) -> list[str]:
    """What the run left in its private temporary folder."""
    return sorted(p.name for p in (tmp_path / "tmp").iterdir())


def test_a_pickle_sent_on_the_result_channel_never_runs_in_the_cli(tmp_path):
    marker = tmp_path / "marker-written-by-the-cli"
    args = hostile_model(tmp_path, f'''
class Payload:
    def __reduce__(self):
        return (open, ({str(marker)!r}, "w"))
forged = pickle.dumps(("result", Payload()))
for fd, what in fds():
    if fd > 2 and what.startswith("pipe:"):
        try:
            os.write(fd, struct.pack("!i", len(forged)) + forged)
        except OSError:
            pass
''')
    run = run_cli(tmp_path, "inspect", *args, "--json")
    assert not marker.exists(), "the CLI unpickled what the job sent"
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert "sent an invalid result" in out["message"] and "nothing was kept" in out["message"]
    assert [line for line in run.stderr.splitlines() if line.startswith("error:")] == [f"error: {out['message']}"]
    assert_sentences(run.stderr)  # a sentence, not an exception's text
    assert leftovers(tmp_path) == []


@needs_fence
def test_the_forkserver_and_every_unix_socket_are_out_of_reach(tmp_path):
    tmp = tmp_path / "tmp"
    args = hostile_model(tmp_path, f'''
listeners = glob.glob({str(tmp)!r} + "/*/listener-*")
print("found", len(listeners), "listener(s)")
for path in listeners:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        print("CONNECTED to the forkserver")
    except OSError as e:
        print("refused:", e.errno)
try:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # refused too (round 3)
    a.connect("/dev/log")
    print("CONNECTED a socket pair to /dev/log")
except OSError as e:
    print("refused:", e.errno)
''')
    run = run_cli(tmp_path, "inspect", *args)
    assert run.returncode == 0, run.stderr
    assert "job: found 1 listener(s)" in run.stderr  # the attack saw the socket it went for
    assert "CONNECTED" not in run.stderr
    assert run.stderr.count("job: refused: 13") == 2  # EACCES: seccomp refused socket() and socketpair()


def test_the_resource_tracker_cannot_be_told_to_unlink_a_shared_memory_object(tmp_path):
    name = f"studio-victim-{uuid.uuid4().hex[:12]}"
    victim = Path("/dev/shm") / name
    if not victim.parent.is_dir():
        pytest.skip("no /dev/shm")
    victim.write_bytes(b"someone else's shared memory")
    try:
        args = hostile_model(tmp_path, f'''
line = b"REGISTER:/{name}:shared_memory\\n"
for fd, what in fds():
    try:
        os.write(fd, line)
        print("wrote to", fd, what)
    except OSError:
        pass
''')
        run = run_cli(tmp_path, "inspect", *args)
        # the CLI has exited, and its resource tracker with it: what it was told to clean up, it did
        assert victim.exists(), "the job reached the resource tracker, which unlinked another program's object"
        # its only outlets: its own output pipe, and its result pipe (garbling its own result: exit 1)
        written = {line.split()[-1] for line in run.stderr.splitlines() if line.startswith("job: wrote to")}
        assert "job: wrote to 1 pipe:" in run.stderr and len(written) <= 2, written
        assert run.returncode == 0 or "sent an invalid result" in run.stderr, run.stderr
    finally:
        victim.unlink(missing_ok=True)


@needs_fence
def test_the_job_holds_no_inherited_descriptor_and_cannot_reach_its_parents(tmp_path):
    args = hostile_model(tmp_path, '''
for fd, what in fds():
    flags = [l for l in open(f"/proc/self/fdinfo/{fd}") if l.startswith("flags:")][0].split()[1]
    print("fd", fd, what, "writable" if int(flags, 8) & 3 else "read-only")
parent = os.getppid()
grandparent = int(open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[1])
for pid in (parent, grandparent):  # the forkserver, the CLI: their pipes are not under Landlock's rules
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            os.close(os.open(f"/proc/{pid}/fd/{n}", os.O_WRONLY | os.O_NONBLOCK))
            print("OPENED", pid, n)
        except OSError as e:
            print("denied", e.errno)
''')
    run = run_cli(tmp_path, "inspect", *args)
    assert run.returncode == 0, run.stderr
    lines = [line.split()[2:5] for line in run.stderr.splitlines() if line.startswith("job: fd ")]
    held = {fd: what for fd, what, _ in lines}
    writable = {fd: what for fd, what, mode in lines if mode == "writable"}
    assert held["0"] == "/dev/null" and held["1"] == held["2"] and held["1"].startswith("pipe:")
    # what it can write to: its output pipe and its result pipe, nothing more (what it opened itself
    # since, e.g. the state dict, is read-only; what it inherited is /dev/null, read-only)
    assert {w for w in writable.values()} == {held["1"], next(w for w in writable.values() if w != held["1"])}, lines
    assert len(set(writable.values())) == 2 and all(w.startswith("pipe:") for w in writable.values()), lines
    assert not any("onnxruntime" in what for what in held.values())
    assert "OPENED" not in run.stderr and "job: denied 13" in run.stderr


def test_what_the_job_prints_is_cleaned_and_never_on_json_stdout(tmp_path):
    args = hostile_model(tmp_path, r'''
print('{"format": "spoofed", "sandboxed": false}')
sys.stdout.write("\x1b]52;c;cm0gLXJmIH4=\x07clipboard\x1b]0;window title\x07 and \x1b[2J\n")
sys.stderr.write("to stderr \u202eevil\n")
''')
    run = run_cli(tmp_path, "inspect", *args, "--json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)  # stdout is the parent's one JSON object, nothing before it
    assert out["format"] != "spoofed" and "spoofed" not in run.stdout
    assert "\x1b" not in run.stderr and "\x07" not in run.stderr and "\u202e" not in run.stderr
    assert 'job: {"format": "spoofed", "sandboxed": false}' in run.stderr
    assert "job: to stderr evil" in run.stderr


def test_a_job_blocked_forever_is_stopped_as_hung_and_leaves_nothing(tmp_path):
    args = hostile_model(tmp_path, '''
r, w = os.pipe()
os.read(r, 1)  # blocks forever at 0 % CPU: the CPU-time limit never fires
''')
    started = time.monotonic()
    run = run_cli(tmp_path, "inspect", *args, "--json", DEPLOYSTUDIO_JOB_STALL_SECONDS=3)
    assert run.returncode == 1, run.stderr
    assert "looks hung" in json.loads(run.stdout)["message"]
    assert_sentences(run.stderr)  # a sentence, not an exception's text
    assert time.monotonic() - started < 120
    assert leftovers(tmp_path) == []


def test_timeout_bounds_a_busy_job_on_every_command(tmp_path):
    args = hostile_model(tmp_path, '''
while True:
    pass
''')
    run = run_cli(tmp_path, "inspect", *args, "--timeout", "3")
    assert run.returncode == 1
    assert "error: the job timed out after 3 s and was stopped (--timeout SECONDS gives it longer)" in run.stderr
    assert_sentences(run.stderr)  # a sentence, not an exception's text
    assert leftovers(tmp_path) == []


def _wait_for_ready(cli: subprocess.Popen, deadline: float) -> int | None:
    """The job's pid from its "ready" line (its output comes through the CLI's stderr), or None."""
    import select

    fd, seen = cli.stderr.fileno(), b""
    while time.monotonic() < deadline:
        if not select.select([fd], [], [], deadline - time.monotonic())[0]:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        seen += chunk
        for line in seen.decode(errors="replace").splitlines():
            if line.startswith("job: ready ") and line.split()[2].isdigit():
                return int(line.split()[2])
    return None


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_killed_cli_stops_its_job_and_its_folders_go(tmp_path, how):
    """SIGTERM: the CLI stops the job and removes its folders itself. SIGKILL: the job dies with it
    (the kernel's parent-death signal); its folders go when the next job starts."""
    args = hostile_model(tmp_path, '''
print("ready", os.getpid(), "", flush=True)
r, w = os.pipe()
os.read(r, 1)
''')
    cli = subprocess.Popen([sys.executable, str(REPO / "main.py"), "inspect", *args, "--json"], cwd=tmp_path,
                           env=private_env(tmp_path), stderr=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        child = _wait_for_ready(cli, deadline=time.monotonic() + 120)
        assert child and _alive(child)
        assert any(n.startswith("studio-job-") for n in leftovers(tmp_path))
        cli.send_signal(getattr(signal, how))
        code = cli.wait(60)
        out = cli.stdout.read().decode()
    finally:
        cli.kill()
        cli.wait()
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child), "the job outlived the CLI"
    if how == "SIGTERM":
        assert code == 143 and json.loads(out)["exit_code"] == 143  # --json: one object on every exit
        assert leftovers(tmp_path) == []
    else:
        assert any(n.startswith("studio-job-") for n in leftovers(tmp_path))  # a killed process cleans nothing
        run = run_cli(tmp_path, "inspect", *hostile_model(tmp_path, "pass"))
        assert run.returncode == 0, run.stderr
        assert leftovers(tmp_path) == []


def test_onnx_runtime_records_nothing_in_the_users_cache(tmp_path):
    cache = tmp_path / "cache"
    env = dict(private_env(tmp_path), XDG_CACHE_HOME=str(cache))
    env.pop("ORT_DISABLE_TELEMETRY", None)  # this process has it from importing app: the child must set it itself
    run = subprocess.run([sys.executable, "-c", "import app, os, onnxruntime; "
                          "print(os.environ.get('ORT_DISABLE_TELEMETRY'))"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    # the switch ONNX Runtime reads before it opens its telemetry queue under XDG_CACHE_HOME/Microsoft
    # (whether it writes one without the switch depends on the machine: CI's did not, so no control run here)
    assert run.stdout.split()[-1] == "1"
    assert not (cache / "Microsoft").exists()
