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
RESAMPLES = 2000


def _bootstrap_medians(samples: Sequence[float], resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians of ``resamples`` resamples (with replacement) of ``samples``, in chunks (bounded memory)."""
    arr = np.asarray(samples, dtype=np.float64)
    out = np.empty(resamples)
    chunk = max(1, 2_000_000 // max(arr.size, 1))
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        out[start:stop] = np.median(arr[rng.integers(0, arr.size, size=(stop - start, arr.size))], axis=1)
    return out


def median_ci(samples: Sequence[float], *, confidence: float = CONFIDENCE, resamples: int = RESAMPLES,
              seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap confidence interval of the median of ``samples`` (same unit as the samples)."""
    if len(samples) < 2:
        v = float(samples[0]) if len(samples) else float("nan")
        return v, v
    boot = _bootstrap_medians(samples, resamples, np.random.default_rng(seed))
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(boot, [tail, 100.0 - tail])
    return float(lo), float(hi)


def speedup_ci(baseline: Sequence[float], samples: Sequence[float], *, confidence: float = CONFIDENCE,
               resamples: int = RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """Bootstrap interval of ``median(baseline) / median(samples)``: the two sets are resampled
    independently (the runs are not paired) and the ratio taken replicate by replicate."""
    if len(baseline) < 2 or len(samples) < 2:
        v = float(np.median(baseline)) / float(np.median(samples))
        return v, v
    rng = np.random.default_rng(seed)
    ratio = _bootstrap_medians(baseline, resamples, rng) / _bootstrap_medians(samples, resamples, rng)
    tail = (1.0 - confidence) / 2.0 * 100.0
    lo, hi = np.percentile(ratio, [tail, 100.0 - tail])
    return float(lo), float(hi)


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
