"""One runner per runtime, behind one interface (after Polygraphy's ``BaseRunner``).

A :class:`Runner` is loaded once (:meth:`Runner.load`, timed: the "load time"), turns feeds into
runtime-ready inputs once per input set (:meth:`Runner.prepare`: dtype casts, device copies — never
inside the timed loop), and times single calls on them (:meth:`Runner.timed_call`). On a GPU the
inputs are device-resident and each call is bracketed by CUDA events, so the time is the device's,
not the launch's. Public methods check state and forward to ``_*_impl`` hooks; heavy imports are lazy,
so a missing runtime fails only the runner that needs it, reported by :meth:`Runner.available`.

- :mod:`app.runtimes.pytorch`   PyTorch eager (the baseline), TorchScript archives, ``torch.export`` programs
- :mod:`app.runtimes.onnxrt`    one ONNX Runtime session per execution provider
- :mod:`app.runtimes.openvino`  OpenVINO's CPU plugin: IR artifacts, and ONNX files beside ONNX Runtime
- :mod:`app.runtimes.tensorrt`  serialized TensorRT engines (GPU + TensorRT only)

Verification, evaluation and the benchmark all run models through these runners: a
:class:`~app.model.loaded.LoadedModel` hands out its own (:meth:`~app.model.loaded.LoadedModel.runner`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from typing import Any, ClassVar

import numpy as np

from app.model.loaded import Feeds
from app.model.specs import TensorSpec


class RunnerUnavailable(Exception):
    """The runtime this runner needs is missing here (the message says which and why)."""


def np_dtype(dtype: str) -> np.dtype:
    """numpy has no bfloat16: bfloat16 inputs are fed as float32 (torch runners cast them)."""
    return np.dtype("float32" if dtype == "bfloat16" else dtype)


class Runner:
    """One model in one runtime: ``with runner: runner.load(); runner.infer(feeds)``.

    Parameters
    ----------
    name
        What the row is called (the artifact's file name, "PyTorch eager" for the source module).
    precision
        ``fp32``/``fp16``/``int8``, as written into the artifact.
    size_bytes
        The artifact's size on disk (with external data).
    """

    runtime: ClassVar[str] = ""
    provider: str = ""

    def __init__(self, name: str, *, precision: str = "fp32", size_bytes: int = 0):
        self.name = name
        self.precision = precision
        self.size_bytes = size_bytes
        self.inputs: list[TensorSpec] = []
        self.loaded = False
        self.preload_seconds = 0.0  # time already spent loading elsewhere (the source model), added to load()
        # the benchmark's inputs for this runner when its batch axis differs from the source's (the
        # artifact's own dynamic axes: app.bench.runners.follow_artifact); None: the source's
        self.feed_specs: list[TensorSpec] | None = None

    # -- availability
    def available(self) -> tuple[bool, str]:
        """Whether this runner can run on this machine, and why not."""
        return True, ""

    # -- life cycle
    def load(self) -> float:
        """Load the model and create the session; returns the seconds it took."""
        ok, why = self.available()
        if not ok:
            raise RunnerUnavailable(why)
        started = time.perf_counter()
        self._load_impl()
        self.loaded = True
        return time.perf_counter() - started + self.preload_seconds

    def close(self) -> None:
        """Release the session and the model (idempotent)."""
        if self.loaded:
            self._close_impl()
        self.loaded = False

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- inference
    def prepare(self, feeds: Feeds) -> Any:
        """Turn numpy feeds into this runtime's inputs (cast to the artifact's dtypes, on its device).

        Done once per input set, outside the timed loop.
        """
        self._check_loaded()
        missing = [s.name for s in self.inputs if s.name not in feeds]
        if missing:
            raise KeyError(f"{self.name} takes input(s) {', '.join(missing)}, which the source model does not have")
        cast = {s.name: np.ascontiguousarray(feeds[s.name]).astype(np_dtype(s.dtype), copy=False) for s in self.inputs}
        return self._prepare_impl(cast)

    def call(self, prepared: Any) -> Any:
        """One inference on prepared inputs; returns the runtime's raw outputs (not synchronised)."""
        return self._call_impl(prepared)

    def timed_call(self, prepared: Any) -> float:
        """One inference, in seconds: wall clock on CPU; device time between CUDA events on a GPU."""
        started = time.perf_counter()
        self._call_impl(prepared)
        return time.perf_counter() - started

    def outputs(self, raw: Any) -> list[np.ndarray]:
        """Raw outputs as host numpy arrays (floating outputs as float32)."""
        return self._outputs_impl(raw)

    def infer(self, feeds: Feeds) -> list[np.ndarray]:
        """Prepare, run once and fetch the outputs: for accuracy checks, never for timing."""
        return self.outputs(self.call(self.prepare(feeds)))

    def _check_loaded(self) -> None:
        if not self.loaded:
            raise RuntimeError(f"{self.name}: call load() first")

    # -- hooks
    def _load_impl(self) -> None:
        raise NotImplementedError

    def _prepare_impl(self, feeds: Feeds) -> Any:
        return feeds

    def _call_impl(self, prepared: Any) -> Any:
        raise NotImplementedError

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [np.asarray(a) for a in raw]

    def _close_impl(self) -> None:
        pass


def installed(module: str, distribution: str, label: str, install: str) -> tuple[bool, str]:
    """(True, version) where ``module`` can be imported and ``distribution`` has package metadata; else
    (False, one line saying how to install it). ``find_spec``, not import: the window asks from its own
    process and must stay light."""
    if importlib.util.find_spec(module) is None:
        return False, f"{label} is not installed: {install}"
    try:
        return True, importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return False, f"{label} is installed incompletely (no package metadata); reinstall it: {install}"
