"""Deployment sweep: throughput against tail latency per artifact over threads × batch × concurrency,
the knee of that curve, and the serving settings it suggests.

``python main.py bench MODEL ARTIFACT... --sweep threads=1,2 batch=1,4,16 concurrency=1,2,4``

For every artifact and every thread count, ``max(concurrency)`` independent sessions are loaded (as
Triton loads one per model instance), each with that many intra-op threads. For every batch size and
concurrency ``c``, ``c`` Python threads call ``c`` sessions at once for ``seconds`` (ONNX Runtime and
the TorchScript interpreter release the GIL while they compute) and every call's latency is kept:
throughput is all items over the wall time, p50/p99 over all calls.

The **knee**: of the points no other point beats on both throughput and p99 (the Pareto front), the one
farthest above the straight line from the front's lowest-latency point to its highest-throughput point
(the Kneedle rule), that is, where more load starts to cost more latency than it brings throughput.
With ``p99_budget_ms`` the knee is instead the highest-throughput point whose p99 stays within it.

From the knee: Triton ``instance_group`` count = its concurrency, thread count per instance = its
threads, and, when its batch is above 1, ``dynamic_batching`` with the swept batch sizes up to it as
preferred sizes and a queue delay of half its p50 (a request waits at most about half a batch's
compute for others to join it). ``serve-bundle --from-sweep`` writes them into ``config.pbtxt``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from app.bench.harness import (
    _restore_torch_threads,
    _set_torch_threads,
    batch_labels,
    feeds_for_batch,
    machine_info,
    own_batch,
    plan_batches,
)
from app.bench.output import finish_axes, plain_text
from app.bench.runners import artifact_inputs, follow_artifact, runners_for_artifact
from app.bench.stats import pareto_front
from app.errors import BadInput, Cancelled, describe
from app.loaders.front_door import prepare_model
from app.request import ModelSource

SWEEP_KEYS = ("threads", "batch", "concurrency")
MAX_POINTS = 200
MAX_CONCURRENCY = 64


@dataclass(frozen=True)
class SweepPoint:
    """One artifact at one (threads, batch, concurrency)."""

    artifact: str
    name: str
    runtime: str
    threads: int
    batch: int
    concurrency: int
    calls: int
    throughput: float          # items per second, all sessions together
    p50_ms: float
    p99_ms: float

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Proposal:
    """Serving settings for one artifact, read off its knee."""

    artifact: str
    name: str
    knee: SweepPoint
    instances: int
    threads_per_instance: int
    preferred_batch_sizes: tuple[int, ...]
    max_queue_delay_us: int | None
    max_batch: int
    why: str

    def to_json(self) -> dict:
        return {"artifact": self.artifact, "name": self.name, "knee": self.knee.to_json(), "instances": self.instances,
                "threads_per_instance": self.threads_per_instance,
                "preferred_batch_sizes": list(self.preferred_batch_sizes),
                "max_queue_delay_us": self.max_queue_delay_us, "max_batch": self.max_batch, "why": self.why}


@dataclass
class SweepResult:
    grid: dict[str, list[int]]
    seconds: float
    points: list[SweepPoint] = field(default_factory=list)
    proposals: list[Proposal] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"kind": "sweep", "machine": self.machine, "grid": self.grid, "seconds": self.seconds,
                "points": [p.to_json() for p in self.points], "proposals": [p.to_json() for p in self.proposals],
                "skipped": self.skipped, "notes": self.notes}


def parse_sweep(items: list[str]) -> dict[str, list[int]]:
    """``["threads=1,2", "batch=1,4", "concurrency=1,2"]`` → the grid (missing keys default to 1)."""
    grid: dict[str, list[int]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in SWEEP_KEYS:
            raise BadInput(f"--sweep {item!r}: give KEY=LIST with KEY one of {', '.join(SWEEP_KEYS)}, "
                           "e.g. --sweep threads=1,2 batch=1,4,16 concurrency=1,2,4")
        try:
            numbers = [int(v) for v in values.replace(";", ",").split(",") if v.strip()]
        except ValueError:
            raise BadInput(f"--sweep {item!r}: {values!r} is not a list of whole numbers") from None
        if not numbers or any(n < 1 for n in numbers):
            raise BadInput(f"--sweep {item!r}: give positive whole numbers")
        if key in grid:
            raise BadInput(f"--sweep: {key} given twice")
        grid[key] = sorted(set(numbers))
    for key in SWEEP_KEYS:
        grid.setdefault(key, [1])
    if max(grid["concurrency"]) > MAX_CONCURRENCY:
        raise BadInput(f"--sweep concurrency={max(grid['concurrency'])}: at most {MAX_CONCURRENCY} sessions at once")
    size = len(grid["threads"]) * len(grid["batch"]) * len(grid["concurrency"])
    if size > MAX_POINTS:
        raise BadInput(f"--sweep: {size} points per artifact; at most {MAX_POINTS} (fewer values per key)")
    return grid


# ---------------------------------------------------------------------------- measuring
def _load_sessions(path: Path, threads: int, count: int) -> list:
    sessions = []
    for _ in range(count):
        runner = runners_for_artifact(path, providers=["CPUExecutionProvider"], threads=threads)[0]
        runner.load()
        sessions.append(runner)
    return sessions


def measure_point(sessions: list, prepared: list, batch: int, seconds: float,
                  should_cancel: Callable[[], bool]) -> tuple[int, float, float, float]:
    """``len(sessions)`` threads call their sessions at once for ``seconds``: (calls, items/s, p50, p99)."""
    for s, p in zip(sessions, prepared):  # one untimed call each: caches and lazily built kernels
        s.call(p)
    latencies: list[list[float]] = [[] for _ in sessions]
    errors: list[BaseException] = []
    start_line = threading.Barrier(len(sessions) + 1)
    stop_at = [0.0]

    def worker(k: int) -> None:
        try:
            start_line.wait()
            timed, got = sessions[k].timed_call, latencies[k]
            while time.perf_counter() < stop_at[0]:
                got.append(timed(prepared[k]))
        except BaseException as e:  # noqa: BLE001 - reported in the caller's thread
            errors.append(e)

    workers = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(sessions))]
    for w in workers:
        w.start()
    stop_at[0] = time.perf_counter() + seconds
    started = time.perf_counter()
    start_line.wait()
    while any(w.is_alive() for w in workers):
        if should_cancel():
            stop_at[0] = 0.0
        for w in workers:
            w.join(timeout=0.05)
    wall = time.perf_counter() - started
    if should_cancel():
        raise Cancelled("sweep cancelled by the user")
    if errors:
        raise errors[0]
    every = np.concatenate([np.asarray(x) for x in latencies]) * 1000.0
    if every.size == 0:
        raise RuntimeError("no call finished within the time given; raise --sweep-seconds")
    return int(every.size), float(every.size * batch / wall), float(np.percentile(every, 50)), float(np.percentile(every, 99))


def run_sweep(model, artifacts: list[Path], grid: dict[str, list[int]], *, seconds: float = 1.0,
              p99_budget_ms: float | None = None, progress=None, should_cancel=None) -> SweepResult:
    """Sweep every artifact over ``grid`` on the inputs of ``model`` (a loaded source: its signature)."""
    if seconds <= 0:
        raise BadInput(f"--sweep-seconds {seconds}: give a positive number of seconds")
    if not artifacts:
        raise BadInput("--sweep measures artifacts: name at least one (e.g. model.onnx)")
    progress = progress or (lambda stage, fraction=None: None)
    cancel = should_cancel or (lambda: False)
    specs = list(model.inputs)
    requested = tuple(grid["batch"])
    # each artifact at the batch sizes its own inputs take (its batch axis may be dynamic where the
    # source's signature is fixed, or the other way round)
    own = {str(Path(a).resolve()): follow_artifact(specs, artifact_inputs(Path(a))) for a in artifacts}
    names = {str(Path(a).resolve()): Path(a).name for a in artifacts}
    batches, notes = plan_batches(specs, requested)
    plans = {key: plan_batches(s, requested) for key, s in own.items()}
    if any(s != specs for s in own.values()):
        source_notes, notes = notes, []
        for key, s in own.items():
            if s == specs:
                notes += [n for n in source_notes if n not in notes]
            elif batch_labels(s) and not batch_labels(specs) and len(plans[key][0]) > 1:
                notes.append(f"{names[key]}: its own batch axis is dynamic, so it was swept at batch "
                             f"{', '.join(map(str, plans[key][0]))}, though the source model's inputs "
                             f"({', '.join(x.describe() for x in specs)}) have a fixed batch size "
                             f"{own_batch(specs)}")
            elif plans[key][1]:
                notes.append(f"{names[key]}: its batch axis is fixed in the file, so only batch {own_batch(s)} was "
                             "swept; re-convert with --dynamic NAME:0:batch to sweep the others")
        batches = [b for b in dict.fromkeys(requested) if any(b in p[0] for p in plans.values())]
        batches += [b for p in plans.values() for b in p[0] if b not in batches]
    else:
        plans = {key: (batches, []) for key in own}
    grid = {**grid, "batch": batches}
    result = SweepResult(grid=grid, seconds=seconds, notes=notes)
    total = sum(len(plans[key][0]) for key in own) * len(grid["threads"]) * len(grid["concurrency"])
    done = 0
    int_high = model.details.get("int_high", 2)
    for path in artifacts:
        path = Path(path).resolve()  # serve-bundle --from-sweep finds the proposal by this path
        path_batches = plans[str(path)][0]
        feeds = {b: feeds_for_batch(own[str(path)], b, seed=0, int_high=int_high) for b in path_batches}
        for threads in grid["threads"]:
            previous = _set_torch_threads(threads)
            sessions = []
            try:
                sessions = _load_sessions(path, threads, max(grid["concurrency"]))
                for batch in path_batches:
                    prepared = [s.prepare(feeds[batch]) for s in sessions]
                    for c in grid["concurrency"]:
                        progress(f"{path.name}: {threads} thread(s), batch {batch}, {c} at once", done / total)
                        calls, thr, p50, p99 = measure_point(sessions[:c], prepared[:c], batch, seconds, cancel)
                        result.points.append(SweepPoint(str(path), path.name, sessions[0].runtime, threads, batch, c,
                                                        calls, thr, p50, p99))
                        done += 1
                        progress(point_stage(result.points[-1]), done / total)  # the window draws it as it comes
            except (Cancelled, KeyboardInterrupt):
                raise
            except Exception as e:  # noqa: BLE001 - this artifact fails here; the others still run
                result.skipped.append({"artifact": str(path), "threads": threads, "reason": describe(e)})
            finally:
                for s in sessions:
                    s.close()
                _restore_torch_threads(previous)
    for path in dict.fromkeys(str(Path(a).resolve()) for a in artifacts):
        points = [p for p in result.points if p.artifact == path]
        if points:
            result.proposals.append(propose(points, plans[path][0], p99_budget_ms))
    if p99_budget_ms is not None:
        for p in result.proposals:
            if p.knee.p99_ms > p99_budget_ms:
                result.notes.append(f"{p.name}: no point kept p99 within {p99_budget_ms} ms; the proposal is its "
                                    "lowest-latency point")
    result.machine = machine_info(max(grid["threads"]))
    progress("done", 1.0)
    return result


# ---------------------------------------------------------------------------- the knee and the proposal
_MEASURED = re.compile(r"measured (?P<name>.+): (?P<threads>\d+) thread\(s\), batch (?P<batch>\d+), "
                       r"(?P<concurrency>\d+) at once: (?P<throughput>[0-9.e+-]+) items/s, "
                       r"p99 (?P<p99_ms>[0-9.e+-]+) ms")


def point_stage(point: SweepPoint) -> str:
    """The progress stage a sweep reports once ``point`` is measured (what the job row says, and what the
    Sweep tab draws while the sweep runs: :func:`measured_point`)."""
    return (f"measured {point.name}: {point.threads} thread(s), batch {point.batch}, {point.concurrency} at once: "
            f"{point.throughput:.6g} items/s, p99 {point.p99_ms:.6g} ms")


def measured_point(stage: str) -> dict | None:
    """The point a :func:`point_stage` stage names (name, threads, batch, concurrency, throughput, p99_ms),
    or None for any other stage (or one cut short on its way)."""
    match = _MEASURED.fullmatch(stage)
    if match is None:
        return None
    try:
        point = {k: (v if k == "name" else float(v) if k in ("throughput", "p99_ms") else int(v))
                 for k, v in match.groupdict().items()}
    except ValueError:
        return None
    return point


def pareto(points: list[SweepPoint]) -> list[SweepPoint]:
    """Points no other beats on both throughput (higher) and p99 (lower), by increasing p99."""
    return pareto_front(points, cost=lambda p: p.p99_ms, gain=lambda p: p.throughput)


def knee(points: list[SweepPoint], p99_budget_ms: float | None = None) -> SweepPoint:
    """The knee of the throughput-vs-p99 front (see the module's docstring)."""
    front = pareto(points)
    if p99_budget_ms is not None:
        within = [p for p in front if p.p99_ms <= p99_budget_ms]
        return max(within, key=lambda p: p.throughput) if within else front[0]
    if len(front) <= 2:
        return front[-1] if len(front) == 2 and front[-1].throughput > 1.2 * front[0].throughput else front[0]
    x = np.array([p.p99_ms for p in front])
    y = np.array([p.throughput for p in front])
    xn = (x - x[0]) / (x[-1] - x[0]) if x[-1] > x[0] else np.zeros_like(x)
    yn = (y - y[0]) / (y[-1] - y[0]) if y[-1] > y[0] else np.zeros_like(y)
    return front[int(np.argmax(yn - xn))]


def propose(points: list[SweepPoint], batches: list[int], p99_budget_ms: float | None = None) -> Proposal:
    k = knee(points, p99_budget_ms)
    preferred = tuple(b for b in batches if 1 < b <= k.batch)
    delay = int(round(k.p50_ms * 1000.0 / 2.0)) if preferred else None
    rule = (f"highest throughput with p99 ≤ {p99_budget_ms} ms" if p99_budget_ms is not None
            else "knee of the throughput-vs-p99 front")
    why = (f"{rule}: {k.concurrency} instance(s) × {k.threads} thread(s) at batch {k.batch} gave "
           f"{k.throughput:,.0f} items/s at p99 {k.p99_ms:.2f} ms")
    return Proposal(k.artifact, k.name, k, k.concurrency, k.threads, preferred, delay, max(batches), why)


def read_proposal(sweep_file: Path, artifact: Path) -> Proposal:
    """The proposal for ``artifact`` in a saved ``bench --sweep --json`` result."""
    from app.artifacts.json_file import SideFileError, check_fields, read_json_file

    try:  # never blocks (a FIFO is refused), bounded
        data = read_json_file(sweep_file, "sweep result")
        if isinstance(data, dict):
            check_fields(data, {"proposals": list}, sweep_file, "sweep result")
    except SideFileError as e:
        raise BadInput(f"--from-sweep {e}; save what `bench ... --sweep ... --json` prints") from None
    if not isinstance(data, dict) or data.get("kind") != "sweep":
        raise BadInput(f"--from-sweep {sweep_file}: not a sweep result (save what `bench ... --sweep ... --json` prints)")
    wanted = Path(artifact).resolve()
    proposals = [p for p in data.get("proposals") or [] if isinstance(p, dict)]
    names = [p.get("name") for p in proposals]
    # the same file, or (a sweep copied from another machine) the only proposal for a file of that name
    chosen = [p for p in proposals if Path(str(p.get("artifact", ""))) == wanted]
    if not chosen and names.count(wanted.name) == 1:
        chosen = [p for p in proposals if p.get("name") == wanted.name]
    for p in chosen:
        try:
            knee_point = SweepPoint(**p["knee"])
            delay = p.get("max_queue_delay_us")
            return Proposal(p["artifact"], p["name"], knee_point, int(p["instances"]), int(p["threads_per_instance"]),
                            tuple(int(b) for b in p.get("preferred_batch_sizes") or ()),
                            None if delay is None else int(delay), int(p.get("max_batch") or knee_point.batch),
                            str(p.get("why", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise BadInput(f"--from-sweep {sweep_file}: the proposal for {wanted.name} is damaged ({describe(e)})") from None
    raise BadInput(f"--from-sweep {sweep_file}: no proposal for {Path(artifact).name} (it has "
                   f"{', '.join(str(n) for n in names if n) or 'none'})")


# ---------------------------------------------------------------------------- output
def format_sweep(data: dict) -> str:
    lines = [f"{'artifact':24} {'threads':>7} {'batch':>5} {'conc':>4} {'items/s':>10} {'p50 ms':>9} {'p99 ms':>9}"]
    knees = {(p["artifact"], p["knee"]["threads"], p["knee"]["batch"], p["knee"]["concurrency"])
             for p in data.get("proposals", [])}
    for p in data.get("points", []):
        mark = "  ← knee" if (p["artifact"], p["threads"], p["batch"], p["concurrency"]) in knees else ""
        lines.append(f"{p['name'][:24]:24} {p['threads']:>7} {p['batch']:>5} {p['concurrency']:>4} "
                     f"{p['throughput']:>10,.1f} {p['p50_ms']:>9.3f} {p['p99_ms']:>9.3f}{mark}")
    for p in data.get("proposals", []):
        lines.append(f"proposal for {p['name']}: instance_group count {p['instances']}, "
                     f"{p['threads_per_instance']} thread(s) per instance"
                     + (f", dynamic_batching preferred {p['preferred_batch_sizes']} max_queue_delay "
                        f"{p['max_queue_delay_us']} µs" if p["preferred_batch_sizes"] else ", no dynamic batching")
                     + f" — {p['why']}")
    for s in data.get("skipped", []):
        lines.append(f"skipped: {Path(s['artifact']).name} with {s['threads']} thread(s): {s['reason']}")
    for note in data.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def sweep_figure(data: dict):
    """Throughput against p99 per artifact, its Pareto front joined, the knee starred (matplotlib Figure)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.0), dpi=100)
    ax = fig.add_subplot(1, 1, 1)
    by: dict[str, list[SweepPoint]] = {}
    for p in data.get("points", []):
        by.setdefault(p["artifact"], []).append(SweepPoint(**p))
    knees = {p["artifact"]: p["knee"] for p in data.get("proposals", [])}
    for i, (artifact, points) in enumerate(by.items()):
        color = f"C{i % 10}"
        ax.scatter([p.p99_ms for p in points], [p.throughput for p in points], s=18, color=color, alpha=0.6,
                   label=plain_text(points[0].name))
        front = pareto(points)
        ax.plot([p.p99_ms for p in front], [p.throughput for p in front], color=color, linewidth=1)
        if artifact in knees:
            k = knees[artifact]
            ax.scatter([k["p99_ms"]], [k["throughput"]], marker="*", s=180, color=color, edgecolor="black", zorder=5)
            ax.annotate(plain_text(f"knee: {k['concurrency']}×{k['threads']}t, b{k['batch']}"), (k["p99_ms"], k["throughput"]),
                        xytext=(6, -12), textcoords="offset points", fontsize=7)
    finish_axes(fig, ax, "p99 latency (ms)", "throughput (items/s)",
                "deployment sweep: throughput vs p99 (front joined, knee starred)")
    return fig


@dataclass(frozen=True)
class SweepRequest:
    """A deployment sweep (``bench --sweep``, the window's Sweep tab): the source model whose signature
    gives the inputs, the artifacts, the grid items (``("threads=1,2", "batch=1,4")``), seconds per
    point and an optional p99 budget."""

    source: ModelSource
    artifacts: tuple[Path, ...]
    sweep: tuple[str, ...]
    seconds: float = 1.0
    p99_budget_ms: float | None = None


def sweep_job(request: SweepRequest, progress=None, should_cancel=None) -> SweepResult:
    """Run ``request`` in a child (``bench --sweep`` and the window's Sweep tab, through
    :func:`app.jobs.run_job`): the parent saves the result (the fenced child writes nothing
    outside its work folder)."""
    progress = progress or (lambda stage, fraction=None: None)
    grid = parse_sweep(list(request.sweep))
    progress("load model", None)
    model = prepare_model(request.source)
    return run_sweep(model, list(request.artifacts), grid, seconds=request.seconds,
                     p99_budget_ms=request.p99_budget_ms, progress=progress, should_cancel=should_cancel)
