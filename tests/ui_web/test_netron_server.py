"""GraphServer without Qt: the private copy, the local-only port, and stopping at exit."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from app.errors import ModelLoadError
from app.graph.netron_server import GraphServer, check_drawable
from tests.conftest import REPO
from tests.onnx_graphs import make_onnx


def refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_private_copy_holds_the_model_and_its_external_data_only(tmp_path):
    model = make_onnx(tmp_path / "m.onnx", external=True)
    (tmp_path / "notes.txt").write_text("x")
    with GraphServer(model) as server:
        assert sorted(p.name for p in server.folder.iterdir()) == ["m.onnx", "m.onnx.data"]
        with urllib.request.urlopen(server.url + "data/m.onnx.data", timeout=10) as r:
            assert r.read() == (tmp_path / "m.onnx.data").read_bytes()
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url + "data/notes.txt", timeout=10)
        folder, port = server.folder, server.port
    assert refused(port) and not folder.exists()


def test_odd_file_names_are_not_written_into_the_page(tmp_path):
    model = make_onnx(tmp_path / 'a"><b>x.onnx')
    with GraphServer(model) as server:
        with urllib.request.urlopen(server.url, timeout=10) as r:
            page = r.read().decode()
        assert '<meta name="file" content="/data/a___b_x.onnx">' in page and "<b>" not in page


def test_external_data_outside_the_folder_is_refused(tmp_path):
    import onnx

    model = make_onnx(tmp_path / "m.onnx", external=True)
    proto = onnx.load(str(model), load_external_data=False)
    for entry in proto.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../etc/passwd"
    onnx.save(proto, str(model))
    with pytest.raises(ModelLoadError, match="outside"):
        GraphServer(model)


def test_which_formats_netron_draws(tmp_path, model_files):
    assert check_drawable(make_onnx(tmp_path / "m.onnx")).drawable
    assert check_drawable(model_files["cnn_torchscript"]).drawable
    assert check_drawable(model_files["cnn_pt2"]).drawable
    state = check_drawable(model_files["cnn_state"])
    assert not state.drawable and "no graph" in state.reason
    plan = tmp_path / "m.engine"
    plan.write_bytes(b"ftrt" + bytes(60))
    assert not check_drawable(plan).drawable and "TensorRT" in check_drawable(plan).reason
    assert not check_drawable(tmp_path / "missing.onnx").drawable


def test_servers_still_running_stop_when_the_process_exits(tmp_path):
    model = make_onnx(tmp_path / "m.onnx")
    code = ("import json, sys; from app.graph.netron_server import GraphServer; "
            f"s = GraphServer({str(model)!r}); print(json.dumps([s.port, str(s.folder)]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         timeout=60)
    port, folder = json.loads(out.stdout)
    assert refused(port) and not Path(folder).exists()


def test_copies_left_by_a_killed_process_are_removed_next_time(tmp_path):
    model = make_onnx(tmp_path / "m.onnx")
    code = ("import json, os; from app.graph.netron_server import GraphServer; "
            f"s = GraphServer({str(model)!r}); print(str(s.folder), flush=True); os._exit(1)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    left = Path(out.stdout.strip())
    assert left.exists()  # killed: no atexit
    with GraphServer(model):
        assert not left.exists()
