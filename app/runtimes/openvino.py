"""OpenVINO's CPU plugin as a runtime: importing it without telemetry, compiling a model at an
explicit inference precision, reading an IR.

OpenVINO and NNCF ship a telemetry client (``openvino_telemetry``) that sends usage data to Google
Analytics and writes a consent file under ``~/intel`` unless the user opted out; this app never
lets it load (:func:`openvino_module`). Every place this app compiles an IR or ONNX file with
OpenVINO passes the inference precision as ``INFERENCE_PRECISION_HINT`` explicitly: the CPU plugin
otherwise runs *fp32* models in bf16 on CPUs that have it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import sys
from pathlib import Path

from typing import Any

import numpy as np

from app.artifacts.manifest import read_manifest
from app.errors import ModelLoadError, first_line
from app.model.kinds import ArtifactKind, register
from app.model.loaded import Feeds, LoadedModel
from app.model.specs import TensorSpec
from app.runtimes.base import Runner
from app.runtimes.onnxrt import read_onnx

# OpenVINO's name for each artifact precision's inference precision on CPU
INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f32", "int8": "f32", "bf16": "bf16"}
RT_PRECISION = ["deploy_studio", "precision"]
RT_HINT = ["runtime_options", "INFERENCE_PRECISION_HINT"]
IR_SUFFIX = ".xml"
OV_DTYPES = {"f32": "float32", "f16": "float16", "bf16": "bfloat16", "f64": "float64", "i64": "int64",
             "i32": "int32", "i8": "int8", "u8": "uint8", "boolean": "bool", "i16": "int16"}


def openvino_module():
    """``import openvino`` with its telemetry client kept out (no network, nothing written to ~/intel)."""
    if sys.modules.get("openvino_telemetry", None) is None:
        # a None entry makes `import openvino_telemetry` raise ImportError: OpenVINO's converter then
        # uses its built-in no-op stub, and NNCF its MagicMock stub
        sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]
    import openvino

    return openvino


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    # find_spec, not import: the window asks from its own process and must stay light
    if importlib.util.find_spec("openvino") is None:
        return False, "OpenVINO is not installed (pip install openvino)"
    try:
        version = importlib.metadata.version("openvino")
    except importlib.metadata.PackageNotFoundError:
        return False, "OpenVINO is installed incompletely (no package metadata); reinstall it: pip install openvino"
    return True, version


def compile_config(precision: str, threads: int | None = None) -> dict:
    """The CPU plugin's configuration for an artifact of ``precision``: its inference precision is
    always explicit (never the plugin's bf16 default), latency-oriented, ``threads`` intra-op threads."""
    config: dict = {"INFERENCE_PRECISION_HINT": INFERENCE_PRECISION.get(precision, "f32"),
                    "PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = int(threads)
    return config


def ir_precision(model) -> str | None:
    """The precision recorded in an ``openvino.Model``'s rt_info by this app, if any."""
    try:
        if model.has_rt_info(RT_PRECISION):
            return str(model.get_rt_info(RT_PRECISION).astype(str))
    except Exception:  # noqa: BLE001 - foreign IRs may carry anything
        pass
    return None


def tensor_spec(port, index: int, kind: str) -> TensorSpec:
    try:
        name = port.get_any_name()
    except RuntimeError:
        name = f"{kind}_{index}"
    ps = port.get_partial_shape()
    dims: tuple = ()
    if ps.rank.is_static:
        dims = tuple(int(d.get_length()) if d.is_static else f"{name}_dim{axis}" for axis, d in enumerate(ps))
    dtype = OV_DTYPES.get(port.get_element_type().get_type_name(), "float32")
    return TensorSpec(name, dtype, dims)


def read_ir(path: Path):
    """``openvino.Model`` of an IR ``.xml`` (with its ``.bin`` beside it); errors become one line."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such file")
    bin_path = path.with_suffix(".bin")
    if not bin_path.is_file():
        raise ModelLoadError(f"{path.name} is an OpenVINO IR graph but its weights file {bin_path.name} is missing; "
                             "keep the .bin beside the .xml")
    ov = openvino_module()
    try:
        return ov.Core().read_model(str(path), str(bin_path))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"OpenVINO cannot read {path.name} ({first_line(e)}); re-convert the model") from None


def compile_model(model, precision: str, threads: int | None = None, *, name: str = "the model",
                  perf_count: bool = False):
    """Compile ``model`` (an ``openvino.Model`` or a file path) on CPU with :func:`compile_config`;
    ``perf_count``: with the plugin's per-layer counters on (``PERF_COUNT``, read by
    ``request.get_profiling_info()``: :mod:`app.bench.profile`)."""
    ov = openvino_module()
    config = compile_config(precision, threads) | ({"PERF_COUNT": True} if perf_count else {})
    try:
        return ov.Core().compile_model(model if not isinstance(model, Path) else str(model), "CPU", config)
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"OpenVINO cannot compile {name} for CPU: {first_line(e)}") from None


def load_ir(path: Path, *, precision: str | None = None, threads: int | None = None) -> LoadedModel:
    """An OpenVINO IR as a :class:`LoadedModel` (format ``openvino``), compiled on CPU at the
    precision recorded with it (fp32 unless it says bf16)."""
    path = Path(path)
    model = read_ir(path)
    precision = precision or ir_precision(model) or _manifest_precision(path) or "fp32"
    inputs = [tensor_spec(p, i, "input") for i, p in enumerate(model.inputs)]
    outputs = [tensor_spec(p, i, "output") for i, p in enumerate(model.outputs)]
    params = sum(_numel(op.get_output_shape(0)) for op in model.get_ops()
                 if op.get_type_name() == "Constant" and op.get_output_partial_shape(0).is_static)
    bin_path = path.with_suffix(".bin")
    loaded = LoadedModel(path, "openvino", inputs, outputs, params, path.stat().st_size + bin_path.stat().st_size,
                         module=model, details={"precision": precision,
                                                "inference_precision": INFERENCE_PRECISION.get(precision, "f32"),
                                                "operators": _op_counts(model)})
    loaded.make_runner = lambda: OpenVINORunner(path, path.name, threads=threads, precision=precision, model=loaded)
    return loaded


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def _op_counts(model) -> dict[str, int]:
    counts: dict[str, int] = {}
    for op in model.get_ops():
        counts[op.get_type_name()] = counts.get(op.get_type_name(), 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def _manifest_precision(path: Path) -> str | None:
    return (read_manifest(path) or {}).get("precision")


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
                 size_bytes: int = 0, model: LoadedModel | None = None, perf_count: bool = False):
        super().__init__(name, precision=precision, size_bytes=size_bytes)
        self.path = Path(path)
        self.threads = threads
        self.perf_count = perf_count  # per-layer counters on (see compile_model)
        self.model = model  # the file already read (its signature); else read at load
        self.request: Any = None
        self.compiled: Any = None

    def available(self) -> tuple[bool, str]:
        ok, detail = available()
        return (True, "") if ok else (False, detail)

    def _load_impl(self) -> None:
        model = self.model or (load_ir(self.path) if self.path.suffix.lower() == IR_SUFFIX
                               else read_onnx(self.path))  # signature (+ the ONNX external-data checks)
        source = model.module if model.format == "openvino" else Path(self.path)
        self.compiled = compile_model(source, self.precision, self.threads, name=self.path.name,
                                      perf_count=self.perf_count)
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


# ---------------------------------------------------------------------------- the kind
def runners(path: Path, *, providers=None, threads: int | None = None, precision: str = "fp32",
            device: str = "cpu") -> list[Runner]:
    """The benchmark's runner of an IR (and of an ``.onnx``, which OpenVINO also reads): its CPU plugin."""
    return [OpenVINORunner(path, path.name, threads=threads, precision=precision)]


KIND = register(ArtifactKind(
    "openvino", "OpenVINO IR", (".xml",), runtime="OpenVINO", described=".xml + .bin (OpenVINO IR)",
    sniff=lambda path, head: head.lstrip().startswith(b"<") and path.suffix.lower() == ".xml",  # weights: the .bin
    load=lambda file, source, guess=True: load_ir(file.path), runners=runners,
    triton=("openvino", "model.xml"), backend=True, pack_runtime="openvino", also_times=("onnx",),
    available=available))
