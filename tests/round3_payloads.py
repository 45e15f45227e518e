"""Attack round 3's payloads against the fence core (tests/test_fence_round3.py): the bodies of an
``--arch`` file's ``build()`` (see tests/channel_attacks.py), run inside the job. Markers only."""

from __future__ import annotations


def tiocsti(tty_path: str, command: str) -> str:
    """Type ``command`` into the terminal with TIOCSTI: through /dev/tty, the job's fds 0-2, and the
    test's own pseudo-terminal by name (never any other terminal on the machine)."""
    return f'''
import fcntl, termios
def push(fd, where):
    try:
        for ch in {command!r}.encode():
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
        print("INJECTED via", where, flush=True)
    except OSError as e:
        print("tiocsti refused", where, e.errno, flush=True)
for fd in (0, 1, 2):
    push(fd, f"fd{{fd}}")
for path in ("/dev/tty", {tty_path!r}):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY)
    except OSError as e:
        print("open refused", path, e.errno, flush=True)
        continue
    push(fd, path)
    try:
        fcntl.ioctl(fd, termios.TIOCSCTTY, 1)
        print("TOOK the terminal", path, flush=True)
    except OSError as e:
        print("tiocsctty refused", path, e.errno, flush=True)
    os.close(fd)
'''


KILL_THE_SWEEPER = '''
for name in os.listdir("/proc"):
    if name.isdigit() and int(name) != os.getpid():
        try:
            if "killpg" in open(f"/proc/{name}/cmdline").read():
                os.kill(int(name), signal.SIGKILL)
                print("KILLED the sweeper", name, flush=True)
        except OSError as e:
            print("kill refused", e.errno, flush=True)
'''


def escaping_grandchild(block: bool, kill_sweeper: bool = False) -> str:
    """Fork a child that calls setsid (and drops its parent-death signal), double-fork a grandchild
    that sleeps, and print the grandchild's pid; then return (``block``: block forever first;
    ``kill_sweeper``: try to kill the job's sweeper first)."""
    tail = "r, w = os.pipe()\nos.read(r, 1)\n" if block else ""
    head = "import signal\n" + KILL_THE_SWEEPER if kill_sweeper else ""
    return head + f'''
import ctypes
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    try:
        os.setsid()
        print("setsid DONE", flush=True)
    except OSError as e:
        print("setsid refused", e.errno, flush=True)
    try:
        os.setpgid(0, 0)
        print("setpgid DONE", flush=True)
    except OSError as e:
        print("setpgid refused", e.errno, flush=True)
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(1, 0, 0, 0, 0)
        os.write(w, str(os.getpid()).encode())
        null = os.open(os.devnull, os.O_RDWR)
        for fd in range(0, 256):
            if fd != null:
                try:
                    os.dup2(null, fd)
                except OSError:
                    pass
        while True:
            time.sleep(3600)
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
print("grandchild", os.read(r, 32).decode(), "", flush=True)
{tail}'''


def datagram_out(sink: str) -> str:
    """Send a datagram to the test's socket ``sink`` (outside the fence) every way there is."""
    return f'''
def attempt(what, fn):
    try:
        fn()
        print("SENT via", what, flush=True)
    except OSError as e:
        print(what, "refused", e.errno, flush=True)
state = {{}}
def pair():
    state["a"], state["b"] = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
attempt("socketpair", pair)
if "a" in state:
    attempt("sendto", lambda: state["a"].sendto(b"LEAKED by sendto", {sink!r}))
    attempt("sendmsg", lambda: state["a"].sendmsg([b"LEAKED by sendmsg"], [], 0, {sink!r}))
attempt("socket", lambda: socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"LEAKED", {sink!r}))
'''


RESULT_PIPE_WRITE = '''
def to_result_pipe(data):
    for fd, what in fds():
        if fd > 2 and what.startswith("pipe:"):
            try:
                os.write(fd, data)
            except OSError:
                pass
'''


def half_frame() -> str:
    """A result frame's header and half its bytes, then block at 0 % CPU (the pipe stays open)."""
    return RESULT_PIPE_WRITE + '''
to_result_pipe(struct.pack("!i", 1000) + b'{"$tuple":["res')
r, w = os.pipe()
os.read(r, 1)
'''


def progress_flood(seconds: float, pause: float = 0.005) -> str:
    """Forged progress every ``pause`` seconds (0: as fast as the pipe takes it) for ``seconds`` (its
    stage with a line break in it), then return."""
    return RESULT_PIPE_WRITE + f'''
stage = b'{{"$tuple":["progress","flood\\\\nINJECTED line",null]}}'
frame = struct.pack("!i", len(stage)) + stage
end = time.monotonic() + {seconds}
while time.monotonic() < end:
    to_result_pipe(frame * (1 if {pause} else 1000))
    time.sleep({pause})
'''


# malformed messages on the result pipe (Python expressions, evaluated in the job): each is sent and
# the job then exits at once
FORGED = {
    "overflowing-number": """b'{"$tuple":["result",{"$array":{"dtype":"float32","shape":[1e999],"data":""}}]}'""",
    "huge-int-shape": """b'{"$tuple":["result",{"$array":{"dtype":"uint8","shape":[0,' + b"9" * 40 + b'],"data":""}}]}'""",
    "deep-nesting": """b"[" * 200000 + b"]" * 200000""",
    "memory-bomb": """b'{"$tuple":["result",[' + b",".join([b"{}"] * 1500000) + b']]}'""",
}


def forged_frame(name: str) -> str:
    """Send :data:`FORGED`'s ``name`` (or a bad header: ``over-the-cap``, ``truncated``) and exit."""
    if name == "over-the-cap":
        frame = "struct.pack('!i', -1) + struct.pack('!Q', 1 << 62)"
    elif name == "truncated":
        frame = "struct.pack('!i', 1000) + b'{\"$tuple\":[\"result\"'"
    else:
        frame = f"struct.pack('!i', len({FORGED[name]})) + {FORGED[name]}"
    return RESULT_PIPE_WRITE + f"to_result_pipe({frame})\nos._exit(0)\n"


def limits(big_file: str) -> str:
    """Print the job's rlimits and its address space, then write 2 MiB to ``big_file`` (its TMPDIR)."""
    return f'''
import resource
def soft(name):
    value = resource.getrlimit(getattr(resource, name))[0]
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)
vm = [l for l in open("/proc/self/status") if l.startswith("VmSize:")][0].split()[1]
print("limits", soft("RLIMIT_AS"), soft("RLIMIT_FSIZE"), soft("RLIMIT_NPROC"), int(vm) * 1024, flush=True)
try:
    with open(os.path.join(os.environ["TMPDIR"], {big_file!r}), "wb") as f:
        f.write(b"x" * (2 << 20))
    print("WROTE 2 MiB", flush=True)
except OSError as e:
    print("write refused", e.errno, flush=True)
'''
