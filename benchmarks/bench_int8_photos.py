"""Int8 that keeps the model, checked as a user would (issue 32): pretrained EfficientNet-Lite, calibrated on
crops of some photos and judged on crops of *other* photos, per runtime.

    python benchmarks/bench_int8_photos.py [--models lite0,lite1] [--runtimes onnx,openvino,executorch,litert] \\
        [--budget cosine=0.99] [--modes automatic,budget] [--calib-per-photo 8] [--eval-per-photo 16] [--quick] [--keep DIR] [--json FILE]

For each model the crops of ``tests.photos.CALIBRATION_PHOTOS`` (``--calib-per-photo`` each) and of
``tests.photos.EVALUATION_PHOTOS`` (``--eval-per-photo`` each, another seed) are written as PNG files into two
folders: the two share no photo (split by photo, not by crop). Then, per runtime, the app's own CLI
(``main.py convert ... --json``, a subprocess, as a user runs it) builds

- the fp32 artifact (the speed reference of that runtime),
- int8 automatic (``--precision int8 --data calib/``),
- int8 with ``--accuracy-budget BUDGET`` (default ``cosine=0.99``),

passing ``--eval-data eval/`` when this CLI has that flag (seen in ``main.py convert --help``). Each int8
artifact is then judged here, by itself, on the evaluation crops against the fp32 PyTorch model: agreement on
confident samples (fp32 top-1 beats top-2 by >= 0.1, :func:`tests.photos.confident_agreement`, with their
count), top-1 agreement and mean cosine of the logits; and its latency median against the same runtime's
fp32 artifact, timed in this one process by the app's harness (``app.bench.harness.run_benchmark``:
warm-up, interleaved rounds, median). The goal (issue 32): confident agreement >= 0.99, cosine >= 0.99 and
>= 1.5x the runtime's fp32 (ExecuTorch, LiteRT: >= 1.2x). Int8 numerics and speed depend on the CPU's ISA (VNNI or
not), printed in the header.

``--quick``: one model (lite0), 2 calibration and 2 evaluation crops per photo, the first runtime given,
a short timing: a smoke test of the whole chain, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402

from tests import photos  # noqa: E402

RUNTIMES = {"onnx": "onnx", "openvino": "openvino", "executorch": "executorch", "litert": "litert"}   # --runtimes name → --to
MODES = ("automatic", "budget")
GOAL_AGREEMENT = 0.99
GOAL_COSINE = 0.99
GOAL_SPEEDUP = {"onnx": 1.5, "openvino": 1.5, "executorch": 1.2, "litert": 1.2}
FACTORIES = {"lite0": "tests.photos:efficientnet_lite0", "lite1": "tests.photos:efficientnet_lite1"}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


# ---------------------------------------------------------------------------- data
def write_crops(root: Path, model: str, calib_per_photo: int, eval_per_photo: int) -> tuple[Path, Path]:
    """(calibration folder, evaluation folder) of ``model``'s input size under ``root``: crops of photos
    that the other folder has none of."""
    size = photos.SIZES[model]
    calib = photos.write_photo_crops(Path(root) / f"{model}-calib", photos=photos.CALIBRATION_PHOTOS,
                                     per_photo=calib_per_photo, size=size, seed=0)
    evaluation = photos.write_photo_crops(Path(root) / f"{model}-eval", photos=photos.EVALUATION_PHOTOS,
                                          per_photo=eval_per_photo, size=size, seed=1)
    return calib, evaluation


def photo_of(path: Path) -> str:
    """The photo a crop file was cut from (``<photo>_<n>.png``)."""
    return Path(path).stem.rsplit("_", 1)[0]


def check_split(calib: Path, evaluation: Path) -> set[str]:
    """The photos of the evaluation folder; raises if the calibration folder has any of them."""
    seen = {photo_of(p) for p in Path(calib).glob("*.png")}
    judged = {photo_of(p) for p in Path(evaluation).glob("*.png")}
    shared = seen & judged
    if shared:
        raise ValueError(f"calibration and evaluation crops share photos: {sorted(shared)}")
    return judged


def load_crops(folder: Path) -> np.ndarray:
    """The crops of ``folder`` as the app reads an image folder: file-name order, RGB, imagenet mean/std,
    [N, 3, H, W] float32."""
    from PIL import Image

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".png")
    arr = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files]).astype(np.float32)
    arr = arr.transpose(0, 3, 1, 2) / 255.0
    return ((arr - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def reference_logits(model: str, x: np.ndarray) -> np.ndarray:
    """The fp32 PyTorch model's logits on ``x``."""
    import torch

    net = photos.pretrained(model)
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(x[i:i + 8])).numpy() for i in range(0, len(x), 8)])


