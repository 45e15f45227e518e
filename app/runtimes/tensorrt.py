"""TensorRT as a runtime: whether it can run here, reading a serialized engine (checked against the
``.tensorrt.json`` written beside it before TensorRT deserialises it), and running it on torch CUDA
tensors — for verification and the benchmark alike."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np

from app.artifacts.json_file import SideFileError, SideFileMissing, read_json_file
from app.errors import ModelLoadError
from app.model.kinds import ArtifactKind, register
from app.model.loaded import Feeds, LoadedModel
from app.model.specs import TensorSpec
from app.runtimes import tensorrt_build
from app.runtimes.base import Runner


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    try:
        import tensorrt  # noqa: F401
    except Exception:  # noqa: BLE001 - the PyPI stub raises at import, broken installs raise anything
        return False, "TensorRT is not installed (pip install tensorrt on a machine with an NVIDIA GPU)"
    try:
        import torch

        if not torch.cuda.is_available():
            return False, "no NVIDIA GPU visible (torch.cuda.is_available() is False)"
    except Exception as e:  # noqa: BLE001
        return False, f"no NVIDIA GPU visible (torch cannot query CUDA: {type(e).__name__})"
    return True, ""


TORCH_DTYPES = {"float32": "float32", "float16": "float16", "bfloat16": "bfloat16", "int8": "int8",
                "int32": "int32", "int64": "int64", "bool": "bool", "uint8": "uint8"}


def _current_compute_capability() -> str | None:
    try:
        import torch

        major, minor = torch.cuda.get_device_capability()
        return f"{major}.{minor}"
    except Exception:  # noqa: BLE001
        return None


def _check_manifest(path: Path, trt) -> dict | None:
    """Refuse an engine that does not match its ``.tensorrt.json`` or this machine (before deserialising)."""
    manifest_path = path.with_name(path.name + tensorrt_build.MANIFEST_SUFFIX)
    try:  # never blocks (a FIFO is refused), bounded
        manifest = read_json_file(manifest_path, "TensorRT engine manifest")
    except SideFileMissing:
        return None
    except SideFileError as e:
        raise ModelLoadError(f"{e}; rebuild the engine") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{manifest_path.name} beside the engine is malformed; rebuild the engine")
    want = manifest.get("sha256")
    if want and tensorrt_build.sha256_file(path) != want:
        raise ModelLoadError(f"{path.name} does not match {manifest_path.name} (its SHA-256 differs: the engine was "
                             "modified, truncated or replaced); rebuild it")
    built_with, here = manifest.get("tensorrt"), str(trt.__version__)
    if built_with and built_with != here:
        raise ModelLoadError(f"{path.name} was built with TensorRT {built_with}, this machine has TensorRT {here}; "
                             "engines only run on the TensorRT version that built them — rebuild it here")
    cc, cc_here = manifest.get("compute_capability"), _current_compute_capability()
    if cc and cc_here and cc != cc_here:
        raise ModelLoadError(f"{path.name} was built for compute capability {cc} ({manifest.get('gpu')}), this GPU "
                             f"is {cc_here}; engines only run on the GPU model that built them — rebuild it here")
    return manifest


def load_engine(path) -> LoadedModel:
    """Deserialise a TensorRT engine and run it with torch CUDA tensors (format ``tensorrt``)."""
    path = Path(path)
    ok, why = available()
    if not ok:
        raise ModelLoadError(f"{path.name} is a TensorRT engine and cannot be loaded here: {why}; engines only run "
                             "on the GPU and TensorRT version they were built for")
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    import tensorrt as trt

    manifest = _check_manifest(path, trt)
    logger = tensorrt_build._make_logger(trt, echo=False)
    runtime = trt.Runtime(logger)
    engine = runtime.deserialize_cuda_engine(path.read_bytes())
    if engine is None:
        detail = logger.errors[-1].strip().splitlines()[0][:300] if logger.errors else "not a valid engine"
        raise ModelLoadError(f"TensorRT {trt.__version__} cannot load {path.name} ({detail}); engines only run on the "
                             "GPU and TensorRT version they were built for — rebuild it here")
    labels = {d["name"]: d.get("shape") or [] for d in (manifest or {}).get("inputs", []) if isinstance(d, dict)}
    inputs, outputs = [], []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dims = list(engine.get_tensor_shape(name))
        dtype = tensorrt_build.dtype_name(engine.get_tensor_dtype(name))
        known = labels.get(name, [])
        shape = tuple((known[a] if a < len(known) and isinstance(known[a], str) else tensorrt_build.dynamic_label(name, a))
                      if d < 0 else int(d) for a, d in enumerate(dims))
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            example: tuple[int, ...] = ()
            if any(d < 0 for d in dims):
                try:
                    example = tuple(int(x) for x in engine.get_tensor_profile_shape(name, 0)[1])
                except Exception:  # noqa: BLE001
                    example = ()
            inputs.append(TensorSpec(name, dtype, shape, example))
        else:
            outputs.append(TensorSpec(name, dtype, shape))
    details = {"tensorrt": str(trt.__version__), "engine_manifest": manifest is not None,
               **{k: (manifest or {}).get(k) for k in ("gpu", "compute_capability", "cuda", "strongly_typed")}}
    model = LoadedModel(path, "tensorrt", inputs, outputs, 0, path.stat().st_size, module=engine, details=details)

    def make_runner(runtime=runtime):  # the TensorRT runtime must outlive the engine: the model keeps it
        return TensorRTRunner(path, path.name, model=model)

    model.make_runner = make_runner
    return model


class TensorRTRunner(Runner):
    """A serialized TensorRT engine: device-resident inputs, one execution context, CUDA events."""

    runtime = "tensorrt"
    provider = "cuda"

    def __init__(self, path: Path, name: str, *, precision: str = "fp32", size_bytes: int = 0,
                 model: LoadedModel | None = None):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.model = model  # the engine already deserialised; else deserialised at load
        self.engine: Any = None
        self.context: Any = None
        self.stream: Any = None
        self._io: dict[str, str] = {}
        self._lock = threading.Lock()

    def available(self) -> tuple[bool, str]:
        return available()

    def _load_impl(self) -> None:
        import torch

        model = self.model = self.model or load_engine(self.path)  # the model keeps TensorRT's runtime alive
        self.engine = model.module
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise RuntimeError("TensorRT cannot create an execution context (out of GPU memory?)")
        self.stream = torch.cuda.Stream()
        self.inputs, self.outputs_spec = list(model.inputs), list(model.outputs)
        self._io = {s.name: s.dtype for s in [*model.inputs, *model.outputs]}
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> Any:
        import torch

        tensors = {}
        for spec in self.inputs:
            dtype = getattr(torch, TORCH_DTYPES.get(spec.dtype, "float32"))
            t = torch.from_numpy(feeds[spec.name]).to(device="cuda", dtype=dtype).contiguous()
            if not self.context.set_input_shape(spec.name, tuple(t.shape)):
                raise RuntimeError(f"input {spec.name}: shape {tuple(t.shape)} is outside the engine's optimization profile")
            tensors[spec.name] = t
        outs = []
        for spec in self.outputs_spec:
            shape = tuple(self.context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise RuntimeError(f"output {spec.name} has a data-dependent shape {shape}; "
                                   "this runner needs output shapes known from the input shapes")
            dtype = getattr(torch, TORCH_DTYPES.get(spec.dtype, "float32"))
            outs.append(torch.empty(shape, dtype=dtype, device="cuda"))
        return tensors, outs

    def infer(self, feeds: Feeds) -> list[np.ndarray]:
        with self._lock:  # one execution context: one inference at a time
            return super().infer(feeds)

    def _bind(self, prepared: Any) -> None:
        tensors, outs = prepared
        for spec in self.inputs:
            self.context.set_input_shape(spec.name, tuple(tensors[spec.name].shape))
            self.context.set_tensor_address(spec.name, tensors[spec.name].data_ptr())
        for spec, t in zip(self.outputs_spec, outs):
            self.context.set_tensor_address(spec.name, t.data_ptr())

    def _call_impl(self, prepared: Any) -> Any:
        self._bind(prepared)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT failed to run the engine (execute_async_v3 returned False)")
        self.stream.synchronize()
        return prepared[1]

    def timed_call(self, prepared: Any) -> float:
        import torch

        self._bind(prepared)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(self.stream)
        if not self.context.execute_async_v3(self.stream.cuda_stream):
            raise RuntimeError("TensorRT failed to run the engine (execute_async_v3 returned False)")
        end.record(self.stream)
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        import torch

        return [(t.float() if t.dtype in (torch.float16, torch.bfloat16) else t).cpu().numpy() for t in raw]

    def _close_impl(self) -> None:
        self.context, self.engine, self.stream = None, None, None


# ---------------------------------------------------------------------------- the kind
def runners(path: Path, *, providers=None, threads: int | None = None, precision: str = "fp32",
            device: str = "cpu") -> list[Runner]:
    """The benchmark's runner of an engine: TensorRT on the GPU."""
    return [TensorRTRunner(path, path.name, precision=precision)]


KIND = register(ArtifactKind(
    "tensorrt", "TensorRT", (".engine", ".plan"), runtime="TensorRT", described=".engine/.plan (TensorRT)",
    sniff=lambda path, head: path.suffix.lower() in (".engine", ".plan", ".trt"),  # a serialized engine has no magic
    load=lambda file, source, guess=True: load_engine(file.path), runners=runners,
    no_graph="Netron reads only the header of a TensorRT engine, not its layers",
    triton=("tensorrt_plan", "model.plan"), gpu=True))
