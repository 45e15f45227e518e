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
- **Resources**: ``RLIMIT_AS`` (memory; not on machines with an NVIDIA driver, whose address-space
  reservations it would break), ``RLIMIT_CPU`` (CPU seconds; SIGXCPU past it), no core dumps.

Where the kernel has no Landlock (other OSes, old kernels, some containers) the job still runs in a
child with the resource limits, and :func:`status` says "not sandboxed" so the CLI and the window can
say so. ``landlock`` on PyPI is a 1.0.0.dev release (2025) without the ABI 4-6 network and scope
rules, so the three Landlock syscalls and the seccomp program are called through ctypes here.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import platform
import struct
import sys
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

# -- seccomp: (audit arch, socket, connect, io_uring_setup) per machine
_SECCOMP_ARCH = {"x86_64": (0xC000003E, 41, 42, 425), "aarch64": (0xC00000B7, 198, 203, 425)}

DEFAULT_CPU_SECONDS = 4 * 3600


@dataclass(frozen=True)
class Fence:
    """What one child may do: write beneath ``writable`` only; memory and CPU limits (None: none)."""

    writable: tuple[str, ...] = ()
    memory_bytes: int | None = None
    cpu_seconds: int | None = DEFAULT_CPU_SECONDS


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


def default_memory_limit() -> int | None:
    """Bytes of address space a job may use: ``DEPLOYSTUDIO_JOB_MEMORY_MB``, else the machine's RAM;
    None where an NVIDIA driver is present (CUDA reserves far more address space than it uses)."""
    if os.environ.get("DEPLOYSTUDIO_JOB_MEMORY_MB"):
        return int(os.environ["DEPLOYSTUDIO_JOB_MEMORY_MB"]) << 20
    if Path("/dev/nvidiactl").exists():
        return None
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def job_fence(writable: list[Path] | tuple[Path, ...]) -> Fence:
    """The fence for a job that may write beneath ``writable`` (limits from the environment)."""
    cpu = int(os.environ.get("DEPLOYSTUDIO_JOB_CPU_SECONDS", DEFAULT_CPU_SECONDS))
    return Fence(tuple(str(Path(p)) for p in writable), default_memory_limit(), cpu or None)


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
        _seccomp(libc, *_SECCOMP_ARCH[platform.machine()])
        applied.append("seccomp")
    return applied


def _limits(fence: Fence) -> None:
    if resource is None:
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if fence.cpu_seconds:
        resource.setrlimit(resource.RLIMIT_CPU, (fence.cpu_seconds, fence.cpu_seconds + 5))
    if fence.memory_bytes:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = fence.memory_bytes if hard == resource.RLIM_INFINITY else min(fence.memory_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


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


def _seccomp(libc, arch: int, nr_socket: int, nr_connect: int, nr_io_uring_setup: int) -> None:
    """socket() and connect(): EACCES, whatever the family — a pathname unix socket (multiprocessing's
    forkserver, a display or session bus) is reachable by any process that may read its folder, and
    Landlock does not cover connecting to one; io_uring_setup and foreign-ABI syscalls (i386, x32):
    EACCES too. A job needs no socket: its result channel and output are pipes it inherited."""
    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    allow, deny = 0x7FFF0000, 0x00050000 | errno.EACCES
    # jt/jf count instructions after the current one; ALLOW is index 7, DENY index 8
    prog = [
        (ld, 0, 0, 4),                        # 0: A = arch
        (jeq, 0, 6, arch),                    # 1: foreign ABI (i386 on x86-64) -> DENY
        (ld, 0, 0, 0),                        # 2: A = syscall number
        (jge, 4, 0, 0x40000000),              # 3: x32 syscalls -> DENY
        (jeq, 3, 0, nr_io_uring_setup),       # 4: io_uring (could open sockets itself) -> DENY
        (jeq, 2, 0, nr_socket),               # 5: socket -> DENY
        (jeq, 1, 0, nr_connect),              # 6: connect -> DENY
        (ret, 0, 0, allow),                   # 7: ALLOW
        (ret, 0, 0, deny),                    # 8: DENY
    ]
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
