"""The manifest written beside every artifact (``NAME.manifest.json``): where it lies, and reading it."""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST_SUFFIX = ".manifest.json"


def manifest_path_of(artifact: Path) -> Path:
    """Where :func:`convert` writes the manifest of ``artifact`` (beside it)."""
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def read_manifest(artifact: Path) -> dict | None:
    """The manifest beside ``artifact`` as a dict; None when it is missing or unreadable."""
    try:
        data = json.loads(manifest_path_of(Path(artifact)).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
