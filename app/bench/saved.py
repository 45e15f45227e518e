"""Saved benchmark results (what ``bench --json`` / ``optimize --json`` / ``bench --sweep --json`` print,
kept in a file) read back by ``report`` and ``targets --measured``: their structure checked.

The file is read with :func:`app.artifacts.json_file.read_json_object` (never blocking, bounded); then
:func:`check_saved_result` refuses, in one line naming the file and the field, a result whose objects
and lists are not objects and lists. Figures are not checked here: each reader takes a figure that is
not a number as missing (:func:`number`).
"""

from __future__ import annotations

import math

from app.artifacts.json_file import check_fields, check_list_of

_BENCH = {"results": list, "machine": dict, "config": dict, "skipped": list, "notes": list}
_MACHINE = {"cpu": str, "arch": str, "isa": list, "onnxruntime_providers": list}
_SWEEP = {"grid": dict, "points": list, "proposals": list, "notes": list}


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
