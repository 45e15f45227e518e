"""The window's state without Qt (app/session.py): what it holds and the events it tells its views."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.request import ModelSource
from app.session import Session


def test_opening_another_model_forgets_the_last_one_and_tells_the_views():
    session, seen = Session(), []
    for name in ("model_forgotten", "model_loaded", "model_failed", "benchmark_finished", "sweep_finished",
                 "diagnosis_finished"):
        getattr(session.events, name).connect(lambda *args, name=name: seen.append((name, *args)))
    assert session.open(Path("a.pt"), allow_pickle=True, trusted_globals=["pkg.Config"])
    assert (session.path, session.allow_pickle, session.trusted_globals) == (Path("a.pt"), True, ("pkg.Config",))
    session.loaded({"format": "pickle"})
    session.benchmarked({"results": []})
    assert session.last_benchmark == {"results": []} and session.summary == {"format": "pickle"}
    assert not session.open(Path("a.pt"))                  # the same file again (e.g. now trusted): results kept
    assert session.last_benchmark == {"results": []} and not session.allow_pickle
    assert session.open(Path("b.onnx"))                    # another file: its results are gone
    assert session.last_benchmark is None
    session.failed("not a model")
    session.swept({"points": []})
    session.diagnosed("b.int8.onnx", {"ranking": []})
    assert seen == [("model_forgotten",), ("model_loaded", {"format": "pickle"}), ("benchmark_finished", {"results": []}),
                    ("model_forgotten",), ("model_failed", "not a model"), ("sweep_finished", {"points": []}),
                    ("diagnosis_finished", Path("b.int8.onnx"), {"ranking": []})]
    assert session.source(arch="m.py:Net", arch_kwargs={"width": 2}) == ModelSource(
        Path("b.onnx"), arch="m.py:Net", arch_kwargs=(("width", 2),))


def test_jobs_are_followed_by_key_and_the_last_end_is_told_once():
    from app.session import BENCHMARK, DONE, FAILED, RUNNING, JobKey

    session, seen = Session(), []
    session.events.job_changed.connect(lambda job: seen.append((str(job.key), job.state, job.message if job.ended else job.stage)))
    session.events.all_jobs_ended.connect(lambda: seen.append("all ended"))
    convert = JobKey.conversion("onnx", "int8")
    session.add_job(convert, "ONNX · INT8")
    session.add_job(BENCHMARK, "Benchmark")
    session.job_progressed(convert, "export", 0.5)
    assert session.jobs[convert].state == RUNNING and session.jobs_running
    session.job_ended(convert, FAILED, "verification failed")
    session.job_cancelling(convert)                          # an ended job is not cancelled again
    session.job_ended(BENCHMARK, DONE, "6 measurements")
    assert seen == [("convert onnx int8", RUNNING, "export"), ("convert onnx int8", FAILED, "verification failed"),
                    ("benchmark", DONE, "6 measurements"), "all ended"]
    assert session.job_counts() == {"done": 1, "failed": 1, "cancelled": 0} and not session.jobs_running


def test_outcomes_replace_a_rerun_of_the_same_target_and_precision(tmp_path):
    from types import SimpleNamespace

    from app.request import ConversionRequest

    session, seen = Session(), []
    session.events.outcome_added.connect(lambda outcome, replaced: seen.append((outcome.message, replaced)))
    request = ConversionRequest(ModelSource(Path("m.pt")), "onnx", "fp16")
    session.converted(ConversionRequest(ModelSource(Path("m.pt")), "onnx", "fp32"), message="first")
    session.converted(request, message="failed once")
    artifact = tmp_path / "m.fp16.onnx"
    artifact.write_bytes(b"onnx")
    session.converted(request, SimpleNamespace(artifact=artifact, verification=None, status="ok"))
    assert seen == [("first", None), ("failed once", None), ("", 1)]
    assert [o.precision for o in session.outcomes] == ["fp32", "fp16"] and session.artifacts() == [artifact]
    assert session.outcome_for("onnx", "fp16").result.status == "ok"
    session.open(Path("other.pt"))                           # another model: its outcomes go
    assert session.outcomes == []


def test_a_job_tells_how_long_it_ran_and_where_its_work_is_counted_how_long_is_left(monkeypatch):
    from types import SimpleNamespace

    import app.session
    from app.session import DONE, JobKey

    clock = SimpleNamespace(now=100.0)
    monkeypatch.setattr(app.session, "time", SimpleNamespace(monotonic=lambda: clock.now))
    session, key = Session(), JobKey("benchmark")
    job = session.add_job(key, "Benchmark")
    assert job.elapsed() is None and job.remaining() is None             # queued: no clock yet
    session.job_progressed(key, "load model", -1.0)
    clock.now = 110.0
    assert job.elapsed() == 10.0 and job.remaining() is None             # uncounted work: no estimate
    session.job_progressed(key, "batch 1: round 1 of 4", 0.0)            # counting starts at 110 s
    clock.now = 111.0
    session.job_progressed(key, "batch 1: round 2 of 4", 0.25)
    assert job.remaining() is None                                       # 1 s of counted work: too little to tell
    clock.now = 114.0
    session.job_progressed(key, "batch 1: round 3 of 4", 0.5)
    assert job.remaining() == 4.0                                        # half in 4 s: 4 s left
    session.job_progressed(key, "write", 0.1)                            # a new stage counts from its own start
    clock.now = 118.0
    session.job_progressed(key, "write", 0.2)
    assert job.remaining() == pytest.approx(4.0 * 0.8 / 0.1)
    session.job_ended(key, DONE)
    clock.now = 500.0
    assert job.elapsed() == 18.0 and job.remaining() is None              # ended: how long it took


def test_a_job_run_again_is_estimated_from_how_long_it_took_last_time(monkeypatch):
    from types import SimpleNamespace

    import app.session
    from app.session import CANCELLED, DONE, JobKey

    clock = SimpleNamespace(now=0.0)
    monkeypatch.setattr(app.session, "time", SimpleNamespace(monotonic=lambda: clock.now))
    session, key = Session(), JobKey.conversion("onnx", "int8")
    session.add_job(key, "ONNX · INT8")
    session.job_progressed(key, "verify", -1.0)
    clock.now = 12.0
    assert session.jobs[key].remaining() is None               # never ran before: no estimate
    session.job_ended(key, DONE)
    session.clear_jobs()
    again = session.add_job(key, "ONNX · INT8")                # the same conversion, run again
    session.job_progressed(key, "export", -1.0)
    clock.now = 17.0
    assert again.remaining() == 7.0                            # it took 12 s last time
    clock.now = 30.0
    assert again.remaining() is None                           # longer than last time: no guess
    session.job_ended(key, CANCELLED)
    assert session.took[key] == 12.0                           # a cancelled run says nothing of its length
    session.open(Path("other.onnx"))
    assert session.add_job(key, "ONNX · INT8").expected is None   # another model: its own times
