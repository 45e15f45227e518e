"""The window driven as a user drives it: drop, complete the signature, tick, convert, read results."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox

from tests.ui.user import (answer, answer_with, click, convert, drop_file, load_model, message_box, open_window, set_shape,
                           tick, wait_event)

REPO = Path(__file__).resolve().parents[2]

PAINT_PROBE = r"""
import sys, time
t0 = time.perf_counter()
from ui import app as ui_app
a = ui_app.application([])
w = ui_app.create_window([])
def painted():
    print("painted", "torch" in sys.modules, "onnx" in sys.modules, flush=True)
    a.quit()
w.first_painted.connect(painted)
a.exec()
"""


def private_env(folder: Path, **extra: str) -> dict[str, str]:
    """The environment for a window started in a subprocess: its QSettings live in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(folder), **extra}


def test_window_paints_within_a_second_without_importing_torch(tmp_path):
    best = None
    for _ in range(2):  # best of two: another process on this 2-core machine can steal a run
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", PAINT_PROBE], cwd=REPO, stdout=subprocess.PIPE, text=True,
                                env=private_env(tmp_path / "config"))
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        proc.wait(30)
        assert line.split() == ["painted", "False", "False"], line
        best = elapsed if best is None else min(best, elapsed)
    print(f"\nfirst paint after {best:.2f} s (best of two, including the interpreter's start)")
    assert best < 1.0, f"first paint after {best:.2f} s"


def test_drop_state_dict_give_architecture_and_convert(qtbot, window, workdir):
    summary = load_model(qtbot, window, workdir["cnn_state"])
    assert summary["format"] == "state-dict"
    assert not window.convert_button.isEnabled()
    assert "architecture" in window.convert_button.toolTip()

    qtbot.keyClicks(window.model.arch_edit, "tests.models:SmallCNN")
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000):
        click(qtbot, window.model.load_button)
    assert window.model.params_label.text().startswith("1,610")
    set_shape(qtbot, window, "x", "1x3x32x32", dynamic_axes=(0,))
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp32"), ("onnx", "fp16"), ("torchscript-trace", "fp32"))
    convert(qtbot, window)

    for target, precision in (("onnx", "fp32"), ("onnx", "fp16"), ("torchscript-trace", "fp32")):
        assert window.jobs.row_for(target, precision).state == "done"
        row = window.results.row_for(target, precision)
        assert row.artifact.is_file() and row.artifact.parent == workdir["out"]
        assert row.verification_passed
    names = {window.results.text(r, "Artifact") for r in range(window.results.rowCount())}
    assert names == {"cnn.fp32.onnx", "cnn.fp16.onnx", "cnn.trace.fp32.pt"}
    assert window.results.text(0, "Verdict") == "passed"
    request = window.results.row_for("onnx", "fp16").request
    assert request.source.dynamic == (("x", 0, "batch"),) and request.source.inputs[0].shape == (1, 3, 32, 32)
    assert "onnx fp16: wrote" in window.log.text()


