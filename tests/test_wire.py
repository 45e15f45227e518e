"""What a job's process sends back is data: the codec round-trips results and refuses everything else."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from app.safety import wire
from app.errors import BadInput
from app.jobs import InvalidResult, _check_conversion_result, run_job


@pytest.mark.parametrize("name", sorted(wire.WIRE_TYPES))
def test_every_wire_type_names_a_dataclass(name):
    assert dataclasses.is_dataclass(wire._resolve(name, "class"))


def test_results_round_trip():
    from app.pipeline import ConversionResult
    from app.accuracy.verify import Verification

    v = Verification(precision="fp32", max_abs_err=1e-7, rel_l2=float("nan"), cosine=1.0, passed=True)
    result = ConversionResult("onnx", "fp32", "ok", Path("/w/m.onnx"), [Path("/w/m.onnx")], 10, 0.5, v,
                              ["a warning"], Path("/w/m.manifest.json"),
                              accuracy_budget={"rounds": [(1, 0.99)], 3: np.float32(0.5)})
    back = wire.loads(wire.dumps(("result", result)))
    assert back[0] == "result" and isinstance(back[1], ConversionResult)
    got = back[1]
    assert got.files == [Path("/w/m.onnx")] and got.verification.cosine == 1.0 and np.isnan(got.verification.rel_l2)
    assert got.accuracy_budget == {"rounds": [(1, 0.99)], 3: 0.5}
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    assert np.array_equal(wire.loads(wire.dumps({"a": array}))["a"], array)


@pytest.mark.parametrize("message", [
    pickle.dumps(("result", 1)),                                       # a pickle is not data
    b'{"$dc": "os:system", "fields": {}}',                            # a class no job returns
    b'{"$dc": "app.pipeline:ConversionResult", "fields": {"__class__": 1}}',  # a field it has not
    b'{"$enum": "signal:Signals", "value": 9}',
    b'{"$array": {"dtype": "|O", "shape": [1], "data": "AAAAAAAAAAA="}}',   # an object array
    b'{"$array": {"dtype": "<f4", "shape": [4], "data": "AAAA"}}',          # data short of its shape
    b'{"$pickle": "gASVAAAAAAAAAAAu"}',                                     # an unknown tag
    b"[" * 100000 + b"]" * 100000,                                          # nested past any limit
])
def test_anything_else_is_an_invalid_message(message):
    with pytest.raises(wire.InvalidMessage):
        wire.loads(message)


def test_a_type_that_cannot_travel_is_refused_in_the_child_not_pickled():
    with pytest.raises(wire.InvalidMessage, match="cannot travel"):
        wire.dumps(object())
    with pytest.raises(wire.InvalidMessage, match="numbers and booleans only"):
        wire.dumps(np.array([object()]))


def test_a_job_that_returns_what_cannot_travel_fails_with_one_line():
    with pytest.raises(Exception, match="the job's result could not be sent"):
        run_job("tests.crashers:returns_a_lock", None)


def test_a_message_past_the_size_limit_ends_the_job(monkeypatch):
    monkeypatch.setattr(wire, "MAX_MESSAGE_BYTES", 4096)  # the parent's limit; the child sends 64 KiB
    with pytest.raises(InvalidResult, match="sent an invalid result .*over"):
        run_job("tests.crashers:echo", "x" * 65536)


def test_garbage_on_the_result_channel_is_an_invalid_result():
    with pytest.raises(InvalidResult, match="the job's process sent an invalid result"):
        run_job("tests.crashers:forge_result", None)


def test_errors_keep_their_type_and_lose_their_escapes():
    with pytest.raises(BadInput) as caught:
        run_job("tests.crashers:bad_input_with_escapes", None)
    assert "\x1b" not in str(caught.value) and "unreadable" in str(caught.value)


def test_a_conversion_naming_files_outside_its_work_folder_is_refused(tmp_path):
    from app.artifacts.manifest import manifest_path_of
    from app.pipeline import ConversionResult, artifact_path
    from tests.requests import request

    work = tmp_path / "work"
    work.mkdir()
    req = request(tmp_path / "m.onnx", "onnx", "fp32")
    artifact = work / artifact_path(req).name
    manifest = manifest_path_of(artifact)
    artifact.write_bytes(b"x")
    manifest.write_text("{}")
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's")
    ok = ConversionResult("onnx", "fp32", "ok", artifact, [artifact], manifest=manifest)
    _check_conversion_result(ok, work, req)
    for files in ([victim], [artifact, Path("/etc/passwd")], [work / ".." / "precious.txt"]):
        bad = dataclasses.replace(ok, files=files)
        with pytest.raises(InvalidResult, match="a file outside its work folder"):
            _check_conversion_result(bad, work, req)
    (work / "link.onnx").symlink_to(victim)
    with pytest.raises(InvalidResult):
        _check_conversion_result(dataclasses.replace(ok, files=[work / "link.onnx"]), work, req)
