"""What a data path holds, told before a conversion reads it: :func:`survey` checks that
:func:`app.accuracy.data.load_data` would accept the path for a model with these inputs and counts its
samples (files, array rows from the ``.npy`` headers, lines) without decoding an image or loading an
array; what it would refuse is one line that names the file and says what to give instead.

The window asks it when data is dropped or typed (in a worker thread: a folder of thousands of photos
or a large sentence file takes a moment to list or count).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.accuracy.data import ARRAY_SUFFIXES, IMAGE_SUFFIXES, TEXT_SUFFIXES, _batch_of, _listing
from app.errors import BadInput
from app.model.specs import TensorSpec
from app.request import DataSource


@dataclass(frozen=True)
class DataSurvey:
    path: Path
    kind: str          # images | arrays | text
    count: int         # samples the path holds (before the sample limit)
    used: int          # of them, the samples a conversion reads (the sample limit)
    detail: str = ""   # "10 classes", "3 .npz files"

    def describe(self) -> str:
        """``64 images``, ``1,200 images in 10 classes (the first 1,000 are used)``."""
        noun = {"images": "image", "arrays": "sample", "text": "sentence"}[self.kind]
        text = f"{self.count:,} {noun}{'' if self.count == 1 else 's'}"
        if self.detail:
            text += f" {self.detail}"
        if self.used < self.count:
            text += f" (the first {self.used:,} are used)"
        return text


def survey(source: DataSource | str | Path, inputs: list[TensorSpec] | None = None) -> DataSurvey:
    """What ``source`` holds for a model with ``inputs`` (None: no model yet, only what it holds);
    raises :class:`BadInput` with one line when the data loader would refuse it."""
    options = source if isinstance(source, DataSource) else DataSource(Path(source))
    path = Path(options.path).expanduser()
    name = path.name or str(path)
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    if not path.is_file() and not path.is_dir():
        raise BadInput(f"{name}: not a regular file or a folder (a FIFO, socket or device)")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in TEXT_SUFFIXES:
            return _sentences(path, [path], inputs, options)
        if suffix in ARRAY_SUFFIXES:
            return _arrays(path, [path], inputs, options)
        raise BadInput(f"{name} is not data: give a folder of images or .npy/.npz files, a .npz file, "
                       "or a .txt/.jsonl file of sentences (with a tokenizer folder)")
    files = _listing(path)
    arrays = [p for p in files if p.suffix.lower() in ARRAY_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    texts = [p for p in files if p.suffix.lower() in TEXT_SUFFIXES]
    if arrays:
        return _arrays(path, arrays, inputs, options)
    subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if images or subdirs:
        return _images(path, images, subdirs, inputs, options)
    if texts:
        return _sentences(path, texts, inputs, options)
    raise BadInput(f"{name}: the folder holds no images, .npy/.npz files, class subfolders or "
                   ".txt/.jsonl sentences")


def _images(folder: Path, images: list[Path], subdirs: list[Path], inputs: list[TensorSpec] | None,
            options: DataSource) -> DataSurvey:
    if inputs is not None:
        what = ", ".join(s.describe() for s in inputs)
        if len(inputs) != 1:
            raise BadInput(f"{folder.name} holds images, which feed one input; this model takes {what}: give "
                           "a folder of .npz files with one array per input name")
        shape = inputs[0].example_shape()
        if len(shape) != 4 or not inputs[0].is_float or shape[1] not in (1, 3):
            raise BadInput(f"{folder.name} holds images, which need a float input of 1 or 3 channels (NCHW); "
                           f"this model takes {what}: give a folder of .npy/.npz files instead")
    detail = ""
    if subdirs and not images:
        per_class = [sum(1 for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) for d in subdirs]
        per_class = [n for n in per_class if n]
        if len(per_class) < 2:
            raise BadInput(f"{folder.name}: {'only one class folder holds' if per_class else 'no folder holds'} "
                           "images; give two or more class folders, or the images directly in the folder")
        count, detail = sum(per_class), f"in {len(per_class)} classes"
    else:
        count = len(images)
    batch = _batch_of(inputs[0]) if inputs else 1
    return DataSurvey(folder, "images", count // batch, min(count // batch, options.limit), detail)


def _arrays(path: Path, files: list[Path], inputs: list[TensorSpec] | None, options: DataSource) -> DataSurvey:
    count = 0
    for f in files:
        shapes = _array_shapes(f)
        if inputs is None:
            first = next(iter(shapes.values()), ())
            count += first[0] if first else 1
            continue
        names = [s.name for s in inputs]
        if f.suffix.lower() == ".npy":
            if len(names) != 1:
                raise BadInput(f"{f.name}: a model with several inputs ({', '.join(names)}) needs .npz files "
                               "with one array per input name")
            shapes = {names[0]: shapes["array"]}
        missing = [n for n in names if n not in shapes]
        if missing:
            raise BadInput(f"{f.name} has no array named {missing[0]!r} (it has {', '.join(shapes) or 'none'}); "
                           f"name its arrays after the model's inputs: {', '.join(names)}")
        count += _samples(shapes[names[0]], inputs[0], f)
    noun = f"in {len(files)} {'.npz' if all(f.suffix.lower() == '.npz' for f in files) else 'array'} files"
    return DataSurvey(path, "arrays", count, min(count, options.limit), noun if len(files) > 1 else "")


def _array_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Each array's shape from its ``.npy`` header (``array`` for a ``.npy`` file), nothing loaded."""
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as f:
                return {"array": _header_shape(f)}
        with zipfile.ZipFile(path) as z:
            return {n[:-4]: _header_shape(z.open(n)) for n in z.namelist() if n.endswith(".npy")}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BadInput(f"{path.name} cannot be read as a numpy array file ({str(e).splitlines()[0][:120]})") from None


def _header_shape(f) -> tuple[int, ...]:
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    return tuple(read(f)[0])


def _samples(shape: tuple[int, ...], spec: TensorSpec, path: Path) -> int:
    """How many feeds an array of ``shape`` gives ``spec`` (as :func:`app.accuracy.data._rows` splits it)."""
    rank = len(spec.example_shape()) if spec.shape else 0
    if rank and len(shape) == rank:
        return shape[0] // _batch_of(spec)
    if rank and len(shape) == rank + 1:
        return shape[0]
    if rank and len(shape) == rank - 1:
        return 1
    if not rank:
        return shape[0] if shape else 1
    raise BadInput(f"{path.name}: array {spec.name!r} has shape {list(shape)}, which does not fit the model's "
                   f"input {spec.describe()}")


def _sentences(path: Path, files: list[Path], inputs: list[TensorSpec] | None, options: DataSource) -> DataSurvey:
    name = path.name
    if inputs is not None and not any(not s.is_float for s in inputs):
        what = ", ".join(s.describe() for s in inputs)
        raise BadInput(f"{name} holds sentences, but this model takes {what}, not token ids: give a folder "
                       "of images or .npy/.npz files, or a .npz file")
    if options.tokenizer is None:
        raise BadInput(f"{name} holds sentences: choose a tokenizer folder (with tokenizer.json) first, "
                       "to turn them into token ids")
    count = 0
    for f in files:
        with open(f, "rb") as lines:
            count += sum(1 for line in lines if line.strip())
    if not count:
        raise BadInput(f"{name}: no sentences in it (empty lines only)")
    return DataSurvey(path, "text", count, min(count, options.limit))
