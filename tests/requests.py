"""Conversion requests as the tests write them: ``request(path, target, precision, **CNN)`` with the
flags of the test models as the command line spells them; any other keyword is an option of the
target (``opset=17``), ``data=PATH`` (``tokenizer=``, ``normalize=``, ``data_limit=``) or a field
of the request (``out_dir=``, ``overwrite=`` …)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.request import ConversionRequest, DataSource, ModelSource
from app.model.specs import parse_dynamic, parse_input

CNN = dict(arch="tests.models:SmallCNN", inputs=("x:1x3x32x32",), dynamic=("x:0:batch",))
ENC = dict(arch="tests.models:TinyEncoder", inputs=("input_ids:2x16:int64", "attention_mask:2x16:int64"),
           dynamic=("input_ids:0:batch", "input_ids:1:seq", "attention_mask:0:batch", "attention_mask:1:seq"))

_REQUEST_FIELDS = {f.name for f in dataclasses.fields(ConversionRequest)} - {"source", "target", "precision", "options", "data"}
_SOURCE_FIELDS = {f.name for f in dataclasses.fields(ModelSource)} - {"path", "inputs", "dynamic"}


def source(path: Path, *, inputs=(), dynamic=(), **kw) -> ModelSource:
    return ModelSource(Path(path), tuple(parse_input(s) if isinstance(s, str) else s for s in inputs),
                       tuple(parse_dynamic(s) if isinstance(s, str) else s for s in dynamic), **kw)


def request(path: Path, target: str, precision: str = "fp32", *, inputs=(), dynamic=(), data=None,
            tokenizer=None, normalize=None, data_limit=2000, **kw) -> ConversionRequest:
    src = source(path, inputs=inputs, dynamic=dynamic, **{k: kw.pop(k) for k in list(kw) if k in _SOURCE_FIELDS})
    fields = {k: kw.pop(k) for k in list(kw) if k in _REQUEST_FIELDS}
    data_source = DataSource(Path(data), tokenizer, normalize, data_limit) if data else None
    return ConversionRequest(src, target, precision, kw, data=data_source, **fields)
