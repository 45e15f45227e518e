"""A small real example to start from: ``python main.py example DIR`` and the window's Help ▸ Open an
example write a CNN trained (here, in seconds) on the UCI handwritten digits — 1,797 8×8 images
bundled as ``resources/digits.npz`` (the set scikit-learn ships; CC BY 4.0, Alpaydin & Kaynak) — as a
user has one: a state dict, the Python file that builds the network, and the held-out digits as an
image folder with class subfolders. Nothing is downloaded; converting to INT8 with the folder as
``--data`` gives real accuracy figures, benchmarking real speed-ups.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.artifacts import atomic_output as files, placement
from app.errors import BadInput, OutputExists

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
            "input": INPUT, "data": str(folder / DATA), "readme": str(folder / README)}


def _commands(paths: dict[str, str]) -> list[str]:
    src = f"python main.py convert {paths['model']} --arch {paths['arch']} --input {paths['input']} --dynamic x:0:batch"
    out = str(Path(paths["folder"]) / "out")
    return [f"{src} --to onnx --precision fp32 --out {out}",
            f"{src} --to onnx --precision int8 --data {paths['data']} --out {out}",
            f"{src} --to openvino --precision int8 --data {paths['data']} --out {out}",
            f"python main.py bench {paths['model']} {out}/*.onnx --arch {paths['arch']} --input {paths['input']} "
            f"--dynamic x:0:batch --data {paths['data']}",
            f"python main.py report {out} --out {out}/report.html"]


README = "README.txt"
WRITES = (MODEL, ARCH_FILE, DATA, README)   # everything the example writes: nothing else, nothing replaced unasked
PLACED = (DATA, ARCH_FILE, README, MODEL)   # the order they are moved into place


def check_free(folder: Path, overwrite: bool) -> None:
    """Refuse (one line naming the file) to replace what ``folder`` holds under a name the example
    writes, without ``overwrite``; a link there counts as a file (it is replaced, never followed)."""
    existing = [n for n in WRITES if os.path.lexists(Path(folder) / n)]
    if existing and not overwrite:
        if existing[0] == README:
            raise OutputExists(f"{Path(folder) / README} exists already; choose an empty folder or pass --overwrite "
                               "to replace it")
        raise BadInput(f"{folder} already holds an example ({existing[0]}); choose an empty folder or pass --overwrite")
    for name in existing:
        placement.check_free(Path(folder) / name, overwrite=True, folder=name == DATA)


def run_example(folder: Path, *, overwrite: bool = False, progress=None, should_cancel=None) -> dict[str, str]:
    """Write the example into ``folder`` (the CLI's ``example DIR``, the window's Help ▸ Open an example):
    a fenced job writes it into a private work folder inside ``folder``; this process then renames the
    example's own names into place (links replaced, never followed), each only if it is not there yet
    or ``overwrite``. Returns :func:`write_example`'s paths."""
    from app.jobs import InvalidResult, run_job

    folder = Path(folder).expanduser().resolve()
    check_free(folder, overwrite)
    folder = files.prepare_out_dir(folder)
    files.clean_stale_work_dirs(folder)
    work = files.work_dir(folder)
    try:
        result = run_job(example_job, {"folder": str(work), "shown_as": str(folder)},
                         progress=progress, should_cancel=should_cancel, writable=[work])
        check_free(folder, overwrite)
        try:
            made = [placement.take_plain(work, n) if n != DATA else _data_folder(work) for n in PLACED]
            if (work / ARCH_FILE).read_text() != ARCH_SOURCE:   # the code file a user runs is the app's own text
                raise ValueError(f"{ARCH_FILE} is not the example's")
        except ValueError as e:
            raise InvalidResult(f"the job's process sent an invalid result ({e}); nothing was kept") from None
        for path in made:  # the model last: an example that is there is whole
            placement.place(path, folder / path.name, overwrite=overwrite)
    finally:
        files.remove_work_dir(work)
    accuracy = result.get("accuracy") if isinstance(result, dict) else None
    return dict(example_paths(folder), accuracy=str(accuracy)[:16])


def _data_folder(work: Path) -> Path:
    path = work / DATA
    if path.is_symlink() or not path.is_dir():
        raise ValueError(f"{DATA} is not a folder")
    return path


def write_example(folder: Path, *, overwrite: bool = False, progress=None, epochs: int = 6,
                  shown_as: Path | None = None) -> dict[str, str]:
    """Train the digits CNN and write it, its architecture file, the held-out digits and a README into
    ``folder``; returns :func:`example_paths` (of ``shown_as``, the folder the files will be moved to, when
    ``folder`` is a work folder). Refuses (one line) to replace an example without ``overwrite``."""
    import numpy as np
    import torch
    from PIL import Image

    folder = Path(folder)
    paths = example_paths(Path(shown_as) if shown_as else folder)
    check_free(folder, overwrite)
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
    (folder / README).write_text("\n".join(lines) + "\n")
    return dict(paths, accuracy=f"{accuracy:.3f}")


def example_job(payload: dict, progress=None, should_cancel=None) -> dict:
    """:func:`write_example` as a fenced child's entry point (it may write only the example's folder)."""
    return write_example(Path(payload["folder"]), overwrite=bool(payload.get("overwrite")), progress=progress,
                         shown_as=payload.get("shown_as"))


def cmd_example(args) -> int:
    import json

    result = run_example(args.folder, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(Path(result["readme"]).read_text(), end="")
    return 0
