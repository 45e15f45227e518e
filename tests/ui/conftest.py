"""Fixtures for the window's tests: offscreen Qt, isolated settings, no work left running."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before Qt is imported anywhere

from pathlib import Path

import pytest
from PySide6.QtCore import QThreadPool

from tests.ui.user import close_window, open_window, private_settings


@pytest.fixture(autouse=True)
def windows_die_with_their_test(qapp):
    """Delete what the test's widgets left for deletion, and collect the garbage, inside the test's
    own teardown: pytest-qt's ``deleteLater`` otherwise runs inside some later test's event loop, so a
    crash while a window is destroyed was blamed on whichever test came next (the crash log names the
    test that is running)."""
    yield
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture(autouse=True)
def fresh_settings(qapp, tmp_path) -> Path:
    """Every test gets its own, empty QSettings (never the user's)."""
    yield private_settings(tmp_path / "settings")


@pytest.fixture(autouse=True)
def no_dangling_thread_pool_work(qapp, qtbot):
    """Fail a test that leaves work running in a thread pool (a worker it never waited for)."""
    yield
    from ui.workers import all_pools

    def idle() -> bool:
        return all(p.activeThreadCount() == 0 for p in all_pools())

    # a worker emits `finished` a moment before its thread returns to the pool
    try:
        qtbot.waitUntil(idle, timeout=1500)
    except AssertionError:
        busy = {p.objectName() or "global": p.activeThreadCount() for p in all_pools() if p.activeThreadCount()}
        for p in all_pools():
            p.waitForDone(10_000)  # don't let it leak into the next test either
        pytest.fail(f"the test left thread-pool work running: {busy}")
    assert QThreadPool.globalInstance().activeThreadCount() == 0


@pytest.fixture
def window(qtbot, fresh_settings):
    """The main window, shown and ready (charts built, targets probed)."""
    w = open_window(qtbot)
    yield w
    close_window(qtbot, w)  # a test that left jobs running is asked, and cancels them


@pytest.fixture(scope="session")
def resnet_state(tmp_path_factory) -> Path:
    """A ResNet-18 (11.7 M parameters) state dict: the size a stall would show on."""
    import torch

    from tests.models import ResNet18

    path = tmp_path_factory.mktemp("resnet") / "resnet18.pt"
    torch.manual_seed(0)
    torch.save(ResNet18().eval().state_dict(), path)
    return path
