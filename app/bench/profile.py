"""Where the time goes: one artifact profiled per node by its runtime's own profiler
(:mod:`app.runtimes.profilers`), beside the whole model timed as ``bench`` times it.

:func:`profile_artifact` is what ``python main.py profile`` runs in its fenced child and what a window
tab calls (in a job: :func:`profile_job` returns the ``--json`` object). Method:

1. The artifact's inputs are made as ``bench`` makes them (its signature; ``--input``/``--dynamic``;
   random, seeded).
2. Two copies of the artifact are loaded in the same runtime: the benchmark's runner (no profiler)
   and the same runner with the runtime's profiler on. Both are warmed up (``warmup`` calls and
   ``warmup_seconds``; the profiler's warm-up runs are dropped).
3. Pairs: one timed call of the plain runner (:func:`app.bench.harness.timed_block`, the benchmark's
   own loop), then one profiled call, until ``runs`` pairs and ``min_seconds`` (at most
   ``MAX_RUNS_FACTOR × runs`` pairs; ``max_seconds`` caps it), so a load from other work hits both alike.
4. Per node: the median of its time over the profiled runs; ``node_sum_ms`` the sum of those
   medians; ``median_ms`` the plain runner's median; ``coverage = node_sum_ms / median_ms`` (below
   1: time outside the nodes — the runtime's own work between them, input and output copies;
   above 1: the profiler's overhead, or nodes that ran in parallel).
"""

from __future__ import annotations

import statistics
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.bench.harness import BenchConfig, Progress, machine_info, timed_block, warm_up
from app.runtimes.profilers import (ExecuTorchProfiler, NodeProfiler, NodeRecord, OnnxRuntimeProfiler,
                                 OpenVINOProfiler, TensorRTProfiler)
from app.bench.runners import artifact_precision
from app.bench.stats import LatencyStats
from app.errors import BadInput, Cancelled
from app.loaders.front_door import prepare_model, sniff_format
from app.model.inputs import make_feeds
from app.request import ModelSource
from app.runtimes import tensorrt as trt_runtime
from app.runtimes.base import Runner, RunnerUnavailable
from app.runtimes.executorch import ExecuTorchRunner
from app.runtimes.onnxrt import OnnxRuntimeRunner, resolve_provider, short_provider
from app.runtimes.openvino import OpenVINORunner

# the runtimes that can profile each kind of artifact, the first the default
RUNTIMES = {"onnx": ("onnxruntime", "openvino"), "openvino": ("openvino",), "executorch": ("executorch",),
            "tensorrt": ("tensorrt",)}


@dataclass(frozen=True)
class NodeTime:
    """One node: its median milliseconds per run, the precision its kernel ran in, where it ran.

    ``provider``: ONNX Runtime's execution provider, OpenVINO's ``exec_type`` (the kernel chosen,
    e.g. ``brgconv_avx512_I8``), ``XNNPACK``/``portable`` for ExecuTorch. ``share``: of ``node_sum_ms``.
    ``graph_node``: the node of the artifact's graph it came from ("" where the runtime inserted it),
    the key to join with :mod:`app.accuracy.diagnose`'s per-node error and to select it in the graph.
    """

    name: str
    op_type: str
    ms: float
    precision: str
    provider: str
    share: float
    graph_node: str = ""
    layout: bool = False
    fell_back: bool = False
    note: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "op_type": self.op_type, "ms": self.ms, "precision": self.precision,
                "provider": self.provider, "share": self.share, "graph_node": self.graph_node,
                "layout": self.layout, "fell_back": self.fell_back, "note": self.note}


@dataclass(frozen=True)
class OpGroup:
    """All nodes of one operator type: how many, their summed median milliseconds, their share."""

    op_type: str
    count: int
    ms: float
    share: float

    def to_json(self) -> dict:
        return {"op_type": self.op_type, "count": self.count, "ms": self.ms, "share": self.share}


