"""What the window is working on, without Qt: the source model the user opened and what they trusted
in it, its summary once inspected, the outcome of every conversion, and the last benchmark and sweep
— with events the window's views observe (``session.events.model_loaded.connect(fn)``), as napari's
``ViewerModel`` is observed by its Qt widgets. The window drives it (``open``, ``loaded``,
``converted``, ``benchmarked`` …); the jobs themselves run in child processes (:mod:`app.jobs`), each
named by a :class:`JobKey`."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from app.accuracy.verdict import failed, verdict_of_manifest
from app.request import ModelSource



@dataclass(frozen=True)
class JobKey:
    """A job of the window: what it does (``kind``) and on what (``name``), e.g. ``JobKey("convert",
    "onnx int8")``, :data:`BENCHMARK`, ``JobKey("diagnose", "m.int8.onnx")``."""

    kind: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.name}".rstrip()

    @classmethod
    def conversion(cls, target: str, precision: str) -> "JobKey":
        return cls("convert", f"{target} {precision}")


BENCHMARK = JobKey("benchmark")   # the window runs one benchmark at a time
SWEEP = JobKey("sweep")           # and one deployment sweep

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
TERMINAL = (DONE, FAILED, CANCELLED)
MIN_COUNTED, MIN_COUNTED_S = 0.02, 2.0   # an estimate needs 2 % of the work counted over 2 s at least


@dataclass
class Job:
    """Where a job of the window stands: queued, running (its stage and fraction; -1: no measurable
    progress), or ended (done, failed, cancelled) with a message."""

    key: JobKey
    title: str
    state: str = QUEUED
    stage: str = ""
    fraction: float = 0.0
    message: str = ""
    cancelling: bool = False
    started_at: float | None = None
    ended_at: float | None = None
    verdict: Any | None = None      # a conversion's app.accuracy.verdict.Verdict once it ended
    # when the counted part of the work began (time, fraction): the estimate's origin; None while uncounted
    counted_since: tuple[float, float] | None = None
    expected: float | None = None   # seconds the same job took when it last ended done (this window's run)

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds since the job started (to its end once it ended); None while queued."""
        if self.started_at is None:
            return None
        end = self.ended_at if self.ended_at is not None else (time.monotonic() if now is None else now)
        return max(0.0, end - self.started_at)

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left, estimated where the work is counted (its fraction known): the rest goes as fast
        as the counted part went so far; where it is not, from how long the same job took last time (while
        it has not yet taken longer). None when neither tells, or too little is counted yet."""
        if self.ended or self.started_at is None:
            return None
        now = time.monotonic() if now is None else now
        if self.counted_since is not None and self.fraction >= 0:
            since, start = self.counted_since
            done = self.fraction - start
            if done < MIN_COUNTED or now - since < MIN_COUNTED_S:
                return None
            return (now - since) * max(0.0, 1.0 - self.fraction) / done
        if self.expected is not None and now - self.started_at < self.expected:
            return self.expected - (now - self.started_at)
        return None


@dataclass
class Outcome:
    """A finished conversion: its request, its result (an ``app.pipeline.ConversionResult``) or why it failed."""

    request: Any                    # app.request.ConversionRequest
    result: Any | None              # None when the job failed
    message: str = ""
    from_disk: Any | None = None    # app.artifacts.history.FoundArtifact: made earlier, read from its manifest

    @property
    def target(self) -> str:
        return self.request.target

    @property
    def precision(self) -> str:
        return str(self.request.precision)

    @property
    def artifact(self) -> Path | None:
        return Path(self.result.artifact) if self.result is not None and self.result.artifact else None

    @property
    def verdict(self):
        """Passed, passed with accuracy loss or failed, with its reason and figure
        (:class:`app.accuracy.verdict.Verdict`): what the jobs list, the table, the details pane and the
        report all say of this artifact; for one found on disk, the verdict its manifest recorded)."""
        if self.from_disk is not None:
            return verdict_of_manifest(self.from_disk.manifest)
        return self.result.verdict if self.result is not None else failed(self.message)

    @property
    def verification_passed(self) -> bool:
        v = self.result.verification if self.result is not None else None
        return bool(v is not None and v.passed and self.result.status != "failed")


class Event:
    """Callbacks called, in the order they connected, with what :meth:`emit` is given."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True)
