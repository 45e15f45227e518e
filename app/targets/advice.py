"""Is a target × precision expected to be faster *on this machine*, and why.

Rules of thumb from what the runtimes do with each precision on the hardware found by
:mod:`app.machine.hardware`, and from this repository's benchmark runs (README, "Results" and "OpenVINO"):
advice, not a measurement — ``bench`` measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from app.artifacts.json_file import SideFileError, read_json_object
from app.bench.saved import check_saved_result, number
from app.bench.stats import no_faster_than_fp32
from app.errors import UnsupportedCombination
from app.machine.hardware import Hardware

from converters.base import FASTER, NO_SPEEDUP, SLOWER, UNAVAILABLE, get_converter


@dataclass(frozen=True)
class Advice:
    """The expectation for one target × precision here: ``verdict`` is one of faster, no speed-up,
    slower, unavailable; ``why`` says it in one sentence."""

    verdict: str
    why: str

    def text(self) -> str:
        return f"{self.verdict}: {self.why}"

    def to_json(self) -> dict:
        return {"expected": self.verdict, "why": self.why}


def _int8(hw: Hardware, runtime: str) -> Advice:
    cpu = hw.cpu
    if cpu.amx:
        return Advice(FASTER, f"INT8 on CPU in {runtime}: AMX-INT8 and VNNI run int8 matrix products natively "
                              "(typically 2–4× fp32)")
    if cpu.vnni:
        return Advice(FASTER, f"INT8 on CPU in {runtime}: VNNI does int8 dot products in one instruction "
                              "(typically 2–4× fp32)")
    if cpu.avx2:
        accuracy = (" — ONNX Runtime's u8×s8 kernels saturate 16-bit sums without VNNI, so its int8 weights are "
                    "7-bit here (reduce_range: exact, a little less accurate than 8-bit)"
                    if runtime == "ONNX Runtime" else
                    " — int8 sums can saturate without VNNI, so NNCF keeps weights to 7 bits (overflow fix)")
        return Advice(FASTER, f"INT8 on CPU in {runtime}: faster than fp32 with AVX2, but this CPU has no VNNI, "
                              f"so less than on CPUs that have it{accuracy}")
    return Advice(NO_SPEEDUP, f"INT8 on CPU in {runtime}: without AVX2/VNNI int8 kernels gain little")


def _bf16(hw: Hardware, runtime: str) -> Advice:
    cpu = hw.cpu
    if not cpu.bf16:
        return Advice(UNAVAILABLE, cpu.bf16_refusal())
    units = "AMX tiles" if cpu.amx else "AVX-512 BF16"
    return Advice(FASTER, f"BF16 on CPU in {runtime}: {units} compute bfloat16 natively (about 2× fp32 for "
                          "matrix-heavy models, fp32 range, ~3 significant digits)")


def advise(target: str, precision: str, hw: Hardware) -> Advice:
    """The expectation for ``target`` at ``precision`` on ``hw`` (compared with eager PyTorch fp32): the
    converter's own (:meth:`converters.base.Converter.advice`), else the rules of thumb below."""
    try:
        own = get_converter(target).advice(precision, hw)
    except UnsupportedCombination:  # not a registered target: the rules of thumb (and "no advice")
        own = None
    if own is not None:
        return Advice(*own)
    gpu = hw.gpu
    if target == "tensorrt":
        if not gpu:
            return Advice(UNAVAILABLE, "TensorRT runs on NVIDIA GPUs only; there is none here (a hand-off bundle "
                                       "is written for the GPU machine)")
        return Advice(FASTER, {"fp32": f"TensorRT on {gpu}: fused kernels tuned for this GPU",
                               "fp16": f"FP16 in TensorRT on {gpu}: tensor cores, typically 2–3× fp32",
                               "int8": f"INT8 in TensorRT on {gpu}: int8 tensor cores, fastest where accuracy "
                                       "allows"}.get(precision, f"TensorRT on {gpu}"))
    if target == "openvino":
        if precision == "fp32":
            return Advice(FASTER, "OpenVINO's CPU plugin: fused, layout-optimised kernels — usually faster than "
                                  "ONNX Runtime on the same model")
        if precision == "fp16":
            return Advice(NO_SPEEDUP, "FP16 in OpenVINO on CPU: weights are stored in fp16 (half the file) and "
                                      "computed in fp32 — no speed-up on CPU; meant for Intel GPUs")
        if precision == "bf16":
            return _bf16(hw, "OpenVINO")
        return _int8(hw, "OpenVINO")
    if target == "onnx":
        if precision == "fp32":
            return Advice(FASTER, "ONNX Runtime fuses the graph (typically 1.1–1.8× eager PyTorch on CPU)")
        if precision == "fp16":
            if gpu:
                return Advice(FASTER, f"FP16 in ONNX Runtime: faster on {gpu} with the CUDA/TensorRT provider; on "
                                      "CPU no speed-up")
            return Advice(NO_SPEEDUP, "FP16 on CPU in ONNX Runtime: no speed-up (no fp16 CPU kernels: it computes "
                                      "in fp32), meant for GPU/TensorRT")
        return _int8(hw, "ONNX Runtime")
    if target in ("torchscript-trace", "torchscript-script", "torch-export"):
        runtime = "TorchScript" if target.startswith("torchscript") else "torch.export"
        if precision == "fp32":
            return Advice(NO_SPEEDUP, f"{runtime} runs PyTorch's own kernels: about eager speed (portable, "
                                      "Python-free), not a speed-up")
        if precision == "fp16":
            if gpu:
                return Advice(FASTER, f"FP16 in {runtime} on {gpu}: tensor cores (on CPU it is slower)")
            return Advice(SLOWER, f"FP16 on CPU in {runtime}: PyTorch has few fast fp16 CPU kernels — slower than "
                                  "fp32; meant for GPU")
        if precision == "bf16":
            return _bf16(hw, runtime)
        return Advice(FASTER, f"INT8 in {runtime}: dynamic quantization speeds up Linear/LSTM layers only "
                              "(convolutions stay fp32)")
    return Advice(NO_SPEEDUP, "no advice for this target")