def test_results_copy_path_copy_command_and_open_folder(qtbot, window, workdir, monkeypatch):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp16"))
    convert(qtbot, window)
    row = window.results.row_for("onnx", "fp16")

    window.results.selectRow(0)
    window.copy_path_action.trigger()
    assert QGuiApplication.clipboard().text() == str(row.artifact)
    window.copy_command_action.trigger()
    command = QGuiApplication.clipboard().text()
    assert command.startswith("python main.py convert ") and "--to onnx --precision fp16" in command

    menu = window.results.context_menu(0)
    assert [a.text() for a in menu.actions() if a.text()] == ["Copy path", "Copy CLI command", "Open folder",
                                                              "Export for serving (Triton)…",
                                                              "Where does the error come from?"]
    opened: list[QUrl] = []
    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: opened.append(url) or True))
    from ui.results_table import COLUMNS

    where = window.results.visualItemRect(window.results.item(0, COLUMNS.index("Artifact"))).center()
    # what a mouse sends: press/release, then the second press arrives as a double click
    qtbot.mouseClick(window.results.viewport(), Qt.MouseButton.LeftButton, pos=where)
    qtbot.mouseDClick(window.results.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert [u.toLocalFile() for u in opened] == [str(workdir["out"])]


def test_export_for_serving_writes_a_triton_model_folder(qtbot, window, workdir, monkeypatch):
    from PySide6.QtWidgets import QFileDialog
    from tritonclient.grpc import model_config_pb2
    from google.protobuf import text_format

    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    set_shape(qtbot, window, "x", "1x3x32x32", dynamic_axes=(0,))
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("onnx", "fp32"), ("torch-export", "fp32"))
    convert(qtbot, window)
    onnx_row = [i for i, r in enumerate(window.results.rows) if r.target == "onnx"][0]
    pt2_row = 1 - onnx_row
    pt2_export = [a for a in window.results.context_menu(pt2_row).actions() if a.text().startswith("Export")][0]
    assert not pt2_export.isEnabled()  # Triton has no loader for .pt2 archives

    repo = workdir["out"] / "model_repository"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", staticmethod(lambda *a, **k: str(repo)))
    export = [a for a in window.results.context_menu(onnx_row).actions() if a.text().startswith("Export")][0]
    assert export.isEnabled()
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        export.trigger()
    folder = repo / "cnn_fp32"  # named after the artifact (cnn.fp32.onnx)
    assert (folder / "1" / "model.onnx").is_file(), sorted(repo.rglob("*"))
    config = text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size > 0
    assert [i.name for i in config.input] == ["x"]
    assert f"wrote the Triton model folder {folder}" in window.log.text()

    # the same again: the folder exists, so the user is asked; No leaves it, Yes replaces it
    before = (folder / "config.pbtxt").stat().st_mtime_ns
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        export.trigger()
    box = message_box(qtbot, window)
    assert "cnn.fp32.onnx" in box.text() and "Replace" in box.text()
    answer(qtbot, box, QMessageBox.StandardButton.No)
    assert (folder / "config.pbtxt").stat().st_mtime_ns == before
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        export.trigger()
    box = message_box(qtbot, window)
    with qtbot.waitSignal(window.jobs.all_finished, timeout=60_000):
        answer(qtbot, box, QMessageBox.StandardButton.Yes)
    assert (folder / "config.pbtxt").stat().st_mtime_ns != before
    assert (folder / "1" / "model.onnx").is_file() and not list(repo.glob(".studio-tmp-*"))


