"""Every supported file format loads into one LoadedModel that knows its signature and runs."""

import json
import os
import pickle

import numpy as np
import pytest

from app.errors import ModelLoadError, UnsafeModelError
from app.model.inputs import make_feeds
from app.loaders.front_door import load_model, sniff_format
from tests.hostile import SystemCall


def _runs(model):
    outs = model.run(make_feeds(model.inputs, seed=3))
    assert outs and all(np.all(np.isfinite(o)) for o in outs)
    return outs


def test_state_dict_with_arch_from_module_and_from_file(model_files, tmp_path):
    by_module = load_model(model_files["cnn_state"], arch="tests.models:SmallCNN")
    assert by_module.format == "state-dict" and by_module.inputs_guessed
    assert by_module.inputs[0].shape == (1, 3, 224, 224)  # from the first Conv2d's in_channels
    arch_file = tmp_path / "arch.py"
    arch_file.write_text("from tests.models import SmallCNN\n\ndef build(num_classes=10):\n    return SmallCNN(num_classes)\n")
    by_file = load_model(model_files["cnn_state"], arch=f"{arch_file}:build", arch_kwargs={"num_classes": 10})
    assert by_file.outputs[0].shape == (1, 10)
    np.testing.assert_allclose(_runs(by_module)[0], _runs(by_file)[0], rtol=1e-6)


@pytest.mark.parametrize("arch, expected", [
    ("tests.models:PaddedStemNet", [(1, 3, 224, 224)]),   # a Conv2d subclass, declared after the head
    ("tests.models:FlatInputNet", None),                  # nothing tells: the guess fails, said so
])
def test_the_input_guess_follows_the_layer_forward_calls_first(tmp_path, arch, expected):
    import torch

    from app.safety.arch import resolve_factory

    path = tmp_path / "model.pth"
    torch.save(resolve_factory(arch)().state_dict(), path)
    model = load_model(path, arch=arch)
    if expected is None:
        assert not model.inputs_guessed and not model.outputs
        assert model.warnings[0].startswith("could not guess the input shapes") and "--input" in model.warnings[0]
        from app.loaders.front_door import prepare_model
        from app.request import ModelSource
        from app.model.specs import parse_input

        given = prepare_model(ModelSource(path, inputs=(parse_input("x:1x768"),), arch=arch))
        assert given.outputs[0].shape == (1, 4)
    else:
        assert model.inputs_guessed and [s.shape for s in model.inputs] == expected
        assert model.outputs[0].shape == (1, 10) and "first layer the model calls" in model.warnings[0]
        _runs(model)


def test_checkpoint_dict_and_safetensors(model_files):
    ckpt = load_model(model_files["cnn_checkpoint"], arch="tests.models:SmallCNN")
    assert ckpt.param_count > 0
    st = load_model(model_files["mlp_safetensors"], arch="tests.models:MLP")
    assert st.inputs[0].shape == (1, 32) and _runs(st)[0].shape == (1, 5)


def test_state_dict_without_arch_is_inspectable_but_says_what_is_missing(model_files):
    model = load_model(model_files["cnn_state"])
    assert model.format == "state-dict" and model.module is None
    assert "--arch" in model.warnings[0]


def test_arch_mismatch_names_missing_keys(model_files):
    with pytest.raises(Exception, match="does not fit --arch"):
        load_model(model_files["cnn_state"], arch="tests.models:MLP")


def test_torchscript_pt2_and_onnx_know_their_signature(model_files):
    ts = load_model(model_files["cnn_torchscript"])
    assert ts.format == "torchscript" and ts.inputs[0].name == "x"
    pt2 = load_model(model_files["cnn_pt2"])
    assert pt2.format == "torch-export"
    assert isinstance(pt2.inputs[0].shape[0], str) and pt2.inputs[0].shape[1:] == (3, 32, 32)
    onnx_model = load_model(model_files["cnn_onnx"])
    assert onnx_model.format == "onnx"
    assert onnx_model.inputs[0].name == "image" and onnx_model.inputs[0].shape == ("batch", 3, 32, 32)
    assert onnx_model.details["opset"] >= 17 and "Conv" in onnx_model.details["operators"]
    ref = _runs(pt2)[0]
    assert ref.shape == (2, 10)  # the example batch recorded in the .pt2
    np.testing.assert_allclose(onnx_model.run({"image": make_feeds(pt2.inputs, seed=3)["x"]})[0], ref, atol=1e-4)


