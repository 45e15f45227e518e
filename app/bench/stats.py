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
