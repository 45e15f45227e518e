"""The manifest written beside every artifact (``NAME.manifest.json``): where it lies, and reading it."""

from __future__ import annotations

import json
from pathlib import Path
from app.errors import BadInput
from app.model.specs import TensorSpec
from app.request import DataSource, ModelSource

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


def trust_of(opts: dict, source: dict) -> dict:
    """What the user trusted in the source, as :class:`~app.request.ModelSource` fields, from a manifest's
    options: ``--allow-pickle``, each ``--trust-global NAME`` (a pickled module needs them to load again).
    Manifests written before ``allow_pickle`` was recorded: a pickled source (its format) needed it."""
    names = opts.get("trusted_globals")
    names = [str(n) for n in names] if isinstance(names, list) else []
    allow = opts.get("allow_pickle")
    if not isinstance(allow, bool):
        allow = source.get("format") == "pickle" or bool(names)
    return {"allow_pickle": allow, "trusted_globals": tuple(names),
            "run_code_from_file": opts.get("run_code_from_file") is True}


def source_of_manifest(manifest: dict, *, placeholder: str | None = None):
    """The :class:`~app.request.ModelSource` a manifest's artifact was converted from and its
    :class:`~app.request.DataSource` (None without ``--data``). A manifest without the source's path:
    ``placeholder`` stands for it, or without one, :class:`~app.errors.BadInput`."""
    opts = manifest.get("options") or {}
    source = manifest.get("source") or {}
    if not source.get("path") and placeholder is None:
        raise BadInput("the manifest does not record the source model's path")
    model = ModelSource(Path(source.get("path") or placeholder),
                        inputs=tuple(TensorSpec.from_json(s) for s in opts.get("inputs") or []),
                        dynamic=tuple((d[0], int(d[1]), d[2]) for d in opts.get("dynamic") or []),
                        arch=opts.get("arch"), arch_kwargs=tuple((opts.get("arch_kwargs") or {}).items()),
                        **trust_of(opts, source))
    # older manifests: a flat "calibration"/"tokenizer" where "data" now holds the DataSource
    data = opts.get("data") or ({"path": opts["calibration"]} if opts.get("calibration") else None)
    if data:
        tokenizer = data.get("tokenizer") or opts.get("tokenizer")
        data = DataSource(Path(data["path"]), Path(tokenizer) if tokenizer else None,
                          data.get("normalize") or opts.get("normalize"), int(data.get("limit") or 2000))
    return model, data