@dataclass(frozen=True)
class Profile:
    """One artifact profiled: its nodes ranked by time (slowest first), grouped by operator type, their
    sum beside the whole model's median (``coverage``), and what the profile says (``notes``:
    fallbacks, layout conversions, a profiler coarser than per node)."""

    artifact: str
    runtime: str
    provider: str
    precision: str
    granularity: str              # node | delegate | program
    nodes: tuple[NodeTime, ...]
    groups: tuple[OpGroup, ...]
    node_sum_ms: float
    median_ms: float
    coverage: float | None
    runs: int
    threads: int
    notes: tuple[str, ...] = ()
    machine: dict | None = None
    run_sum_ms: float | None = None   # the median over profiled runs of each run's node sum

    @property
    def run_coverage(self) -> float | None:
        """``run_sum_ms / median_ms``: how much of a run the profiler accounts for, whatever the load
        (per-node medians of a busy machine sum lower than a run: each node's median skips the runs
        where that node, not others, was preempted)."""
        return self.run_sum_ms / self.median_ms if self.run_sum_ms is not None and self.median_ms > 0 else None

    @property
    def fell_back(self) -> tuple[NodeTime, ...]:
        """The convolutions and matmuls of an int8 artifact that ran in float."""
        return tuple(n for n in self.nodes if n.fell_back)

    def to_json(self) -> dict:
        return {"artifact": self.artifact, "runtime": self.runtime, "provider": self.provider,
                "precision": self.precision, "granularity": self.granularity,
                "nodes": [n.to_json() for n in self.nodes], "groups": [g.to_json() for g in self.groups],
                "node_sum_ms": self.node_sum_ms, "median_ms": self.median_ms, "coverage": self.coverage,
                "run_sum_ms": self.run_sum_ms, "run_coverage": self.run_coverage,
                "runs": self.runs, "threads": self.threads, "notes": list(self.notes), "machine": self.machine}


# ---------------------------------------------------------------------------- from records to a profile
def summarise(records: list[NodeRecord]) -> tuple[tuple[NodeTime, ...], tuple[OpGroup, ...], float]:
    """Per-node medians ranked slowest first, the groups by operator type, and their sum."""
    medians = [(r, statistics.median(r.samples) if r.samples else 0.0) for r in records]
    total = sum(ms for _, ms in medians)
    nodes = tuple(sorted((NodeTime(r.name, r.op_type, ms, r.precision, r.provider, ms / total if total else 0.0,
                                   r.graph_node, r.layout, r.fell_back, r.note) for r, ms in medians),
                         key=lambda n: -n.ms))
    by_op: dict[str, list[float]] = defaultdict(list)
    for n in nodes:
        by_op[n.op_type].append(n.ms)
    groups = tuple(sorted((OpGroup(op, len(v), sum(v), sum(v) / total if total else 0.0) for op, v in by_op.items()),
                          key=lambda g: -g.ms))
    return nodes, groups, total


def run_sum(records: list[NodeRecord]) -> float | None:
    """The median over runs of the nodes' sum in each run (None without per-run samples)."""
    n = min((len(r.samples) for r in records), default=0)
    return statistics.median(sum(r.samples[i] for r in records) for i in range(n)) if n else None


def load_note(total: float, per_run: float | None, median_ms: float) -> list[str]:
    """Say so when the per-node medians and a run's total disagree by more than 15 %: the machine was busy."""
    if per_run is None or per_run <= 0 or abs(total / per_run - 1.0) <= 0.15:
        return []
    return [f"the per-node medians sum to {total:.3f} ms but a median run's nodes to {per_run:.3f} ms "
            f"({per_run / median_ms:.0%} of the median): other work on this machine preempted different "
            "nodes in different runs; profile on a quieter machine for per-node figures that add up"]


def kept_float(nodes: tuple[NodeTime, ...], artifact: Path) -> tuple[NodeTime, ...]:
    """``nodes`` where a float convolution of an int8 artifact is one its conversion kept in float on purpose
    (the manifest's ``float_input_layers``, the budget's ``float_nodes``): not a fallback, and said so."""
    from dataclasses import replace

    from app.artifacts.manifest import read_manifest

    recorded = (read_manifest(artifact) or {}).get("recorded") or {}
    chosen = {str(n) for key in ("float_input_layers", "float_nodes") for n in recorded.get(key) or []}
    if not chosen:
        return nodes

    def chosen_float(n: NodeTime) -> bool:
        return any((name or "").split("/")[0] in chosen for name in (n.graph_node, n.name))

    return tuple(replace(n, fell_back=False, note="kept in float by the conversion (its manifest)")
                 if n.fell_back and chosen_float(n) else n for n in nodes)


