"""The timing harness: warm-up, timed calls, the batch sweep, accuracy beside speed, peak memory.

Method (the README's "How the benchmark measures" repeats it):

1. Inputs are built once per batch size from the model's signature (random, seeded, the same for
   every runner) and prepared once per runner (cast, copied to the device): never inside the loop.
2. Each runner is loaded (timed: ``load_ms``), then per batch size: one first call (``cold_ms``),
   warm-up until both ``warmup`` calls and ``warmup_seconds`` are done, then timed calls until both
   ``runs`` calls and ``min_seconds`` are reached (or ``max_seconds`` caps them, reported as such).
3. Every CPU runner uses the same thread count: ``torch.set_num_threads`` and ONNX Runtime's
   ``intra_op_num_threads``.
4. Accuracy: each runner's outputs on the same inputs are compared with the baseline's
   (:func:`app.verify.compare`: cosine, relative L2, max abs error) and reported in the same row.
5. Peak memory: the process's peak resident set while the runner was loaded and run (Linux resets
   the high-water mark before each runner; elsewhere it is the process's lifetime peak).
"""

from __future__ import annotations

import gc
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from app.bench.runners import Runner, RunnerUnavailable, onnxruntime_providers
from app.bench.stats import LatencyStats
from app.errors import BadInput, Cancelled, describe
from app.inputs import make_feeds
from app.model import Feeds
from app.specs import TensorSpec
from app.verify import compare

Progress = Callable[[str, "float | None"], None]
PROGRESS_INTERVAL_S = 0.25


@dataclass(frozen=True)
class BenchConfig:
    """How long and at which sizes to measure.

    Parameters
    ----------
    batches
        Batch sizes to sweep (models with a dynamic batch axis); empty: the model's example batch.
    warmup, warmup_seconds
        Warm-up lasts at least this many calls and at least this long.
    runs, min_seconds
        Timed calls continue until both this many calls and this much time are reached.
    max_seconds
        Optional cap on the timed phase of one runner at one batch size (reported as ``capped``).
    threads
        Intra-op threads of every CPU runner; default: the number of physical cores.
    seed
        Seed of the random inputs.
    """

    batches: tuple[int, ...] = ()
    warmup: int = 10
    warmup_seconds: float = 0.2
    runs: int = 50
    min_seconds: float = 1.0
    max_seconds: float | None = None
    threads: int | None = None
    seed: int = 0

    def with_threads(self) -> "BenchConfig":
        """This config with ``threads`` resolved (default: physical cores) and checked: every runner
        of one benchmark gets the same count."""
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"--threads {self.threads}: give a positive number of threads")
        return replace(self, threads=self.threads or default_threads())

    def to_json(self) -> dict:
        return {"batches": list(self.batches), "warmup": self.warmup, "warmup_seconds": self.warmup_seconds,
                "runs": self.runs, "min_seconds": self.min_seconds, "max_seconds": self.max_seconds,
                "threads": self.threads, "seed": self.seed}


@dataclass(frozen=True)
class Measurement:
    """One runner at one batch size: latency statistics, throughput, cost and accuracy."""

    name: str
    runtime: str
    provider: str
    precision: str
    batch: int
    stats: LatencyStats
    cold_ms: float
    load_ms: float
    size_bytes: int
    peak_rss_bytes: int | None
    threads: int
    capped: bool = False
    speedup_vs_baseline: float | None = None
    cosine: float | None = None
    rel_l2: float | None = None
    max_abs_err: float | None = None
    baseline: bool = False
    artifact: str | None = None
    note: str = ""

    @property
    def throughput(self) -> float:
        return self.stats.throughput(self.batch)

    def to_json(self) -> dict:
        """The ``--json`` row: the fields the charts read first, then the rest."""
        s = self.stats
        return {"name": self.name, "runtime": self.runtime, "provider": self.provider, "precision": self.precision,
                "batch": self.batch, "p50_ms": s.p50_ms, "p90_ms": s.p90_ms, "p99_ms": s.p99_ms,
                "mean_ms": s.mean_ms, "std_ms": s.std_ms, "throughput": self.throughput,
                "speedup_vs_baseline": self.speedup_vs_baseline, "cosine": self.cosine, "rel_l2": self.rel_l2,
                "min_ms": s.min_ms, "p95_ms": s.p95_ms, "max_ms": s.max_ms, "runs": s.count,
                "timed_seconds": s.total_s, "capped": self.capped, "cold_ms": self.cold_ms, "load_ms": self.load_ms,
                "size_bytes": self.size_bytes, "peak_rss_mb": None if self.peak_rss_bytes is None
                else self.peak_rss_bytes / 2**20, "threads": self.threads, "max_abs_err": self.max_abs_err,
                "baseline": self.baseline, "artifact": self.artifact, "note": self.note}


