import pytest

from app.errors import BadInput
from app.model.specs import TensorSpec, apply_dynamic, merge_user_inputs, parse_dynamic, parse_input


def test_parse_input_shape_and_dtype():
    spec = parse_input("input_ids:1x128:int64")
    assert (spec.name, spec.dtype, spec.shape) == ("input_ids", "int64", (1, 128))
    assert parse_input("x:1x3x224x224").dtype == "float32"
    assert parse_input("x:2x3:fp16").dtype == "float16"


@pytest.mark.parametrize("bad", ["x", "x:", "x:1xax3", "x:1x0", "x:1x3:complex", ":1x3"])
def test_parse_input_rejects_bad_syntax(bad):
    with pytest.raises(BadInput) as e:
        parse_input(bad)
    assert "--input" in str(e.value) or "dtype" in str(e.value)


def test_parse_dynamic_default_labels():
    assert parse_dynamic("ids:0") == ("ids", 0, "batch")
    assert parse_dynamic("ids:1:seq") == ("ids", 1, "seq")
    assert parse_dynamic("ids:1") == ("ids", 1, "ids_dim1")
    with pytest.raises(BadInput):
        parse_dynamic("ids:one")


def test_apply_dynamic_keeps_example_and_checks_axis():
    [spec] = apply_dynamic([parse_input("ids:2x16:int64")], [("ids", 1, "seq")])
    assert spec.shape == (2, "seq") and spec.example_shape() == (2, 16)
    assert spec.dynamic_axes == {1: "seq"}
    with pytest.raises(BadInput, match="2 dimensions"):
        apply_dynamic([parse_input("ids:2x16")], [("ids", 5, "x")])
    with pytest.raises(BadInput, match="inputs are: ids"):
        apply_dynamic([parse_input("ids:2x16")], [("other", 0, "batch")])


def test_merge_by_name_keeps_model_dynamic_labels():
    known = [TensorSpec("image", "float32", ("batch", 3, 32, 32))]
    [merged] = merge_user_inputs(known, [parse_input("image:4x3x32x32")], model="m")
    assert merged.shape == ("batch", 3, 32, 32) and merged.example_shape() == (4, 3, 32, 32)


def test_merge_positional_renames_only_when_allowed():
    known = [TensorSpec("x")]
    assert merge_user_inputs(known, [parse_input("input:1x4")], model="m")[0].name == "input"
    onnx_known = [TensorSpec("image", "float32", ("batch", 3))]
    assert merge_user_inputs(onnx_known, [parse_input("input:1x3")], model="m", rename_ok=False)[0].name == "image"
    with pytest.raises(BadInput, match="do not match"):
        merge_user_inputs([TensorSpec("a"), TensorSpec("b")], [parse_input("c:1x2")], model="m")
