"""Calibration data for static INT8: a folder of ``.npy``/``.npz`` files or images.

- ``.npz``: one sample (or a batch along axis 0) per file, arrays keyed by input name.
- ``.npy``: for single-input models; an array of the input's rank is one sample, an array with one
  more leading axis (or a larger batch) is split into samples.
- images (``.png .jpg .jpeg .bmp .webp``): for a single NCHW float input; resized to H×W, scaled to
  [0, 1] and, for 3 channels, normalised with the ImageNet mean/std (what torchvision models expect).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from app.errors import BadInput
from app.inputs import make_feeds
from app.specs import TensorSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def _split(arr: np.ndarray, spec: TensorSpec) -> list[np.ndarray]:
    shape = spec.example_shape()
    if arr.ndim == len(shape) + 1:
        return [a for a in arr]
    if arr.ndim != len(shape):
        raise BadInput(f"calibration array of shape {arr.shape} does not fit input {spec.describe()}")
    batch = shape[0] if shape else 1
    if arr.shape[0] > batch and batch >= 1 and arr.shape[0] % batch == 0:
        return [arr[i:i + batch] for i in range(0, arr.shape[0], batch)]
    return [arr]


def _image(path: Path, spec: TensorSpec) -> np.ndarray:
    from PIL import Image

    shape = spec.example_shape()
    if len(shape) != 4:
        raise BadInput(f"calibration images need a 4-D NCHW input, but the model takes {spec.describe()}")
    _, c, h, w = shape
    try:
        img = Image.open(path).convert("RGB" if c == 3 else "L").resize((w, h))
    except Exception as e:
        raise BadInput(f"calibration image {path} cannot be read ({e})") from None
    arr = np.asarray(img, dtype=np.float32) / 255.0
    if c == 3:
        arr = (arr - IMAGENET_MEAN) / IMAGENET_STD
        arr = arr.transpose(2, 0, 1)
    else:
        arr = arr[None]
    return arr[None].astype(np.float32)


def calibration_samples(folder: Path, specs: list[TensorSpec], limit: int = 256) -> list[dict[str, np.ndarray]]:
    """Read up to ``limit`` samples (feeds dicts) from ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"--calibration {folder}: not a folder; give a folder of .npy/.npz files or images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".npy", ".npz"} | IMAGE_SUFFIXES)
    if not files:
        raise BadInput(f"--calibration {folder}: no .npy, .npz or image files in it")
    samples: list[dict[str, np.ndarray]] = []
    names = [s.name for s in specs]
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                arrays = {n: z[n] for n in names if n in z} or ({names[0]: z[keys[0]]} if len(names) == 1 else {})
            if set(arrays) != set(names):
                raise BadInput(f"calibration file {path.name} has arrays {keys}; it needs one per input: {names}")
            parts = {n: _split(arrays[n], s) for n, s in zip(names, specs)}
            for i in range(min(len(v) for v in parts.values())):
                samples.append({n: parts[n][i] for n in names})
        else:
            if len(specs) != 1:
                raise BadInput(f"calibration file {path.name}: a model with several inputs ({names}) needs .npz files")
            arrs = _split(np.load(path, allow_pickle=False), specs[0]) if suffix == ".npy" else [_image(path, specs[0])]
            samples.extend({names[0]: a} for a in arrs)
        if len(samples) >= limit:
            break
    return [{s.name: sample[s.name].astype(s.dtype, copy=False) for s in specs} for sample in samples[:limit]]


def random_samples(specs: list[TensorSpec], count: int = 16, int_high: int = 2) -> list[dict[str, np.ndarray]]:
    return [make_feeds(specs, seed=1000 + i, int_high=int_high) for i in range(count)]


def feeds_reader(samples: list[dict[str, np.ndarray]]):
    """An ``onnxruntime.quantization.CalibrationDataReader`` over a list of feeds."""
    from onnxruntime.quantization import CalibrationDataReader

    class FeedsReader(CalibrationDataReader):
        def __init__(self):
            self._it: Iterator | None = None

        def get_next(self):
            if self._it is None:
                self._it = iter(samples)
            return next(self._it, None)

        def rewind(self):
            self._it = None

    return FeedsReader()
