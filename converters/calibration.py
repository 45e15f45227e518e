"""Calibration feeds for ONNX Runtime's static INT8: random samples when no ``--data`` is given, and
the reader that hands samples to ``quantize_static``. Real samples come from :mod:`app.accuracy.data`."""

from __future__ import annotations

from typing import Iterator

import numpy as np

from app.model.inputs import make_feeds
from app.model.specs import TensorSpec


def random_samples(specs: list[TensorSpec], count: int = 16, int_high: int = 2) -> list[dict[str, np.ndarray]]:
    return [make_feeds(specs, seed=1000 + i, int_high=int_high) for i in range(count)]


def feeds_reader(samples: list[dict[str, np.ndarray]], step=None):
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a list of feeds; ``step(i, n)`` (if given)
    hears of each sample handed out (calibration N/M in the window's jobs list)."""
    from onnxruntime.quantization import CalibrationDataReader

    class FeedsReader(CalibrationDataReader):
        def __init__(self):
            self._it: Iterator | None = None
            self._n = 0

        def get_next(self):
            if self._it is None:
                self._it, self._n = iter(samples), 0
            feeds = next(self._it, None)
            if feeds is not None and step is not None:
                self._n += 1
                step(self._n, len(samples))
            return feeds

        def rewind(self):
            self._it = None

    return FeedsReader()
