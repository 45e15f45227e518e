"""The Graph tab as a user sees it: netron's real page in a QWebEngineView, served from 127.0.0.1."""

from __future__ import annotations

import datetime
import json
import logging
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from app.graph import netron_server
from app.errors import ModelLoadError
from tests.conftest import REPO
from tests.onnx_graphs import make_onnx
from ui import graph_pane
from ui.graph_view import GraphView

DRAW_MS = 60_000
# netron's page, a year in the future: its build is then > 180 days old ("Please update" wall)
YEAR_AHEAD_JS = r"""
(() => {
    const RealDate = Date;
    const offset = 365 * 24 * 60 * 60 * 1000;
    class YearAhead extends RealDate {
        constructor(...args) { if (args.length === 0) { super(RealDate.now() + offset); } else { super(...args); } }
        static now() { return RealDate.now() + offset; }
    }
    window.Date = YearAhead;
})();
"""
OPS_JS = "JSON.stringify(Array.from(document.querySelectorAll('#canvas .node-item-type text')).map(t => t.textContent))"


@pytest.fixture
def downloads(tmp_path) -> Path:
    """A user's Downloads: the model beside files that are none of the viewer's business."""
    folder = tmp_path / "Downloads"
    make_onnx(folder / "cnn.onnx")
    (folder / "bank-statement.txt").write_text("private\n")
    return folder


@pytest.fixture
def graph(qtbot) -> GraphView:
    # server_guard=False: the page gets no help from the server, so what these tests see is the
    # work of the view's own request filter and injected user script
    view = GraphView(server_guard=False)
    view.resize(1100, 650)
    qtbot.addWidget(view)
    view.show()
    yield view
    view.close_all()


def wait_graph(qtbot, pane) -> None:
    """Wait until the pane's page has drawn its graph; fail with the pane's message if it cannot."""
    qtbot.waitUntil(lambda: pane.state in ("drawn", "failed"), timeout=DRAW_MS)
    assert pane.state == "drawn", f"no graph: {pane.message.text()}"


def wait_failed(qtbot, pane) -> str:
    qtbot.waitUntil(lambda: pane.state in ("drawn", "failed"), timeout=DRAW_MS)
    assert pane.state == "failed"
    return pane.message.text()


def run_js(qtbot, pane, source: str):
    results: list = []
    pane.run_js(source, results.append)
    qtbot.waitUntil(lambda: bool(results), timeout=10_000)
    return results[0]


