"""A benchmark request, typed: :class:`BenchRequest` (frozen, it pickles: no flags to parse back in
the child), built by ``bench`` from its flags and by the window's Benchmark button, and run by
:func:`run_bench` in a supervised child process (``bench``,
:func:`bench_job` for the window). The window's job returns the ``bench --json`` object
(``{"machine": {...}, "results": [rows], "skipped": [...], "notes": [...]}``), plain data that
crosses the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.bench.benchmark import benchmark
from app.bench.harness import BenchConfig, Progress
from app.request import DataSource, ModelSource


@dataclass(frozen=True)
class BenchRequest:
    """A benchmark: the source model, the artifacts timed beside it, how they are timed, and real
    samples to evaluate them on (``--data``)."""

    source: ModelSource
    artifacts: tuple[Path, ...]
    config: BenchConfig
    providers: tuple[str, ...] | None = None   # ONNX Runtime providers (default: every one installed)
    device: str = "cpu"                        # where the torch runners run
    openvino: bool | None = None               # also time .onnx artifacts in OpenVINO (None: where installed)
    data: DataSource | None = None             # every artifact also evaluated on these samples


def run_bench(request: BenchRequest, progress: Progress | None = None,
              should_cancel: Callable[[], bool] | None = None):
    """Benchmark ``request``: the :class:`~app.bench.harness.BenchResult` (``bench`` and the window)."""
    return benchmark(request.source, list(request.artifacts), request.config,
                     providers=list(request.providers) if request.providers else None, device=request.device,
                     openvino=request.openvino, data=request.data, progress=progress, should_cancel=should_cancel)


def bench_job(request: BenchRequest, progress: Progress | None = None,
              should_cancel: Callable[[], bool] | None = None) -> dict:
    """The window's benchmark in its child: the ``bench --json`` object of :func:`run_bench`."""
    return run_bench(request, progress, should_cancel).to_json()
