"""Run a job (a conversion, a benchmark) in a supervised child process.

Native code (the ONNX exporter, ONNX Runtime, TensorRT) can crash or hang, and a thread cannot be
interrupted in the middle of a native call. So the window and the CLI run every job that touches a
user's model through :func:`run_job`: the child reports progress over a pipe; cancel terminates it
(within a second), a crash becomes ``the converter process crashed (signal N)`` (``the job's process``
for jobs other than conversions), a time-out is reported as such, and the caller's process lives on.
Temporaries of a killed child are removed afterwards.

The child is fenced (:mod:`app.safety.sandbox`) before it runs the job: it may write only beneath the
folders the caller names (a conversion: its private work folder; the parent renames the artifacts
into the output folder) and a private temporary folder, has no network and no sockets, and runs
under memory and CPU-time limits. What runs inside the fence is treated as hostile on the way out:

- **Results are data.** The child sends JSON (:mod:`app.safety.wire`), never a pickle; a message the
  parent cannot parse, or one past the size limit, is "the job's process sent an invalid result".
- **Nothing outside is within reach.** Before the fence the child moves into a session of its own
  (no controlling terminal: nothing it opens as ``/dev/tty`` is the user's, and seccomp refuses the
  ioctls that type into a terminal), and every descriptor it inherited (the forkserver's pipes, multiprocessing's resource
  tracker, libraries' files) except its result channel is pointed at ``/dev/null``; seccomp refuses
  every ``socket()`` (pathname unix sockets such as the forkserver's are not covered by Landlock),
  and Landlock keeps it from ``/proc/<pid>/fd`` and ``ptrace`` of processes outside the fence.
- **Its output is the parent's to show.** The child's stdout and stderr go into a pipe; the parent
  strips control characters and hands each line to ``log`` (the CLI: stderr, prefixed ``job:``;
  the window: its log). ``--json`` output is written by the parent alone.
- **A watchdog.** Every job has a wall-clock limit (its caller's ``wall_limit``, else
  :data:`DEFAULT_WALL_LIMIT`; ``--timeout`` overrides both), and a
  job that neither reports progress, writes output nor uses CPU time for :data:`STALL_SECONDS` is
  stopped; stopping kills the child's whole process group and removes its temporary folders.
  Folders of a parent that was killed outright (``studio-job-<pid>-*``) go at the next job's start.
  The watchdog owns the clock: the result pipe is read without blocking (a message's length is
  checked from its header, before room is made for it; half a message never blocks), and the
  limits are checked at every turn, however fast progress comes.
- **Nothing outlives the job.** Seccomp keeps every process the job starts in its process group
  (``setsid``/``setpgid`` refused), and a sweeper (:func:`app.safety.sandbox.start_sweeper`), a
  process of that group outside the fence, kills the group when the job's process ends — also when
  the app or CLI was killed outright and the job died of its parent-death signal.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import multiprocessing as mp
import multiprocessing.connection as mp_connection
import os
import re
import shutil
import signal
import sys
import threading
import time
import types
import typing
from pathlib import Path
from typing import Any, Callable

from app import errors
from app.artifacts import atomic_output as files
from app.artifacts.atomic_output import clean_stale_work_dirs
from app.artifacts.manifest import manifest_path_of
from app.errors import Cancelled, ConversionFailed, StudioError, describe
from app.loaders.front_door import prepare_model
from app.machine import memory
from app.pipeline import ConversionResult, artifact_path, check_result, convert, output_folder
from app.request import ConversionRequest, ModelSource
from app.safety import sandbox, wire
from app.safety.sandbox import die_with_parent, job_fence, status
from converters.base import check_request, get_converter

_PRELOAD = ["app.pipeline", "app.loaders.front_door", "torch", "onnx", "onnxruntime"]
_context: Any = None
JOB_PREFIX = "studio-job-"       # a job's private temporary folder: studio-job-<parent pid>-*
SETTING_PREFIXES = ("DEPLOY_STUDIO_", "DEPLOYSTUDIO_")   # the app's settings in the environment
MP_PREFIX = "studio-mp-"         # multiprocessing's own folder (the forkserver's socket): studio-mp-<pid>-*

# wall-clock limits (seconds): a job's caller passes its own (run_job's wall_limit), else DEFAULT_WALL_LIMIT;
# --timeout (time_limit) overrides both
INSPECT_WALL_LIMIT = 600.0
CONVERT_WALL_LIMIT = 4 * 3600.0
DEFAULT_WALL_LIMIT = 2 * 3600.0
STALL_SECONDS = 300.0            # no progress, no output and no CPU time for this long: a hang
MAX_OUTPUT_LINES = 500           # lines of a job's output shown; the rest is counted
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")

_local = threading.local()


class JobTimeout(StudioError):
    """The job ran past its time limit and was stopped (exit code 1; not a converter failure: any job
    can time out)."""


class InvalidResult(StudioError):
    """The child sent something that is not a message this app writes (exit code 1)."""


def clean_text(text: str, limit: int = 2000, lines: bool = False) -> str:
    """``text`` without control characters (terminal escapes, bidi overrides), cut at ``limit``; one
    line (line breaks become spaces: a stage name, a line of the job's output) unless ``lines`` (an
    error message, which may list names one a line)."""
    text = _CONTROL.sub("", str(text))
    return (text if lines else text.replace("\n", " "))[:limit]


@contextlib.contextmanager
def _for_this_thread(name: str, value):
    before = getattr(_local, name, None)
    setattr(_local, name, value)
    try:
        yield
    finally:
        setattr(_local, name, before)


def time_limit(seconds: float | None):
    """Jobs started in this thread inside the block stop after ``seconds`` (``--timeout``)."""
    return _for_this_thread("timeout", seconds)


def output_to(sink: Callable[[str], None] | None):
    """Lines that jobs started in this thread print go to ``sink`` (the window's log)."""
    return _for_this_thread("sink", sink)


def _stderr_sink(line: str) -> None:
    print(f"job: {line}", file=sys.stderr, flush=True)


def _private_temp_dir(prefix: str, base: str | None = None) -> Path:
    """A fresh ``<prefix><this pid>-*`` folder in ``base`` (the temporary folder), after removing those
    whose process is gone (a parent killed outright cannot clean up after itself)."""
    import tempfile

    base = base or tempfile.gettempdir()
    clean_stale_work_dirs(Path(base), prefix=prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base)).resolve()


