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


# ---------------------------------------------------------------------------- pack
def _evil_arch(folder: Path, attack: str) -> str:
    """An architecture file (the network of tests/channel_attacks.py) whose ``build()`` runs ``attack``."""
    from tests.channel_attacks import ARCH_HEAD

    body = "\n".join("    " + line for line in attack.strip().splitlines())
    (folder / "evil.py").write_text(ARCH_HEAD + "\ndef build():\n" + body + "\n    return Net()\n")
    return f"{folder / 'evil.py'}:build"


def _onnx_with_manifest(folder: Path) -> tuple[Path, list[str]]:
    """A small ONNX artifact converted by the app (manifest beside it), and the --arch it needs."""
    args = hostile_model(folder, "pass")
    run = run_cli(folder, "convert", *args, "--to", "onnx", "--out", folder / "art")
    assert run.returncode == 0, run.stderr
    return folder / "art" / "model.fp32.onnx", args[1:3]


def _checker_bytes() -> bytes:
    from app.serving.pack import CHECKER

    return CHECKER.read_bytes()


WRITE_EVERYWHERE = '''
targets = glob.glob({out!r} + "/check.py") + glob.glob({out!r} + "/.studio-tmp-*/check.py") + [{out!r} + "/marker"]
for target in targets:
    try:
        with open(target, "w") as f:
            f.write("open('/tmp/ran-on-the-device', 'w')")
        print("WROTE", target)
    except OSError as e:
        print("refused:", e.errno)
'''


@needs_fence
def test_pack_takes_no_trust_from_the_manifest(tmp_path):
    """A manifest that names another --arch (code that would replace check.py) and turns on
    --allow-pickle runs nothing: one line naming the flags; with the user's own --arch, the user's runs."""
    artifact, arch = _onnx_with_manifest(tmp_path)
    out = tmp_path / "pack"
    manifest_path = artifact.with_name(artifact.name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["options"].update(arch=_evil_arch(tmp_path, WRITE_EVERYWHERE.format(out=str(out))), allow_pickle=True)
    manifest_path.write_text(json.dumps(manifest))
    run = run_cli(tmp_path, "pack", artifact, "--out", out)
    assert run.returncode == 2, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "--arch, --allow-pickle" in run.stderr, run.stderr
    assert "evil.py" in run.stderr and not out.exists()
    run = run_cli(tmp_path, "pack", artifact, "--out", out, *arch, "--allow-pickle", "--json")
    assert run.returncode == 0, run.stderr
    assert "WROTE" not in run.stderr and "refused" not in run.stderr   # the manifest's --arch never ran
    assert (out / "check.py").read_bytes() == _checker_bytes() and not (out / "marker").exists()


@needs_fence
def test_the_pack_job_writes_only_its_own_files_never_check_py(tmp_path):
    """Code the user trusted (its --arch) that runs in the pack's job cannot replace check.py, the file
    the user runs unfenced on the deployment machine, nor add files to the pack."""
    artifact, _ = _onnx_with_manifest(tmp_path)
    out = tmp_path / "pack"
    arch = _evil_arch(tmp_path, WRITE_EVERYWHERE.format(out=str(out)))
    run = run_cli(tmp_path, "pack", artifact, "--out", out, "--arch", arch)
    assert run.returncode == 0, run.stderr
    assert "WROTE" not in run.stderr and "job: refused: 13" in run.stderr, run.stderr
    assert (out / "check.py").read_bytes() == _checker_bytes()
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["model.fp32.onnx", "model.fp32.onnx.manifest.json", "samples.npz", "pack.json", "check.py"])


def test_pack_never_writes_through_a_link_nor_copies_one(tmp_path):
    artifact, arch = _onnx_with_manifest(tmp_path)
    out = tmp_path / "pack"
    out.mkdir()
    victim = tmp_path / "victim.py"
    victim.write_text("# the user's file\n")
    (out / "check.py").symlink_to(victim)
    run = run_cli(tmp_path, "pack", artifact, "--out", out, *arch, "--overwrite")
    assert run.returncode == 0, run.stderr
    assert victim.read_text() == "# the user's file\n"
    assert not (out / "check.py").is_symlink() and (out / "check.py").read_bytes() == _checker_bytes()

    # a side file the manifest lists that is a link to a secret: refused, one line, nothing written
    secret = tmp_path / "secret.txt"
    secret.write_text("api key")
    (artifact.parent / "model.fp32.onnx.data").symlink_to(secret)
    manifest_path = artifact.with_name(artifact.name + ".manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["files"].append({"name": "model.fp32.onnx.data"})
    manifest_path.write_text(json.dumps(manifest))
    fresh = tmp_path / "pack2"
    run = run_cli(tmp_path, "pack", artifact, "--out", fresh, *arch)
    assert run.returncode == 2 and not fresh.exists(), run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: {artifact}: its side file model.fp32.onnx.data is a link; pack copies only the files themselves "
        "(put the file there, not a link)"]


# ---------------------------------------------------------------------------- native-check
def _pte(folder: Path) -> Path:
    args = hostile_model(folder, "pass")
    run = run_cli(folder, "convert", *args, "--to", "executorch", "--out", folder / "art", timeout=400)
    assert run.returncode == 0, run.stderr
    return folder / "art" / "model.xnnpack.fp32.pte"


@pytest.mark.skipif(__import__("importlib").util.find_spec("executorch") is None, reason="ExecuTorch not installed")
def test_native_check_of_a_damaged_pte_is_one_line_not_an_abort(tmp_path):
    """One byte of the program's flatbuffer zeroed: ExecuTorch's reader aborts (SIGABRT) — inside the
    fenced job, not the CLI: one line naming the file, exit 1, ``--json`` one object."""
    pte = _pte(tmp_path)
    data = bytearray(pte.read_bytes())
    assert data[4:8] == b"ET12"      # still an ExecuTorch program to the sniffer; a table offset broken
    data[418] = 0
    bad = tmp_path / "bad.pte"
    bad.write_bytes(bytes(data))
    run = run_cli(tmp_path, "native-check", bad)
    assert run.returncode == 1, (run.returncode, run.stderr)
    errors = [line for line in run.stderr.splitlines() if not line.startswith("job: ")]
    assert len(errors) == 1 and errors[0].startswith("error: the job's process crashed (signal 6"), run.stderr
    assert "bad.pte" in errors[0] and "re-export it" in errors[0]
    run = run_cli(tmp_path, "native-check", bad, "--json")
    assert run.returncode == 1 and json.loads(run.stdout)["exit_code"] == 1
    # the undamaged program: a clean "not run" (no C++ loader for .pte), read in the job too
    run = run_cli(tmp_path, "native-check", pte)
    assert run.returncode == 0 and "not run" in run.stdout, run.stderr


def test_optimize_refuses_an_output_folder_that_holds_the_model(tmp_path):
    args = hostile_model(tmp_path, "pass")
    run = run_cli(tmp_path, "optimize", *args, "--out", tmp_path)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"error: --out {tmp_path}: the model is in it, and optimize's job may write anything beneath its output "
        "folder; choose a folder of its own (default: model.optimize/ beside the model)"]
