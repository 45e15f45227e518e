"""Model files built as an attacker would: refused with the reason, and their payload never runs.

Each case of ``tests/hostile.py`` is checked three ways: plain unpickling runs the payload (the file
is really hostile: the control), ``load_model`` refuses it even with ``--allow-pickle``, and the CLI
prints one error (the globals it needs a line each), exits 2 and writes nothing. The probes load real
pickled modules the allowed way.
"""

from __future__ import annotations


import json

import pytest
import torch

from app.errors import UnsafeModelError
from app.loaders.front_door import load_model
from tests.fuzz import assert_sentences, raw_exception_text
from tests.hostile import CASES, PT2_CASES, build, build_pt2

REASON = {  # what the refusal names: the global, the instruction or the file's shape
    "io_open": "io.open", "codecs_open": "codecs.open", "functools_partial": "functools.partial",
    "operator_methodcaller": "operator.methodcaller", "operator_attrgetter": "operator.attrgetter",
    "pathlib_write_text": "pathlib.PosixPath", "pydoc_locate": "pydoc.locate",
    "torch_serialization_os_system": "SHORT_BINUNICODE", "torch_save": "torch.serialization.save",
    "numpy_save": "numpy", "nested_torch_load": "torch.serialization.load",
    "build_setstate_swap": "SHORT_BINUNICODE", "inst_opcode": "STRING (opcode 83)",
    "stack_global_memo": "SHORT_BINUNICODE", "legacy_multiple_pickles": "legacy (non-zip)",
    "polyglot_zip_after_pickle": "polyglot", "conv2d_hidden_attribute": "io.open",
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_pickle_is_refused_and_its_payload_never_runs(tmp_path, case):
    path, marker = build(case, tmp_path)
    for kwargs in ({}, {"allow_pickle": True}, {"allow_pickle": True, "arch": "tests.models:SmallCNN"}):
        with pytest.raises(UnsafeModelError) as refused:
            load_model(path, **kwargs)
        assert not marker.exists(), f"{case}: the payload ran with {kwargs}"
    assert REASON[case] in str(refused.value), str(refused.value)
    assert not raw_exception_text(str(refused.value)), str(refused.value)  # a sentence, not an exception's text
    # the control: plain unpickling of the same file runs the payload
    try:
        torch.load(path, weights_only=False)
    except Exception:  # noqa: BLE001 - some payloads raise after they ran
        pass
    assert marker.exists(), f"{case}: the hostile file is not hostile (control)"


@pytest.mark.parametrize("case", ["io_open", "inst_opcode", "polyglot_zip_after_pickle", "conv2d_hidden_attribute"])
def test_cli_refuses_hostile_pickles_with_one_error_and_writes_nothing(cli, tmp_path, case):
    path, marker = build(case, tmp_path)
    out = tmp_path / "out"
    r = cli("convert", path, "--allow-pickle", "--input", "x:1x3x8x8", "--to", "onnx", "--out", out)
    assert r.code == 2 and not marker.exists()
    errors = [line for line in r.err.splitlines() if not line.startswith("… ")]  # progress lines aside
    assert errors[0].startswith("error: ") and REASON[case] in "\n".join(errors), r.err
    assert_sentences(r.err)
    # one error: a refusal that lists the globals still needed goes on with a name a line, then what to do
    assert all(line.startswith("  ") or line.startswith("If you trust") for line in errors[1:]), r.err
    assert len(errors) == 1 or errors[-1].strip().startswith("If you trust"), r.err
    assert not out.exists() or not any(out.iterdir())


def test_trust_global_is_the_only_way_past_a_non_module_global(tmp_path):
    path, marker = build("io_open", tmp_path)
    with pytest.raises(UnsafeModelError, match="io.open"):
        load_model(path, allow_pickle=True, trusted_globals=("codecs.open",))
    assert not marker.exists()


def test_unsafe_escape_hatch_runs_code_from_the_file(tmp_path):
    """--unsafe-run-code-from-file is exactly what it says (so it is never the default)."""
    from app.errors import ModelLoadError

    path, marker = build("io_open", tmp_path)
    with pytest.raises(ModelLoadError, match="not an nn.Module"):
        load_model(path, run_code_from_file=True)
    assert marker.exists()


def _outputs_equal(path, reference, example, **kwargs) -> bool:
    model = load_model(path, guess_inputs=False, **kwargs)
    assert model.format == "pickle"
    with torch.inference_mode():
        got, want = model.module(example), reference(example)
    if hasattr(got, "last_hidden_state"):
        got, want = got.last_hidden_state, want.last_hidden_state
    return torch.equal(got, want)


def test_probe_pickled_sequential_loads_with_allow_pickle_only(tmp_path):
    torch.manual_seed(0)
    seq = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU()).eval()
    path = tmp_path / "seq.pt"
    torch.save(seq, path)
    assert _outputs_equal(path, seq, torch.randn(2, 3, 16, 16), allow_pickle=True)