def _socket_base() -> str:
    """Where multiprocessing's folder goes: the temporary folder, unless a socket's path in it would
    pass the 107 bytes a unix socket's address holds (then /tmp)."""
    import tempfile

    base = tempfile.gettempdir()
    return base if len(base) + 48 < 107 or not os.path.isdir("/tmp") else "/tmp"


def _mp_context():
    global _context
    if _context is None:
        if sys.platform.startswith("linux"):
            import atexit
            import shutil

            # multiprocessing's folder (the forkserver's socket) is ours, so a killed parent's is found
            folder = _private_temp_dir(MP_PREFIX, _socket_base())
            mp.current_process()._config["tempdir"] = str(folder)
            atexit.register(shutil.rmtree, folder, True)
            # forkserver: a clean server process (no Qt threads) that has torch & co. imported once,
            # so each job starts in milliseconds instead of re-importing torch
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(_PRELOAD)
        else:
            _context = mp.get_context("spawn")
    return _context


# a job's entry point: a module-level function ``fn(payload, progress, should_cancel)``; the caller passes
# the function itself (an import the contracts see), the child gets its "module:qualname" and imports it
Job = Callable[[Any, Any, Any], Any]


def job_name(target: Job | str) -> str:
    """``target``'s ``"module:qualname"``, the name the child imports it by; a function that the name does
    not lead back to (a lambda, a nested function, a method) is refused here, in the caller's process."""
    if isinstance(target, str):
        return target
    name = f"{getattr(target, '__module__', '?')}:{getattr(target, '__qualname__', '?')}"
    try:
        found = _resolve(name)
    except (ImportError, AttributeError):
        found = None
    if found is not target:
        raise TypeError(f"run_job: {name} is not a module-level function the job's process can import; "
                        "give a function defined at the top of a module")
    return name


