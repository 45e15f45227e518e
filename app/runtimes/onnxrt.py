"""ONNX Runtime as a runtime: reading an ONNX file safely (its signature; external data that must stay
beside it), sessions, and one runner per execution provider."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from app.errors import ModelLoadError, first_line
from app.model.layer_facts import gather_tables
from app.model.kinds import ArtifactKind, register, supported
from app.model.loaded import Feeds, LoadedModel
from app.model.specs import TensorSpec
from app.runtimes.base import Runner, RunnerUnavailable

# Execution providers that do not run the model on this machine (AzureExecutionProvider calls a
# remote endpoint): never offered as a benchmark target.
REMOTE_PROVIDERS = ("AzureExecutionProvider",)
# Providers that keep tensors on a GPU: inputs are bound there once, outputs stay there while timing.
DEVICE_PROVIDERS = {"CUDAExecutionProvider": "cuda", "TensorrtExecutionProvider": "cuda"}

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


# ---------------------------------------------------------------------------- reading ONNX files
def file_size_with_data(path: Path, extra: list[Path] = ()) -> int:
    return path.stat().st_size + sum(p.stat().st_size for p in extra if p.exists())


def _graph_tensors(graph):
    """Every tensor of ``graph``: initializers, sparse initializers, node attributes (Constant
    values), and the same inside subgraphs (If branches, Loop and Scan bodies)."""
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield sparse.values
        yield sparse.indices
    yield from _nodes_tensors(graph.node)


def _nodes_tensors(nodes):
    for node in nodes:
        for a in node.attribute:
            if a.HasField("t"):
                yield a.t
            yield from a.tensors
            if a.HasField("sparse_tensor"):
                yield a.sparse_tensor.values
                yield a.sparse_tensor.indices
            for s in a.sparse_tensors:
                yield s.values
                yield s.indices
            if a.HasField("g"):
                yield from _graph_tensors(a.g)
            for g in a.graphs:
                yield from _graph_tensors(g)


def onnx_tensors(model):
    """Every tensor in an ONNX model: the main graph, its subgraphs, and local functions' nodes."""
    yield from _graph_tensors(model.graph)
    for function in model.functions:
        yield from _nodes_tensors(function.node)


def external_files_of(path: Path) -> list[Path]:
    """:func:`onnx_external_files` of the ONNX file ``path``, read from its wire format without parsing it
    (:func:`app.runtimes.onnx_scan.scan_onnx`: a graph past the message limit is refused in one line):
    what the unfenced process needs of a model it does not load (the window's graph, the memory check)."""
    from app.runtimes.onnx_scan import scan_onnx

    return onnx_external_files(None, path.parent, path, tensors=scan_onnx(path).external)


