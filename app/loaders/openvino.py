"""OpenVINO IR (``.xml`` graph + ``.bin`` weights beside it) → :class:`~app.model.LoadedModel`."""

from __future__ import annotations

from pathlib import Path

from app.model import LoadedModel
from app.runtimes.openvino import INFERENCE_PRECISION, compile_model, ir_precision, read_ir, tensor_spec

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
    compiled: list = []

    def run(feeds):
        if not compiled:
            compiled.append(compile_model(model, precision, threads, name=path.name))
        result = compiled[0]([feeds[s.name] for s in inputs])
        return [result[i] for i in range(len(outputs))]

    loaded._runner = run
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
    from app.manifest import read_manifest

    return (read_manifest(path) or {}).get("precision")
