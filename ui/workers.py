"""Background work of the window: each piece is a superqt worker that reports by signals.

Every job that touches a user's model (inspection, conversion, benchmark) runs through
:func:`app.jobs.run_job` from a worker thread, so the real work happens in a supervised child
process: the worker thread only waits on a pipe (it holds no lock the event loop needs), Cancel
terminates the child within a second, and a native crash becomes an error row instead of taking the
window down.

Why a ``FunctionWorker`` plus a progress signal rather than a generator: ``run_job`` reports progress
through a callback from inside a blocking call; turning that into ``yield`` would need a second
thread per job. Cancel is the job's own flag (``should_cancel``, which ``run_job`` polls every 50 ms),
never a call on the worker: the thread pool deletes a worker as soon as it has run, maybe before the
GUI thread has heard that it started (:meth:`BackgroundJob.cancel`).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import FunctionWorker, create_worker

from app.session import CANCELLED, DONE, FAILED, QUEUED, RUNNING, TERMINAL  # noqa: F401 - the states, re-exported
from app.session import JobKey

_pools: dict[str, QThreadPool] = {}


def conversion_pool(kind: str = "cpu") -> QThreadPool:
    """The pool conversions run in.

    CPU targets run side by side (each in its own process and private work folder, so two at once
    is safe; more than half the cores buys nothing since every child uses several threads).
    GPU builds (TensorRT) go one at a time: two builders compete for the same GPU memory.
    """
    if kind not in _pools:
        pool = QThreadPool()
        pool.setObjectName(f"conversions-{kind}")
        pool.setMaxThreadCount(1 if kind == "gpu" else max(2, min(4, (os.cpu_count() or 2) // 2)))
        _pools[kind] = pool
    return _pools[kind]


def all_pools() -> list[QThreadPool]:
    """Every pool the window may have work in (the global one included)."""
    return [QThreadPool.globalInstance(), *_pools.values()]


def error_text(exc: BaseException) -> str:
    """One line a user can act on, in the window's words (no command-line flags)."""
    from app.errors import StudioError, describe
    from ui.wording import window_words

    if isinstance(exc, StudioError):
        return window_words(str(exc))
    return f"internal error: {describe(exc)}"


