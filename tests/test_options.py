"""The option catalogue: each converter declares its options (converters.options.Option); the convert flags,
the command-line echo, the window's form and optimize's search space come from those declarations."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from app.cli.parser import _request, build_parser
from app.reports.command_echo import convert_args
from app.errors import BadInput, UnsupportedCombination
from app.request import PRECISIONS, ConversionRequest, DataSource, ModelSource, Options, Precision
from converters.base import all_options, check_options, get_converter, options_of


def test_every_option_round_trips_through_the_command_line():
    changed = {"opset": 17, "exporter": "torchscript", "quantization": "static", "accuracy_budget": "cosine=0.99",
               "max_float_nodes": 4, "min_speedup": 1.5, "calibration_method": "entropy", "workspace_mb": 1024, "seed": 3,
               "target_isa": "avx2", "weight_granularity": "per-tensor", "range_estimator": "histogram",
               "activation_observer": "minmax", "int8_engine": "nncf", "input_layer": "int8"}
    assert set(changed) == {o.name for o in all_options()}
    for target in ("tensorrt", "onnx", "executorch", "openvino"):   # each with the options it takes
        taken = {k: v for k, v in changed.items() if k in {o.name for o in options_of(target)}}
        request = ConversionRequest(ModelSource(Path("m.onnx")), target, "int8", taken,
                                    data=DataSource(Path("data"), Path("tok"), "unit", 64), out_dir=Path("out"),
                                    overwrite=True, keep_failed=True, ignore_memory_check=True)
        args = convert_args(request)
        assert _request(build_parser().parse_args(args)) == request
    plain = ConversionRequest(ModelSource(Path("m.onnx")), "onnx")
    assert convert_args(plain) == ["convert", "m.onnx", "--to", "onnx", "--precision", "fp32"]


def test_a_request_keeps_only_what_was_set_and_reads_defaults_from_the_declarations():
    from converters.onnx_export import EXPORTER, OPSET

    request = ConversionRequest(ModelSource(Path("m.pt")), "onnx", "int8", {"opset": 18})
    assert OPSET.of(request) == 18 and EXPORTER.of(request) == "dynamo"
    assert request.precision is Precision.INT8 and request.precision == "int8"
    assert request.with_options(opset=None).options == Options()
    assert pickle.loads(pickle.dumps(request)) == request and hash(request) == hash(pickle.loads(pickle.dumps(request)))
    with pytest.raises(BadInput, match="--precision 'int4'"):
        ConversionRequest(ModelSource(Path("m.pt")), "onnx", "int4")


def test_an_option_of_another_target_is_refused_in_one_line():
    with pytest.raises(UnsupportedCombination, match=r"--workspace-mb does not apply to --to onnx; its options: --opset"):
        check_options(ConversionRequest(ModelSource(Path("m.pt")), "onnx", options={"workspace_mb": 1024}))
    from app.jobs import run_conversion

    with pytest.raises(BadInput, match="--opset does not apply to --to torchscript-trace"):  # before any child starts
        run_conversion(_request(build_parser().parse_args(["convert", "m.pt", "--to", "torchscript-trace", "--opset", "17"])))


def test_each_converter_declares_its_options_and_search_space():
    assert [o.name for o in options_of("torchscript-trace")] == ["accuracy_budget", "max_float_nodes", "min_speedup", "seed"]
    assert {o.name for o in get_converter("tensorrt").options} >= {"workspace_mb", "quantization"}
    assert get_converter("onnx").search_space("int8") == [
        {"quantization": "dynamic"}, {"quantization": "static", "calibration_method": "minmax"},
        {"quantization": "static", "calibration_method": "entropy"},
        {"quantization": "static", "calibration_method": "percentile"}]
    assert get_converter("onnx").search_space("fp16") == [{}]
    assert [s["calibration_method"] for s in get_converter("tensorrt").search_space("int8")] == \
        ["minmax", "entropy", "percentile"]
    assert get_converter("openvino").search_space("int8") == [{"quantization": "static"}]
    assert get_converter("torchscript-trace").search_space("int8") == [{"quantization": "dynamic"}]
    from app.bench.optimize import candidates_for

    labels = [c.label for c in candidates_for("state-dict")[0]]  # each names its own folder
    assert len(set(labels)) == len(labels) and "onnx int8 static/entropy" in labels
    assert get_converter("torchscript-trace").options_in({"quantization": "dynamic"}) == {}


def test_a_form_shared_by_every_target_gives_each_only_what_shapes_it():
    form = {"opset": 18, "quantization": "dynamic", "calibration_method": "entropy", "workspace_mb": 1024}
    assert get_converter("onnx").options_in(form, "fp32") == {"opset": 18}
    assert get_converter("onnx").options_in(form, "int8") == {"opset": 18, "quantization": "dynamic",
                                                             "calibration_method": "entropy"}
    # TensorRT and OpenVINO int8 are static whatever the form says for ONNX: no "dynamic" to refuse
    assert get_converter("tensorrt").options_in(form, "int8") == {"opset": 18, "calibration_method": "entropy",
                                                                 "workspace_mb": 1024}
    assert get_converter("openvino").options_in(form, "int8") == {"opset": 18}


def test_one_precision_enum():
    assert PRECISIONS == ("fp32", "fp16", "bf16", "int8") and Precision("bf16") == "bf16"


def test_servable_targets_come_from_the_converters():
    from app.serving.triton import servable_targets

    assert set(servable_targets()) == {"onnx", "torchscript-trace", "torchscript-script", "tensorrt", "openvino"}