def advice_table(converters, hw: Hardware) -> dict[str, dict[str, dict]]:
    """``{target: {precision: {"expected", "why"}}}`` for every converter's precisions."""
    return {c.name: {p: advise(c.name, p, hw).to_json() for p in c.precisions} for c in converters}


# ---------------------------------------------------------------------------- advice from measurement
RUNTIME_TARGET = {"onnxruntime": "onnx", "openvino": "openvino", "tensorrt": "tensorrt"}
ACCURATE_COSINE = 0.99  # a row below this on the benchmark's inputs does not win


def _bench_files(paths) -> list[Path]:
    found = []
    for p in map(Path, paths):
        found += sorted(p.glob("*.json")) if p.is_dir() else [p]
    return found


def _same_machine(machine: dict, hw: Hardware) -> bool:
    import platform

    if machine.get("cpu") != hw.cpu.name or machine.get("arch", platform.machine()) != platform.machine():
        return False
    isa = machine.get("isa")
    return not isinstance(isa, list) or sorted(isa) == sorted(hw.cpu.features())


def measured_here(paths, hw: Hardware) -> dict:
    """What won on this machine in the newest benchmark result among ``paths`` (saved ``bench --json``
    / ``optimize --json`` files, or folders holding them): the fastest artifact at the smallest batch
    whose cosine to the source is at least 0.99, and each runtime × precision's best row. Results taken
    on another CPU (its name, machine type or instruction sets differ) are left out and counted; files
    that cannot be used (not a regular file, not JSON, damaged) and rows whose figures are not numbers
    are left out and listed in ``ignored`` (file and reason), never waited on or crashed on."""
    mine, others, ignored = [], 0, []
    for f in _bench_files(paths):
        try:
            data = read_json_object(f, "benchmark result")
            check_saved_result(data, f)
        except SideFileError as e:
            ignored.append({"file": str(f), "why": str(e)})
            continue
        if not (isinstance(data.get("results"), list) and isinstance(data.get("machine"), dict)):
            continue
        if _same_machine(data["machine"], hw):
            mine.append((f.stat().st_mtime, f, data))
        else:
            others += 1
    out: dict = {"basis": "measured", "file": None, "other_machines": others, "winner": None, "best": {},
                 "ignored": ignored}
    if not mine:
        return out
    _, f, data = max(mine, key=lambda m: m[0])
    rows = _clean_rows(data["results"], f, ignored)
    batch = min((r["batch"] for r in rows), default=1)
    rows = [r for r in rows if r["batch"] == batch]
    out.update(file=str(f), batch=batch, cpu=data["machine"].get("cpu"))
    for r in rows:
        if r["baseline"]:
            continue
        key = f"{RUNTIME_TARGET.get(r['runtime'], r['runtime'])}/{r['precision']}"
        if key not in out["best"] or r["p50_ms"] < out["best"][key]["p50_ms"]:
            out["best"][key] = {k: r[k] for k in ("name", "runtime", "precision", "p50_ms", "speedup_vs_baseline",
                                                  "cosine", "artifact")}
    out["no_faster_than_fp32"] = no_faster_than_fp32(out["best"])
    accurate = [r for r in out["best"].values()
                if r.get("cosine") is None or r["cosine"] >= ACCURATE_COSINE]
    if accurate:
        out["winner"] = min(accurate, key=lambda r: r["p50_ms"])
    return out


