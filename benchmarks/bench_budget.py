"""INT8 engines against each other on one CNN: top-1 agreement with fp32 and the speed-up over fp32 ONNX.

    python benchmarks/bench_budget.py [--runs 200] [--budget cosine=0.99999] [--json FILE]

Rows, every one on the same held-out samples (the app's split of the data, seed 0) and calibrated on
the same calibration part:

- the app's ONNX int8, automatic (``--precision int8 --data``), and with ``--accuracy-budget`` (the
  quantizer search, then nodes in float);
- ONNX Runtime's ``quantize_static`` with its defaults (QDQ, signed int8 activations and weights,
  per-tensor, MinMax), on the fp32 ONNX as exported;
- NNCF's ``quantize`` with its defaults and NNCF's ``quantize_with_accuracy_control`` (metric: the
  budget's — mean cosine to fp32, or top-1 — its slack as ``max_drop``), on the fp32 ONNX read by
  OpenVINO;
- the app's OpenVINO int8 with ``--accuracy-budget`` (NNCF settings searched, then NNCF's accuracy
  control as the peer; the row says which engine won).

Top-1 agreement: the share of held-out samples whose arg-max matches the fp32 ONNX's. Speed: median
latency of one sample over ``--runs`` calls after 20 warm-up calls; ONNX files in ONNX Runtime, IRs in
OpenVINO (CPU plugin, its defaults), each against the fp32 ONNX in ONNX Runtime. The machine line
names the CPU and its instruction sets (``app.machine.hardware``).

The model: a CNN trained here on scikit-learn's digits (32x32, real handwritten digits). The issue asks
for a pretrained CNN on real photos (scikit-image's bundled photos); neither scikit-image nor a
pretrained CNN's weights are installed offline in this project, so ``--model/--arch/--input/--data``
take any state dict, its architecture and an image folder to run the same comparison on one.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
from benchmarks.bench_accuracy import median_ms, text_table  # noqa: E402


def _app(state: Path, target: str, out: Path, common: dict, budget: str | None = None):
    from app.jobs import convert_in_process as convert
    from tests.requests import request

    options = {"accuracy_budget": budget, "keep_failed": True} if budget else {}   # kept even below the speed floor
    return convert(request(state, target, "int8" if target else "fp32", out_dir=out / (target + (budget and "-budget" or "")),
                           overwrite=True, **common, **options))


def _fp32(state: Path, out: Path, common: dict):
    from app.jobs import convert_in_process as convert
    from tests.requests import request

    return convert(request(state, "onnx", "fp32", out_dir=out / "fp32", overwrite=True,
                           **{k: v for k, v in common.items() if k != "data"}))


def _outputs(run, samples) -> list:
    import numpy as np

    return [np.asarray(run(feeds)) for feeds in samples]


def _agreement(reference: list, got: list) -> float:
    import numpy as np

    return float(np.mean([np.argmax(r.reshape(r.shape[0], -1), 1)[0] == np.argmax(g.reshape(g.shape[0], -1), 1)[0]
                          for r, g in zip(reference, got)]))


def _cosine(reference: list, got: list) -> float:
    import numpy as np

    return float(np.mean([np.dot(r.ravel(), g.ravel()) / (np.linalg.norm(r) * np.linalg.norm(g) or 1.0)
                          for r, g in zip(reference, got)]))


def _quiet():
    """NNCF's progress bars off the console (the table is what this prints)."""
    import contextlib
    import io

    stack = contextlib.ExitStack()
    stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
    stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
    return stack


def _ort(path: Path):
    from app.runtimes.onnxrt import ort_session

    sess = ort_session(Path(path))
    return lambda feeds: sess.run(None, feeds)[0]


def _ov(model):
    import openvino as ov

    compiled = ov.Core().compile_model(model, "CPU")
    out = compiled.outputs[0]
    return lambda feeds: compiled(feeds)[out]