def _resolve(target: str) -> Callable:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _let_the_forkserver_go() -> None:
    """Close this child's copy of its forkserver's "client alive" pipe (multiprocessing hands one to
    every child it forks): while any copy is open, the forkserver outlives a killed app or CLI, and
    a hanging job with it. The child starts no processes through the forkserver, so it needs none."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def _cut_ties(result_fd: int, output_fd: int) -> None:
    """In the child, before the fence: stdin from /dev/null, stdout and stderr into the parent's
    output pipe, and every other inherited descriptor but the result channel pointed at /dev/null
    (not closed: a library that still holds the number must not write into whatever reuses it)."""
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(output_fd, 1)
    os.dup2(output_fd, 2)
    keep = {0, 1, 2, result_fd, null}
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else []:
        fd = int(name)
        if fd not in keep:
            try:
                os.dup2(null, fd)
            except OSError:
                pass  # the listing's own descriptor, closed by now
    os.close(null)
    # multiprocessing's resource tracker belongs to the parent: one the job needs is its own (fenced)
    from multiprocessing import resource_tracker

    tracker = resource_tracker._resource_tracker
    tracker._fd, tracker._pid = None, None
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.reconfigure(line_buffering=True)


def _own_session() -> None:
    """A session of its own, with no controlling terminal (nothing it opens as ``/dev/tty`` is the user's),
    and a process group of its own (it leads both): stopping the job stops what it started too."""
    try:
        os.setsid()
    except (OSError, AttributeError):
        with contextlib.suppress(OSError, AttributeError):
            os.setpgid(0, 0)


def _parent_settings() -> dict[str, str]:
    """The app's own settings in this process's environment now (``DEPLOY_STUDIO_*``, ``DEPLOYSTUDIO_*``:
    faked CPU flags, memory, limits): a job gets them from its parent, not from the forkserver, whose
    environment is a snapshot of the parent's when it started."""
    return {k: v for k, v in os.environ.items() if k.startswith(SETTING_PREFIXES)}


def _take_settings(settings: dict[str, str] | None) -> None:
    if settings is None:
        return
    for name in [k for k in os.environ if k.startswith(SETTING_PREFIXES)]:
        if name not in settings:
            del os.environ[name]
    os.environ.update(settings)


def _child_main(conn, output, target: str, payload: Any, fence=None, scratch: str | None = None,
                settings: dict[str, str] | None = None) -> None:
    _take_settings(settings)
    _own_session()
    # the app or CLI killed outright: its forkserver exits, and the job with it
    _let_the_forkserver_go()
    die_with_parent()
    if sys.platform.startswith("linux"):
        _cut_ties(conn.fileno(), output.fileno())
        if fence is not None:
            sandbox.start_sweeper()  # what the job starts goes when the job does, the CLI killed or not
    # a hostile environment must not turn torch.load back to unsafe unpickling in the child
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    os.environ["ORT_DISABLE_TELEMETRY"] = "1"
    import warnings

    warnings.filterwarnings("ignore")

    def send(message) -> None:
        try:
            data = wire.dumps(message)
        except (wire.InvalidMessage, RecursionError) as e:
            data = wire.dumps(("error", "ConversionFailed", f"the job's result could not be sent ({e})", None))
        conn.send_bytes(data)

    if fence is not None:
        try:
            sandbox.private_environment(Path(scratch))
            sandbox.apply(fence)
        except Exception as e:  # noqa: BLE001 - never run a model unfenced because the fence failed
            send(("error", "ConversionFailed", f"the job's sandbox could not be set up ({describe(e)})", None))
            conn.close()
            return

    def progress(stage: str, fraction: float | None = None) -> None:
        send(("progress", str(stage), None if fraction is None else float(fraction)))

    try:
        result = _resolve(target)(payload, progress, lambda: False)
        send(("result", result))
    except StudioError as e:
        send(("error", type(e).__name__, str(e), e.details))
    except BaseException as e:  # noqa: BLE001 - everything is reported to the parent as one line
        # a failure nobody turned into a sentence: said as one, with the library's own words after it
        send(("error", "ConversionFailed", f"the job failed unexpectedly ({describe(e)})", None))
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        conn.close()


def _error(name: str, message: str, details: dict | None = None) -> StudioError:
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, StudioError)):
        cls = ConversionFailed
    error = cls(_continued(clean_text(message, 20000, lines=True)))  # a pickle's list of globals can be long
    error.details = details if isinstance(details, dict) else None
    return error


def _continued(message: str) -> str:
    """A job's multi-line message with every line after the first indented: the CLI prints it after
    ``error:``, and no line the job wrote may start where the app's own lines start (a forged
    ``error:`` or success line)."""
    first, *rest = message.split("\n")
    return "\n".join([first, *(line if line[:1] in (" ", "") else "  " + line for line in rest)])


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return "unknown"


def _process_name(target: str) -> str:
    """What a crash message calls the child: the converter for a conversion, else the job's process."""
    return "converter process" if target == f"{__name__}:convert_job" else "job's process"


