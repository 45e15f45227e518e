"""The timing harness: warm-up, timed calls, the batch sweep, accuracy beside speed, peak memory.

Method (the README's "How the benchmark measures" repeats it):

1. Inputs are built once per batch size from the model's signature (random, seeded, the same for
   every runner) and prepared once per runner (cast, copied to the device): never inside the loop.
2. Each runner alone: loaded (timed: ``load_ms``), then per batch size one first call (``cold_ms``)
   and its outputs (for accuracy); its peak memory; then it is closed.
3. Timing, interleaved: every runner that worked is loaded again and warmed up (``warmup`` calls and
   ``warmup_seconds``), then the timed calls are split into ``rounds`` rounds, A B C, B C A, C A B …
   (one untimed call opens each block), so that a drift of the machine (another process, a
   frequency change) hits every runner alike. In all, timed calls continue until both ``runs`` calls
   and ``min_seconds`` are reached (or ``max_seconds`` caps them, reported as such).
4. Bootstrap confidence intervals (95 %) on each p50 and on each speed-up over the baseline, drawn
   over rounds and over calls within them (round k of two runners is paired: measured side by side),
   so a drift between rounds widens the interval instead of hiding in many calls; a speed-up whose
   interval contains 1 is "no measurable difference", and a p50 whose interval is wider than ±5 % is
   flagged as too noisy to rank by.
5. Every CPU runner uses the same thread count: ``torch.set_num_threads`` and ONNX Runtime's
   ``intra_op_num_threads``.
6. Accuracy: each runner's outputs on the same inputs are compared with the baseline's
   (:func:`app.accuracy.verify.compare`: cosine, relative L2, max abs error) and reported in the same row.
7. Peak memory: the process's peak resident set while the runner was loaded alone (step 2; Linux
   resets the high-water mark before each runner; elsewhere it is the process's lifetime peak).
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

from app.accuracy.evaluation import evaluation_columns
from app.accuracy.verify import compare
from app.bench.stats import LatencyStats, NOISY_HALF_WIDTH, median_ci, speedup_ci, verdict
from app.errors import BadInput, Cancelled, describe
from app.machine.hardware import detect_cpu
from app.model.inputs import make_feeds
from app.model.loaded import Feeds
from app.model.specs import TensorSpec
from app.runtimes.base import Runner, RunnerUnavailable
from app.runtimes.onnxrt import onnxruntime_providers

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
    rounds
        The timed calls of every runner are split into this many interleaved rounds (A B C, B C A …).
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
    rounds: int = 5

    def with_threads(self) -> "BenchConfig":
        """This config with ``threads`` resolved (default: physical cores) and checked: every runner
        of one benchmark gets the same count."""
        if self.threads is not None and self.threads < 1:
            raise BadInput(f"--threads {self.threads}: give a positive number of threads")
        if self.rounds < 1:
            raise BadInput(f"--rounds {self.rounds}: give a positive number of rounds")
        return replace(self, threads=self.threads or default_threads())

    def to_json(self) -> dict:
        return {"batches": list(self.batches), "warmup": self.warmup, "warmup_seconds": self.warmup_seconds,
                "runs": self.runs, "min_seconds": self.min_seconds, "max_seconds": self.max_seconds,
                "threads": self.threads, "seed": self.seed, "rounds": self.rounds}


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
    p50_ci_ms: tuple[float, float] | None = None
    speedup_ci: tuple[float, float] | None = None
    verdict: str = ""

    @property
    def noisy(self) -> bool:
        """The p50's interval is wider than ±5 %: too noisy to rank this row against others."""
        if self.p50_ci_ms is None or self.stats.p50_ms <= 0:
            return False
        lo, hi = self.p50_ci_ms
        return (hi - lo) / 2.0 > NOISY_HALF_WIDTH * self.stats.p50_ms

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
                "baseline": self.baseline, "artifact": self.artifact, "note": self.note,
                "p50_ci_low_ms": self.p50_ci_ms[0] if self.p50_ci_ms else None,
                "p50_ci_high_ms": self.p50_ci_ms[1] if self.p50_ci_ms else None,
                "speedup_ci_low": self.speedup_ci[0] if self.speedup_ci else None,
                "speedup_ci_high": self.speedup_ci[1] if self.speedup_ci else None,
                "verdict": self.verdict, "noisy": self.noisy}


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
    evaluations: tuple[tuple[str, dict], ...] = ()   # bench --data: (artifact path, Evaluation.to_json())
    data: str | None = None                          # bench --data: what was evaluated on

    def to_json(self) -> dict:
        scores = dict(self.evaluations)
        out = {"machine": self.machine, "config": self.config.to_json(),
               "results": [{**r.to_json(), **evaluation_columns(scores.get(str(r.artifact)))} for r in self.rows],
               "skipped": [s.to_json() for s in self.skipped], "notes": list(self.notes)}
        if self.data is not None:
            out["data"] = self.data
        return out


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


