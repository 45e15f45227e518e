"""Calibration study for issue 32: which activation-range choices of each int8 runtime hold on photos the
calibration never saw. Uses the libraries directly (no app, no CLI) on pretrained EfficientNet-Lite.

    PYTHONPATH=. python benchmarks/study_int8_calibration.py --model lite0 --runtimes onnx,openvino,executorch \\
        --out study-lite0.jsonl

Calibration crops come from ``tests.photos.CALIBRATION_PHOTOS`` (8 per photo = 64), evaluation crops from
``EVALUATION_PHOTOS`` (16 per photo = 128, another seed); the reference is the fp32 PyTorch model. Each
choice appends one JSON line to ``--out`` and prints a table row: confident agreement (margin 0.1, with the
count), top-1 agreement, mean cosine of the logits.

- ONNX Runtime: ``quantize_static`` QDQ on the fp32 ONNX after ``quant_pre_process`` (as the app does); each
  model is run twice: with ONNX Runtime's fused int8 kernels on this CPU ("kernels": AVX2 without VNNI
  here — u8×s8 saturates) and with graph optimisations off, where QuantizeLinear/DequantizeLinear run as
  separate ops around float convolutions ("fake-quant": the calibration's effect alone, the same on every CPU).
- NNCF: ``nncf.quantize`` on ``openvino.Core().read_model`` of that ONNX, compiled on CPU with
  INFERENCE_PRECISION_HINT f32 (int8 kernels of this CPU).
- ExecuTorch PT2E: XNNPACK quantizer, ``prepare_pt2e`` → calibrate → ``convert_pt2e``, evaluated in PyTorch
  (the q/dq reference ops: fake-quant numerics, not XNNPACK's kernels; building a .pte is much slower).

"by crop" rows calibrate on other crops of the evaluation photos: what a split by crop reports.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import photos  # noqa: E402

MEAN = np.array([0.485, 0.456, 0.406], np.float32)[:, None, None]
STD = np.array([0.229, 0.224, 0.225], np.float32)[:, None, None]


def crop_batch(names, per_photo: int, size: int, seed: int) -> np.ndarray:
    """Crops as the app reads a --data image folder (file-name order, imagenet normalisation), [N, 3, S, S]."""
    named = []
    for k, name in enumerate(names):
        for n, piece in enumerate(photos.crops(photos.photo(name), per_photo, size, seed * 1000 + k)):
            named.append((f"{name}_{n:03d}", piece))
    named.sort(key=lambda t: t[0])
    arr = np.stack([p for _, p in named]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    return ((arr - MEAN) / STD).astype(np.float32)


def app_split(n: int, seed: int = 0) -> list[int]:
    """The app's calibration part of --data today (app.accuracy.data.DataSet.split: 30 %)."""
    order = np.random.default_rng(seed).permutation(n).tolist()
    return order[:min(max(1, int(round(n * 0.3))), 256, n - 1)]


def figures(ref: np.ndarray, got: np.ndarray) -> dict:
    conf, count = photos.confident_agreement(ref, got, 0.1)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    return {"confident": round(conf, 4), "confident_n": count, "n": len(ref),
            "top1": round(float((ref.argmax(1) == got.argmax(1)).mean()), 4),
            "cosine": round(float(cos.mean()), 5), "cosine_min": round(float(cos.min()), 4)}


