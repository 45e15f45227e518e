"""Shared fixtures: small real models saved in every format users bring, and a CLI runner."""

from __future__ import annotations

import faulthandler
import hashlib
import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------- the user's own files
# Every process the suite starts (the window in a subprocess, the CLI, job children) inherits these:
# Qt's QSettings, platformdirs and the XDG caches then write into a private folder, never into the
# real user's ~/.config or ~/.cache. The real locations are remembered to check them at the end.
REAL_CONFIG_HOME = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
REAL_USER_FOLDERS = [REAL_CONFIG_HOME / "DeployStudio", REAL_CONFIG_HOME / "DeployStudioTests",
                     Path.home() / ".local" / "share" / "DeployStudio"]
_PRIVATE_HOME = Path(tempfile.mkdtemp(prefix="studio-tests-home-"))
for _var, _sub in (("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"), ("XDG_DATA_HOME", "data"),
                   ("XDG_STATE_HOME", "state")):
    os.environ[_var] = str(_PRIVATE_HOME / _sub)
    (_PRIVATE_HOME / _sub).mkdir()


def snapshot_user_folders(folders: list[Path] = REAL_USER_FOLDERS) -> dict[str, tuple]:
    """Every file under ``folders`` with its size, mtime and SHA-256 (missing folders: nothing)."""
    state: dict[str, tuple] = {}
    for folder in folders:
        if not folder.exists():
            continue
        for f in sorted(folder.rglob("*")):
            if f.is_file():
                st = f.stat()
                state[str(f)] = (st.st_size, st.st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
    return state


_USER_STATE_AT_START = snapshot_user_folders()


# ---------------------------------------------------------------------------- a native crash leaves a trace
# pytest's capture points fd 2 at a temporary file during each test, so a segfault's faulthandler
# dump went down with the process. The dump goes to a file of its own instead (every thread's Python
# stack), named on the first line of the run; `.ci/run` prints it when the suite fails.
CRASH_LOG = REPO / ".crash" / f"pytest-{os.getpid()}.log"


_crash_log = None


def pytest_configure(config):
    global _crash_log
    CRASH_LOG.parent.mkdir(parents=True, exist_ok=True)
    _crash_log = open(CRASH_LOG, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - open until the end
    _crash_log.write(f"pytest {os.getpid()} started; the test running at a crash is the last 'test:' line\n")
    faulthandler.enable(file=_crash_log, all_threads=True)


def pytest_report_header(config):
    from app.machine.hardware import detect_cpu

    cpu = detect_cpu()
    return [f"cpu: {cpu.name or platform.machine()} ({', '.join(cpu.features()) or 'no AVX2'}; source {cpu.source})",
            f"native crash log: {CRASH_LOG}"]


def pytest_runtest_logstart(nodeid, location):
    if _crash_log is not None:
        _crash_log.write(f"test: {nodeid}\n")
        # again before each test: a library loaded since (a runtime, Qt) may have put its own handler in
        # faulthandler's place, and then a crash left nothing but this line
        faulthandler.enable(file=_crash_log, all_threads=True)


def pytest_unconfigure(config):
    """No crash: the log goes (a log left behind is a crash's)."""
    if _crash_log is not None:
        faulthandler.disable()
        _crash_log.close()
        CRASH_LOG.unlink(missing_ok=True)


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any test (or a process it started) touched the real user's settings."""
    after = snapshot_user_folders()
    if after != _USER_STATE_AT_START:
        changed = sorted(k for k in set(after) | set(_USER_STATE_AT_START)
                         if after.get(k) != _USER_STATE_AT_START.get(k))
        session.config.get_terminal_writer().line(
            "error: the test run changed the real user's settings: " + ", ".join(changed), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    shutil.rmtree(_PRIVATE_HOME, ignore_errors=True)

CNN_ARGS = ["--arch", "tests.models:SmallCNN", "--input", "x:1x3x32x32", "--dynamic", "x:0:batch"]
ENCODER_ARGS = ["--arch", "tests.models:TinyEncoder",
                "--input", "input_ids:2x16:int64", "--input", "attention_mask:2x16:int64",
                "--dynamic", "input_ids:0:batch", "--dynamic", "input_ids:1:seq",
                "--dynamic", "attention_mask:0:batch", "--dynamic", "attention_mask:1:seq"]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``main.py`` in-process; returns exit code, stdout, stderr."""
    from main import main

    def run(*args) -> CliResult:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def network_attempts(monkeypatch) -> list:
    """Refuse every socket connection in this process; the list collects the addresses tried."""
    import socket

    attempts: list = []

    def refuse(self, address):
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


@pytest.fixture(scope="session")
def model_files(tmp_path_factory) -> dict[str, Path]:
    """Every source format, built once per session from the test models."""
    import torch

    from tests import models

    root = tmp_path_factory.mktemp("models")
    files: dict[str, Path] = {}
    cnn = models.make("cnn")
    files["cnn_state"] = root / "cnn.pt"
    torch.save(cnn.state_dict(), files["cnn_state"])
    files["encoder_state"] = root / "encoder.pth"
    torch.save(models.make("encoder").state_dict(), files["encoder_state"])
    files["branchy_state"] = root / "branchy.pt"
    torch.save(models.make("branchy").state_dict(), files["branchy_state"])
    files["mlp_pickle"] = root / "mlp_full.pt"
    torch.save(models.make("mlp"), files["mlp_pickle"])
    from safetensors.torch import save_file

    files["mlp_safetensors"] = root / "mlp.safetensors"
    save_file(models.make("mlp").state_dict(), str(files["mlp_safetensors"]))
    # a training checkpoint with the weights under "state_dict"
    files["cnn_checkpoint"] = root / "cnn_ckpt.pth"
    torch.save({"epoch": 3, "state_dict": cnn.state_dict()}, files["cnn_checkpoint"])
    x = torch.randn(2, 3, 32, 32)
    files["cnn_torchscript"] = root / "cnn_scripted.pt"
    torch.jit.save(torch.jit.script(models.make("cnn")), str(files["cnn_torchscript"]))
    files["cnn_pt2"] = root / "cnn.pt2"
    ep = torch.export.export(models.make("cnn"), (x,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    torch.export.save(ep, str(files["cnn_pt2"]))
    files["cnn_onnx"] = root / "cnn.onnx"
    torch.onnx.export(models.make("cnn"), (x,), str(files["cnn_onnx"]), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}}, dynamo=True,
                      external_data=False, verbose=False)
    # ONNX whose weights live in an external-data file beside it (torch's default for large models)
    ext_dir = root / "external"
    ext_dir.mkdir()
    files["cnn_onnx_external"] = ext_dir / "cnn_ext.onnx"
    import onnx

    proto = onnx.load(str(files["cnn_onnx"]))
    onnx.save_model(proto, str(files["cnn_onnx_external"]), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="cnn_ext.onnx.data", size_threshold=0)
    return files


@pytest.fixture
def workdir(tmp_path, model_files) -> dict[str, Path]:
    """Private copies of the model files (tests may damage them) plus an output folder."""
    copies = {}
    for key, path in model_files.items():
        if key == "cnn_onnx_external":
            dest = tmp_path / "external"
            if not dest.exists():
                shutil.copytree(path.parent, dest)
            copies[key] = dest / path.name
        else:
            copies[key] = Path(shutil.copy2(path, tmp_path / path.name))
    copies["out"] = tmp_path / "out"
    return copies


@pytest.fixture(scope="session")
def digits(tmp_path_factory) -> dict[str, Path]:
    """A CNN trained on scikit-learn's digits (state dict), and the held-out digits as an image folder
    (class subfolders) and as a labelled .npz — real data, real accuracy."""
    import torch

    from tests import real_data

    root = tmp_path_factory.mktemp("digits")
    state = root / "digits.pt"
    torch.save(real_data.train_digits_cnn().state_dict(), state)
    return {"state": state, "images": real_data.write_digit_images(root / "images", count=300),
            "arrays": real_data.write_digit_arrays(root / "arrays", count=300)}


DIGITS_ARGS = ["--arch", "tests.models:DigitsCNN", "--input", "x:1x1x8x8"]
