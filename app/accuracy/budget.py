"""Accuracy-aware fp16/int8: ``--accuracy-budget cosine=0.99``, ``top1-drop=1%``,
``confident-agreement=0.99`` or ``kl=0.01``, or several that must all hold
(``confident-agreement=0.99,cosine=0.99``).

Quantize and evaluate on the held-out part of ``--data``. For int8, first search the quantizer's
whole-model settings (:class:`converters.onnx_precision.QuantizerConfig`: weight type, per-channel,
``reduce_range``, calibration method, symmetric activations — one at a time, each from the best so far;
a setting whose model is byte-identical to an earlier round's is reported as such, not measured). Then
rank the nodes by the error they add (:mod:`app.accuracy.diagnose`), keep the worst ones in float (ONNX Runtime's
``nodes_to_exclude``; the fp16 converter's ``node_block_list``), 1, 2, 4, ... more a round, until the
budget holds, accuracy stops improving, or a limit is reached. Every round is recorded with its
figures and its latency, measured as ``bench`` measures (warm-up, repeated calls, the median), beside the
same runtime's fp32, timed interleaved with each round (:func:`measure_pair`). Speed is part of the budget: a round slower than that fp32,
or below ``--min-speedup`` (default 1.2×), is never kept; of the accuracy-vs-latency Pareto set of the
rounds, the fastest that meets the budget and the floor is returned. If none does, the report says so
with the best of each; if no round reaches the floor, no int8 artifact slower than fp32 is returned at
all (:func:`app.pipeline.convert` writes nothing unless ``--keep-failed``). Weight types whose kernels
are slow on this CPU (ONNX Runtime's uint8 weights on a VNNI/AMX CPU) are tried only when the floor
allows them, and a round that is not tried says why.
"""

from __future__ import annotations

import math
import re
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path

from app.accuracy.data import DataSet
from app.errors import BadInput, ConversionFailed
from app.accuracy.evaluation import Evaluation, Outputs, compare_outputs, run_all
from converters.options import MIN_SPEEDUP

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
class BudgetPart:
    """One figure of an accuracy budget, on the evaluation data: ``cosine=0.99`` (lowest mean cosine),
    ``top1-drop=1%`` (most top-1 points lost, labelled data), ``confident-agreement=0.99`` (lowest top-1
    agreement on the samples the source calls clearly, see :data:`app.accuracy.evaluation.CONFIDENT_MARGIN`;
    a classifier output) or ``kl=0.01`` (highest mean KL divergence of the softmax, source ‖ artifact, in
    nats; a classifier output)."""

    metric: str       # cosine | top1-drop | confident-agreement | kl
    value: float      # cosine, confident-agreement: lowest; top1-drop: most points lost, as a fraction; kl: highest

    METRICS = ("cosine", "top1-drop", "confident-agreement", "kl")
    HIGHER_IS_BETTER = ("cosine", "confident-agreement")

    @staticmethod
    def parse(text: str, named: str | None = None) -> "BudgetPart":
        """One ``metric=value``; ``named``: how a refusal names it (default: ``repr(text)``)."""
        named = named or repr(text)
        m = re.fullmatch(r"\s*(cosine|top1-drop|confident-agreement|kl)\s*=\s*((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)"
                         r"\s*(%?)\s*", text or "")
        if not m:
            raise BadInput(f"--accuracy-budget {named}: write cosine=0.99 (lowest mean cosine to the source), "
                           "top1-drop=1% (most top-1 points lost, needs labelled --data), confident-agreement=0.99 "
                           "(lowest top-1 agreement on the source's confident calls) or kl=0.01 (highest mean "
                           "softmax KL divergence), or several joined by commas, all of which must hold")
        metric, percent = m.group(1), bool(m.group(3))
        value = float(m.group(2)) / (100 if percent else 1)
        if metric in BudgetPart.HIGHER_IS_BETTER and not 0 < value <= 1:
            raise BadInput(f"--accuracy-budget {named}: a {'cosine' if metric == 'cosine' else 'share'} lies in (0, 1]"
                           f"{' (or 0–100%)' if metric != 'cosine' else ''}")
        if metric == "kl" and (percent or value <= 0):
            raise BadInput(f"--accuracy-budget {named}: a KL divergence is a positive number of nats, e.g. kl=0.01")
        if metric == "top1-drop" and not percent and value >= 1:
            value /= 100  # "top1-drop=1" means one point
        return BudgetPart(metric, value)

    def __str__(self) -> str:
        # 12 digits, not :g's 6: cosine=0.99999999 must not come back as cosine=1 (pack re-parses it)
        return f"top1-drop={self.value * 100:.12g}%" if self.metric == "top1-drop" else f"{self.metric}={self.value:.12g}"

    def check_data(self, data: DataSet) -> None:
        if self.metric == "top1-drop" and data.labels is None:
            raise BadInput(f"--accuracy-budget {self}: needs labelled data (class subfolders, a 'label' array, or "
                           "\"label\" in JSONL); use cosine=... for unlabelled data")

    def check_scores(self, e: Evaluation) -> None:
        """Refuse a figure that cannot be measured on these outputs and data (see :meth:`AccuracyBudget.check_scores`)."""
        if self.metric in ("confident-agreement", "kl") and e.confident_samples is None:
            raise BadInput(f"--accuracy-budget {self}: needs a classifier output ([batch, classes] float logits) "
                           "and this model has none; use cosine=... instead")
        if self.metric == "confident-agreement" and not e.confident_samples:
            raise BadInput(f"--accuracy-budget {self}: none of the {e.samples} evaluation samples is a confident call "
                           f"(the source's top-1 probability beating its top-2 by ≥ {e.confident_margin:g}), so "
                           "confident agreement cannot be measured; give more or real --data, or use cosine=... or kl=...")
        if self.metric == "kl" and not e.kl_samples:
            raise BadInput(f"--accuracy-budget {self}: the source's logits give no softmax on any evaluation sample "
                           "(NaN or infinite); use cosine=... instead")

    def figure(self, e: Evaluation) -> float:
        """The part's figure on ``e``; where it cannot be measured, one that never meets it."""
        if self.metric == "cosine":
            return e.cosine_mean
        if self.metric == "confident-agreement":
            return e.confident_agreement if e.confident_agreement is not None else 0.0
        if self.metric == "kl":
            return e.kl_mean if e.kl_mean is not None else float("inf")
        return e.top1_drop if e.top1_drop is not None else 1.0

    def met(self, e: Evaluation) -> bool:
        if self.metric in self.HIGHER_IS_BETTER:
            return self.figure(e) >= self.value - 1e-12
        return self.figure(e) <= self.value + 1e-12

    def shortfall(self, e: Evaluation) -> float:
        """How far ``e`` misses the part, in units of the part's own distance from the ideal (cosine and
        confident agreement: ``(value - figure) / (1 - value)``; KL and top-1 drop: ``(figure - value) /
        value``), 0 where it is met — so that parts of different scales add up. The distance is at least
        ``SHORTFALL_EPS`` (``cosine=1``, ``top1-drop=0%``), the result at most ``SHORTFALL_CAP`` (no KL)."""
        f = self.figure(e)
        if self.metric in self.HIGHER_IS_BETTER:
            miss, scale = self.value - f, 1 - self.value
        else:
            miss, scale = f - self.value, self.value
        return min(max(0.0, miss) / max(scale, SHORTFALL_EPS), SHORTFALL_CAP)

    def better(self, a: Evaluation, b: Evaluation, margin: float = 0.0) -> bool:
        """Whether ``a`` is closer to the part than ``b``; with ``margin``, ``a`` must also close that
        fraction of ``b``'s gap to the ideal (cosine and confident agreement: 1; KL: 0) — differences below
        it are the data's noise, not the quantizer's. Confident agreement moves in steps of one sample: on a
        tie, the higher mean cosine decides (same margin). The top-1 drop compares plainly."""
        fa, fb = self.figure(a), self.figure(b)
        if self.metric == "cosine":
            return fa - fb > margin * (1 - fb)
        if self.metric == "confident-agreement":
            if fa != fb:
                return fa - fb > margin * (1 - fb)
            return a.cosine_mean - b.cosine_mean > margin * (1 - b.cosine_mean)
        if self.metric == "kl":
            return fb - fa > margin * fb if fb != float("inf") else fa < fb
        return fa < fb

    def describe(self, e: Evaluation) -> str:
        if self.metric == "cosine":
            return f"mean cosine {e.cosine_mean:.5f}"
        if self.metric == "confident-agreement":
            return e.confident_text() or "no confident agreement (no classifier output)"
        if self.metric == "kl":
            if e.kl_mean is None:
                return "no KL divergence (no classifier output)"
            return f"mean KL {e.kl_mean:.3g} (max {e.kl_max:.3g}) on {e.kl_samples} samples"
        return f"top-1 drop {100 * (e.top1_drop or 0):.2f} points ({100 * (e.source_top1 or 0):.1f}% → " \
               f"{100 * (e.artifact_top1 or 0):.1f}%)"

    def control_metric(self, e: Evaluation) -> float:
        """The figure NNCF's accuracy control maximises (higher is better) on a part of the data."""
        if self.metric == "cosine":
            return e.cosine_mean
        if self.metric == "confident-agreement":   # a part may hold no confident sample: plain agreement then
            return e.confident_agreement if e.confident_agreement is not None else (e.top1_agreement or 0.0)
        if self.metric == "kl":
            return -min(e.kl_mean if e.kl_mean is not None else 1e6, 1e6)
        return e.artifact_top1 or 0.0

    def control_max_drop(self) -> float:
        """The most :meth:`control_metric` may drop from the source's (its own figure: 1, 1, 0, top-1)."""
        return self.value if self.metric in ("top1-drop", "kl") else 1 - self.value


