"""Writing ONNX files: self-contained below the protobuf limit, weights in ``NAME.data`` beside them above it."""

from __future__ import annotations

from pathlib import Path

EXTERNAL_DATA_THRESHOLD = 1_500_000_000  # bytes of weights; protobuf's hard limit is 2 GiB


def save_onnx(proto, out: Path, external: bool = False) -> list[Path]:
    """Save ``proto``; over the protobuf limit (or ``external``: the source had its weights outside too)
    the weights go to ``<name>.data`` beside it, written tensor by tensor."""
    import onnx

    if external or proto.ByteSize() > EXTERNAL_DATA_THRESHOLD:
        data = out.with_name(out.name + ".data")
        onnx.save_model(proto, str(out), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
        return [out, data]
    onnx.save_model(proto, str(out))
    return [out]


def produced(path: Path) -> list[Path]:
    """The ONNX file plus any external-data files written beside it."""
    return [path] + sorted(p for p in path.parent.glob(path.name + "*") if p != path)
