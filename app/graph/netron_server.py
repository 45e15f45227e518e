"""GraphServer: netron's own viewer for one model, served to this machine only, from a private copy.

Three netron quirks shape this module:

* netron's server answers ``/data/<path>`` for *any* file under the served model's folder, so
  serving a model straight from the user's Downloads would hand every sibling file to any local
  process. Each server therefore serves a private temporary folder holding only the model and its
  external data (hard links where the filesystem allows, copies otherwise), removed on ``stop()``.
* netron keeps the served model in a class attribute of its request handler, so two servers in one
  process both serve whichever model was started last. Each server therefore runs in its own small
  child process (``netron.serve``/``netron.stop`` inside), which also guarantees that stopping it
  closes the port. The child exits by itself when this process goes away (its stdin closes).
* netron's page asks for cookie consent after an IP lookup (ipinfo.io), sends telemetry to Google
  Analytics and, once its build date is more than 180 days old, shows "Please update to the newest
  version" instead of the model, forever. :data:`PAGE_GUARD_JS` neutralises all three; the Qt view
  injects it as a user script, and the child also serves it to ordinary browsers ("Open in browser").

The child answers only requests whose ``Host`` header is its own address (``127.0.0.1:PORT`` or
``localhost:PORT``, what the Qt view and a browser given :attr:`GraphServer.url` send): a web page
whose name DNS rebinds to 127.0.0.1 gets 403 and nothing of the model.

Nothing here imports Qt.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.artifacts.atomic_output import clean_stale_work_dirs
from app.errors import ModelLoadError

log = logging.getLogger(__name__)

HOST = "127.0.0.1"  # never 0.0.0.0: the graph is for this machine only
TMP_PREFIX = "deploystudio-graph-"
START_TIMEOUT_S = 20.0

# Runs in the page before any of netron's scripts (a QWebEngineScript at DocumentCreation, or a
# <script> the child server puts ahead of index.js). It never edits netron; it changes what netron's
# browser host (browser.js, Host.view) reads.
PAGE_GUARD_JS = r"""
(() => {
    'use strict';
    if (window.__deployStudioGuard) { return; }
    window.__deployStudioGuard = true;
    // Consent: netron asks (after an IP lookup to ipinfo.io) only when neither a 'consent' nor a
    // '_ga' cookie exists. Every read sees a consent cookie and nothing is ever stored.
    try {
        Object.defineProperty(document, 'cookie', { configurable: true, get: () => 'consent=1', set: () => {} });
    } catch (e) { /* keep going: the request filter still blocks the lookup */ }
    // Telemetry: netron's base.Telemetry sends every event (page views, errors) with sendBeacon.
    try {
        Object.defineProperty(Navigator.prototype, 'sendBeacon', { configurable: true, value: () => true });
    } catch (e) { /* keep going */ }
    // Update wall: the host compares <meta name="date"> (the build date) with the clock and blocks
    // the page once it is 180 days old. Without that meta the host takes "now" as the build date.
    // The meta is parsed after this script runs and read on 'load', so drop it in between.
    document.addEventListener('DOMContentLoaded', () => {
        for (const meta of document.querySelectorAll('meta[name="date"]')) { meta.remove(); }
    });
    // Links (About, GitHub, error reports) would navigate away from the graph.
    window.open = () => null;
})();
"""


# The child process: one netron server, its port on stdout, alive until its stdin closes.
_CHILD = r"""
import json, logging, sys, urllib.parse
logging.getLogger().addHandler(logging.NullHandler())  # netron would otherwise configure logging
import netron
from netron import server

guard = sys.argv[2].encode("utf-8") if len(sys.argv) > 2 else b""
handler = getattr(server, "_HTTPRequestHandler", None)  # netron's private class
if not hasattr(handler, "do_GET"):  # no way to check the Host header below: serve nothing
    sys.exit("netron's request handler has moved; the graph server cannot check Host headers")
netron_get = handler.do_GET
def do_GET(self):  # do_HEAD calls it too
    # DNS rebinding: a web page whose own name resolves to 127.0.0.1 reaches this port with its
    # name in the Host header; only this server's own address is answered
    port = self.server.server_address[1]
    if (self.headers.get("Host") or "").lower() not in (f"127.0.0.1:{port}", f"localhost:{port}"):
        self.close_connection = True
        self.send_response(403)
        self.send_header("Content-Length", "0")
        self.end_headers()
        return
    if guard and urllib.parse.urlparse(self.path).path == "/deploystudio-guard.js":
        return netron_write(self, 200, "text/javascript", guard)
    return netron_get(self)
handler.do_GET = do_GET
if guard and hasattr(handler, "_write"):  # serve the page guard to ordinary browsers, ahead of index.js
    netron_write = handler._write
    def _write(self, status_code, content_type, content):
        if content_type == "text/html" and content:
            tag = b'<script type="text/javascript" src="index.js"></script>'
            content = content.replace(tag, b'<script src="/deploystudio-guard.js"></script>\n' + tag, 1)
        return netron_write(self, status_code, content_type, content)
    handler._write = _write
else:
    guard = b""

for attempt in range(5):  # the free port netron picks can be taken before it binds it
    try:
        host, port = netron.serve(sys.argv[1], address=("127.0.0.1", 0), browse=False)
        break
    except OSError:
        if attempt == 4:
            raise
print(json.dumps({"port": port}), flush=True)
try:
    sys.stdin.read()
finally:
    netron.stop()