def profile_notes(nodes: tuple[NodeTime, ...], precision: str, total: float) -> list[str]:
    """What a reader should know: layout conversions the runtime inserted, int8 nodes that ran in float."""
    notes = []
    layout = [n for n in nodes if n.layout]
    if layout:
        ms = sum(n.ms for n in layout)
        notes.append(f"{len(layout)} layout conversion(s) inserted by the runtime "
                     f"({', '.join(sorted({n.op_type for n in layout}))}): {ms:.3f} ms, "
                     f"{ms / total if total else 0:.0%} of the node time")
    fell = [n for n in nodes if n.fell_back]
    if fell:
        ms = sum(n.ms for n in fell)
        notes.append(f"int8 artifact, but {len(fell)} convolution/matmul node(s) ran in float ({ms:.3f} ms, "
                     f"{ms / total if total else 0:.0%} of the node time): "
                     + ", ".join(f"{n.name} ({n.precision})" for n in fell[:6]) + (" …" if len(fell) > 6 else ""))
    elif precision == "int8" and not any(n.precision == "int8" for n in nodes):
        notes.append("int8 artifact, but no node reports an int8 kernel")
    kept = [n.name for n in nodes if n.note == "kept in float by the conversion (its manifest)"]
    if kept:
        notes.append(f"{len(kept)} node(s) in float as the conversion chose (the stem, or the accuracy budget's): "
                     + ", ".join(kept[:6]) + (" …" if len(kept) > 6 else ""))
    return notes


# ---------------------------------------------------------------------------- which profiler
def _pair(kind: str, runtime: str, path: Path, work: Path, *, threads: int, precision: str,
          provider: str) -> tuple[Runner, NodeProfiler]:
    """The benchmark's runner for ``path`` in ``runtime`` and the same runner with its profiler on."""
    if runtime == "onnxruntime":
        return (OnnxRuntimeRunner(path, path.name, provider=provider, threads=threads, precision=precision),
                OnnxRuntimeProfiler(path, work, provider=provider, threads=threads, precision=precision))
    if runtime == "openvino":
        return (OpenVINORunner(path, path.name, threads=threads, precision=precision),
                OpenVINOProfiler(path, threads=threads, precision=precision))
    if runtime == "executorch":
        return (ExecuTorchRunner(path, path.name, threads=threads, precision=precision),
                ExecuTorchProfiler(path, work, threads=threads, precision=precision))
    return (trt_runtime.TensorRTRunner(path, path.name, precision=precision),
            TensorRTProfiler(path, precision=precision))


def choose_runtime(path: Path, kind: str, runtime: str | None) -> str:
    """The runtime that profiles ``path`` (``runtime``: the user's choice, checked); raises :class:`BadInput`
    for a file no runtime here profiles, in one line that says what to do."""
    if kind not in RUNTIMES:
        raise BadInput(f"{path.name} is a {kind} model, not a deployment artifact: profile needs an artifact "
                       f"(.onnx, OpenVINO .xml, ExecuTorch .pte, TensorRT engine) — convert it first, e.g. "
                       f"python main.py convert {path.name} --to onnx, and profile the file it writes")
    if runtime is None:
        return RUNTIMES[kind][0]
    if runtime not in RUNTIMES[kind]:
        raise BadInput(f"--runtime {runtime}: {path.name} runs in {' or '.join(RUNTIMES[kind])}, not {runtime}")
    return runtime