# ---------------------------------------------------------------------------- figures
def figures(ref: np.ndarray, got: np.ndarray) -> dict:
    """Confident agreement (and on how many samples), top-1 agreement and mean cosine of ``got`` vs ``ref``."""
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    got = np.asarray(got, np.float64).reshape(len(got), -1)
    conf, count = photos.confident_agreement(ref, got, 0.1)
    cos = (ref * got).sum(1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1), 1e-30)
    return {"confident_agreement": conf, "confident_n": count, "samples": len(ref),
            "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()), "cosine": float(cos.mean())}


def goal_met(row: dict) -> bool | None:
    """Whether an int8 row meets issue 32's goal; None when a figure is missing."""
    need = (row.get("confident_agreement"), row.get("cosine"), row.get("speedup"))
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in need):
        return None
    return bool(need[0] >= GOAL_AGREEMENT and need[1] >= GOAL_COSINE
                and need[2] >= GOAL_SPEEDUP.get(row["runtime"], 1.5))


# ---------------------------------------------------------------------------- the CLI, as a user runs it
def convert_flags(python: str = sys.executable) -> set[str]:
    """The long flags ``main.py convert`` accepts here (from its --help)."""
    out = subprocess.run([python, str(ROOT / "main.py"), "convert", "--help"], capture_output=True, text=True,
                         cwd=ROOT, env=_env(), timeout=300)
    return set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", out.stdout))


def convert_command(model: str, runtime: str, mode: str, calib: Path, evaluation: Path, out: Path, *,
                    budget: str, flags: set[str], python: str = sys.executable) -> list[str]:
    """``main.py convert`` for ``mode``: fp32, automatic (int8) or budget (int8 with --accuracy-budget)."""
    size = photos.SIZES[model]
    cmd = [python, str(ROOT / "main.py"), "convert", str(photos.weights(model)), "--arch", FACTORIES[model],
           "--input", f"x:1x3x{size}x{size}", "--to", RUNTIMES[runtime], "--out", str(out), "--overwrite", "--json"]
    if mode == "fp32":
        return cmd + ["--precision", "fp32"]
    cmd += ["--precision", "int8", "--data", str(calib)]
    if "--eval-data" in flags:
        cmd += ["--eval-data", str(evaluation)]
    if mode == "budget":
        cmd += ["--accuracy-budget", budget]
    elif mode != "automatic":
        raise ValueError(f"unknown mode {mode!r}")
    return cmd


