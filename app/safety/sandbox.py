"""The fence around a child process that touches a user's model (Linux: Landlock + seccomp + rlimits).

Applied by :func:`app.jobs._child_main` in the job's own process, after the fork and before any model
code runs (Landlock and seccomp bind the calling thread and everything it starts later; a forked
child has one thread). What it covers:

- **Writes** (Landlock, kernel >= 5.13): creating, writing, truncating, renaming, linking or removing
  files is denied everywhere except beneath the job's private folders (its work folder in the output
  folder, a private temporary folder that ``TMPDIR``, ``tempfile`` and the library caches point to)
  and ``/dev/null``, plus GPU device files where present. Reads stay allowed: torch, ONNX Runtime and
  the CUDA libraries read system paths, and the job reads the model.
- **Network and sockets**: TCP connect/bind denied by Landlock (ABI >= 4, kernel >= 6.7); every
  ``socket()`` and ``connect()`` — unix sockets included, since Landlock does not cover connecting to
  a pathname socket such as multiprocessing's forkserver — and io_uring refused by a seccomp filter;
  abstract unix sockets and signals to processes outside the job scoped away (ABI >= 6). Landlock
  also keeps the job from ``ptrace`` and ``/proc/<pid>/fd`` of processes outside it (ABI >= 1).
- **Resources**: ``RLIMIT_AS`` (the address space the child has when fenced plus the memory available
  now; not on machines with an NVIDIA driver, whose address-space reservations it would break),
  ``RLIMIT_CPU`` (CPU seconds; SIGXCPU past it), ``RLIMIT_FSIZE`` (one file at most the free space of
  the job's roomiest folder), ``RLIMIT_NPROC`` (tasks the job may add to the user's; root is exempt),
  no core dumps.
- **Its session and group**: the child runs in a session of its own with no controlling terminal, and
  seccomp keeps everything it starts there (``setsid``/``setpgid`` refused), keeps the parent-death
  signal in place and refuses the terminal ioctls that type into or take over a terminal (TIOCSTI, ...).

Where the kernel has no Landlock (other OSes, old kernels, some containers) the job still runs in a
child with the resource limits, and :func:`status` says "not sandboxed" so the CLI and the window can
say so. ``landlock`` on PyPI is a 1.0.0.dev release (2025) without the ABI 4-6 network and scope
rules, so the three Landlock syscalls and the seccomp program are called through ctypes here.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import platform
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

try:
    import resource
except ImportError:  # Windows: no rlimits
    resource = None  # type: ignore[assignment]

# -- Landlock (include/uapi/linux/landlock.h); the syscall numbers are the same on every architecture
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
FS_WRITE_FILE, FS_REMOVE_DIR, FS_REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
FS_MAKE = sum(1 << b for b in range(6, 13))  # MAKE_CHAR, _DIR, _REG, _SOCK, _FIFO, _BLOCK, _SYM
FS_REFER, FS_TRUNCATE = 1 << 13, 1 << 14      # ABI 2, ABI 3
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1   # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 38, 22, 2

# -- seccomp: the audit arch and the syscall numbers the filter names, per machine
_SECCOMP_ARCH = {
    "x86_64": {"audit": 0xC000003E, "socket": 41, "connect": 42, "io_uring_setup": 425, "socketpair": 53,
               "sendto": 44, "sendmsg": 46, "sendmmsg": 307, "setsid": 112, "setpgid": 109, "ioctl": 16,
               "prctl": 157},
    "aarch64": {"audit": 0xC00000B7, "socket": 198, "connect": 203, "io_uring_setup": 425, "socketpair": 199,
                "sendto": 206, "sendmsg": 211, "sendmmsg": 269, "setsid": 157, "setpgid": 154, "ioctl": 29,
                "prctl": 167},
}

DEFAULT_CPU_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Fence:
    """What one child may do: write beneath ``writable`` only; resource limits (None: none).

    ``memory_bytes``: its address space (``DEPLOYSTUDIO_JOB_MEMORY_MB``); else ``memory_free``: what it
    may add to the address space it has when fenced (the forkserver's imports); ``file_bytes``: the
    largest file it may write; ``processes``: tasks (processes, threads) it may add to the user's."""

    writable: tuple[str, ...] = ()
    memory_bytes: int | None = None
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS
    file_bytes: int | None = None
    processes: int | None = None
    memory_free: int | None = None


def _libc():
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Have the kernel kill this process (SIGKILL) when its parent exits (Linux; nothing elsewhere).

    A job's child is forked by the forkserver, which exits when the app or CLI that started it does —
    even when that one is killed outright: without this, the child would run on, holding its memory.
    """
    if not sys.platform.startswith("linux"):
        return
    import signal

    parent = os.getppid()
    _libc().prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent went before the request was in place
        os._exit(1)


# the sweeper's program (``python -I -S -c``, argv[1]: the job's pid): no descriptor of the job's kept,
# wait for the job's process to end (a pidfd; before Linux 5.3, the sweeper's reparenting), then SIGKILL
# the process group it shares with everything the job started
_SWEEPER = """import os, select, signal, sys
os.closerange(0, 1 << 16)
job = int(sys.argv[1])
try:
    fd = os.pidfd_open(job)
    if os.getppid() == job:
        select.select([fd], [], [])
except (OSError, AttributeError):
    while os.getppid() == job:
        select.select([], [], [], 0.25)
os.killpg(0, signal.SIGKILL)
"""


def start_sweeper() -> int | None:
    """Start the job's sweeper (Linux): a process in the job's process group that runs no model code,
    holds no descriptor of the job's, and kills the whole group (SIGKILL) when the job's process ends —
    whether it returned, crashed, or was killed by its own parent-death signal because the app or CLI
    was killed outright (kill -9 of the CLI: its forkserver exits, the job dies with it, and the sweeper
    then takes whatever the job started: seccomp keeps all of it in the group). Call it in the job's
    child once it leads its own session, before the fence: the sweeper is outside the job's Landlock
    domain, so (ABI >= 6) the job cannot signal it, and cannot ptrace it. It waits on a pidfd, not on
    a parent-death signal: Landlock's signal scope blocks that signal too, the fenced job being the
    one that would send it. A small interpreter started with posix_spawn (no copy of the job's page
    tables, unlike a fork of a process that has torch imported). Returns its pid (None: none)."""
    if not sys.platform.startswith("linux") or not hasattr(os, "killpg"):
        return None
    argv = [sys.executable, "-I", "-S", "-c", _SWEEPER, str(os.getpid())]
    try:
        return os.posix_spawn(sys.executable, argv, {})
    except (OSError, ValueError):  # no interpreter to start (an embedded one): the parent's group kill only
        return None


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0: none)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        libc.syscall.restype = ctypes.c_long
        version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def status() -> tuple[bool, str]:
    """(fenced, one line) for ``targets``, ``inspect --json`` and the window's status bar."""
    abi = landlock_abi()
    if abi <= 0:
        where = platform.system() if not sys.platform.startswith("linux") else f"this Linux kernel ({platform.release()})"
        limits = "memory and CPU limits only" if resource is not None else "no resource limits"
        return False, (f"not sandboxed: {where} offers no Landlock, so model code runs in a child process "
                       f"with the user's file and network access ({limits})")
    net = "TCP denied by Landlock, every socket by seccomp" if abi >= 4 else "every socket denied by seccomp"
    seccomp = platform.machine() in _SECCOMP_ARCH
    if not seccomp and abi < 4:
        net = "network not fenced on this CPU architecture"
    return True, (f"sandboxed: model code runs in a child that writes only its own folders (Landlock ABI {abi}), "
                  f"no network ({net}), memory and CPU-time limits")


def _env_mb(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) << 20 if value else None


def available_memory() -> int | None:
    """The kernel's ``MemAvailable`` (free + reclaimable), bytes; None where there is no /proc/meminfo."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def default_memory_limit() -> int | None:
    """A job's address space, bytes: ``DEPLOYSTUDIO_JOB_MEMORY_MB`` (None without it: then
    :func:`default_memory_headroom` bounds it)."""
    return _env_mb("DEPLOYSTUDIO_JOB_MEMORY_MB")


def default_memory_headroom() -> int | None:
    """Address space a job may add to what it has when fenced: the memory available now
    (``MemAvailable``, at least 1 GiB), not the machine's RAM; None where an NVIDIA driver is present
    (CUDA reserves far more address space than it uses) or ``DEPLOYSTUDIO_JOB_MEMORY_MB`` is set."""
    if os.environ.get("DEPLOYSTUDIO_JOB_MEMORY_MB") or Path("/dev/nvidiactl").exists():
        return None
    available = available_memory()
    return None if available is None else max(available, 1 << 30)


def default_file_limit(writable) -> int | None:
    """The largest file a job may write: ``DEPLOYSTUDIO_JOB_FILE_MB``, else the free space of the
    roomiest folder it may write (at least 64 MiB): one file cannot outgrow the disk it is on."""
    if os.environ.get("DEPLOYSTUDIO_JOB_FILE_MB"):
        return _env_mb("DEPLOYSTUDIO_JOB_FILE_MB")
    free = []
    for folder in writable:
        try:
            st = os.statvfs(folder)
            free.append(st.f_bavail * st.f_frsize)
        except (OSError, AttributeError):
            continue
    return max(max(free), 64 << 20) if free else None


DEFAULT_PROCESSES = 1024


def default_process_limit() -> int:
    """Tasks (processes and threads) a job may add to the user's: ``DEPLOYSTUDIO_JOB_PROCESSES``, else
    1024 plus 8 per CPU (thread pools are sized by the CPU count)."""
    value = os.environ.get("DEPLOYSTUDIO_JOB_PROCESSES")
    return int(value) if value else DEFAULT_PROCESSES + 8 * (os.cpu_count() or 1)


def job_fence(writable: list[Path] | tuple[Path, ...]) -> Fence:
    """The fence for a job that may write beneath ``writable`` (limits from the environment)."""
    cpu = int(os.environ.get("DEPLOYSTUDIO_JOB_CPU_SECONDS", DEFAULT_CPU_SECONDS))
    folders = tuple(str(Path(p)) for p in writable)
    return Fence(folders, default_memory_limit(), cpu or None, default_file_limit(folders), default_process_limit(),
                 default_memory_headroom())


# ---------------------------------------------------------------------------- applying it
def apply(fence: Fence) -> list[str]:
    """Fence the calling process (call in the child, single-threaded). Returns what was applied."""
    applied = []
    _limits(fence)
    applied.append("limits")
    if not sys.platform.startswith("linux"):
        return applied
    libc = _libc()
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    abi = landlock_abi()
    if abi > 0:
        _landlock(libc, abi, fence.writable)
        applied.append(f"landlock-abi{abi}")
    if platform.machine() in _SECCOMP_ARCH:
        _seccomp(libc, _SECCOMP_ARCH[platform.machine()])
        applied.append("seccomp")
    return applied


def _set_limit(which: int, value: int) -> None:
    """Lower ``which`` to ``value`` (never above its hard limit, never raised)."""
    soft, hard = resource.getrlimit(which)
    limit = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(which, (limit, limit))


def _address_space() -> int:
    """This process's address space now (``VmSize``), bytes (0 where unknown)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _user_tasks() -> int:
    """Tasks (processes and threads) of this process's real user now: what ``RLIMIT_NPROC`` counts."""
    uid, count = os.getuid(), 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return 0
    for name in names:
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += len(os.listdir(f"/proc/{name}/task"))
            except OSError:
                continue
    return count


