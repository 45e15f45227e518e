"""Accuracy-aware fp16/int8: ``--accuracy-budget cosine=0.99`` or ``top1-drop=1%``.

Quantize and evaluate on the held-out part of ``--data``. For int8, first search the quantizer's
whole-model settings (:class:`converters.onnx_precision.QuantizerConfig`: weight type, per-channel,
``reduce_range``, calibration method, symmetric activations — one at a time, each from the best so far;
a setting whose model is byte-identical to an earlier round's is reported as such, not measured). Then
rank the nodes by the error they add (:mod:`app.accuracy.diagnose`), keep the worst ones in float (ONNX Runtime's
``nodes_to_exclude``; the fp16 converter's ``node_block_list``), 1, 2, 4, ... more a round, until the
budget holds, accuracy stops improving, or a limit is reached. Every round is recorded with its
figures and latency; the best artifact is kept, and an unmet budget is reported with it.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from app.accuracy.data import DataSet
from app.errors import BadInput, ConversionFailed
from app.accuracy.evaluation import Evaluation, Outputs, compare_outputs, run_all

MAX_ROUNDS = 6
# a quantizer setting replaces the best one only when it closes this much of the cosine gap to 1: on the
# digits CNN per-tensor and per-channel weights differed by 3e-6 (noise), and each setting costs speed
QUANTIZER_MARGIN = 0.05
PATIENCE = 2   # node rounds in a row that may fail to improve before single nodes give way to groups
GROUP_ROUNDS = 4   # rounds of the node stage's groups (a block's convolutions, the first and last layers)
DIAGNOSIS_SAMPLES = 8
# ops that only move or clip data: their "added error" is their input's requantization, and keeping
# them in float changed nothing on the digits CNN (ReLU/MaxPool fold into the Conv's Q/DQ)
DATA_MOVEMENT = {"Reshape", "Transpose", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                 "Flatten", "Identity", "Expand", "Split", "QuantizeLinear", "DequantizeLinear", "Relu", "Clip",
                 "MaxPool", "Pad"}


@dataclass(frozen=True)
class AccuracyBudget:
    """The least accuracy an fp16/int8 artifact must keep, on the evaluation data."""

    metric: str       # cosine | top1-drop
    value: float      # cosine: lowest mean cosine; top1-drop: most points lost, as a fraction

    @staticmethod
    def parse(text: str) -> "AccuracyBudget":
        m = re.fullmatch(r"\s*(cosine|top1-drop)\s*=\s*([0-9.]+)\s*(%?)\s*", text or "")
        if not m:
            raise BadInput(f"--accuracy-budget {text!r}: write cosine=0.99 (lowest mean cosine to the source) or "
                           "top1-drop=1% (most top-1 accuracy points lost, needs labelled --data)")
        value = float(m.group(2)) / (100 if m.group(3) else 1)
        if m.group(1) == "cosine" and not 0 < value <= 1:
            raise BadInput(f"--accuracy-budget {text!r}: a cosine lies in (0, 1]")
        if m.group(1) == "top1-drop" and not m.group(3) and value >= 1:
            value /= 100  # "top1-drop=1" means one point
        return AccuracyBudget(m.group(1), value)

    def __str__(self) -> str:
        return f"cosine={self.value:g}" if self.metric == "cosine" else f"top1-drop={self.value * 100:g}%"

    def check_data(self, data: DataSet | None) -> None:
        if data is None:
            raise BadInput(f"--accuracy-budget {self}: needs --data (real samples to measure accuracy on)")
        if self.metric == "top1-drop" and data.labels is None:
            raise BadInput(f"--accuracy-budget {self}: needs labelled data (class subfolders, a 'label' array, or "
                           "\"label\" in JSONL); use cosine=... for unlabelled data")

    def figure(self, e: Evaluation) -> float:
        if self.metric == "cosine":
            return e.cosine_mean
        return e.top1_drop if e.top1_drop is not None else 1.0

    def met(self, e: Evaluation) -> bool:
        return self.figure(e) >= self.value if self.metric == "cosine" else self.figure(e) <= self.value + 1e-12

    def better(self, a: Evaluation, b: Evaluation, margin: float = 0.0) -> bool:
        """Whether ``a`` is closer to the budget than ``b``; with ``margin``, a cosine must also close that
        fraction of ``b``'s gap to 1 (differences below it are the data's noise, not the quantizer's)."""
        if self.metric == "cosine":
            return self.figure(a) - self.figure(b) > margin * (1 - self.figure(b))
        return self.figure(a) < self.figure(b)

    def describe(self, e: Evaluation) -> str:
        if self.metric == "cosine":
            return f"mean cosine {e.cosine_mean:.5f}"
        return f"top-1 drop {100 * (e.top1_drop or 0):.2f} points ({100 * (e.source_top1 or 0):.1f}% → " \
               f"{100 * (e.artifact_top1 or 0):.1f}%)"