# a composite budget's shortfalls (BudgetPart.shortfall): the least distance from the ideal a part is
# measured in (cosine=1 and top1-drop=0% have none), and the most one part may count (a missing KL is infinite)
SHORTFALL_EPS, SHORTFALL_CAP = 1e-6, 1e6


@dataclass(frozen=True)
class AccuracyBudget:
    """The least accuracy an fp16/int8 artifact must keep, on the evaluation data: one :class:`BudgetPart`
    or several that must all hold (``confident-agreement=0.99,cosine=0.99``). Where one number is needed
    (a round's rank on the accuracy axis, NNCF's accuracy control) the first part's is used."""

    parts: tuple[BudgetPart, ...]

    METRICS = BudgetPart.METRICS
    HIGHER_IS_BETTER = BudgetPart.HIGHER_IS_BETTER

    @staticmethod
    def parse(text: str) -> "AccuracyBudget":
        """``metric=value``, or several joined by ``,`` or ``;`` (spaces around them allowed); a metric given
        twice, or an empty part, is refused in one line naming it."""
        pieces = re.split(r"\s*[,;]\s*", (text or "").strip())
        if len(pieces) == 1:
            return AccuracyBudget((BudgetPart.parse(text),))
        parts: list[BudgetPart] = []
        for piece in pieces:
            if not piece:
                raise BadInput(f"--accuracy-budget {text!r}: an empty part; write e.g. "
                               "confident-agreement=0.99,cosine=0.99")
            part = BudgetPart.parse(piece, f"{text!r}: part {piece!r}")
            if any(p.metric == part.metric for p in parts):
                raise BadInput(f"--accuracy-budget {text!r}: {part.metric} is given twice; give each figure once")
            parts.append(part)
        return AccuracyBudget(tuple(parts))

    def __str__(self) -> str:
        return ",".join(str(p) for p in self.parts)

    @property
    def first(self) -> BudgetPart:
        """The part that stands for the budget where one figure is needed."""
        return self.parts[0]

    @property
    def metric(self) -> str:
        """The first part's metric."""
        return self.first.metric

    @property
    def value(self) -> float:
        """The first part's value."""
        return self.first.value

    def check_data(self, data: DataSet | None) -> None:
        if data is None:
            raise BadInput(f"--accuracy-budget {self}: needs --data (real samples to measure accuracy on)")
        for p in self.parts:
            p.check_data(data)

    def check_scores(self, e: Evaluation) -> None:
        """Refuse a budget a figure of which cannot be measured on these outputs and data (once the first
        artifact is evaluated): confident agreement or KL without a classifier output, or with no
        sample the source calls clearly — rather than a loop that chases a figure that does not exist."""
        for p in self.parts:
            p.check_scores(e)

    def figure(self, e: Evaluation) -> float:
        """The first part's figure on ``e`` (:meth:`figures` has every part's)."""
        return self.first.figure(e)

    def figures(self, e: Evaluation) -> dict[str, float]:
        """Every part's figure on ``e``, by metric, in the budget's order."""
        return {p.metric: p.figure(e) for p in self.parts}

    def parts_met(self, e: Evaluation) -> dict[str, bool]:
        """Whether each part holds on ``e``, by metric."""
        return {p.metric: p.met(e) for p in self.parts}

    def met(self, e: Evaluation) -> bool:
        """Every part holds."""
        return all(p.met(e) for p in self.parts)

    def better(self, a: Evaluation, b: Evaluation, margin: float = 0.0) -> bool:
        """Whether ``a`` is closer to the budget than ``b`` (one part: :meth:`BudgetPart.better`). Several:
        first the number of parts met; then the sum of the parts' shortfalls (:meth:`BudgetPart.shortfall`),
        where ``a`` must close ``margin`` of ``b``'s (less is the data's noise); then, on a tie, the first
        part's :meth:`BudgetPart.better` with the same margin."""
        if len(self.parts) == 1:
            return self.first.better(a, b, margin)
        na, nb = sum(p.met(a) for p in self.parts), sum(p.met(b) for p in self.parts)
        if na != nb:
            return na > nb
        sa, sb = (sum(p.shortfall(e) for p in self.parts) for e in (a, b))
        if sa < sb * (1 - margin):
            return True
        if sb < sa * (1 - margin):
            return False
        return self.first.better(a, b, margin)

    def describe(self, e: Evaluation) -> str:
        return "; ".join(p.describe(e) for p in self.parts)

    def control_metric(self, e: Evaluation) -> float:
        """The figure NNCF's accuracy control maximises: the first part's (it follows one metric; the
        app's loop still checks every part of what it returns)."""
        return self.first.control_metric(e)

    def control_max_drop(self) -> float:
        """The most :meth:`control_metric` may drop from the source's (the first part's)."""
        return self.first.control_max_drop()


