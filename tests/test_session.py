"""The window's state without Qt (app/session.py): what it holds and the events it tells its views."""

from __future__ import annotations

from pathlib import Path

from app.request import ModelSource
from app.session import Session


def test_opening_another_model_forgets_the_last_one_and_tells_the_views():
    session, seen = Session(), []
    for name in ("model_forgotten", "model_loaded", "model_failed", "benchmark_finished", "sweep_finished"):
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
    assert seen == [("model_forgotten",), ("model_loaded", {"format": "pickle"}), ("benchmark_finished", {"results": []}),
                    ("model_forgotten",), ("model_failed", "not a model"), ("sweep_finished", {"points": []})]
    assert session.source(arch="m.py:Net", arch_kwargs={"width": 2}) == ModelSource(
        Path("b.onnx"), arch="m.py:Net", arch_kwargs=(("width", 2),))
