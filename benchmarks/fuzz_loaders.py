"""Fuzz the model loaders: mutate valid files of every format, load each in a supervised child.

    python benchmarks/fuzz_loaders.py [--cases 200] [--seed 0] [--json FILE]

Every case must end within 10 s as a loaded model or a clean one-line error; crashes (the child
died) and hangs are counted and listed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sample_files(folder: Path) -> dict[str, Path]:
    import warnings

    import torch
    from safetensors.torch import save_file

    from tests import models

    warnings.filterwarnings("ignore")
    m = models.make("cnn")
    x = torch.randn(2, 3, 32, 32)
    files = {"state_dict": folder / "cnn.pt", "torchscript": folder / "cnn_ts.pt", "pt2": folder / "cnn.pt2",
             "onnx": folder / "cnn.onnx", "safetensors": folder / "cnn.safetensors"}
    torch.save(m.state_dict(), files["state_dict"])
    torch.jit.save(torch.jit.script(m), str(files["torchscript"]))
    torch.export.save(torch.export.export(m, (x,)), str(files["pt2"]))
    torch.onnx.export(m, (x,), str(files["onnx"]), dynamo=True, external_data=False)
    save_file(m.state_dict(), str(files["safetensors"]))
    return files


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from tests.fuzz import mutate, run_case

    rng = random.Random(args.seed)
    outcomes: dict[str, Counter] = {}
    bad = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = sample_files(tmp)
        for i in range(args.cases):
            fmt = list(files)[i % len(files)]
            src = files[fmt]
            case = tmp / f"case{i}{src.suffix}"
            case.write_bytes(mutate(src.read_bytes(), rng))
            outcome = run_case(case)
            outcomes.setdefault(fmt, Counter())[outcome] += 1
            if outcome in ("crash", "hang"):
                kept = Path(f"fuzz-{outcome}-{i}{src.suffix}")
                kept.write_bytes(case.read_bytes())
                bad.append(str(kept))
            case.unlink()
    total = Counter()
    print(f"{'format':12} {'ok':>5} {'error':>6} {'crash':>6} {'hang':>5}")
    for fmt, c in outcomes.items():
        total.update(c)
        print(f"{fmt:12} {c['ok']:5} {c['error']:6} {c['crash']:6} {c['hang']:5}")
    print(f"{'total':12} {total['ok']:5} {total['error']:6} {total['crash']:6} {total['hang']:5}"
          f"   ({args.cases} cases, {time.monotonic() - started:.0f} s)")
    for b in bad:
        print(f"kept {b}")
    if args.json:
        args.json.write_text(json.dumps({"cases": args.cases, "seed": args.seed, "total": dict(total),
                                         "by_format": {k: dict(v) for k, v in outcomes.items()}, "kept": bad}))
    return 1 if total["crash"] or total["hang"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