def latency_ms(run, feeds: dict, runs: int = 30) -> float:
    """Median latency of ``run(feeds)`` on one sample (a quick figure for the report, not a benchmark)."""
    for _ in range(3):
        run(feeds)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run(feeds)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def onnx_latency_ms(path: Path, feeds: dict) -> float:
    """:func:`latency_ms` of an ONNX file in an ONNX Runtime session."""
    from app.runtimes.onnxrt import ort_session

    sess = ort_session(Path(path))
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feeds.items() if k in names}
    return latency_ms(lambda _: sess.run(None, feed), feeds)


@dataclass
class _Built:
    """One artifact the loop built: its files (set aside), evaluation, float nodes, quantizer and record."""

    files: list[Path]
    scores: Evaluation
    nodes: list[str]
    config: object              # QuantizerConfig, None for fp16
    record: dict
    round: int


class _Loop:
    """The rounds of :func:`meet_budget`: each builds one artifact, evaluates it (unless its bytes repeat
    an earlier round's), records its figures, and keeps it aside when it is the best so far."""

    def __init__(self, converter, ctx, data: DataSet, reference: Outputs, budget: AccuracyBudget):
        self.converter, self.ctx, self.data, self.reference, self.budget = converter, ctx, data, reference, budget
        self.rounds: list[dict] = []
        self.digests: dict[str, int] = {}
        self.best: _Built | None = None
        self.best_dir = ctx.work_dir / "budget-best"
        self.best_dir.mkdir()
        self.tried: set[str] = set()        # nodes whose round did not improve: never tried again
        self._ranked: tuple[int, list] | None = None
        self._nodes: list | None = None

    def add(self, produced: list[Path], scores: Evaluation | None, nodes: list[str], extra: dict) -> bool:
        """Record a round for ``produced`` (evaluated here when ``scores`` is None); True if it is the new best."""
        digest = files_digest(produced)
        config = self.ctx.quantizer          # what the build used (None: fp16)
        entry = {"round": len(self.rounds), **extra, "float_nodes": len(nodes),
                 "quantizer": config.to_json() if config else None}
        if digest in self.digests:   # the quantizer ignored this choice here: same model, nothing to measure
            same = self.digests[digest]
            self.rounds.append(entry | {"identical_to": same, "met": self.rounds[same]["met"]})
            for p in produced:
                p.unlink(missing_ok=True)
            return False
        self.digests[digest] = len(self.rounds)
        artifact = self.converter.load_artifact(produced[0])
        if scores is None:
            scores = compare_outputs(self.reference, run_all(artifact, self.data, "the artifact"), self.data)
        e, b = scores, self.budget
        self.rounds.append(entry | {b.metric: b.figure(e), "cosine_mean": e.cosine_mean, "top1_drop": e.top1_drop,
                                    "artifact_top1": e.artifact_top1,
                                    "latency_ms": round(latency_ms(artifact.run, self.data.samples[0]), 3),
                                    "met": b.met(e)})
        margin = QUANTIZER_MARGIN if extra.get("stage") == "quantizer" else 0.0
        if self.best is not None and not b.better(e, self.best.scores, margin):
            for p in produced:
                p.unlink(missing_ok=True)
            return False
        if self.best is not None:
            for p in self.best.files:
                p.unlink(missing_ok=True)
        kept = [p.rename(self.best_dir / p.name) for p in produced]
        self.best = _Built(kept, e, list(nodes), config, dict(self.ctx.record), len(self.rounds) - 1)
        return True

    def build(self, nodes: list[str], config, extra: dict) -> bool:
        self.ctx.exclude_nodes, self.ctx.quantizer = tuple(nodes), config
        what = round_label(extra | {"float_nodes": len(nodes)})
        self.ctx.stage(f"accuracy budget {self.budget}: round {len(self.rounds)}, {what}", None)
        try:
            produced = self.converter.convert(self.ctx)
        except ConversionFailed as e:  # a setting this model cannot be built with: the round says why, the loop goes on
            for p in self.ctx.work_dir.glob(f"{self.ctx.artifact_name}*"):  # what the build had written
                p.unlink()
            self.rounds.append({"round": len(self.rounds), **extra, "float_nodes": len(nodes),
                                "quantizer": config.to_json() if config else None, "failed": str(e), "met": False})
            return False
        return self.add(produced, None, nodes, extra)

    def search_quantizer(self) -> None:
        """One choice at a time, each tried from the best so far (ONNX Runtime: weight type, per-channel,
        reduce_range, calibration method, symmetric activations; NNCF: preset, overflow fix, bias
        correction, range estimator); the best on the evaluation data carries on."""
        from converters.onnx_precision import TARGET_ISA

        if self.best.config is None:
            return
        # for another CPU (--target-isa), this one's figures cannot choose its weights
        for name, values in self.best.config.choices(fixed_weights=TARGET_ISA.of(self.ctx.request) is not None):
            for value in values:
                if self.budget.met(self.best.scores):
                    return
                self.build([], self.best.config.with_(**{name: value}), {"stage": "quantizer",
                                                                          "change": f"{name}={value}"})

    def exclude_worst_nodes(self, max_nodes: int) -> str:
        """Keep the nodes that add the most error in float, 1, 2, 4 … more a round; nodes whose round did
        not improve are remembered and never tried again. When single nodes stop helping, the stage's
        groups are tried (:meth:`exclude_groups`). Returns the reason it stopped."""
        step, misses = 1, 0
        while True:
            stop = self._node_limits(max_nodes)
            if stop:
                return stop
            ranking = self._ranking()
            excluded = self.best.nodes
            new = [n.node for n in ranking if n.node not in excluded and n.node not in self.tried
                   and n.op_type not in DATA_MOVEMENT and n.added > 0][:min(step, max_nodes - len(excluded))]
            if not new:
                why = "no node left that adds error" + (" and has not been tried" if self.tried else "")
                break
            step *= 2
            if self._node_round(excluded + new, new, {"stage": "nodes"}):
                misses = 0
            else:
                misses += 1
                if misses >= PATIENCE:
                    why = f"single nodes stopped helping ({PATIENCE} rounds without gain)"
                    break
        groups = self.exclude_groups(max_nodes)
        return why if groups is None else groups if groups == "met" else f"{why}; then groups: {groups}"

    def exclude_groups(self, max_nodes: int) -> str | None:
        """The stage's groups (:func:`app.accuracy.diagnose.node_groups`: the first and last layers, then a
        block's convolutions and residual ops, worst block first), each kept in float on top of the best
        so far while it improves, at most ``GROUP_ROUNDS``; None where the target names no groups."""
        groups = self._groups()
        if not groups:
            return None
        for name, members in groups:
            stop = self._node_limits(max_nodes, group=True)
            if stop:
                return stop
            new = [m for m in members if m not in self.best.nodes]
            if not new or set(new) <= self.tried or len(self.best.nodes) + len(new) > max_nodes:
                continue
            self._node_round(self.best.nodes + new, new, {"stage": "nodes", "group": name})
        return "met" if self.budget.met(self.best.scores) else "every group tried"

    def _node_limits(self, max_nodes: int, group: bool = False) -> str | None:
        if self.budget.met(self.best.scores):
            return "met"
        rounds = [r for r in self.rounds if r.get("stage") == "nodes" and bool(r.get("group")) == group]
        if len(rounds) >= (GROUP_ROUNDS if group else MAX_ROUNDS):
            return f"round limit ({GROUP_ROUNDS} group rounds)" if group else f"round limit ({MAX_ROUNDS} node rounds)"
        if len(self.best.nodes) >= max_nodes:
            return f"float-node limit (--max-float-nodes {max_nodes})"
        return None

    def _node_round(self, nodes: list[str], new: list[str], extra: dict) -> bool:
        """Build with ``nodes`` in float; the round records the new ones as the user knows them (``added``,
        module paths where the exporter kept them) and, when the model came out the same as an earlier
        round's, why (``unchanged``). New nodes that did not improve are remembered in ``tried``."""
        labels = self._labels()
        extra = extra | {"added": [labels.get(n, n) for n in new], "added_nodes": list(new)}
        self.ctx.record.pop("float_nodes_unchanged", None)
        improved = self.build(nodes, self.best.config, extra)
        record = self.rounds[-1]
        if "identical_to" in record:
            why = self.ctx.record.get("float_nodes_unchanged") or {}
            reasons = [f"{labels.get(n, n)}: {why[n]}" for n in new if n in why]
            record["unchanged"] = ("; ".join(reasons) if reasons else
                                   f"the quantizer built the same model as round {record['identical_to']} "
                                   "with these nodes in float")
        if not improved:
            self.tried.update(new)
            record["remembered"] = True
        return improved

    def _ranking(self) -> list:
        """The best build's nodes ranked by the error they add (the target's own ranking, else the ONNX
        diagnosis), computed once per best build."""
        from app.accuracy.diagnose import rank_nodes

        if self._ranked is not None and self._ranked[0] == self.best.round:
            return self._ranked[1]
        self.ctx.stage(f"accuracy budget {self.budget}: find the nodes that add the most error", None)
        samples = self.data.samples[:DIAGNOSIS_SAMPLES]
        # a target that ranks its own graph (ExecuTorch: the PT2E graphs), else the ONNX diagnosis
        ranking = self.converter.rank_nodes(self.ctx, samples, self.best.config, self.best.nodes)
        if ranking is None:
            ranking = rank_nodes(self.ctx.reference_onnx, self.best.files[0], samples)
        self._ranked = (self.best.round, ranking)
        return ranking

    def _graph(self) -> list:
        """The nodes the stage names, with module paths (:class:`app.accuracy.diagnose.GraphNode`): the
        target's own (``node_graph``), else those of the fp32 ONNX the quantizer read."""
        from app.accuracy.diagnose import graph_nodes

        if self._nodes is None:
            own = getattr(self.converter, "node_graph", None)
            nodes = own(self.ctx) if own else None
            if nodes is None and self.ctx.reference_onnx is not None:
                try:
                    nodes = graph_nodes(self.ctx.reference_onnx)
                except Exception:   # noqa: BLE001 - names only: the stage works without them
                    nodes = []
            self._nodes = nodes or []
        return self._nodes

    def _labels(self) -> dict[str, str]:
        return {n.name: n.label for n in self._graph()}

    def _groups(self) -> list[tuple[str, list[str]]]:
        from app.accuracy.diagnose import node_groups

        return node_groups(self._graph(), self._ranking())

    def nncf_accuracy_control(self) -> str:
        """OpenVINO: NNCF's ``quantize_with_accuracy_control`` from the best settings, as the peer of the node
        stage (it returns the layers it ranks worst to float); kept only if it beats the loop's best."""
        if self.budget.met(self.best.scores):
            return "met"
        b, data, reference = self.budget, self.data, self.reference

        def metric(run, indices: list[int]) -> float:
            part = data.subset(indices)
            e = compare_outputs([reference[i] for i in indices], [run(feeds) for feeds in part.samples], part)
            return e.cosine_mean if b.metric == "cosine" else (e.artifact_top1 or 0.0)

        self.ctx.accuracy_control = (data.samples, metric, 1 - b.value if b.metric == "cosine" else b.value)
        try:
            self.build([], self.best.config, {"stage": "nncf-accuracy-control"})
        finally:
            self.ctx.accuracy_control = None
        return "met" if b.met(self.best.scores) else "NNCF's accuracy control did not reach it"

    def quantizer_rounds(self) -> list[dict]:
        return [r for r in self.rounds if r.get("stage") == "quantizer"]