# a round's timing, as `bench` measures (app.bench.harness, a layer above this one): untimed warm-up calls
# (at least WARMUP_CALLS and WARMUP_SECONDS), then timed calls until both TIMED_CALLS and TIMED_SECONDS are
# reached, or TIMED_CAP_SECONDS (once at least MIN_TIMED_CALLS were timed); the figure is their median
WARMUP_CALLS, WARMUP_SECONDS = 5, 0.1
TIMED_CALLS, TIMED_SECONDS, TIMED_CAP_SECONDS, MIN_TIMED_CALLS = 40, 0.5, 1.5, 7
MIN_SPEEDUP_DEFAULT = MIN_SPEEDUP.default   # --min-speedup
# ONNX Runtime has no VNNI/AMX kernel for u8×u8 (uint8 weights): on such a CPU they ran ~10× slower than
# int8 weights (EfficientNet-Lite0: 3.5 ms → 34 ms, issue 32), so a uint8 round is predicted at a tenth of
# the speed-up of the int8 one it would replace, and tried only when that clears the floor
U8U8_ON_VNNI = 0.1
# without VNNI (AVX2-only AMD EPYC, Zen 3) its u8×u8 convolutions are slow too: EfficientNet-Lite0's uint8
# weights ran at 0.20–0.31× its fp32, 7-bit int8 weights at 1.3–1.5× (timed beside fp32, under load)
U8U8_ON_AVX2 = 0.2
# a round below the speed floor and this many times slower than another is a slow kernel, not timing noise:
# it is not the base the search goes on from (_Loop.far_slower); timed beside fp32, EfficientNet-Lite0's
# ONNX rounds of one kind of kernel stayed within ~1.3× of each other, a slow kernel was 2.6× slower
FAR_SLOWER = 1.5


def measure_latency(run, feeds: dict) -> dict:
    """``run(feeds)`` timed as ``bench`` times a runner: warm-up, repeated timed calls, the median.
    Returns ``{"p50_ms", "runs", "capped"}`` (capped: the timing stopped at its time cap)."""
    perf = time.perf_counter
    started, n = perf(), 0
    while (n < WARMUP_CALLS or perf() - started < WARMUP_SECONDS) and perf() - started < TIMED_CAP_SECONDS:
        run(feeds)
        n += 1
    times: list[float] = []
    started, capped = perf(), False
    while True:
        elapsed = perf() - started
        if len(times) >= TIMED_CALLS and elapsed >= TIMED_SECONDS:
            break
        if elapsed >= TIMED_CAP_SECONDS and len(times) >= MIN_TIMED_CALLS:
            capped = True
            break
        t = perf()
        run(feeds)
        times.append(perf() - t)
    return {"p50_ms": statistics.median(times) * 1e3, "runs": len(times), "capped": capped}


def latency_ms(run, feeds: dict) -> float:
    """The median latency of ``run(feeds)`` (:func:`measure_latency`), in milliseconds."""
    return measure_latency(run, feeds)["p50_ms"]


