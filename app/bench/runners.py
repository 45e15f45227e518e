"""The runners that time an artifact in the benchmark: those its kind declares (:mod:`app.model.kinds`:
one per ONNX Runtime provider for ``.onnx``, OpenVINO for an IR, TensorRT for an engine, ExecuTorch for
a ``.pte``, PyTorch for the torch files), plus those of a runtime that also reads it (OpenVINO reads
``.onnx``). A kind that declares no runner is an error, never a guess (the runners themselves:
:mod:`app.runtimes`)."""

from __future__ import annotations

from pathlib import Path

from app.artifacts.manifest import read_manifest
from app.errors import BadInput
from app.loaders.front_door import sniff_format
from app.loaders.kinds import all_kinds, get_kind
from app.model.specs import TensorSpec
from app.request import PRECISIONS
from app.runtimes.base import Runner


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


def runners_for_artifact(path: Path, *, providers: list[str], threads: int | None,
                         device: str = "cpu", openvino: bool | None = None) -> list[Runner]:
    """The runners that can time ``path``: those its kind declares (``.onnx``: one per ONNX Runtime
    provider), then one per runtime that also reads it (``openvino``: OpenVINO for ``.onnx``; default:
    where it is installed, False: none)."""
    path = Path(path)
    kind = get_kind(sniff_format(path), path)
    if kind.runners is None:
        raise BadInput(f"{path.name}: {kind.label} files cannot be timed here (no runtime runs them)")
    precision = artifact_precision(path)
    runners = list(kind.runners(path, providers=providers, threads=threads, precision=precision, device=device))
    for other in all_kinds():
        if kind.name not in other.also_times or other.runners is None or openvino is False:
            continue
        if openvino is None and other.available is not None and not other.available()[0]:
            continue
        for runner in other.runners(path, providers=providers, threads=threads, precision=precision, device=device):
            runner.name = f"{path.name} [{other.runtime}]"
            runners.append(runner)
    return runners


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
