"""Conversion requests as the tests write them: ``request(path, target, precision, **CNN)`` with the
flags of the test models as the command line spells them."""

from __future__ import annotations

from pathlib import Path

from app.request import ConversionRequest
from app.specs import parse_dynamic, parse_input

CNN = dict(arch="tests.models:SmallCNN", inputs=("x:1x3x32x32",), dynamic=("x:0:batch",))
ENC = dict(arch="tests.models:TinyEncoder", inputs=("input_ids:2x16:int64", "attention_mask:2x16:int64"),
           dynamic=("input_ids:0:batch", "input_ids:1:seq", "attention_mask:0:batch", "attention_mask:1:seq"))


def request(path: Path, target: str, precision: str = "fp32", *, arch=None, inputs=(), dynamic=(), **kw):
    return ConversionRequest(model_path=path, target=target, precision=precision, arch=arch,
                             inputs=tuple(parse_input(s) for s in inputs),
                             dynamic=tuple(parse_dynamic(s) for s in dynamic), **kw)