def run_convert(cmd: list[str], timeout: float) -> dict:
    """Run one conversion; its --json object plus ``exit_code`` (1 with an artifact: a budget not met)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "exit_code": None, "message": f"no result after {timeout:.0f} s"}
    try:
        result = json.loads(proc.stdout)
    except json.JSONDecodeError:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
        result = {"status": "error", "message": f"no JSON on stdout: {tail[0][:300]}"}
    result["exit_code"] = proc.returncode
    return result


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def budget_summary(result: dict) -> str:
    """One short phrase on what the budget loop did (rounds, met or not), from the --json object."""
    budget = result.get("accuracy_budget")
    if not isinstance(budget, dict):
        return ""
    rounds = budget.get("rounds")
    met = budget.get("met")
    n = len(rounds) if isinstance(rounds, list) else "?"
    floats = budget.get("float_nodes")
    kept = f", {len(floats)} float nodes" if isinstance(floats, list) and floats else ""
    return f"{n} rounds, {'met' if met else 'not met' if met is not None else '?'}{kept}"


# ---------------------------------------------------------------------------- judging the artifacts
def runner_for(path: Path, threads: int | None):
    from app.bench.runners import runners_for_artifact

    return runners_for_artifact(Path(path), providers=["CPUExecutionProvider"], threads=threads, openvino=False)[0]


def artifact_logits(path: Path, x: np.ndarray, threads: int | None = None) -> np.ndarray:
    """``path``'s outputs on each sample of ``x`` (batch 1), through the app's runner for that artifact."""
    from app.bench.runners import artifact_inputs

    specs = artifact_inputs(Path(path))
    name = specs[0].name if specs else "x"
    with runner_for(path, threads) as runner:
        runner.load()
        return np.concatenate([runner.infer({name: x[i:i + 1]})[0].reshape(1, -1) for i in range(len(x))])


def time_against_fp32(fp32: Path, int8: list[Path], *, runs: int, rounds: int, min_seconds: float,
                      threads: int | None = None) -> dict[str, float]:
    """p50 ms of the fp32 artifact and of each int8 one, measured together in this process by the app's
    harness (interleaved rounds, warm-up, median); keyed by artifact path."""
    from app.bench.harness import BenchConfig, run_benchmark
    from app.bench.runners import artifact_inputs

    specs = artifact_inputs(Path(fp32))
    config = BenchConfig(runs=runs, rounds=rounds, min_seconds=min_seconds, threads=threads)
    base = runner_for(fp32, threads)
    others = [runner_for(p, threads) for p in int8]
    for i, runner in enumerate([base, *others]):   # two int8 artifacts may share a file name (other folders)
        runner.name = f"{i}:{runner.name}"
    result = run_benchmark(base, others, specs, config)
    by_name = {r.name: r.stats.p50_ms for r in result.rows}
    out = {str(fp32): by_name.get(base.name)}
    for runner, path in zip(others, int8):
        out[str(path)] = by_name.get(runner.name)
    for s in result.skipped:
        print(f"  timing skipped {s.name}: {s.reason}", file=sys.stderr)
    return out


# ---------------------------------------------------------------------------- table
@dataclass
class Row:
    model: str
    runtime: str
    mode: str
    confident_agreement: float | None = None
    confident_n: int | None = None
    samples: int | None = None
    top1_agreement: float | None = None
    cosine: float | None = None
    ms: float | None = None
    fp32_ms: float | None = None
    speedup: float | None = None
    goal_met: bool | None = None
    artifact: str | None = None
    exit_code: int | None = None
    note: str = ""
    convert: dict = field(default_factory=dict)

    def finish(self) -> "Row":
        if self.ms and self.fp32_ms:
            self.speedup = self.fp32_ms / self.ms
        self.goal_met = goal_met(asdict(self))
        return self


def _f(v, fmt: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return format(v, fmt)


HEADER = ("model", "runtime", "int8 mode", "conf. agreement (n)", "top-1 agr.", "cosine", "ms", "fp32 ms",
          "speed-up", "goal met")


def table(rows: list[Row]) -> str:
    """The markdown table of ``rows`` (one per int8 artifact)."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for r in rows:
        conf = f"{_f(r.confident_agreement, '.3f')} ({r.confident_n if r.confident_n is not None else '–'})"
        goal = {True: "yes", False: "**no**", None: "–"}[r.goal_met]
        cells = (r.model, r.runtime, r.mode + (f" ({r.note})" if r.note else ""), conf, _f(r.top1_agreement, ".3f"),
                 _f(r.cosine, ".4f"), _f(r.ms, ".2f"), _f(r.fp32_ms, ".2f"),
                 (_f(r.speedup, ".2f") + "×") if r.speedup else "–", goal)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def cpu_header() -> str:
    """The CPU's model name and the ISA flags that decide int8 kernels."""
    from app.bench.harness import _cpu_name
    from app.machine.hardware import detect_cpu

    cpu = detect_cpu()
    feats = ", ".join(cpu.features()) or "no AVX2"
    return f"CPU: {_cpu_name()} ({os.cpu_count()} logical cores; ISA: {feats})"