def _cpu_ticks(pid: int) -> int | None:
    """CPU time (clock ticks) a process and its waited-for children used, from /proc (None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return sum(int(v) for v in fields[11:15])
    except (OSError, IndexError, ValueError):
        return None


def _parse(data: bytes) -> tuple:
    """A message from the child, checked: ("progress", stage, fraction) | ("result", value) |
    ("error", class name, message, details)."""
    msg = wire.loads(data)
    if isinstance(msg, tuple) and msg:
        kind = msg[0]
        if (kind == "progress" and len(msg) == 3 and isinstance(msg[1], str)
                and (msg[2] is None or isinstance(msg[2], (int, float)))):
            return ("progress", clean_text(msg[1], 200), msg[2])
        if kind == "result" and len(msg) == 2:
            return msg
        if kind == "error" and len(msg) == 4 and isinstance(msg[1], str) and isinstance(msg[2], str):
            return msg
    raise wire.InvalidMessage("not a progress report, a result or an error")


class _Output:
    """The child's stdout/stderr, read without blocking, cut into cleaned lines for ``sink``."""

    def __init__(self, conn, sink: Callable[[str], None]):
        self.fd = conn.fileno()
        os.set_blocking(self.fd, False)
        self.sink, self.partial, self.lines, self.dropped, self.eof = sink, b"", 0, 0, False

    def drain(self, final: bool = False) -> bool:
        """Read what is there (at most 1 MiB a call: a job printing flat out cannot hold the watch in
        here); True if anything was."""
        got, budget = False, 1 << 20
        while budget > 0:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError:
                chunk = b""
            if not chunk:
                final = self.eof = True
                break
            got, budget = True, budget - len(chunk)
            self.partial += chunk
            *lines, self.partial = self.partial.split(b"\n")
            for line in lines:
                self._emit(line)
            if len(self.partial) > 8192:
                self._emit(self.partial)
                self.partial = b""
        if final and self.partial:
            self._emit(self.partial)
            self.partial = b""
        return got

    def _emit(self, raw: bytes) -> None:
        text = clean_text(raw.decode("utf-8", "replace").rstrip("\r"), 500)
        if not text.strip():
            return
        if self.lines < MAX_OUTPUT_LINES:
            self.lines += 1
            with contextlib.suppress(Exception):
                self.sink(text)
        else:
            self.dropped += 1

    def close(self) -> None:
        if self.dropped:
            with contextlib.suppress(Exception):
                self.sink(f"({self.dropped} more lines of the job's output not shown)")


def run_job(target: Job | str, payload: Any, *, progress: Callable[[str, float | None], None] | None = None,
            should_cancel: Callable[[], bool] | None = None, timeout: float | None = None,
            wall_limit: float | None = None,
            cleanup_dir: Path | None = None, poll: float = 0.05, writable: tuple[Path, ...] | list[Path] = (),
            fenced: bool = True, tick: Callable[[], None] | None = None,
            log: Callable[[str], None] | None = None, stall: float | None = None) -> Any:
    """Run ``target`` (a module-level function, called as ``fn(payload, progress, should_cancel)``; or its
    ``"module:function"`` name) in a child process and return its result; raises the child's :class:`StudioError`, :class:`Cancelled`,
    :class:`JobTimeout`, :class:`InvalidResult`, or :class:`ConversionFailed` when the child crashed.

    ``writable``: the only folders the fenced child may write beneath (besides a private temporary
    folder, removed afterwards). ``cleanup_dir``: a folder whose temporaries (``.studio-tmp-<pid>-*``)
    are removed if the child is killed or dies. ``tick``: called every ``poll`` seconds while it runs.
    ``timeout``: wall-clock seconds (default: :func:`time_limit`'s, else ``wall_limit``, the job's own
    limit, else :data:`DEFAULT_WALL_LIMIT`); ``stall``: seconds without progress, output or CPU time (default
    :data:`STALL_SECONDS`, ``DEPLOYSTUDIO_JOB_STALL_SECONDS``). ``log``: gets each line the child
    prints (default: :func:`output_to`'s sink, else stderr).
    A child that runs out of memory (killed by the kernel, or an allocation refused) raises
    :class:`app.machine.memory.OutOfMemory` with its peak; a full disk :class:`app.machine.memory.DiskFull`.
    """
    target = job_name(target)
    if timeout is None:
        timeout = getattr(_local, "timeout", None) or wall_limit or DEFAULT_WALL_LIMIT
    if stall is None:
        stall = float(os.environ.get("DEPLOYSTUDIO_JOB_STALL_SECONDS") or STALL_SECONDS)
    sink = log or getattr(_local, "sink", None) or _stderr_sink
    ctx = _mp_context()
    scratch = _private_temp_dir(JOB_PREFIX)
    fence = job_fence([*writable, scratch]) if fenced else None
    parent, child = ctx.Pipe(duplex=False)
    output_r, output_w = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child, output_w, target, payload, fence, str(scratch),
                                                 _parent_settings()), daemon=True)
    try:
        proc.start()
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    child.close()
    output_w.close()
    watch = _Watch(proc, parent, _Output(output_r, sink), output_r)
    oom_before = memory.oom_kills()
    try:
        outcome = watch.run(poll=poll, tick=tick, progress=progress, should_cancel=should_cancel, timeout=timeout,
                            stall=stall)
    finally:
        parent.close()
        if proc.is_alive():
            _stop(proc)
        _kill_group(proc.pid)
        sandbox.remove_job_cgroups(proc.pid)  # (root: the job's pids cgroup, once its processes are gone)
        watch.output.drain(final=True)
        watch.output.close()
        output_r.close()
        shutil.rmtree(scratch, ignore_errors=True)
        if cleanup_dir is not None:
            clean_stale_work_dirs(Path(cleanup_dir))
    if outcome is not None and outcome[0] == "invalid":
        raise InvalidResult(f"the {_process_name(target)} sent an invalid result ({watch.invalid}); nothing was kept")
    if outcome is None:
        raise _death_of(target, proc.exitcode, watch.peak, oom_before)
    if outcome[0] == "result":
        return _checked_type(target, outcome[1])
    raise memory.explain_failure(_error(*outcome[1:]), watch.peak, cleanup_dir)


