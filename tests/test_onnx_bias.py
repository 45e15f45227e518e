"""Static int8 for ONNX Runtime: bias correction and the image-reading convolution in float
(:mod:`converters.onnx_bias`), on real ONNX Runtime sessions and the trained digits CNN."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from converters.calibration import feeds_reader
from converters.onnx_bias import correct_biases, input_layers, refine_biases
from tests.conftest import DIGITS_ARGS


def _two_convs(path, in_channels=3, rng=None):
    """x [1, C, 12, 12] → stem Conv (C → 32) → Relu → Conv (32 → 16): named nodes, biases."""
    rng = rng or np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(0, 0.3, (32, in_channels, 3, 3)).astype(np.float32), "W1"),
             numpy_helper.from_array(rng.normal(0, 0.1, 32).astype(np.float32), "B1"),
             numpy_helper.from_array(rng.normal(0, 0.2, (16, 32, 3, 3)).astype(np.float32), "W2"),
             numpy_helper.from_array(rng.normal(0, 0.1, 16).astype(np.float32), "B2")]
    nodes = [helper.make_node("Conv", ["x", "W1", "B1"], ["c1"], name="stem", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("Conv", ["r1", "W2", "B2"], ["y"], name="second", pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "two_convs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, in_channels, 12, 12])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 12, 12])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_the_convolution_reading_an_image_is_named_and_no_other(tmp_path):
    assert input_layers(onnx.load(str(_two_convs(tmp_path / "rgb.onnx"))).graph) == ["stem"]
    assert input_layers(onnx.load(str(_two_convs(tmp_path / "gray.onnx", in_channels=1))).graph) == ["stem"]
    # sixteen input channels are features, not an image: quantized as any layer
    assert input_layers(onnx.load(str(_two_convs(tmp_path / "feat.onnx", in_channels=16))).graph) == []


def _mean_shift(reference, quantized, samples) -> float:
    """The largest |mean over samples and positions| of (int8 output − fp32 output) over output channels."""
    ref = ort.InferenceSession(str(reference), providers=["CPUExecutionProvider"])
    q = ort.InferenceSession(str(quantized), providers=["CPUExecutionProvider"])
    diffs = [q.run(None, s)[0] - ref.run(None, s)[0] for s in samples]
    return float(np.abs(np.mean(diffs, axis=(0, 1, 3, 4))).max())


def test_bias_correction_removes_the_mean_shift_of_int8_weights(tmp_path):
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(1)
    src = _two_convs(tmp_path / "m.onnx", in_channels=16, rng=rng)
    # 7-bit weights: computed exactly on every CPU (no saturating u8×s8 sums without VNNI)
    # inputs with a positive mean (as images and post-ReLU features have): rounding errors of the weights
    # then shift each output channel's mean by (W_q − W)·E[x]
    calib = [{"x": rng.uniform(0, 1, (1, 16, 12, 12)).astype(np.float32)} for _ in range(32)]
    held_out = [{"x": rng.uniform(0, 1, (1, 16, 12, 12)).astype(np.float32)} for _ in range(32)]
    out = tmp_path / "m.int8.onnx"
    quantize_static(str(src), str(out), feeds_reader(calib), quant_format=QuantFormat.QDQ, per_channel=False, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)
    before = _mean_shift(src, out, held_out)
    proto = onnx.load(str(out))
    assert correct_biases(proto, src, calib) == 2
    corrected = tmp_path / "m.corrected.onnx"
    onnx.save(proto, str(corrected))
    after = _mean_shift(src, corrected, held_out)
    assert after < before / 2, (before, after)
    # measured layer by layer, as the int8 graph runs: what the activations' rounding shifts goes too
    assert refine_biases(proto, src, calib) == 2
    onnx.save(proto, str(corrected))
    refined = _mean_shift(src, corrected, held_out)
    assert refined < before / 2, (before, refined)
    # the int8 graph is the same but for the biases: no node or weight changed
    old = onnx.load(str(out))
    assert [n.op_type for n in old.graph.node] == [n.op_type for n in proto.graph.node]
    changed = [i.name for i, j in zip(old.graph.initializer, proto.graph.initializer) if i.raw_data != j.raw_data]
    assert changed and all("B" in name for name in changed), changed


def test_static_int8_records_bias_correction_and_keeps_the_input_layer_in_float(digits, tmp_path):
    from main import main

    assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
                 "--data", str(digits["images"]), "--out", str(tmp_path)]) == 0
    manifest = json.loads((tmp_path / "digits.int8.onnx.manifest.json").read_text())
    recorded = manifest.get("recorded", manifest)
    assert recorded["quantizer"]["bias_correction"] is True and recorded["quantizer"]["float_input_layer"] is True
    assert recorded["bias_correction"].endswith("calibration samples") and int(recorded["bias_correction"].split()[0]) >= 1
    stem = recorded["float_input_layers"]
    assert len(stem) == 1
    graph = onnx.load(str(tmp_path / "digits.int8.onnx")).graph
    node = next(n for n in graph.node if n.name == stem[0])
    producers = {o: n.op_type for n in graph.node for o in n.output}
    # the stem reads the image and its own float weights, not dequantized int8
    assert node.op_type == "Conv" and node.input[0] == graph.input[0].name
    assert producers.get(node.input[1]) != "DequantizeLinear"


def test_openvino_and_executorch_find_the_same_stem(tmp_path):
    """The stem of the other two int8 runtimes: OpenVINO's Convolution reading the Parameter, and the
    captured graph's conv2d behind a TensorFlow-style pad (EfficientNet-Lite's)."""
    import openvino as ov
    import torch

    from converters.openvino import ov_input_layers

    assert len(ov_input_layers(
        ov.convert_model(str(_two_convs(tmp_path / "rgb.onnx"))))) == 1
    assert ov_input_layers(
        ov.convert_model(str(_two_convs(tmp_path / "feat.onnx", in_channels=16)))) == []

    class Net(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.stem, self.next = torch.nn.Conv2d(channels, 8, 3, 2), torch.nn.Conv2d(8, 8, 3)

        def forward(self, x):
            return self.next(torch.relu(self.stem(torch.nn.functional.pad(x, [0, 1, 0, 1]))))

    from converters.executorch import input_layers as captured_input_layers

    rgb = torch.export.export(Net(3).eval(), (torch.randn(1, 3, 16, 16),)).module()
    assert len(captured_input_layers(rgb)) == 1
    feat = torch.export.export(Net(16).eval(), (torch.randn(1, 16, 16, 16),)).module()
    assert captured_input_layers(feat) == []


def test_openvino_int8_of_a_cnn_with_data_is_the_qdq_graph_and_nncf_on_request(digits, tmp_path):
    """OpenVINO int8 of a convolutional model given --data: the app's QDQ graph (bias correction, the stem in
    float), read by OpenVINO into int8 weights; ``--int8-engine nncf`` gives NNCF's."""
    import openvino as ov

    from main import main

    args = ["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "openvino", "--precision", "int8",
            "--data", str(digits["images"])]
    assert main([*args, "--out", str(tmp_path / "qdq")]) == 0
    xml = tmp_path / "qdq" / "digits.openvino.int8.xml"
    recorded = json.loads(xml.with_name(xml.name + ".manifest.json").read_text())["recorded"]
    assert recorded["openvino_int8_engine"].startswith("ONNX Runtime's static QDQ")
    assert recorded["quantizer"]["engine"] == "qdq" and recorded["onnx_quantizer"]["bias_correction"] is True
    assert recorded["float_input_layers"] and "measured one at a time" in recorded["bias_correction"]
    model = ov.Core().read_model(str(xml))
    assert any(op.get_type_name() == "Constant" and op.get_element_type().get_type_name() == "i8" for op in model.get_ops())
    assert main([*args, "--out", str(tmp_path / "nncf"), "--int8-engine", "nncf"]) == 0
    recorded = json.loads((tmp_path / "nncf" / "digits.openvino.int8.xml.manifest.json").read_text())["recorded"]
    assert recorded["openvino_int8_engine"] == "NNCF" and recorded["quantizer"]["engine"] == "nncf"


