"""Nothing is lost (issue 33, item 2): opening a model lists the artifacts already made from it — by the
command line or an earlier window — from their manifests, with their verdicts and the last benchmark;
Convert with artifacts on disk offers Keep existing / Replace / Cancel; every run goes into the model's
history, which the History menu reopens."""

from __future__ import annotations

import json
import os

from tests.ui.user import (LOAD_TIMEOUT, answer_with, click, convert, history_runs, load_model, message_box, open_window,
                           reopen_run, tick)


def rows(window) -> dict[tuple[str, str], int]:
    return {(o.target, o.precision): i for i, o in enumerate(window.results.rows)}


def test_opening_a_model_lists_what_the_command_line_made_from_it(qtbot, window, workdir, cli, tmp_path):
    out, model = workdir["out"], workdir["cnn_onnx"]
    for precision in ("fp16", "int8"):
        assert cli("convert", model, "--to", "onnx", "--precision", precision, "--out", out).code == 0
    fp16, int8 = out / "cnn.fp16.onnx", out / "cnn.int8.onnx"
    bench = cli("bench", model, fp16, int8, "--runs", "3", "--warmup", "1", "--min-seconds", "0.05",
                "--warmup-seconds", "0", "--json")
    assert bench.code == 0, bench.err
    (out / "bench.json").write_text(bench.out)    # what the README says to do with bench --json
    (out / "cut.onnx").write_bytes(b"x")
    (out / "cut.onnx.manifest.json").write_text('{"artifact": "cut.onnx", "source": {"path": ')  # garbled
    (out / "ghost.onnx.manifest.json").write_text(json.dumps(dict(json.loads(
        (out / "cnn.fp16.onnx.manifest.json").read_text()), artifact="ghost.onnx")))       # its artifact deleted

    window.options.out_dir.setText(str(out))
    with qtbot.waitSignal(window.history.scanned, timeout=LOAD_TIMEOUT):
        load_model(qtbot, window, model)

    found = rows(window)
    assert set(found) == {("onnx", "fp16"), ("onnx", "int8")}
    for precision, artifact in (("fp16", fp16), ("int8", int8)):
        row = found[("onnx", precision)]
        recorded = json.loads((out / f"{artifact.name}.manifest.json").read_text())["verdict"]
        assert window.results.is_from_disk(row) and not window.results.item(row, 0).icon().isNull()
        assert window.results.text(row, "Verdict") == recorded["label"]        # the verdict the CLI recorded
        assert window.results.text(row, "Artifact") == artifact.name
        assert window.results.text(row, "Warnings").startswith("from disk: made 20")
        assert window.results.rows[row].artifact == artifact
    # the last benchmark is drawn again
    assert window.last_benchmark is not None and window.latency_chart.rows
    assert {r.get("artifact") for r in window.last_benchmark["results"]} >= {str(fp16), str(int8)}
    # the garbled manifest and the orphaned one are a note each, not a crash
    log = window.log.text()
    assert "skipped cut.onnx.manifest.json" in log and "ghost.onnx" in log and "no longer on disk" in log
    # and the rows act like any other: Benchmark times them, Convert replaces them
    assert sorted(window.results.artifacts()) == sorted([fp16, int8]) and window.benchmark_button.isEnabled()
    window.resize(1280, 860)
    assert window.grab().save(str(tmp_path / "from-disk.png"))



def test_keep_existing_converts_only_what_is_missing_and_the_history_reopens_each_run(qtbot, window, workdir):
    out, model = workdir["out"], workdir["cnn_pt2"]
    load_model(qtbot, window, model)
    window.options.out_dir.setText(str(out))
    tick(qtbot, window, ("onnx", "fp32"))
    convert(qtbot, window)                                  # run 1: fp32
    fp32 = window.results.row_for("onnx", "fp32").artifact
    made = os.stat(fp32).st_mtime_ns

    tick(qtbot, window, ("onnx", "fp16"))                   # fp32 still ticked: it exists
    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    assert box.windowTitle() == "Artifacts exist already" and fp32.name in box.text()
    assert box.defaultButton().text() == "Keep existing"   # the default loses nothing
    assert {b.text() for b in box.buttons()} >= {"Keep existing", "Replace"}
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        answer_with(qtbot, box, "Keep existing")          # run 2: only fp16
    assert os.stat(fp32).st_mtime_ns == made                # kept, not converted again
    assert [j.key.name for j in window.session.jobs.values()] == ["onnx fp16"]
    fp16 = window.results.row_for("onnx", "fp16").artifact
    assert fp16.is_file() and set(rows(window)) == {("onnx", "fp32"), ("onnx", "fp16")}

    runs = history_runs(window)
    assert len(runs) == 2 and "Convert" in runs[0].text() and "onnx fp16" in runs[0].text()
    assert "onnx fp32" in runs[1].text() and "passed" in runs[1].text()
    reopen_run(qtbot, window, runs[1])                      # the first run
    assert set(rows(window)) == {("onnx", "fp32")} and window.results.is_from_disk(0)
    assert window.results.rows[0].artifact == fp32
    reopen_run(qtbot, window, history_runs(window)[0])      # the second
    assert set(rows(window)) == {("onnx", "fp16")}

    # Cancel converts nothing; Replace converts again
    click(qtbot, window.convert_button)
    box = message_box(qtbot, window)
    answer_with(qtbot, box, "Cancel")
    assert os.stat(fp32).st_mtime_ns == made and len(history_runs(window)) == 2
    click(qtbot, window.convert_button)
    with qtbot.waitSignal(window.jobs.all_finished, timeout=120_000):
        answer_with(qtbot, message_box(qtbot, window), "Replace")
    assert os.stat(fp32).st_mtime_ns != made and len(history_runs(window)) == 3

    # another window, later: the model's runs and its artifacts are still there
    later = open_window(qtbot)
    try:
        with qtbot.waitSignal(later.history.scanned, timeout=LOAD_TIMEOUT):
            load_model(qtbot, later, model)
        assert set(rows(later)) == {("onnx", "fp32"), ("onnx", "fp16")}
        assert len(history_runs(later)) == 3
    finally:
        later.close()
