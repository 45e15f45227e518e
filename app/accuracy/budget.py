"""Accuracy-aware fp16/int8: ``--accuracy-budget cosine=0.99`` or ``top1-drop=1%``.

Quantize, evaluate on the held-out part of ``--data``, rank the nodes by the error they add
(:mod:`app.accuracy.diagnose`), keep the worst ones in float (ONNX Runtime's ``nodes_to_exclude``; the fp16
converter's ``node_block_list``), and repeat — 1, 2, 4, ... more nodes a round — until the budget holds
or the limit on float nodes is reached. Every round is recorded with its figures and latency; the
best artifact is kept, and an unmet budget is reported with it.
"""

from __future__ import annotations

import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from app.accuracy.data import DataSet
from app.accuracy.diagnose import rank_nodes
from app.accuracy.evaluation import Evaluation, Outputs, compare_outputs, run_all
from app.errors import BadInput
from app.runtimes.onnxrt import ort_session

MAX_ROUNDS = 6
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

    def better(self, a: Evaluation, b: Evaluation) -> bool:
        """Whether ``a`` is closer to the budget than ``b``."""
        return self.figure(a) > self.figure(b) if self.metric == "cosine" else self.figure(a) < self.figure(b)

    def describe(self, e: Evaluation) -> str:
        if self.metric == "cosine":
            return f"mean cosine {e.cosine_mean:.5f}"
        return f"top-1 drop {100 * (e.top1_drop or 0):.2f} points ({100 * (e.source_top1 or 0):.1f}% → " \
               f"{100 * (e.artifact_top1 or 0):.1f}%)"


def latency_ms(path: Path, feeds: dict, runs: int = 30) -> float:
    """Median ONNX Runtime latency of one sample (a quick figure for the report, not a benchmark)."""
    sess = ort_session(Path(path))
    names = {i.name for i in sess.get_inputs()}
    feed = {k: v for k, v in feeds.items() if k in names}
    for _ in range(3):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def meet_budget(converter, ctx, produced: list[Path], scores: Evaluation, data: DataSet, reference: Outputs,
                budget: AccuracyBudget, max_nodes: int) -> tuple[list[Path], Evaluation, dict]:
    """Rebuild with more nodes in float until ``budget`` holds; returns the best files, their
    evaluation, and the report (rounds, float nodes, latency) for the manifest."""
    def measured(files: list[Path], e: Evaluation, nodes: list[str]) -> dict:
        return {"float_nodes": len(nodes), budget.metric: budget.figure(e), "cosine_mean": e.cosine_mean,
                "top1_drop": e.top1_drop, "latency_ms": round(latency_ms(files[0], data.samples[0]), 3),
                "met": budget.met(e)}

    rounds = [measured(produced, scores, [])]
    best = (produced, scores, [])
    excluded: list[str] = []
    step = 1
    reference_onnx = ctx.reference_onnx
    while not budget.met(best[1]) and len(rounds) <= MAX_ROUNDS and len(excluded) < max_nodes:
        ctx.stage(f"accuracy budget {budget}: find the nodes that add the most error", None)
        ranking = rank_nodes(reference_onnx, produced[0], data.samples[:DIAGNOSIS_SAMPLES])
        new = [n.node for n in ranking if n.node not in excluded and n.op_type not in DATA_MOVEMENT
               and n.added > 0][:min(step, max_nodes - len(excluded))]
        if not new:
            break
        excluded += new
        step *= 2
        aside = ctx.work_dir / f"round-{len(rounds) - 1}"
        aside.mkdir()
        kept = [p.rename(aside / p.name) for p in produced]
        if best[0] is produced:
            best = (kept, best[1], best[2])
        else:
            for p in kept:
                p.unlink()
        ctx.exclude_nodes = tuple(excluded)
        ctx.stage(f"accuracy budget {budget}: rebuild with {len(excluded)} nodes in float", None)
        produced = converter.convert(ctx)
        scores = compare_outputs(reference, run_all(converter.load_artifact(produced[0]), data, "the artifact"), data)
        rounds.append(measured(produced, scores, excluded) | {"added": new})
        if budget.better(scores, best[1]) or budget.met(scores):
            for p in best[0]:
                p.unlink(missing_ok=True)
            best = (produced, scores, list(excluded))
    files, scores, nodes = best
    if files[0].parent != ctx.work_dir:
        for p in produced:
            p.unlink(missing_ok=True)
        files = [p.rename(ctx.work_dir / p.name) for p in files]
    fp32_ms = latency_ms(reference_onnx, data.samples[0]) if reference_onnx else None
    best_round = next(r for r in rounds if r["float_nodes"] == len(nodes))
    report = {"budget": str(budget), "met": budget.met(scores), "float_nodes": nodes, "rounds": rounds,
              "max_float_nodes": max_nodes, "latency_ms": best_round["latency_ms"],
              "fp32_onnx_latency_ms": round(fp32_ms, 3) if fp32_ms else None,
              "speedup_vs_fp32_onnx": round(fp32_ms / best_round["latency_ms"], 3) if fp32_ms else None}
    ctx.record["float_nodes"] = nodes
    return files, scores, report
