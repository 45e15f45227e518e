"""load(path, source) -> LoadedModel for every supported file format: the front door.

The front door opens the file once (:func:`checked_file`): it recognises the format by content, not
by extension, and runs the checks every file gets before any reader sees it — damaged or polyglot
zips, zip bombs, the members' CRCs, forged safetensors headers. TorchScript and ``torch.export``
archives and ``torch.save`` files are zip archives told apart by their members; safetensors by its
JSON header; ONNX by parsing the protobuf. Then the loader its kind declares (:mod:`app.model.kinds`) reads it,
handed what the front door learned (:class:`~app.loaders.checked.CheckedFile`: the open file, the
open, checked archive) so that no check runs twice and our code reads the file once (torch's and
safetensors' readers still open it by name, to memory-map the weights, after
:meth:`~app.loaders.checked.CheckedFile.reader_path` made sure the name still means the checked file): :mod:`app.loaders` for the torch
formats, ONNX, IR and engines beside their runtimes in :mod:`app.runtimes`. Every ``torch.load`` is
``weights_only=True``; a full pickled module loads through the same unpickler with the globals the
user approved (``app.safety.unpickling``).
"""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from app.errors import BadInput, ModelLoadError, StudioError, describe, first_line as _first_line
from app.loaders import safetensors, torch_export, torch_save, torchscript
from app.loaders.checked import CheckedFile
from app.loaders.modules import output_specs, probe_outputs
from app.model.kinds import ArtifactKind, get_kind, register, sniffed, supported
from app.model.layer_facts import embedding_sizes
from app.model.loaded import LoadedModel
from app.model.specs import TensorSpec, apply_dynamic, merge_user_inputs
from app.request import ModelSource
# the kinds read beside their runtimes: importing each module declares its kind (app.model.kinds) — a
# new runtime's kind is one more name on this line
from app.runtimes import executorch, litert, onnxrt, openvino, tensorrt  # noqa: F401
from app.runtimes.pytorch import TorchRunner
from app.safety.security import check_zip_sizes
from app.safety.unpickling import ZIP_MAGIC, check_not_polyglot


def _torch_runners(runtime: str):
    """The benchmark's runners of a PyTorch file: ``runtime`` (TorchScript, ``torch.export`` or eager
    PyTorch), the file loaded (and its loading timed) through the front door."""
    def runners(path: Path, *, providers=None, threads: int | None = None, precision: str = "fp32",
                device: str = "cpu") -> list:
        return [TorchRunner(path.name, lambda: load_model(path), runtime=runtime, device=device, precision=precision)]
    return runners


# the PyTorch family, read by the loaders of this package (sniffed by the front door's archive, header
# and pickle checks, not by a predicate of their own)
for _kind in (
        ArtifactKind("torchscript", "TorchScript", (".pt", ".pth"), torchscript.load, _torch_runners("torchscript"),
                     runtime="TorchScript", described=".pt, .pth, .bin, .ckpt (TorchScript, state dict or pickled module)",
                     triton=("pytorch_libtorch", "model.pt")),
        ArtifactKind("torch-export", "torch.export", (".pt2",), torch_export.load, _torch_runners("torch.export"),
                     runtime="torch.export", described=".pt2 (torch.export)"),
        ArtifactKind("torch-save", "PyTorch state dict or pickled module", (".pt", ".pth", ".bin", ".ckpt"),
                     torch_save.load, _torch_runners("pytorch"), runtime="PyTorch", described="-",
                     no_graph="a state dict or checkpoint holds weights but no graph"),
        ArtifactKind("safetensors", "safetensors", (".safetensors",), safetensors.load, _torch_runners("pytorch"),
                     runtime="PyTorch", described=".safetensors",
                     no_graph="a safetensors file holds weights but no graph")):
    register(_kind)