def test_an_existing_artifact_is_replaced_only_when_the_user_says_so(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.options.out_dir.setText(str(workdir["out"]))
    assert not window.options.overwrite.isChecked()
    tick(qtbot, window, ("onnx", "fp16"))
    convert(qtbot, window)
    artifact = window.results.row_for("onnx", "fp16").artifact
    before = artifact.stat().st_mtime_ns

    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    assert artifact.name in box.text()
    answer_with(qtbot, box, "Cancel")
    assert not window.jobs.running and artifact.stat().st_mtime_ns == before

    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        answer_with(qtbot, box, "Replace")
    assert window.jobs.row_for("onnx", "fp16").state == "done"
    assert artifact.stat().st_mtime_ns != before


def test_copied_command_line_rebuilds_the_same_request(qtbot, window, workdir):
    import shlex

    from app.cli import parser as cli
    from app.reports.command_echo import convert_command

    load_model(qtbot, window, workdir["cnn_state"], arch="tests.models:SmallCNN")
    set_shape(qtbot, window, "x", "2x3x32x32", dynamic_axes=(0,))
    window.model.kwargs_edit.setText('{"num_classes": 10}')
    window.options.opset.setValue(18)
    window.options.out_dir.setText(str(workdir["out"]))
    request = window.converting.build_request("onnx", "int8")
    args = cli.build_parser().parse_args(shlex.split(convert_command(request))[2:])
    assert cli._request(args) == request


def test_unsupported_file_is_refused_with_a_message(qtbot, window, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    drop_file(window, notes)
    box = message_box(qtbot, window)
    assert "not a model file" in box.text() and ".onnx (ONNX)" in box.text()
    answer(qtbot, box, QMessageBox.StandardButton.Ok)
    assert window.model_path is None
    # the formats named, here and in the empty window's hint, are the declared artifact kinds'
    assert ".pte (ExecuTorch)" in box.text() and ".xml + .bin (OpenVINO IR)" in window.model.hint.text()


def test_full_pickle_asks_before_it_is_trusted(qtbot, window, workdir):
    drop_file(window, workdir["mlp_pickle"])
    box = message_box(qtbot, window)
    # the dialog lists what the file would create: torch.nn layers, and the class from elsewhere by name
    assert "PyTorch layers (torch.nn): GELU, Sequential, Linear" in box.text()
    assert "    tests.models.MLP" in box.text()
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000) as loaded:
        answer(qtbot, box, QMessageBox.StandardButton.Yes)
    assert loaded.args[0]["format"] == "pickle" and window.allow_pickle
    request = window.converting.build_request("onnx", "fp32")
    assert request.source.allow_pickle and request.source.trusted_globals == ("tests.models.MLP",)


def test_declining_a_pickle_loads_nothing(qtbot, window, workdir):
    drop_file(window, workdir["mlp_pickle"])
    box = message_box(qtbot, window)
    answer(qtbot, box, QMessageBox.StandardButton.No)
    assert window.model.summary is None and not window.convert_button.isEnabled()


def test_a_mistyped_batch_size_blocks_benchmark_with_the_reason(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    window.bench_options.batches.setText("1, 8")
    assert window.measuring.benchmark_blockers() == [] and window.bench_options.batch_sizes() == [1, 8]
    window.bench_options.batches.setText("1, 8x")
    [reason] = window.measuring.benchmark_blockers()
    assert "'8x' is not a positive integer" in reason
    window.benchmark_button.click()
    assert not window.session.jobs and "Cannot benchmark: batch sizes" in window.statusBar().currentMessage()


def test_unavailable_choices_are_disabled_with_their_reason(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    picker = window.targets
    trace = picker.box("torchscript-trace", "fp32")
    assert not trace.isEnabled() and "ONNX cannot be turned back into TorchScript" in trace.toolTip()
    assert not picker.box("onnx", "fp32").isEnabled()
    assert "already ONNX fp32" in picker.reason("onnx", "fp32")
    assert picker.box("onnx", "fp16").isEnabled() and picker.box("onnx", "int8").isEnabled()
    for p in ("fp32", "fp16", "int8"):  # no GPU and no TensorRT on this machine
        box = picker.box("tensorrt", p)
        assert not box.isEnabled() and "TensorRT" in box.toolTip()
    assert not window.convert_button.isEnabled()
    assert "tick at least one target" in window.convert_button.toolTip()


def test_cells_say_what_to_expect_on_this_hardware(qtbot, window, workdir):
    from app.machine.hardware import detect_cpu

    cpu = detect_cpu()
    load_model(qtbot, window, workdir["cnn_onnx"])
    picker = window.targets
    fp16 = picker.box("onnx", "fp16")
    # no GPU here: FP16 in ONNX Runtime on CPU brings nothing, and the cell says so
    assert fp16.isEnabled() and "no speed-up" in fp16.toolTip() and "meant for GPU/TensorRT" in fp16.toolTip()
    assert "no speed-up" in fp16.accessibleDescription()
    assert "faster" in picker.box("openvino", "int8").toolTip()
    bf16 = picker.box("openvino", "bf16")
    if cpu.bf16:
        assert bf16.isEnabled() and "faster" in bf16.toolTip() and "BF16" in bf16.toolTip()
    else:
        assert not bf16.isEnabled() and "no BF16 instructions" in bf16.toolTip()
    assert not picker.box("onnx", "bf16").isEnabled() and "no BF16 path" in picker.box("onnx", "bf16").toolTip()
    hardware = window.hardware_label.text()
    assert hardware.startswith("CPU:") and all(f in hardware for f in cpu.features()) and "GPU:" in hardware


def test_an_error_in_one_job_shows_in_its_row_while_the_others_finish(qtbot, window, workdir):
    load_model(qtbot, window, workdir["branchy_state"], arch="tests.models:BranchyNet")
    window.options.out_dir.setText(str(workdir["out"]))
    tick(qtbot, window, ("torchscript-trace", "fp32"), ("torchscript-script", "fp32"))
    convert(qtbot, window)
    traced = window.jobs.row_for("torchscript-trace", "fp32")
    assert traced.state == "failed"
    assert "data-dependent control flow" in traced.message and traced.message in traced.stage.text()
    scripted = window.jobs.row_for("torchscript-script", "fp32")
    assert scripted.state == "done"
    assert window.results.row_for("torchscript-script", "fp32").verification_passed
    assert window.results.row_for("torchscript-trace", "fp32").result is None
    assert sorted(p.name for p in workdir["out"].iterdir()) == ["branchy.script.fp32.pt",
                                                                "branchy.script.fp32.pt.manifest.json"]


def test_cancel_stops_a_running_job_within_a_second_and_leaves_no_file(qtbot, window, resnet_state, tmp_path):
    out = tmp_path / "out"
    load_model(qtbot, window, resnet_state, arch="tests.models:ResNet18")
    window.options.out_dir.setText(str(out))
    tick(qtbot, window, ("onnx", "fp32"))
    click(qtbot, window.convert_button)
    row = window.jobs.row_for("onnx", "fp32")
    qtbot.waitUntil(lambda: "export" in row.stage.text(), timeout=60_000)  # the child is exporting
    with qtbot.waitSignal(window.jobs.all_finished, timeout=5_000):
        clicked = time.monotonic()
        click(qtbot, row.cancel_button)
    latency = time.monotonic() - clicked
    print(f"\ncancel latency: {latency * 1000:.0f} ms")
    assert row.state == "cancelled"
    assert latency < 1.0
    assert not out.exists() or list(out.iterdir()) == []
    assert window.results.rowCount() == 0


def test_event_loop_never_stalls_during_a_resnet18_conversion(qtbot, window, resnet_state, tmp_path):
    from PySide6.QtCore import QTimer

    load_model(qtbot, window, resnet_state, arch="tests.models:ResNet18")
    set_shape(qtbot, window, "x", "1x3x224x224", dynamic_axes=(0,))
    window.options.out_dir.setText(str(tmp_path / "out"))
    tick(qtbot, window, ("onnx", "fp32"), ("torchscript-trace", "fp32"))
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    convert(qtbot, window)
    timer.stop()
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    worst = max(gaps)
    print(f"\nmax event-loop gap: {worst * 1000:.1f} ms over {len(ticks)} ticks "
          f"({ticks[-1] - ticks[0]:.1f} s of conversion)")
    assert window.jobs.row_for("onnx", "fp32").state == "done"
    assert window.jobs.row_for("torchscript-trace", "fp32").state == "done"
    # generous on purpose: a busy 2-core machine alone shows scheduling gaps of ~100 ms (0.1016 s seen
    # with the suite beside an emulator); what this guards against — torch imported or a conversion run
    # in the window's thread — stalls for seconds
    assert worst < 0.250


def test_choices_and_geometry_are_remembered(qtbot, fresh_settings, workdir):
    first = open_window(qtbot)
    first.resize(700, 560)  # the offscreen screen is 800x600; above the window's minimum size
    tick(qtbot, first, ("onnx", "fp16"))
    first.options.opset.setValue(17)
    first.bench_options.batches.setText("1, 8")
    first.close()

    second = open_window(qtbot)
    assert (second.width(), second.height()) == (700, 560)
    assert second.targets.checked() == [("onnx", "fp16")]
    assert second.options.opset.value() == 17
    assert second.bench_options.batch_sizes() == [1, 8]
    second.close()


def test_recent_files_reopen_a_model(qtbot, window, workdir):
    load_model(qtbot, window, workdir["cnn_onnx"])
    actions = [a for a in window.recent_menu.actions() if a.text().startswith("&1")]
    assert actions and actions[0].toolTip() == str(workdir["cnn_onnx"].resolve())
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000):
        actions[0].trigger()


def test_menus_shortcuts_and_about(window):
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus[:3] == ["File", "Edit", "View"] and menus[-1] == "Help"
    assert window.open_action.shortcut().toString() == "Ctrl+O"
    assert window.quit_action.shortcut().toString() == "Ctrl+Q"
    assert window.convert_action.shortcut().toString() == "F5"
    text = window.menus.about_text()
    for tool in ("PyTorch: 2.", "ONNX: 1.", "ONNX Runtime: 1.", "TensorRT:", "Qt: 6."):
        assert tool in text
    assert window.statusBar().isVisible()


def test_every_control_has_an_accessible_name(qtbot, window, workdir):
    from PySide6.QtWidgets import QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit

    load_model(qtbot, window, workdir["cnn_onnx"])
    controls = [w for kind in (QAbstractButton, QLineEdit, QComboBox, QAbstractSpinBox)
                for w in window.findChildren(kind)]
    nameless = [w for w in controls
                if w.isVisible() and not (w.accessibleName() or (isinstance(w, QAbstractButton) and w.text()))
                and not w.objectName().startswith("qt_")]
    assert [type(w).__name__ + ":" + w.objectName() for w in nameless] == []


def test_charts_follow_the_palette(qtbot, window):
    from PySide6.QtGui import QColor, QPalette

    dark = QPalette(window.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#202124"))
    dark.setColor(QPalette.ColorRole.Window, QColor("#2b2b2b"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    window.setPalette(dark)
    assert window.latency_chart.backgroundBrush().color().name() == "#202124"


def test_a_drop_on_any_part_of_the_window_opens_the_model(qtbot, window, workdir):
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000) as loaded:
        assert drop_file(window, workdir["cnn_pt2"], onto=window.model.arch_edit)  # a line edit, not the frame
    assert loaded.args[0]["format"] == "torch-export"


def test_a_model_named_on_the_command_line_opens_when_the_window_is_ready(qtbot, workdir):
    from ui.app import create_window

    window = create_window([str(workdir["cnn_onnx"])])  # what `python main.py MODEL` does
    qtbot.addWidget(window)
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000) as loaded:
        pass
    assert loaded.args[0]["format"] == "onnx"
    window.close()


QUIT_PROBE = r"""
import sys
from pathlib import Path
from PySide6.QtWidgets import QMessageBox
from app.session import JobKey
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
import main
from ui import app as ui_app
model, out = Path(sys.argv[1]), sys.argv[2]
made = ui_app.create_window
def create_window(argv):  # `python main.py MODEL`'s window, watched
    global w
    w = made(argv)
    w.session.events.model_loaded.connect(loaded)
    w.session.events.job_changed.connect(progressed)
    QTimer.singleShot(90_000, lambda: (print("did not get busy in 90 s", flush=True), QApplication.exit(4)))
    return w
ui_app.create_window = create_window
def loaded(_summary):
    w.graph_tab.show_graph_tab()  # starts a graph server (a child process) for the model
    # without QtWebEngine the pane says "open in browser" once its server runs: then convert
    w.graph.panes[0].graph_failed.connect(convert)
def convert(_message):
    w.targets.check("onnx", "fp16")
    w.options.out_dir.setText(out)
    w.convert_button.click()
def progressed(job):
    if (job.key == JobKey.conversion("onnx", "fp16") and job.state == "running" and not job.cancelling
            and w.graph.panes[0].server is not None):
        print("busy", flush=True)
        sys.stdin.readline()  # the test has listed this process's children
        w.quit_action.trigger()  # Ctrl+Q in the middle of a conversion: the window asks first
        box = w.dialog
        print("asked:", box.windowTitle(), "|", box.button(QMessageBox.StandardButton.Yes).text(), flush=True)
        box.button(QMessageBox.StandardButton.Yes).click()  # "Cancel the jobs and quit"
sys.exit(main.main([str(model)]))  # the app's own entry: run_gui, then its teardown (ui.app.shut_down)
"""


# a few runs in the suite; the loop of 20: QUIT_RUNS=20 pytest tests/ui/test_window.py -k quitting_mid
QUIT_RUNS = int(os.environ.get("QUIT_RUNS", "3"))


@pytest.mark.parametrize("run", range(QUIT_RUNS))
def test_quitting_mid_conversion_leaves_no_process_behind(workdir, tmp_path, run):
    """Ctrl+Q mid-conversion (``python main.py MODEL``, a graph server up): asked, the jobs cancelled,
    every child gone, and a clean exit every time (issue 33, item 9: ``Fatal Python error: bool_dealloc``
    while the interpreter finalized — :func:`ui.app.shut_down` tears Qt down before it does)."""
    import psutil

    config = tmp_path / "config"
    env = private_env(config, DEPLOYSTUDIO_NO_WEBENGINE="1")
    stderr = tmp_path / "stderr.txt"
    with stderr.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", QUIT_PROBE, str(workdir["cnn_onnx"]), str(workdir["out"])],
                                cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
                                text=True)
    try:
        # the probe's first line: "busy", or why it cannot get there (no hanging on a silent pipe)
        assert proc.stdout.readline().strip() == "busy"
        children = psutil.Process(proc.pid).children(recursive=True)
        # the fork server, the conversion child, the graph server at least
        assert len(children) >= 3, [c.cmdline() for c in children]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "asked: Jobs are running | Cancel the jobs and quit"
        assert proc.wait(30) == 0, stderr.read_text()[-3000:]
        assert "Fatal Python error" not in stderr.read_text() and "Traceback" not in stderr.read_text()
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive, [c.cmdline() for c in alive]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not list(workdir["out"].glob(".studio-tmp-*"))  # the cancelled conversion left nothing
    # the window kept its settings (the output folder, the recent file) in the private folder only
    written = list((config / "DeployStudio").glob("*.ini"))
    assert written and str(workdir["out"]) in written[0].read_text()


def test_status_bar_says_whether_model_code_is_sandboxed(window):
    from app.safety.sandbox import status

    sandboxed, line = status()
    assert window.sandbox_label.text() == ("Sandboxed" if sandboxed else "Not sandboxed")
    assert window.sandbox_label.toolTip().lower() == line.lower() and window.sandbox_label.isVisible()


def test_what_a_job_prints_reaches_the_log_without_escapes(qtbot, window, tmp_path):
    """Model code's print() lands in the log as a cleaned line of its job, never on a terminal."""
    from tests.channel_attacks import hostile_model

    args = hostile_model(tmp_path, r'print("hello from the model\x1b]0;window title\x07\x1b[2J")')
    summary = load_model(qtbot, window, Path(args[0]))
    assert summary["format"] == "state-dict"
    qtbot.keyClicks(window.model.arch_edit, args[2])
    with wait_event(qtbot, window.session.events.model_loaded, timeout=60_000):
        click(qtbot, window.model.load_button)
    qtbot.waitUntil(lambda: "model.pth: hello from the model" in window.log.text(), timeout=10_000)
    assert "\x1b" not in window.log.text() and "\x07" not in window.log.text()
    assert "hello from the model]0;window title[2J" in window.log.text()  # the escapes, defused
