"""The budget loop's node stage on a graph with residual Adds: the float nodes reach the quantized graph
(a round that keeps nodes in float builds another model, or says why), nodes that did not help are not
tried again, and the stage's groups come after single nodes stop helping."""

from __future__ import annotations

import json

import numpy as np
import pytest

RESIDUAL_ARGS = ["--arch", "tests.models:ResidualCNN", "--input", "x:1x1x8x8"]


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    """A residual CNN (random weights, seeded) as a state dict, and its fp32 ONNX pre-processed as ONNX
    Runtime's quantizer reads it."""
    import torch

    from tests.models import ResidualCNN

    root = tmp_path_factory.mktemp("residual")
    torch.manual_seed(0)
    model = ResidualCNN().eval()
    torch.save(model.state_dict(), root / "residual.pt")
    return {"state": root / "residual.pt", "model": model, "root": root}


def _qdq(src, out, exclude, samples):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(samples)

        def get_next(self):
            return next(self.it, None)

    import onnx

    quantize_static(str(src), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    return [(n.op_type, list(n.input), list(n.output)) for n in onnx.load(str(out)).graph.node]


def test_an_excluded_residual_add_really_runs_in_float(residual, tmp_path):
    """ONNX Runtime's ``nodes_to_exclude`` alone leaves an Add between convolutions quantized (its
    neighbours put the Q/DQ pairs on its inputs and output: the same bytes); keep_in_float makes it read
    and write float, and the model computes closer to fp32 there."""
    import onnx
    import onnxruntime as ort
    import torch

    from converters.float_islands import keep_in_float

    src = tmp_path / "residual.onnx"
    torch.onnx.export(residual["model"], (torch.zeros(1, 1, 8, 8),), str(src), input_names=["x"], dynamo=True)
    graph = onnx.load(str(src)).graph
    adds = [n.name for n in graph.node if n.op_type == "Add"]
    assert len(adds) == 3
    rng = np.random.default_rng(0)
    samples = [{"x": rng.random((1, 1, 8, 8), dtype=np.float32) * 16} for _ in range(8)]
    plain = _qdq(src, tmp_path / "plain.onnx", [], samples)
    excluded = _qdq(src, tmp_path / "excluded.onnx", [adds[1]], samples)
    assert plain == excluded            # the cause: the exclusion alone does not reach the graph

    proto = onnx.load(str(tmp_path / "excluded.onnx"))
    assert keep_in_float(proto, [adds[1]]) == {}
    producer = {o: n for n in proto.graph.node for o in n.output}
    add = next(n for n in proto.graph.node if n.name == adds[1])
    assert all(producer[i].op_type != "DequantizeLinear" for i in add.input)
    onnx.save(proto, str(tmp_path / "float-add.onnx"))
    assert keep_in_float(onnx.load(str(tmp_path / "float-add.onnx")), ["nothing_of_that_name"])   # says why

    def run(path, name):      # the middle Add's output, computed by each model
        p = onnx.load(str(path))
        p.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        s = ort.InferenceSession(p.SerializeToString(), providers=["CPUExecutionProvider"])
        return np.concatenate([s.run([name], x)[0].ravel() for x in samples])

    out = next(n for n in graph.node if n.name == adds[1]).output[0]
    ref, q, f = run(src, out), run(tmp_path / "plain.onnx", out), run(tmp_path / "float-add.onnx", out)
    assert not np.array_equal(q, f)
    assert np.linalg.norm(f - ref) < np.linalg.norm(q - ref)

    # a Conv reading a ReLU that static QDQ folded into the Conv before it: in float, it reads the ReLU's
    # output (put back), not the unclipped tensor that took the ReLU's name
    producer = {o: n for n in graph.node for o in n.output}
    second = next(n.name for n in graph.node if n.op_type == "Conv" and getattr(producer.get(n.input[0]), "op_type", "") == "Relu")
    _qdq(src, tmp_path / "conv.onnx", [second], samples)
    proto = onnx.load(str(tmp_path / "conv.onnx"))
    assert keep_in_float(proto, [second], graph) == {}
    onnx.save(proto, str(tmp_path / "float-conv.onnx"))
    final = graph.output[0].name
    ref, q, f = run(src, final), run(tmp_path / "plain.onnx", final), run(tmp_path / "float-conv.onnx", final)
    assert np.linalg.norm(f - ref) < 2 * np.linalg.norm(q - ref)


@pytest.fixture(scope="module")
def node_stage(residual, digits, tmp_path_factory):
    """One budget run that cannot be met: the node stage goes through its single nodes and its groups."""
    from main import main
    import contextlib
    import io

    out = tmp_path_factory.mktemp("nodes")
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = main(["convert", str(residual["state"]), *RESIDUAL_ARGS, "--to", "onnx", "--precision", "int8",
                     "--data", str(digits["images"]), "--out", str(out), "--json",
                     "--accuracy-budget", "cosine=0.9999999999", "--max-float-nodes", "12",
                     # the stem quantized too (the default keeps it float): more nodes than the limit add error
                     "--int8-input-layer", "int8"])
    data = json.loads(text.getvalue())
    return code, data


def test_node_rounds_build_other_models_or_say_why(node_stage):
    code, data = node_stage
    b = data["accuracy_budget"]
    nodes = [r for r in b["rounds"] if r["stage"] == "nodes"]
    assert nodes, b["stopped"]
    for r in nodes:
        assert r["added"] and len(r["added"]) == len(r["added_nodes"])
        assert "identical_to" not in r or r["unchanged"]
    # names as the user knows them: the module paths of the residual CNN
    assert all(a.split("/")[0].split(".")[0] in ("stem", "blocks", "head") for r in nodes for a in r["added"])
    assert [r for r in nodes if "identical_to" not in r]   # the float nodes reached the quantized graph
    # ordered by the error each adds per millisecond of its profiled int8 time; each round says what it cost
    single = [r for r in nodes if not r.get("group")]
    assert {r["ordering"] for r in single} == {"error added per ms"}
    assert any((r["cost_ms"] or 0) > 0 for r in single)


def test_nodes_that_did_not_help_are_not_tried_again(node_stage):
    _, data = node_stage
    seen: set[str] = set()
    for r in [r for r in data["accuracy_budget"]["rounds"] if r["stage"] == "nodes" and not r.get("group")]:
        assert not seen & set(r["added_nodes"]), r
        if r.get("remembered"):
            seen |= set(r["added_nodes"])


def test_groups_come_after_single_nodes_stop_helping(node_stage):
    _, data = node_stage
    b = data["accuracy_budget"]
    stages = [("group" if r.get("group") else "single") for r in b["rounds"] if r["stage"] == "nodes"]
    if "group" not in stages:
        # single nodes (bias-corrected int8, ordered by error per ms) met even this budget, or ran out with
        # every group's layers already float
        assert stages and (b["stopped"] == "met" and b["rounds"][-1]["met"]
                           or "then groups: every group tried" in b["stopped"]), b["stopped"]
        return
    first = stages.index("group")
    assert "single" in stages[:first] and "single" not in stages[first:]
    groups = [r["group"] for r in b["rounds"] if r.get("group")]
    assert len(groups) == len(set(groups))
    assert groups[0] == "first and last layers" or "first and last layers" not in groups
    # stopped after its groups, at a limit, or when the base met the budget (its speed is select_rounds' call)
    assert "groups" in b["stopped"] or b["stopped"].startswith("round limit") or b["met"] or b["stopped"] == "met"