def _declared_type(target: str):
    """The classes ``target``'s return annotation names (None: any): what its job may send back."""
    try:
        hint = typing.get_type_hints(_resolve(target)).get("return")
    except Exception:  # noqa: BLE001 - an annotation that does not resolve here checks nothing
        return None
    if hint is None or hint is typing.Any:
        return None
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    classes = tuple(typing.get_origin(o) or o for o in options)
    classes = tuple(type(None) if c is None else c for c in classes)
    return classes if all(isinstance(c, type) for c in classes) else None


def _checked_type(target: str, result):
    """``result`` if it is of the type the job's entry point declares; a forged result of another type
    (a list where ``inspect`` returns a dict) is an invalid result, not an internal error later."""
    declared = _declared_type(target)
    if declared is not None and not isinstance(result, declared):
        raise InvalidResult(f"the {_process_name(target)} sent an invalid result (a {type(result).__name__} where "
                            f"{' or '.join(c.__name__ for c in declared)} belongs); nothing was kept")
    return result


class _Frames:
    """The child's result pipe, read without blocking: the bytes that arrived are cut into messages
    (multiprocessing's framing: a 4-byte big-endian length, or -1 and an 8-byte one, then the bytes).
    A length past :func:`app.safety.wire.message_limit` is refused from its header, before its bytes
    are read or room is made for them; the pipe closing inside a message is a truncated message."""

    CHUNK = 1 << 20
    PER_CALL = 64 << 20  # read at most this much per call: the watchdog's checks come between calls
    MESSAGES_PER_CALL = 64  # and hand on at most this many (a flood of progress waits in the pipe)

    def __init__(self, conn):
        self.fd = conn.fileno()
        os.set_blocking(self.fd, False)
        self.buf, self.eof, self.got, self.limit = bytearray(), False, 0, wire.MAX_MESSAGE_BYTES

    def pending(self) -> bool:
        """Whether a whole message is waiting in the buffer (then the watch does not wait on the pipe)."""
        head = self._header()
        return head is not None and len(self.buf) >= head[0] + head[1]

    def read(self, limit: int) -> list[bytes]:
        """Whole messages, reading the pipe only as far as they need (raises
        :class:`app.safety.wire.InvalidMessage`)."""
        self.got, self.limit = 0, limit
        messages: list[bytes] = []
        while len(messages) < self.MESSAGES_PER_CALL:
            frame = self._next()
            if frame is not None:
                messages.append(frame)
            elif self.eof or self.got >= self.PER_CALL or not self._fill():
                break
        if self.eof and self.buf and not self.pending():
            raise wire.InvalidMessage(f"a truncated message: the pipe closed after {len(self.buf)} of its bytes")
        return messages

    def _fill(self) -> bool:
        """Read one chunk that has arrived; False when there was none (or the pipe closed)."""
        try:
            chunk = os.read(self.fd, self.CHUNK)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.got += len(chunk)
        self.buf += chunk
        self._check_header()
        return True

    def _header(self) -> tuple[int, int] | None:
        """(header bytes, message bytes) of the message at the buffer's start, once its header is in."""
        if len(self.buf) < 4:
            return None
        size = int.from_bytes(self.buf[:4], "big", signed=True)
        if size == -1:
            return None if len(self.buf) < 12 else (12, int.from_bytes(self.buf[4:12], "big"))
        if size < 0:
            raise wire.InvalidMessage(f"a message with a negative length ({size})")
        return 4, size

    def _check_header(self) -> None:
        head = self._header()
        if head and head[1] > self.limit:
            raise wire.InvalidMessage(f"a message of {_size(head[1])}, over the limit of {_size(self.limit)}")

    def _next(self) -> bytes | None:
        head = self._header()
        if head is None or len(self.buf) < head[0] + head[1]:
            return None
        data = bytes(self.buf[head[0]:head[0] + head[1]])
        del self.buf[:head[0] + head[1]]
        self._check_header()
        return data


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