def test_the_layer_by_layer_correction_stops_at_its_time_limit(tmp_path):
    """A large model is corrected from its input on as far as the time allows: none past the limit."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(2)
    src = _two_convs(tmp_path / "m.onnx", in_channels=16, rng=rng)
    calib = [{"x": rng.uniform(0, 1, (1, 16, 12, 12)).astype(np.float32)} for _ in range(4)]
    out = tmp_path / "m.int8.onnx"
    quantize_static(str(src), str(out), feeds_reader(calib), quant_format=QuantFormat.QDQ, reduce_range=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
    proto = onnx.load(str(out))
    before = [i.raw_data for i in proto.graph.initializer]
    assert refine_biases(proto, src, calib, max_seconds=0) == 0
    assert [i.raw_data for i in proto.graph.initializer] == before


def test_profile_names_the_float_stem_as_chosen_not_as_a_fallback(digits, tmp_path):
    """The profile of an int8 artifact whose stem was kept float reads the manifest: that convolution is not
    "ran in float" (a fallback) but a choice, said once in its notes."""
    from app.bench.harness import BenchConfig
    from app.bench.profile import profile_artifact
    from app.request import ModelSource
    from main import main

    assert main(["convert", str(digits["state"]), *DIGITS_ARGS, "--to", "onnx", "--precision", "int8",
                 "--data", str(digits["images"]), "--out", str(tmp_path)]) == 0
    profile = profile_artifact(ModelSource(tmp_path / "digits.int8.onnx"), BenchConfig(warmup=1, runs=3, min_seconds=0))
    assert not profile.fell_back
    assert any(n.precision == "fp32" and n.op_type.endswith("Conv") for n in profile.nodes)   # the stem, in float
    assert sum("as the conversion chose" in note for note in profile.notes) == 1