# ---------------------------------------------------------------------------- the measurement
def profile_artifact(source: ModelSource, config: BenchConfig = BenchConfig(), *, runtime: str | None = None,
                     provider: str = "CPU", progress: Progress | None = None,
                     should_cancel: Callable[[], bool] | None = None) -> Profile:
    """Profile one artifact per node with its runtime's own profiler (see the module's method).

    Parameters
    ----------
    source
        The artifact (``.onnx``, OpenVINO ``.xml``, ExecuTorch ``.pte``, TensorRT engine) and its
        signature flags (``--input``, ``--dynamic``), as for ``bench``.
    config
        ``warmup``/``warmup_seconds``, ``runs``/``min_seconds``/``max_seconds`` (pairs of a timed plain call
        and a profiled call), ``threads``, ``seed`` — :class:`~app.bench.harness.BenchConfig`.
    runtime
        ``onnxruntime`` (default for ``.onnx``) or ``openvino`` for an ONNX file; other files have one.
    provider
        ONNX Runtime's execution provider (``CPU``, ``CUDA``…).
    progress, should_cancel
        As for :func:`app.bench.harness.run_benchmark`.

    Returns
    -------
    Profile
    """
    progress = progress or (lambda stage, fraction=None: None)
    cancel = should_cancel or (lambda: False)
    config = config.with_threads()
    path = Path(source.path)
    if not path.is_file():
        raise BadInput(f"{path}: no such file")
    kind = sniff_format(path)
    chosen = choose_runtime(path, kind, runtime)
    if chosen == "tensorrt" and not trt_runtime.available()[0]:
        raise BadInput(f"cannot profile {path.name}: {trt_runtime.available()[1]}")
    progress("load model", None)
    model = prepare_model(source)
    feeds = make_feeds(list(model.inputs), seed=config.seed, int_high=model.details.get("int_high", 2))
    precision = artifact_precision(path)
    full_provider = resolve_provider(provider)
    with tempfile.TemporaryDirectory(prefix="deploy-studio-profile-") as work:  # never the cwd; removed after
        try:  # a missing runtime or provider, a runtime without its profiler: one line
            plain, profiler = _pair(kind, chosen, path, Path(work), threads=config.threads, precision=precision,
                                    provider=full_provider)
            samples, records = _measure(plain, profiler, feeds, config, progress, cancel)
        except RunnerUnavailable as e:
            raise BadInput(f"cannot profile {path.name}: {e}") from None
    median_ms = LatencyStats.from_seconds(samples).p50_ms
    nodes, groups, total = summarise(records)
    nodes = kept_float(nodes, path)
    per_run = run_sum(records)
    notes = profiler.notes + profile_notes(nodes, precision, total) + load_note(total, per_run, median_ms)
    return Profile(artifact=str(path), runtime=chosen, provider=short_provider(full_provider) if chosen == "onnxruntime"
                   else profiler.provider, precision=precision, granularity=profiler.granularity, nodes=nodes,
                   groups=groups, node_sum_ms=total, median_ms=median_ms,
                   coverage=total / median_ms if median_ms > 0 else None, runs=len(samples),
                   threads=config.threads or 0, notes=tuple(notes), machine=machine_info(config.threads or 0),
                   run_sum_ms=per_run)


# profiled runs stop at this many times ``runs`` even where ``min_seconds`` is not reached (a tiny model
# would otherwise write a profile of thousands of runs)
MAX_RUNS_FACTOR = 10


def _measure(plain: Runner, profiler: NodeProfiler, feeds, config: BenchConfig, progress: Progress,
             cancel: Callable[[], bool]) -> tuple[list[float], list[NodeRecord]]:
    """Warm both up, then alternate one timed plain call (the harness's loop, :func:`timed_block`) and one
    profiled call until ``runs`` pairs and ``min_seconds`` of them (or ``max_seconds``); the plain
    samples (seconds) and the profiler's records. Pairs, not blocks: a machine shared with other work
    slows both alike, so the node sum and the median stay comparable."""
    import time

    try:
        for which in (plain, profiler):
            which.load()
        ready, profiled = plain.prepare(feeds), profiler.prepare(feeds)
        progress("warm-up", 0.0)
        warm_up(plain, ready, config, cancel)
        for _ in range(max(config.warmup, 1)):
            profiler.run(profiled, keep=False)
        samples: list[float] = []
        started = time.perf_counter()
        while True:
            elapsed = time.perf_counter() - started
            enough = len(samples) >= config.runs and (elapsed >= config.min_seconds
                                                       or len(samples) >= MAX_RUNS_FACTOR * config.runs)
            if enough or (config.max_seconds is not None and elapsed >= config.max_seconds and samples):
                break
            samples += timed_block(plain, ready, 1, 0.0, None, cancel)[0]
            if cancel():
                raise Cancelled("profile cancelled by the user")
            profiler.run(profiled, keep=True)
            progress("timing and profiling", min(1.0, len(samples) / config.runs))
        progress("reading the profile", None)
        return samples, profiler.records()
    finally:
        plain.close()
        profiler.close()