class _Watch:
    """The parent's watch over a running job: its messages, its output, its memory, and the limits
    (cancel, wall clock, stall) that stop it. It owns the clock: nothing the child sends (half a
    message, a flood of progress) keeps the checks from running at every turn."""

    def __init__(self, proc, parent, output: _Output, output_r):
        self.proc, self.parent, self.output, self.output_r = proc, parent, output, output_r
        self.frames = _Frames(parent)
        self.invalid: str | None = None
        self.peak: int | None = None

    def receive(self) -> list[tuple] | None:
        """The messages that arrived (progress, then at most one outcome, ``("invalid",)`` included),
        ending in None when the child closed its pipe without an outcome."""
        try:
            frames = self.frames.read(wire.message_limit())
        except wire.InvalidMessage as e:
            self.invalid = str(e)[:200]
            return [("invalid",)]
        messages = []
        for data in frames:
            try:
                messages.append(_parse(data))
            except Exception as e:  # noqa: BLE001 - whatever the child sent that does not decode is invalid
                self.invalid = str(e)[:200] or type(e).__name__
                messages.append(("invalid",))
            if messages[-1][0] != "progress":
                break
        if self.frames.eof and not self.frames.pending() and (not messages or messages[-1][0] == "progress"):
            return messages + [None]
        return messages

    def run(self, *, poll: float, tick, progress, should_cancel, timeout: float | None, stall: float | None) -> tuple | None:
        """Wait for the child's outcome (``None`` when it died without one), passing on its progress."""
        proc, output, output_r = self.proc, self.output, self.output_r
        started = time.monotonic()
        last_activity, last_cpu = started, None
        while True:
            self.peak = memory.peak_rss(proc.pid) or self.peak
            if tick:
                tick()
            # (a closed pipe stays readable: waiting on it then would spin)
            waiting = [c for c, done in ((self.parent, self.frames.eof), (output_r, output.eof)) if not done]
            wait = 0 if self.frames.pending() else poll
            ready = mp_connection.wait(waiting, timeout=wait) if waiting else time.sleep(wait) or []
            if self.frames.pending() and self.parent not in ready:
                ready = [*ready, self.parent]
            if output_r in ready and output.drain():
                last_activity = time.monotonic()
            if self.parent in ready:
                for msg in self.receive() or []:
                    if msg is not None and msg[0] == "progress":
                        last_activity = time.monotonic()
                        if progress:
                            progress(msg[1], msg[2])
                        continue
                    return self._outcome(msg)
            if not proc.is_alive():
                return self._last_words()
            now = time.monotonic()
            cpu = _cpu_ticks(proc.pid)
            if cpu is not None and cpu != last_cpu:
                last_cpu, last_activity = cpu, now
            self._check(should_cancel, now - started, timeout, now - last_activity, stall)

    def _outcome(self, msg: tuple | None) -> tuple | None:
        if msg is not None and msg[0] == "invalid":
            _stop(self.proc)
        else:
            self.proc.join(5)
        return msg

    def _check(self, should_cancel, elapsed: float, timeout: float | None, idle: float, stall: float | None) -> None:
        """Cancel, wall clock, stall: checked at every turn of the watch."""
        if should_cancel and should_cancel():
            _stop(self.proc)
            raise Cancelled("cancelled by the user")
        if timeout and elapsed > timeout:
            _stop(self.proc)
            raise JobTimeout(f"the job timed out after {timeout:g} s and was stopped "
                             "(--timeout SECONDS gives it longer)")
        if stall and idle > stall:
            _stop(self.proc)
            raise JobTimeout(f"the job was stopped: it made no progress, printed nothing and used no CPU "
                             f"for {stall:g} s (it looks hung)")

    def _last_words(self, seconds: float = 2.0) -> tuple | None:
        """What a child that is gone sent before dying (its outcome, if any), read for at most
        ``seconds`` (what it started may still hold the pipe, and write to it)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            messages = self.receive() or []
            for msg in messages:
                if msg is None or msg[0] != "progress":
                    return msg
            if not messages and not self.frames.got:
                break
        return None


def _death_of(target: str, code: int | None, peak: int | None, oom_before: int | None) -> StudioError:
    """The error for a child that ended without an outcome: killed (out of memory), out of CPU time,
    crashed on a signal, or exited."""
    if code == -signal.SIGKILL:  # nobody here killed it (cancel and time-out raised above)
        oom_after = memory.oom_kills()
        how = ("the kernel's out-of-memory killer ended it" if oom_before is not None and oom_after is not None
               and oom_after > oom_before else "it was killed (SIGKILL, what the kernel's out-of-memory "
               "killer sends)")
        return memory.OutOfMemory(memory.out_of_memory_message(peak, how))
    if code == -signal.SIGXCPU:
        return ConversionFailed("the job used up its CPU-time limit and was stopped "
                                "(DEPLOYSTUDIO_JOB_CPU_SECONDS raises it)")
    if code is not None and code < 0:
        return ConversionFailed(f"the {_process_name(target)} crashed (signal {-code}, {_signal_name(-code)})")
    return ConversionFailed(f"the {_process_name(target)} exited unexpectedly (exit code {code})")


def _kill_group(pid: int | None, sig: int = signal.SIGKILL) -> None:
    """Signal the job's process group (the child and what it started); nothing where there are no
    process groups (Windows) or the group is gone."""
    if pid and hasattr(os, "killpg"):
        try:
            os.killpg(pid, sig)
        except OSError as e:
            if e.errno not in (errno.ESRCH, errno.EPERM):
                raise


def _stop(proc) -> None:
    _kill_group(proc.pid, signal.SIGTERM)
    proc.terminate()  # the child itself, also where it has no group of its own
    proc.join(0.5)
    if proc.is_alive():
        _kill_group(proc.pid)
        proc.kill()
        proc.join(1)


def convert_job(payload, progress=None, should_cancel=None):
    """The conversion pipeline as a child-process entry point (``app.jobs:convert_job``):
    ``payload`` is ``(request, work folder)``; the files stay in the work folder."""
    request, work = payload
    return convert(request, progress=progress, should_cancel=should_cancel, work=Path(work))


def _check_conversion_result(result, work: Path, request) -> None:
    """The child names the files the parent will move into the output folder: each must be a plain
    file directly in the job's work folder, named as the converter declares for this request
    (:func:`app.pipeline.check_result`), else nothing is kept."""
    problem = check_result(result, work, request)
    if problem:
        raise InvalidResult(f"the converter process sent an invalid result ({problem}); nothing was kept")


def run_conversion(request, **kwargs):
    """Convert in a fenced child that writes only a private work folder inside the output folder;
    this process then renames the files into place (and removes whatever a killed child left)."""
    check_request(request)  # before a child starts or a folder is made; the child checks the loaded model
    out_dir = output_folder(request)
    if kwargs.get("progress"):
        kwargs["progress"]("check memory and disk", None)
    # the model's size (an ONNX model's graph parsed for its external data) is reckoned once, here
    source = memory.source_bytes(Path(request.source.path))
    cautions = memory.preflight(request, out_dir, source)  # refuses what will not fit, before a child starts
    if cautions and kwargs.get("progress"):
        kwargs["progress"](cautions[0], None)
    existed = out_dir.exists()
    try:
        with output_for(request) as (out_dir, work):
            if kwargs.get("progress"):
                kwargs["progress"], kwargs["tick"] = memory.written_progress(kwargs["progress"], work, request,
                                                                             source=source)
            result = run_job(convert_job, (request, str(work)), cleanup_dir=out_dir, writable=[work],
                             wall_limit=CONVERT_WALL_LIMIT, **kwargs)
            _check_conversion_result(result, work, request)
            result.warnings[:0] = cautions
            return place(result, out_dir, request)
    finally:
        if not existed and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed job leaves no empty output folder behind either


def convert_in_process(request, progress=None, should_cancel=None):
    """Convert in this process (a job's child already: ``optimize``, ``diagnose``'s fp32 reference; tests
    and benchmarks), with the same output folder, work folder and placement as :func:`run_conversion`."""
    check_request(request)
    with output_for(request) as (out_dir, work):
        return place(convert(request, progress, should_cancel, work=work), out_dir, request)


@contextlib.contextmanager
def output_for(request):
    """The one owner of a conversion's output folder: make it (or check it is writable), refuse files
    that exist already (without ``--overwrite``) before anything is built, remove the work folders of
    dead jobs, and give the job a private work folder inside it, removed afterwards."""
    out_dir = files.prepare_out_dir(output_folder(request))
    primary = artifact_path(request)
    files.check_targets([primary, manifest_path_of(primary)], source=Path(request.source.path),
                        overwrite=request.overwrite)
    files.clean_stale_work_dirs(out_dir)
    work = files.work_dir(out_dir)
    try:
        yield out_dir, work
    finally:
        files.remove_work_dir(work)


def place(result: ConversionResult, out_dir: Path, request) -> ConversionResult:
    """Rename the result's files (in its work folder) into ``out_dir``; the primary goes last but one."""
    names = [f.name for f in result.files] + [result.manifest.name]
    files.check_targets([out_dir / n for n in names], source=Path(request.source.path), overwrite=request.overwrite)
    placed = files.commit(result.files + [result.manifest], out_dir)
    result.files, result.manifest = placed[:-1], placed[-1]
    result.artifact = placed[0]
    return result