PAIR_BLOCK, PAIR_BLOCK_SECONDS = 5, 0.25   # one side's calls in a row before the other's (measure_pair): ≥ 5 and ≥ 0.25 s


def measure_pair(reference, run, feeds: dict) -> tuple[dict, dict]:
    """``reference(feeds)`` and ``run(feeds)`` timed as :func:`measure_latency` times one, but interleaved, in
    blocks of at least :data:`PAIR_BLOCK` calls and :data:`PAIR_BLOCK_SECONDS`, two blocks of each at least:
    the load of a shared machine drifts over seconds and falls on both alike, so their ratio holds where
    medians timed apart do not (timed apart, one fp32 ONNX measured 3.9 ms on a quiet Xeon and 15.6 ms while
    tests ran beside it). Long blocks, not alternate calls: a runtime's thread pool spins for a while after
    each call, and on 2 cores the other session's calls ran beside it — EfficientNet-Lite0's fp32 ONNX
    measured 8.1 ms in blocks of 5 calls, 5.8 ms in blocks of 0.1 s, 3.8–3.9 ms in blocks of 0.25 or 0.5 s and
    3.8 ms alone, and its int8 2.1×, 2.15×, 1.58× and 1.62× its speed (1.61× alone) — one quiet run on an Intel
    Xeon with AVX-512 VNNI and AMX, 2 cores; under other load the blocks of 0.25 s kept the ratio, not the times. Warm-up and call counts are
    :func:`measure_latency`'s; the time limits grow with the blocks. Returns both timings
    (``{"p50_ms", "runs", "capped"}``)."""
    perf = time.perf_counter
    started, n, slowest = perf(), 0, 0.0
    while (n < WARMUP_CALLS or perf() - started < WARMUP_SECONDS) and perf() - started < TIMED_CAP_SECONDS:
        for f in (reference, run):
            t = perf()
            f(feeds)
            slowest = max(slowest, perf() - t) if n else slowest     # the first calls may be one-off slow
        n += 1
    block = max(PAIR_BLOCK, math.ceil(PAIR_BLOCK_SECONDS / max(slowest, 1e-9)))
    least, cap = max(TIMED_SECONDS, 4 * PAIR_BLOCK_SECONDS), max(TIMED_CAP_SECONDS, 8 * PAIR_BLOCK_SECONDS)
    times: tuple[list[float], list[float]] = ([], [])
    started, capped, flip = perf(), False, False
    while True:
        elapsed, done = perf() - started, min(len(times[0]), len(times[1]))
        if done >= TIMED_CALLS and elapsed >= least:
            break
        if elapsed >= cap and done >= MIN_TIMED_CALLS:
            capped = True
            break
        order = list(zip(times, (reference, run)))
        flip = not flip
        for side, f in order if flip else order[::-1]:     # A B B A A B …: a steady drift falls on both alike
            for _ in range(block):
                t = perf()
                f(feeds)
                side.append(perf() - t)
    return tuple({"p50_ms": statistics.median(t) * 1e3, "runs": len(t), "capped": capped} for t in times)


def fp32_runner(converter, ctx):
    """The same runtime's fp32 of the model, loaded to be timed beside every round (:func:`measure_pair`):
    ONNX Runtime's the fp32 (pre-processed) ONNX the quantizer started from; OpenVINO's and ExecuTorch's an
    fp32 build of the same converter (OpenVINO compiles it with ``INFERENCE_PRECISION_HINT`` f32) in a folder
    of its own (``work_dir/budget-fp32``, removed with the loop's work). Returns (its ``run`` or None, what
    it is or why it could not be built)."""
    runtime = converter.fp32_runtime or f"{converter.name} fp32"
    if converter.name == "onnx":
        if ctx.reference_onnx is None:
            return None, "the fp32 ONNX was not kept"
        return converter.load_artifact(ctx.reference_onnx).run, runtime
    folder = ctx.work_dir / "budget-fp32"
    folder.mkdir(exist_ok=True)
    request = replace(ctx.request, precision="fp32")
    sub = replace(ctx, request=request, work_dir=folder, artifact_name=converter.artifact_name("reference", "fp32"),
                  warnings=[], record={}, exclude_nodes=(), quantizer=None, accuracy_control=None,
                  keep_reference=False, reference_onnx=None)
    ctx.stage(f"accuracy budget: build the fp32 {runtime.split(',')[0]} (the speed-up's reference)", None)
    try:
        produced = converter.convert(sub)
        return converter.load_artifact(produced[0]).run, runtime
    except (ConversionFailed, BadInput) as e:
        shutil.rmtree(folder, ignore_errors=True)
        return None, f"its fp32 build failed ({str(e).splitlines()[0][:200]})"


def _floor(min_speedup: float) -> float:
    """The speed-up a kept round needs: ``--min-speedup``, and never below 1 (slower than fp32)."""
    return max(1.0, float(min_speedup))


