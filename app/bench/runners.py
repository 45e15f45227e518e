"""One runner per runtime, behind one interface (after Polygraphy's ``BaseRunner``).

A :class:`Runner` is loaded once (:meth:`Runner.load`, timed: the "load time"), turns feeds into
runtime-ready inputs once per input set (:meth:`Runner.prepare`: dtype casts, device copies — never
inside the timed loop), and times single calls on them (:meth:`Runner.timed_call`). On a GPU the
inputs are device-resident and each call is bracketed by CUDA events, so the time is the device's,
not the launch's. Public methods check state and forward to ``_*_impl`` hooks; heavy imports are lazy,
so a missing runtime fails only the runner that needs it, reported by :meth:`Runner.available`.

- :class:`TorchRunner`       PyTorch eager (the baseline), TorchScript archives, ``torch.export`` programs
- :class:`OnnxRuntimeRunner` one ONNX Runtime session per execution provider
- :class:`OpenVINORunner`    OpenVINO's CPU plugin: IR artifacts, and ONNX files beside ONNX Runtime
- :class:`TensorRTRunner`    serialized TensorRT engines (GPU + TensorRT only)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, ClassVar

import numpy as np

from app.errors import first_line
from app.model import Feeds, LoadedModel, flatten_outputs
from app.specs import TensorSpec

# Execution providers that do not run the model on this machine (AzureExecutionProvider calls a
# remote endpoint): never offered as a benchmark target.
REMOTE_PROVIDERS = ("AzureExecutionProvider",)
# Providers that keep tensors on a GPU: inputs are bound there once, outputs stay there while timing.
DEVICE_PROVIDERS = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}
# the runtime a torch file runs in, by its format (anything else: eager PyTorch)
TORCH_RUNTIMES = {"torchscript": "torchscript", "torch-export": "torch.export"}


class RunnerUnavailable(Exception):
    """The runtime this runner needs is missing here (the message says which and why)."""


def short_provider(provider: str | None) -> str:
    """``CUDAExecutionProvider`` → ``CUDA``."""
    return (provider or "").removesuffix("ExecutionProvider")


def onnxruntime_providers() -> list[str]:
    """The execution providers of the installed ONNX Runtime that run models locally, best first."""
    try:
        import onnxruntime as ort
    except Exception:  # noqa: BLE001 - a broken install is "no providers"
        return []
    return [p for p in ort.get_available_providers() if p not in REMOTE_PROVIDERS]


def resolve_provider(name: str) -> str:
    """``cpu``/``CUDA``/``CUDAExecutionProvider`` → the full provider name (unchecked)."""
    key = name.strip()
    if key.lower().endswith("executionprovider"):
        return key
    known = {short_provider(p).lower(): p for p in (
        "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider", "OpenVINOExecutionProvider",
        "DmlExecutionProvider", "CoreMLExecutionProvider", "ROCMExecutionProvider", "MIGraphXExecutionProvider",
        "QNNExecutionProvider", "XnnpackExecutionProvider", "WebGpuExecutionProvider", *onnxruntime_providers())}
    aliases = {"tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider",
               "directml": "DmlExecutionProvider", "openvino": "OpenVINOExecutionProvider"}
    return aliases.get(key.lower()) or known.get(key.lower()) or key + "ExecutionProvider"


def _np_dtype(dtype: str) -> np.dtype:
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
        cast = {s.name: np.ascontiguousarray(feeds[s.name]).astype(_np_dtype(s.dtype), copy=False) for s in self.inputs}
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


class TorchRunner(Runner):
    """A torch callable: the source ``nn.Module`` (eager), a TorchScript archive, an exported program.

    Parameters
    ----------
    loader
        Returns the :class:`~app.model.LoadedModel` (called, and timed, by :meth:`load`).
    runtime
        ``pytorch`` (eager), ``torchscript`` or ``torch.export``.
    device
        ``cpu`` or ``cuda``.
    """

    def __init__(self, name: str, loader: Callable[[], LoadedModel], *, runtime: str = "pytorch",
                 device: str = "cpu", precision: str = "fp32", size_bytes: int = 0):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.loader = loader
        self.runtime = runtime  # type: ignore[misc] - per instance: one class serves three runtimes
        self.device = device
        self.provider = device
        self.model: LoadedModel | None = None
        self._fn: Any = None

    def available(self) -> tuple[bool, str]:
        try:
            import torch
        except Exception as e:  # noqa: BLE001
            return False, f"PyTorch is not importable ({first_line(e)})"
        if self.device == "cuda" and not torch.cuda.is_available():
            return False, "no CUDA device visible to PyTorch (torch.cuda.is_available() is False)"
        return True, ""

    def _load_impl(self) -> None:
        model = self.loader()
        if model.module is None:
            raise RuntimeError(f"{model.path.name}: this {model.format} file holds no runnable module")
        fn = model.module.module() if model.format == "torch-export" else model.module
        if self.device != "cpu":
            fn = fn.to(self.device)
        self.model, self._fn, self.inputs = model, fn, list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> tuple:
        import torch

        args = []
        for spec in self.inputs:
            t = torch.from_numpy(feeds[spec.name])
            if spec.dtype == "bfloat16":
                t = t.to(torch.bfloat16)
            args.append(t.to(self.device) if self.device != "cpu" else t)
        return tuple(args)

    def _call_impl(self, prepared: tuple) -> Any:
        import torch

        with torch.inference_mode():
            return self._fn(*prepared)

    def timed_call(self, prepared: tuple) -> float:
        if self.device == "cpu":
            return super().timed_call(prepared)
        import torch

        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        self._call_impl(prepared)
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [t.detach().float().cpu().numpy() if t.is_floating_point() else t.detach().cpu().numpy()
                for t in flatten_outputs(raw)]

    def _close_impl(self) -> None:
        self.model, self._fn = None, None


class OnnxRuntimeRunner(Runner):
    """An ONNX Runtime session on one execution provider, ``threads`` intra-op threads.

    On CPU the timed call is ``session.run(None, feeds)`` — exactly what a user's loop does. On a
    GPU provider the inputs are bound on the device once (I/O binding) and the outputs stay there;
    ONNX Runtime synchronises its CUDA stream before ``run_with_iobinding`` returns, so the wall
    clock around it is the device time.
    """

    runtime = "onnxruntime"

    def __init__(self, path: Path, name: str, *, provider: str = "CPUExecutionProvider", threads: int | None = None,
                 precision: str = "fp32", size_bytes: int = 0):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.provider = provider
        self.threads = threads
        self.session: Any = None
        self._device = DEVICE_PROVIDERS.get(provider)

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime  # noqa: F401
        except Exception as e:  # noqa: BLE001
            return False, f"ONNX Runtime is not importable ({first_line(e)})"
        have = onnxruntime_providers()
        if self.provider not in have:
            return False, (f"{self.provider} is not in this ONNX Runtime build (available: {', '.join(have)}; "
                           "e.g. pip install onnxruntime-gpu for CUDA/TensorRT, onnxruntime-openvino, "
                           "onnxruntime-directml)")
        return True, ""

    def _load_impl(self) -> None:
        from app.loading import load_model, ort_session

        model = load_model(self.path)  # signature + the external-data safety checks
        providers = [self.provider] + (["CPUExecutionProvider"] if self.provider != "CPUExecutionProvider" else [])
        session = ort_session(self.path, providers, self.threads)
        if session.get_providers()[0] != self.provider:
            raise RunnerUnavailable(f"ONNX Runtime could not start {self.provider} for {self.path.name} "
                                    f"(it fell back to {session.get_providers()[0]})")
        self.session, self.inputs = session, list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> Any:
        if self._device is None:
            return feeds
        import onnxruntime as ort

        binding = self.session.io_binding()
        keep = []
        for name, arr in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(arr, self._device, 0)
            binding.bind_ortvalue_input(name, value)
            keep.append(value)
        for out in self.session.get_outputs():
            binding.bind_output(out.name, self._device)
        return binding, keep

    def _call_impl(self, prepared: Any) -> Any:
        if self._device is None:
            return self.session.run(None, prepared)
        binding, _ = prepared
        self.session.run_with_iobinding(binding)
        return binding

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        arrays = raw.copy_outputs_to_cpu() if self._device is not None else raw
        return [a.astype(np.float32) if a.dtype.kind == "f" and a.dtype != np.float32 else np.asarray(a)
                for a in arrays]

    def _close_impl(self) -> None:
        self.session = None


class OpenVINORunner(Runner):
    """An OpenVINO IR (``.xml``) or an ONNX file compiled by OpenVINO's CPU plugin.

    The inference precision is explicit (``INFERENCE_PRECISION_HINT``: bf16 only for bf16 artifacts,
    f32 for everything else, never the plugin's bf16 default) and the thread count is the same as
    every other runner's (``INFERENCE_NUM_THREADS``). The timed call is one synchronous
    ``infer_request.infer()`` on a reused request, outputs shared rather than copied — what a
    serving loop does.
    """

    runtime = "openvino"
    provider = "CPU"

    def __init__(self, path: Path, name: str, *, threads: int | None = None, precision: str = "fp32",
                 size_bytes: int = 0):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.threads = threads
        self.request: Any = None
        self.compiled: Any = None

    def available(self) -> tuple[bool, str]:
        from app.runtimes import openvino as ov_runtime

        ok, detail = ov_runtime.available()
        return (True, "") if ok else (False, detail)

    def _load_impl(self) -> None:
        from app.loading import load_model
        from app.runtimes.openvino import compile_model

        model = load_model(self.path)  # signature (+ the ONNX external-data checks)
        source = model.module if model.format == "openvino" else Path(self.path)
        self.compiled = compile_model(source, self.precision, self.threads, name=self.path.name)
        self.request = self.compiled.create_infer_request()
        self.inputs = list(model.inputs)
        if not self.size_bytes:
            self.size_bytes = model.size_bytes

    def _prepare_impl(self, feeds: Feeds) -> Any:
        return [feeds[s.name] for s in self.inputs]

    def _call_impl(self, prepared: Any) -> Any:
        return self.request.infer(prepared, share_inputs=True, share_outputs=True)

    def _outputs_impl(self, raw: Any) -> list[np.ndarray]:
        return [np.array(raw[i], dtype=np.float32) if raw[i].dtype.kind == "f" else np.array(raw[i])
                for i in range(len(self.compiled.outputs))]

    def _close_impl(self) -> None:
        self.request, self.compiled = None, None


class TensorRTRunner(Runner):
    """A serialized TensorRT engine: device-resident inputs, one execution context, CUDA events."""

    runtime = "tensorrt"
    provider = "cuda"

    def __init__(self, path: Path, name: str, *, precision: str = "fp32", size_bytes: int = 0):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.engine: Any = None
        self.context: Any = None
        self.stream: Any = None
        self._io: dict[str, str] = {}

    def available(self) -> tuple[bool, str]:
        from app.runtimes import tensorrt as trt_runtime

        return trt_runtime.available()

    def _load_impl(self) -> None:
        import torch

        from app.loaders.tensorrt import load_engine

        model = load_engine(self.path)
        self.engine = model.module
        self._runtime_ref = model._runner  # keeps the TensorRT runtime alive as long as the engine
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

        from app.runtimes.tensorrt import TORCH_DTYPES

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
            dtype = getattr(torch, TORCH_DTYPES.get(spec.dtype, "float32"))
            outs.append(torch.empty(shape, dtype=dtype, device="cuda"))
        return tensors, outs

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


# ---------------------------------------------------------------------------- artifacts → runners
def artifact_precision(path: Path) -> str:
    """The precision of an artifact: from its manifest, its name (``cnn.int8.onnx``), or its graph."""
    from app.manifest import read_manifest

    precision = (read_manifest(path) or {}).get("precision")
    if precision in ("fp32", "fp16", "bf16", "int8"):
        return precision
    for part in reversed(path.name.lower().split(".")):
        if part in ("fp32", "fp16", "int8", "bf16"):
            return part
    if path.suffix.lower() == ".onnx":
        try:
            import onnx

            proto = onnx.load(str(path), load_external_data=False)
            ops = {n.op_type for n in proto.graph.node}
            if ops & {"QuantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearConv", "ConvInteger"}:
                return "int8"
            if any(t.data_type == 10 for t in proto.graph.initializer):  # FLOAT16
                return "fp16"
        except Exception:  # noqa: BLE001 - a damaged file fails later, at load, with a clear message
            pass
    return "fp32"


def openvino_available() -> bool:
    """Whether OpenVINO is installed here (ONNX files are then also timed in OpenVINO)."""
    from app.runtimes import openvino as ov_runtime

    return ov_runtime.available()[0]


def runners_for_artifact(path: Path, *, providers: list[str], threads: int | None,
                         device: str = "cpu", openvino: bool | None = None) -> list[Runner]:
    """The runners that can time ``path``: for ``.onnx`` one per ONNX Runtime provider plus OpenVINO
    (``openvino``: default where it is installed); for an OpenVINO IR OpenVINO; else one."""
    from app.loading import load_model, sniff_format

    path = Path(path)
    kind = sniff_format(path)
    precision = artifact_precision(path)
    if kind == "openvino":
        return [OpenVINORunner(path, path.name, threads=threads, precision=precision)]
    if kind == "onnx":
        runners: list[Runner] = [
            OnnxRuntimeRunner(path, path.name if p == "CPUExecutionProvider" else f"{path.name} [{short_provider(p)}]",
                              provider=p, threads=threads, precision=precision) for p in providers]
        if openvino if openvino is not None else openvino_available():
            runners.append(OpenVINORunner(path, f"{path.name} [OpenVINO]", threads=threads, precision=precision))
        return runners
    if kind == "tensorrt":
        return [TensorRTRunner(path, path.name, precision=precision)]
    runtime = TORCH_RUNTIMES.get(kind, "pytorch")
    return [TorchRunner(path.name, lambda: load_model(path), runtime=runtime, device=device, precision=precision)]