def test_dynamic_on_an_axis_a_pt2_fixed_is_refused_before_any_work(cli, model_files, tmp_path):
    import torch

    from app.loaders.front_door import prepare_model
    from tests import models
    from tests.requests import source

    fixed = tmp_path / "fixed.pt2"  # exported at batch 1 with no dynamic_shapes: its guards pin the batch
    torch.export.save(torch.export.export(models.make("cnn").eval(), (torch.randn(1, 3, 32, 32),)), str(fixed))
    out = tmp_path / "out"
    r = cli("convert", fixed, "--to", "onnx", "--dynamic", "x:0:batch", "--out", out)
    assert r.code == 2, r.err
    error = [line for line in r.err.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Guard failed" not in r.err and "AssertionError" not in r.err
    assert "fixed.pt2 was exported with input 'x' axis 0 fixed at 1" in error[0]
    assert 'dynamic_shapes={"x": {0: torch.export.Dim("batch")}}' in error[0] and "--arch" in error[0]
    assert "export onnx" not in r.err and not out.exists()  # nothing exported, nothing written
    # the suite's .pt2 was exported with its batch axis dynamic: --dynamic on it is taken
    model = prepare_model(source(model_files["cnn_pt2"], dynamic=("x:0:batch",)))
    assert model.inputs[0].shape[0] == "batch"


def test_onnx_with_external_data(model_files):
    model = load_model(model_files["cnn_onnx_external"])
    assert model.details["external_data"] == ["cnn_ext.onnx.data"]
    assert model.size_bytes > model_files["cnn_onnx_external"].stat().st_size
    _runs(model)


def test_full_pickle_refused_without_permission_and_loaded_with_it(model_files):
    with pytest.raises(UnsafeModelError, match="--allow-pickle"):
        load_model(model_files["mlp_pickle"])
    # tests.models.MLP is neither in torch.nn nor in an --arch package: it must be named
    with pytest.raises(UnsafeModelError, match=r"\n  tests\.models\.MLP\n.*--trust-global NAME"):
        load_model(model_files["mlp_pickle"], allow_pickle=True)
    model = load_model(model_files["mlp_pickle"], allow_pickle=True, arch="tests.models:MLP")
    assert model.format == "pickle" and model.inputs[0].shape == (1, 32)
    model = load_model(model_files["mlp_pickle"], allow_pickle=True, trusted_globals=("tests.models.MLP",))
    assert model.format == "pickle"


def test_hostile_pickle_is_refused_even_with_allow_pickle(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(SystemCall(marker)))
    with pytest.raises(UnsafeModelError):
        load_model(evil)
    with pytest.raises(UnsafeModelError, match="legacy"):
        load_model(evil, allow_pickle=True)
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage", "bitflip_zip"])
def test_damaged_files_give_one_clear_error(model_files, tmp_path, damage):
    src = model_files["cnn_onnx"] if damage != "bitflip_zip" else model_files["cnn_torchscript"]
    data = src.read_bytes()
    bad = tmp_path / src.name
    if damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "garbage":
        bad.write_bytes(b"this is a text file, not a model\n" * 20)
    else:
        flipped = bytearray(data)
        for i in range(len(flipped) // 2, len(flipped) // 2 + 64):
            flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
    with pytest.raises(ModelLoadError) as e:
        load_model(bad)
    msg = str(e.value)
    assert str(bad) in msg and "\n" not in msg


def test_onnx_external_data_outside_its_folder_is_refused(model_files, tmp_path):
    import onnx

    proto = onnx.load(str(model_files["cnn_onnx"]))
    target = proto.graph.initializer[0]
    from onnx.external_data_helper import set_external_data

    set_external_data(target, location="../../etc/passwd", offset=0, length=16)
    target.data_location = onnx.TensorProto.EXTERNAL
    target.ClearField("raw_data")
    evil = tmp_path / "evil.onnx"
    evil.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelLoadError, match="outside"):
        load_model(evil)


def test_sniffing_ignores_extensions(model_files, tmp_path):
    renamed = tmp_path / "actually_onnx.pt"
    renamed.write_bytes(model_files["cnn_onnx"].read_bytes())
    assert sniff_format(renamed) == "onnx"
    assert load_model(renamed).format == "onnx"


def test_inspect_json(cli, model_files):
    r = cli("inspect", model_files["cnn_onnx"], "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["format"] == "onnx" and data["opset"] >= 17
    assert data["inputs"][0] == {"name": "image", "dtype": "float32", "shape": ["batch", 3, 32, 32],
                                 "example": [1, 3, 32, 32]}
    assert data["outputs"][0]["name"] == "logits" and data["parameters"] > 1000
    assert data["size_bytes"] == model_files["cnn_onnx"].stat().st_size
    assert data["operators"]["Conv"] == 2
    human = cli("inspect", model_files["encoder_state"], "--arch", "tests.models:TinyEncoder")
    assert human.code == 0 and "input_ids: int64[1x16]" in human.out and "guess" in human.err
