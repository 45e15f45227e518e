"""Check a packed artifact on this machine: ``python check.py`` in the folder ``main.py pack`` wrote.

Needs only numpy and the artifact's runtime (onnxruntime for .onnx, openvino for .xml). Runs the
artifact on the packed samples, compares its outputs with the source model's (recorded at pack time),
prints cosine mean/min, max abs error, relative L2 and top-1 agreement (for class scores) and this
machine's instruction sets, and exits 0 when the budget in pack.json holds here, 1 when it does not,
2 when the pack is incomplete or the runtime is missing.

(Written by Model Deployment Studio's ``pack``; self-contained on purpose: no imports of the app.)
"""

import json
import math
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
# the instruction sets that matter for inference, as the app names them (app.machine.hardware.ISA_FEATURES)
ISA = (("AVX2", ("avx2",)), ("AVX-512", ("avx512f",)), ("VNNI", ("avx512_vnni", "avx_vnni")),
       ("AVX-512 BF16", ("avx512_bf16",)), ("AMX", ("amx_bf16", "amx_int8")))


def this_machine():
    """This CPU's name, machine type and the instruction sets that matter for inference."""
    name, flags = "", set()
    if sys.platform.startswith("linux"):
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    key = key.strip().lower()
                    if key == "model name" and not name:
                        name = value.strip()
                    elif key in ("flags", "features") and not flags:
                        flags = set(value.split())
        except OSError:
            pass
    features = [label for label, names in ISA if any(n in flags for n in names)]
    return {"cpu": name or platform.processor() or platform.machine(), "machine": platform.machine(),
            "features": features, "flags_read": bool(flags)}


def load_samples(pack):
    n_out = len(pack["outputs"])
    samples = []
    with np.load(HERE / "samples.npz", allow_pickle=False) as z:
        for i in range(int(pack["samples"]["count"])):
            feeds = {name: z[f"s{i}_in{k}"] for k, name in enumerate(pack["inputs"])}
            outs = [z[f"s{i}_out{j}"] for j in range(n_out)]
            label = z[f"s{i}_label"] if f"s{i}_label" in z.files else None
            samples.append((feeds, outs, label))
    return samples


def runner(pack):
    """A function feeds → list of outputs, in the artifact's own runtime."""
    path = HERE / pack["artifact"]
    if pack["runtime"] == "onnxruntime":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds), f"onnxruntime {ort.__version__}"
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", pack.get("openvino_config") or {})

    def run(feeds):
        result = compiled(feeds)
        return [np.asarray(result[o]) for o in compiled.outputs]

    return run, f"openvino {ov.__version__}"


def _rows(outputs):
    floats = [o for o in outputs if o.dtype.kind == "f" and o.ndim >= 1]
    if not floats:
        floats = [o.astype(np.float64) for o in outputs if o.ndim >= 1]
    batch = floats[0].shape[0]
    return np.concatenate([o.reshape(batch, -1).astype(np.float64) for o in floats], axis=1)