def parse_batches(text: str | None) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``; raises :class:`BadInput` with the bad part."""
    if not text:
        return ()
    out = []
    for part in text.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) < 1:
            raise BadInput(f"--batch {text}: {part!r} is not a positive integer (e.g. --batch 1,2,4,8)")
        out.append(int(part))
    return tuple(dict.fromkeys(out))


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
    warm_up(runner, prepared, config, cancel, tick)
    return timed_block(runner, prepared, config.runs, config.min_seconds, config.max_seconds, cancel, tick)


def warm_up(runner: Runner, prepared, config: BenchConfig, cancel: Callable[[], bool],
            tick: Callable[[str, float], None] = lambda phase, fraction: None) -> None:
    """Untimed calls until both ``config.warmup`` calls and ``config.warmup_seconds`` are done."""
    perf = time.perf_counter
    started, n = perf(), 0
    while n < config.warmup or perf() - started < config.warmup_seconds:
        if cancel():
            raise Cancelled("benchmark cancelled by the user")
        runner.call(prepared)
        n += 1
        tick("warm-up", 0.0)


def timed_block(runner: Runner, prepared, runs: int, min_seconds: float, max_seconds: float | None,
                cancel: Callable[[], bool], tick: Callable[[str, float], None] = lambda phase, fraction: None,
                ) -> tuple[list[float], bool]:
    """Timed calls until both ``runs`` calls and ``min_seconds`` are reached, or ``max_seconds``
    (then ``capped`` is True); returns the per-call seconds and ``capped``."""
    perf = time.perf_counter
    samples: list[float] = []
    timed = runner.timed_call
    started = perf()
    capped = False
    while True:
        elapsed = perf() - started
        if len(samples) >= runs and elapsed >= min_seconds:
            break
        if max_seconds is not None and elapsed >= max_seconds and samples:
            capped = True
            break
        if cancel():
            raise Cancelled("benchmark cancelled by the user")
        samples.append(timed(prepared))
        tick("timing", min(len(samples) / max(runs, 1), elapsed / min_seconds if min_seconds else 1.0))
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
    own = own_batch(specs)
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


def own_batch(specs: list[TensorSpec]) -> int:
    """The batch size the inputs are given at (axis 0 of the first input's example)."""
    example = [s.example_shape()[0] for s in specs if s.shape]
    return example[0] if example else 1


def plan_runner_batches(source: list[TensorSpec], runners: list[tuple[str, list[TensorSpec]]],
                        requested: tuple[int, ...], *, source_name: str = "the source model",
                        source_can_be_marked: bool = True) -> tuple[list[int], list[list[int]], list[str]]:
    """Batch sizes per runner from its own inputs: the source's ``source`` and each ``(name, specs)``
    (an artifact's own axes: its batch axis may be dynamic where the source's is fixed, or the other
    way round). Returns every batch size measured (in the requested order), the source's batch sizes
    followed by each runner's, and notes on who could not follow which sizes."""
    if not runners:
        batches, notes = plan_batches(source, requested)
        return batches, [batches], notes
    plans = [plan_batches(source, requested)] + [plan_batches(specs, requested) for _, specs in runners]
    if not requested or not any(batch_labels(s) for s in [source] + [specs for _, specs in runners]):
        return plans[0][0], [p[0] for p in plans], plans[0][1]
    wanted = list(dict.fromkeys(requested))
    everything = [b for b in wanted if any(b in p[0] for p in plans)]
    everything += [b for p in plans for b in p[0] if b not in everything]
    notes = []
    missing = [b for b in wanted if b not in plans[0][0]]
    if missing:
        followers = [name for (name, _), p in zip(runners, plans[1:]) if set(missing) & set(p[0])]
        how = ("; mark the axis with --dynamic NAME:0:batch to measure it too" if source_can_be_marked
               else "")
        notes.append(f"{source_name} has no dynamic batch axis (its inputs are {', '.join(s.describe() for s in source)}), "
                     f"so it was measured at its own batch size {own_batch(source)} only, not at "
                     f"{', '.join(map(str, missing))}: there the artifacts have no speedup or accuracy against it"
                     + (f" ({', '.join(followers)} measured there on {'its' if len(followers) == 1 else 'their'} own "
                        "dynamic batch axis)" if followers else "") + how)
    fixed: dict[int, list[str]] = {}
    for (name, specs), p in zip(runners, plans[1:]):
        if not batch_labels(specs) and any(b not in p[0] for b in wanted):
            fixed.setdefault(own_batch(specs), []).append(name)
    for own, names in fixed.items():
        notes.append(f"{', '.join(dict.fromkeys(names))}: {'its' if len(set(names)) == 1 else 'their'} batch axis is "
                     f"fixed in the file, so only batch {own} was measured; re-convert with --dynamic NAME:0:batch "
                     "to measure the others")
    return everything, [p[0] for p in plans], notes


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

    info["isa"] = detect_cpu().features()  # which CPU's numbers these are (advice matches them to this machine)
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
    everyone = [baseline, *runners]
    own_specs = [r.feed_specs or specs for r in runners]  # each artifact's own batch axis
    batches, per_runner, batch_notes = plan_runner_batches(
        specs, [(r.name, s) for r, s in zip(runners, own_specs) if s is not specs], config.batches,
        source_can_be_marked=baseline.runtime != "onnxruntime")
    followed = iter(per_runner[1:])
    runner_batches = [per_runner[0]] + [next(followed) if s is not specs else per_runner[0] for s in own_specs]
    all_notes = list(notes or []) + batch_notes
    clock = _Clock(progress or (lambda stage, fraction=None: None), should_cancel or (lambda: False),
                   units=len(everyone) * len(batches) * 2)
    made: dict = {}

    def feeds_of(runner_specs: list[TensorSpec], wanted: list[int]) -> dict[int, Feeds]:
        """Feeds per batch size (the same data for the same shapes: one seed)."""
        out = {}
        for b in wanted:
            key = (b, tuple((s.name, s.dtype, s.shape, s.example_shape()) for s in runner_specs))
            if key not in made:
                made[key] = feeds_for_batch(runner_specs, b, seed=config.seed, int_high=int_high)
            out[b] = made[key]
        return out

    runner_feeds = [feeds_of(s, b) for s, b in zip([specs, *own_specs], runner_batches)]
    probes: list[_Probe] = []
    skipped: list[Skipped] = []
    torch_threads = _set_torch_threads(threads)
    if not reset_peak_memory():
        all_notes.append("peak memory is the process's lifetime peak (no per-runner reset on this OS)")
    try:
        for index, runner in enumerate(everyone):  # 1. each runner alone: load, cold call, outputs, memory
            which = f"{index + 1} of {len(everyone)}"   # the stage counts runners and batch sizes
            probe = _guarded(runner, runner is baseline, skipped,
                             lambda r=runner, f=runner_feeds[index], w=which: _probe(r, f, clock, skipped, r is baseline, w))
            if probe is not None:
                probes.append(probe)
            clock.done = (index + 1) * len(batches)  # also when a runner failed part-way
        samples = _interleaved(probes, batches, config, clock, skipped)  # 2. timing in interleaved rounds
    finally:
        _restore_torch_threads(torch_threads)
    rows = _measurements(probes, samples, config, all_notes)
    clock.report("done", 0.0, force=True)
    return BenchResult(machine_info(threads), config, tuple(rows), tuple(skipped), tuple(all_notes))


@dataclass
class _Probe:
    """What one runner did alone: load time, per batch its cold call and outputs, its peak memory."""

    runner: Runner
    is_base: bool
    load_s: float
    cold_s: dict[int, float]
    outputs: dict[int, list[np.ndarray]]
    peak: int | None
    feeds: dict[int, Feeds] = field(default_factory=dict)  # per batch size, the inputs it is timed on


def _guarded(runner: Runner, is_base: bool, skipped: list[Skipped], work: Callable):
    """``work()``, with a runner that is unavailable or fails reported in ``skipped`` (the baseline's
    failure propagates: without it nothing can be compared); the runner is closed afterwards."""
    try:
        return work()
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
    return None


def _probe(runner: Runner, feeds: dict[int, Feeds], clock: _Clock, skipped: list[Skipped], is_base: bool,
           which: str = "") -> _Probe:
    """``runner`` alone (``which``: "2 of 5", its place among the runners, said in the stages)."""
    ok, why = runner.available()
    if not ok:
        raise RunnerUnavailable(why)
    clock.check()
    place = f" ({which})" if which else ""
    clock.report(f"load {runner.name}{place}", 0.0, force=True)
    reset_peak_memory()
    probe = _Probe(runner, is_base, runner.load(), {}, {}, None, feeds)
    for n, (batch, batch_feeds) in enumerate(feeds.items(), 1):
        clock.report(f"{runner.name}{place}, batch {batch} ({n} of {len(feeds)}): first call", 0.0, force=True)
        try:
            prepared = runner.prepare(batch_feeds)
            probe.cold_s[batch] = runner.timed_call(prepared)
            probe.outputs[batch] = runner.infer(batch_feeds)
        except (Cancelled, KeyboardInterrupt):
            raise
        except Exception as e:  # noqa: BLE001 - this batch size failed; the others may not
            if is_base:
                raise
            skipped.append(_skip(runner, "failed", describe(e), batch))
        clock.done += 1
    probe.peak = peak_memory_bytes()
    return probe


def _interleaved(probes: list[_Probe], batches: list[int], config: BenchConfig, clock: _Clock,
                 skipped: list[Skipped]) -> dict[tuple[int, int], tuple[list[list[float]], bool]]:
    """Per (probe index, batch): the timed samples, one list per round, and whether a cap stopped them."""
    loaded = []
    try:
        for i, p in enumerate(probes):
            clock.report(f"load {p.runner.name} for timing", 0.0, force=True)
            try:
                p.runner.load()
            except Exception as e:  # noqa: BLE001 - it loaded a moment ago; report it and time the others
                if p.is_base:
                    raise
                skipped.append(_skip(p.runner, "failed", f"could not be loaded again for timing: {describe(e)}"))
                continue
            loaded.append(i)
        out: dict[tuple[int, int], tuple[list[list[float]], bool]] = {}
        per_round_runs = -(-config.runs // config.rounds)  # ceil
        per_round_s = config.min_seconds / config.rounds
        per_round_cap = config.max_seconds / config.rounds if config.max_seconds is not None else None
        for n, batch in enumerate(batches, 1):
            which = f"batch {batch} ({n} of {len(batches)})"   # the stage counts batch sizes and rounds
            taking = [i for i in loaded if batch in probes[i].cold_s]
            prepared = {}
            for i in taking:
                prepared[i] = probes[i].runner.prepare(probes[i].feeds[batch])
                clock.report(f"{probes[i].runner.name}, {which}: warm-up", 0.0, force=True)
                warm_up(probes[i].runner, prepared[i], config, clock.should_cancel)
            for k in range(config.rounds):
                order = taking[k % len(taking):] + taking[:k % len(taking)] if taking else []
                for i in order:
                    runner = probes[i].runner
                    runner.call(prepared[i])  # untimed: the previous runner's data left the caches
                    got, capped = timed_block(runner, prepared[i], per_round_runs, per_round_s, per_round_cap,
                                              clock.should_cancel)
                    rounds, was_capped = out.get((i, batch), ([], False))
                    out[(i, batch)] = (rounds + [got], was_capped or capped)
                clock.report(f"time {which}: round {k + 1} of {config.rounds}", (k + 1) / config.rounds)
            clock.done += len(probes)
    finally:
        for i in loaded:
            probes[i].runner.close()
        gc.collect()
    return out


def _measurements(probes: list[_Probe], samples: dict[tuple[int, int], tuple[list[list[float]], bool]],
                  config: BenchConfig, notes: list[str]) -> list[Measurement]:
    """One row per runner × batch size, with accuracy against the baseline and the intervals."""
    base_index = next((i for i, p in enumerate(probes) if p.is_base), None)
    rows: list[Measurement] = []
    noisy = []
    for i, p in enumerate(probes):
        r = p.runner
        for batch, cold_s in p.cold_s.items():
            if (i, batch) not in samples:
                continue
            rounds, capped = samples[(i, batch)]
            base_rounds = samples.get((base_index, batch), ([], False))[0] if base_index is not None else []
            got = [t for r in rounds for t in r]
            base = [t for r in base_rounds for t in r]
            stats = LatencyStats.from_seconds(got)
            if p.is_base:
                cosine, rel, max_abs, note = 1.0, 0.0, 0.0, ""
            else:
                ref = probes[base_index].outputs.get(batch) if base_index is not None else None
                cosine, rel, max_abs, note = _accuracy(ref, p.outputs[batch])
            ci = tuple(v * 1000.0 for v in median_ci(rounds, seed=config.seed))
            s_ci = speedup_ci(base_rounds, rounds, seed=config.seed) if base and not p.is_base else None
            row = Measurement(
                name=r.name, runtime=r.runtime, provider=r.provider, precision=r.precision, batch=batch,
                stats=stats, cold_ms=cold_s * 1000.0, load_ms=p.load_s * 1000.0, size_bytes=r.size_bytes,
                peak_rss_bytes=p.peak, threads=config.threads or 0, capped=capped,
                speedup_vs_baseline=(float(np.median(base)) / float(np.median(got))) if base else None,
                cosine=cosine, rel_l2=rel, max_abs_err=max_abs, baseline=p.is_base,
                artifact=str(getattr(r, "path", "")) or None, note=note, p50_ci_ms=ci, speedup_ci=s_ci,
                verdict=verdict(s_ci))
            if row.noisy:
                noisy.append(f"{r.name} (batch {batch})")
            rows.append(row)
    if noisy:
        notes.append(f"too noisy to rank: the p50 of {', '.join(noisy)} is uncertain by more than "
                     f"±{NOISY_HALF_WIDTH:.0%} (95 % interval); run longer (--runs, --min-seconds, --rounds) "
                     "or on a quieter machine")
    return rows


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