def compare(state: Path, arch: str, arch_kwargs: tuple, input_spec: str, data: Path, budget_text: str,
            runs: int, out: Path) -> list[dict]:
    import numpy as np
    import openvino as ov
    from onnxruntime.quantization import quantize_static

    from app.accuracy.budget import AccuracyBudget
    from app.accuracy.data import load_data
    from app.request import DataSource
    from app.model.specs import TensorSpec
    from converters.calibration import feeds_reader
    from converters.openvino import nncf_module

    nncf = nncf_module()       # its logging kept to errors, as the app keeps it
    budget = AccuracyBudget.parse(budget_text)
    common = dict(arch=arch, arch_kwargs=arch_kwargs, inputs=[input_spec], data=data)
    name, shape = input_spec.split(":")[0], tuple(int(d) for d in input_spec.split(":")[1].split("x"))
    calibration, evaluation = load_data(DataSource(Path(data)), [TensorSpec(name, "float32", shape)]).split(0)
    fp32 = _fp32(state, out, common).artifact
    run32 = _ort(fp32)
    reference = _outputs(run32, evaluation.samples)
    fp32_ms = median_ms(lambda: run32(evaluation.samples[0]), runs)
    rows = []

    def row(label: str, run, note: str = "") -> None:
        got = _outputs(run, evaluation.samples)
        ms = median_ms(lambda: run(evaluation.samples[0]), runs)
        rows.append({"int8": label, "top1_agreement": _agreement(reference, got), "cosine_mean": _cosine(reference, got),
                     "ms": ms, "speedup_vs_fp32_onnx": fp32_ms / ms, "note": note})

    auto = _app(state, "onnx", out, common)
    row("app ONNX int8, automatic", _ort(auto.artifact), json.loads(Path(auto.manifest).read_text())["recorded"]
        .get("quantizer", {}).get("calibration_method", ""))
    looped = _app(state, "onnx", out, common, budget_text)
    b = looped.accuracy_budget
    row(f"app ONNX int8, --accuracy-budget {budget}", _ort(looped.artifact),
        f"{'met' if b['met'] else 'NOT met'}, {len(b['rounds'])} rounds, kept round {b['best_round']} "
        f"({', '.join(f'{k}={v}' for k, v in (b['quantizer'] or {}).items())}; {len(b['float_nodes'])} float nodes)")
    ort_default = out / "ort-default.int8.onnx"
    quantize_static(str(fp32), str(ort_default), feeds_reader(calibration.samples))
    row("ONNX Runtime quantize_static defaults", _ort(ort_default), "QDQ, S8S8, per-tensor, MinMax")

    ov_fp32 = ov.Core().read_model(str(fp32))
    dataset = nncf.Dataset(calibration.samples, lambda s: {name: s[name]})
    with _quiet():
        default = nncf.quantize(ov_fp32, dataset, subset_size=len(calibration))
    row("NNCF quantize defaults (OpenVINO)", _ov(default))

    def validate(compiled, items) -> tuple[float, None]:
        port = compiled.outputs[0]
        idx = list(items)
        got = [np.asarray(compiled(evaluation.samples[i])[port]) for i in idx]
        ref = [reference[i] for i in idx]
        if budget.metric == "cosine":
            return _cosine(ref, got), None
        labels = [int(evaluation.labels[i][0]) for i in idx]
        return float(np.mean([np.argmax(g) == y for g, y in zip(got, labels)])), None

    max_drop = 1 - budget.value if budget.metric == "cosine" else budget.value
    with _quiet():
        control = nncf.quantize_with_accuracy_control(
            ov.Core().read_model(str(fp32)), dataset,
            nncf.Dataset(list(range(len(evaluation))), lambda i: {name: evaluation.samples[i][name]}),
            validate, max_drop=max_drop, subset_size=len(calibration))
    row(f"NNCF quantize_with_accuracy_control (max drop {max_drop:g})", _ov(control))
    ov_looped = _app(state, "openvino", out, common, budget_text)
    b = ov_looped.accuracy_budget
    row(f"app OpenVINO int8, --accuracy-budget {budget}", _ov(ov.Core().read_model(str(ov_looped.artifact))),
        f"{'met' if b['met'] else 'NOT met'}, {len(b['rounds'])} rounds; won: {b['engine']}")
    return rows


def table(rows: list[dict]) -> str:
    head = ("int8", "top-1 agreement", "cosine", "ms", "vs fp32 ONNX", "note")
    body = [(r["int8"], f"{100 * r['top1_agreement']:.2f}%", f"{r['cosine_mean']:.6f}", f"{r['ms']:.3f}",
             f"{r['speedup_vs_fp32_onnx']:.2f}x", r["note"]) for r in rows]
    return text_table(head, body)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--budget", default="cosine=0.99999", help="the --accuracy-budget of the budget rows")
    p.add_argument("--model", type=Path, help="a state dict (default: a CNN trained here on the digits)")
    p.add_argument("--arch", default="tests.models:DigitsCNN")
    p.add_argument("--input", default="x:1x1x32x32")
    p.add_argument("--data", type=Path, help="an image folder (class subfolders) for --model")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import onnxruntime
    import openvino

    from app.machine.hardware import isa_record

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        arch_kwargs: tuple = ()
        model, data = args.model, args.data
        if model is None:
            import torch

            from tests.real_data import train_digits_cnn, write_digit_images

            size = 32
            model = out / "digits32.pt"
            torch.save(train_digits_cnn(size=size, width=16, epochs=6).state_dict(), model)
            data = write_digit_images(out / "digits32-images", size=size)
            arch_kwargs = (("width", 16), ("size", size))
        rows = compare(model, args.arch, arch_kwargs, args.input, data, args.budget, args.runs, out)
    isa = isa_record()
    machine = (f"{isa['cpu'] or isa['machine']} ({', '.join(isa['features']) or 'no AVX2'}); onnxruntime "
               f"{onnxruntime.__version__}, openvino {openvino.get_version()}")
    print(f"machine: {machine}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "isa": isa, "budget": args.budget, "results": rows},
                                        indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
