"""ExecuTorch as a runtime: ``.pte`` programs run by ExecuTorch's own runtime (``executorch.runtime``)
with the XNNPACK backend and the portable kernels linked in — the kernels a phone or board build runs.

A ``.pte`` is a flatbuffer (file identifier ``ET12``): read without running anything, its method
``forward`` gives the tensors' order, dtypes and sizes, and its execution plan which operators run as
delegate calls (XNNPACK) and which as portable kernels (:func:`program_delegation`). Input names and
dynamic axes are not in the file: they come from the manifest the conversion wrote beside it, else
``input_0``, ``input_1``… at the sizes the program was planned for.
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
from app.runtimes.base import Runner, installed
from app.model.specs import TensorSpec

PTE_MAGIC = b"ET12"  # the flatbuffer file identifier, bytes 4..8 of a .pte
INSTALL = "pip install 'model-deployment-studio[executorch]' (ExecuTorch 1.5, beside torch 2.13)"
# ExecuTorch's ScalarType codes (c10) → numpy dtype names
SCALAR_TYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32",
                7: "float64", 11: "bool", 15: "bfloat16"}


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    return installed("executorch", "executorch", "ExecuTorch", INSTALL)


def is_pte(head: bytes) -> bool:
    return len(head) >= 8 and head[4:8] == PTE_MAGIC


@functools.lru_cache(maxsize=1)
def runtime():
    """ExecuTorch's runtime (loaded once per process; its import prints CPU probing noise, kept out)."""
    ok, why = available()
    if not ok:
        raise ModelLoadError(why)
    with quiet_stderr():
        from executorch.runtime import Runtime

        return Runtime.get()


@contextlib.contextmanager
def quiet_stderr():
    """Standard error off, at the descriptor: the runtime's C++ CPU probe prints there when it loads
    (``[cpuinfo_utils.cpp:71] Reading file /sys/devices/soc0/image_version`` …), not through Python."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def set_threads(threads: int | None) -> None:
    """XNNPACK's thread pool is one per process: ``threads`` workers (None: ExecuTorch's default)."""
    if threads:
        from executorch.extension.pybindings import portable_lib

        if portable_lib._threadpool_get_thread_count() != threads:
            portable_lib._unsafe_reset_threadpool(int(threads))


def load_program(path: Path, *, etdump: bool = False):
    """``etdump``: with ExecuTorch's event tracer on (every operator and XNNPACK kernel timed, written by
    ``program.write_etdump_result_to_file``: :mod:`app.bench.profile`)."""
    from executorch.runtime import Verification

    try:
        with quiet_stderr():
            return runtime().load_program(Path(path), verification=Verification.InternalConsistency,
                                          enable_etdump=etdump)
    except ModelLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - the runtime reports damage as RuntimeError with an error code
        raise ModelLoadError(f"{path} is not a loadable ExecuTorch program ({first_line(e)}); re-export it") from None


def read_signature(program) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs of ``forward`` from the program's method metadata (planned sizes)."""
    meta = program.metadata("forward")

    def spec(info, name: str) -> TensorSpec:
        return TensorSpec(name, SCALAR_TYPES.get(int(info.dtype()), "float32"), tuple(int(d) for d in info.sizes()))

    inputs = [spec(meta.input_tensor_meta(i), f"input_{i}") for i in range(meta.num_inputs())]
    outputs = [spec(meta.output_tensor_meta(i), f"output_{i}" if meta.num_outputs() > 1 else "output")
               for i in range(meta.num_outputs())]
    return inputs, outputs


def program_delegation(path: Path) -> dict:
    """What the program runs where, read from its execution plan: delegate calls by backend and
    portable kernel calls by operator (what a device runs unaccelerated)."""
    with contextlib.redirect_stderr(io.StringIO()):
        from executorch.exir._serialize._program import deserialize_pte_binary

    pte = deserialize_pte_binary(Path(path).read_bytes())
    program = getattr(pte, "program", pte)
    plan = next((p for p in program.execution_plan if p.name == "forward"), program.execution_plan[0])
    kernels: Counter = Counter()
    delegates: Counter = Counter()
    for chain in plan.chains:
        for instruction in chain.instructions:
            args = instruction.instr_args
            if hasattr(args, "op_index"):
                kernels[plan.operators[args.op_index].name] += 1
            elif hasattr(args, "delegate_index"):
                delegates[plan.delegates[args.delegate_index].id] += 1
    # shape and view bookkeeping (sym_size, et_view …) runs in the portable runtime on every backend
    portable = {op: n for op, n in sorted(kernels.items()) if not op.startswith("executorch_prim::")}
    summary = (f"{sum(delegates.values())} delegate call(s) ({', '.join(f'{b} ×{n}' for b, n in delegates.items()) or 'none'})"
               + ("; portable kernels: " + ", ".join(f"{op} ×{n}" for op, n in portable.items()) if portable else
                  "; no operator outside the delegate"))
    return {"delegate_calls": dict(delegates), "portable": portable, "summary": summary}


