"""The Graph tab's netron server: this machine's own address only (DNS rebinding refused)."""

from __future__ import annotations

import http.client

import pytest

from app.graph.netron_server import HOST, GraphServer
from tests.onnx_graphs import make_onnx


def _get(port: int, path: str, host: str | None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=True)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = make_onnx(tmp_path_factory.mktemp("graph") / "net.onnx", external=True)
    with GraphServer(model) as server:
        yield server


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_its_own_address_is_served(served, host):
    status, page = _get(served.port, "/", host.format(port=served.port))
    assert status == 200 and b"<html" in page.lower()
    status, data = _get(served.port, "/data/net.onnx", host.format(port=served.port))
    assert status == 200 and data == served.model.read_bytes()


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1", "127.0.0.1:1",
                                  "127.0.0.1.evil.example:{port}", "", None])
def test_another_host_header_is_refused_with_nothing_of_the_model(served, host):
    """A page at http://evil.example:PORT/ whose name is rebound to 127.0.0.1 sends its own Host."""
    host = None if host is None else host.format(port=served.port)
    for path in ("/", "/data/net.onnx", "/data/net.onnx.data", "/index.js", "/deploystudio-guard.js"):
        status, body = _get(served.port, path, host)
        assert (status, body) == (403, b""), (host, path)
    connection = http.client.HTTPConnection(HOST, served.port, timeout=10)
    connection.request("HEAD", "/data/net.onnx", headers={"Host": "evil.example"})
    assert connection.getresponse().status == 403
    connection.close()


def test_the_view_asks_with_the_url_it_is_given(served):
    """The window's web view loads ``server.url``: its Host header is that URL's host:port."""
    from urllib.parse import urlsplit

    status, _ = _get(served.port, "/", urlsplit(served.url).netloc)
    assert served.url == f"http://127.0.0.1:{served.port}/" and status == 200
