"""QtWebEngine for the Graph tab: whether it can run here, one off-the-record profile whose request
filter lets through only the panes' local netron servers, and the scripts the panes run in netron's
page (a probe for a drawn graph or an error, selecting a node, the bracket font).

QtWebEngine is imported lazily (:func:`web`): without it, or with ``DEPLOYSTUDIO_NO_WEBENGINE=1``, the
Graph tab says so and offers "Open in browser" on the same local server.
"""

from __future__ import annotations

import base64
import collections
import functools
import logging
import os
from pathlib import Path
from types import SimpleNamespace

from PySide6.QtCore import QCoreApplication, QObject, Qt, QUrl, Signal

from app.graph.netron_server import HOST, PAGE_GUARD_JS

log = logging.getLogger(__name__)

NO_WEBENGINE_ENV = "DEPLOYSTUDIO_NO_WEBENGINE"
DRAW_TIMEOUT_MS = 60_000  # how long a pane watches netron's page for a graph or an error
PROBE_MS = 150
# 〈 〉 around tensor shapes in netron's labels; DejaVu and friends lack them (resources/fonts/README.md)
BRACKETS_FONT = Path(__file__).resolve().parents[1] / "resources" / "fonts" / "deploystudio-brackets.ttf"

# Read in the page (an isolated world: it sees the DOM, not netron's variables).
PROBE_JS = r"""
(() => {
    // netron's error page, its notifications (consent, "update") and alerts share #message-text
    const body = document.body ? document.body.classList : [];
    const shown = ['message', 'notification', 'alert'].some((name) => body.contains(name));
    const text = document.getElementById('message-text');
    return JSON.stringify({
        nodes: document.querySelectorAll('#canvas g.node').length,
        message: shown && text ? text.innerText : '',
    });
})()
"""


# netron's view (window.__view__) selects a node and scrolls to it, as its Find sidebar does; the node
# is found by name, else by the tensor it computes (a quantizer may rename a node but keeps its output)
SELECT_NODE_JS = r"""
((name, output) => {
    const view = window.__view__;
    const graph = view && (view._target || view.target);
    if (!graph || !graph._table) {
        return '\u0000';  // laid out after its nodes appear: ask again
    }
    const nodes = [];
    for (const value of graph._table.keys()) {
        if (value && Array.isArray(value.inputs) && Array.isArray(value.outputs) && value.type) {
            nodes.push(value);  // (not graph inputs/outputs, tensors)
        }
    }
    const producer = (tensor) => nodes.find((n) => n.outputs.some((a) => (a.value || []).some((v) => v && v.name === tensor)));
    let hit = (name && nodes.find((n) => n.name === name)) || (output && producer(output)) || null;
    // a quantized graph hands the reference's output name to the DequantizeLinear after the node
    // that computes it: walk up through Q/DQ to that node
    for (let hops = 0; hit && hit.name !== name && hops < 4 && /^(Quantize|Dequantize)Linear$/.test(hit.type.name || ''); hops++) {
        const first = hit.inputs[0] && (hit.inputs[0].value || [])[0];
        const up = first && producer(first.name);
        if (!up) {
            break;
        }
        hit = up;
    }
    if (!hit) {
        return '';
    }
    graph.scrollTo(graph.select([hit]));
    return hit.name || output;
})(%s, %s)
"""


# ---------------------------------------------------------------------------- QtWebEngine, lazily
def prepare_web_engine() -> bool:
    """Load QtWebEngine before the ``QApplication`` exists, as it requires; False when missing.

    Call from the app's entry point before creating the application. Later calls only report.
    """
    if QCoreApplication.instance() is None:
        QCoreApplication.setAttribute(Qt.ApplicationAttribute.AA_ShareOpenGLContexts)
    return web_engine_available()[0]


@functools.cache
def web_engine_available() -> tuple[bool, str]:
    """Whether the embedded viewer can be used, and why not."""
    if os.environ.get(NO_WEBENGINE_ENV):
        return False, f"the embedded viewer is turned off ({NO_WEBENGINE_ENV} is set)"
    try:
        import PySide6.QtWebEngineCore  # noqa: F401
        import PySide6.QtWebEngineWidgets  # noqa: F401
    except ImportError as e:
        return False, f"QtWebEngine is not installed ({e})"
    return True, ""


def is_local(url: QUrl, ports: set[int]) -> bool:
    scheme = url.scheme()
    if scheme in ("data", "blob", "about"):  # in-page content, never the network
        return True
    return scheme == "http" and url.host() == HOST and url.port() in ports


