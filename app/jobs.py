"""Run a job (a conversion, a benchmark) in a supervised child process.

Native code (the ONNX exporter, ONNX Runtime, TensorRT) can crash or hang, and a thread cannot be
interrupted in the middle of a native call. So the window and the CLI run every job that touches a
user's model through :func:`run_job`: the child reports progress over a pipe; cancel terminates it
(within a second), a crash becomes ``the converter process crashed (signal N)`` (``the job's process``
for jobs other than conversions), a time-out is reported as such, and the caller's process lives on.
Temporaries of a killed child are removed afterwards.

The child is fenced (:mod:`app.sandbox`) before it runs the job: it may write only beneath the
folders the caller names (a conversion: its private work folder; the parent renames the artifacts
into the output folder) and a private temporary folder, has no network, and runs under memory and
CPU-time limits.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable

from app import errors
from app.errors import Cancelled, ConversionFailed, StudioError, describe
from app.request import ModelSource

_PRELOAD = ["app.pipeline", "app.loading", "torch", "onnx", "onnxruntime"]
_context: Any = None


class JobTimeout(StudioError):
    """The job ran past its time limit and was stopped (exit code 1; not a converter failure: any job
    can time out)."""


def _mp_context():
    global _context
    if _context is None:
        if sys.platform.startswith("linux"):
            # forkserver: a clean server process (no Qt threads) that has torch & co. imported once,
            # so each job starts in milliseconds instead of re-importing torch
            _context = mp.get_context("forkserver")
            _context.set_forkserver_preload(_PRELOAD)
        else:
            _context = mp.get_context("spawn")
    return _context


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


def _child_main(conn, target: str, payload: Any, fence=None, scratch: str | None = None) -> None:
    from app.sandbox import die_with_parent

    # the app or CLI killed outright: its forkserver exits, and the job with it
    _let_the_forkserver_go()
    die_with_parent()
    # a hostile environment must not turn torch.load back to unsafe unpickling in the child
    os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
    import warnings

    warnings.filterwarnings("ignore")
    if fence is not None:
        from app import sandbox

        try:
            sandbox.private_environment(Path(scratch))
            sandbox.apply(fence)
        except Exception as e:  # noqa: BLE001 - never run a model unfenced because the fence failed
            conn.send(("error", "ConversionFailed", f"the job's sandbox could not be set up ({describe(e)})", None))
            conn.close()
            return

    def progress(stage: str, fraction: float | None = None) -> None:
        conn.send(("progress", stage, fraction))

    try:
        result = _resolve(target)(payload, progress, lambda: False)
        conn.send(("result", result))
    except StudioError as e:
        conn.send(("error", type(e).__name__, str(e), e.details))
    except BaseException as e:  # noqa: BLE001 - everything is reported to the parent as one line
        conn.send(("error", "ConversionFailed", describe(e)))
    finally:
        conn.close()


def _error(name: str, message: str, details: dict | None = None) -> StudioError:
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, StudioError)):
        cls = ConversionFailed
    error = cls(message)
    error.details = details
    return error


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(code).name
    except ValueError:
        return "unknown"


def _process_name(target: str) -> str:
    """What a crash message calls the child: the converter for a conversion, else the job's process."""
    return "converter process" if target == "app.jobs:convert_job" else "job's process"


