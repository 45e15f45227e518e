"""The signature JSON we record inside TorchScript and ``.pt2`` archives (so they reload knowing
their inputs, dynamic axes and dtypes without flags)."""

from __future__ import annotations

import json

from app.model.specs import TensorSpec


def signature_json(inputs: list[TensorSpec], outputs: list[TensorSpec], *, float_dtype: str | None = None,
                   details: dict | None = None) -> str:
    """Serialise the signature; ``float_dtype`` rewrites floating inputs/outputs (e.g. fp16 artifacts)."""

    def conv(s: TensorSpec) -> dict:
        d = s.to_json()
        if float_dtype and s.is_float:
            d["dtype"] = float_dtype
        return d

    return json.dumps({"inputs": [conv(s) for s in inputs], "outputs": [conv(s) for s in outputs],
                       "details": details or {}})