@dataclass(frozen=True)
class Skipped:
    """A runner (or one batch size of it) that produced no numbers, and why."""

    name: str
    runtime: str
    provider: str
    precision: str
    status: str            # unavailable | failed
    reason: str
    batch: int | None = None
    artifact: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "runtime": self.runtime, "provider": self.provider, "precision": self.precision,
                "status": self.status, "reason": self.reason, "batch": self.batch, "artifact": self.artifact}


@dataclass(frozen=True)
class BenchResult:
    """Everything one benchmark produced: the machine, the settings, the rows, what was skipped."""

    machine: dict
    config: BenchConfig
    rows: tuple[Measurement, ...]
    skipped: tuple[Skipped, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"machine": self.machine, "config": self.config.to_json(),
                "results": [r.to_json() for r in self.rows], "skipped": [s.to_json() for s in self.skipped],
                "notes": list(self.notes)}


@dataclass
class _Clock:
    """Rate-limited progress plus cancellation, shared by every loop of one benchmark."""

    progress: Progress
    should_cancel: Callable[[], bool]
    units: int
    done: float = 0.0
    last: float = field(default=0.0)

    def check(self) -> None:
        if self.should_cancel():
            raise Cancelled("benchmark cancelled by the user")

    def report(self, stage: str, part: float = 0.0, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - self.last >= PROGRESS_INTERVAL_S:
            self.last = now
            self.progress(stage, min(1.0, (self.done + min(part, 1.0)) / max(self.units, 1)))


# ---------------------------------------------------------------------------- the timing loop
def time_calls(runner: Runner, prepared, config: BenchConfig, *, should_cancel: Callable[[], bool] | None = None,
               on_tick: Callable[[str, float], None] | None = None) -> tuple[list[float], bool]:
    """Warm up, then time calls of ``runner`` on ``prepared`` inputs.

    Parameters
    ----------
    runner
        A loaded runner.
    prepared
        The result of ``runner.prepare(feeds)``.
    config
        Counts and durations (see :class:`BenchConfig`).
    should_cancel
        Checked before every call; raises :class:`~app.errors.Cancelled` when it returns True.
    on_tick
        Called as ``on_tick(phase, fraction)`` between calls (the caller rate-limits it).

    Returns
    -------
    samples, capped
        The per-call durations in seconds, and whether ``max_seconds`` stopped the timed phase early.
    """
    cancel = should_cancel or (lambda: False)
    tick = on_tick or (lambda phase, fraction: None)
    perf = time.perf_counter
    started, n = perf(), 0
    while n < config.warmup or perf() - started < config.warmup_seconds:
        if cancel():
            raise Cancelled("benchmark cancelled by the user")
        runner.call(prepared)
        n += 1
        tick("warm-up", 0.0)
    samples: list[float] = []
    timed = runner.timed_call
    started = perf()
    capped = False
    while True:
        elapsed = perf() - started
        if len(samples) >= config.runs and elapsed >= config.min_seconds:
            break
        if config.max_seconds is not None and elapsed >= config.max_seconds and samples:
            capped = True
            break
        if cancel():
            raise Cancelled("benchmark cancelled by the user")
        samples.append(timed(prepared))
        tick("timing", min(len(samples) / max(config.runs, 1), elapsed / config.min_seconds if config.min_seconds else 1.0))
    return samples, capped


# ---------------------------------------------------------------------------- batch sizes and inputs
def batch_labels(specs: list[TensorSpec]) -> set[str]:
    """The dynamic labels on axis 0 of the inputs (the batch axis)."""
    return {s.shape[0] for s in specs if s.shape and isinstance(s.shape[0], str)}


def plan_batches(specs: list[TensorSpec], requested: tuple[int, ...]) -> tuple[list[int], list[str]]:
    """The batch sizes to measure, and notes about requested sizes that cannot be.

    Without a dynamic batch axis only the model's own batch size can be measured.
    """
    if any(b < 1 for b in requested):
        raise BadInput(f"--batch {','.join(map(str, requested))}: batch sizes must be positive integers")
    example = [s.example_shape()[0] for s in specs if s.shape]
    own = example[0] if example else 1
    if not requested:
        return [own], []
    if batch_labels(specs):
        return list(dict.fromkeys(requested)), []
    other = [b for b in requested if b != own]
    notes = []
    if other:
        notes.append(f"the model has no dynamic batch axis, so only its own batch size {own} was measured "
                     f"(not {', '.join(map(str, other))}); mark the axis with --dynamic NAME:0:batch to sweep")
    return [own], notes


def feeds_for_batch(specs: list[TensorSpec], batch: int, *, seed: int, int_high: int) -> Feeds:
    """Random inputs at ``batch`` (other dynamic axes at their example sizes)."""
    sizes = {label: batch for label in batch_labels(specs)}
    return make_feeds(specs, seed=seed, sizes=sizes, int_high=int_high)


# ---------------------------------------------------------------------------- machine and memory
def default_threads() -> int:
    """Physical cores (hyper-threads do not add compute to these kernels), at least 1."""
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        if n:
            return int(n)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported platform
        pass
    return max(1, os.cpu_count() or 1)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int) -> dict:
    """The machine the numbers were taken on (printed with every result)."""
    info: dict = {"cpu": _cpu_name(), "arch": platform.machine(), "logical_cores": os.cpu_count(),
                  "physical_cores": default_threads(), "threads": threads,
                  "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:  # noqa: BLE001
        pass
    for mod in ("torch", "onnxruntime"):
        if mod in sys.modules:
            info[mod] = getattr(sys.modules[mod], "__version__", "?")
    info["onnxruntime_providers"] = onnxruntime_providers()
    torch = sys.modules.get("torch")
    info["gpu"] = torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else None
    return info


def reset_peak_memory() -> bool:
    """Reset the process's peak-RSS mark (Linux ≥ 4.0); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_memory_bytes() -> int | None:
    """The process's peak resident set size in bytes (since the last reset on Linux)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(peak) if sys.platform == "darwin" else int(peak) * 1024
    except Exception:  # noqa: BLE001 - Windows has no resource module
        pass
    try:
        import psutil

        mem = psutil.Process().memory_info()
        return int(getattr(mem, "peak_wset", mem.rss))
    except Exception:  # noqa: BLE001
        return None


# ---------------------------------------------------------------------------- the benchmark
def _accuracy(ref: list[np.ndarray] | None, got: list[np.ndarray]) -> tuple[float | None, float | None, float | None, str]:
    if ref is None:
        return None, None, None, "no baseline output at this batch size"
    if len(ref) != len(got):
        return None, None, None, f"returns {len(got)} outputs, the baseline {len(ref)}"
    try:
        metrics = [compare(f"output_{i}", r, g) for i, (r, g) in enumerate(zip(ref, got))]
    except ValueError as e:
        return None, None, None, str(e)
    return (min(m.cosine for m in metrics), max(m.rel_l2 for m in metrics), max(m.max_abs_err for m in metrics), "")


def run_benchmark(baseline: Runner, runners: list[Runner], specs: list[TensorSpec], config: BenchConfig, *,
                  int_high: int = 2, progress: Progress | None = None,
                  should_cancel: Callable[[], bool] | None = None, notes: list[str] | None = None) -> BenchResult:
    """Time ``baseline`` and every runner at every batch size, one after the other.

    Parameters
    ----------
    baseline
        The reference (the source model): its p50 is the speedup's denominator, its outputs the
        accuracy reference. If it cannot run, the benchmark fails (the error propagates).
    runners
        The artifacts' runners. A runner that is unavailable or fails is reported in
        ``BenchResult.skipped`` with its reason; the others still run.
    specs
        The source's input signature: the inputs every runner gets.
    config
        See :class:`BenchConfig`.
    int_high
        Upper bound of random integer inputs (the smallest embedding table).
    progress, should_cancel
        ``progress(stage, fraction)``; ``should_cancel()`` is checked between calls and raises
        :class:`~app.errors.Cancelled`.

    Returns
    -------
    BenchResult
    """
    config = config.with_threads()
    threads = config.threads
    batches, batch_notes = plan_batches(specs, config.batches)
    all_notes = list(notes or []) + batch_notes
    clock = _Clock(progress or (lambda stage, fraction=None: None), should_cancel or (lambda: False),
                   units=(1 + len(runners)) * len(batches))
    feeds = {b: feeds_for_batch(specs, b, seed=config.seed, int_high=int_high) for b in batches}
    references: dict[int, list[np.ndarray]] = {}
    rows: list[Measurement] = []
    skipped: list[Skipped] = []
    torch_threads = _set_torch_threads(threads)
    if not reset_peak_memory():
        all_notes.append("peak memory is the process's lifetime peak (no per-runner reset on this OS)")
    try:
        for index, runner in enumerate([baseline, *runners]):
            is_base = runner is baseline
            try:
                rows += _measure_runner(runner, feeds, config, clock, references, is_base, skipped)
            except (Cancelled, KeyboardInterrupt):
                raise
            except RunnerUnavailable as e:
                if is_base:
                    raise BadInput(f"the baseline {runner.name} cannot run here: {e}") from None
                skipped.append(_skip(runner, "unavailable", str(e)))
            except Exception as e:  # noqa: BLE001 - one failing runner must not abort the others
                if is_base:
                    raise
                skipped.append(_skip(runner, "failed", describe(e)))
            finally:
                runner.close()
                gc.collect()
            clock.done = (index + 1) * len(batches)  # also when a runner failed part-way
    finally:
        _restore_torch_threads(torch_threads)
    base = {r.batch: r.stats.p50_ms for r in rows if r.baseline}
    rows = [replace(r, speedup_vs_baseline=base[r.batch] / r.stats.p50_ms if r.batch in base and r.stats.p50_ms > 0
                    else None) for r in rows]
    clock.report("done", 0.0, force=True)
    return BenchResult(machine_info(threads), config, tuple(rows), tuple(skipped), tuple(all_notes))


def _measure_runner(runner: Runner, feeds: dict[int, Feeds], config: BenchConfig, clock: _Clock,
                    references: dict[int, list[np.ndarray]], is_base: bool, skipped: list[Skipped]) -> list[Measurement]:
    ok, why = runner.available()
    if not ok:
        raise RunnerUnavailable(why)
    clock.check()
    clock.report(f"load {runner.name}", 0.0, force=True)
    reset_peak_memory()
    load_s = runner.load()
    rows = []
    for batch, batch_feeds in feeds.items():
        stage = f"{runner.name}, batch {batch}"
        clock.report(stage, 0.0, force=True)
        try:
            prepared = runner.prepare(batch_feeds)
            cold_s = runner.timed_call(prepared)
            samples, capped = time_calls(runner, prepared, config, should_cancel=clock.should_cancel,
                                         on_tick=lambda phase, part, s=stage: clock.report(f"{s}: {phase}", part))
            outputs = runner.infer(batch_feeds)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - this batch size failed; the others may not
            if is_base:
                raise
            skipped.append(_skip(runner, "failed", describe(e), batch))
            clock.done += 1
            continue
        if is_base:
            references[batch] = outputs
            cosine, rel, max_abs, note = 1.0, 0.0, 0.0, ""
        else:
            cosine, rel, max_abs, note = _accuracy(references.get(batch), outputs)
        rows.append(Measurement(
            name=runner.name, runtime=runner.runtime, provider=runner.provider, precision=runner.precision,
            batch=batch, stats=LatencyStats.from_seconds(samples), cold_ms=cold_s * 1000.0, load_ms=load_s * 1000.0,
            size_bytes=runner.size_bytes, peak_rss_bytes=None, threads=config.threads or 0, capped=capped,
            cosine=cosine, rel_l2=rel, max_abs_err=max_abs, baseline=is_base,
            artifact=str(getattr(runner, "path", "")) or None, note=note))
        clock.done += 1
    peak = peak_memory_bytes()
    return [replace(r, peak_rss_bytes=peak) for r in rows]


def _skip(runner: Runner, status: str, reason: str, batch: int | None = None) -> Skipped:
    return Skipped(runner.name, runner.runtime, runner.provider, runner.precision, status, reason, batch,
                   str(getattr(runner, "path", "")) or None)


def _set_torch_threads(threads: int) -> int | None:
    torch = sys.modules.get("torch")
    if torch is None:
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            return None
        import torch
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return previous


def _restore_torch_threads(previous: int | None) -> None:
    if previous is not None:
        sys.modules["torch"].set_num_threads(previous)
