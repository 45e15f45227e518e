"""What was made from a model before: the artifacts whose manifests name it as their source (made by the
window or by ``python main.py convert``), and the window's run history kept beside them.

Both are read from files anyone could have put in an output folder, so both are untrusted JSON: each
is read with :func:`~app.artifacts.json_file.read_json_object` (never blocking, size-capped, nesting
bounded; nothing in it is ever run), at most :data:`MAX_MANIFESTS` manifests a folder, and a file
that cannot be used is skipped with a note saying why, never raised.

- :func:`artifacts_for` — the artifacts in a folder made from a model: its manifest's recorded source
  is this file (same resolved path) and, where the manifest records the source's SHA-256, the file
  still has that content (an artifact of an earlier version of the file is left out, with a note).
- :func:`read_runs` / :func:`record_run` — the run history: one JSON file per model in a folder the
  caller owns (the window: beside its settings, so an output folder holds only what the user asked
  for), named by the model's file name and a hash of its full path (``cnn.onnx.1f2e3d4c5b6a.history.json``);
  each Convert or Benchmark run of the window one entry (when, what kind, the output folder, each
  artifact with its verdict, the benchmark's result), the newest :data:`MAX_RUNS` kept.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.artifacts.atomic_output import atomic_write_text, sha256
from app.artifacts.json_file import SideFileError, SideFileMissing, read_json_object
from app.artifacts.manifest import MANIFEST_SUFFIX, check_manifest

MAX_MANIFESTS = 200                 # manifests read from one folder (the newest first)
MAX_MANIFEST_BYTES = 4 * 2**20      # a manifest is a few kB
MAX_HISTORY_BYTES = 16 * 2**20      # a run with its benchmark is tens of kB
MAX_RUNS = 30                       # runs kept per model and folder
HISTORY_SUFFIX = ".history.json"
HISTORY_VERSION = 1


@dataclass(frozen=True)
class FoundArtifact:
    """An artifact on disk made from the model: its path, its manifest (structure checked by
    :func:`~app.artifacts.manifest.check_manifest`) and when the manifest was written (seconds since the
    epoch: the time it was made)."""

    artifact: Path
    manifest: dict
    written: float

    @property
    def when(self) -> str:
        """``2025-05-05 14:03`` (local time)."""
        return when_text(self.written)


@dataclass
class Found:
    """What :func:`artifacts_for` found: the artifacts, newest first, and a note for each manifest it
    left out (unreadable or damaged, an earlier version of the model, its artifact gone)."""

    artifacts: list[FoundArtifact] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def merge(self, other: "Found") -> "Found":
        """Both, one entry per artifact (the first seen wins)."""
        seen = {a.artifact for a in self.artifacts}
        self.artifacts += [a for a in other.artifacts if a.artifact not in seen]
        self.notes += [n for n in other.notes if n not in self.notes]
        return self


def when_text(seconds: float) -> str:
    return _dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except (OSError, RuntimeError, ValueError):
        return False


class _SourceHash:
    """The model file's SHA-256, computed once and only when a manifest asks for it."""

    def __init__(self, path: Path) -> None:
        self.path, self._value = Path(path), None

    def value(self) -> str | None:
        if self._value is None:
            try:
                self._value = sha256(self.path) if self.path.is_file() else ""
            except OSError:
                self._value = ""
        return self._value or None


def _manifests_in(folder: Path) -> tuple[list[Path], list[str]]:
    """The manifest files directly in ``folder``, newest first, at most :data:`MAX_MANIFESTS`."""
    try:
        with os.scandir(folder) as entries:
            found = []
            for entry in entries:
                if entry.name.endswith(MANIFEST_SUFFIX) and not entry.name.startswith("."):
                    try:
                        found.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
                    except OSError:
                        continue
    except FileNotFoundError:
        return [], []
    except OSError as e:
        return [], [f"{folder}: cannot list this folder ({e.strerror or type(e).__name__})"]
    found.sort(key=lambda t: t[0], reverse=True)
    notes = []
    if len(found) > MAX_MANIFESTS:
        notes.append(f"{folder}: {len(found)} manifests; only the newest {MAX_MANIFESTS} were read")
    return [p for _, p in found[:MAX_MANIFESTS]], notes


def read_found(manifest_path: Path, model_path: Path, source_hash=None) -> tuple[FoundArtifact | None, str | None]:
    """The artifact the manifest at ``manifest_path`` describes, if it was made from ``model_path``:
    ``(found, None)``; ``(None, note)`` when it cannot be used (the note says why); ``(None, None)``
    when it is another model's."""
    manifest_path = Path(manifest_path)
    try:
        data = read_json_object(manifest_path, "manifest", max_bytes=MAX_MANIFEST_BYTES)
        check_manifest(data, manifest_path)
        written = os.stat(manifest_path).st_mtime
    except SideFileMissing:
        return None, f"{manifest_path.name}: no longer on disk"
    except SideFileError as e:
        return None, f"skipped {manifest_path.name}: {_after_path(str(e), manifest_path)}"
    except OSError as e:
        return None, f"skipped {manifest_path.name}: {e.strerror or type(e).__name__}"
    source = data.get("source") or {}
    if not source.get("path") or not _same_file(Path(source["path"]), model_path):
        return None, None
    name = manifest_path.name[: -len(MANIFEST_SUFFIX)]
    if data.get("artifact") != name or not isinstance(data.get("target"), str) \
            or not isinstance(data.get("precision"), str):
        return None, (f"skipped {manifest_path.name}: it does not describe the file {name} beside it (its "
                      "artifact, target or precision is missing or another)")
    recorded = source.get("sha256")
    if recorded:
        hasher = source_hash or _SourceHash(model_path)
        if hasher.value() is not None and hasher.value() != recorded:
            return None, (f"left out {name}: made from an earlier version of {Path(model_path).name} "
                          "(the file has changed since)")
    artifact = manifest_path.with_name(name)
    if not os.path.lexists(artifact):
        return None, f"left out {name}: its manifest is there but the artifact is no longer on disk"
    return FoundArtifact(artifact, data, written), None