class SessionEvents:
    model_forgotten: Event = field(default_factory=Event)     # a different model is opened: drop its results
    model_loaded: Event = field(default_factory=Event)        # (summary: dict) the inspection's summary
    model_failed: Event = field(default_factory=Event)        # (message: str)
    job_added: Event = field(default_factory=Event)           # (job: Job)
    job_changed: Event = field(default_factory=Event)         # (job: Job) progress, cancelling, or its end
    jobs_cleared: Event = field(default_factory=Event)        # a new run starts: the old rows go
    all_jobs_ended: Event = field(default_factory=Event)      # the last running job ended
    outcome_added: Event = field(default_factory=Event)       # (outcome: Outcome, replaced: int | None) a row
    outcomes_cleared: Event = field(default_factory=Event)
    benchmark_finished: Event = field(default_factory=Event)  # (result: dict) the bench --json object
    sweep_finished: Event = field(default_factory=Event)      # (result: dict) the bench --sweep --json object
    diagnosis_finished: Event = field(default_factory=Event)  # (artifact: Path, result: dict) nodes ranked by error
    profile_finished: Event = field(default_factory=Event)    # (artifact: Path, result: dict) the profile --json object


@dataclass
class Session:
    """The source model, what the user trusted, and the last results of this window."""

    path: Path | None = None
    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()     # a pickle's globals the user approved in the dialog
    summary: dict | None = None               # the inspection summary (``inspect --json``)
    jobs: dict[JobKey, Job] = field(default_factory=dict)   # the jobs of this run, in the order they started
    outcomes: list[Outcome] = field(default_factory=list)   # one per target × precision, latest run
    last_benchmark: dict | None = None        # what File ▸ Export Report… reports beside the artifacts
    last_sweep: dict | None = None            # its proposals go into "Export for serving"
    took: dict[JobKey, float] = field(default_factory=dict)  # seconds each job last took (ended done)
    diagnoses: dict[Path, dict] = field(default_factory=dict)  # per artifact: its last diagnosis
    profiles: dict[Path, dict] = field(default_factory=dict)   # per artifact: its last profile (profile --json)
    events: SessionEvents = field(default_factory=SessionEvents, repr=False)

    def open(self, path: Path, *, allow_pickle: bool = False, trusted_globals: tuple[str, ...] = ()) -> bool:
        """Make ``path`` the source (with what the user trusted); True when it is another file than
        before, whose results are then forgotten."""
        other = Path(path) != self.path
        if other:
            self.forget()
        self.path, self.allow_pickle, self.trusted_globals = Path(path), allow_pickle, tuple(trusted_globals)
        self.summary = None
        return other

    def forget(self) -> None:
        self.summary, self.last_benchmark = None, None
        self.took.clear()   # another model's jobs take their own time
        self.diagnoses.clear()
        self.profiles.clear()
        self.clear_outcomes()
        self.clear_jobs()
        self.events.model_forgotten.emit()

    # -- jobs
    def add_job(self, key: JobKey, title: str) -> Job:
        job = self.jobs[key] = Job(key, title, expected=self.took.get(key))
        self.events.job_added.emit(job)
        return job

    def job_progressed(self, key: JobKey, stage: str, fraction: float) -> None:
        job = self.jobs[key]
        now = time.monotonic()
        if job.state == QUEUED:
            job.state, job.started_at = RUNNING, now
        if fraction < 0:
            job.counted_since = None
        elif job.counted_since is None or fraction < job.fraction:   # counting starts (again: a new stage's count)
            job.counted_since = (now, fraction)
        job.stage, job.fraction = stage, fraction
        self.events.job_changed.emit(job)

    def job_cancelling(self, key: JobKey) -> None:
        job = self.jobs[key]
        if not job.ended:
            job.cancelling = True
            self.events.job_changed.emit(job)

    def job_ended(self, key: JobKey, state: str, message: str = "", verdict=None) -> None:
        """``key``'s job ended ``state`` (done, failed, cancelled); a conversion's with its ``verdict``."""
        job = self.jobs[key]
        job.state, job.message, job.ended_at, job.verdict = state, message, time.monotonic(), verdict
        if state == DONE and job.started_at is not None:
            self.took[key] = job.ended_at - job.started_at   # the next run of it has an estimate
        self.events.job_changed.emit(job)
        if not self.jobs_running:
            self.events.all_jobs_ended.emit()

    def clear_jobs(self) -> None:
        self.jobs.clear()
        self.events.jobs_cleared.emit()

    @property
    def jobs_running(self) -> bool:
        return any(not j.ended for j in self.jobs.values())

    def job_counts(self) -> dict[str, int]:
        """How many jobs of this run ended done, failed and cancelled."""
        return {state: sum(j.state == state for j in self.jobs.values()) for state in TERMINAL}

    # -- conversions
    def converted(self, request, result=None, message: str = "") -> Outcome:
        """Record a finished conversion (``result``) or a failed one (``message``); a re-run of the same
        target and precision replaces its outcome."""
        outcome = Outcome(request, result, message)
        replaced = next((i for i, o in enumerate(self.outcomes)
                         if (o.target, o.precision) == (outcome.target, outcome.precision)), None)
        if replaced is not None:
            del self.outcomes[replaced]
        self.outcomes.append(outcome)
        self.events.outcome_added.emit(outcome, replaced)
        return outcome

    def found_on_disk(self, request, result, found) -> Outcome | None:
        """Show an artifact made earlier (``found``, an :class:`app.artifacts.history.FoundArtifact`, read back
        as ``request`` and ``result`` by :func:`app.pipeline.from_manifest`) as a row marked as from disk;
        None (nothing added) when this window has a row for its target and precision already, from a
        conversion of its own or an artifact found before."""
        outcome = Outcome(request, result, from_disk=found)
        if any((o.target, o.precision) == (outcome.target, outcome.precision) for o in self.outcomes):
            return None
        self.outcomes.append(outcome)
        self.events.outcome_added.emit(outcome, None)
        return outcome

    def clear_outcomes(self) -> None:
        self.outcomes.clear()
        self.events.outcomes_cleared.emit()

    def outcome_for(self, target: str, precision: str) -> Outcome:
        for o in self.outcomes:
            if (o.target, o.precision) == (target, precision):
                return o
        raise KeyError(f"{target}/{precision}")

    def artifacts(self) -> list[Path]:
        """The artifacts of the finished conversions that are still on disk."""
        return [o.artifact for o in self.outcomes if o.artifact is not None and o.artifact.exists()]

    def loaded(self, summary: dict) -> None:
        self.summary = summary
        self.events.model_loaded.emit(summary)

    def failed(self, message: str) -> None:
        self.events.model_failed.emit(message)

    def benchmarked(self, result: dict) -> None:
        self.last_benchmark = result
        self.events.benchmark_finished.emit(result)

    def swept(self, result: dict) -> None:
        self.last_sweep = result
        self.events.sweep_finished.emit(result)

    def diagnosed(self, artifact: Path, result: dict) -> None:
        self.diagnoses[Path(artifact)] = result
        self.events.diagnosis_finished.emit(Path(artifact), result)

    def profiled(self, artifact: Path, result: dict) -> None:
        self.profiles[Path(artifact)] = result
        self.events.profile_finished.emit(Path(artifact), result)

    def source(self, *, arch: str | None = None, arch_kwargs: dict | None = None):
        """The opened file with what the user trusted in it and the network they named, as an
        :class:`app.request.ModelSource` (what the inspection child is given: :func:`app.jobs.inspect_job`)."""
        return ModelSource(Path(self.path), arch=arch, arch_kwargs=tuple((arch_kwargs or {}).items()),
                           allow_pickle=self.allow_pickle, trusted_globals=self.trusted_globals)