def round_label(r: dict) -> str:
    """What a round tried, in words: ``quantizer: reduce_range=True``, ``nodes: +2 in float (4)``."""
    if r.get("stage") == "quantizer":
        return f"quantizer: {r.get('change')}"
    if r.get("stage") == "nodes" and r.get("group"):
        return f"nodes: group {r['group']} +{len(r.get('added') or [])} ({r['float_nodes']})"
    if r.get("stage") == "nodes":
        return f"nodes: +{len(r.get('added') or [])} in float ({r['float_nodes']})"
    if r.get("stage") == "nncf-accuracy-control":
        return "NNCF quantize_with_accuracy_control"
    return "first build"


def budget_rounds_text(report: dict) -> list[str]:
    """One line a round: what it tried and its figures (or the earlier round it repeats), the kept one marked."""
    lines = []
    for r in report.get("rounds") or []:
        head = f"round {r['round']:>2} {round_label(r):<44}"
        if "identical_to" in r:
            why = f": {r['unchanged']}" if r.get("unchanged") else ""
            lines.append(f"{head} same model as round {r['identical_to']} (not measured){why}{_float_names(r)}")
            continue
        if "failed" in r:
            lines.append(f"{head} could not be built: {r['failed']}")
            continue
        drop = f" · top-1 drop {100 * r['top1_drop']:.2f} pts" if r.get("top1_drop") is not None else ""
        lines.append(f"{head} cosine {r['cosine_mean']:.6f}{drop} · {r['latency_ms']:.3f} ms"
                     f"{' · meets the budget' if r['met'] else ''}{'  ← kept' if r.get('kept') else ''}"
                     f"{_float_names(r)}")
    return lines