@contextmanager
def checked_file(path: Path) -> Iterator[CheckedFile]:
    """Open ``path`` once, sniff its format and run the checks; the file (and a zip's archive) stay
    open, for the loader, until the ``with`` block ends. Raises ModelLoadError/UnsafeModelError."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file")
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; give the model file itself ({supported()})")
    stream = open_regular(path)
    with stream:
        size = os.fstat(stream.fileno()).st_size
        if size == 0:
            raise ModelLoadError(f"{path} is empty (0 bytes); re-export or re-download the model")
        try:
            head = stream.read(16)
        except OSError as e:
            raise ModelLoadError(f"{path}: cannot read ({e.strerror})") from None
        archive = _checked_archive(path, stream, head) if head[:4] == ZIP_MAGIC else None
        try:
            yield CheckedFile(path, _sniff(path, stream, head, size, archive), size, head, stream, archive)
        finally:
            if archive is not None:
                archive.close()


def open_regular(path: Path) -> BinaryIO:
    """``path`` open for reading, refused (one line) unless it is a regular file: a FIFO, a socket or a
    device where a model should be is opened without blocking (``O_NONBLOCK``; ``O_NOCTTY``: a terminal
    never becomes ours) and refused by what ``fstat`` says, before anything reads from it."""
    import stat

    extra = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:  # one open of the file (os.open with the flags), wrapped as a stream that keeps the name
        stream = open(os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0) | extra), "rb")
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot read ({e.strerror})") from None
    stream.raw.name = str(path)  # readers use stream.name
    mode = os.fstat(stream.fileno()).st_mode
    if not stat.S_ISREG(mode):
        stream.close()
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
        raise ModelLoadError(f"{path} is {kind}, not a model file; refused (nothing was read from it)")
    if extra and hasattr(os, "set_blocking"):
        os.set_blocking(stream.fileno(), True)
    return stream


def _checked_archive(path: Path, stream: BinaryIO, head: bytes) -> zipfile.ZipFile:
    """The zip archive in ``stream``, refused if it is a polyglot, a bomb or damaged (CRCs)."""
    try:
        archive = zipfile.ZipFile(stream)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise ModelLoadError(f"{path} is a damaged zip archive ({e}); re-export the model") from None
    try:
        check_not_polyglot(path, head=head, stream=stream, archive=archive)
        try:
            check_zip_sizes(path, archive.infolist())
            # torch's reader does not check the members' CRC32s: a flipped bit in the weights
            # would load silently, so check them here (about 1 s per GB)
            broken = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as e:
            raise ModelLoadError(f"{path} is a damaged zip archive ({e}); re-export the model") from None
        if broken is not None:
            raise ModelLoadError(f"{path} is damaged (checksum mismatch in {broken}); re-export or re-download it")
    except BaseException:
        archive.close()
        raise
    return archive


def _sniff(path: Path, stream: BinaryIO, head: bytes, size: int, archive: zipfile.ZipFile | None) -> str:
    if archive is not None:
        names = archive.namelist()
        if any("/code/__torch__" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("models/model.json") or n.endswith("archive_format") for n in names):
            return "torch-export"
        if any(n.endswith("data.pkl") for n in names):
            return "torch-save"
        raise ModelLoadError(f"{path} is a zip archive but not a PyTorch file; supported: {supported()}")
    if len(head) >= 9 and head[8:9] == b"{":
        (n,) = struct.unpack("<Q", head[:8])
        if 0 < n < size:
            return "safetensors"
        raise ModelLoadError(f"{path} looks like safetensors but its header claims {n:,} bytes in a "
                             f"{size:,}-byte file (truncated or forged); re-download it")
    if head[:1] == b"\x80" and path.suffix.lower() not in (".onnx",):
        check_not_polyglot(path, head=head, stream=stream)
        return "torch-save"  # legacy (non-zip) torch.save or a plain pickle
    kind = sniffed(path, head)  # the declared kinds' own predicates (app.model.kinds), else the fallback
    if kind is None:
        raise ModelLoadError(f"{path} is not a model file this studio reads; supported: {supported()}")
    return kind


def sniff_format(path: Path) -> str:
    """The kind of ``path`` (an :class:`app.model.kinds.ArtifactKind`'s name: torchscript, torch-export,
    torch-save, safetensors, onnx, tensorrt, openvino, executorch, …), after the checks every file gets
    (:func:`checked_file`)."""
    with checked_file(Path(path)) as file:
        return file.kind


def load(path: str | os.PathLike, source: ModelSource, *, guess_inputs: bool | None = None) -> LoadedModel:
    """Load any supported model file: sniffed and checked once, then read by its format's loader.
    Raises :class:`ModelLoadError`/:class:`UnsafeModelError`.

    ``source`` says what the user trusted (``allow_pickle`` approves nn.Module classes from torch.nn
    and ``arch`` in a full pickled module, ``trusted_globals`` any other global it names;
    ``run_code_from_file`` unpickles without any check: files the user made themselves) and the
    network of a state dict (``arch``). ``guess_inputs=False`` skips proposing (and test-running)
    input shapes for bare modules, for callers about to set them from ``--input`` (default: when
    ``source`` gives no inputs).
    """
    path = Path(path)
    guess = not source.inputs if guess_inputs is None else guess_inputs
    try:
        with checked_file(path) as file:
            return get_kind(file.kind, path).load(file, source, guess)
    except StudioError:
        raise
    except MemoryError:
        raise ModelLoadError(f"{path} asks for more memory than a job may use (layer sizes from the file; "
                             "DEPLOYSTUDIO_JOB_MEMORY_MB sets the limit)") from None
    except Exception as e:  # noqa: BLE001 - damaged files fail deep inside the readers in many ways (fuzzing)
        raise ModelLoadError(f"{path} could not be loaded: {describe(e)}; it is damaged or not a "
                             f"supported model ({supported()})") from None


def load_model(path: str | os.PathLike, *, arch: str | None = None, arch_kwargs: dict | None = None,
               allow_pickle: bool = False, trusted_globals: tuple[str, ...] = (),
               run_code_from_file: bool = False, guess_inputs: bool = True) -> LoadedModel:
    """:func:`load` with the source's choices as keywords (artifacts, tests)."""
    source = ModelSource(Path(path), arch=arch, arch_kwargs=tuple((arch_kwargs or {}).items()),
                         allow_pickle=allow_pickle, trusted_globals=tuple(trusted_globals),
                         run_code_from_file=run_code_from_file)
    return load(path, source, guess_inputs=guess_inputs)


