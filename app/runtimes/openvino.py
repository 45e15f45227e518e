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

from app.errors import ModelLoadError, first_line
from app.specs import TensorSpec

# OpenVINO's name for each artifact precision's inference precision on CPU
INFERENCE_PRECISION = {"fp32": "f32", "fp16": "f32", "int8": "f32", "bf16": "bf16"}
RT_PRECISION = ["deploy_studio", "precision"]
RT_HINT = ["runtime_options", "INFERENCE_PRECISION_HINT"]
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


def compile_model(model, precision: str, threads: int | None = None, *, name: str = "the model"):
    """Compile ``model`` (an ``openvino.Model`` or a file path) on CPU with :func:`compile_config`."""
    ov = openvino_module()
    try:
        return ov.Core().compile_model(model if not isinstance(model, Path) else str(model), "CPU",
                                       compile_config(precision, threads))
    except Exception as e:  # noqa: BLE001
        raise ModelLoadError(f"OpenVINO cannot compile {name} for CPU: {first_line(e)}") from None
