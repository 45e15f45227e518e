"""Peak memory and wall time of `convert` on a big model: 671 M parameters, 2.7 GB of fp32 weights.

    python benchmarks/bench_memory.py [--work DIR] [--targets onnx:fp32,onnx:int8,...] [--json FILE]

Builds a 10-layer MLP (Linear 8192x8192 + ReLU; a state dict plus the arch file that builds it) in
``--work`` (default: a temporary folder, removed afterwards; it needs about 12 GB of disk), then runs
``python main.py convert`` for each target in a fresh process, one at a time, and records the peak
resident memory of the whole job — the CLI process, the forkserver and the fenced child: their
proportional set sizes (PSS: pages shared after the fork counted once) summed, sampled ten times a
second, highest sum — and the wall time. onnx fp16 and int8 convert the fp32 ONNX (2.7 GB of external data) the first job
wrote, as a user quantizing an exported model would. Goal: peak <= 2.5x the source's size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 2.5
ARCH = '''import torch


def build():
    layers = []
    for _ in range(10):
        layers += [torch.nn.Linear(8192, 8192), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers)
'''
DEFAULT_TARGETS = "onnx:fp32,onnx:fp16,onnx:int8,torch-export:fp32,torchscript-trace:fp32"


def build_model(folder: Path) -> tuple[Path, Path]:
    """Write ``big_mlp.py`` and ``big.pt`` (its state dict, layer by layer in a child process)."""
    arch = folder / "big_mlp.py"
    arch.write_text(ARCH)
    state = folder / "big.pt"
    code = ("import torch, sys; sys.path.insert(0, sys.argv[1]); from big_mlp import build; torch.manual_seed(0); "
            "torch.save(build().state_dict(), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(folder), str(state)], check=True)
    return arch, state


def _pss(pid: int) -> int:
    """A process's proportional set size: its private pages plus its share of pages it shares (the
    forkserver's and the job child's torch, a file mapped by two processes), so a sum over processes
    counts every page once."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def run_measured(cmd: list[str]) -> tuple[int, float, int, str, dict]:
    """(exit code, seconds, peak bytes of the process tree's summed PSS, stdout, per-process peaks)."""
    import psutil

    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    state = {"peak": 0}
    each: dict[str, int] = {}
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                tree = [root] + root.children(recursive=True)
            except psutil.Error:
                tree = [root]
            total = 0
            for p in tree:
                pss = _pss(p.pid)
                total += pss
                try:
                    key = f"{p.pid} {' '.join(p.cmdline()[:3])}"[:80]
                except psutil.Error:
                    key = str(p.pid)
                each[key] = max(each.get(key, 0), pss)
            state["peak"] = max(state["peak"], total)
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    if proc.returncode:
        sys.stderr.write(err[-2000:])
    return proc.returncode, time.perf_counter() - started, state["peak"], out, each


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="folder for the model and artifacts (default: a temporary one)")
    parser.add_argument("--targets", default=DEFAULT_TARGETS, help=f"TARGET:PRECISION,... (default {DEFAULT_TARGETS})")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        print(f"building the 671 M-parameter MLP in {work} ...", file=sys.stderr)
        arch, state = build_model(work)
        size = state.stat().st_size
        fp32_onnx = work / "onnx" / "big.fp32.onnx"
        for item in args.targets.split(","):
            target, precision = item.split(":")
            source = fp32_onnx if target == "onnx" and precision != "fp32" and fp32_onnx.exists() else state
            out = work / (target if source == state else "onnx-" + precision)
            cmd = [sys.executable, "main.py", "convert", str(source), "--to", target, "--precision", precision,
                   "--out", str(out), "--json", "--input", "x:1x8192"]
            if source == state:
                cmd += ["--arch", f"{arch}:build"]
            print(f"{target} {precision} from {source.name} ...", file=sys.stderr)
            code, seconds, peak, stdout, each = run_measured(cmd)
            src_size = sum(p.stat().st_size for p in source.parent.glob(source.name + "*"))
            try:
                result = json.loads(stdout)
            except ValueError:
                result = {}
            rows.append({"target": target, "precision": precision, "source": source.name, "source_bytes": src_size,
                         "exit_code": code, "seconds": round(seconds, 1), "peak_bytes": peak,
                         "ratio": round(peak / src_size, 2), "verified": (result.get("verification") or {}).get("passed"),
                         "message": result.get("message", ""), "processes": each})
            print(f"  {rows[-1]['ratio']}x, {seconds:.0f} s, exit {code}", file=sys.stderr)
            if target != "onnx" or precision != "fp32":
                shutil.rmtree(out, ignore_errors=True)  # keep the disk free; the fp32 ONNX feeds fp16/int8
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nmodel: 671 M parameters, {size / 1e9:.2f} GB state dict; machine: {platform.machine()}, "
          f"{os.cpu_count()} cores, {_total_memory() / 2**30:.0f} GiB; goal peak <= {GOAL}x the source\n")
    print("| target | source | peak RSS | peak / source | wall time | verified | goal |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ok = "met" if r["exit_code"] == 0 and r["ratio"] <= GOAL else "NOT met"
        print(f"| {r['target']} {r['precision']} | {r['source']} ({r['source_bytes'] / 1e9:.2f} GB) | "
              f"{r['peak_bytes'] / 1e9:.1f} GB | {r['ratio']:.2f}x | {r['seconds']:.0f} s | "
              f"{'yes' if r['verified'] else r['message'][:60] or 'no'} | {ok} |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "goal": GOAL, "machine": platform.platform()}, indent=2))
    return 0 if all(r["exit_code"] == 0 and r["ratio"] <= GOAL for r in rows) else 1


def _total_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


if __name__ == "__main__":
    sys.exit(main())
