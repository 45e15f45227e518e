"""What the window is working on, without Qt: the source model the user opened and what they trusted
in it, its summary once inspected, and the last benchmark and sweep — with events the window's views
observe (``session.events.model_loaded.connect(fn)``), as napari's ``ViewerModel`` is observed by
its Qt widgets. The window drives it (``open``, ``loaded``, ``benchmarked`` …); the jobs themselves
run in child processes (:mod:`app.jobs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable



class Event:
    """Callbacks called, in the order they connected, with what :meth:`emit` is given."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []

    def connect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        for callback in list(self._callbacks):
            callback(*args)


@dataclass(frozen=True)
class SessionEvents:
    model_forgotten: Event = field(default_factory=Event)     # a different model is opened: drop its results
    model_loaded: Event = field(default_factory=Event)        # (summary: dict) the inspection's summary
    model_failed: Event = field(default_factory=Event)        # (message: str)
    benchmark_finished: Event = field(default_factory=Event)  # (result: dict) the bench --json object
    sweep_finished: Event = field(default_factory=Event)      # (result: dict) the bench --sweep --json object


@dataclass
class Session:
    """The source model, what the user trusted, and the last results of this window."""

    path: Path | None = None
    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()     # a pickle's globals the user approved in the dialog
    summary: dict | None = None               # the inspection summary (``inspect --json``)
    last_benchmark: dict | None = None        # what File ▸ Export Report… reports beside the artifacts
    last_sweep: dict | None = None            # its proposals go into "Export for serving"
    events: SessionEvents = field(default_factory=SessionEvents, repr=False)

    def open(self, path: Path, *, allow_pickle: bool = False, trusted_globals: tuple[str, ...] = ()) -> bool:
        """Make ``path`` the source (with what the user trusted); True when it is another file than
        before, whose results are then forgotten."""
        other = Path(path) != self.path
        if other:
            self.forget()
        self.path, self.allow_pickle, self.trusted_globals = Path(path), allow_pickle, tuple(trusted_globals)
        self.summary = None
        return other

    def forget(self) -> None:
        self.summary, self.last_benchmark = None, None
        self.events.model_forgotten.emit()

    def loaded(self, summary: dict) -> None:
        self.summary = summary
        self.events.model_loaded.emit(summary)

    def failed(self, message: str) -> None:
        self.events.model_failed.emit(message)

    def benchmarked(self, result: dict) -> None:
        self.last_benchmark = result
        self.events.benchmark_finished.emit(result)

    def swept(self, result: dict) -> None:
        self.last_sweep = result
        self.events.sweep_finished.emit(result)

    def inspection_payload(self, *, arch: str | None, arch_kwargs: dict) -> dict:
        """What the inspection child is given (:func:`app.jobs.inspect_job`)."""
        return {"path": str(self.path), "arch": arch, "arch_kwargs": arch_kwargs,
                "allow_pickle": self.allow_pickle, "trusted_globals": list(self.trusted_globals)}