def load_pte(path: Path, *, signature: tuple[list[TensorSpec], list[TensorSpec]] | None = None) -> LoadedModel:
    """A ``.pte`` as a :class:`LoadedModel` (format ``executorch``), run by :class:`ExecuTorchRunner`.
    ``signature``: the inputs and outputs the conversion knows (names, dynamic axes; its verification
    then skips reading the execution plan), else the manifest's beside the file, else the program's own
    (``input_0``…)."""
    from app.artifacts.manifest import read_manifest

    path = Path(path)
    program = load_program(path)
    own_in, own_out = read_signature(program)
    details = {"executorch": available()[1], "methods": sorted(program.method_names)}
    if signature is None:
        manifest = read_manifest(path) or {}
        signature = tuple(_recorded(manifest.get(key), own) for key, own in (("inputs", own_in), ("outputs", own_out)))
        try:
            details["delegation"] = program_delegation(path)
        except Exception as e:  # noqa: BLE001 - the runtime loaded it: a reader mismatch only loses the report
            details["delegation"] = {"summary": f"unknown ({first_line(e)})"}
    inputs, outputs = (_with_dtypes(known, own) if known else own for known, own in zip(signature, (own_in, own_out)))
    model = LoadedModel(path, "executorch", inputs, outputs, 0, path.stat().st_size, module=path, details=details)
    model.make_runner = lambda: ExecuTorchRunner(path, path.name, model=model)
    return model


def _recorded(specs, own: list[TensorSpec]) -> list[TensorSpec] | None:
    """A manifest's recorded signature when it has one spec per tensor of the program."""
    return [TensorSpec.from_json(d) for d in specs] if isinstance(specs, list) and len(specs) == len(own) else None


def _with_dtypes(specs: list[TensorSpec], own: list[TensorSpec]) -> list[TensorSpec]:
    """The known names and axes, with the dtypes the program takes (an fp16 program takes float16)."""
    from dataclasses import replace

    if len(specs) != len(own):
        return specs
    return [replace(s, dtype=o.dtype) if s.dtype != o.dtype else s for s, o in zip(specs, own)]


class ExecuTorchRunner(Runner):
    """A ``.pte`` in ExecuTorch's runtime: method ``forward`` loaded once, called with torch tensors
    (the runtime's Python binding takes them without a copy); XNNPACK's thread pool set to ``threads``."""

    runtime = "executorch"
    provider = "XNNPACK"

    def __init__(self, path: Path, name: str, *, threads: int | None = None, precision: str = "fp32",
                 size_bytes: int = 0, model: LoadedModel | None = None, etdump: bool = False):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.threads = threads
        self.model = model
        self.etdump = etdump  # the event tracer on (see load_program)
        self.method: Any = None

    def available(self) -> tuple[bool, str]:
        return available()

    def _load_impl(self) -> None:
        model = self.model or load_pte(self.path)
        set_threads(self.threads)
        program = load_program(self.path, etdump=self.etdump)
        try:
            with quiet_stderr():
                self.method = program.load_method("forward")
        except Exception as e:  # noqa: BLE001
            raise ModelLoadError(f"{self.path.name}: ExecuTorch cannot load its forward method ({first_line(e)}); "
                                 "it may need a kernel or backend this runtime lacks") from None
        self._program = program
        self.inputs = list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> list:
        import torch

        return [torch.from_numpy(np.array(feeds[s.name])) for s in self.inputs]

    def _call_impl(self, prepared: list) -> Any:
        return self.method.execute(prepared)

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [t.float().numpy() if t.is_floating_point() else t.numpy() for t in raw]

    def _close_impl(self) -> None:
        self.method, self._program = None, None


# ---------------------------------------------------------------------------- the kind
def runners(path: Path, *, providers=None, threads: int | None = None, precision: str = "fp32",
            device: str = "cpu") -> list[Runner]:
    """The benchmark's runner of a ``.pte``: ExecuTorch's runtime (XNNPACK)."""
    return [ExecuTorchRunner(path, path.name, threads=threads, precision=precision)]


KIND = register(ArtifactKind(
    "executorch", "ExecuTorch", (".pte",), runtime="ExecuTorch", sniff=lambda path, head: is_pte(head),
    load=lambda file, source, guess=True: load_pte(file.path), runners=runners))  # Netron draws its plan
