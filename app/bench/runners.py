"""The runners that time an artifact in the benchmark: one per ONNX Runtime provider plus OpenVINO
for ``.onnx``, OpenVINO for an IR, TensorRT for an engine, PyTorch for the rest (the runners
themselves: :mod:`app.runtimes`)."""

from __future__ import annotations

from pathlib import Path

from app.artifacts.manifest import read_manifest
from app.loaders.front_door import load_model, sniff_format
from app.model.specs import TensorSpec
from app.request import PRECISIONS
from app.runtimes import openvino as ov_runtime
from app.runtimes.base import Runner
from app.runtimes.executorch import ExecuTorchRunner
from app.runtimes.onnxrt import OnnxRuntimeRunner, short_provider
from app.runtimes.openvino import OpenVINORunner
from app.runtimes.pytorch import TORCH_RUNTIMES, TorchRunner
from app.runtimes.tensorrt import TensorRTRunner


def artifact_precision(path: Path) -> str:
    """The precision of an artifact: from its manifest, its name (``cnn.int8.onnx``), or its graph."""
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
    return ov_runtime.available()[0]


def runners_for_artifact(path: Path, *, providers: list[str], threads: int | None,
                         device: str = "cpu", openvino: bool | None = None) -> list[Runner]:
    """The runners that can time ``path``: for ``.onnx`` one per ONNX Runtime provider plus OpenVINO
    (``openvino``: default where it is installed); for an OpenVINO IR OpenVINO; else one."""
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
    if kind == "executorch":
        return [ExecuTorchRunner(path, path.name, threads=threads, precision=precision)]
    runtime = TORCH_RUNTIMES.get(kind, "pytorch")
    return [TorchRunner(path.name, lambda: load_model(path), runtime=runtime, device=device, precision=precision)]


# ---------------------------------------------------------------------------- an artifact's own axes
def artifact_inputs(path: Path) -> list | None:
    """The inputs ``path`` declares itself: an ONNX graph's or an OpenVINO IR's (a symbolic dim is
    dynamic), else those its manifest records; None when neither can be read (the source's are used)."""
    path = Path(path)
    try:
        kind = sniff_format(path)
        if kind == "onnx":
            import onnx

            from app.runtimes.onnxrt import onnx_specs

            return onnx_specs(onnx.load(str(path), load_external_data=False).graph)[0]
        if kind == "openvino":
            from app.runtimes.openvino import read_ir, tensor_spec

            return [tensor_spec(p, i, "input") for i, p in enumerate(read_ir(path).inputs)]
        recorded = (read_manifest(path) or {}).get("inputs")
        return [TensorSpec.from_json(d) for d in recorded] if isinstance(recorded, list) and recorded else None
    except Exception:  # noqa: BLE001 - an unreadable artifact fails at load, with its own message
        return None


def follow_artifact(specs: list, own: list | None) -> list:
    """The source's inputs ``specs`` with each batch axis (axis 0) as the artifact ``own`` has it: dynamic
    where the artifact's is symbolic, fixed at the artifact's size where it is fixed (other axes keep
    the source's sizes, so every runner gets the same data at a batch size)."""
    from dataclasses import replace

    if not own:
        return list(specs)
    by_name = {a.name: a for a in own}
    if all(s.name in by_name for s in specs):
        pairs = [(s, by_name[s.name]) for s in specs]
    elif len(own) == len(specs):
        pairs = list(zip(specs, own))
    else:
        return list(specs)
    out = []
    for s, a in pairs:
        if not s.shape or not a.shape or len(s.shape) != len(a.shape):
            out.append(s)
            continue
        mine, theirs, example = s.shape[0], a.shape[0], s.example_shape()
        if isinstance(theirs, str) and not isinstance(mine, str):
            label = theirs if theirs not in s.shape[1:] else "batch"
            out.append(replace(s, shape=(label, *s.shape[1:]), example=example))
        elif isinstance(theirs, int) and theirs > 0 and isinstance(mine, str):
            out.append(replace(s, shape=(theirs, *s.shape[1:]), example=(theirs, *example[1:])))
        else:
            out.append(s)
    return out