def metrics(samples, got):
    """The app's figures (app.accuracy.evaluation.compare_outputs, app.accuracy.verify.compare): per batch row, every float
    output joined; cosine and relative L2 per row; max abs error over everything; top-1 on the first
    output shaped like class scores ([batch, classes], float)."""
    reference = [s[1] for s in samples]
    head = next((j for j, o in enumerate(reference[0]) if o.ndim == 2 and o.shape[1] > 1 and o.dtype.kind == "f"),
                None)
    cosines, rels, agree, s1, a1 = [], [], [], [], []
    max_abs = 0.0
    for (feeds, ref, label), out in zip(samples, got):
        out = [np.asarray(o) for o in out]
        if len(out) != len(ref) or any(r.shape != o.shape for r, o in zip(ref, out)):
            raise ValueError(f"the artifact returns shapes {[list(o.shape) for o in out]}, "
                             f"the source {[list(r.shape) for r in ref]}")
        r, g = _rows(ref), _rows(out)
        nr, ng = np.linalg.norm(r, axis=1), np.linalg.norm(g, axis=1)
        diff = np.linalg.norm(g - r, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where((nr > 0) & (ng > 0), np.sum(r * g, axis=1) / (nr * ng), np.where(nr == ng, 1.0, 0.0))
            rel = np.where(nr > 0, diff / nr, diff)
        finite = np.all(np.isfinite(g), axis=1)
        cosines.extend(np.where(finite, cos, 0.0).tolist())
        rels.extend(np.where(finite, rel, np.inf).tolist())
        for ro, go in zip(ref, out):
            d = np.abs(go.astype(np.float64) - ro.astype(np.float64))
            max_abs = max(max_abs, float(d.max()) if d.size else 0.0)
            if not np.all(np.isfinite(go)):
                max_abs = math.inf
        if head is not None:
            agree.extend((np.argmax(ref[head], 1) == np.argmax(out[head], 1)).tolist())
            if label is not None:
                s1.extend((np.argmax(ref[head], 1) == label).tolist())
                a1.extend((np.argmax(out[head], 1) == label).tolist())
    mean = lambda xs: float(np.mean(xs)) if len(xs) else None  # noqa: E731
    drop = mean(s1) - mean(a1) if s1 else None
    return {"samples": len(cosines), "cosine_mean": float(np.mean(cosines)), "cosine_min": float(np.min(cosines)),
            "max_abs_err": max_abs, "rel_l2_mean": float(np.mean(rels)), "rel_l2_max": float(np.max(rels)),
            "top1_agreement": mean(agree), "top1_drop": drop}


def holds(budget, figures):
    value = figures.get(budget["metric"])
    if value is None:
        return None
    return value >= budget["value"] if budget["op"] == ">=" else value <= budget["value"]


def main():
    try:
        pack = json.loads((HERE / "pack.json").read_text())
        samples = load_samples(pack)
    except (OSError, ValueError, KeyError) as e:
        print(f"error: the pack is incomplete or damaged ({e}); run main.py pack again", file=sys.stderr)
        return 2
    try:
        run, runtime = runner(pack)
    except ImportError as e:
        need = "onnxruntime" if pack["runtime"] == "onnxruntime" else "openvino"
        print(f"error: {need} is not installed here ({e}); pip install numpy {need}", file=sys.stderr)
        return 2
    got = [run(feeds) for feeds, _, _ in samples]
    figures = metrics(samples, got)
    here, built = this_machine(), (pack.get("build_machine") or {}).get("isa") or {}
    budget = pack["budget"]
    ok = holds(budget, figures)
    print(f"artifact: {pack['artifact']} ({pack.get('precision')}, {runtime}, numpy {np.__version__})")
    print(f"this machine: {here['cpu']} [{here['machine']}] {' · '.join(here['features']) or 'no AVX2/VNNI found'}")
    print(f"built on:     {built.get('cpu')} [{built.get('machine')}] {' · '.join(built.get('features') or [])}")
    built_features = built.get("features")
    if here["flags_read"] and built_features is not None and sorted(here["features"]) != sorted(built_features):
        print("note: this CPU's instruction sets differ from the build machine's: int8 kernels may compute "
              "differently here")
    print(f"samples: {figures['samples']} ({pack['samples'].get('kind')})")
    print(f"cosine mean {figures['cosine_mean']:.6f} / min {figures['cosine_min']:.6f}, "
          f"max abs error {figures['max_abs_err']:.4g}, rel L2 mean {figures['rel_l2_mean']:.4g} / "
          f"max {figures['rel_l2_max']:.4g}"
          + (f", top-1 agreement {figures['top1_agreement']:.1%}" if figures["top1_agreement"] is not None else "")
          + (f", top-1 drop {figures['top1_drop'] * 100:.2f} pt" if figures["top1_drop"] is not None else ""))
    built_figures = pack.get("build_metrics") or {}
    if "cosine_mean" in built_figures:
        print(f"at build:      cosine mean {built_figures['cosine_mean']:.6f} / min {built_figures['cosine_min']:.6f}")
    print("metrics: " + json.dumps(figures))
    verdict = f"budget {budget['metric']} {budget['op']} {budget['value']:g} ({budget.get('from', '')})"
    if ok is None:
        print(f"FAIL: {verdict}: {budget['metric']} cannot be measured on these samples")
        return 1
    print(f"{'OK' if ok else 'FAIL'}: {verdict}: {figures[budget['metric']]:.6g} here")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