def artifacts_for(model_path: str | os.PathLike, out_dir: str | os.PathLike | None) -> Found:
    """The artifacts in ``out_dir`` (None: the model's own folder) made from ``model_path``, newest
    first, read from their manifests; a manifest that cannot be used is left out with a note."""
    model_path = Path(model_path)
    folder = Path(out_dir) if out_dir is not None else model_path.parent
    paths, notes = _manifests_in(folder)
    found, hasher = Found(notes=notes), _SourceHash(model_path)
    for path in paths:
        item, note = read_found(path, model_path, hasher)
        if item is not None:
            found.artifacts.append(item)
        elif note:
            found.notes.append(note)
    return found


def _after_path(message: str, path: Path) -> str:
    """A side-file error without the path it starts with (the note names the file already)."""
    head = f"{path}: "
    return message[len(head):] if message.startswith(head) else message


# ---------------------------------------------------------------------------- run history
def history_path(history_dir: str | os.PathLike, model_path: str | os.PathLike) -> Path:
    """Where the run history of ``model_path`` lies in ``history_dir``: ``cnn.onnx.1f2e3d4c5b6a.history.json``
    (the hash tells two models of one name apart; the name, kept to safe characters, says whose it is)."""
    import hashlib
    import re

    full = str(Path(model_path).resolve())
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(model_path).name)[:80]
    return Path(history_dir) / f"{name}.{hashlib.sha256(full.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}{HISTORY_SUFFIX}"


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _run_of(data, model_path: Path) -> dict | None:
    """One run as recorded, its fields checked (a run of another model, or not shaped like one: None)."""
    if not isinstance(data, dict) or not _text(data.get("id")) or not _text(data.get("time")):
        return None
    if data.get("kind") not in ("convert", "benchmark") or not _text(data.get("model")):
        return None
    if not _same_file(Path(data["model"]), model_path):
        return None
    artifacts = []
    for a in data.get("artifacts") if isinstance(data.get("artifacts"), list) else []:
        if not isinstance(a, dict) or not _text(a.get("target")) or not _text(a.get("precision")):
            continue
        artifacts.append({"target": a["target"], "precision": a["precision"],
                          "artifact": _text(a.get("artifact")),
                          "verdict": a.get("verdict") if isinstance(a.get("verdict"), dict) else None})
    bench = data.get("benchmark") if isinstance(data.get("benchmark"), dict) else None
    return {"id": data["id"], "time": data["time"], "kind": data["kind"], "model": data["model"],
            "folder": _text(data.get("folder")), "artifacts": artifacts, "benchmark": bench}


def read_runs(history_dir: str | os.PathLike, model_path: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """The runs of ``model_path`` recorded in ``history_dir``, oldest first, and notes (a damaged history
    file is one note and no runs; a run not shaped like one is left out)."""
    path = history_path(history_dir, model_path)
    try:
        data = read_json_object(path, "run history", max_bytes=MAX_HISTORY_BYTES)
    except SideFileMissing:
        return [], []
    except SideFileError as e:
        return [], [f"skipped the run history {path.name}: {_after_path(str(e), path)}"]
    raw = data.get("runs") if isinstance(data.get("runs"), list) else []
    runs = [r for r in (_run_of(item, Path(model_path)) for item in raw) if r is not None]
    notes = [f"{path.name}: {len(raw) - len(runs)} entries are not runs of this model; left out"] \
        if len(runs) < len(raw) else []
    return runs, notes


def new_run(kind: str, model_path: str | os.PathLike, folder: str | os.PathLike, artifacts: list[dict],
            benchmark: dict | None = None, *, now: _dt.datetime | None = None) -> dict:
    """A run to record: ``kind`` ``convert`` or ``benchmark``; ``artifacts``: ``{"target", "precision",
    "artifact" (its path, None when none was written), "verdict" (``Verdict.to_json()``)}`` each;
    ``benchmark``: the ``bench --json`` object of a benchmark run."""
    now = now or _dt.datetime.now()
    return {"id": uuid.uuid4().hex[:12], "time": now.isoformat(timespec="seconds"), "kind": kind,
            "model": str(Path(model_path).resolve()), "folder": str(Path(folder).resolve()),
            "artifacts": [{"target": a["target"], "precision": a["precision"],
                           "artifact": str(a["artifact"]) if a.get("artifact") else None,
                           "verdict": a.get("verdict")} for a in artifacts],
            "benchmark": benchmark}


def record_run(history_dir: str | os.PathLike, model_path: str | os.PathLike, run: dict) -> Path:
    """Add ``run`` (:func:`new_run`) to the history of ``model_path`` in ``history_dir`` (made if need be), keeping the newest
    :data:`MAX_RUNS`; written whole through a temporary file (a reader never sees half of it). A damaged
    history file is replaced by one holding this run."""
    path = history_path(history_dir, model_path)
    Path(history_dir).mkdir(parents=True, exist_ok=True)
    try:   # entries this version does not read are kept as they are
        data = read_json_object(path, "run history", max_bytes=MAX_HISTORY_BYTES)
        runs = [r for r in data.get("runs") or [] if isinstance(r, dict)] if isinstance(data.get("runs"), list) else []
    except SideFileError:
        runs = []
    runs = (runs + [run])[-MAX_RUNS:]
    text = json.dumps({"format_version": HISTORY_VERSION, "model": str(Path(model_path).resolve()), "runs": runs},
                      indent=1, default=str)
    return atomic_write_text(path, text)
