"""Fuzz the model loaders: mutate real files of every format (and hostile ones), load each in a
fenced child, count what happens.

    python benchmarks/fuzz_loaders.py [--cases 10000] [--seed 0] [--batch 100] [--json FILE]

Half the cases flip, cut, splice, insert or zero raw bytes; the other half do the same inside one
member of a zip archive (mostly its pickle or JSON config) and rewrite the archive with valid
checksums, so they reach torch's readers instead of stopping at the CRC check.

Seeds: a state dict (zip), a legacy (non-zip) torch.save file, a pickled nn.Module (loaded with
--allow-pickle), TorchScript, a torch.export .pt2, ONNX, safetensors, and hostile files from
tests/hostile.py (a pickle calling io.open, a Conv2d with a hidden payload, a .pt2 with a pickled
weight) whose payloads would create marker files. Every case must end within 10 s as a loaded model
or a clean one-line error; crashes (the child died), hangs, errors that are not clean ("unhandled")
and side effects (a marker file that exists afterwards, or any file that appeared beside the cases)
are counted, and crashing/hanging inputs are kept in the current folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sample_files(folder: Path) -> dict[str, tuple[Path, bool]]:
    """Seed name -> (file, load with --allow-pickle)."""
    import warnings

    import torch
    from safetensors.torch import save_file

    from tests import models
    from tests.hostile import build, build_pt2

    warnings.filterwarnings("ignore")
    m = models.make("cnn")
    x = torch.randn(2, 3, 32, 32)
    f = {name: folder / name for name in ("cnn.pt", "cnn_legacy.pt", "seq_module.pt", "cnn_ts.pt", "cnn.pt2",
                                          "cnn.onnx", "cnn.safetensors")}
    torch.save(m.state_dict(), f["cnn.pt"])
    torch.save(m.state_dict(), f["cnn_legacy.pt"], _use_new_zipfile_serialization=False)
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()), f["seq_module.pt"])
    torch.jit.save(torch.jit.script(m), str(f["cnn_ts.pt"]))
    torch.export.save(torch.export.export(m, (x,)), str(f["cnn.pt2"]))
    torch.onnx.export(m, (x,), str(f["cnn.onnx"]), dynamo=True, external_data=False)
    save_file(m.state_dict(), str(f["cnn.safetensors"]))
    hostile = folder / "hostile"
    hostile.mkdir()
    seeds = {"state_dict": (f["cnn.pt"], False), "legacy_pickle": (f["cnn_legacy.pt"], True),
             "pickled_module": (f["seq_module.pt"], True), "torchscript": (f["cnn_ts.pt"], False),
             "pt2": (f["cnn.pt2"], False), "onnx": (f["cnn.onnx"], False), "safetensors": (f["cnn.safetensors"], False)}
    seeds["hostile_pickle"] = (build("io_open", hostile)[0], True)
    seeds["hostile_conv2d"] = (build("conv2d_hidden_attribute", hostile)[0], True)
    seeds["hostile_pt2"] = (build_pt2("pt2_use_pickle", hostile)[0], True)
    return seeds


def markers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("marker-*"))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=100, help="cases per fenced child")
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    from app.safety.sandbox import status
    from tests.fuzz import OUTCOMES, mutate, mutate_member, run_batch

    rng = random.Random(args.seed)
    outcomes: dict[str, Counter] = {}
    kept = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        seeds = sample_files(root)
        cases_dir = root / "cases"
        cases_dir.mkdir()
        names = list(seeds)
        side_effects = len(markers(root))  # 0: building the seeds ran no payload
        done = 0
        while done < args.cases:
            for name in names:
                if done >= args.cases:
                    break
                src, allow_pickle = seeds[name]
                n = min(args.batch, args.cases - done)
                data = src.read_bytes()
                batch = []
                for i in range(n):
                    case = cases_dir / f"{name}-{done + i}{src.suffix}"
                    # half the cases mutate inside a zip member (valid checksums), half the raw bytes
                    case.write_bytes(mutate_member(data, rng) if rng.random() < 0.5 else mutate(data, rng))
                    batch.append(case)
                results = run_batch(batch, allow_pickle=allow_pickle)
                for case, outcome in zip(batch, results):
                    outcomes.setdefault(name, Counter())[outcome] += 1
                    if outcome in ("crash", "hang", "unhandled"):
                        keep = Path(f"fuzz-{outcome}-{case.name}")
                        keep.write_bytes(case.read_bytes())
                        kept.append(str(keep))
                    case.unlink()
                strays = [q for q in cases_dir.iterdir()]
                side_effects += len(strays)
                for q in strays:
                    q.unlink()
                done += n
                print(f"… {done}/{args.cases} cases, {time.monotonic() - started:.0f} s", file=sys.stderr)
        side_effects += len(markers(root))
    seconds = time.monotonic() - started
    total = Counter()
    header = f"{'seed':16} " + " ".join(f"{o:>9}" for o in OUTCOMES)
    print(header)
    for name, c in outcomes.items():
        total.update(c)
        print(f"{name:16} " + " ".join(f"{c[o]:9d}" for o in OUTCOMES))
    print(f"{'total':16} " + " ".join(f"{total[o]:9d}" for o in OUTCOMES))
    print(f"{sum(total.values())} cases in {seconds:.0f} s; side effects {side_effects}; seed {args.seed}; "
          f"{platform.machine()} {platform.release()}; {status()[1]}")
    for k in kept:
        print(f"kept {k}")
    if args.json:
        args.json.write_text(json.dumps({"cases": sum(total.values()), "seed": args.seed, "seconds": round(seconds, 1),
                                         "total": dict(total), "side_effects": side_effects,
                                         "by_seed": {k: dict(v) for k, v in outcomes.items()}, "kept": kept}))
    bad = total["crash"] + total["hang"] + total["unhandled"] + side_effects
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