class BackgroundJob(QObject):
    """One piece of work in a child process, with progress, a result or an error, and Cancel.

    Signals
    -------
    progressed(stage, fraction)  fraction is -1 when unknown
    logged(line)                 a line the job's process printed (control characters removed)
    succeeded(result)
    failed(state, message)       state is "failed" or "cancelled"
    finished()                   always last, exactly once
    """

    progressed = Signal(str, float)
    logged = Signal(str)
    succeeded = Signal(object)
    failed = Signal(str, str)
    finished = Signal()

    def __init__(self, work: Callable[..., Any], *, pool: QThreadPool | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._work = work
        self._pool = pool or QThreadPool.globalInstance()
        self.state = QUEUED
        self.message = ""
        self.result: Any = None
        self.error: BaseException | None = None
        # The pool deletes the worker (a QRunnable) as soon as it has run, possibly before its queued
        # `started` reaches this thread: the GUI thread touches the worker only while `_entered` (set by
        # the worker thread, under `_lock`, first thing in `_run`) says it has not run yet, and Cancel is
        # this object's own flag, never a call on the worker (issue 31: a C++ object already deleted,
        # raised inside closeEvent, crashed PySide6).
        self._lock = threading.Lock()
        self._entered = False
        self._cancel = threading.Event()
        # superqt re-raises `errored` in the GUI thread unless it is connected at creation: connect all here
        self.worker: FunctionWorker = create_worker(
            self._run, _start_thread=False,
            _connect={"started": self._on_worker_started, "returned": self._on_worker_returned,
                      "errored": self._on_worker_errored, "finished": self._on_worker_finished})

    # -- control (GUI thread)
    def start(self) -> None:
        self._pool.start(self.worker)

    def cancel(self) -> None:
        """Stop the job: a queued one never starts, a running one's child is terminated. Never raises,
        whatever the worker's thread is doing (closeEvent calls it)."""
        if self.state in TERMINAL:
            return
        self._cancel.set()  # a running job's should_cancel sees it within 50 ms; a queued one never starts
        with self._lock:  # while the worker thread has not entered _run, the pool has not deleted the worker
            taken = not self._entered and self._pool.tryTake(self.worker)
        if taken:
            self._finish(CANCELLED, "cancelled before it started")

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    # -- the worker thread
    def _run(self) -> Any:
        from app.errors import Cancelled
        from app.jobs import output_to

        with self._lock:
            self._entered = True
        if self._cancel.is_set():  # cancelled while the pool was handing it to this thread
            raise Cancelled("cancelled before it started")
        with output_to(self.logged.emit):  # what the child prints: cleaned lines for the window's log
            result = self._work(progress=self._report, should_cancel=self._cancel.is_set)
        if self._cancel.is_set():  # Cancel came too late to stop the work: its result is dropped
            raise Cancelled("cancelled")
        return result

    def _report(self, stage: str, fraction: float | None = None) -> None:
        self.progressed.emit(stage, -1.0 if fraction is None else float(fraction))

    # -- results (GUI thread, queued from the worker)
    def _on_worker_started(self) -> None:
        if self.state == QUEUED:
            self.state = RUNNING

    def _on_worker_returned(self, result: Any) -> None:
        self.result = result
        self._finish(DONE, "")

    def _on_worker_errored(self, exc: BaseException) -> None:
        from app.errors import Cancelled

        self.error = exc
        if isinstance(exc, Cancelled):
            self._finish(CANCELLED, "cancelled")
        else:
            self._finish(FAILED, error_text(exc))

    def _on_worker_finished(self) -> None:
        # superqt drops the return value of a worker whose quit() came too late to stop it
        if self.state not in TERMINAL:
            self._finish(CANCELLED, "cancelled")

    def _finish(self, state: str, message: str) -> None:
        if self.state in TERMINAL:
            return
        self.state, self.message = state, message
        if state == DONE:
            self.succeeded.emit(self.result)
        else:
            self.failed.emit(state, message)
        self.finished.emit()


class RunningJobs:
    """The worker of each running job, by its :class:`JobKey` — the one map of them: where a job stands
    is :attr:`app.session.Session.jobs`; this holds only what runs, to be cancelled. A worker leaves
    the map before its ``on_done(job, result)`` or ``on_failed(job, state, message)`` is called."""

    def __init__(self) -> None:
        self._workers: dict[JobKey, BackgroundJob] = {}

    def start(self, key: JobKey, job: BackgroundJob, on_done: Callable[..., Any],
              on_failed: Callable[..., Any]) -> BackgroundJob:
        job.key = key
        self._workers[key] = job
        job.succeeded.connect(lambda result: (self._drop(job), on_done(job, result)))
        job.failed.connect(lambda state, message: (self._drop(job), on_failed(job, state, message)))
        job.start()
        return job

    def _drop(self, job: BackgroundJob) -> None:
        if self._workers.get(job.key) is job:
            del self._workers[job.key]

    def __contains__(self, key: JobKey) -> bool:
        return key in self._workers

    def get(self, key: JobKey) -> BackgroundJob | None:
        return self._workers.get(key)

    def cancel(self, key: JobKey) -> bool:
        job = self._workers.get(key)
        if job is not None:
            job.cancel()
        return job is not None

    def cancel_all(self) -> None:
        for job in list(self._workers.values()):
            job.cancel()


class ConversionJob(BackgroundJob):
    """One target × precision: :func:`app.jobs.run_conversion` in a child process."""

    def __init__(self, request, *, parent: QObject | None = None) -> None:
        from app.targets.probe import needs_gpu

        self.request = request
        kind = "gpu" if needs_gpu(request.target) else "cpu"
        super().__init__(self._convert, pool=conversion_pool(kind), parent=parent)

    def _convert(self, progress, should_cancel):
        from app.jobs import run_conversion

        return run_conversion(self.request, progress=progress, should_cancel=should_cancel)


def inspection_job(source, parent: QObject | None = None) -> BackgroundJob:
    """Read the summary of a model file (an ``app.request.ModelSource``) in a child (a pickle that runs
    code never runs in the window)."""

    def work(progress, should_cancel):
        from app.jobs import run_inspection

        return run_inspection(source, progress=progress, should_cancel=should_cancel)

    return BackgroundJob(work, parent=parent)


def benchmark_job(request, parent: QObject | None = None) -> BackgroundJob:
    """Benchmark a :class:`app.bench.run.BenchRequest` in a child (``app.bench.run:bench_job``)."""

    def work(progress, should_cancel):
        from app.bench.run import bench_job
        from app.jobs import run_job

        return run_job(bench_job, request, progress=progress, should_cancel=should_cancel)

    return BackgroundJob(work, parent=parent)


def sweep_job(request, save: Path | None, parent: QObject | None = None) -> BackgroundJob:
    """Sweep (an :class:`app.bench.sweep.SweepRequest`) in a child (``app.bench.sweep:sweep_job``); this
    process saves the ``bench --sweep --json`` object to ``save`` (for ``serve-bundle --from-sweep`` and
    the report)."""

    def work(progress, should_cancel):
        import json

        from app.artifacts.atomic_output import atomic_write_text
        from app.bench import sweep
        from app.jobs import run_job

        data = run_job(sweep.sweep_job, request, progress=progress, should_cancel=should_cancel).to_json()
        if save:
            atomic_write_text(Path(save), json.dumps(data, indent=2, default=str))
            data["saved"] = str(save)
        return data

    return BackgroundJob(work, parent=parent)


def diagnosis_job(source, data, artifact: Path, options=None, samples: int = 8,
                  parent: QObject | None = None) -> BackgroundJob:
    """Rank ``artifact``'s nodes by the error they add over ``source`` (an ``app.request.ModelSource``)
    on ``data`` (a ``DataSource``; :func:`app.jobs.diagnose_job`) in a fenced child: it runs the
    model's code. ``options``: those the artifact was made with (its exporter and opset)."""

    def work(progress, should_cancel):
        from app.jobs import diagnose_job, run_job

        return run_job(diagnose_job, (source, data, Path(artifact), samples, dict(options or {})),
                       progress=progress, should_cancel=should_cancel)

    job = BackgroundJob(work, parent=parent)
    job.payload = Path(artifact)
    return job


def profiling_job(artifact: Path, config, parent: QObject | None = None) -> BackgroundJob:
    """Profile ``artifact`` per node with its runtime's own profiler (``config``: an
    :class:`app.bench.harness.BenchConfig`) in a child (:func:`app.bench.profile.profile_job`); the result
    is the ``profile --json`` object."""

    def work(progress, should_cancel):
        from app.bench.profile import profile_job
        from app.jobs import run_job
        from app.request import ModelSource

        return run_job(profile_job, (ModelSource(Path(artifact)), config, None),
                       progress=progress, should_cancel=should_cancel)

    job = BackgroundJob(work, parent=parent)
    job.payload = Path(artifact)
    return job


def targets_job(parent: QObject | None = None) -> BackgroundJob:
    """After the first paint: import the light engine modules and probe which targets can be built."""

    def work(progress, should_cancel):
        from ui.warmup import warm_engine

        return warm_engine()

    return BackgroundJob(work, parent=parent)


def engine_job(parent: QObject | None = None) -> BackgroundJob:
    """After the first paint: start the fork server, which imports torch, onnx and onnxruntime once."""

    def work(progress, should_cancel):
        from app.jobs import run_job
        from ui.warmup import CHILD_READY_WALL_LIMIT, child_ready

        return run_job(child_ready, None, should_cancel=should_cancel, wall_limit=CHILD_READY_WALL_LIMIT)

    return BackgroundJob(work, parent=parent)


def serving_job(artifact, repo, overwrite: bool = False, parent: QObject | None = None, *,
                from_sweep: str | None = None) -> BackgroundJob:
    """Write a Triton model folder for ``artifact`` into ``repo`` (``app.serving``) in a child; with
    ``from_sweep`` (a saved sweep) its proposal sets instances, threads and dynamic batching."""

    def work(progress, should_cancel):
        from app.jobs import run_job
        from app.serving.triton import bundle_job

        Path(repo).mkdir(parents=True, exist_ok=True)  # the fenced child may write beneath it only
        return run_job(bundle_job, {"artifact": str(artifact), "repo": str(repo), "overwrite": overwrite,
                                                  "from_sweep": from_sweep},
                       progress=progress, should_cancel=should_cancel, writable=[Path(repo)])

    job = BackgroundJob(work, parent=parent)
    job.payload = (Path(artifact), Path(repo))
    return job


def example_job(folder: Path, parent: QObject | None = None) -> BackgroundJob:
    """Write the digits example (``app.examples.digits``: a CNN trained in seconds, its architecture file, the
    held-out digits) into ``folder`` in a fenced child that may write only there; an example already
    there is used as it is."""

    def work(progress, should_cancel):
        from app.examples.digits import example_paths, run_example

        paths = example_paths(folder)
        if all(Path(paths[k]).exists() for k in ("model", "data", "readme")):
            return paths
        return run_example(folder, progress=progress, should_cancel=should_cancel)

    return BackgroundJob(work, parent=parent)


def report_job(paths: list[Path], out: Path, benches: list[dict], parent: QObject | None = None) -> BackgroundJob:
    """Write the HTML report (``app.reports.html``) in a worker thread: it reads only our own manifests and
    benchmark results (no model code runs), so it needs no child process, only a free UI thread."""

    def work(progress, should_cancel):
        from app.reports.html import write_report

        progress("write report", None)
        return write_report(paths, out, overwrite=True, benches=benches)

    job = BackgroundJob(work, parent=parent)
    job.payload = Path(out)
    return job
