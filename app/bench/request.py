"""The window's benchmark job: ``bench_job(request, progress, should_cancel) -> dict``.

Run by :func:`app.jobs.run_job` in a supervised child process (``"app.bench.request:bench_job"``); the
request is a :class:`BenchRequest` (frozen, it pickles: no flags to parse back in the child) built
from what the window's Benchmark button collects; the result is the ``bench --json`` object
(``{"machine": {...}, "results": [rows], "skipped": [...], "notes": [...]}``), plain data that
crosses the process boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from app.bench.harness import BenchConfig, Progress
from app.request import ModelSource


@dataclass(frozen=True)
class BenchRequest:
    """A benchmark: the source model, the artifacts timed beside it, and how they are timed."""

    source: ModelSource
    artifacts: tuple[Path, ...]
    config: BenchConfig
    providers: tuple[str, ...] | None = None   # ONNX Runtime providers (default: every one installed)
    device: str = "cpu"                        # where the torch runners run


def bench_job(request: BenchRequest | dict, progress: Progress | None = None,
              should_cancel: Callable[[], bool] | None = None) -> dict:
    """Benchmark ``request`` (a :class:`BenchRequest`, or the payload dict :func:`bench_request` reads).

    ``progress``, ``should_cancel``: see :func:`app.bench.harness.run_benchmark`.
    """
    from app.bench.benchmark import benchmark

    if isinstance(request, dict):
        request = bench_request(request)
    result = benchmark(request.source, list(request.artifacts), request.config,
                       providers=list(request.providers) if request.providers else None, device=request.device,
                       progress=progress, should_cancel=should_cancel)
    return result.to_json()


def bench_request(payload: dict) -> BenchRequest:
    """The :class:`BenchRequest` of a payload dict: ``model`` (path), ``artifacts`` (paths),
    ``inputs``/``dynamic`` (``--input``/``--dynamic`` strings), ``arch``, ``arch_kwargs`` (dict),
    ``allow_pickle``, ``trusted_globals``, ``batch`` (list of ints), ``warmup``, ``runs``,
    ``min_seconds``, ``threads`` (None: physical cores), optionally ``providers`` and ``device``."""
    defaults = BenchConfig()
    config = BenchConfig(batches=tuple(int(b) for b in payload.get("batch") or ()),
                         warmup=int(payload.get("warmup", defaults.warmup)),
                         runs=int(payload.get("runs", defaults.runs)),
                         min_seconds=float(payload.get("min_seconds", defaults.min_seconds)),
                         max_seconds=payload.get("max_seconds"), threads=payload.get("threads"),
                         rounds=int(payload.get("rounds", defaults.rounds)))
    providers = payload.get("providers")
    return BenchRequest(model_source(payload), tuple(Path(p) for p in payload.get("artifacts") or []), config,
                        tuple(providers) if providers else None, payload.get("device", "cpu"))


def model_source(payload: dict):
    """The source model of a window payload (``model``, ``inputs``, ``dynamic``, ``arch``,
    ``arch_kwargs``, ``allow_pickle``, ``trusted_globals``) as a :class:`~app.request.ModelSource`."""
    from app.request import ModelSource
    from app.specs import parse_dynamic, parse_input

    return ModelSource(
        path=Path(payload["model"]),
        inputs=tuple(parse_input(s) for s in payload.get("inputs") or []),
        dynamic=tuple(parse_dynamic(s) for s in payload.get("dynamic") or []),
        arch=payload.get("arch"), arch_kwargs=tuple((payload.get("arch_kwargs") or {}).items()),
        allow_pickle=bool(payload.get("allow_pickle")),
        trusted_globals=tuple(payload.get("trusted_globals") or ()),
        run_code_from_file=bool(payload.get("run_code_from_file")))
