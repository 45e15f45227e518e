"""Issue 31, the window: closing it while its jobs end never crashes (a worker the thread pool already
deleted is never touched; PySide6 6.12's signal reference leak is balanced), and text from a model
file is shown as plain text, never as HTML (labels, message boxes, tool tips, the trust dialog)."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QThreadPool

from tests.ui.close_loop import open_tick_close

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- closing while jobs end


def test_fifty_windows_opened_ticked_and_closed_while_their_jobs_end(qtbot):
    """The loop that crashed within 1-46 rounds: a window closed once ready (the engine's warm-up may
    still be queued), at once, or right after its start-up jobs started; then the next one."""
    for n in range(51):
        open_tick_close(n)


def _job(work):
    from ui.workers import BackgroundJob

    pool = QThreadPool()
    pool.setMaxThreadCount(1)
    job = BackgroundJob(work, pool=pool)
    ended = []
    job.finished.connect(lambda: ended.append(job.state))
    return job, pool, ended


def test_cancel_after_the_pool_ran_and_deleted_the_worker_before_started_arrived(qtbot):
    """The worker ran, returned and was deleted by the pool while its ``started`` signal still waited
    in the GUI thread's queue (state QUEUED): Cancel (what closeEvent calls) must not touch it."""
    job, pool, ended = _job(lambda progress, should_cancel: 42)
    job.start()
    assert pool.waitForDone(10_000)  # ran and auto-deleted; no event processed: the job says QUEUED
    assert job.state == "queued"
    job.cancel()  # the old code: tryTake(<deleted worker>) -> RuntimeError, inside closeEvent a segfault
    qtbot.waitUntil(lambda: bool(ended), timeout=5000)
    assert ended == ["done"] and job.result == 42  # it had finished before Cancel: its result stands


def test_cancel_after_a_running_worker_ended_and_was_deleted(qtbot):
    """The same race one step later: ``started`` arrived (RUNNING), the work ended and the pool deleted
    the worker before ``finished`` arrived; Cancel asks nothing of the worker."""
    go = threading.Event()
    job, pool, ended = _job(lambda progress, should_cancel: go.wait(10) and "ran")
    job.start()
    qtbot.waitUntil(lambda: job.state == "running", timeout=5000)
    go.set()
    assert pool.waitForDone(10_000)
    job.cancel()
    assert job.cancel_requested
    qtbot.waitUntil(lambda: bool(ended), timeout=5000)
    assert ended in (["done"], ["cancelled"])


def test_a_queued_job_cancelled_never_runs(qtbot):
    gate = threading.Event()
    ran = []
    blocker, pool, _ = _job(lambda progress, should_cancel: gate.wait(10))
    from ui.workers import BackgroundJob

    queued = BackgroundJob(lambda progress, should_cancel: ran.append(1), pool=pool)
    states = []
    queued.failed.connect(lambda state, message: states.append((state, message)))
    blocker.start()
    queued.start()
    queued.cancel()
    gate.set()
    assert pool.waitForDone(10_000)
    QCoreApplication.processEvents()
    assert ran == [] and states == [("cancelled", "cancelled before it started")]


EMITS = r"""
import sys
import ui  # the window's package: its Qt work-arounds are in place once it is imported
from PySide6.QtCore import QObject, Signal

class Job(QObject):
    logged = Signal(str)

job, heard = Job(), []
def on_line(line):
    heard.append(line)
job.logged.connect(on_line)
for n in range(sys.getrefcount(True) + 2000):  # a job that prints this many lines
    job.logged.emit("a line")
    if n % 1000 == 0:
        job.logged.disconnect(on_line)
        job.logged.connect(on_line)
print("survived", len(heard) > 2000, flush=True)
"""


def test_a_job_that_prints_thousands_of_lines_does_not_abort_the_window(tmp_path):
    """PySide6 6.12's ``emit`` (and ``disconnect``) return ``True`` without a reference: each signal sent
    from Python lowered its count until CPython aborted ("bool_dealloc")."""
    proc = subprocess.run([sys.executable, "-c", EMITS], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
                               "TMPDIR": str(tmp_path), "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["survived", "True"]