# formats whose input names the user may rename with --input (a graph's names are fixed in the file)
RENAMABLE_FORMATS = ("state-dict", "pickle", "torchscript")


def prepare_model(source: ModelSource, *, runnable: bool = True) -> LoadedModel:
    """Load the source and settle its signature from the model itself and the user's ``--input`` and
    ``--dynamic``: the one way ``inspect``, ``convert``, ``evaluate``, ``bench`` and the window read a
    source model. ``runnable=False`` (inspect) shows what a file holds even when it cannot run yet (a
    state dict without ``--arch``, inputs of unknown shape)."""
    model = load(source.path, source)
    if runnable and model.format == "state-dict" and model.module is None:
        raise BadInput(model.warnings[0])
    if model.format == "torch-export" and source.dynamic:
        torch_export.refuse_fixed_axes(model, source.dynamic)
    if runnable or source.inputs or source.dynamic:
        # a guessed signature is only a proposal: the user's --input replaces it whole
        known = ([TensorSpec(s.name) for s in model.inputs] if model.inputs_guessed and source.inputs
                 else model.inputs)
        inputs = merge_user_inputs(known, list(source.inputs), model=model.path.name,
                                   rename_ok=model.format in RENAMABLE_FORMATS)
        inputs = apply_dynamic(inputs, source.dynamic)
        if inputs != model.inputs or source.inputs:
            model = with_inputs(model, inputs)
    if not runnable:
        return model
    missing = [s.name for s in model.inputs if not s.shape and not s.example]
    if missing:
        raise BadInput(f"{model.path.name}: the shapes of its inputs are unknown; pass --input NAME:SHAPE[:DTYPE] "
                       f"for {', '.join(missing)} (e.g. --input {missing[0]}:1x3x224x224)")
    model.details.setdefault("int_high", int_range_of(model))
    return model


def int_range_of(model: LoadedModel) -> int:
    """Upper bound for random integer inputs: the smallest embedding table (token ids stay valid)."""
    sizes = embedding_sizes(model)
    return min(sizes) if sizes else 2


def with_inputs(model: LoadedModel, inputs: list[TensorSpec]) -> LoadedModel:
    """The same model with a user-given signature; re-probes the outputs of torch models."""
    model.inputs = inputs
    model.inputs_guessed = False
    model.warnings = [w for w in model.warnings if "guess" not in w and "--input" not in w]
    if model.is_torch and model.module is not None:
        fn = model.torch_callable()
        try:
            names = [o.name for o in model.outputs] if model.outputs else None
            model.outputs = output_specs(probe_outputs(fn, inputs), names)
        except Exception as e:
            raise BadInput(f"{model.path.name} does not run on the given inputs "
                           f"({', '.join(s.describe() for s in inputs)}): {_first_line(e)}") from None
    return model  # its runner is made afresh for the new inputs (LoadedModel.runner)


