"""How long a fenced job takes to start: the first job (the forkserver starts and imports torch) and
every later one (a fork), for a job that does nothing.

    python benchmarks/bench_job_start.py [--jobs 30] [--json FILE]

Run it from another checkout (``PYTHONPATH=/other/checkout``) to compare two versions of
``app/jobs.py`` on the same machine, in the same minute.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def nothing(payload=None, progress=None, should_cancel=None) -> dict:
    return {"pid": os.getpid()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=30, help="warm jobs to time after the first")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import app
    from app.machine.hardware import detect_cpu
    from app.jobs import run_job

    target = "benchmarks.bench_job_start:nothing"
    t0 = time.perf_counter()
    run_job(target, None)
    first = time.perf_counter() - t0
    warm = []
    for _ in range(args.jobs):
        t0 = time.perf_counter()
        run_job(target, None)
        warm.append(time.perf_counter() - t0)
    cpu = detect_cpu()
    result = {"app": str(Path(app.__file__).resolve().parent.parent), "cpu": f"{cpu.name} ({os.cpu_count()} cores)",
              "kernel": platform.release(), "first_job_s": round(first, 3),
              "warm_median_ms": round(statistics.median(warm) * 1000, 1),
              "warm_p90_ms": round(sorted(warm)[int(0.9 * (len(warm) - 1))] * 1000, 1), "jobs": len(warm)}
    print(f"{'checkout':40} {'first job':>10} {'later jobs (median)':>20} {'p90':>8}")
    print(f"{result['app']:40} {first:9.2f}s {result['warm_median_ms']:18.1f}ms {result['warm_p90_ms']:6.1f}ms")
    print(f"machine: {result['cpu']}, Linux {result['kernel']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