def select_rounds(rounds: list[dict], scores: dict, budget: "AccuracyBudget", min_speedup: float) -> dict:
    """Which round the loop returns, from its measured rounds (those with ``latency_ms``; ``scores``: their
    :class:`Evaluation` by round number) and the floor.

    The Pareto set: the rounds no other round beats on both speed (the speed-up over the fp32 timed beside
    each, where every round has one; else latency) and the budget's figure. Returned:
    the fastest round that meets the budget at a speed-up of at least the floor (``max(1, min_speedup)``;
    a round of unknown speed-up, where fp32 could not be timed, passes it). If none does, the most
    accurate round at or above the floor (``met`` False); if no round reaches the floor, the most accurate
    of all, with ``too_slow`` True (not to be returned as is). Returns ``{"chosen", "met", "too_slow",
    "pareto", "fastest", "most_accurate", "most_accurate_fast", "why": {round: text}, "reason"}``."""
    floor = _floor(min_speedup)
    measured = [r for r in rounds if r.get("latency_ms") is not None and r["round"] in scores]
    # how slow a round is: 1 / its speed-up over the fp32 timed beside it where every round has one (the
    # figure the floor judges; a round's own milliseconds move with the machine's load from round to round:
    # on a busy AVX2 EPYC one round ran 5.9 ms at 1.28x, another 51.7 ms at 0.31x of fp32 timed beside
    # each, and a round chosen by speed-up was off a Pareto set drawn on milliseconds), else its milliseconds
    relative = bool(measured) and all(r.get("speedup") for r in measured)

    def slowness(r: dict) -> float:
        return 1.0 / r["speedup"] if relative else r["latency_ms"]

    def better(a: dict, b: dict) -> bool:
        return budget.better(scores[a["round"]], scores[b["round"]])

    def fast(r: dict) -> bool:
        return r.get("speedup") is None or r["speedup"] >= floor - 1e-12

    def dominates(a: dict, b: dict) -> bool:
        return slowness(a) <= slowness(b) and not better(b, a) and (slowness(a) < slowness(b) or better(a, b))

    pareto = sorted((r for r in measured if not any(dominates(o, r) for o in measured if o is not r)),
                    key=lambda r: (slowness(r), r["round"]))

    def most_accurate(items: list[dict]) -> dict | None:
        best = None
        for r in sorted(items, key=lambda r: (slowness(r), r["round"])):
            if best is None or better(r, best):
                best = r
        return best

    meeting = [r for r in measured if r.get("met") and fast(r)]
    fastest = min(measured, key=lambda r: (slowness(r), r["round"]), default=None)
    top, top_fast = most_accurate(measured), most_accurate([r for r in measured if fast(r)])
    too_slow = bool(measured) and top_fast is None
    if meeting:
        chosen = min(meeting, key=lambda r: (slowness(r), r["round"]))
        kept_because = "the fastest round that meets the budget" + (f" at ≥ {floor:g}× fp32" if chosen.get("speedup")
                                                                    is not None else "")
        reason = ""
    elif top_fast is not None:
        chosen = top_fast
        kept_because = f"no round meets the budget at ≥ {floor:g}× fp32: the most accurate round that reaches the floor"
        reason = (f"no round meets the budget at ≥ {floor:g}× fp32" +
                  ("" if not any(r.get("met") for r in measured) else
                   f" (round {', '.join(str(r['round']) for r in measured if r.get('met'))} meets it below the floor)"))
    else:
        chosen = top
        kept_because = "no round reaches the floor: the most accurate round, written only with --keep-failed"
        best = fastest.get("speedup") if fastest else None
        reason = (f"no round reaches the speed floor of {floor:g}× the same runtime's fp32 (the fastest, round "
                  f"{fastest['round']}, runs at {best:.2f}×)" if fastest is not None and best is not None else
                  "no round was measured")
    why = {r["round"]: kept_because if chosen is not None and r is chosen else _why_not(r, chosen, floor, fast(r))
           for r in measured}
    return {"chosen": None if chosen is None else chosen["round"], "met": bool(meeting), "too_slow": too_slow,
            "pareto": [r["round"] for r in pareto], "fastest": fastest["round"] if fastest else None,
            "most_accurate": top["round"] if top else None,
            "most_accurate_fast": top_fast["round"] if top_fast else None, "why": why, "reason": reason,
            "floor": floor}


def _why_not(r: dict, chosen: dict | None, floor: float, fast: bool) -> str:
    """Why :func:`select_rounds` did not return round ``r`` (``fast``: it reaches the floor)."""
    s = r.get("speedup")
    if s is not None and s < 1:
        return f"slower than fp32 ({s:.2f}×)"
    if not fast:
        return f"below the floor {floor:g}× ({s:.2f}×)"
    if not r.get("met"):
        return "misses the budget"
    return f"meets both, but round {chosen['round']} is faster"


COST_RUNS = 10          # profiled runs of a round's artifact for its per-node costs (after 3 warm-up runs)
COST_FLOOR_MS = 0.001   # ONNX Runtime's profiler counts whole microseconds: no node costs less


def node_costs(artifact: Path, feeds: dict) -> dict[str, float]:
    """Milliseconds per node of ``artifact``'s graph (an ONNX int8 artifact), the median over
    ``COST_RUNS`` runs of ONNX Runtime's own profiler (:class:`app.runtimes.profilers.OnnxRuntimeProfiler`,
    as ``profile`` reads it); the kernels one graph node became summed. ``{}`` where it cannot be
    profiled: the node stage then orders by error alone."""
    import tempfile
    from collections import defaultdict

    from app.runtimes.onnxrt import resolve_provider
    from app.runtimes.profilers import OnnxRuntimeProfiler

    try:
        with tempfile.TemporaryDirectory(prefix="budget-costs-") as work:
            profiler = OnnxRuntimeProfiler(Path(artifact), Path(work), provider=resolve_provider("CPU"),
                                           threads=None, precision="int8")
            try:
                profiler.load()
                ready = profiler.prepare(feeds)
                for n in range(3 + COST_RUNS):
                    profiler.run(ready, keep=n >= 3)
                records = profiler.records()
            finally:
                profiler.close()
    except Exception:  # noqa: BLE001 - costs only order the candidates; without them the loop goes on
        return {}
    costs: dict[str, float] = defaultdict(float)
    for r in records:
        if r.graph_node and r.samples:
            costs[r.graph_node] += statistics.median(r.samples)
    return dict(costs)


def node_cost(node, costs: dict[str, float]) -> float | None:
    """The measured cost of a ranked node (:class:`app.accuracy.diagnose.NodeError`): its artifact node's
    milliseconds, else None."""
    ms = costs.get(getattr(node, "graph_node", "") or "", costs.get(getattr(node, "node", ""), None))
    return None if ms is None else max(ms, COST_FLOOR_MS)


