"""Issue 31, terminal escapes from plain files: names, producer strings, op types, file names and
warnings that came from a file reach the terminal with every control character, C1 control and
bidirectional override shown escaped (``app.cli.console.cleaned_output``: one filter under every
``print`` of the command line), while ``--json`` stays valid JSON that gives the exact names back.

Each case is a hostile file run through the real ``main.py`` in a process of its own, with a private
HOME, XDG folders and TMPDIR.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

# clear the screen, set the window title (OSC ... BEL), a C1 CSI, a right-to-left override, an isolate
E = "\x1b[2J\x1b]0;pwned-title\x07\x9b31m\u202eevil\u2066"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def run_cli(tmp_path: Path, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    private = tmp_path / "private"
    env = dict(os.environ, PYTHONPATH=str(REPO), HOME=str(private / "home"), TMPDIR=str(private / "tmp"),
               XDG_CONFIG_HOME=str(private / "config"), XDG_CACHE_HOME=str(private / "cache"))
    for folder in ("home", "tmp", "config", "cache"):
        (private / folder).mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, str(REPO / "main.py"), *map(str, args)], cwd=tmp_path, env=env,
                          capture_output=True, timeout=timeout, encoding="utf-8", errors="backslashreplace")


def assert_no_control(run: subprocess.CompletedProcess) -> None:
    for name, text in (("stdout", run.stdout), ("stderr", run.stderr)):
        found = UNSAFE.findall(text)
        assert not found, f"{name} holds {sorted(set(found))!r}:\n{text[-3000:]}"


def hostile_onnx(path: Path) -> Path:
    """Every name of an ONNX model carries ``E``: graph, node, input, output, producer, doc string, and
    the op type of a node of a custom domain."""
    import onnx
    from onnx import TensorProto, helper

    x, y = "in" + E, "out" + E
    nodes = [helper.make_node("Relu", [x], ["r" + E], name="relu" + E),
             helper.make_node("Op" + E, ["r" + E], [y], name="custom" + E, domain="com.evil")]
    graph = helper.make_graph(nodes, "graph" + E, [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.evil", 1)],
                              producer_name="producer" + E, producer_version="1" + E, doc_string="doc" + E)
    onnx.save(model, str(path))
    return path


def test_inspect_shows_escaped_what_an_onnx_model_names(tmp_path):
    model = hostile_onnx(tmp_path / "names.onnx")
    run = run_cli(tmp_path, "inspect", model)
    assert run.returncode == 0, run.stderr
    assert_no_control(run)
    shown = "\\x1b[2J\\x1b]0;pwned-title\\x07\\x9b31m\\u202eevil\\u2066"  # escaped, not dropped
    assert f"producer:   producer{shown}" in run.stdout
    assert f"in{shown}: float32[1x4]" in run.stdout and f"com.evil::Op{shown}" in run.stdout


def test_a_name_cannot_start_a_line_of_its_own(tmp_path):
    """A name with a newline is shown on its line, the newline escaped: no fake ``error:`` line."""
    import onnx
    from onnx import TensorProto, helper

    x = "x\nerror: this line came from the model file"
    graph = helper.make_graph([helper.make_node("Relu", [x], ["y"])], "g",
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                producer_name="p\r\nwarning: fake"), str(tmp_path / "lines.onnx"))
    run = run_cli(tmp_path, "inspect", tmp_path / "lines.onnx")
    assert run.returncode == 0, run.stderr
    lines = (run.stdout + run.stderr).splitlines()
    assert not [line for line in lines if line.startswith(("error:", "warning: fake"))], lines
    assert "    x\\x0aerror: this line came from the model file: float32[1x4]" in lines


def test_inspect_json_is_valid_ascii_json_with_the_exact_names(tmp_path):
    """``--json`` to a terminal: ``json.dumps`` writes every control and non-ASCII character as
    ``\\uXXXX`` (ensure_ascii), so nothing raw reaches the terminal and a program reads the exact names."""
    model = hostile_onnx(tmp_path / "names.onnx")
    run = run_cli(tmp_path, "inspect", model, "--json")
    assert run.returncode == 0, run.stderr
    assert_no_control(run)
    assert run.stdout.isascii()
    data = json.loads(run.stdout)
    assert data["inputs"][0]["name"] == "in" + E
    assert any(E in str(v) for v in data.values())  # the producer, as stored


def test_evaluate_failure_rows_show_a_hostile_artifact_name_escaped(tmp_path):
    import numpy as np

    from tests.onnx_graphs import make_onnx

    source = make_onnx(tmp_path / "source.onnx", "add")
    artifact = tmp_path / f"bad{E}.onnx"
    artifact.write_bytes(b"not a model " + E.encode())
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.random.default_rng(0).random((4, 2, 8), dtype=np.float32))
    run = run_cli(tmp_path, "evaluate", source, artifact, "--data", tmp_path / "data")
    assert run.returncode == 1, run.stderr
    assert_no_control(run)
    assert "error: bad\\x1b[2J" in run.stderr


def test_targets_measured_shows_names_and_file_names_of_bench_json_escaped(tmp_path):
    from app.machine.hardware import detect

    cpu = detect().cpu
    folder = tmp_path / f"run{E}"
    folder.mkdir()
    rows = [{"name": "fast" + E, "runtime": "onnxruntime", "precision": "fp32", "p50_ms": 1.0, "cosine": 1.0,
             "batch": 1, "artifact": str(folder / f"a{E}.onnx"), "speedup_vs_baseline": 2.0},
            {"name": "odd" + E, "runtime": "rt" + E, "precision": "fp16" + E, "p50_ms": 0.5, "cosine": 1.0, "batch": 1}]
    (folder / "bench.json").write_text(json.dumps({"machine": {"cpu": cpu.name, "isa": cpu.features()},
                                                   "results": rows}))
    run = run_cli(tmp_path, "targets", "--measured", folder)
    assert run.returncode == 0, run.stderr
    assert_no_control(run)
    assert "fastest accurate: odd\\x1b[2J" in run.stdout and "run\\x1b[2J" in run.stdout
    as_json = run_cli(tmp_path, "targets", "--measured", folder, "--json")
    assert as_json.returncode == 0 and as_json.stdout.isascii()
    assert json.loads(as_json.stdout)["measured"]["winner"]["name"] == "odd" + E


WARNS = f'''
import converters.base as _base
_init = _base.ConversionContext.__init__
def _forged(self, *args, **kwargs):  # job code adds a warning to the result the CLI prints
    _init(self, *args, **kwargs)
    self.warnings.append("forged warning " + {E!r} + "\\nerror: a line the job wrote")
_base.ConversionContext.__init__ = _forged
'''


def test_convert_warnings_from_a_job_are_shown_escaped(tmp_path):
    from tests.channel_attacks import hostile_model

    args = hostile_model(tmp_path, WARNS)
    run = run_cli(tmp_path, "convert", *args, "--to", "onnx", "--out", tmp_path / "out")
    assert run.returncode == 0, run.stderr
    assert_no_control(run)
    assert "warning: forged warning \\x1b[2J" in run.stderr
    assert not [line for line in run.stderr.splitlines() if line.startswith("error:")]  # one line per warning


def test_usage_errors_and_arguments_are_shown_escaped(cli):
    r = cli("inspect", f"missing{E}.onnx")
    assert r.code == 2
    assert not UNSAFE.search(r.out + r.err) and "missing" in r.err
    r = cli("inspect", "model.onnx", "--no-such-flag" + E)
    assert r.code == 2 and not UNSAFE.search(r.out + r.err)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_keeps_its_own_line_rewrite_and_escapes_the_stage(monkeypatch):
    """The one escape sequence the command line writes itself (rewrite the progress line on a
    terminal) passes; the stage's text, which may name a file, does not."""
    from app.cli.console import CleanStream, StderrProgress, cleaned_output

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cleaned_output():
        assert isinstance(sys.stderr, CleanStream) and sys.stderr.isatty()
        progress = StderrProgress()
        progress(f"load {E}\nfake line", 0.5)
        progress.done()
        print(f"done {E}", file=sys.stderr)
    written = terminal.getvalue()
    assert written.startswith("\r\x1b[K… load \\x1b[2J") and "\\x0afake line" in written
    assert written.count("\x1b") == 2 and written.endswith("\r\x1b[Kdone \\x1b[2J\\x1b]0;pwned-title\\x07\\x9b31m"
                                                            "\\u202eevil\\u2066\n")


@pytest.mark.parametrize("text, shown", [
    ("a\x1bb", "a\\x1bb"), ("\x9b", "\\x9b"), ("\u202e\u2066\u2069", "\\u202e\\u2066\\u2069"),
    ("tab\tnew\nline", "tab\tnew\nline"), ("cr\r", "cr\\x0d"), ("lone \udc80", "lone \\udc80"),
    ("naïve ✓ 名前", "naïve ✓ 名前")])
def test_visible_text(text, shown):
    from app.safety.text import one_line, visible_text

    assert visible_text(text) == shown
    assert "\n" not in one_line(text) and "\t" not in one_line(text)
