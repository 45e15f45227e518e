"""Payload families against the fence's channels: code that runs inside a job (an ``--arch`` file here;
a class the user approved or a native parser's bug gets the same process) attacks what connects the
job to the outside — the result channel, the forkserver, the resource tracker, the parent's descriptors,
ptrace and signals, the terminal — or simply never ends.

    python benchmarks/attack_channels.py [--json FILE]

Each payload runs as ``main.py inspect MODEL --arch attack.py:build --json`` in a fresh CLI process
(its own forkserver and resource tracker, private TMPDIR and HOME), with ``--timeout 60`` and a 5 s
stall limit. Counted per run: **side effects** (a marker file the payload makes the parent write, a
/dev/shm object it gets unlinked, the CLI killed, a line on stdout that is not the parent's one JSON
object, a terminal escape reaching the user), **hangs** (the CLI still running after 120 s), and
whether the outcome was a clean one-line message or a success.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PIPES = '''
def pipes():
    return [fd for fd, what in fds() if fd > 2 and what.startswith("pipe:")]
'''

# a pickle that makes whoever unpickles it create MARKER, framed as multiprocessing frames it, on every pipe
FORGED = '''
class P:
    def __reduce__(self):
        return (open, (MARKER, "w"))
d = pickle.dumps(("result", P()))
for fd in pipes():
    try: os.write(fd, struct.pack("!i", len(d)) + d)
    except OSError: pass
'''

# family -> {variant: payload}; MARKER, VICTIM (a /dev/shm name), TMP are filled in per run
FAMILIES: dict[str, dict[str, str]] = {
    "result channel: forged messages": {
        "before the result": FORGED,
        "instead of the result": FORGED + "os._exit(0)\n",
        "as a progress report": FORGED.replace('("result", P())', '("progress", P(), 0.5)'),
        "a huge length": '''
for fd in pipes():
    try: os.write(fd, struct.pack("!i", 2**31 - 1) + b"x" * 1000)
    except OSError: pass
os._exit(0)
''',
        "JSON naming a foreign class": '''
d = b'{"$tuple": ["result", {"$dc": "subprocess:Popen", "fields": {"args": ["touch", "MARKER"]}}]}'.replace(b"MARKER", MARKER.encode())
for fd in pipes():
    try: os.write(fd, struct.pack("!i", len(d)) + d)
    except OSError: pass
os._exit(0)
''',
    },
    "forkserver and unix sockets": {
        "connect to the listener": '''
for path in glob.glob(TMP + "/*/listener-*") + glob.glob("/tmp/*/listener-*"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.sendall(b"\\0" * 64)
    open(MARKER, "w")
''',
        "socket pair re-pointed": '''
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
for path in glob.glob(TMP + "/*/listener-*"):
    a.connect(path)
    open(MARKER, "w")
''',
        "abstract socket": '''
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect("\\0/tmp/.X11-unix/X0")
''',
    },
    "resource tracker": {
        "REGISTER on every descriptor": '''
for fd, what in fds():
    try: os.write(fd, b"REGISTER:/" + VICTIM.encode() + b":shared_memory\\n")
    except OSError: pass
''',
        "through /proc/self/fd paths (torch.save)": '''
for fd, what in fds():
    try: torch.save("\\nREGISTER:/" + VICTIM + ":shared_memory\\n", f"/proc/self/fd/{fd}")
    except Exception: pass
''',
    },
    "the parent's descriptors and memory": {
        "open /proc/<parent>/fd for writing": '''
parent = os.getppid()
grandparent = int(open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[1])
for pid in (parent, grandparent):
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            fd = os.open(f"/proc/{pid}/fd/{n}", os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"REGISTER:/" + VICTIM.encode() + b":shared_memory\\n")
        except OSError: pass
''',
        "ptrace the CLI": '''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
parent = os.getppid()
grandparent = int(open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[1])
for pid in (parent, grandparent):
    if libc.ptrace(16, pid, 0, 0) == 0:  # PTRACE_ATTACH
        open(MARKER, "w")
''',
        "write the CLI's memory": '''
parent = os.getppid()
grandparent = int(open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[1])
with open(f"/proc/{grandparent}/mem", "r+b") as f:
    open(MARKER, "w")
''',
        "signal the CLI": '''
parent = os.getppid()
grandparent = int(open(f"/proc/{parent}/stat").read().rsplit(")", 1)[1].split()[1])
for pid in (grandparent, parent):
    try: os.kill(pid, 9)
    except OSError: pass
''',
    },
    "the terminal": {
        "spoofed JSON on stdout": '''
print('{"format": "spoofed"}', flush=True)
os.write(1, b'{"sandboxed": false}\\n')
''',
        "escape sequences": '''
sys.stdout.write("\\x1b]52;c;cm0gLXJmIH4=\\x07\\x1b]0;title\\x07\\x1b[2J\\n")
sys.stderr.write("\\x9b31m\\u202eevil\\n")
''',
        "a flood": '''
for i in range(200000):
    print("x" * 200)
''',
    },
    "never ending": {
        "blocked on a pipe": '''
r, w = os.pipe()
os.read(r, 1)
''',
        "asleep": '''
time.sleep(10**6)
''',
        "busy": '''
while True:
    pass
''',
        "stdout nobody reads": '''
while True:
    os.write(1, b"y" * 65536)
''',
    },
}


def run_one(folder: Path, payload: str) -> dict:
    from tests.channel_attacks import hostile_model

    marker = folder / "marker"
    victim_name = f"studio-victim-{uuid.uuid4().hex[:10]}"
    victim = Path("/dev/shm") / victim_name
    victim.write_bytes(b"another program's shared memory")
    tmp = folder / "tmp"
    tmp.mkdir()
    code = (f"MARKER = {str(marker)!r}\nVICTIM = {victim_name!r}\nTMP = {str(tmp)!r}\n" + PIPES + payload)
    args = hostile_model(folder, code)
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(folder / "home"), PYTHONPATH=str(REPO),
               DEPLOYSTUDIO_JOB_STALL_SECONDS="5", XDG_CONFIG_HOME=str(folder / "config"),
               XDG_CACHE_HOME=str(folder / "cache"))
    started = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(REPO / "main.py"), "inspect", *args, "--json", "--timeout", "60"],
                              cwd=folder, env=env, capture_output=True, timeout=120)
        hang, code_, out, err = False, proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        hang, code_, out, err = True, None, (e.stdout or b"").decode(errors="replace"), (e.stderr or b"").decode(errors="replace")
    seconds = time.monotonic() - started
    effects = []
    if marker.exists():
        effects.append("marker written")
    if not victim.exists():
        effects.append("/dev/shm object unlinked")
    victim.unlink(missing_ok=True)
    if code_ is not None and code_ < 0:
        effects.append(f"CLI killed by signal {-code_}")
    try:
        message = json.loads(out).get("message") if out.strip() else None
        if not out.strip():
            effects.append("no JSON on stdout")
    except ValueError:
        message = None
        effects.append("stdout is not one JSON object")
    if any(c in out + err for c in ("\x1b", "\x07", "\x9b", "\u202e")):
        effects.append("control characters reached the terminal")
    left = sorted(p.name for p in tmp.iterdir())
    if left:
        effects.append(f"left in TMPDIR: {', '.join(left)}")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    return {"exit": code_, "seconds": round(seconds, 1), "hang": hang, "side_effects": effects,
            "message": message, "one_line": len(errors) <= 1}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", type=Path)
    p.add_argument("--only", help="run the families whose name contains this")
    args = p.parse_args()
    from app.machine.hardware import detect_cpu
    from app.safety.sandbox import status

    rows = []
    print(f"{'family':34} {'payload':40} {'exit':>4} {'s':>5}  outcome")
    for family, variants in FAMILIES.items():
        if args.only and args.only not in family:
            continue
        for variant, payload in variants.items():
            folder = Path(tempfile.mkdtemp(prefix="atk-", dir="/tmp"))
            try:
                r = run_one(folder, payload)
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            r.update(family=family, payload=variant)
            rows.append(r)
            outcome = ("HANG" if r["hang"] else "; ".join(r["side_effects"]) or
                       (r["message"] or "ok")[:90])
            print(f"{family:34} {variant:40} {str(r['exit']):>4} {r['seconds']:5.1f}  {outcome}", flush=True)
    effects = sum(bool(r["side_effects"]) for r in rows)
    hangs = sum(r["hang"] for r in rows)
    print(f"\n{len(rows)} payloads: {effects} with side effects, {hangs} hangs, "
          f"{sum(not r['one_line'] for r in rows)} with more than one error line")
    print(f"machine: {detect_cpu().name}, Linux {platform.release()}; {status()[1]}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "side_effects": effects, "hangs": hangs}, indent=2))
    return 1 if effects or hangs else 0


if __name__ == "__main__":
    raise SystemExit(main())