def order_candidates(ranking: list, costs: dict[str, float]) -> tuple[list, str]:
    """The node stage's candidates in the order it tries them, and the order's name: by error added per
    millisecond of measured cost (the node's time in the round's int8 artifact) where there are costs,
    else by error added (``ranking``'s order). A node the profile did not see costs the median node."""
    if not costs:
        return list(ranking), "error added"
    typical = max(statistics.median(costs.values()), COST_FLOOR_MS)

    def per_ms(n) -> float:
        cost = node_cost(n, costs)
        return n.added / (typical if cost is None else cost)

    return sorted(ranking, key=per_ms, reverse=True), "error added per ms"


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
    an earlier round's), times it, records its figures, and keeps its files aside while it is on the
    Pareto set of the rounds or the base the search goes on from (``best``: the most accurate so far)."""

    def __init__(self, converter, ctx, data: DataSet, reference: Outputs, budget: AccuracyBudget,
                 min_speedup: float = MIN_SPEEDUP_DEFAULT):
        self.converter, self.ctx, self.data, self.reference, self.budget = converter, ctx, data, reference, budget
        self.min_speedup = min_speedup
        self.rounds: list[dict] = []
        self.digests: dict[str, int] = {}
        self.best: _Built | None = None
        self.best_dir = ctx.work_dir / "budget-best"
        self.best_dir.mkdir()
        self.fp32_run = None                   # the same runtime's fp32, timed beside every round (load_fp32)
        self.fp32_runtime = ""                 # what it is, or why it could not be built
        self.fp32_times: list[dict] = []       # its timing beside each round
        self.scores: dict[int, Evaluation] = {}  # every measured round's evaluation, by round
        self.aside: dict[int, _Built] = {}     # the rounds whose files are kept: the Pareto set and the base
        self.tried: set[str] = set()        # nodes whose round did not improve: never tried again
        self._ranked: tuple[int, list] | None = None
        self._costs_of: tuple[int, dict[str, float]] | None = None
        self._nodes: list | None = None

    def load_fp32(self) -> None:
        """Load the same runtime's fp32 (:func:`fp32_runner`): every round's speed-up is over it, timed beside it."""
        self.fp32_run, self.fp32_runtime = fp32_runner(self.converter, self.ctx)

    @property
    def fp32(self) -> dict | None:
        """The fp32's timing over the loop: the median of its medians beside each round, all its calls."""
        if not self.fp32_times:
            return None
        return {"p50_ms": statistics.median(t["p50_ms"] for t in self.fp32_times),
                "runs": sum(t["runs"] for t in self.fp32_times)}

    def fast(self, r: dict) -> bool:
        """Whether round ``r`` reaches the floor (unknown where fp32 could not be timed: not held against it)."""
        return r.get("speedup") is None or r["speedup"] >= _floor(self.min_speedup) - 1e-12

    def far_slower(self, a: dict, b: dict) -> bool:
        """Whether round ``a`` is below the speed floor and more than :data:`FAR_SLOWER` times slower than round
        ``b``: a slower kernel or setting, not timing noise (unknown speed-ups: not held against either)."""
        if a.get("speedup") is None or b.get("speedup") is None:
            return False
        return a["speedup"] < _floor(self.min_speedup) - 1e-12 and a["speedup"] * FAR_SLOWER < b["speedup"]

    def _new_base(self, n: int, margin: float) -> bool:
        """Whether round ``n`` replaces the base the search goes on from: the more accurate (by ``margin``),
        except that a round below the speed floor and far slower than the other (:meth:`far_slower`) loses
        whatever its accuracy — float nodes only slow a build down, so a node stage on such a base can never
        return anything. Measured (Intel Xeon with AMX, timed beside fp32): symmetric activations were
        EfficientNet-Lite0's most accurate ONNX setting (confident agreement 0.919 against 0.905) at 0.86× its
        fp32 against the first round's 2.2×, and every node round built on it stayed below fp32 (0.73–0.83×);
        on an AVX2-only EPYC the uint8 weights the app started from ran at 0.15×, int8 weights at 1.3×. Near
        each other, speed does not steer the search (there it is noise): it chooses what is returned
        (:func:`select_rounds`)."""
        if self.best is None:
            return True
        new, base = self.rounds[n], self.rounds[self.best.round]
        if self.far_slower(new, base):
            return False
        if self.far_slower(base, new):
            return True
        return self.budget.better(self.scores[n], self.best.scores, margin)

    def _prune(self) -> None:
        """Delete the files of rounds off the Pareto set (other than the base): none of them can be returned."""
        choice = select_rounds(self.rounds, self.scores, self.budget, self.min_speedup)
        keep = set(choice["pareto"]) | {choice[k] for k in ("chosen", "most_accurate", "most_accurate_fast")}
        keep.add(self.best.round)
        for n in [n for n in self.aside if n not in keep]:
            shutil.rmtree(self.aside.pop(n).files[0].parent, ignore_errors=True)

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
        n = self.digests[digest] = len(self.rounds)
        artifact = self.converter.load_artifact(produced[0])
        if scores is None:
            scores = compare_outputs(self.reference, run_all(artifact, self.data, "the artifact"), self.data)
        e, b = scores, self.budget
        self.ctx.stage(f"accuracy budget {b}: round {n}, time it", None)
        if self.fp32_run is not None:
            fp32, timing = measure_pair(self.fp32_run, artifact.run, self.data.samples[0])
            self.fp32_times.append(fp32)
            speedup, beside = round(fp32["p50_ms"] / timing["p50_ms"], 4), {"fp32_latency_ms": round(fp32["p50_ms"], 6)}
        else:
            timing, speedup, beside = measure_latency(artifact.run, self.data.samples[0]), None, {}
        parts = {"parts_met": b.parts_met(e)} if len(b.parts) > 1 else {}    # which parts of several hold
        self.rounds.append(entry | b.figures(e) | parts | {"cosine_mean": e.cosine_mean, "top1_drop": e.top1_drop,
                                    "artifact_top1": e.artifact_top1, "latency_ms": round(timing["p50_ms"], 6),
                                    "latency_runs": timing["runs"], **beside, "speedup": speedup, "met": b.met(e)})
        self.scores[n] = e
        folder = self.best_dir / f"round-{n}"
        folder.mkdir()
        built = _Built([p.rename(folder / p.name) for p in produced], e, list(nodes), config, dict(self.ctx.record), n)
        self.aside[n] = built
        margin = QUANTIZER_MARGIN if extra.get("stage") == "quantizer" else 0.0
        new_base = self._new_base(n, margin)
        if new_base:
            self.best = built
        self._prune()
        return new_base

    def satisfied(self) -> bool:
        """The base meets the budget at or above the speed floor: nothing left to search for."""
        return self.budget.met(self.best.scores) and self.fast(self.rounds[self.best.round])

    def slow_kernels(self, name: str, value) -> str:
        """Why a quantizer setting is not tried: its kernels are slow on this CPU and the floor does not
        allow them ("" : try it). ONNX Runtime's uint8 weights (u8×u8) have no VNNI/AMX kernel."""
        from app.machine.hardware import detect_cpu

        if self.converter.name != "onnx" or name != "weight_type" or value != "uint8":
            return ""
        cpu = detect_cpu()
        if not (cpu.vnni or cpu.avx2) or "asimd" in cpu.flags:
            return ""
        factor = U8U8_ON_VNNI if cpu.vnni else U8U8_ON_AVX2
        floor, base = _floor(self.min_speedup), self.rounds[self.best.round].get("speedup")
        predicted = None if base is None else base * factor
        if predicted is not None and predicted >= floor:
            return ""
        units = ("no AMX/VNNI version" if cpu.amx else "no VNNI version" if cpu.vnni else
                 "slow convolution kernels without VNNI")
        return (f"not tried: uint8 weights take ONNX Runtime's u8×u8 kernels, which have {units} "
                f"(~{1 / factor:.0f}× slower than int8 weights on this CPU): "
                + (f"about {predicted:.2f}× fp32, below the floor of {floor:g}×" if predicted is not None else
                   "the fp32 could not be timed to show they reach the floor"))

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
                if self.satisfied():
                    return
                config, extra = self.best.config.with_(**{name: value}), {"stage": "quantizer", "change": f"{name}={value}"}
                slow = self.slow_kernels(name, value)
                if slow:    # reported, not built
                    self.rounds.append({"round": len(self.rounds), **extra, "float_nodes": 0,
                                        "quantizer": config.to_json(), "skipped": slow, "met": False})
                    continue
                self.build([], config, extra)

    def exclude_worst_nodes(self, max_nodes: int) -> str:
        """Keep the nodes that add the most error in float, 1, 2, 4 … more a round; nodes whose round did
        not improve are remembered and never tried again. When single nodes stop helping, the stage's
        groups are tried (:meth:`exclude_groups`). Returns the reason it stopped."""
        step, misses = 1, 0
        while True:
            stop = self._node_limits(max_nodes)
            if stop:
                return stop
            costs = self._costs()
            ranking, ordering = order_candidates(self._ranking(), costs)
            excluded = self.best.nodes
            chosen = [n for n in ranking if n.node not in excluded and n.node not in self.tried
                      and n.op_type not in DATA_MOVEMENT and n.added > 0][:min(step, max_nodes - len(excluded))]
            new = [n.node for n in chosen]
            if not new:
                why = "no node left that adds error" + (" and has not been tried" if self.tried else "")
                break
            step *= 2
            spent = [node_cost(n, costs) for n in chosen]
            cost = {"cost_ms": round(sum(spent), 6) if costs and None not in spent else None, "ordering": ordering}
            if self._node_round(excluded + new, new, {"stage": "nodes"} | cost):
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

    def _costs(self) -> dict[str, float]:
        """The best build's per-node milliseconds (:func:`node_costs`), once per best build; ``{}`` for
        a target other than ONNX (its nodes are not the ONNX graph's)."""
        if self._costs_of is None or self._costs_of[0] != self.best.round:
            artifact = self.best.files[0]
            costs = {}
            if self.converter.name == "onnx" and artifact.suffix == ".onnx":
                self.ctx.stage(f"accuracy budget {self.budget}: profile the nodes' cost", None)
                costs = node_costs(artifact, self.data.samples[0])
            self._costs_of = (self.best.round, costs)
        return self._costs_of[1]

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
            return b.control_metric(e)

        self.ctx.accuracy_control = (data.samples, metric, b.control_max_drop())
        # NNCF follows one metric: the first part; the round is still judged on every part
        follows = {"nncf_follows": str(b.first)} if len(b.parts) > 1 else {}
        try:
            self.build([], self.best.config, {"stage": "nncf-accuracy-control"} | follows)
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
        follows = f" (follows {r['nncf_follows']} only)" if r.get("nncf_follows") else ""
        return f"NNCF quantize_with_accuracy_control{follows}"
    return "first build"