def profile_entry(payload: tuple, progress: Progress | None = None,
                  should_cancel: Callable[[], bool] | None = None) -> "Profile":
    """``profile`` in the fenced child: ``payload`` is (source, config, runtime, provider)."""
    source, config, runtime, provider = payload
    return profile_artifact(source, config, runtime=runtime, provider=provider, progress=progress,
                            should_cancel=should_cancel)


def profile_job(payload: tuple, progress: Progress | None = None,
                should_cancel: Callable[[], bool] | None = None) -> dict:
    """A window's profile in its child: ``payload`` is (source, config, runtime); the ``profile --json``
    object of :func:`profile_artifact`."""
    source, config, runtime = payload
    return profile_artifact(source, config, runtime=runtime, progress=progress, should_cancel=should_cancel).to_json()


def ms_by_node(profile: dict) -> dict[str, float]:
    """Milliseconds per node of the artifact's graph (``graph_node``) in a ``profile --json`` object: the
    rows one graph node became summed (a fused kernel, its inserted reorders); rows the runtime made of
    no graph node are left out. The key that joins with :func:`app.accuracy.diagnose.added_by_node`."""
    found: dict[str, float] = defaultdict(float)
    for n in profile.get("nodes") or ():
        if isinstance(n, dict) and n.get("graph_node") and isinstance(n.get("ms"), (int, float)):
            found[str(n["graph_node"])] += float(n["ms"])
    return dict(found)


# ---------------------------------------------------------------------------- the table
def format_profile(data: dict, top: int = 20) -> str:
    """The ``profile`` table: the ``top`` slowest nodes, the groups by operator type, the sum beside
    the median (coverage), the notes."""
    lines = [f"{Path(data['artifact']).name} — {data['runtime']} ({data['provider']}), {data['precision']}, "
             f"{data['threads']} thread(s), median of {data['runs']} profiled run(s) per node"]
    nodes = data["nodes"]
    width = min(60, max([len(n["name"]) for n in nodes[:top]] + [4]))
    lines.append(f"{'#':>3}  {'node':<{width}}  {'op type':<22} {'ms':>9} {'share':>6}  {'precision':<9} where")
    for i, n in enumerate(nodes[:top], 1):
        flag = " ← ran in float" if n["fell_back"] else (" (layout)" if n["layout"] else "")
        lines.append(f"{i:>3}  {_cut(n['name'], width):<{width}}  {_cut(n['op_type'], 22):<22} {n['ms']:>9.4f} "
                     f"{n['share']:>6.1%}  {n['precision'] or '—':<9} {n['provider']}{flag}")
    if len(nodes) > top:
        rest = nodes[top:]
        lines.append(f"     … {len(rest)} more node(s): {sum(n['ms'] for n in rest):.4f} ms (--top N shows more)")
    lines += ["", f"{'op type':<28} {'nodes':>5} {'ms':>9} {'share':>6}"]
    lines += [f"{_cut(g['op_type'], 28):<28} {g['count']:>5} {g['ms']:>9.4f} {g['share']:>6.1%}" for g in data["groups"]]
    coverage = f"{data['coverage']:.0%}" if data["coverage"] is not None else "—"
    per_run = (f" · per run: nodes {data['run_sum_ms']:.4f} ms ({data['run_coverage']:.0%})"
               if data.get("run_sum_ms") is not None and data.get("run_coverage") is not None else "")
    lines += ["", f"per-node sum {data['node_sum_ms']:.4f} ms · whole model median {data['median_ms']:.4f} ms "
                  f"(timed as bench times it) · coverage {coverage}{per_run}"]
    lines += [f"note: {n}" for n in data["notes"]]
    return "\n".join(lines)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"