def drawn_ops(qtbot, pane) -> list[str]:
    return json.loads(run_js(qtbot, pane, OPS_JS))


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def listening_address(port: int) -> str | None:
    """The local address a TCP socket listens on at ``port`` (Linux /proc), e.g. ``0100007F``."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if int(hex_port, 16) == port and state == "0A":  # LISTEN
            return address
    return None


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


def test_onnx_graph_is_drawn_from_a_private_local_copy(qtbot, graph, downloads):
    model = downloads / "cnn.onnx"
    graph.set_models([("cnn.onnx (source)", model)])
    pane = graph.panes[0]
    with qtbot.waitSignal(pane.graph_drawn, timeout=DRAW_MS) as drawn:
        pass
    assert drawn.args[0] >= 5  # x, Conv, Relu, MatMul, y
    assert {"Conv", "Relu", "MatMul"} <= set(drawn_ops(qtbot, pane))

    server = pane.server
    assert server.url.startswith("http://127.0.0.1:")
    if Path("/proc/net/tcp").exists():
        assert listening_address(server.port) == "0100007F", "the server must listen on 127.0.0.1 only"
    # every request the page made went to its own server; none was blocked because none tried
    origin = server.url.rstrip("/")
    assert graph.interceptor.requests and all(u.startswith(origin) for u in graph.interceptor.requests)
    assert not graph.interceptor.blocked_urls
    # no consent dialog, no "update" wall: the page shows the graph, not a message
    assert "message" not in run_js(qtbot, pane, "document.body.className")

    # the private copy holds the model only: siblings in Downloads are not served
    assert server.folder != model.parent and sorted(p.name for p in server.folder.iterdir()) == ["cnn.onnx"]
    assert http_status(server.url + "data/cnn.onnx") == 200
    assert http_status(server.url + "data/bank-statement.txt") == 404
    assert http_status(server.url + "data/..%2Fbank-statement.txt") == 404
    assert http_status(server.url + "data/" + str(downloads / "bank-statement.txt")) == 404

    port, folder = server.port, server.folder
    graph.close()
    assert not port_open(port)
    assert not folder.exists()
    assert netron_server.running_servers() == []
    assert model.exists() and (downloads / "bank-statement.txt").exists()  # hard links go, originals stay


def test_page_with_its_clock_a_year_ahead_still_shows_the_graph(qtbot, graph, downloads):
    graph.add_user_script("test-year-ahead", YEAR_AHEAD_JS)
    graph.set_models([("cnn.onnx", downloads / "cnn.onnx")])
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    year = run_js(qtbot, pane, "new Date().getFullYear()")
    assert year >= datetime.date.today().year + 1  # the clock did move
    assert "Conv" in drawn_ops(qtbot, pane)
    assert not graph.interceptor.blocked_urls


def test_without_the_guard_the_year_ahead_page_shows_the_update_wall(qtbot, graph, downloads):
    # the control for the test above: netron's page as shipped, a year on, refuses to show anything
    for script in graph.profile.scripts().find("deploystudio-netron-guard"):
        graph.profile.scripts().remove(script)
    graph.add_user_script("test-year-ahead", YEAR_AHEAD_JS)
    graph.set_models([("cnn.onnx", downloads / "cnn.onnx")])
    assert "Please update to the newest version" in wait_failed(qtbot, graph.panes[0])


def test_browsers_get_the_same_guard_from_the_server(qtbot, downloads):
    # what "Open in browser" relies on: the page as served, with no help from the view's user script
    view = GraphView(server_guard=True)
    qtbot.addWidget(view)
    for script in view.profile.scripts().find("deploystudio-netron-guard"):
        view.profile.scripts().remove(script)
    view.add_user_script("test-year-ahead", YEAR_AHEAD_JS)
    view.show()
    view.set_models([("cnn.onnx", downloads / "cnn.onnx")])
    wait_graph(qtbot, view.panes[0])
    assert not view.interceptor.blocked_urls
    assert any(u.endswith("/deploystudio-guard.js") for u in view.interceptor.requests)
    view.close()


def test_requests_to_other_hosts_are_blocked_and_logged(qtbot, graph, downloads, caplog):
    caplog.set_level(logging.WARNING, logger="ui.graph_view")  # the CLI's tests turn the root logger down
    graph.set_models([("cnn.onnx", downloads / "cnn.onnx")])
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    with qtbot.waitSignal(graph.interceptor.blocked, timeout=10_000) as blocked:
        pane.run_js("fetch('https://ipinfo.io/json').catch(() => null); 1", lambda _: None)
    assert blocked.args[0].startswith("https://ipinfo.io/json")
    pane.run_js("window.location.href = 'https://github.com/lutzroeder/netron'; 1", lambda _: None)
    qtbot.waitUntil(lambda: any("github.com" in u for u in graph.interceptor.blocked_urls), timeout=10_000)
    assert "Conv" in drawn_ops(qtbot, pane)  # still on the graph
    assert "blocked a request to https://ipinfo.io/json" in caplog.text


def test_side_by_side_shows_two_different_models(qtbot, graph, tmp_path):
    fp32 = make_onnx(tmp_path / "a" / "model.onnx", "conv")
    other = make_onnx(tmp_path / "b" / "model.onnx", "add")  # same file name, other folder
    graph.set_models([("source", fp32), ("artifact", other)])
    graph.set_split(True)
    left, right = graph.panes
    wait_graph(qtbot, left)
    wait_graph(qtbot, right)
    # netron keeps the served model in a class attribute: two servers in one process would both
    # show the last one. One process per server keeps them apart.
    assert "Conv" in drawn_ops(qtbot, left) and "Sigmoid" not in drawn_ops(qtbot, left)
    assert "Sigmoid" in drawn_ops(qtbot, right) and "Conv" not in drawn_ops(qtbot, right)
    assert left.server.port != right.server.port

    old = left.server.port
    left.selector.setCurrentIndex(1)  # the selector switches the left pane too
    wait_graph(qtbot, left)
    assert "Sigmoid" in drawn_ops(qtbot, left)
    assert not port_open(old)
    graph.set_split(False)
    assert right.server is None and len(netron_server.running_servers()) == 1


def test_external_data_torchscript_and_pt2_open_as_they_are(qtbot, graph, model_files):
    models = [("external", model_files["cnn_onnx_external"]), ("torchscript", model_files["cnn_torchscript"]),
              ("pt2", model_files["cnn_pt2"])]
    graph.set_models(models)
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    assert {p.name for p in pane.server.folder.iterdir()} == {"cnn_ext.onnx", "cnn_ext.onnx.data"}
    assert "Conv" in drawn_ops(qtbot, pane)
    for index in (1, 2):
        pane.selector.setCurrentIndex(index)
        wait_graph(qtbot, pane)
    assert not graph.interceptor.blocked_urls


def test_an_openvino_ir_is_drawn_with_its_weights_beside_it(qtbot, graph, model_files, tmp_path):
    import openvino as ov

    ir = tmp_path / "my model.openvino.xml"
    ov.save_model(ov.convert_model(str(model_files["cnn_onnx"])), str(ir), compress_to_fp16=False)
    graph.set_models([("OpenVINO IR FP32", ir)])
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    assert {p.name for p in pane.server.folder.iterdir()} == {"my_model.openvino.xml", "my_model.openvino.bin"}
    assert "Convolution" in drawn_ops(qtbot, pane) and not graph.interceptor.blocked_urls
    secret = tmp_path / "elsewhere" / "secret.bin"
    secret.parent.mkdir()
    secret.write_bytes(b"not yours")
    ir.with_suffix(".bin").unlink()  # an IR without its weights: one line, nothing served
    with pytest.raises(ModelLoadError, match="its weights my model.openvino.bin are missing beside it"):
        netron_server.model_files(ir)
    ir.with_suffix(".bin").symlink_to(secret)  # nor weights that lead out of the folder
    with pytest.raises(ModelLoadError, match="a link leading outside the model's folder"):
        netron_server.model_files(ir)


def test_a_model_netron_cannot_draw_says_so_and_offers_the_onnx_view(qtbot, graph, model_files, downloads):
    graph.set_models([("cnn.pt (state dict)", model_files["cnn_state"])])
    pane = graph.panes[0]
    assert not pane.onnx_button.isVisibleTo(pane)
    assert "cannot draw" in pane.message.text() and "Convert it to ONNX" in pane.message.text()
    assert pane.server is None
    # the conversion finished: the ONNX artifact joins the list, and the note offers it
    graph.set_models([("cnn.pt (state dict)", model_files["cnn_state"]), ("ONNX FP32", downloads / "cnn.onnx")])
    assert pane.onnx_button.isVisibleTo(pane)
    qtbot.mouseClick(pane.onnx_button, Qt.MouseButton.LeftButton)
    wait_graph(qtbot, pane)
    assert pane.selector.currentText() == "ONNX FP32"


def test_without_webengine_the_tab_offers_the_browser(qtbot, downloads, monkeypatch):
    monkeypatch.setattr(graph_pane, "web_engine_available", lambda: (False, "QtWebEngine is not installed"))
    opened = []
    monkeypatch.setattr(graph_pane.QDesktopServices, "openUrl", lambda url: opened.append(url.toString()))
    view = GraphView()
    qtbot.addWidget(view)
    view.show()
    view.set_models([("cnn.onnx", downloads / "cnn.onnx")])
    pane = view.panes[0]
    text = wait_failed(qtbot, pane)
    assert "QtWebEngine is not installed" in text and "Open in browser" in text
    assert pane.web_view is None and pane.browser_button.isVisibleTo(pane)
    qtbot.mouseClick(pane.browser_button, Qt.MouseButton.LeftButton)
    assert opened == [pane.server.url]
    # the browser gets the same guard from the server (no consent dialog, telemetry or update wall)
    with urllib.request.urlopen(pane.server.url, timeout=10) as response:
        assert "/deploystudio-guard.js" in response.read().decode()
    port = pane.server.port
    view.close()
    assert not port_open(port)


def test_the_app_starts_without_importing_qtwebengine():
    code = ("import sys; import ui.graph_view, app.graph.netron_server; "
            "print(sorted(m for m in sys.modules if 'WebEngine' in m))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- inside the main window
@pytest.fixture
def studio(qtbot, tmp_path):
    """The main window with empty, private settings."""
    from tests.ui.user import open_window, private_settings

    private_settings(tmp_path / "settings")
    window = open_window(qtbot)
    yield window
    window.close()


def test_main_window_graph_tab_shows_the_source_then_each_new_artifact(qtbot, studio, model_files, tmp_path):
    from tests.ui.user import convert, load_model, tick

    model = Path(__import__("shutil").copy2(model_files["cnn_onnx"], tmp_path / "cnn.onnx"))
    load_model(qtbot, studio, model)
    assert studio.graph is None  # nothing web-related starts before the tab is opened
    studio.graph_tab.show_graph_tab()
    pane = studio.graph.panes[0]
    wait_graph(qtbot, pane)
    assert pane.current_path() == model
    source_ops = drawn_ops(qtbot, pane)
    assert "Conv" in source_ops and "DynamicQuantizeLinear" not in source_ops

    studio.options.out_dir.setText(str(tmp_path / "out"))
    studio.options.quantization.setCurrentText("dynamic")  # chosen: no data needed, nothing asked
    tick(qtbot, studio, ("onnx", "int8"))
    convert(qtbot, studio)
    artifact = studio.results.row_for("onnx", "int8").artifact
    labels = [pane.selector.itemText(i) for i in range(pane.selector.count())]
    assert labels == ["Source: cnn.onnx", f"onnx · INT8: {artifact.name}"]
    assert pane.current_path() == model  # the graph on screen stays until the user picks another

    pane.selector.setCurrentIndex(1)
    wait_graph(qtbot, pane)
    assert "DynamicQuantizeLinear" in drawn_ops(qtbot, pane)  # what dynamic int8 inserted
    port = pane.server.port
    studio.close()
    assert not port_open(port)  # closing the window stops the graph servers


def test_graph_in_its_own_window_draws_there_and_goes_back_when_closed(qtbot, studio, model_files, tmp_path):
    from tests.ui.user import load_model

    model = Path(__import__("shutil").copy2(model_files["cnn_onnx"], tmp_path / "cnn.onnx"))
    load_model(qtbot, studio, model)
    tabs_before = [studio.tabs.tabText(i) for i in range(studio.tabs.count())]
    studio.graph_window_action.trigger()
    window = studio.graph_window.window
    assert window is not None and window.isVisible() and studio.graph_window_action.isChecked()
    assert "Graph" not in [studio.tabs.tabText(i) for i in range(studio.tabs.count())]
    pane = studio.graph.panes[0]
    assert pane.window() is window  # the graph lives in the new window
    wait_graph(qtbot, pane)
    assert pane.current_path() == model and "Conv" in drawn_ops(qtbot, pane)
    window.close()  # as a user closes it: the page goes back to its tab, still drawn
    assert studio.graph_window.window is None and not studio.graph_window_action.isChecked()
    assert [studio.tabs.tabText(i) for i in range(studio.tabs.count())] == tabs_before
    assert pane.window() is studio and "Conv" in drawn_ops(qtbot, pane)


SELECTED_JS = """JSON.stringify(Array.from(document.querySelectorAll('#canvas g.node.select'))
    .map((g) => g.textContent))"""


def test_show_node_selects_it_by_name_or_by_the_tensor_it_computes(qtbot, graph, tmp_path):
    import onnx

    model = onnx.load(str(make_onnx(tmp_path / "named.onnx")))
    for i, node in enumerate(model.graph.node):
        node.name = f"layer{i}_{node.op_type}"
    model.graph.node[2].name = ""                         # a node without a name: found by its output
    path = tmp_path / "named.onnx"
    onnx.save(model, str(path))
    graph.set_models([("named", path)])
    pane = graph.panes[0]
    with qtbot.waitSignal(pane.node_shown, timeout=DRAW_MS) as shown:
        assert pane.show_node(path, "layer0_Conv")            # before it is drawn: selected once drawn
    assert shown.args == ["layer0_Conv"]
    assert ["Conv" in text for text in json.loads(run_js(qtbot, pane, SELECTED_JS))] == [True]
    with qtbot.waitSignal(pane.node_shown, timeout=10_000) as shown:
        pane.show_node(path, "", "y")
    assert shown.args == ["y"] and ["MatMul" in t for t in json.loads(run_js(qtbot, pane, SELECTED_JS))] == [True]
    with qtbot.waitSignal(pane.node_shown, timeout=10_000) as shown:
        pane.show_node(path, "no such node", "")
    assert shown.args == [""]
    assert not pane.show_node(tmp_path / "other.onnx", "layer0_Conv")  # not offered: nothing happens


def test_a_ranked_node_renamed_by_the_quantizer_is_found_past_its_quantize_dequantize_pair(qtbot, graph, tmp_path):
    """A quantized artifact hands the reference's output tensor to the DequantizeLinear after the
    node that computes it: that node, not the DequantizeLinear, is selected."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(make_onnx(tmp_path / "plain.onnx")))
    matmul = model.graph.node[2]
    matmul.name, matmul.output[0] = "node_linear_quant", "y_QuantizeLinear_Input"
    model.graph.initializer.extend([numpy_helper.from_array(np.float32(0.05), "y_scale"),
                                    numpy_helper.from_array(np.uint8(128), "y_zero_point")])
    model.graph.node.extend([
        helper.make_node("QuantizeLinear", ["y_QuantizeLinear_Input", "y_scale", "y_zero_point"], ["y_q"],
                         name="y_QuantizeLinear"),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zero_point"], ["y"], name="y_DequantizeLinear")])
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    path = tmp_path / "quantized.onnx"
    onnx.save(model, str(path))
    graph.set_models([("quantized", path)])
    pane = graph.panes[0]
    with qtbot.waitSignal(pane.node_shown, timeout=DRAW_MS) as shown:
        assert pane.show_node(path, "node_linear", "y")     # the reference's name is not in the artifact
    assert shown.args == ["node_linear_quant"]
    assert ["MatMul" in t for t in json.loads(run_js(qtbot, pane, SELECTED_JS))] == [True]


def test_choosing_a_diagnosed_node_shows_it_in_the_graph_tab(qtbot, studio, digits, tmp_path):
    from tests.conftest import DIGITS_ARGS
    from tests.ui.user import convert, load_model, set_shape, tick

    load_model(qtbot, studio, digits["state"], arch=DIGITS_ARGS[1])
    set_shape(qtbot, studio, "x", "1x1x8x8")
    studio.options.out_dir.setText(str(tmp_path))
    studio.opening.set_data(digits["images"])
    tick(qtbot, studio, ("onnx", "int8"))
    qtbot.waitUntil(studio.convert_button.isEnabled, timeout=30_000)
    convert(qtbot, studio)
    studio.measuring.diagnose(0)
    panel = studio.diagnosis
    qtbot.waitUntil(lambda: panel.table.rowCount() > 0, timeout=120_000)
    studio.graph_tab.show_graph_tab()
    pane = studio.graph.panes[0]
    with qtbot.waitSignal(pane.node_shown, timeout=DRAW_MS) as shown:
        panel.choose(0)
    # whichever node ranks first on this CPU, the artifact's node that computes it is the one shown, and
    # it is the node the row names, with the row's op
    name, op_type = _node_computing(panel.artifact, panel.nodes[0].node, panel.nodes[0].output)
    assert shown.args == [name] == [panel.table.item(0, 5).text()]
    assert op_type == panel.table.item(0, 2).text().split(" → ")[-1]
    assert pane.current_path() == panel.artifact and studio.tabs.currentWidget() is studio.graph_page
    selected = json.loads(run_js(qtbot, pane, SELECTED_JS))
    assert len(selected) == 1 and op_type in selected[0]


def _node_computing(artifact: Path, node: str, output: str) -> tuple[str, str]:
    """(name, op type) of the artifact's node for a ranked reference node: the node of that name, else
    the one computing its output tensor, past the Quantize/DequantizeLinear a quantizer appends."""
    import onnx

    graph = onnx.load(str(artifact), load_external_data=False).graph
    by_name = {n.name: n for n in graph.node}
    if node in by_name:
        return node, by_name[node].op_type
    producer = {o: n for n in graph.node for o in n.output}
    hit = producer[output]
    while hit.op_type in ("QuantizeLinear", "DequantizeLinear") and hit.input[0] in producer:
        hit = producer[hit.input[0]]
    return hit.name, hit.op_type


def test_an_executorch_program_is_drawn_with_its_delegate_calls(qtbot, graph, tmp_path):
    pytest.importorskip("executorch")
    import torch

    from converters.executorch import quiet_import
    from tests.models import RunningSumNet

    lower, partitioner = quiet_import()
    program = torch.export.export(RunningSumNet().eval(), (torch.randn(1, 1, 8, 8),))
    pte = tmp_path / "running_sum.xnnpack.fp32.pte"
    pte.write_bytes(lower(program, partitioner=[partitioner()]).to_executorch().buffer)
    graph.set_models([("ExecuTorch FP32", pte)])
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    ops = drawn_ops(qtbot, pane)
    # the XNNPACK subgraphs appear as delegate calls, the operator XNNPACK does not take as itself
    assert any("cumsum" in op for op in ops) and any("delegate" in op.lower() or "Xnnpack" in op for op in ops), ops
    assert not graph.interceptor.blocked_urls


def test_a_litert_model_is_drawn_with_its_operators(qtbot, graph, tmp_path):
    pytest.importorskip("litert_torch")
    import torch

    from converters.litert import quiet_import
    from tests.models import RunningSumNet

    litert_torch = quiet_import()
    path = tmp_path / "running_sum.fp32.tflite"
    path.write_bytes(litert_torch.convert(RunningSumNet().eval(), (torch.randn(1, 1, 8, 8),)).model_content())
    graph.set_models([("LiteRT FP32", path)])
    pane = graph.panes[0]
    wait_graph(qtbot, pane)
    ops = drawn_ops(qtbot, pane)
    # Netron draws LiteRT's own operators (the flatbuffer, before any delegate is applied)
    assert any("cumsum" in op.lower() for op in ops) and any("fullyconnected" in op.lower().replace("_", "") for op in ops), ops
    assert not graph.interceptor.blocked_urls