def budget_rounds_text(report: dict) -> list[str]:
    """The fp32 reference and the floor, then one line a round: what it tried and its figures (or the
    earlier round it repeats, or why it was not tried), its speed-up over the same runtime's fp32, the
    Pareto rounds and those below the floor marked, the kept one marked."""
    lines = []
    floor = report.get("speed_floor")
    if report.get("fp32_latency_ms") is not None:
        pareto = ", ".join(str(n) for n in report.get("pareto") or []) or "none"
        lines.append(f"fp32 ({report.get('fp32_runtime')}): {report['fp32_latency_ms']:.3f} ms · speed floor "
                     f"{floor:g}× (--min-speedup {report.get('min_speedup'):g}) · Pareto set: round(s) {pareto}")
    elif report.get("fp32_runtime"):
        lines.append(f"fp32 not timed ({report['fp32_runtime']}): no speed floor applied")
    for r in report.get("rounds") or []:
        head = f"round {r['round']:>2} {round_label(r):<44}"
        if "identical_to" in r:
            why = f": {r['unchanged']}" if r.get("unchanged") else ""
            lines.append(f"{head} same model as round {r['identical_to']} (not measured){why}{_float_names(r)}")
            continue
        if "failed" in r:
            lines.append(f"{head} could not be built: {r['failed']}")
            continue
        if "skipped" in r:
            lines.append(f"{head} {r['skipped']}")
            continue
        drop = f" · top-1 drop {100 * r['top1_drop']:.2f} pts" if r.get("top1_drop") is not None else ""
        drop += _part_figures(r)
        s = r.get("speedup")
        speed = "" if s is None else f" · {s:.2f}× fp32" + (
            " (slower than fp32)" if s < 1 else f" (below the floor {floor:g}×)" if floor and s < floor - 1e-12 else "")
        lines.append(f"{head} cosine {r['cosine_mean']:.6f}{drop} · {r['latency_ms']:.3f} ms{speed}"
                     f"{' · Pareto' if r.get('pareto') else ''}{' · meets the budget' if r['met'] else _missed(r)}"
                     f"{'  ← kept' if r.get('kept') else ''}{_float_names(r)}")
    return lines


