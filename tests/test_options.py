"""The option catalogue (app/options.py) is the one source of the convert flags, the command-line echo
and optimize's search space; it agrees with ConversionRequest's defaults."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from app.cli import _request, build_parser
from app.command_echo import convert_args
from app.options import ALL_OPTIONS, search_space
from app.request import PRECISIONS, ConversionRequest, Precision


def test_every_option_default_is_the_request_default():
    defaults = {f.name: f.default for f in dataclasses.fields(ConversionRequest)}
    for o in ALL_OPTIONS:
        assert o.field in defaults, o.field
        assert o.default == defaults[o.field], o.field


def test_every_option_round_trips_through_the_command_line():
    changed = {"opset": 17, "exporter": "torchscript", "quantization": "static", "calibration": Path("data"),
               "tokenizer": Path("tok"), "normalize": "unit", "data_limit": 64, "accuracy_budget": "cosine=0.99",
               "max_float_nodes": 4, "calibration_method": "entropy", "workspace_mb": 1024, "seed": 3}
    assert set(changed) == {o.field for o in ALL_OPTIONS}
    request = ConversionRequest(model_path=Path("m.onnx"), target="onnx", precision="int8", **changed)
    args = convert_args(request)
    assert _request(build_parser().parse_args(args[1:] if args[0] != "convert" else args)) == request
    plain = ConversionRequest(model_path=Path("m.onnx"), target="onnx")
    assert convert_args(plain) == ["convert", "m.onnx", "--to", "onnx", "--precision", "fp32"]


def test_one_precision_enum_and_a_search_space_from_the_catalogue():
    assert PRECISIONS == ("fp32", "fp16", "bf16", "int8") and Precision("bf16") == "bf16"
    assert search_space("calibration_method") == ("minmax", "entropy", "percentile")
    assert search_space("workspace_mb") == (4096,)


def test_servable_targets_come_from_the_converters():
    from app.serving import servable_targets

    assert set(servable_targets()) == {"onnx", "torchscript-trace", "torchscript-script", "tensorrt", "openvino"}