"""


@dataclass(frozen=True)
class Drawability:
    """Whether netron can draw a model file as a graph, and why not when it cannot."""

    drawable: bool
    format: str  # app.loaders.front_door.sniff_format's name, or "" when the file cannot be read
    reason: str = ""


def check_drawable(path: str | os.PathLike) -> Drawability:
    """Tell whether netron's viewer draws ``path`` as a graph (by content, not by extension)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as e:
        return Drawability(False, "", f"{path}: cannot read ({e.strerror})")
    return _check_drawable(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _check_drawable(path: str, size: int, mtime_ns: int) -> Drawability:
    # cached per (path, size, mtime): sniffing a zip checks its CRCs, ~1 s per GB
    from app.loaders.front_door import sniff_format
    from app.loaders.kinds import get_kind

    try:
        kind = sniff_format(Path(path))
    except ModelLoadError as e:
        return Drawability(False, "", str(e))
    why_not = get_kind(kind, path).no_graph
    return Drawability(not why_not, kind, why_not)


def model_files(path: Path) -> list[Path]:
    """The model and the files it needs: an ONNX model's external data (each checked to lie in its
    folder), an OpenVINO IR's weights (the .bin beside the .xml)."""
    files = [path]
    kind = check_drawable(path).format
    if kind == "openvino":
        weights = path.with_suffix(".bin")
        if not weights.is_file():
            raise ModelLoadError(f"{path}: its weights {weights.name} are missing beside it")
        if weights.is_symlink() or not weights.resolve().is_relative_to(path.parent.resolve()):
            raise ModelLoadError(f"{path}: its weights {weights.name} are a link leading outside the model's folder")
        return files + [weights]
    if kind == "onnx":  # its external data, read from the wire format: the model is not parsed here
        from app.runtimes.onnxrt import external_files_of

        files += external_files_of(path)
    return files


def _safe_name(name: str) -> str:
    # netron writes the file name unescaped into its page's HTML (<meta name="file" ...>)
    stem, suffix = os.path.splitext(name)
    clean = re.sub(r"[^A-Za-z0-9._-]", "_", stem) or "model"
    return clean + re.sub(r"[^A-Za-z0-9.]", "_", suffix)


def _link_or_copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.stat().st_dev == dest.parent.stat().st_dev:
        try:
            os.link(src, dest)
            return
        except OSError:  # filesystems without hard links, protected_hardlinks, ...
            pass
    shutil.copy2(src, dest)


def private_copy(path: Path) -> tuple[Path, Path]:
    """Copy (or hard-link) the model and its external data into a new private folder.

    Returns ``(folder, model_path_inside_it)``; the caller removes ``folder``.
    """
    files = model_files(path)
    clean_stale_copies()
    folder = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-"))  # mode 0700
    try:
        model = folder / _safe_name(path.name)
        _link_or_copy(path, model)
        for extra in files[1:]:
            if extra.suffix == ".bin" and path.suffix == ".xml":  # an IR's weights: the .xml's stem, .bin
                _link_or_copy(extra, model.with_suffix(".bin"))
            else:  # external data keeps its relative location: the model names it
                _link_or_copy(extra, folder / extra.relative_to(path.parent.resolve()))  # resolved, as checked
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, model


def clean_stale_copies() -> list[Path]:
    """Remove private copies left by a process that was killed (atexit never ran); returns them."""
    return clean_stale_work_dirs(Path(tempfile.gettempdir()), prefix=TMP_PREFIX)


class GraphServer:
    """netron's viewer for one model on ``127.0.0.1`` at a free port, serving a private copy.

    Parameters
    ----------
    path
        The model file. ONNX external data beside it is copied along.
    guard_page
        Also serve :data:`PAGE_GUARD_JS` to the page (for browsers that do not inject it).

    Use as a context manager or call :meth:`stop`; every running server also stops at exit.
    """

    def __init__(self, path: str | os.PathLike, *, guard_page: bool = True) -> None:
        self.source = Path(path)
        self.folder: Path | None = None
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._stderr = None
        self.folder, self.model = private_copy(self.source)
        try:
            self._start(guard_page)
        except BaseException:
            self.stop()
            raise
        _RUNNING.add(self)

    def _start(self, guard_page: bool) -> None:
        self._stderr = tempfile.TemporaryFile()
        args = [sys.executable, "-I", "-c", _CHILD, str(self.model)] + ([PAGE_GUARD_JS] if guard_page else [])
        self._process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=self._stderr, cwd=self.folder)
        line = _read_line(self._process.stdout, START_TIMEOUT_S)
        if not line:
            self._process.kill()
            self._process.wait()
            self._stderr.seek(0)
            tail = self._stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:]
            raise OSError(errno.EIO, f"netron's server did not start: {' '.join(tail) or 'no output'}")
        self.port = int(json.loads(line)["port"])
        log.info("Graph of %s served at %s (private copy in %s)", self.source, self.url, self.folder)

    @property
    def url(self) -> str:
        """The viewer's address, ``http://127.0.0.1:<port>/``."""
        return f"http://{HOST}:{self.port}/"

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """Close the port (the child runs ``netron.stop()`` and exits) and remove the private copy."""
        _RUNNING.discard(self)
        process, self._process = self._process, None
        if process is not None:
            try:
                process.stdin.close()  # the child's stdin EOF: netron.stop() and exit
                process.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                process.kill()
                process.wait()
            process.stdout.close()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> GraphServer:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"GraphServer({str(self.source)!r}, url={self.url if self.running else 'stopped'})"


def _read_line(stream, timeout: float) -> bytes | None:
    # a thread rather than select(): select() does not take pipes on Windows
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else None


_RUNNING: set[GraphServer] = set()


def running_servers() -> list[GraphServer]:
    """Servers started and not stopped yet."""
    return list(_RUNNING)


def stop_all() -> None:
    """Stop every running server (registered with :mod:`atexit`)."""
    for server in list(_RUNNING):
        server.stop()


atexit.register(stop_all)