def onnx_external_files(model, folder: Path, source: Path, *, tensors=None) -> list[Path]:
    """Files the model's tensors point to, each checked to lie inside ``folder`` (no climbing out, no
    link on the way) and to be a file. Each is returned resolved — ``folder.resolve() / location`` —
    so that the path checked is the path every caller then opens or copies; relative to
    ``folder.resolve()`` it is the location the model names (where a copy of the model needs it).
    ``tensors``: the external-data tensors already found (a scan of the file) instead of ``model``'s."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    files: list[Path] = []
    root = folder.resolve()
    for tensor in onnx_tensors(model) if tensors is None else tensors:
        if not uses_external_data(tensor):
            continue
        try:
            location = ExternalDataInfo(tensor).location
        except ValueError as e:  # an offset or length that is not a number
            raise ModelLoadError(f"{source}: the external data of tensor {tensor.name!r} is malformed "
                                 f"({first_line(e)}); refused — re-save the model") from None
        relative = Path(location)
        if os.path.isabs(location) or ".." in relative.parts:
            raise ModelLoadError(f"{source}: external data location {location!r} points outside the model's "
                                 "folder; refused (a crafted ONNX file can read any file this way)")
        if not relative.parts:  # "", ".", "./": the folder itself
            raise ModelLoadError(f"{source}: external data location {location!r} names the model's folder, "
                                 "not a file; refused — re-save the model with its weights in a file beside it")
        candidate = root / relative
        if not candidate.resolve().is_relative_to(root):
            raise ModelLoadError(f"{source}: external data file {location!r} is a link leading outside the "
                                 "model's folder; refused")
        if candidate.is_symlink() or candidate.resolve() != candidate:  # a link inside: staged, it would dangle
            raise ModelLoadError(f"{source}: external data file {location!r} is a link or lies under one; "
                                 "refused — keep the data file itself beside the .onnx")
        if not candidate.exists():
            raise ModelLoadError(f"{source}: its weights live in {location!r}, which is missing; "
                                 "keep the data file beside the .onnx")
        if not candidate.is_file():
            raise ModelLoadError(f"{source}: external data location {location!r} names a directory, not a "
                                 "file; refused — re-save the model with its weights in a file beside it")
        if candidate not in files:
            files.append(candidate)
    return files


def _onnx_dims(value_info, name: str) -> tuple:
    dims = []
    for axis, d in enumerate(value_info.type.tensor_type.shape.dim):
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or f"{name}_dim{axis}")
    return tuple(dims)


def onnx_specs(graph) -> tuple[list[TensorSpec], list[TensorSpec]]:
    from onnx.helper import tensor_dtype_to_np_dtype

    init = {i.name for i in graph.initializer}

    def spec(v):
        elem = v.type.tensor_type.elem_type
        dtype = str(tensor_dtype_to_np_dtype(elem)) if elem else "float32"
        return TensorSpec(v.name, dtype, _onnx_dims(v, v.name))

    return [spec(v) for v in graph.input if v.name not in init], [spec(v) for v in graph.output]


def ort_session(path: Path, providers: list[str] | None = None, threads: int | None = None, *,
                map_weights: bool = False, simulate_quantization: bool = False, profile_prefix: str | None = None):
    """An ONNX Runtime session for ``path``; errors become one clear line.

    ``profile_prefix``: ONNX Runtime's profiler on (``enable_profiling``), its JSON written to
    ``<profile_prefix>_<date>.json`` when ``session.end_profiling()`` is called (:mod:`app.bench.profile`).

    ``map_weights``: keep external-data weights in the file's memory mapping (the page cache) instead
    of copying them into pre-packed buffers — a verification run does not need pre-packing's speed,
    and a multi-GB model then costs no second copy.

    ``simulate_quantization``: no graph optimisation, so Q/DQ pairs are not fused into this CPU's
    integer kernels: each DequantizeLinear hands float values to a float operator, which computes what
    an int8 engine with 32-bit accumulation (TensorRT's) computes, independent of this CPU's int8
    kernels (whose u8×s8 sums saturate on x86 without VNNI)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if simulate_quantization:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if map_weights:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    if threads:
        opts.intra_op_num_threads = threads
    if profile_prefix:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile_prefix
    providers = providers or ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), opts, providers=providers)
    except Exception as e:
        error = e
    if "external" in str(error).lower():
        # ONNX Runtime's shape inference cannot read small constants (e.g. ReduceMean axes) that an
        # exporter put in external data; give it the model with its data loaded in memory instead
        import onnx

        proto = onnx.load(str(path))
        if proto.ByteSize() < 2**31 - 1:
            try:
                return ort.InferenceSession(proto.SerializeToString(), opts, providers=providers)
            except Exception as e:
                error = e
    raise ModelLoadError(f"ONNX Runtime cannot load {path.name}: {first_line(error)}") from None

