"""A small real example to start from: ``python main.py example DIR`` and the window's Help ▸ Open an
example write a CNN trained (here, in seconds) on the UCI handwritten digits — 1,797 8×8 images
bundled as ``resources/digits.npz`` (the set scikit-learn ships; CC BY 4.0, Alpaydin & Kaynak) — as a
user has one: a state dict, the Python file that builds the network, and the held-out digits as an
image folder with class subfolders. Nothing is downloaded; converting to INT8 with the folder as
``--data`` gives real accuracy figures, benchmarking real speed-ups.
"""

from __future__ import annotations

from pathlib import Path

from app.errors import BadInput

DIGITS = Path(__file__).resolve().parents[2] / "resources" / "digits.npz"
MODEL, ARCH_FILE, DATA = "digits_cnn.pth", "digits_cnn.py", "digits"
INPUT = "x:1x1x8x8"

# the network, as the file a user keeps beside their weights (written into the example's folder)
ARCH_SOURCE = '''"""A small CNN for 8x8 grayscale digits (1 channel, 10 classes): the architecture of digits_cnn.pth."""

import torch
from torch import nn


class DigitsCNN(nn.Module):
    def __init__(self, width: int = 8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, padding=1), nn.BatchNorm2d(width * 2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width * 2, width * 4, 3, padding=1), nn.BatchNorm2d(width * 4), nn.ReLU(),
        )
        self.head = nn.Linear(width * 4 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(nn.functional.adaptive_avg_pool2d(self.features(x), 4).flatten(1))


def build() -> DigitsCNN:
    return DigitsCNN()
'''


def example_paths(folder: Path) -> dict[str, str]:
    folder = Path(folder)
    return {"folder": str(folder), "model": str(folder / MODEL), "arch": f"{folder / ARCH_FILE}:build",
            "input": INPUT, "data": str(folder / DATA), "readme": str(folder / "README.txt")}


def _commands(paths: dict[str, str]) -> list[str]:
    src = f"python main.py convert {paths['model']} --arch {paths['arch']} --input {paths['input']} --dynamic x:0:batch"
    out = str(Path(paths["folder"]) / "out")
    return [f"{src} --to onnx --precision fp32 --out {out}",
            f"{src} --to onnx --precision int8 --data {paths['data']} --out {out}",
            f"{src} --to openvino --precision int8 --data {paths['data']} --out {out}",
            f"python main.py bench {paths['model']} {out}/*.onnx --arch {paths['arch']} --input {paths['input']} "
            f"--dynamic x:0:batch --data {paths['data']}",
            f"python main.py report {out} --out {out}/report.html"]


def write_example(folder: Path, *, overwrite: bool = False, progress=None, epochs: int = 6) -> dict[str, str]:
    """Train the digits CNN and write it, its architecture file, the held-out digits and a README into
    ``folder``; returns :func:`example_paths`. Refuses (one line) to replace an example without ``overwrite``."""
    import numpy as np
    import torch
    from PIL import Image

    folder = Path(folder)
    paths = example_paths(folder)
    existing = [p for p in (folder / MODEL, folder / ARCH_FILE, folder / DATA) if p.exists()]
    if existing and not overwrite:
        raise BadInput(f"{folder} already holds an example ({existing[0].name}); choose an empty folder or pass --overwrite")
    folder.mkdir(parents=True, exist_ok=True)
    say = progress or (lambda stage, fraction=None: None)
    with np.load(DIGITS, allow_pickle=False) as z:
        images, labels = z["images"].astype(np.float32) / 16.0, z["labels"].astype(np.int64)
    (folder / ARCH_FILE).write_text(ARCH_SOURCE)
    namespace: dict = {}
    exec(compile(ARCH_SOURCE, str(folder / ARCH_FILE), "exec"), namespace)  # the file just written, our own text
    say("train a CNN on the digits", 0.0)
    torch.manual_seed(0)
    model = namespace["build"]()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x, y = torch.from_numpy(images[::2, None]), torch.from_numpy(labels[::2])   # every other digit trains
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        say("train a CNN on the digits", (epoch + 1) / epochs)
    model.eval()
    held_x, held_y = images[1::2], labels[1::2]
    with torch.inference_mode():
        accuracy = float((model(torch.from_numpy(held_x[:, None])).argmax(1).numpy() == held_y).mean())
    torch.save(model.state_dict(), folder / MODEL)
    say("write the held-out digits", None)
    for i, (img, label) in enumerate(zip(held_x[:300], held_y[:300])):
        sub = folder / DATA / str(label)
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img * 255).astype(np.uint8), mode="L").save(sub / f"{i:04d}.png")
    lines = ["An example to start from (written by Model Deployment Studio):", "",
             f"  {MODEL}      a CNN's weights (state dict), trained on 899 of the UCI handwritten digits",
             f"  {ARCH_FILE}       the Python file that builds the network (--arch {ARCH_FILE}:build)",
             f"  {DATA}/            300 held-out digits, 8x8 PNGs in class subfolders 0-9 (--data)", "",
             f"Its top-1 accuracy on all {len(held_y)} held-out digits: {accuracy:.3f}.", "",
             "Try, from the app's folder:", *[f"  {c}" for c in _commands(paths)], "",
             "or in the window: the model is loaded; tick ONNX FP32 and INT8, press Convert, then Benchmark."]
    (folder / "README.txt").write_text("\n".join(lines) + "\n")
    return dict(paths, accuracy=f"{accuracy:.3f}")


def example_job(payload: dict, progress=None, should_cancel=None) -> dict:
    """:func:`write_example` as a fenced child's entry point (it may write only the example's folder)."""
    return write_example(Path(payload["folder"]), overwrite=bool(payload.get("overwrite")), progress=progress)


def cmd_example(args) -> int:
    import json

    from app.jobs import run_job

    folder = args.folder.expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    result = run_job("app.examples.digits:example_job", {"folder": str(folder), "overwrite": args.overwrite},
                     writable=[folder])
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(Path(result["readme"]).read_text(), end="")
    return 0
