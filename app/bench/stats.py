"""LatencyStats: the summary statistics of one runner's timed calls."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class LatencyStats:
    """Latency statistics in milliseconds over ``count`` timed calls.

    Percentiles use linear interpolation between order statistics (numpy's default, what
    ``onnxruntime_perf_test`` and most harnesses report), so ``min <= p50 <= p90 <= p95 <= p99 <=
    max`` always holds.
    """

    count: int
    mean_ms: float
    std_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    total_s: float

    @classmethod
    def from_seconds(cls, samples: Sequence[float]) -> "LatencyStats":
        """Summarise per-call durations given in seconds.

        Parameters
        ----------
        samples
            One duration per timed call, in seconds (at least one).

        Returns
        -------
        LatencyStats
            The statistics in milliseconds; ``total_s`` is the sum of the samples in seconds.
        """
        arr = np.asarray(samples, dtype=np.float64)
        if arr.size == 0:
            raise ValueError("no timed calls to summarise")
        ms = arr * 1000.0
        p50, p90, p95, p99 = np.percentile(ms, [50, 90, 95, 99])
        return cls(count=int(ms.size), mean_ms=float(ms.mean()), std_ms=float(ms.std(ddof=1)) if ms.size > 1 else 0.0,
                   min_ms=float(ms.min()), p50_ms=float(p50), p90_ms=float(p90), p95_ms=float(p95),
                   p99_ms=float(p99), max_ms=float(ms.max()), total_s=float(arr.sum()))

    def throughput(self, batch: int) -> float:
        """Items per second at ``batch`` items per call, from the mean latency."""
        return batch * 1000.0 / self.mean_ms if self.mean_ms > 0 else float("inf")

    def to_json(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


# ---------------------------------------------------------------------------- confidence intervals
CONFIDENCE = 0.95
RESAMPLES = 1000

Rounds = Sequence[Sequence[float]]


def _as_rounds(samples) -> list[np.ndarray]:
    """``samples`` as a list of rounds: a flat sequence of numbers is one round."""
    items = list(samples)
    if items and np.ndim(items[0]) == 0:
        return [np.asarray(items, dtype=np.float64)]
    return [np.asarray(r, dtype=np.float64) for r in items if len(r)]


def _hierarchical_medians(rounds: list[np.ndarray], picks: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each row of ``picks`` (round indices drawn with replacement), resample the calls within
    each picked round and take the median of them all: a two-level bootstrap, so a drift between
    rounds widens the interval as it should instead of hiding in thousands of calls."""
    out = np.empty(len(picks))
    for b, chosen in enumerate(picks):
        pooled = [rounds[r][rng.integers(0, rounds[r].size, rounds[r].size)] for r in chosen]
        out[b] = np.median(np.concatenate(pooled))
    return out


def _interval(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def median_ci(samples: Rounds | Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
              seed: int = 0) -> tuple[float, float]:
    """Bootstrap confidence interval of the median, over rounds and over calls within them (same unit
    as the samples). ``samples``: one list of calls per round, or one flat list (a single round)."""
    rounds = _as_rounds(samples)
    n = sum(r.size for r in rounds)
    if n < 2:
        v = float(rounds[0][0]) if n else float("nan")
        return v, v
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(rounds), size=(resamples, len(rounds)))
    return _interval(_hierarchical_medians(rounds, picks, rng), confidence)


def speedup_ci(baseline: Rounds | Sequence[float], samples: Rounds | Sequence[float], *,
               confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of ``median(baseline) / median(samples)``. With the same number of rounds
    on both sides, rounds are drawn in pairs (round k of each was measured side by side in time, so
    a slow moment of the machine cancels out of their ratio); calls are resampled within rounds."""
    base, runs = _as_rounds(baseline), _as_rounds(samples)
    if sum(r.size for r in base) < 2 or sum(r.size for r in runs) < 2:
        v = float(np.median(np.concatenate(base))) / float(np.median(np.concatenate(runs)))
        return v, v
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(base), size=(resamples, len(base)))
    other = picks if len(runs) == len(base) else rng.integers(0, len(runs), size=(resamples, len(runs)))
    ratio = _hierarchical_medians(base, picks, rng) / _hierarchical_medians(runs, other, rng)
    return _interval(ratio, confidence)


# a p50 whose interval is wider than this share of it (either side) is too noisy to rank artifacts by
NOISY_HALF_WIDTH = 0.05


def verdict(speedup: tuple[float, float] | None) -> str:
    """What an interval of the speed-up lets one claim: ``faster``, ``slower`` or ``no measurable difference``."""
    if speedup is None:
        return ""
    lo, hi = speedup
    if lo > 1.0:
        return "faster"
    if hi < 1.0:
        return "slower"
    return "no measurable difference"


def pareto_front(items, cost, gain) -> list:
    """The items no other item beats on both ``cost(item)`` (lower is better: latency) and
    ``gain(item)`` (higher is better: accuracy, throughput), in order of increasing cost."""
    front, best = [], float("-inf")
    for item in sorted(items, key=lambda i: (cost(i), -gain(i))):
        if gain(item) > best:
            front.append(item)
            best = gain(item)
    return front


# a lower precision whose p50 is not at least this much below the same target's fp32 gained nothing here
NO_GAIN = 0.05


def no_faster_than_fp32(best: dict) -> dict[str, dict]:
    """The ``target/precision`` entries of ``best`` (:func:`app.targets.advice.measured_here`) that ran no faster than the same
    target's fp32 on this machine (bf16 without AMX, uint8 weights on VNNI): each with both p50s."""
    out = {}
    for key, row in best.items():
        target, _, precision = key.rpartition("/")
        fp32 = best.get(f"{target}/fp32")
        if precision != "fp32" and fp32 and row["p50_ms"] >= (1.0 - NO_GAIN) * fp32["p50_ms"]:
            out[key] = {"p50_ms": row["p50_ms"], "fp32_p50_ms": fp32["p50_ms"], "name": row["name"]}
    return out


def rows_no_faster_than_fp32(rows: list[dict]) -> dict[str, dict]:
    """:func:`no_faster_than_fp32` of benchmark rows (``bench``/``optimize`` ``--json`` results): per
    ``runtime/precision`` its fastest row at the smallest batch, the source left out."""
    batch = min((r.get("batch") or 1 for r in rows if not r.get("baseline")), default=1)
    best: dict[str, dict] = {}
    for r in rows:
        if r.get("baseline") or (r.get("batch") or 1) != batch or not isinstance(r.get("p50_ms"), (int, float)):
            continue
        key = f"{r['runtime']}/{r['precision']}"
        if key not in best or r["p50_ms"] < best[key]["p50_ms"]:
            best[key] = r
    return no_faster_than_fp32(best)
