"""The Diagnosis tab in the model's words (issue 33, item 8): rows named by module path, the error a node
adds and the error at its output as two figures with their unit, and the row's own node chosen for the
Graph tab — on a real model (a residual CNN: stem, blocks with a ReLU and a skip Add, a classifier)
exported, quantized and diagnosed by the app."""

from __future__ import annotations

import json
import re

import pytest

ARGS = ["--arch", "tests.models:ResidualCNN", "--input", "x:1x1x8x8"]


@pytest.fixture(scope="module")
def residual(tmp_path_factory, digits):
    """A ResidualCNN state dict, its static int8 and its dynamic int8 artifacts, and their diagnoses."""
    import torch

    from main import main
    from tests.models import ResidualCNN

    root = tmp_path_factory.mktemp("residual")
    torch.manual_seed(0)
    model = ResidualCNN().eval()
    state = root / "residual.pt"
    torch.save(model.state_dict(), state)
    found = {"model": model, "state": state}
    for mode in ("static", "dynamic"):
        out = root / mode
        assert main(["convert", str(state), *ARGS, "--to", "onnx", "--precision", "int8", "--quantization", mode,
                     "--data", str(digits["images"]), "--out", str(out)]) == 0
        found[mode] = out / "residual.int8.onnx"
    return found


def _diagnose(cli, residual, digits, mode: str) -> dict:
    r = cli("diagnose", residual["state"], *ARGS, residual[mode], "--data", digits["images"], "--samples", "4",
            "--top", "50", "--json")
    assert r.code == 0, r.err
    return json.loads(r.out)


def _artifact_ops(path) -> dict[str, str]:
    import onnx

    return {n.name: n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}


def test_nodes_are_named_by_module_path_with_both_errors_in_one_unit(cli, residual, digits):
    data = _diagnose(cli, residual, digits, "static")
    nodes = data["nodes"]
    modules = dict(residual["model"].named_modules())
    convs = {name for name, m in modules.items() if type(m).__name__ == "Conv2d"}
    by_op: dict[str, set] = {}
    for n in nodes:
        by_op.setdefault(n["op_type"], set()).add(n["layer"])
        assert not re.fullmatch(r"n\d+(_\d+)?|node_.*|/.*", n["layer"]), n    # never the exporter's node names
        module = n["layer"].split("/")[0]
        assert module in modules or "/" not in n["layer"], n                 # a module path, or a forward op's name
    assert by_op["Conv"] == convs                           # every convolution, by its module path (blocks.1.conv2)
    assert by_op["Gemm"] == {"head"}
    assert by_op["Add"] and all(re.fullmatch(r"blocks\.\d/add(_\d+)?", a) for a in by_op["Add"])  # the skip Adds
    # two quantities: the error at a node's output includes what it inherited, the added error does not
    assert any(n["error"] - n["added"] > 1e-4 for n in nodes)
    assert all(n["error"] >= n["added"] - 1e-9 for n in nodes)
    assert "relative L2" in data["error_unit"] and list(data["outputs"]) and all(v > 0 for v in data["outputs"].values())
    # the node the Graph tab selects is the artifact's, with the op the row says
    ops = _artifact_ops(residual["static"])
    assert all(ops[n["graph_node"]] == n["graph_op"] for n in nodes)
    assert all(n["graph_op"] == n["op_type"] for n in nodes)
    human = cli("diagnose", residual["state"], *ARGS, residual["static"], "--data", digits["images"], "--top", "3")
    assert "blocks." in human.out and " %" in human.out and "relative L2" in human.out


def test_choosing_a_row_names_that_rows_node_in_the_artifact(qtbot, cli, residual, digits):
    """A dynamic int8 Gemm is a MatMulInteger in the artifact: the row says so and the Graph tab is asked
    for that node, not the Add after it that computes the tensor."""
    from ui.diagnosis_panel import ADDED, AT_OUTPUT, COLUMNS, DiagnosisPanel

    data = _diagnose(cli, residual, digits, "dynamic")
    panel = DiagnosisPanel()
    qtbot.addWidget(panel)
    panel.show_ranking(residual["dynamic"], {"ranking": data["nodes"], "samples": data["samples"], "data": "digits",
                                              "split": "held out", "outputs": data["outputs"]})
    assert "(rel. L2)" in COLUMNS[ADDED] and "(rel. L2)" in COLUMNS[AT_OUTPUT]
    assert "relative L2" in panel.summary.text() and "At the model's output:" in panel.summary.text()
    rows = range(panel.table.rowCount())
    assert all(panel.table.item(r, c).text().endswith("%") for r in rows for c in (ADDED, AT_OUTPUT))
    layers = [panel.table.item(r, 1).text() for r in rows]
    gemm = layers.index("head")
    assert panel.table.item(gemm, 2).text() == "Gemm → MatMulInteger"
    ops = _artifact_ops(residual["dynamic"])
    for row in (gemm, next(r for r in rows if layers[r].startswith("blocks.") and "/" in layers[r])):
        with qtbot.waitSignal(panel.node_chosen, timeout=5_000) as chosen:
            panel.choose(row)
        artifact, node, _output = chosen.args
        assert artifact == str(residual["dynamic"]) and node == panel.table.item(row, 5).text()
        assert ops[node] == panel.table.item(row, 2).text().split(" → ")[-1]   # the row's op, in the artifact
    assert panel.value(gemm, ADDED) == pytest.approx(data["nodes"][gemm]["added"])
