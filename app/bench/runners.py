"""The runners that time an artifact in the benchmark: one per ONNX Runtime provider plus OpenVINO
for ``.onnx``, OpenVINO for an IR, TensorRT for an engine, PyTorch for the rest (the runners
themselves: :mod:`app.runtimes`)."""

from __future__ import annotations

from pathlib import Path

from app.request import PRECISIONS
from app.runtimes.base import Runner
from app.runtimes.onnxrt import OnnxRuntimeRunner, short_provider
from app.runtimes.openvino import OpenVINORunner
from app.runtimes.pytorch import TORCH_RUNTIMES, TorchRunner
from app.runtimes.tensorrt import TensorRTRunner


def artifact_precision(path: Path) -> str:
    """The precision of an artifact: from its manifest, its name (``cnn.int8.onnx``), or its graph."""
    from app.manifest import read_manifest

    precision = (read_manifest(path) or {}).get("precision")
    if precision in PRECISIONS:
        return precision
    for part in reversed(path.name.lower().split(".")):
        if part in PRECISIONS:
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