# ---------------------------------------------------------------------------- the benchmark
def bench_model(model: str, runtimes: list[str], args, work: Path, flags: set[str]) -> list[Row]:
    calib, evaluation = write_crops(work, model, args.calib_per_photo, args.eval_per_photo)
    judged = check_split(calib, evaluation)
    x = load_crops(evaluation)
    ref = reference_logits(model, x)
    print(f"{model}: {len(list(calib.glob('*.png')))} calibration crops of {len(photos.CALIBRATION_PHOTOS)} photos, "
          f"{len(x)} evaluation crops of {len(judged)} other photos", file=sys.stderr)
    rows = []
    for runtime in runtimes:
        built = {}
        for mode in ("fp32", *args.modes):
            out = work / f"{model}-{runtime}-{mode}"
            cmd = convert_command(model, runtime, mode, calib, evaluation, out, budget=args.budget, flags=flags)
            print(f"  {model} {runtime} {mode}: converting…", file=sys.stderr, flush=True)
            result = run_convert(cmd, args.convert_timeout)
            artifact = result.get("artifact")
            built[mode] = (result, Path(artifact) if artifact and Path(artifact).exists() else None)
            if built[mode][1] is None:
                print(f"  {model} {runtime} {mode}: no artifact ({result.get('status')}: "
                      f"{str(result.get('message'))[:200]})", file=sys.stderr)
        fp32 = built["fp32"][1]
        int8 = [(mode, *built[mode]) for mode in args.modes]
        timings = {}
        ready = [p for _, _, p in int8 if p is not None]
        if fp32 is not None and ready:
            try:
                timings = time_against_fp32(fp32, ready, runs=args.runs, rounds=args.rounds,
                                            min_seconds=args.min_seconds)
            except Exception as e:  # noqa: BLE001 — keep the accuracy figures
                print(f"  timing failed: {e}", file=sys.stderr)
        for mode, result, path in int8:
            row = Row(model, runtime, mode, exit_code=result.get("exit_code"),
                      artifact=str(path) if path else None,
                      convert={k: result.get(k) for k in ("status", "message", "seconds", "evaluation",
                                                          "accuracy_budget", "warnings")})
            if mode == "budget":
                row.note = budget_summary(result)
            if path is None:
                row.note = f"{result.get('status')}: {str(result.get('message'))[:80]}"
            else:
                try:
                    row.__dict__.update(figures(ref, artifact_logits(path, x)))
                except Exception as e:  # noqa: BLE001
                    row.note = f"could not run: {str(e)[:80]}"
                row.ms = timings.get(str(path))
                row.fp32_ms = timings.get(str(fp32)) if fp32 else None
            rows.append(row.finish())
            print(table([row]).splitlines()[-1], file=sys.stderr, flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="lite0,lite1", help="lite0,lite1")
    p.add_argument("--runtimes", default="onnx,openvino,executorch", help="onnx,openvino,executorch,litert (litert: no --accuracy-budget yet, use --modes automatic)")
    p.add_argument("--budget", default="cosine=0.99", help="the --accuracy-budget text (default cosine=0.99)")
    p.add_argument("--calib-per-photo", type=int, default=8, help="calibration crops per photo (8 photos)")
    p.add_argument("--eval-per-photo", type=int, default=16, help="evaluation crops per photo (8 other photos)")
    p.add_argument("--runs", type=int, default=100, help="timed calls per artifact")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--min-seconds", type=float, default=2.0, help="timed duration per artifact (at least)")
    p.add_argument("--convert-timeout", type=float, default=3600, help="seconds one conversion may take")
    p.add_argument("--modes", default=",".join(MODES), help="automatic,budget (the int8 builds judged)")
    p.add_argument("--quick", action="store_true", help="smoke test: lite0, 2+2 crops per photo, first runtime")
    p.add_argument("--keep", type=Path, help="keep the crops and artifacts in this folder")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in models if m not in FACTORIES] + [r for r in runtimes if r not in RUNTIMES]
    bad += [m for m in args.modes if m not in MODES]
    if bad or not models or not runtimes:
        print(f"error: unknown or no model/runtime {bad}: --models from {', '.join(FACTORIES)}, --runtimes from "
              f"{', '.join(RUNTIMES)}", file=sys.stderr)
        return 2
    if args.quick:
        models, runtimes = models[:1], runtimes[:1]
        args.calib_per_photo, args.eval_per_photo = 2, 2
        args.runs, args.rounds, args.min_seconds = 10, 2, 0.2
    flags = convert_flags()
    header = cpu_header()
    print(header)
    print(f"budget: --accuracy-budget {args.budget}; --eval-data {'passed' if '--eval-data' in flags else 'not in this CLI'}"
          f"; goal: confident agreement ≥ {GOAL_AGREEMENT}, cosine ≥ {GOAL_COSINE}, speed-up ≥ 1.5× "
          f"(ExecuTorch, LiteRT ≥ 1.2×) over the same runtime's fp32")
    work_root = args.keep or Path(tempfile.mkdtemp(prefix="bench-int8-photos-"))
    work_root.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for model in models:
            rows += bench_model(model, runtimes, args, work_root, flags)
    finally:
        if args.keep is None:
            import shutil

            shutil.rmtree(work_root, ignore_errors=True)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": header, "budget": args.budget,
                                         "eval_data_flag": "--eval-data" in flags,
                                         "rows": [asdict(r) for r in rows]}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