def run_job(target: str, payload: Any, *, progress: Callable[[str, float | None], None] | None = None,
            should_cancel: Callable[[], bool] | None = None, timeout: float | None = None,
            cleanup_dir: Path | None = None, poll: float = 0.05, writable: tuple[Path, ...] | list[Path] = (),
            fenced: bool = True, tick: Callable[[], None] | None = None) -> Any:
    """Run ``target`` (``"module:function"``, called as ``fn(payload, progress, should_cancel)``) in a
    child process and return its result; raises the child's :class:`StudioError`, :class:`Cancelled`,
    :class:`JobTimeout`, or :class:`ConversionFailed` when the child crashed.

    ``writable``: the only folders the fenced child may write beneath (besides a private temporary
    folder, removed afterwards). ``cleanup_dir``: a folder whose temporaries (``.studio-tmp-<pid>-*``)
    are removed if the child is killed or dies. ``tick``: called every ``poll`` seconds while it runs.
    A child that runs out of memory (killed by the kernel, or an allocation refused) raises
    :class:`app.memory.OutOfMemory` with its peak; a full disk :class:`app.memory.DiskFull`.
    """
    import shutil
    import tempfile

    from app import memory
    from app.sandbox import job_fence

    scratch = Path(tempfile.mkdtemp(prefix="studio-job-")).resolve()
    fence = job_fence([*writable, scratch]) if fenced else None
    ctx = _mp_context()
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child_main, args=(child, target, payload, fence, str(scratch)), daemon=True)
    try:
        proc.start()
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    child.close()
    started = time.monotonic()
    outcome: tuple | None = None
    oom_before, peak = memory.oom_kills(), None
    try:
        while True:
            peak = memory.peak_rss(proc.pid) or peak
            if tick:
                tick()
            if parent.poll(poll):
                try:
                    msg = parent.recv()
                except EOFError:
                    msg = None
                if msg is None:
                    proc.join(5)
                    break
                if msg[0] == "progress":
                    if progress:
                        progress(msg[1], msg[2])
                    continue
                outcome = msg
                proc.join(5)
                break
            if not proc.is_alive():
                # drain what it sent before dying
                while parent.poll(0):
                    try:
                        msg = parent.recv()
                    except EOFError:
                        break
                    if msg[0] != "progress":
                        outcome = msg
                break
            if should_cancel and should_cancel():
                _stop(proc)
                raise Cancelled("cancelled by the user")
            if timeout is not None and time.monotonic() - started > timeout:
                _stop(proc)
                raise JobTimeout(f"the job timed out after {timeout:g} s and was stopped")
    finally:
        parent.close()
        if proc.is_alive():
            _stop(proc)
        shutil.rmtree(scratch, ignore_errors=True)
        if cleanup_dir is not None:
            from app.files import clean_stale_work_dirs

            clean_stale_work_dirs(Path(cleanup_dir))
    if outcome is None:
        code = proc.exitcode
        if code == -signal.SIGKILL:  # nobody here killed it (cancel and time-out raised above)
            oom_after = memory.oom_kills()
            how = ("the kernel's out-of-memory killer ended it" if oom_before is not None and oom_after is not None
                   and oom_after > oom_before else "it was killed (SIGKILL, what the kernel's out-of-memory "
                   "killer sends)")
            raise memory.OutOfMemory(memory.out_of_memory_message(peak, how))
        if code == -signal.SIGXCPU:
            raise ConversionFailed("the job used up its CPU-time limit and was stopped "
                                   "(DEPLOYSTUDIO_JOB_CPU_SECONDS raises it)")
        if code is not None and code < 0:
            raise ConversionFailed(f"the {_process_name(target)} crashed (signal {-code}, {_signal_name(-code)})")
        raise ConversionFailed(f"the {_process_name(target)} exited unexpectedly (exit code {code})")
    if outcome[0] == "result":
        return outcome[1]
    raise memory.explain_failure(_error(*outcome[1:]), peak, cleanup_dir)


def _stop(proc) -> None:
    proc.terminate()
    proc.join(0.5)
    if proc.is_alive():
        proc.kill()
        proc.join(1)


def convert_job(payload, progress=None, should_cancel=None):
    """The conversion pipeline as a child-process entry point (``app.jobs:convert_job``):
    ``payload`` is ``(request, work folder)``; the files stay in the work folder."""
    from app.pipeline import convert

    request, work = payload
    return convert(request, progress=progress, should_cancel=should_cancel, work=Path(work))


def run_conversion(request, **kwargs):
    """Convert in a fenced child that writes only a private work folder inside the output folder;
    this process then renames the files into place (and removes whatever a killed child left)."""
    from app import files
    from app.errors import UnsupportedCombination
    from app.pipeline import output_folder, place
    from converters.base import check_options, get_converter

    # an option the target does not take, and what this machine cannot build (bf16 without BF16/AMX, a
    # missing library), are refused here, before a child starts or a folder is made; the child checks
    # the rest against the loaded model
    converter = get_converter(request.target)
    check_options(request)
    refusal = converter.precision_refusal(request.precision) if request.precision in converter.precisions else ""
    if refusal:
        raise UnsupportedCombination(f"--to {request.target} --precision {request.precision} is not possible on this "
                                     f"machine: {refusal}")
    out_dir = output_folder(request)
    from app import memory

    if kwargs.get("progress"):
        kwargs["progress"]("check memory and disk", None)
    # the model's size (an ONNX model's graph parsed for its external data) is reckoned once, here
    source = memory.source_bytes(Path(request.source.path))
    cautions = memory.preflight(request, out_dir, source)  # refuses what will not fit, before a child starts
    if cautions and kwargs.get("progress"):
        kwargs["progress"](cautions[0], None)
    existed = out_dir.exists()
    out_dir = files.prepare_out_dir(out_dir)
    files.clean_stale_work_dirs(out_dir)
    work = files.work_dir(out_dir)
    if kwargs.get("progress"):
        kwargs["progress"], kwargs["tick"] = memory.written_progress(kwargs["progress"], work, request, source=source)
    try:
        result = run_job("app.jobs:convert_job", (request, str(work)), cleanup_dir=out_dir, writable=[work], **kwargs)
        result.warnings[:0] = cautions
        names = [f.name for f in result.files] + [result.manifest.name]
        files.check_targets([out_dir / n for n in names], source=Path(request.source.path), overwrite=request.overwrite)
        return place(result, out_dir)
    finally:
        files.remove_work_dir(work)
        if not existed and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # a failed job leaves no empty output folder behind either


def inspect_job(source: ModelSource, progress=None, should_cancel=None) -> dict:
    """Load the source model in the child and return its summary (``inspect --json``, what the window shows)."""
    from app.loading import prepare_model

    if progress:
        progress("load model", None)
    model = prepare_model(source, runnable=False)
    from app.sandbox import status

    summary = model.summary()
    summary["sandboxed"], summary["sandbox"] = status()
    return summary


def run_inspection(source: ModelSource, **kwargs) -> dict:
    """Parse a user's model file in a fenced child (never in the window's or the CLI's process)."""
    return run_job("app.jobs:inspect_job", source, **kwargs)
