"""Wall time of ``convert`` against the bare library calls it wraps, on a ResNet-18 (11.7 M params).

    python benchmarks/bench_convert_overhead.py [--repeat 3] [--json FILE]

"bare" = what a user would write by hand: build the network and load the state dict, then
torch.onnx.export (dynamo) + one ONNX Runtime session and one inference (resp. torch.jit.trace +
freeze + save + load + one inference). "studio" =
app.pipeline.convert with the same input spec: loading the state dict, export, re-loading the
artifact, verification on three input sets, SHA-256 manifest, atomic placement. Medians of
--repeat alternating runs; the ratio is studio / bare (goal ≤ 1.3×).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")


def load(state: Path):
    import torch

    from tests.models import ResNet18

    model = ResNet18()
    model.load_state_dict(torch.load(state, weights_only=True))
    return model.eval()


def bare_onnx(state: Path, x, out: Path) -> None:
    import onnxruntime as ort
    import torch

    model = load(state)
    with contextlib.redirect_stdout(io.StringIO()):
        torch.onnx.export(model, (x,), str(out), input_names=["x"], dynamo=True, external_data=False)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    sess.run(None, {"x": x.numpy()})


def bare_trace(state: Path, x, out: Path) -> None:
    import torch

    model = load(state)
    with torch.no_grad():
        traced = torch.jit.freeze(torch.jit.trace(model, (x,)))
    torch.jit.save(traced, str(out))
    torch.jit.load(str(out))(x)


def studio(state: Path, target: str, out_dir: Path) -> dict:
    from app.jobs import convert_in_process as convert
    from app.request import ConversionRequest, ModelSource
    from app.model.specs import parse_input

    source = ModelSource(state, inputs=(parse_input("x:1x3x224x224"),), arch="tests.models:ResNet18")
    result = convert(ConversionRequest(source, target, out_dir=out_dir, overwrite=True))
    return result.to_json()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()

    import torch

    from tests.models import ResNet18

    torch.manual_seed(0)
    model = ResNet18().eval()
    x = torch.randn(1, 3, 224, 224)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        state = tmp / "resnet18.pt"
        torch.save(model.state_dict(), state)
        for target, bare in (("onnx", bare_onnx), ("torchscript-trace", bare_trace)):
            t_bare, t_studio = [], []
            # one untimed round of each first: the first dynamo export pays one-off import costs
            bare(state, x, tmp / "warm.bin")
            studio(state, target, tmp / "out")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                bare(state, x, tmp / ("bare.onnx" if target == "onnx" else "bare.pt"))
                t_bare.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                res = studio(state, target, tmp / "out")
                t_studio.append(time.perf_counter() - t0)
            b, s = statistics.median(t_bare), statistics.median(t_studio)
            rows.append({"target": target, "bare_s": round(b, 3), "studio_s": round(s, 3), "ratio": round(s / b, 3),
                         "verified": res["verification"]["passed"], "repeat": args.repeat})
    machine = {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
               "python": platform.python_version(), "torch": torch.__version__}
    print(f"machine: {machine}")
    print(f"{'target':20} {'bare (s)':>9} {'studio (s)':>11} {'ratio':>6}  verified")
    for r in rows:
        print(f"{r['target']:20} {r['bare_s']:9.2f} {r['studio_s']:11.2f} {r['ratio']:6.2f}  {r['verified']}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "results": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