def _part_figures(r: dict) -> str:
    """A round's figures for budget parts the line does not show otherwise (confident agreement, KL)."""
    text = ""
    if isinstance(r.get("confident-agreement"), (int, float)):
        text += f" · confident agreement {100 * r['confident-agreement']:.2f}%"
    if isinstance(r.get("kl"), (int, float)):
        text += f" · KL {r['kl']:.4g}"
    return text


def missed_parts(r: dict) -> list[str]:
    """The metrics of a budget of several that round record ``r`` misses (its ``parts_met``); [] for one part."""
    parts = r.get("parts_met")
    return [str(m) for m, ok in parts.items() if not ok] if isinstance(parts, dict) else []


def _missed(r: dict) -> str:
    missed = missed_parts(r)
    return f" · misses {', '.join(missed)}" if missed else ""


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
                budget: AccuracyBudget, max_nodes: int,
                min_speedup: float = MIN_SPEEDUP_DEFAULT) -> tuple[list[Path], Evaluation, dict]:
    """Search the quantizer's settings, then keep nodes in float, until ``budget`` holds at a speed-up of
    at least ``min_speedup`` (and never below 1) over the same runtime's fp32; returns the files of the
    round :func:`select_rounds` picks, their evaluation, and the report (every round with its latency and
    speed-up, the Pareto set, the chosen quantizer and float nodes) for the manifest. The report's ``met``:
    a round meets both; ``too_slow``: no round reaches the floor (the pipeline returns no artifact then)."""
    loop = _Loop(converter, ctx, data, reference, budget, min_speedup)
    loop.load_fp32()
    loop.add(produced, scores, [], {"stage": "first"})
    loop.search_quantizer()
    stopped = loop.exclude_worst_nodes(max_nodes)
    if converter.own_accuracy_control and stopped != "met":   # e.g. NNCF's own loop as the node stage's peer
        stopped = f"{stopped}; NNCF's accuracy control: {loop.nncf_accuracy_control()}"
    choice = select_rounds(loop.rounds, loop.scores, budget, min_speedup)
    pareto = set(choice["pareto"])
    for r in loop.rounds:
        if r["round"] in choice["why"]:
            r["pareto"] = r["round"] in pareto
            r["kept_because" if r["round"] == choice["chosen"] else "why_not"] = choice["why"][r["round"]]
    best = loop.aside[choice["chosen"]]
    loop.rounds[best.round]["kept"] = True
    files = [p.rename(ctx.work_dir / p.name) for p in best.files]
    shutil.rmtree(loop.best_dir, ignore_errors=True)
    ctx.record.clear()
    ctx.record.update(best.record)
    ctx.exclude_nodes, ctx.quantizer = tuple(best.nodes), best.config
    ctx.warnings[:] = dict.fromkeys(ctx.warnings)    # a rebuild repeats its build's warnings: once each
    if loop.fp32 is None:
        ctx.warnings.append(f"accuracy budget: the same runtime's fp32 could not be timed ({loop.fp32_runtime}): "
                            "no speed floor was applied")
    kept = loop.rounds[best.round]
    searched = loop.quantizer_rounds()
    ours = "the app's loop" + (f" ({converter.own_accuracy_control})" if converter.own_accuracy_control else "")
    engine = {"nncf-accuracy-control": "NNCF quantize_with_accuracy_control"}.get(kept["stage"], ours)
    fp32 = loop.fp32
    report = {"budget": str(budget), "met": choice["met"], "accuracy_met": budget.met(best.scores),
              "too_slow": choice["too_slow"], "unmet_reason": choice["reason"], "float_nodes": best.nodes,
              "engine": engine, "quantizer": best.config.to_json() if best.config else None,
              "quantizer_searched": bool(searched), "best_round": best.round, "stopped": stopped,
              "rounds": loop.rounds, "max_float_nodes": max_nodes, "min_speedup": min_speedup,
              "speed_floor": choice["floor"], "pareto": choice["pareto"], "fastest_round": choice["fastest"],
              "most_accurate_round": choice["most_accurate"],
              "most_accurate_fast_round": choice["most_accurate_fast"],
              "latency_ms": kept["latency_ms"], "speedup": kept.get("speedup"),
              "fp32_latency_ms": round(fp32["p50_ms"], 6) if fp32 else None,
              "fp32_latency_runs": fp32["runs"] if fp32 else None, "fp32_runtime": loop.fp32_runtime}
    ctx.record["float_nodes"] = best.nodes
    loop.fp32_run = None
    shutil.rmtree(ctx.work_dir / "budget-fp32", ignore_errors=True)
    return files, best.scores, report