@functools.cache
def web_modules() -> SimpleNamespace:
    """The QtWebEngine classes, defined on first use so the app starts without QtWebEngine."""
    from PySide6.QtWebEngineCore import (QWebEnginePage, QWebEngineProfile, QWebEngineScript,
                                         QWebEngineSettings, QWebEngineUrlRequestInterceptor)
    from PySide6.QtWebEngineWidgets import QWebEngineView

    class LocalOnlyInterceptor(QWebEngineUrlRequestInterceptor):
        """Lets requests reach the panes' local servers only; blocks and logs everything else."""

        blocked = Signal(str)

        def __init__(self, parent: QObject) -> None:
            super().__init__(parent)
            self.ports: set[int] = set()
            self.requests: collections.deque[str] = collections.deque(maxlen=2000)  # what pages asked for
            self.blocked_urls: collections.deque[str] = collections.deque(maxlen=2000)

        def interceptRequest(self, info) -> None:  # noqa: N802 (Qt's name); Qt 6 calls it on the UI thread
            url = info.requestUrl()
            self.requests.append(url.toString())
            if is_local(url, self.ports):
                return
            info.block(True)
            self.blocked_urls.append(url.toString())
            log.warning("Graph view blocked a request to %s", url.toString())
            self.blocked.emit(url.toString())

    class LocalPage(QWebEnginePage):
        """A page that stays on its local server and logs the page's console at debug level."""

        def __init__(self, profile, parent: QObject, interceptor: LocalOnlyInterceptor) -> None:
            super().__init__(profile, parent)
            self._interceptor = interceptor

        def acceptNavigationRequest(self, url: QUrl, kind, is_main_frame: bool) -> bool:  # noqa: N802
            if is_local(url, self._interceptor.ports):
                return True
            log.warning("Graph view refused to navigate to %s", url.toString())
            self._interceptor.blocked_urls.append(url.toString())
            return False

        def javaScriptConsoleMessage(self, level, message: str, line: int, source: str) -> None:  # noqa: N802
            log.debug("netron page: %s (%s:%d)", message, source, line)

    def make_profile(parent: QObject) -> tuple[QWebEngineProfile, LocalOnlyInterceptor]:
        profile = QWebEngineProfile(parent)  # no storage name: off the record, nothing on disk
        interceptor = LocalOnlyInterceptor(profile)
        profile.setUrlRequestInterceptor(interceptor)
        profile.setHttpCacheType(QWebEngineProfile.HttpCacheType.MemoryHttpCache)
        profile.setPersistentCookiesPolicy(QWebEngineProfile.PersistentCookiesPolicy.NoPersistentCookies)
        settings = profile.settings()
        settings.setAttribute(QWebEngineSettings.WebAttribute.JavascriptCanOpenWindows, False)
        settings.setAttribute(QWebEngineSettings.WebAttribute.LocalContentCanAccessRemoteUrls, False)
        add_script(profile, "deploystudio-netron-guard", PAGE_GUARD_JS)
        if BRACKETS_FONT.exists():
            add_script(profile, "deploystudio-netron-fonts", font_js(BRACKETS_FONT))
        return profile, interceptor

    def add_script(profile, name: str, source: str) -> None:
        script = QWebEngineScript()
        script.setName(name)
        script.setSourceCode(source)
        script.setInjectionPoint(QWebEngineScript.InjectionPoint.DocumentCreation)
        script.setWorldId(QWebEngineScript.ScriptWorldId.MainWorld)  # netron's own world
        script.setRunsOnSubFrames(True)
        profile.scripts().insert(script)

    return SimpleNamespace(View=QWebEngineView, Page=LocalPage, make_profile=make_profile,
                           add_script=add_script, APP_WORLD=QWebEngineScript.ScriptWorldId.ApplicationWorld)


def font_js(font: Path) -> str:
    # Registered under "PingFang SC", the CJK fallback that ends every font stack in netron's CSS, and
    # for U+3008-3009 only: every other character keeps the system font, and netron's CSS is untouched.
    data = base64.b64encode(font.read_bytes()).decode("ascii")
    return f"""
(() => {{
    const bytes = Uint8Array.from(atob('{data}'), (c) => c.charCodeAt(0));
    const face = new FontFace('PingFang SC', bytes, {{ unicodeRange: 'U+3008-3009' }});
    document.fonts.add(face);
    face.load().catch(() => {{}});
}})();
"""


# ---------------------------------------------------------------------------- one pane