def _float_names(r: dict) -> str:
    """A node round's new float nodes as the user knows them (module paths), the first few."""
    names = r.get("added") if r.get("stage") == "nodes" else None
    if not names or r.get("group"):
        return ""
    return f" · {', '.join(names[:3])}{f' … (+{len(names) - 3})' if len(names) > 3 else ''}"


def files_digest(files: list[Path]) -> str:
    """One SHA-256 over an artifact's files (model and external data), to spot byte-identical rebuilds."""
    import hashlib

    h = hashlib.sha256()
    for p in files:
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def meet_budget(converter, ctx, produced: list[Path], scores: Evaluation, data: DataSet, reference: Outputs,
                budget: AccuracyBudget, max_nodes: int) -> tuple[list[Path], Evaluation, dict]:
    """Search the quantizer's settings, then keep nodes in float, until ``budget`` holds; returns the
    best files, their evaluation, and the report (every round, the chosen quantizer and float nodes,
    latency) for the manifest."""
    loop = _Loop(converter, ctx, data, reference, budget)
    loop.add(produced, scores, [], {"stage": "first"})
    loop.search_quantizer()
    stopped = loop.exclude_worst_nodes(max_nodes)
    if converter.name == "openvino" and stopped != "met":   # NNCF's own loop as the node stage's peer
        stopped = f"{stopped}; NNCF's accuracy control: {loop.nncf_accuracy_control()}"
    best = loop.best
    loop.rounds[best.round]["kept"] = True
    files = [p.rename(ctx.work_dir / p.name) for p in best.files]
    loop.best_dir.rmdir()
    ctx.record.clear()
    ctx.record.update(best.record)
    ctx.exclude_nodes, ctx.quantizer = tuple(best.nodes), best.config
    ctx.warnings[:] = dict.fromkeys(ctx.warnings)    # a rebuild repeats its build's warnings: once each
    reference_onnx = ctx.reference_onnx
    fp32_ms = onnx_latency_ms(reference_onnx, data.samples[0]) if reference_onnx else None
    best_ms = loop.rounds[best.round]["latency_ms"]
    searched = loop.quantizer_rounds()
    ours = "the app's loop" + (" (NNCF quantize)" if converter.name == "openvino" else "")
    engine = {"nncf-accuracy-control": "NNCF quantize_with_accuracy_control"}.get(loop.rounds[best.round]["stage"], ours)
    report = {"budget": str(budget), "met": budget.met(best.scores), "float_nodes": best.nodes, "engine": engine,
              "quantizer": best.config.to_json() if best.config else None,
              "quantizer_searched": bool(searched), "best_round": best.round, "stopped": stopped,
              "rounds": loop.rounds, "max_float_nodes": max_nodes, "latency_ms": best_ms,
              "fp32_onnx_latency_ms": round(fp32_ms, 3) if fp32_ms else None,
              "speedup_vs_fp32_onnx": round(fp32_ms / best_ms, 3) if fp32_ms else None}
    ctx.record["float_nodes"] = best.nodes
    return files, best.scores, report
