"""Saved benchmark results (what ``bench --json`` / ``optimize --json`` / ``bench --sweep --json`` print,
kept in a file) read back by ``report`` and ``targets --measured``: their structure checked.

The file is read with :func:`app.artifacts.json_file.read_json_object` (never blocking, bounded); then
:func:`check_saved_result` refuses, in one line naming the file and the field, a result whose objects
and lists are not objects and lists. Figures are not checked here: each reader takes a figure that is
not a number as missing (:func:`number`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from app.artifacts.history import HISTORY_SUFFIX
from app.artifacts.json_file import SideFileError, check_fields, check_list_of, read_json_object
from app.artifacts.manifest import MANIFEST_SUFFIX

_BENCH = {"results": list, "machine": dict, "config": dict, "skipped": list, "notes": list}
_MACHINE = {"cpu": str, "arch": str, "isa": list, "onnxruntime_providers": list}
_SWEEP = {"grid": dict, "points": list, "proposals": list, "notes": list}
MAX_SAVED_FILES = 100              # JSON files looked at in one folder (the newest first)
MAX_SAVED_BYTES = 8 * 2**20        # a saved benchmark is well under 1 MB


def check_saved_result(data: dict, path, what: str = "benchmark result") -> None:
    """Refuse (:class:`~app.artifacts.json_file.SideFileError`) a saved benchmark or sweep result whose
    structure is not what this app writes."""
    check_fields(data, _SWEEP if data.get("kind") == "sweep" else _BENCH, path, what)
    check_fields(data.get("machine") or {}, _MACHINE, path, what, "machine.")
    for name in ("isa", "onnxruntime_providers"):
        check_list_of(data.get("machine") or {}, name, str, path, what, prefix="machine.")
    check_list_of(data, "skipped", dict, path, what)
    check_list_of(data, "notes", str, path, what)


def number(value) -> float | None:
    """A figure read from a file, or None where it is missing or is not one (text, a list, true, NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer past float's range
        return None
    return value if math.isfinite(value) else None


def latest_benchmark_for(artifacts: list[Path], folders: list[Path]) -> tuple[dict, Path, list[str]] | None:
    """The newest saved benchmark result (``bench --json`` kept in a ``*.json`` file, by the window or by
    hand) in ``folders`` that timed at least one of ``artifacts``: ``(result, its file, notes)``; None when
    there is none. Files that cannot be used are passed over (a saved result is untrusted JSON: read
    bounded, its structure checked)."""
    wanted = set()
    for a in artifacts:
        try:
            wanted.add(str(Path(a).resolve()))
        except (OSError, RuntimeError):
            continue
    candidates = []
    for folder in dict.fromkeys(Path(f) for f in folders):
        try:
            with os.scandir(folder) as entries:
                for e in entries:
                    name = e.name
                    if (name.endswith(".json") and not name.startswith(".") and not name.endswith(MANIFEST_SUFFIX)
                            and not name.endswith(HISTORY_SUFFIX) and not name.endswith(".sweep.json")):
                        try:
                            candidates.append((e.stat(follow_symlinks=False).st_mtime, Path(e.path)))
                        except OSError:
                            continue
        except OSError:
            continue
    notes = []
    for _mtime, path in sorted(candidates, key=lambda t: t[0], reverse=True)[:MAX_SAVED_FILES]:
        try:
            data = read_json_object(path, "benchmark result", max_bytes=MAX_SAVED_BYTES)
            if not isinstance(data.get("results"), list) or "machine" not in data:
                continue
            check_saved_result(data, path)
        except SideFileError as e:
            notes.append(f"skipped {path.name}: {str(e).removeprefix(f'{path}: ')}")
            continue
        rows = [r for r in data["results"] if isinstance(r, dict)]
        if any(isinstance(r.get("artifact"), str) and _resolved(r["artifact"]) in wanted for r in rows):
            return data, path, notes
    return None


def _resolved(path: str) -> str:
    try:
        return str(Path(path).resolve())
    except (OSError, RuntimeError, ValueError):
        return path


_ROW_TEXT = ("name", "runtime", "provider", "precision", "artifact", "note", "verdict")
_ROW_FLAGS = ("baseline", "noisy", "capped")
_ROW_NEEDED = ("p50_ms", "p90_ms", "p99_ms")


def plain_result(data: dict) -> dict:
    """A saved benchmark result as the window's charts can draw it, whatever the file said: rows without
    a name, a batch size or the p50/p90/p99 figures are dropped; every other figure that is not a number
    becomes missing (None), every text that is not text too; flags are true or false. (A saved file is
    untrusted: a chart must never meet a list where it formats a number.)"""
    rows = []
    for r in data.get("results") if isinstance(data.get("results"), list) else []:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str):
            continue
        batch = r.get("batch")
        if type(batch) is not int or batch < 1 or any(number(r.get(k)) is None or number(r.get(k)) < 0
                                                       for k in _ROW_NEEDED):
            continue
        row = {}
        for key, value in r.items():
            if key in _ROW_TEXT:
                row[key] = value if isinstance(value, str) else None
            elif key in _ROW_FLAGS:
                row[key] = value is True
            elif key == "batch":
                row[key] = batch
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                row[key] = number(value)
            else:
                row[key] = value if isinstance(value, str) else None
        if (row.get("p50_ci_low_ms") is None) != (row.get("p50_ci_high_ms") is None):
            row["p50_ci_low_ms"] = row["p50_ci_high_ms"] = None
        if (row.get("speedup_ci_low") is None) != (row.get("speedup_ci_high") is None):
            row["speedup_ci_low"] = row["speedup_ci_high"] = None
        rows.append(row)
    keep = {k: v for k, v in data.items() if k in ("machine", "config", "data")}
    notes = [n for n in data.get("notes") or [] if isinstance(n, str)] if isinstance(data.get("notes"), list) else []
    skipped = [s for s in data.get("skipped") or [] if isinstance(s, dict)] if isinstance(data.get("skipped"), list) else []
    return {**keep, "results": rows, "skipped": skipped, "notes": notes}