def _clean_rows(results: list, f: Path, ignored: list) -> list[dict]:
    """The rows of a saved result with each field of the type it is used as (texts as text, figures as
    numbers); a row whose p50, batch or cosine is there but not a number is left out, said in ``ignored``."""
    rows = []
    for i, r in enumerate(results):
        if not isinstance(r, dict):
            continue
        p50, batch, cosine = number(r.get("p50_ms")), number(r.get("batch") or 1), number(r.get("cosine"))
        bad = [k for k, v in (("p50_ms", p50), ("batch", batch), ("cosine", cosine)) if v is None and r.get(k) is not None]
        if bad or p50 is None or batch != int(batch) or batch < 1:
            if bad:
                ignored.append({"file": str(f), "why": f"{f}: results[{i}].{bad[0]} is not a number; that row is "
                                                       "left out"})
            continue
        text = {k: None if r.get(k) is None else str(r.get(k)) for k in ("name", "runtime", "precision", "artifact")}
        rows.append({**text, "p50_ms": p50, "batch": int(batch), "cosine": cosine, "baseline": r.get("baseline") is True,
                     "speedup_vs_baseline": number(r.get("speedup_vs_baseline"))})
    return rows


def describe_measured(m: dict) -> str:
    """One line for ``targets``: what won here, or why nothing measured applies."""
    if not m.get("file"):
        extra = f" ({m['other_machines']} result(s) from other machines left out)" if m.get("other_machines") else ""
        return f"measured here: no benchmark result of this machine{extra}"
    w = m.get("winner")
    if not w:
        return f"measured here ({m['file']}, batch {m['batch']}): no artifact kept cosine >= {ACCURATE_COSINE}"
    speed = w.get("speedup_vs_baseline")
    slow = m.get("no_faster_than_fp32") or {}
    return (f"measured here ({m['file']}, batch {m['batch']}): fastest accurate: {w['name']} "
            f"({w['runtime']}, {w['precision']}) {w['p50_ms']:.3g} ms"
            + (f", {speed:.2f}× the baseline" if isinstance(speed, (int, float)) else "")
            + ("; no faster than fp32 on this CPU: " + ", ".join(
                f"{k} ({v['p50_ms']:.3g} ms vs fp32 {v['fp32_p50_ms']:.3g} ms)" for k, v in slow.items()) if slow else ""))
