"""Issue 31, what the app writes and the trust it takes from files: a job's result places only the
names its converter declares; ``pack`` takes trust from the command line only and writes only what it
owns, never through links; ``optimize``'s job writes only beneath its output folder; ``example``
replaces nothing without ``--overwrite``; a damaged ``.pte`` in ``native-check`` is one line, no abort.

Each attack is a real hostile file run through the real CLI in a process of its own, with private
HOME and TMPDIR (the helpers of tests/test_fence_channel.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.channel_attacks import hostile_model
from tests.test_fence_channel import leftovers, needs_fence, run_cli, tmp_path  # noqa: F401 - the fixture

# the job's code: a file in its work folder, then a forged "result" frame naming it, sent on its result
# pipe (the channel's own framing: a 4-byte length, then the JSON the parent parses)
FORGE = '''
from pathlib import Path
from app.safety import wire
from app.pipeline import ConversionResult
work = Path(glob.glob({out!r} + "/.studio-tmp-*")[0])
(work / {name!r}).write_text("FORGED = True\\n")
(work / {name!r} ".manifest.json").write_text("{{}}")
files = [work / {name!r}]
message = wire.dumps(("result", ConversionResult("onnx", "fp32", "ok", files[0], files,
                                                 manifest=work / ({name!r} ".manifest.json"))))
for fd, what in fds():
    if fd > 2 and what.startswith("pipe:"):
        try:
            os.write(fd, struct.pack("!i", len(message)) + message)
        except OSError:
            pass
sys.stdout.flush()
os._exit(0)
'''


@needs_fence
@pytest.mark.parametrize("name, overwrite", [("conftest.py", False), ("train.py", True)])
def test_a_forged_result_places_no_file_the_conversion_does_not_write(tmp_path, name, overwrite):
    """The job writes ``conftest.py`` (which pytest would import unfenced) or ``train.py`` (the user's,
    beside the model) into its work folder and names it as its artifact: refused, nothing kept."""
    args = hostile_model(tmp_path, FORGE.format(out=str(tmp_path), name=name))
    mine = tmp_path / "train.py"
    mine.write_text("# the user's training script\n")
    run = run_cli(tmp_path, "convert", *args, "--to", "onnx", "--json", *(["--overwrite"] if overwrite else []))
    assert run.returncode == 1, run.stderr
    out = json.loads(run.stdout)
    assert "sent an invalid result" in out["message"] and "does not write" in out["message"], out["message"]
    assert name in out["message"] and "nothing was kept" in out["message"]
    assert not (tmp_path / "conftest.py").exists()
    assert mine.read_text() == "# the user's training script\n"
    assert not list(tmp_path.glob(".studio-tmp-*")) and not list(tmp_path.glob("*.manifest.json"))
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------- optimize
FAST = ["--warmup", "1", "--warmup-seconds", "0", "--runs", "3", "--min-seconds", "0"]


@needs_fence
def test_optimize_lets_its_job_write_only_beneath_its_output_folder(tmp_path):
    """Model code that runs during ``optimize`` (no flags but its ``--arch``) tries to replace a file
    beside the model and to add one there: both refused; the artifacts still go to ``<stem>.optimize/``."""
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes\n")
    args = hostile_model(tmp_path, f'''
for target in ({str(notes)!r}, {str(tmp_path / "dropped.txt")!r}):
    try:
        with open(target, "w") as f:
            f.write("written by the model")
        print("WROTE", target)
    except OSError as e:
        print("refused:", e.errno)
''')
    run = run_cli(tmp_path, "optimize", *args, *FAST, "--only", "onnx fp32", "--json", timeout=300)
    assert "WROTE" not in run.stderr and "job: refused: 13" in run.stderr, run.stderr
    assert notes.read_text() == "the user's notes\n" and not (tmp_path / "dropped.txt").exists()
    assert run.returncode in (0, 1), run.stderr
    data = json.loads(run.stdout)
    assert Path(data["out_dir"]).resolve() == (tmp_path / "model.optimize").resolve()
    assert list((tmp_path / "model.optimize").rglob("*.onnx"))


# ---------------------------------------------------------------------------- example
def test_example_replaces_no_file_of_the_users_without_overwrite(tmp_path):
    folder = tmp_path / "ex"
    folder.mkdir()
    (folder / "README.txt").write_text("my project's README\n")
    run = run_cli(tmp_path, "example", folder)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {folder / 'README.txt'} exists already; choose an empty folder or pass --overwrite to replace it"]
    assert sorted(p.name for p in folder.iterdir()) == ["README.txt"]
    assert (folder / "README.txt").read_text() == "my project's README\n"
    assert leftovers(tmp_path) == []


def test_example_never_writes_through_a_link(tmp_path):
    """With ``--overwrite`` a README.txt that is a link is replaced by the example's file; what it
    pointed at is untouched."""
    folder = tmp_path / "ex"
    folder.mkdir()
    elsewhere = tmp_path / "precious.txt"
    elsewhere.write_text("not the example's\n")
    (folder / "README.txt").symlink_to(elsewhere)
    (folder / "digits_cnn.py").symlink_to(elsewhere)
    run = run_cli(tmp_path, "example", folder, "--overwrite", "--json")
    assert run.returncode == 0, run.stderr
    paths = json.loads(run.stdout)
    assert elsewhere.read_text() == "not the example's\n"
    for name in ("README.txt", "digits_cnn.py", "digits_cnn.pth"):
        assert not (folder / name).is_symlink() and (folder / name).is_file()
    assert str(folder) in (folder / "README.txt").read_text() and paths["folder"] == str(folder)
    assert not list(folder.glob(".studio-tmp-*"))
