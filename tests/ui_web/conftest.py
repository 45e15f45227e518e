"""The Graph tab's tests: real QtWebEngine pages, under Xvfb (pytest-xvfb), all marked ``webengine``.

QtWebEngine crashes at random under ``QT_QPA_PLATFORM=offscreen`` (qutebrowser #8444), so these tests
switch Qt to ``xcb`` on the virtual display pytest-xvfb starts. The QApplication is one per pytest
session: when these tests are collected, the whole session's Qt runs on that display. Without Xvfb
(or pytest-xvfb, or QtWebEngine) the folder is skipped, saying why.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def _why_skip() -> str | None:
    if shutil.which("Xvfb") is None:
        return ("Xvfb is not installed (Debian/Ubuntu: apt-get install xvfb xauth): the Graph tab's "
                "QtWebEngine tests need a real X display")
    try:
        import pytest_xvfb  # noqa: F401
    except ImportError:
        return "pytest-xvfb is not installed (pip install pytest-xvfb)"
    if not os.environ.get("DISPLAY"):  # pytest-xvfb sets it when it starts Xvfb (not with --no-xvfb)
        return "no X display: pytest-xvfb did not start Xvfb (--no-xvfb?)"
    try:
        import PySide6.QtWebEngineWidgets  # noqa: F401
    except ImportError as e:
        return f"QtWebEngine is not installed ({e})"
    return None


SKIP_REASON: str | None = "not configured"


@pytest.hookimpl(trylast=True)  # after pytest-xvfb's pytest_configure has started Xvfb and set DISPLAY
def pytest_configure(config: pytest.Config) -> None:
    global SKIP_REASON
    config.addinivalue_line("markers", "webengine: needs QtWebEngine and an X display (runs under Xvfb)")
    SKIP_REASON = _why_skip()
    if SKIP_REASON is None:
        os.environ["QT_QPA_PLATFORM"] = "xcb"
        # no GPU and, as root in CI containers, no sandbox
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = "--no-sandbox --disable-gpu"
        from ui.web_engine import prepare_web_engine

        prepare_web_engine()  # QtWebEngine must be loaded before pytest-qt creates the QApplication


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.webengine)
            if SKIP_REASON:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
