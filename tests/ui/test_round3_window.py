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


# ---------------------------------------------------------------- text from files is plain text


def shown(widget) -> str:
    """What a QLabel or QMessageBox displays: its text, or the text of the HTML Qt renders it as."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QTextDocument
    from PySide6.QtGui import Qt as GuiQt

    text, fmt = widget.text(), widget.textFormat()
    if fmt == Qt.TextFormat.PlainText or (fmt == Qt.TextFormat.AutoText and not GuiQt.mightBeRichText(text)):
        return text
    doc = QTextDocument()
    doc.setHtml(text)
    return doc.toPlainText()


def assert_all_plain(root) -> None:
    """Every label beneath ``root`` (and ``root`` itself, a message box) shows its text as written."""
    from PySide6.QtWidgets import QLabel, QMessageBox

    widgets = [w for w in [root, *root.findChildren(QLabel)] if isinstance(w, (QLabel, QMessageBox))]
    rendered = [(type(w).__name__, w.text()) for w in widgets if w.text() and shown(w) != w.text()]
    assert not rendered, f"rendered as HTML: {rendered}"


def hostile_pickle(folder: Path) -> Path:
    """A torch.save zip whose pickle names three globals, sorted so that the two with ``<!--`` and
    ``-->`` enclose ``builtins.exec``, in a file whose name holds a tag."""
    from tests.hostile import replace_data_pkl

    data = b"\x80\x02" + b"ca\n<!--x\n" + b"cbuiltins\nexec\n" + b"cc\n-->y\n" + b"\x87."
    return replace_data_pkl(folder / "<b>model<i>.pt", data)


def test_the_trust_dialog_shows_every_global_it_asks_about(qtbot, window, tmp_path):
    from PySide6.QtCore import Qt

    from app.safety.unpickling import unsafe_globals
    from tests.ui.user import drop_file, message_box

    path = hostile_pickle(tmp_path)
    assert unsafe_globals(path) == ["a.<!--x", "builtins.exec", "c.-->y"]
    drop_file(window, path)
    box = message_box(qtbot, window)
    visible = shown(box)
    listed = [line.strip() for line in visible.splitlines() if line.startswith("    ")]
    assert listed == ["a.<!--x", "builtins.exec", "c.-->y"]  # every name the user approves, visibly
    assert "<b>model<i>.pt is a whole pickled Python object" in visible
    assert box.textFormat() == Qt.TextFormat.PlainText
    assert_all_plain(box)
    box.reject()


def hostile_onnx(path: Path) -> Path:
    """An ONNX model whose names are HTML: an input, an output, its producer, the graph."""
    import onnx
    from onnx import TensorProto, helper

    x, y = "<b>in</b><!--", "--><img src='x'>out"
    graph = helper.make_graph([helper.make_node("Relu", [x], [y], name="<i>relu</i>")], "<h1>graph</h1>",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="<u>me</u>\x1b[2J")
    onnx.save(model, str(path))
    return path


def test_a_model_whose_names_are_html_is_shown_as_written(qtbot, window, tmp_path):
    """After the load, every label of the window shows its text as written (model panel, inputs editor,
    outputs, warnings, jobs, status bar); the input's name is on screen with its tags."""
    from PySide6.QtWidgets import QLabel

    from tests.ui.user import load_model

    path = hostile_onnx(tmp_path / "<s>net<u>.onnx")
    summary = load_model(qtbot, window, path)
    assert summary["inputs"][0]["name"] == "<b>in</b><!--"
    assert_all_plain(window)
    texts = [shown(label) for label in window.findChildren(QLabel)]
    assert any("<b>in</b><!--" in t for t in texts), texts
    assert any("--><img src='x'>out" in t for t in texts), texts
    assert any("<s>net<u>.onnx" in t for t in texts), texts
    assert not any("\x1b" in t for t in texts)


def test_the_window_title_shows_a_model_file_name_without_its_controls(qtbot, window, tmp_path):
    """A file name holding a bidi override and an escape is shown escaped in the title bar (window
    managers draw titles as text: a right-to-left override there reverses what the user reads)."""
    from tests.ui.user import load_model

    path = hostile_onnx(tmp_path / "net\u202egnp.\x1b[2J.onnx")
    load_model(qtbot, window, path)
    title = window.windowTitle()
    assert "\u202e" not in title and "\x1b" not in title, repr(title)
    assert "net" in title and "gnp." in title and "Model Deployment Studio" in title


def test_tool_tips_and_legends_show_file_names_as_written():
    from PySide6.QtGui import QTextDocument

    from ui.plain_text import rich, tooltip

    for text in ("<b>x</b> & y", "a.<!--x\nbuiltins.exec\nc.-->y", "plain, no markup"):
        doc = QTextDocument()
        doc.setHtml(tooltip(text)) if "<" in text or "&" in text else doc.setPlainText(tooltip(text))
        assert doc.toPlainText() == text
        doc.setHtml(rich(text))
        assert doc.toPlainText().replace("\u2028", "\n") == text
