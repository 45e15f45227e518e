"""LiteRT (formerly TensorFlow Lite) as a runtime: ``.tflite`` flatbuffers run by the LiteRT interpreter
(``ai_edge_litert.interpreter``) with its XNNPACK delegate — the CPU kernels Android and embedded Linux
builds run.

A ``.tflite`` is a flatbuffer (file identifier ``TFL3``, bytes 4..8). Its signature (``serving_default``)
names the inputs and outputs (``args_0``… as ``litert-torch`` writes them); the names and dynamic axes the
source had come from the manifest the conversion wrote beside it, else the file's own. Which operators
the delegate takes is read from the interpreter's execution plan after the delegate was applied
(:func:`delegation`): a ``DELEGATE`` node per XNNPACK subgraph, the rest run by LiteRT's built-in kernels.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from app.errors import ModelLoadError, first_line
from app.model.kinds import ArtifactKind, register
from app.model.loaded import Feeds, LoadedModel
from app.model.specs import TensorSpec
from app.runtimes.base import Runner, installed

TFLITE_MAGIC = b"TFL3"  # the flatbuffer file identifier, bytes 4..8 of a .tflite
INSTALL = "pip install 'model-deployment-studio[litert]' (litert-torch 0.10 with the ai-edge-litert interpreter)"
SIGNATURE = "serving_default"


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    return installed("ai_edge_litert", "ai-edge-litert", "LiteRT", INSTALL)


@contextlib.contextmanager
def quiet_output():
    """Standard output and error off, at the descriptors: the interpreter and the converter log from C++
    (``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.``, MLIR statistics), not through Python,
    and litert-torch prints its progress (``--json`` must print one object)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def is_tflite(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == TFLITE_MAGIC


def interpreter(path: Path, threads: int | None = None):
    """The LiteRT interpreter on ``path`` with its default delegate (XNNPACK) and ``threads`` threads,
    tensors allocated; a file it cannot read is one line."""
    ok, why = available()
    if not ok:
        raise ModelLoadError(why)
    from ai_edge_litert.interpreter import Interpreter

    try:
        with quiet_output():
            made = Interpreter(model_path=str(path), num_threads=int(threads) if threads else None)
            made.allocate_tensors()
    except Exception as e:  # noqa: BLE001 - the interpreter reports damage as ValueError/RuntimeError
        raise ModelLoadError(f"{Path(path).name} is not a loadable LiteRT model ({first_line(e)}); re-convert it") from None
    return made


def _signature_io(made) -> tuple[list[str], list[str], dict, dict]:
    """(input keys, output keys, input details by key, output details by key) of the model's signature, in the
    order of its arguments (``args_0``, ``args_1``…; ``output_0``…)."""
    signatures = made.get_signature_list()
    if not signatures:
        raise ModelLoadError("the model has no signature (LiteRT models converted by litert-torch have one)")
    key = SIGNATURE if SIGNATURE in signatures else next(iter(signatures))
    runner = made.get_signature_runner(key)
    ins, outs = runner.get_input_details(), runner.get_output_details()
    return _ordered(ins), _ordered(outs), ins, outs


def _ordered(details: dict) -> list[str]:
    """Signature keys in argument order: ``args_10`` after ``args_9``."""
    def rank(name: str):
        tail = name.rpartition("_")[2]
        return (0, int(tail), name) if tail.isdigit() else (1, 0, name)
    return sorted(details, key=rank)


def _spec(name: str, detail: dict) -> TensorSpec:
    dtype = np.dtype(detail["dtype"]).name
    signature = detail.get("shape_signature")
    dims = signature if signature is not None and len(signature) else detail["shape"]
    shape = tuple(f"dim{i}" if int(d) < 0 else int(d) for i, d in enumerate(dims))
    return TensorSpec(name, dtype, shape, tuple(int(d) for d in detail["shape"]))


def read_signature(made) -> tuple[list[TensorSpec], list[TensorSpec]]:
    ins, outs, in_details, out_details = _signature_io(made)
    single = len(outs) == 1
    return ([_spec(k, in_details[k]) for k in ins],
            [_spec("output" if single else k, out_details[k]) for k in outs])


def delegation(made) -> dict:
    """What the interpreter runs where, from its nodes after the delegate was applied: each XNNPACK
    ``DELEGATE`` node stands for the operators between its inputs and its outputs (walked back from its
    outputs); the other operators run in LiteRT's built-in kernels. By operator name."""
    ops = [op for op in made._get_ops_details()]  # noqa: SLF001 - the only view of the nodes the Python API gives
    producer = {int(t): op for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    taken: set[int] = set()
    calls = 0
    for node in ops:
        if node["op_name"] != "DELEGATE":
            continue
        calls += 1
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            op = producer.get(stack.pop())
            if op is None or op["index"] in taken:
                continue
            taken.add(op["index"])
            stack += [int(t) for t in op["inputs"] if int(t) >= 0 and int(t) not in boundary]
    delegated: Counter = Counter()
    builtin: Counter = Counter()
    for op in ops:
        if op["op_name"] != "DELEGATE":
            (delegated if op["index"] in taken else builtin)[str(op["op_name"])] += 1
    n_del, n_builtin = sum(delegated.values()), sum(builtin.values())
    summary = f"{n_del} of {n_del + n_builtin} operators run in XNNPACK ({calls} delegate call(s))"
    if builtin:
        summary += "; in LiteRT's built-in kernels: " + ", ".join(f"{op} ×{n}" for op, n in sorted(builtin.items()))
    return {"delegated": dict(sorted(delegated.items())), "builtin": dict(sorted(builtin.items())),
            "delegated_count": n_del, "builtin_count": n_builtin, "delegate_calls": calls, "summary": summary}


def load_tflite(path: Path, *, signature: tuple[list[TensorSpec], list[TensorSpec]] | None = None) -> LoadedModel:
    """A ``.tflite`` as a :class:`LoadedModel` (format ``litert``), run by :class:`LiteRTRunner`.
    ``signature``: the names and dynamic axes the conversion knows, else the manifest's beside the file,
    else the model's own."""
    from app.artifacts.manifest import read_manifest

    path = Path(path)
    made = interpreter(path)
    own_in, own_out = read_signature(made)
    details: dict[str, Any] = {"litert": available()[1]}
    if signature is None:
        manifest = read_manifest(path) or {}
        signature = tuple(_recorded(manifest.get(key), own) for key, own in (("inputs", own_in), ("outputs", own_out)))
        try:
            details["delegation"] = delegation(made)
        except Exception as e:  # noqa: BLE001 - the interpreter loaded it: a plan it cannot show only loses the report
            details["delegation"] = {"summary": f"unknown ({first_line(e)})"}
    inputs, outputs = (_with_dtypes(known, own) if known else own for known, own in zip(signature, (own_in, own_out)))
    model = LoadedModel(path, "litert", inputs, outputs, 0, path.stat().st_size, module=path, details=details)
    model.make_runner = lambda: LiteRTRunner(path, path.name, model=model)
    return model


def _recorded(specs, own: list[TensorSpec]) -> list[TensorSpec] | None:
    """A manifest's recorded signature when it has one spec per tensor of the model (the model's dtypes:
    an int8 model may take int8)."""
    if not isinstance(specs, list) or len(specs) != len(own):
        return None
    return [TensorSpec.from_json(d) for d in specs]


def _with_dtypes(specs: list[TensorSpec], own: list[TensorSpec]) -> list[TensorSpec]:
    """The known names and axes, with the dtypes the model takes."""
    from dataclasses import replace

    if len(specs) != len(own):
        return specs
    return [replace(s, dtype=o.dtype) if s.dtype != o.dtype else s for s, o in zip(specs, own)]


class LiteRTRunner(Runner):
    """A ``.tflite`` in the LiteRT interpreter with XNNPACK, ``threads`` threads; its signature runner
    called with numpy arrays. A batch or length other than the one the model was allocated for resizes
    the inputs first (outside the timed call)."""

    runtime = "litert"
    provider = "XNNPACK"

    def __init__(self, path: Path, name: str, *, threads: int | None = None, precision: str = "fp32",
                 size_bytes: int = 0, model: LoadedModel | None = None):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.threads = threads
        self.model = model
        self.made: Any = None
        self.keys: tuple[list[str], list[str]] = ([], [])
        self.shapes: dict[int, tuple] = {}

    def available(self) -> tuple[bool, str]:
        return available()

    def _load_impl(self) -> None:
        model = self.model or load_tflite(self.path)
        self.made = interpreter(self.path, self.threads)
        ins, outs, in_details, out_details = _signature_io(self.made)
        self.keys = ([in_details[k]["index"] for k in ins], [out_details[k]["index"] for k in outs])
        self.shapes = {d["index"]: tuple(int(s) for s in d["shape"]) for d in in_details.values()}
        self.inputs = list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> list:
        arrays = [np.ascontiguousarray(feeds[s.name]) for s in self.inputs]
        resized = False
        for index, array in zip(self.keys[0], arrays):
            if self.shapes.get(index) != array.shape:
                self.made.resize_tensor_input(index, list(array.shape), strict=False)
                self.shapes[index] = array.shape
                resized = True
        if resized:
            try:
                self.made.allocate_tensors()
            except Exception as e:  # noqa: BLE001
                raise ModelLoadError(f"{self.name}: LiteRT cannot run it at {[a.shape for a in arrays]} "
                                     f"({first_line(e)}); convert it with that size or a dynamic axis") from None
        return arrays

    def _call_impl(self, prepared: list) -> Any:
        for index, array in zip(self.keys[0], prepared):
            self.made.set_tensor(index, array)
        self.made.invoke()
        return [self.made.get_tensor(index) for index in self.keys[1]]

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [a.astype(np.float32) if a.dtype.kind == "f" else np.array(a) for a in raw]

    def _close_impl(self) -> None:
        self.made = None


# ---------------------------------------------------------------------------- the kind
def runners(path: Path, *, providers=None, threads: int | None = None, precision: str = "fp32",
            device: str = "cpu") -> list[Runner]:
    """The benchmark's runner of a ``.tflite``: the LiteRT interpreter (XNNPACK)."""
    return [LiteRTRunner(path, path.name, threads=threads, precision=precision)]


KIND = register(ArtifactKind(
    "litert", "LiteRT", (".tflite",), runtime="LiteRT", sniff=lambda path, head: is_tflite(head),
    load=lambda file, source, guess=True: load_tflite(file.path), runners=runners))  # Netron draws .tflite