def _limits(fence: Fence) -> None:
    """rlimits. ``RLIMIT_NPROC`` counts every task of the real user and does not bind root (nor anyone with
    CAP_SYS_RESOURCE): for them a fork bomb is bounded by memory and the CPU-time limit only."""
    if resource is None:
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if fence.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (fence.cpu_seconds, fence.cpu_seconds + 5))
    if fence.memory_bytes:
        _set_limit(resource.RLIMIT_AS, fence.memory_bytes)
    elif fence.memory_free:
        _set_limit(resource.RLIMIT_AS, _address_space() + fence.memory_free)
    if fence.file_bytes:
        _set_limit(resource.RLIMIT_FSIZE, fence.file_bytes)
    if fence.processes and hasattr(resource, "RLIMIT_NPROC") and os.getuid() != 0:
        _set_limit(resource.RLIMIT_NPROC, _user_tasks() + fence.processes)
    elif fence.processes and os.getuid() == 0:
        _pids_cgroup(fence.processes)


JOB_CGROUP_PREFIX = "deploystudio-job-"


def _pids_cgroup_dir() -> Path | None:
    """The pids controller's folder of this process's cgroup (v1 ``/sys/fs/cgroup/pids/…``, or v2
    where the unified hierarchy offers ``pids``); None where there is none."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):
            return Path("/sys/fs/cgroup/pids") / path.lstrip("/")
    for line in lines:
        if line.startswith("0::"):
            root = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            try:
                if "pids" in (root / "cgroup.controllers").read_text().split():
                    return root
            except OSError:
                return None
    return None


def _pids_cgroup(limit: int) -> bool:
    """Root is not bound by ``RLIMIT_NPROC``: move this process into a cgroup of its own whose
    ``pids.max`` is ``limit`` (everything it starts stays in it). Best effort (False: not capped): the
    cgroup file system may be read-only or not delegated. Empty job cgroups are removed by
    :func:`remove_job_cgroups` in the parent."""
    base = _pids_cgroup_dir()
    if base is None:
        return False
    folder = base / f"{JOB_CGROUP_PREFIX}{os.getpid()}"
    try:
        if (base / "cgroup.subtree_control").exists():  # v2: the controller must be enabled below
            (base / "cgroup.subtree_control").write_text("+pids")
        folder.mkdir(exist_ok=True)
        (folder / "pids.max").write_text(str(int(limit)))
        (folder / "cgroup.procs").write_text("0")
        return True
    except OSError:
        return False


def remove_job_cgroups(job_pid: int | None = None, wait: float = 2.0) -> None:
    """Remove the job cgroups (``deploystudio-job-<pid>``) beside this process's own that are empty
    (``rmdir`` of a cgroup that still holds a process fails, so a running job's is kept); the one of
    ``job_pid``, whose processes were just killed, is waited for up to ``wait`` seconds."""
    if not sys.platform.startswith("linux") or os.getuid() != 0:
        return
    base = _pids_cgroup_dir()
    if base is None:
        return
    own = base / f"{JOB_CGROUP_PREFIX}{job_pid}"
    deadline = time.monotonic() + wait
    while job_pid and own.is_dir() and time.monotonic() < deadline:
        try:
            own.rmdir()
        except OSError:
            time.sleep(0.02)  # killed processes take a moment to leave it
    try:
        folders = [f for f in base.iterdir() if f.name.startswith(JOB_CGROUP_PREFIX)]
    except OSError:
        return
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def _writable_paths(writable: tuple[str, ...]) -> list[tuple[str, int]]:
    """(path, rights) rules: folders get every write right, device files only WRITE_FILE."""
    rules = [(p, -1) for p in writable]
    devices = ["/dev/null"] + [str(p) for p in Path("/dev").glob("nvidia*")] + [str(p) for p in Path("/dev/dri").glob("*")]
    rules += [(d, FS_WRITE_FILE) for d in devices]
    return rules


def _landlock(libc, abi: int, writable: tuple[str, ...]) -> None:
    fs = FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE
    if abi >= 2:
        fs |= FS_REFER
    if abi >= 3:
        fs |= FS_TRUNCATE
    net = NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0
    scoped = SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0
    attr = struct.pack("<QQQ", fs, net, scoped)[: 24 if abi >= 6 else 16 if abi >= 4 else 8]
    buf = ctypes.create_string_buffer(attr, len(attr))
    libc.syscall.restype = ctypes.c_long
    ruleset = libc.syscall(_SYS_CREATE_RULESET, buf, ctypes.c_size_t(len(attr)), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path, rights in _writable_paths(writable):
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a device that is not there
            try:
                is_dir = os.path.isdir(path)
                allowed = (fs if rights == -1 else rights) if is_dir else FS_WRITE_FILE | (FS_TRUNCATE if abi >= 3 else 0)
                rule = ctypes.create_string_buffer(struct.pack("<Qi", allowed, fd), 12)
                if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(_RULE_PATH_BENEATH), rule,
                                ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule({path}) failed")
            finally:
                os.close(fd)
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


# terminal ioctls a job never needs and an attacker does: TIOCSTI (type into a terminal), TIOCLINUX
# (the console's paste buffer, TIOCL_PASTESEL), TIOCSCTTY (take a terminal as controlling tty), TIOCCONS
# (redirect the console) — refused on any descriptor (low 32 bits: the kernel's cmd is an unsigned int)
TTY_IOCTLS = (0x5412, 0x541C, 0x540E, 0x541D)
_PR_SET_PDEATHSIG_OPTION = 1
_BPF_LD, _BPF_JEQ, _BPF_JGE, _BPF_RET = 0x20, 0x15, 0x35, 0x06
_ALLOW, _EACCES, _EPERM = 0x7FFF0000, 0x00050000 | errno.EACCES, 0x00050000 | errno.EPERM


def _assemble(prog: list[tuple]) -> list[tuple[int, int, int, int]]:
    """Instructions whose jump targets are labels (strings naming a ``("label", name)`` entry) as BPF."""
    where, at = {}, 0
    for ins in prog:
        if ins[0] == "label":
            where[ins[1]] = at
        else:
            at += 1
    out = []
    for ins in prog:
        if ins[0] == "label":
            continue
        code, jt, jf, k = ins
        here = len(out)
        jt = where[jt] - here - 1 if isinstance(jt, str) else jt
        jf = where[jf] - here - 1 if isinstance(jf, str) else jf
        out.append((code, jt, jf, k))
    return out


def seccomp_program(arch: dict) -> list[tuple[int, int, int, int]]:
    """The job's seccomp filter for one machine's syscall numbers (:data:`_SECCOMP_ARCH`).

    EACCES: every way to a socket — ``socket``, ``socketpair``, ``connect``, ``sendto``/``sendmsg``/
    ``sendmmsg`` (a datagram to a pathname socket such as ``/dev/log`` needs no connect), io_uring (it
    could do those itself), and foreign-ABI syscalls (i386, x32). EPERM: leaving the job's session or
    process group (``setsid``, ``setpgid``: everything the job starts stays in the group the watchdog and
    the sweeper kill), dropping the parent-death signal (``prctl(PR_SET_PDEATHSIG)``), and the terminal
    ioctls in :data:`TTY_IOCTLS`."""
    prog: list[tuple] = [(_BPF_LD, 0, 0, 4), (_BPF_JEQ, 0, "eacces", arch["audit"]), (_BPF_LD, 0, 0, 0),
                         (_BPF_JGE, "eacces", 0, 0x40000000)]
    for name in ("io_uring_setup", "socket", "socketpair", "connect", "sendto", "sendmsg", "sendmmsg"):
        prog.append((_BPF_JEQ, "eacces", 0, arch[name]))
    for name in ("setsid", "setpgid"):
        prog.append((_BPF_JEQ, "eperm", 0, arch[name]))
    prog += [(_BPF_JEQ, "ioctl", 0, arch["ioctl"]), (_BPF_JEQ, "prctl", 0, arch["prctl"]),
             (_BPF_RET, 0, 0, _ALLOW),
             ("label", "ioctl"), (_BPF_LD, 0, 0, 24)]  # args[1], its low 32 bits (little-endian)
    prog += [(_BPF_JEQ, "eperm", 0, cmd) for cmd in TTY_IOCTLS]
    prog += [(_BPF_RET, 0, 0, _ALLOW),
             ("label", "prctl"), (_BPF_LD, 0, 0, 16),  # args[0]: the option
             (_BPF_JEQ, "eperm", 0, _PR_SET_PDEATHSIG_OPTION), (_BPF_RET, 0, 0, _ALLOW),
             ("label", "eperm"), (_BPF_RET, 0, 0, _EPERM),
             ("label", "eacces"), (_BPF_RET, 0, 0, _EACCES)]
    return _assemble(prog)


def _seccomp(libc, arch: dict) -> None:
    """Install :func:`seccomp_program` (after ``PR_SET_NO_NEW_PRIVS``). A job needs none of what it
    refuses: its result channel and output are pipes it inherited, and it was put in its own session
    and process group before the fence."""
    prog = seccomp_program(arch)
    filters = (_SockFilter * len(prog))(*[_SockFilter(*ins) for ins in prog])
    fprog = _SockFprog(len(prog), filters)
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def private_environment(tmp: Path) -> None:
    """Point temporary files and library caches at ``tmp`` (the child's only writable scratch space)."""
    import tempfile

    for var in ("TMPDIR", "TEMP", "TMP"):
        os.environ[var] = str(tmp)
    for var, sub in (("XDG_CACHE_HOME", "cache"), ("TORCHINDUCTOR_CACHE_DIR", "inductor"),
                     ("TRITON_CACHE_DIR", "triton"), ("CUDA_CACHE_PATH", "nv"), ("MPLCONFIGDIR", "mpl"),
                     ("HF_HOME", "hf"), ("TORCH_HOME", "torch")):
        os.environ[var] = str(tmp / sub)
    tempfile.tempdir = str(tmp)
