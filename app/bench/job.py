"""The window's benchmark job: ``bench_job(payload, progress, should_cancel) -> dict``.

Run by :func:`app.jobs.run_job` in a supervised child process (``"app.bench.job:bench_job"``); the
payload is what the window's Benchmark button collects, the result is the ``bench --json`` object
(``{"machine": {...}, "results": [rows], "skipped": [...], "notes": [...]}``), plain data that
crosses the process boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from app.bench.harness import BenchConfig, Progress


def bench_job(payload: dict, progress: Progress | None = None,
              should_cancel: Callable[[], bool] | None = None) -> dict:
    """Benchmark ``payload["model"]`` and ``payload["artifacts"]``.

    Parameters
    ----------
    payload
        ``model`` (path), ``artifacts`` (paths), ``inputs``/``dynamic`` (``--input``/``--dynamic``
        strings), ``arch``, ``arch_kwargs`` (dict), ``allow_pickle``, ``batch`` (list of ints),
        ``warmup``, ``runs``, ``min_seconds``, ``threads`` (None: physical cores), optionally
        ``providers`` (list of names) and ``device``.
    progress, should_cancel
        See :func:`app.bench.harness.run_benchmark`.
    """
    from app.bench.benchmark import benchmark

    source = model_source(payload)
    defaults = BenchConfig()
    config = BenchConfig(batches=tuple(int(b) for b in payload.get("batch") or ()),
                         warmup=int(payload.get("warmup", defaults.warmup)),
                         runs=int(payload.get("runs", defaults.runs)),
                         min_seconds=float(payload.get("min_seconds", defaults.min_seconds)),
                         max_seconds=payload.get("max_seconds"), threads=payload.get("threads"),
                         rounds=int(payload.get("rounds", defaults.rounds)))
    result = benchmark(source, [Path(p) for p in payload.get("artifacts") or []], config,
                       providers=payload.get("providers"), device=payload.get("device", "cpu"),
                       progress=progress, should_cancel=should_cancel)
    return result.to_json()


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