def test_probe_pickled_hugging_face_encoder(tmp_path):
    """A transformers BertModel: its layers are approved through --arch, its config and gelu by name."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=37)
    bert = transformers.BertModel(config).eval()
    path = tmp_path / "bert.pt"
    torch.save(bert, path)
    arch = "transformers.models.bert.modeling_bert:BertModel"
    with pytest.raises(UnsafeModelError) as refused:
        load_model(path, allow_pickle=True, arch=arch, guess_inputs=False)
    assert refused.value.details["globals"] == ["torch._C._nn.gelu",
                                                "transformers.models.bert.configuration_bert.BertConfig"]
    ids = torch.randint(0, 100, (1, 12))
    assert _outputs_equal(path, bert, ids, allow_pickle=True, arch=arch,
                          trusted_globals=tuple(refused.value.details["globals"]))


@pytest.mark.parametrize("case", PT2_CASES)
def test_pt2_with_pickled_entries_is_refused_before_torch_export_load(tmp_path, case):
    import logging

    path, marker = build_pt2(case, tmp_path)
    for kwargs in ({}, {"allow_pickle": True}):
        with pytest.raises(UnsafeModelError, match="archive entry .*/data/") as refused:
            load_model(path, **kwargs)
        assert not marker.exists()
    assert "io.open" in str(refused.value) or "opaque" in str(refused.value)
    assert not raw_exception_text(str(refused.value)), str(refused.value)
    logging.disable(logging.CRITICAL)  # torch logs its fallback to full unpickling with a broken format string
    try:
        torch.export.load(str(path))  # the control: torch's own loader runs the payload
    except Exception:  # noqa: BLE001 - the payload ran, then the graph did not fit
        pass
    finally:
        logging.disable(logging.NOTSET)
    assert marker.exists()


def test_pt2_with_an_honest_pickled_weight_needs_allow_pickle(tmp_path):
    import io as _io
    import json as _json

    from tests.hostile import _WithConstant, rewrite_zip

    path = _WithConstant.save(tmp_path / "pickled_weight.pt2")

    def pickle_first_weight(members):
        name = next(n for n in members if n.endswith("_weights_config.json"))
        config = _json.loads(members[name])
        fqn, meta = next(iter(config["config"].items()))
        meta["use_pickle"] = True
        members[name] = _json.dumps(config).encode()
        original = torch.export.load(str(tmp_path / "pickled_weight.pt2")).state_dict[fqn]
        buf = _io.BytesIO()
        torch.save(original, buf)
        members[name.rpartition("/")[0] + "/" + meta["path_name"]] = buf.getvalue()

    rewrite_zip(path, pickle_first_weight)
    with pytest.raises(UnsafeModelError, match="marked use_pickle for lin.weight.*--allow-pickle"):
        load_model(path)
    model = load_model(path, allow_pickle=True)
    assert model.format == "torch-export" and any("weights-only check" in w for w in model.warnings)


def test_inspect_says_torchscript_code_runs(cli, model_files):
    r = cli("inspect", model_files["cnn_torchscript"], "--json")
    assert r.code == 0
    assert any("TorchScript archive is a program" in w for w in json.loads(r.out)["warnings"])


def _external_constant(name: str, location: str):
    import onnx
    from onnx import TensorProto, helper

    tensor = helper.make_tensor(name, TensorProto.FLOAT, [1], [1.0])
    tensor.ClearField("float_data")
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", location
    return helper.make_node("Constant", [], [name], value=tensor), onnx


def _branch(name: str, location: str | None):
    from onnx import TensorProto, helper

    if location:
        node, _ = _external_constant(name, location)
    else:
        node = helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.FLOAT, [1], [0.0]))
    return helper.make_graph([node], f"branch_{name}", [], [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])])


@pytest.mark.parametrize("where", ["if_branch", "loop_body", "local_function"])
def test_onnx_external_data_in_subgraphs_and_functions_is_checked(tmp_path, where):
    import onnx
    from onnx import TensorProto, helper

    from app.errors import ModelLoadError

    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\0\0\x80\x3f")  # what a crafted model would read: a file outside its folder
    folder = tmp_path / "model"
    folder.mkdir()
    location = "../secret.bin"
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    functions = []
    opsets = [helper.make_opsetid("", 17)]
    if where == "if_branch":
        node = helper.make_node("If", ["cond"], ["y"], then_branch=_branch("a", location), else_branch=_branch("b", None))
        inputs = [helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    elif where == "loop_body":
        cond_in = helper.make_tensor_value_info("c_in", TensorProto.BOOL, [])
        iter_in = helper.make_tensor_value_info("i", TensorProto.INT64, [])
        const, _ = _external_constant("v", location)
        body = helper.make_graph([const, helper.make_node("Identity", ["c_in"], ["c_out"])], "body", [iter_in, cond_in],
                                 [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
                                  helper.make_tensor_value_info("v", TensorProto.FLOAT, [1])])
        node = helper.make_node("Loop", ["n", "cond"], ["y"], body=body)
        inputs = [helper.make_tensor_value_info("n", TensorProto.INT64, []),
                  helper.make_tensor_value_info("cond", TensorProto.BOOL, [])]
    else:
        const, _ = _external_constant("v", location)
        functions = [helper.make_function("local", "Leak", [], ["v"], [const], opsets)]
        opsets.append(helper.make_opsetid("local", 1))
        node = helper.make_node("Leak", [], ["y"], domain="local")
        inputs = []
    graph = helper.make_graph([node], "g", inputs, [out])
    model = helper.make_model(graph, opset_imports=opsets, functions=functions)
    path = folder / f"{where}.onnx"
    onnx.save_model(model, str(path))
    with pytest.raises(ModelLoadError, match="external data location '../secret.bin' points outside"):
        load_model(path)


def _matmul_with_external_weights(folder, location: str):
    """y = x @ w, the 2×2 weight ``w`` in external data at ``location`` (the file is not written)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder.mkdir(parents=True, exist_ok=True)
    w = numpy_helper.from_array(np.zeros((2, 2), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [w])
    path = folder / "model.onnx"
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_onnx_external_data_in_a_subfolder_is_the_file_staged(cli, tmp_path):
    """The location checked (``sub/weights.bin``) is the file copied, not ``weights.bin`` beside the model."""
    import numpy as np
    import onnxruntime as ort

    path = _matmul_with_external_weights(tmp_path / "model", "sub/weights.bin")
    (path.parent / "sub").mkdir()
    (path.parent / "sub" / "weights.bin").write_bytes(np.array([[1, 2], [3, 4]], np.float32).tobytes())
    decoy = path.parent / "weights.bin"  # what the staging step used to copy: never checked
    decoy.write_bytes(np.full((2, 2), 7, np.float32).tobytes())
    out = tmp_path / "out"
    r = cli("convert", path, "--to", "onnx", "--precision", "fp16", "--out", out)
    assert r.code == 0, r.err
    session = ort.InferenceSession(str(out / "model.fp16.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": np.array([[1, 0]], np.float32)})[0]
    np.testing.assert_allclose(y, [[1, 2]])  # the weights of sub/weights.bin, not the decoy's 7s


@pytest.mark.parametrize("location", ["", ".", "./", "sub"])
def test_onnx_external_data_naming_a_folder_is_refused_with_one_line(cli, tmp_path, location):
    from app.errors import ModelLoadError

    path = _matmul_with_external_weights(tmp_path / "model", location)
    (path.parent / "sub").mkdir()
    with pytest.raises(ModelLoadError, match=f"external data location {location!r} names "):
        load_model(path)
    out = tmp_path / "out"
    r = cli("convert", path, "--to", "onnx", "--precision", "fp16", "--out", out)
    errors = [line for line in r.err.splitlines() if not line.startswith("… ")]
    assert r.code == 2 and len(errors) == 1, r.err
    assert_sentences(r.err)
    assert errors[0].startswith(f"error: {path}: external data location {location!r} names ") and "refused" in errors[0]
    assert not out.exists() or not any(out.iterdir())


def test_onnx_external_data_under_a_linked_folder_is_refused(tmp_path):
    import numpy as np

    from app.errors import ModelLoadError

    path = _matmul_with_external_weights(tmp_path / "model", "sub/weights.bin")
    (path.parent / "real").mkdir()
    (path.parent / "real" / "weights.bin").write_bytes(np.zeros((2, 2), np.float32).tobytes())
    (path.parent / "sub").symlink_to(path.parent / "real", target_is_directory=True)
    with pytest.raises(ModelLoadError, match="'sub/weights.bin' is a link or lies under one; refused"):
        load_model(path)
