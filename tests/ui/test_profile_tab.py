"""The Profile tab (issue 34, items 1 and 2): the selected artifact profiled in a job's child, its nodes
ranked with the groups and the coverage line, a row chosen selects its node in the Graph tab, and the
error per node of a diagnosis of the same artifact beside the time (and the time in the Diagnosis tab)."""

from __future__ import annotations

from tests.conftest import DIGITS_ARGS
from tests.ui.user import click, convert, load_model, set_shape, tick, wait_event


def _profiled(qtbot, window, digits, tmp_path):
    load_model(qtbot, window, digits["state"], arch=DIGITS_ARGS[1])
    set_shape(qtbot, window, "x", "1x1x8x8")
    window.options.out_dir.setText(str(tmp_path))
    tick(qtbot, window, ("onnx", "fp32"))
    qtbot.waitUntil(window.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, window)
    window.bench_options.runs.setValue(10)
    window.bench_options.warmup.setValue(2)
    panel = window.profile_panel
    window.tabs.setCurrentWidget(panel)
    with wait_event(qtbot, window.session.events.profile_finished, timeout=120_000) as heard:
        click(qtbot, panel.button)
        assert window.jobs.running                      # a background job: the window stays free
    return panel, heard.args


def _graph_nodes(path) -> dict[str, str]:
    import onnx

    return {n.name: n.op_type for n in onnx.load(str(path)).graph.node}


def test_profile_tab_ranks_the_nodes_and_a_row_selects_its_graph_node(qtbot, window, digits, tmp_path):
    panel, (artifact, result) = _profiled(qtbot, window, digits, tmp_path)
    assert artifact == window.results.rows[0].artifact == panel.artifact
    assert window.tabs.currentWidget() is panel
    rows = panel.table.rowCount()
    assert rows == min(len(result["nodes"]), 50) > 0
    ms = [panel.value(r, 3) for r in range(rows)]
    assert ms == sorted(ms, reverse=True) and ms[0] > 0
    assert {panel.table.item(r, 2).text() for r in range(rows)} & {"Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm"}
    from ui.profile_panel import PRECISION

    assert "fp32" in {panel.table.item(r, PRECISION).text() for r in range(rows)}     # the precision each kernel ran in
    assert panel.groups.rowCount() == len(result["groups"]) > 0
    text = panel.summary.text()
    assert "onnxruntime" in text and "coverage" in text and f"{result['median_ms']:.3f} ms" in text
    graph = _graph_nodes(artifact)
    row = next(r for r, n in enumerate(panel.nodes) if n["graph_node"])
    assert panel.nodes[row]["graph_node"] in graph
    with qtbot.waitSignal(panel.node_chosen, timeout=5_000) as chosen:   # choosing a row names the node to show
        panel.node_chosen.disconnect(window.graph_tab.show_node)          # (the Graph tab is tested under Xvfb)
        panel.choose(row)
    assert chosen.args == [str(artifact), panel.nodes[row]["graph_node"], ""]
    assert "profile of" in window.log.text()


def test_profile_and_diagnosis_of_one_artifact_show_time_beside_error(qtbot, window, digits, tmp_path):
    from ui.diagnosis_panel import COLUMNS as DIAGNOSIS_COLUMNS
    from ui.profile_panel import ERROR

    panel, (artifact, result) = _profiled(qtbot, window, digits, tmp_path)
    assert {panel.table.item(r, ERROR).text() for r in range(panel.table.rowCount())} == {"—"}  # not diagnosed
    timed = [n for n in result["nodes"] if n["graph_node"]][:2]
    ranking = [{"node": f"ref_{i}", "op_type": n["op_type"], "output": f"t{i}", "error": 0.1 * (i + 1),
                "added": 0.05 * (i + 1), "graph_node": n["graph_node"]} for i, n in enumerate(timed)]
    window.session.diagnosed(artifact, {"ranking": ranking, "outputs": {}, "samples": 4, "data": "d", "split": "s"})
    for i, n in enumerate(timed):
        row = panel.nodes.index(n)
        assert panel.value(row, ERROR) == ranking[i]["added"]             # the error beside the time
    assert "diagnosis" in panel.summary.text()
    diagnosis = window.diagnosis                                         # and the time beside the error
    ms_col = DIAGNOSIS_COLUMNS.index("ms (profile)")
    for i, n in enumerate(timed):
        shown = sum(m["ms"] for m in result["nodes"] if m["graph_node"] == n["graph_node"])
        assert diagnosis.value(i, ms_col) == shown and diagnosis.table.item(i, ms_col).text() == f"{shown:.4f}"