def inspect_job(source: ModelSource, progress=None, should_cancel=None) -> dict:
    """Load the source model in the child and return its summary (``inspect --json``, what the window shows)."""
    if progress:
        progress("load model", None)
    model = prepare_model(source, runnable=False)

    summary = model.summary()
    summary["sandboxed"], summary["sandbox"] = status()
    return summary


def run_inspection(source: ModelSource, **kwargs) -> dict:
    """Parse a user's model file in a fenced child (never in the window's or the CLI's process)."""
    return run_job(inspect_job, source, wall_limit=INSPECT_WALL_LIMIT, **kwargs)


def fp32_reference(source, model, folder: Path, options: dict | None = None) -> Path:
    """The source model (an :class:`~app.request.ModelSource`, loaded as ``model``) as fp32 ONNX: the
    file itself, or an export into ``folder`` with the export ``options`` the artifact was made with
    (its exporter and opset name the tensors the ranking matches)."""
    if model.format == "onnx":
        return Path(source.path)
    fp32 = get_converter("onnx").options_in(dict(options or {}), "fp32")
    return convert_in_process(ConversionRequest(source, "onnx", "fp32", fp32, out_dir=folder)).artifact


def diagnose_job(payload: tuple, progress=None, should_cancel=None) -> dict:
    """``diagnose`` and the window's Diagnosis in the fenced child: ``(source, data, artifact, samples,
    options)``; the fp32 reference is converted (so this job sits above the pipeline, not in
    :mod:`app.accuracy`) in its private temporary folder, then :func:`app.accuracy.diagnose.diagnose` ranks."""
    import tempfile

    from app.accuracy.diagnose import diagnose
    from app.accuracy.evaluation import evaluation_part

    source, data_source, artifact, samples, options = payload  # options: the artifact's (the window knows them)
    progress = progress or (lambda stage, fraction=None: None)
    model = prepare_model(source)
    data, note = evaluation_part(data_source, model, [artifact])
    with tempfile.TemporaryDirectory(prefix="diagnose-") as tmp:
        progress("fp32 reference", None)
        reference = fp32_reference(source, model, Path(tmp), options)
        progress(f"run both on {min(samples, len(data))} samples with intermediate tensors exposed", None)
        found = diagnose(reference, artifact, data.samples[:samples])
    return {"ranking": found["ranking"], "outputs": found["outputs"], "samples": min(samples, len(data)),
            "data": data.describe(), "split": note}
