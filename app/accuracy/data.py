"""Real data for calibration and evaluation: ``--data PATH`` (``--calibration`` is an alias).

Three layouts, told apart by what the path holds:

- **arrays**: ``.npz`` files (a folder of them, or one file) with one array per input name (a
  leading batch axis is split into samples), optionally ``label``/``labels`` (class ids) and arrays named after the model's outputs
  (expected outputs); ``.npy`` files for single-input models.
- **images**: image files directly in the folder (unlabelled), or one subfolder per class
  (torchvision's ImageFolder layout; class ids are the sorted subfolder names). Each image is
  resized to the input's H×W, converted to the input's channel count and normalised (``--normalize``:
  ``imagenet`` mean/std for 3 channels by default, ``unit`` [0, 1] for 1 channel).
- **text**: a ``.txt`` file (one sentence a line) or ``.jsonl`` (``{"text": ..., "label": ...}`` a
  line), or a folder holding such files, with ``--tokenizer DIR`` (a Hugging Face tokenizer folder
  with ``tokenizer.json``, read offline by the ``tokenizers`` library). Ids are padded/truncated to
  the example length of the input's sequence axis.

Where to calibrate and where to evaluate (:func:`split_policy`): with ``--eval-data PATH`` (read as
``--data`` is, with the same ``--tokenizer``/``--normalize``/``--data-limit``) the calibration takes all
of ``--data`` (at most :data:`MAX_CALIBRATION` samples) and the evaluation all of ``--eval-data``.
Without it, the samples of ``--data`` are split deterministically (a seeded permutation) into a
calibration part and an evaluation part, so an int8 artifact is never judged on the samples it was
calibrated on — but both parts come from one folder: crops or frames of one photo or recording in
both flatter the figures, which :data:`SAME_FOLDER_WARNING` says loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from app.errors import BadInput, first_line
from app.model.loaded import Feeds
from app.model.specs import TensorSpec
from app.request import DataSource

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
ARRAY_SUFFIXES = {".npy", ".npz"}
TEXT_SUFFIXES = {".txt", ".jsonl"}
LABEL_KEYS = ("label", "labels")
MAX_SAMPLES = 2000                 # default --data-limit
MAX_FILE_BYTES = 512 * 2**20       # one array/text file
MAX_TOTAL_BYTES = 4 * 2**30        # all the samples together, in memory
CALIBRATION_FRACTION = 0.3       # of many samples (SMALL_DATA or more): at least this share calibrates
SMALL_DATA = 300                 # below it, half the samples calibrate (NNCF on 19 crops: ranges that do not hold)
SMALL_CALIBRATION = 90           # ... up to this many (30 % of SMALL_DATA: the count grows with n, no jump)
MAX_CALIBRATION = 256
SAME_FOLDER_WARNING = ("CALIBRATION AND EVALUATION FROM THE SAME FOLDER ({data}: {calibration} samples "
                       "calibrate, the other {evaluation} evaluate): crops or frames of one photo or recording in "
                       "both parts can flatter the evaluation; pass --eval-data PATH with samples from other "
                       "photos/recordings to judge the artifact on inputs its calibration never saw")
NORMALIZATIONS = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),   # torchvision's pretrained models
    "unit": ((0.0,), (1.0,)),                                      # pixels / 255 → [0, 1]
    "signed": ((0.5,), (0.5,)),                                    # → [-1, 1] (many ViT/Inception)
}


@dataclass
class DataSet:
    """Samples (one feeds dict each, batch 1 unless the model's batch is fixed larger), with
    optional class labels (one per batch row) and expected outputs."""

    source: Path
    kind: str                                   # arrays | images | text
    samples: list[Feeds]
    labels: list[np.ndarray] | None = None      # per sample: int64[batch]
    expected: list[dict[str, np.ndarray]] | None = None
    classes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was done to the data (normalisation, padding)

    def __len__(self) -> int:
        return len(self.samples)

    def describe(self) -> str:
        labels = ""
        if self.labels is not None:
            count = len(self.classes) or len(np.unique(np.concatenate(self.labels)))
            labels = f", labelled ({count} classes)"
        return f"{len(self)} samples ({self.kind}) from {self.source}{labels}"

    def subset(self, index: list[int]) -> "DataSet":
        pick = lambda xs: None if xs is None else [xs[i] for i in index]  # noqa: E731
        return replace(self, samples=pick(self.samples), labels=pick(self.labels), expected=pick(self.expected))

    def split(self, seed: int = 0, calibration: int | None = None) -> tuple["DataSet", "DataSet"]:
        """(calibration, evaluation): a seeded permutation; :func:`calibration_count` samples (or
        ``calibration``, the count a manifest recorded, to find its evaluation part again) calibrate, the
        rest evaluate. One sample serves both (and says so)."""
        n = len(self)
        if n < 2:
            self.notes.append("only one sample: it is used for calibration and evaluation")
            return self, self
        order = np.random.default_rng(seed).permutation(n).tolist()
        k = min(max(1, calibration if calibration is not None else calibration_count(n)), n - 1)
        return self.subset(order[:k]), self.subset(order[k:])

    def calibration_part(self, seed: int = 0) -> "DataSet":
        """All the samples for calibration (``--eval-data`` evaluates): at most :data:`MAX_CALIBRATION`,
        a seeded pick of them when there are more."""
        if len(self) <= MAX_CALIBRATION:
            return self
        order = np.random.default_rng(seed).permutation(len(self)).tolist()
        return self.subset(sorted(order[:MAX_CALIBRATION]))


def held_out(data: DataSet, recorded: dict, path: Path) -> tuple[DataSet, str] | None:
    """The part of ``data`` (read from ``path``) an artifact was not calibrated on, from its manifest's
    ``recorded.data`` (None when the artifact's conversion did not use ``path``): the evaluation part of
    its split (same seed, same counts), or all of it when it was the artifact's ``--eval-data``; when it
    was calibrated on all of ``path`` (it had ``--eval-data``), all of it, with a note that says the
    figures flatter it."""
    def same(recorded_path) -> bool:
        return bool(recorded_path) and Path(recorded_path).resolve() == Path(path).resolve()

    if not recorded:
        return None
    other = recorded.get("evaluation_source")
    if recorded.get("same_folder") is False and same(other):
        return data, "its --eval-data: none of these samples calibrated it"
    if not same(recorded.get("source")):
        return None
    if recorded.get("same_folder") is False:
        return data, (f"CALIBRATED ON THESE SAMPLES (all of them): the figures flatter it; evaluate on its "
                      f"--eval-data {other} instead")
    seed = int(recorded.get("split_seed", 0))
    count = recorded.get("calibration_samples")
    total = (count or 0) + (recorded.get("evaluation_samples") or 0)
    part = data.split(seed, calibration=count if isinstance(count, int) and total == len(data) else None)[1]
    return part, (f"calibrated on part of this data: evaluated on the other part (split seed {seed}, "
                  f"{len(part)} samples); both parts come from one folder — crops or frames of one photo or "
                  "recording in both can flatter the figures")


def calibration_count(n: int) -> int:
    """How many of ``n`` samples of one folder calibrate (the rest evaluate): half of them while they are few
    (under :data:`SMALL_DATA`; at most :data:`SMALL_CALIBRATION`), else :data:`CALIBRATION_FRACTION`, at most
    :data:`MAX_CALIBRATION`. Few calibration samples give ranges that do not hold on new inputs (NNCF on 19 of
    64 photo crops kept 0.865 of the confident top-1 on other photos, on all 64 0.981); the evaluation part
    still needs enough samples to say so."""
    if n < 2:
        return n
    k = max(int(round(n * CALIBRATION_FRACTION)), min(n // 2, SMALL_CALIBRATION))
    return max(1, min(k, MAX_CALIBRATION, n - 1))


def load_data(source: DataSource | str | Path, inputs: list[TensorSpec], outputs: list[TensorSpec] = ()) -> DataSet:
    """Read the samples of ``source`` (``--data`` and how to read it; a bare path reads with the defaults)
    for a model with ``inputs``; raises :class:`BadInput` with one line."""
    options = source if isinstance(source, DataSource) else DataSource(Path(source))
    path = Path(options.path)
    if not path.exists():
        raise BadInput(f"--data {path}: no such file or folder")
    if not path.is_file() and not path.is_dir():  # a FIFO or a device: reading it would block or never end
        raise BadInput(f"--data {path}: not a regular file or a folder (a FIFO, socket or device); refused")
    if options.limit < 1:
        raise BadInput(f"--data-limit {options.limit}: give at least 1")
    if options.tokenizer is not None or (path.is_file() and path.suffix.lower() in TEXT_SUFFIXES):
        data = _text(path, inputs, options)
    elif path.is_file() and path.suffix.lower() in ARRAY_SUFFIXES:   # one file of arrays
        data = _arrays(path, [path], inputs, outputs, options.limit)
    elif path.is_file():
        raise BadInput(f"--data {path}: give a folder (of .npy/.npz files or images), a .npz file, or a .txt/.jsonl "
                       "file of sentences with --tokenizer DIR")
    else:
        files = _listing(path)
        arrays = [p for p in files if p.suffix.lower() in ARRAY_SUFFIXES]
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        texts = [p for p in files if p.suffix.lower() in TEXT_SUFFIXES]
        subdirs = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        if arrays:
            data = _arrays(path, arrays, inputs, outputs, options.limit)
        elif images or subdirs:
            data = _images(path, images, subdirs, inputs, options)
        elif texts:
            raise BadInput(f"--data {path}: holds sentences ({texts[0].name}); pass --tokenizer DIR "
                           "(a Hugging Face tokenizer folder with tokenizer.json) to turn them into token ids")
        else:
            raise BadInput(f"--data {path}: the folder is empty (no .npy/.npz files, images, class "
                           "subfolders or .txt/.jsonl sentences)")
    if not data.samples:
        raise BadInput(f"--data {path}: no samples found")
    _check_size(data, path)
    return data


def load_eval_data(source: DataSource, inputs: list[TensorSpec], outputs: list[TensorSpec] = ()) -> DataSet:
    """The samples of ``--eval-data`` (``source.eval_path``), read as ``--data`` is (same tokenizer,
    normalisation and limit); a problem is one line naming ``--eval-data``."""
    if source.eval_path is None:
        raise BadInput("no --eval-data given")
    try:
        return load_data(replace(source, path=Path(source.eval_path), eval_path=None), inputs, outputs)
    except BadInput as e:
        text = str(e)
        if text.startswith("--data "):
            raise BadInput("--eval-data " + text[len("--data "):]) from None
        raise


def _listing(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def _check_size(data: DataSet, path: Path) -> None:
    total = sum(a.nbytes for s in data.samples for a in s.values())
    if total > MAX_TOTAL_BYTES:
        raise BadInput(f"--data {path}: the samples take {total / 2**30:.1f} GiB; lower --data-limit "
                       f"(the limit is {MAX_TOTAL_BYTES / 2**30:.0f} GiB)")


def _batch_of(spec: TensorSpec) -> int:
    """Rows per feed: a fixed leading batch dimension above 1, else 1."""
    return spec.shape[0] if spec.shape and isinstance(spec.shape[0], int) and spec.shape[0] > 1 else 1


def _grouped(rows: list[dict[str, np.ndarray]], labels: list[int] | None, batch: int, source: Path,
             kind: str, limit: int, **extra) -> DataSet:
    """Stack per-row arrays into feeds of ``batch`` rows (a fixed batch > 1); drop a ragged tail."""
    rows = rows[: limit * batch]
    n = len(rows) // batch
    samples = [{k: np.concatenate([r[k] for r in rows[i * batch:(i + 1) * batch]]) for k in rows[0]}
               for i in range(n)]
    lab = None if labels is None else [np.asarray(labels[i * batch:(i + 1) * batch], dtype=np.int64)
                                       for i in range(n)]
    return DataSet(source, kind, samples, lab, **extra)


# ----------------------------------------------------------------------------- arrays
def _arrays(folder: Path, files: list[Path], inputs: list[TensorSpec], outputs: list[TensorSpec],
            limit: int) -> DataSet:
    names = [s.name for s in inputs]
    out_names = {s.name for s in outputs}
    samples: list[Feeds] = []
    labels: list[np.ndarray] = []
    expected: list[dict[str, np.ndarray]] = []
    have_labels = have_expected = None
    for path in files:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BadInput(f"--data {path}: {path.stat().st_size / 2**20:.0f} MiB is over the "
                           f"{MAX_FILE_BYTES // 2**20} MiB limit for one file; split it")
        arrays = _read_arrays(path, names)
        unknown = [k for k in arrays if k not in names and k not in LABEL_KEYS and k not in out_names]
        if unknown:
            raise BadInput(f"--data {path.name}: array {unknown[0]!r} is not an input of the model "
                           f"(inputs: {', '.join(names)}; optional: label, "
                           f"{', '.join(sorted(out_names)) or 'output names'})")
        missing = [n for n in names if n not in arrays]
        if missing:
            raise BadInput(f"--data {path.name}: no array for input {missing[0]!r} (it has "
                           f"{', '.join(arrays) or 'none'}); name the arrays after the inputs: {', '.join(names)}")
        parts = {n: _rows(arrays[n], spec, path) for n, spec in zip(names, inputs)}
        count = {len(v) for v in parts.values()}
        if len(count) != 1:
            raise BadInput(f"--data {path.name}: the inputs hold different numbers of samples ({sorted(count)})")
        rows = count.pop()
        label = next((arrays[k] for k in LABEL_KEYS if k in arrays), None)
        if have_labels is not None and have_labels != (label is not None):
            raise BadInput(f"--data {path.name}: some files carry labels and some do not; label all or none")
        have_labels = label is not None
        if label is not None:
            label = np.asarray(label).reshape(-1)
            if label.dtype.kind not in "iu" or len(label) != rows:
                raise BadInput(f"--data {path.name}: 'label' must hold one integer class id per sample "
                               f"({rows}), it has {label.dtype}[{len(label)}]")
        exp = {k: v for k, v in arrays.items() if k in out_names}
        if have_expected is not None and have_expected != bool(exp):
            raise BadInput(f"--data {path.name}: some files carry expected outputs and some do not")
        have_expected = bool(exp)
        exp_rows = {k: _rows(v, next(s for s in outputs if s.name == k), path, output=True) for k, v in exp.items()}
        for i in range(rows):
            samples.append({n: parts[n][i] for n in names})
            if label is not None:
                labels.append(label[i:i + 1])
            if exp:
                expected.append({k: v[i] for k, v in exp_rows.items()})
        if len(samples) >= limit:
            break
    n = min(len(samples), limit)
    return DataSet(folder, "arrays", samples[:n], labels[:n] if have_labels else None,
                   expected[:n] if have_expected else None)


def _read_arrays(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.keys()}
        arr = np.load(path, allow_pickle=False)
    except Exception as e:
        raise BadInput(f"--data {path}: cannot be read as a numpy array file ({str(e).splitlines()[0][:120]})") from None
    if len(names) != 1:
        raise BadInput(f"--data {path.name}: a model with several inputs ({', '.join(names)}) needs .npz files "
                       "with one array per input name")
    return {names[0]: arr}


def _rows(arr: np.ndarray, spec: TensorSpec, path: Path, output: bool = False) -> list[np.ndarray]:
    """Split ``arr`` into feeds of the spec's rank; check rank, fixed sizes and dtype."""
    what = "output" if output else "input"
    shape = spec.example_shape() if spec.shape else ()
    if not output:
        _check_dtype(arr, spec, path)
    if shape and arr.ndim == len(shape):
        batch = _batch_of(spec)
        if arr.shape[0] % batch:
            raise BadInput(f"--data {path.name}: {arr.shape[0]} rows of {spec.name!r} do not fill batches of {batch}")
        rows = [arr[i:i + batch] for i in range(0, arr.shape[0], batch)]
    elif shape and arr.ndim == len(shape) + 1:   # a stack of whole samples
        rows = list(arr)
    elif shape and arr.ndim == len(shape) - 1:
        rows = [arr[None]]
    elif not shape:
        rows = [a[None] for a in arr] if arr.ndim else [arr]
    else:
        raise BadInput(f"--data {path.name}: {what} {spec.name!r} has shape {list(arr.shape)}, which does not fit "
                       f"{spec.describe()}")
    for axis, want in enumerate(spec.shape):
        if isinstance(want, int) and axis > 0 and rows[0].shape[axis] != want:
            raise BadInput(f"--data {path.name}: {what} {spec.name!r} has shape {list(rows[0].shape)}; the model "
                           f"takes {spec.describe()} (axis {axis} must be {want})")
    if not output:
        rows = [r.astype(_np(spec.dtype), copy=False) for r in rows]
    return rows


def _check_dtype(arr: np.ndarray, spec: TensorSpec, path: Path) -> None:
    if spec.is_float and arr.dtype.kind not in "fiub":
        raise BadInput(f"--data {path.name}: {spec.name!r} is {arr.dtype}; the model takes {spec.dtype}")
    if not spec.is_float and spec.dtype != "bool" and arr.dtype.kind not in "iu":
        raise BadInput(f"--data {path.name}: {spec.name!r} holds {arr.dtype} values; the model takes {spec.dtype} "
                       "(integer ids: save the array as an integer type)")


def _np(dtype: str):
    return np.float32 if dtype == "bfloat16" else np.dtype(dtype)


# ----------------------------------------------------------------------------- images
def normalization(option: str | None, channels: int) -> tuple[str, np.ndarray, np.ndarray]:
    """(description, mean, std) per channel for ``--normalize``; ``none`` keeps 0-255 pixel values."""
    name = (option or ("imagenet" if channels == 3 else "unit")).strip().lower()
    if name == "none":
        return "none (pixel values 0-255)", np.zeros(channels, np.float32), np.full(channels, 1 / 255, np.float32)
    if name in NORMALIZATIONS:
        mean, std = NORMALIZATIONS[name]
    else:
        try:
            m, s = name.split(";")
            mean, std = tuple(float(x) for x in m.split(",")), tuple(float(x) for x in s.split(","))
        except ValueError:
            raise BadInput(f"--normalize {option!r}: choose imagenet, unit, signed, none, or 'MEAN,..;STD,..' "
                           "(e.g. '0.5,0.5,0.5;0.5,0.5,0.5')") from None
    if len(mean) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels or min(std) <= 0:
        raise BadInput(f"--normalize {option!r}: {len(mean)} means/{len(std)} stds for a {channels}-channel input "
                       "(stds must be positive)")
    text = f"{name}: (x/255 - mean {list(mean)}) / std {list(std)}"
    return text, np.asarray(mean, np.float32), np.asarray(std, np.float32)


def _images(folder: Path, images: list[Path], subdirs: list[Path], inputs: list[TensorSpec],
            options: DataSource) -> DataSet:
    if len(inputs) != 1:
        raise BadInput(f"--data {folder}: images feed one input, but the model takes {len(inputs)} "
                       f"({', '.join(s.name for s in inputs)}); use .npz files keyed by input name")
    spec = inputs[0]
    shape = spec.example_shape()
    if len(shape) != 4 or not spec.is_float:
        raise BadInput(f"--data {folder}: images need a float NCHW input, but the model takes {spec.describe()}")
    _, c, h, w = shape
    if c not in (1, 3):
        raise BadInput(f"--data {folder}: images give 1 or 3 channels, but {spec.describe()} has {c}")
    text, mean, std = normalization(options.normalize, c)
    labelled: list[tuple[Path, int]] = []
    classes: list[str] = []
    if subdirs and not images:
        per_class = [(d, sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)) for d in subdirs]
        per_class = [(d, files) for d, files in per_class if files]
        if len(per_class) == 1:
            raise BadInput(f"--data {folder}: only one class folder ({per_class[0][0].name}) holds images; labels "
                           "need two or more class folders (or put the images directly in the folder, unlabelled)")
        if not per_class:
            raise BadInput(f"--data {folder}: the class subfolders hold no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        classes = [d.name for d, _ in per_class]
        # interleave classes so a --data-limit keeps every class
        longest = max(len(files) for _, files in per_class)
        labelled = [(files[i], k) for i in range(longest) for k, (_, files) in enumerate(per_class) if i < len(files)]
    elif images:
        labelled = [(p, -1) for p in images]
    batch = _batch_of(spec)
    labelled = labelled[: options.limit * batch]
    rows = [{spec.name: _image(p, c, h, w, mean, std)} for p, _ in labelled]
    labels = [k for _, k in labelled] if classes else None
    return _grouped(rows, labels, batch, folder, "images", options.limit, classes=classes,
                    notes=[f"images resized to {h}x{w}, {'RGB' if c == 3 else 'grayscale'}, normalised {text}"])


def _image(path: Path, c: int, h: int, w: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.float32) / 255.0
    except Exception as e:
        raise BadInput(f"--data {path}: cannot be read as an image ({str(e).splitlines()[0][:120]}); "
                       "remove or replace it") from None
    arr = arr.reshape(h, w, c).transpose(2, 0, 1)
    return ((arr - mean[:, None, None]) / std[:, None, None])[None].astype(np.float32)


# ----------------------------------------------------------------------------- text
def _tokenizer_file(folder: Path) -> Path:
    folder = Path(folder)
    return folder / "tokenizer.json" if folder.is_dir() else folder


def _is_panic(e: BaseException) -> bool:
    """A Rust panic inside the ``tokenizers`` library (pyo3's ``PanicException``, a BaseException: an
    ``except Exception`` lets it through), e.g. ``Onig: Regex search error: retry-limit-in-match over``."""
    return type(e).__name__ == "PanicException"


def load_tokenizer(folder: Path):
    """A ``tokenizers.Tokenizer`` from a Hugging Face tokenizer folder (offline, no code run)."""
    folder = Path(folder)
    file = _tokenizer_file(folder)
    if not file.is_file():
        raise BadInput(f"--tokenizer {folder}: not a Hugging Face tokenizer folder (no tokenizer.json in it)")
    try:
        from tokenizers import Tokenizer
    except ImportError:
        raise BadInput("--tokenizer needs the 'tokenizers' package: pip install tokenizers") from None
    try:
        return Tokenizer.from_file(str(file))
    except BaseException as e:
        if not isinstance(e, Exception) and not _is_panic(e):
            raise  # KeyboardInterrupt, SystemExit
        raise BadInput(f"--tokenizer {file}: not a valid tokenizer.json ({first_line(e)[:120]})") from None


def tokenize(tokenizer, texts: list[str], folder: Path, data: Path) -> list:
    """``tokenizer.encode_batch(texts)``; a tokenizer that fails on them (a pre-tokenizer's regex that
    backtracks without end makes the library panic) is one line naming its file."""
    try:
        return tokenizer.encode_batch(texts)
    except BaseException as e:
        if not isinstance(e, Exception) and not _is_panic(e):
            raise
        raise BadInput(f"--tokenizer {_tokenizer_file(folder)}: the tokenizer failed on the sentences of --data "
                       f"{data} ({first_line(e)[:120]}); fix or replace that tokenizer.json (a regex in it that "
                       "backtracks without end does this)") from None


def read_sentences(path: Path, limit: int) -> tuple[list[str], list[int] | None]:
    """Sentences (and labels, when every JSONL line has one) from a .txt/.jsonl file or a folder of them."""
    files = [path] if path.is_file() else [p for p in _listing(path) if p.suffix.lower() in TEXT_SUFFIXES]
    if not files:
        raise BadInput(f"--data {path}: no .txt or .jsonl file of sentences in it")
    texts: list[str] = []
    labels: list[int | None] = []
    for f in files:
        if f.stat().st_size > MAX_FILE_BYTES:
            raise BadInput(f"--data {f}: over the {MAX_FILE_BYTES // 2**20} MiB limit for one file; split it")
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as e:
            raise BadInput(f"--data {f}: cannot be read as UTF-8 text ({e})") from None
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if f.suffix.lower() == ".jsonl":
                try:
                    row = json.loads(line)
                    text = row.get("text", row.get("sentence"))
                except (ValueError, AttributeError):
                    text, row = None, {}
                if not isinstance(text, str):
                    raise BadInput(f"--data {f}:{number}: each line must be a JSON object with a \"text\" string")
                label = row.get("label")
                if label is not None and not isinstance(label, int):
                    raise BadInput(f"--data {f}:{number}: \"label\" must be an integer class id")
                texts.append(text)
                labels.append(label)
            else:
                texts.append(line.strip())
                labels.append(None)
            if len(texts) >= limit:
                break
    if not texts:
        raise BadInput(f"--data {path}: no sentences in it (empty lines only)")
    have = [x for x in labels if x is not None]
    if have and len(have) != len(labels):
        raise BadInput(f"--data {path}: some lines have a \"label\" and some do not; label all or none")
    return texts, (labels if have else None)  # type: ignore[return-value]


def _text(path: Path, inputs: list[TensorSpec], options: DataSource) -> DataSet:
    if options.tokenizer is None:
        raise BadInput(f"--data {path}: sentences need --tokenizer DIR (a Hugging Face tokenizer folder)")
    tokenizer = load_tokenizer(options.tokenizer)
    texts, labels = read_sentences(path, options.limit)
    ids_spec = next((s for s in inputs if "input_ids" in s.name or s.name in ("ids", "tokens", "input")), None)
    if ids_spec is None or ids_spec.is_float:
        raise BadInput(f"--data {path}: sentences need an integer token-id input (input_ids); the model takes "
                       + ", ".join(s.describe() for s in inputs))
    shape = ids_spec.example_shape()
    if len(shape) != 2:
        raise BadInput(f"--data {path}: token ids need a [batch, sequence] input, the model takes {ids_spec.describe()}")
    length = shape[1]
    tokenizer.enable_truncation(max_length=length)
    pad_id = tokenizer.token_to_id("[PAD]") or 0
    tokenizer.enable_padding(length=length, pad_id=pad_id)
    encodings = tokenize(tokenizer, texts, options.tokenizer, path)
    truncated = sum(1 for e in encodings if e.overflowing)
    batch = _batch_of(ids_spec)
    rows = []
    for e in encodings:
        row = {}
        for spec in inputs:
            if spec is ids_spec:
                value = e.ids
            elif "mask" in spec.name:
                value = e.attention_mask
            elif "type" in spec.name or "segment" in spec.name:
                value = e.type_ids
            elif "position" in spec.name:
                value = list(range(length))
            else:
                raise BadInput(f"--data {path}: no tokenizer field for input {spec.name!r} (known: input_ids, "
                               "attention_mask, token_type_ids, position_ids)")
            row[spec.name] = np.asarray([value], dtype=_np(spec.dtype))
        rows.append(row)
    notes = [f"sentences tokenized with {Path(options.tokenizer).name}, padded/truncated to {length} tokens"
             + (f" ({truncated} truncated)" if truncated else "")]
    return _grouped(rows, labels, batch, path, "text", options.limit, notes=notes)