class Study:
    def __init__(self, args):
        import torch

        torch.set_num_threads(args.threads)   # 1 on a shared machine: idle OpenMP threads spin
        self.args = args
        self.model_name = args.model
        self.size = photos.SIZES[args.model]
        self.model = photos.pretrained(args.model)
        self.calib = crop_batch(photos.CALIBRATION_PHOTOS, args.calib_per_photo, self.size, 0)
        self.evaluation = crop_batch(photos.EVALUATION_PHOTOS, args.eval_per_photo, self.size, 1)
        # other crops of the evaluation photos: calibration that a split by crop would allow
        self.calib_same = crop_batch(photos.EVALUATION_PHOTOS, args.calib_per_photo, self.size, 2)
        with torch.no_grad():
            self.ref = np.concatenate([self.model(torch.from_numpy(self.evaluation[i:i + 16])).numpy()
                                       for i in range(0, len(self.evaluation), 16)])
        self.work = Path(tempfile.mkdtemp(prefix="study-int8-"))
        self.out = Path(args.out)
        self.fp32_onnx = None
        self.pre_onnx = None

    def record(self, runtime: str, choice: str, calib: str, got: np.ndarray, seconds: float, **extra):
        row = {"model": self.model_name, "runtime": runtime, "choice": choice, "calibration": calib,
               **figures(self.ref, got), "quantize_s": round(seconds, 1), **extra}
        with self.out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{self.model_name:6} {runtime:10} {choice:58} {calib:22} conf {row['confident']:.3f} "
              f"({row['confident_n']}) top1 {row['top1']:.3f} cos {row['cosine']:.4f} [{seconds:.0f}s]", flush=True)

    def calibration(self, which: str) -> tuple[np.ndarray, str]:
        base = self.calib if which.startswith("photos") else self.calib_same
        if which.endswith("19"):
            return base[app_split(len(base))], f"{'other' if base is self.calib else 'same'} photos, {len(app_split(len(base)))}"
        return base, f"{'other' if base is self.calib else 'same'} photos, {len(base)}"

    # ------------------------------------------------------------------ ONNX
    def export(self):
        import torch
        from onnxruntime.quantization.shape_inference import quant_pre_process

        if self.pre_onnx is not None:
            return
        self.fp32_onnx = self.work / "fp32.onnx"
        x = torch.from_numpy(self.calib[:1])
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(self.model, (x,), str(self.fp32_onnx), input_names=["x"], output_names=["y"],
                              dynamo=True, external_data=False)
        self.pre_onnx = self.work / "pre.onnx"
        quant_pre_process(str(self.fp32_onnx), str(self.pre_onnx))

    def ort_run(self, path: Path, optimized: bool) -> np.ndarray:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = self.args.threads
        if not optimized:
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return np.concatenate([s.run(None, {"x": self.evaluation[i:i + 1]})[0] for i in range(len(self.evaluation))])

    def onnx(self, choice: str, calib_set: str, method="minmax", weights="uint8", per_channel=True,
             reduce_range=False):
        from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

        self.export()
        data, calib_text = self.calibration(calib_set)

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.it = iter([{"x": data[i:i + 1]} for i in range(len(data))])

            def get_next(self):
                return next(self.it, None)

        out = self.work / f"q-{abs(hash((choice, calib_set)))}.onnx"
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_static(str(self.pre_onnx), str(out), Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=per_channel, reduce_range=reduce_range, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QUInt8 if weights == "uint8" else QuantType.QInt8,
                            calibrate_method={"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                                              "percentile": CalibrationMethod.Percentile}[method],
                            extra_options={"ActivationSymmetric": False})
        seconds = time.perf_counter() - t
        self.record("onnxrt", choice + " [kernels]", calib_text, self.ort_run(out, True), seconds)
        self.record("onnxrt", choice + " [fake-quant]", calib_text, self.ort_run(out, False), seconds)
        out.unlink()

    def run_onnx(self):
        self.export()
        self.record("onnxrt", "fp32 ONNX (sanity)", "-", self.ort_run(self.fp32_onnx, True), 0)
        app = "minmax u8 weights per-ch (app default AVX2)"
        self.onnx(app, "photos19")
        self.onnx(app, "photos")
        self.onnx(app, "same19")
        self.onnx("percentile u8 weights per-ch", "photos", method="percentile")
        self.onnx("entropy u8 weights per-ch", "photos", method="entropy")
        self.onnx("minmax s8 weights per-ch (app default VNNI)", "photos", weights="int8")
        self.onnx("minmax s8 weights per-ch reduce_range", "photos", weights="int8", reduce_range=True)
        self.onnx("minmax u8 weights per-tensor", "photos", per_channel=False)
        self.onnx("percentile s8 weights per-ch", "photos", method="percentile", weights="int8")
        self.onnx("entropy s8 weights per-ch", "photos", method="entropy", weights="int8")

    # ------------------------------------------------------------------ OpenVINO / NNCF
    def nncf(self, choice: str, calib_set: str, fast_bc=True, estimator=None, overflow="enable", preset="performance"):
        import openvino as ov

        os.environ.setdefault("NNCF_TELEMETRY", "0")
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
        from nncf.quantization.range_estimator import RangeEstimatorParametersSet

        logging.getLogger("nncf").setLevel(logging.ERROR)
        self.export()
        data, calib_text = self.calibration(calib_set)
        core = ov.Core()
        model = core.read_model(str(self.fp32_onnx))
        name = model.inputs[0].get_any_name()
        advanced = {"overflow_fix": OverflowFix(overflow)}
        if estimator:
            advanced["activations_range_estimator_params"] = getattr(RangeEstimatorParametersSet, estimator)
        t = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            q = nncf.quantize(model, nncf.Dataset([data[i:i + 1] for i in range(len(data))], lambda s: {name: s}),
                              subset_size=len(data), fast_bias_correction=fast_bc,
                              preset=nncf.QuantizationPreset(preset),
                              advanced_parameters=AdvancedQuantizationParameters(**advanced))
        seconds = time.perf_counter() - t
        compiled = core.compile_model(q, "CPU", {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": self.args.threads})
        req = compiled.create_infer_request()
        got = np.concatenate([next(iter(req.infer({name: self.evaluation[i:i + 1]}).values())).copy()
                              for i in range(len(self.evaluation))])
        self.record("openvino", choice, calib_text, got, seconds)

    def run_openvino(self):
        app = "fast BC, default est., overflow enable (app AVX2)"
        self.nncf(app, "photos19")
        self.nncf(app, "photos")
        self.nncf(app, "same19")
        self.nncf("full BC, default est.", "photos", fast_bc=False)
        self.nncf("full BC, default est.", "photos19", fast_bc=False)
        self.nncf("fast BC, MEAN_MINMAX", "photos", estimator="MEAN_MINMAX")
        self.nncf("fast BC, MINMAX", "photos", estimator="MINMAX")
        self.nncf("fast BC, HISTOGRAM", "photos", estimator="HISTOGRAM")
        self.nncf("full BC, MINMAX", "photos", fast_bc=False, estimator="MINMAX")
        self.nncf("full BC, MEAN_MINMAX", "photos", fast_bc=False, estimator="MEAN_MINMAX")
        self.nncf("fast BC, default est., overflow first_layer_only", "photos", overflow="first_layer_only")
        self.nncf("fast BC, default est., preset mixed", "photos", preset="mixed")

    # ------------------------------------------------------------------ ExecuTorch PT2E
    def pt2e(self, choice: str, calib_set: str, per_channel=True, act="histogram", weight_observer=None):
        import torch
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer, get_symmetric_quantization_config)
        from torchao.quantization.pt2e import observer as obs
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

        data, calib_text = self.calibration(calib_set)
        config = get_symmetric_quantization_config(is_per_channel=per_channel)
        if act != "histogram":
            ctr = {"minmax": obs.MinMaxObserver, "moving_avg": obs.MovingAverageMinMaxObserver}[act]
            spec = config.input_activation
            spec = type(spec)(**{**spec.__dict__, "observer_or_fake_quant_ctr": ctr.with_args(eps=2 ** -12)})
            config = type(config)(spec, spec, config.weight, config.bias, config.is_qat)
        t = time.perf_counter()
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            graph = torch.export.export(self.model, (torch.from_numpy(self.calib[:1]),)).module()
            prepared = prepare_pt2e(graph, XNNPACKQuantizer().set_global(config))
            with torch.no_grad():
                for i in range(len(data)):
                    prepared(torch.from_numpy(data[i:i + 1]))
            converted = convert_pt2e(prepared)
        seconds = time.perf_counter() - t
        with torch.no_grad():
            got = np.concatenate([converted(torch.from_numpy(self.evaluation[i:i + 1])).numpy()
                                  for i in range(len(self.evaluation))])
        self.record("executorch", choice, calib_text, got, seconds)

    def run_executorch(self):
        app = "per-channel W, Histogram act. (app default)"
        self.pt2e(app, "photos19")
        self.pt2e(app, "photos")
        self.pt2e(app, "same19")
        self.pt2e("per-channel W, MinMax act.", "photos", act="minmax")
        self.pt2e("per-channel W, MinMax act.", "photos19", act="minmax")
        self.pt2e("per-channel W, MovingAvgMinMax act.", "photos", act="moving_avg")
        self.pt2e("per-tensor W, Histogram act.", "photos", per_channel=False)
        self.pt2e("per-tensor W, MinMax act.", "photos", per_channel=False, act="minmax")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="lite0", choices=sorted(photos.SIZES))
    p.add_argument("--runtimes", default="onnx,openvino,executorch")
    p.add_argument("--calib-per-photo", type=int, default=8)
    p.add_argument("--eval-per-photo", type=int, default=16)
    p.add_argument("--out", default="study-int8.jsonl")
    p.add_argument("--threads", type=int, default=1, help="threads of every runtime (1: fair on a shared machine)")
    args = p.parse_args(argv)
    study = Study(args)
    for runtime in args.runtimes.split(","):
        try:
            getattr(study, f"run_{runtime}")()
        except Exception as e:  # noqa: BLE001 — one runtime failing should not lose the others
            import traceback

            traceback.print_exc()
            print(f"{runtime}: failed: {e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