def read_onnx(path: Path, stream: BinaryIO | None = None) -> LoadedModel:
    """An ONNX file as a :class:`LoadedModel` (format ``onnx``): parsed without its weights, its external
    data checked to lie beside it (:func:`onnx_external_files`), run by ONNX Runtime on CPU.
    ``stream``: the file, already open (the front door's, :mod:`app.loaders.front_door`); read from its start."""
    import onnx
    from google.protobuf.message import DecodeError

    from app.runtimes.onnx_scan import OnnxDamaged, OnnxTooLarge, scan_onnx

    try:  # a graph of more messages than the limit is refused before the parse (~200 bytes a message)
        scan_onnx(path, fileno=None if stream is None else stream.fileno())
    except OnnxDamaged:
        pass  # the parse below says what is wrong in its own words
    except OnnxTooLarge as e:  # as the error type a job's parent knows (app.errors)
        raise ModelLoadError(str(e)) from None
    try:
        if stream is not None:
            stream.seek(0)
        proto = onnx.load(str(path) if stream is None else stream, load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError) as e:
        raise ModelLoadError(f"{path} is not a readable model: not ONNX, truncated or damaged "
                             f"({first_line(e)}); supported: {supported()}") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{path} is not a model file (no ONNX graph in it); supported: {supported()}")
    data_files = onnx_external_files(proto, path.parent, path)
    inputs, outputs = onnx_specs(proto.graph)
    ops = Counter((f"{n.domain}::" if n.domain not in ("", "ai.onnx") else "") + n.op_type for n in proto.graph.node)
    params = 0
    for t in proto.graph.initializer:
        n = 1
        for d in t.dims:
            n *= d
        params += n
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    details = {"opset": opset, "ir_version": proto.ir_version, "producer": f"{proto.producer_name} {proto.producer_version}".strip(),
               "operators": dict(ops.most_common()), "external_data": [p.relative_to(path.parent.resolve()).as_posix() for p in data_files]}

    model = LoadedModel(path, "onnx", inputs, outputs, params, file_size_with_data(path, data_files),
                        module=path, details=details, gather_tables=gather_tables(proto.graph))
    # verification's runs: external weights stay mapped (no pre-packed second copy of a big model)
    model.make_runner = lambda: OnnxRuntimeRunner(path, path.name, model=model, map_weights=bool(data_files))
    return model


# ---------------------------------------------------------------------------- the runner
class OnnxRuntimeRunner(Runner):
    """An ONNX Runtime session on one execution provider, ``threads`` intra-op threads.

    On CPU the timed call is ``session.run(None, feeds)`` — exactly what a user's loop does. On a
    GPU provider the inputs are bound on the device once (I/O binding) and the outputs stay there;
    ONNX Runtime synchronises its CUDA stream before ``run_with_iobinding`` returns, so the wall
    clock around it is the device time.
    """

    runtime = "onnxruntime"

    def __init__(self, path: Path, name: str, *, provider: str = "CPUExecutionProvider", threads: int | None = None,
                 precision: str = "fp32", size_bytes: int = 0, model: LoadedModel | None = None,
                 map_weights: bool = False, simulate_quantization: bool = False, profile_prefix: str | None = None):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.profile_prefix = profile_prefix  # see ort_session
        self.model = model  # the file already read (its signature); else read at load
        self.map_weights = map_weights  # see ort_session
        self.simulate_quantization = simulate_quantization  # see ort_session
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
        model = self.model or read_onnx(self.path)  # signature + the external-data safety checks
        providers = [self.provider] + (["CPUExecutionProvider"] if self.provider != "CPUExecutionProvider" else [])
        session = ort_session(self.path, providers, self.threads, map_weights=self.map_weights,
                              simulate_quantization=self.simulate_quantization, profile_prefix=self.profile_prefix)
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


# ---------------------------------------------------------------------------- the kind
def runners(path: Path, *, providers: list[str] = ("CPUExecutionProvider",), threads: int | None = None,
            precision: str = "fp32", device: str = "cpu") -> list[Runner]:
    """The benchmark's runners of an ``.onnx``: one ONNX Runtime session per execution provider."""
    return [OnnxRuntimeRunner(path, path.name if p == "CPUExecutionProvider" else f"{path.name} [{short_provider(p)}]",
                              provider=p, threads=threads, precision=precision) for p in providers]


KIND = register(ArtifactKind(
    "onnx", "ONNX", (".onnx",), runtime="ONNX Runtime", fallback=True,  # parsed, refused if not ONNX
    load=lambda file, source, guess=True: read_onnx(file.path, file.stream), runners=runners,
    triton=("onnxruntime_onnx", "model.onnx"), pack_runtime="onnxruntime"))
