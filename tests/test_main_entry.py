"""``python main.py``'s front door: commands go to the CLI, files to the window, anything else is a
usage error (never a window that a headless CI job would wait on forever)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO


def run_main(*args: str, tmp_path) -> subprocess.CompletedProcess:
    # a private config folder: the window must not open, but if it did it would not touch the user's
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path)


def test_cli_commands_match_the_parser():
    import main
    from app.cli.parser import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command")
    assert set(main.CLI_COMMANDS) == set(subparsers.choices)


def test_mistyped_command_is_a_usage_error_with_the_nearest_command(tmp_path):
    proc = run_main("inspcet", "model.pt", tmp_path=tmp_path)
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert "'inspcet' is neither a command nor an existing model file" in last
    assert "did you mean inspect?" in last
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "config").exists()  # no window, no settings


def test_unrelated_word_lists_the_commands(tmp_path):
    proc = run_main("zzzz", tmp_path=tmp_path)
    assert proc.returncode == 2
    assert "commands: convert, inspect" in proc.stderr


def test_version_names_the_app_and_its_runtimes(tmp_path):
    proc = run_main("--version", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Model Deployment Studio 0.")
    import onnxruntime
    import torch

    assert any(line.split() == ["torch", torch.__version__] for line in lines)
    assert any(line.split() == ["onnxruntime", onnxruntime.__version__] for line in lines)
    assert any(line.split()[:1] == ["tensorrt"] for line in lines)


def test_a_reader_that_stops_early_is_not_an_error():
    """``python main.py targets | head -1``: the closed pipe ends the output quietly, exit 0."""
    import subprocess
    import sys

    from tests.conftest import REPO

    proc = subprocess.Popen([sys.executable, "main.py", "targets"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()                      # what head does once it has its lines: before ours are written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0
    assert "error" not in err.lower(), err
