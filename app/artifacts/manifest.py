"""The manifest written beside every artifact (``NAME.manifest.json``): where it lies, and reading it."""

from __future__ import annotations

from pathlib import Path

from app.artifacts.json_file import SideFileError, SideFileMissing, check_fields, check_list_of, read_json_object
from app.errors import BadInput
from app.model.specs import TensorSpec
from app.request import DataSource, ModelSource

MANIFEST_SUFFIX = ".manifest.json"


def manifest_path_of(artifact: Path) -> Path:
    """Where :func:`convert` writes the manifest of ``artifact`` (beside it)."""
    return artifact.with_name(artifact.name + MANIFEST_SUFFIX)


def read_manifest(artifact: Path) -> dict | None:
    """The manifest beside ``artifact`` as a dict; None when it is missing or unusable (not a regular
    file, too large, not JSON, a field of the wrong type: :func:`load_manifest` says which)."""
    try:
        return load_manifest(artifact)
    except SideFileError:
        return None


def load_manifest(artifact: Path) -> dict | None:
    """The manifest beside ``artifact``, its fields checked (:func:`check_manifest`); None when there is
    none. One line (:class:`~app.artifacts.json_file.SideFileError`, a BadInput naming the file and,
    where it is one field, the field) when it is there but cannot be used; reading never blocks."""
    path = manifest_path_of(Path(artifact))
    try:
        data = read_json_object(path, "manifest")
    except SideFileMissing:
        return None
    check_manifest(data, path)
    return data


_SPEC = {"name": str, "dtype": str, "shape": list, "example": list}
_TOP = {"artifact": str, "files": list, "target": str, "precision": str, "status": str, "source": dict, "inputs": list,
        "outputs": list, "options": dict, "recorded": dict, "tools": dict, "build_isa": dict, "verdict": dict,
        "verification": dict, "evaluation": dict, "accuracy_budget": dict, "warnings": list}
_OPTIONS = {"inputs": list, "dynamic": list, "arch": str, "arch_kwargs": dict, "allow_pickle": bool,
            "trusted_globals": list, "run_code_from_file": bool, "data": dict, "calibration": str, "tokenizer": str,
            "normalize": str}


def check_manifest(data: dict, path) -> None:
    """Refuse (one line naming the file and the field) a manifest whose structure is not what ``convert``
    writes: each object an object, each list a list, names and paths strings, so that ``pack``,
    ``evaluate``, ``report`` and the loaders can walk it. Figures (sizes, seconds, cosines) are not
    checked here: every reader shows a figure that is not a number as missing."""
    what = "manifest"
    check_fields(data, _TOP, path, what)
    for name in ("inputs", "outputs"):
        check_list_of(data, name, dict, path, what, _SPEC)
    check_list_of(data, "warnings", str, path, what)
    check_fields(data.get("source") or {}, {"path": str, "sha256": str, "format": str}, path, what, "source.")
    opts = data.get("options") or {}
    check_fields(opts, _OPTIONS, path, what, "options.")
    check_list_of(opts, "inputs", dict, path, what, _SPEC)
    _require_names(opts.get("inputs"), path, "options.inputs")
    check_list_of(opts, "trusted_globals", str, path, what)
    for i, d in enumerate(opts.get("dynamic") or []):
        if not (isinstance(d, list) and len(d) == 3 and isinstance(d[0], str) and type(d[1]) is int
                and isinstance(d[2], (str, type(None)))):
            raise SideFileError(f"{path}: field options.dynamic[{i}] is not [input name, axis, label]; this "
                                "manifest is damaged or was not written by this app")
    check_fields(opts.get("data") or {}, {"path": str, "tokenizer": str, "normalize": str, "limit": int,
                                           "eval_path": str}, path, what, "options.data.")
    if opts.get("data") and not opts["data"].get("path"):
        raise SideFileError(f"{path}: field options.data has no path; this manifest is damaged")
    check_list_of(data.get("verification") or {}, "checks", str, path, what)
    recorded = data.get("recorded") or {}
    check_fields(recorded, {"data": dict, "delegation": dict}, path, what, "recorded.")
    check_fields(recorded.get("data") or {}, {"source": str, "split_seed": int, "evaluation_source": str,
                                              "same_folder": bool, "calibration_samples": int,
                                              "evaluation_samples": int}, path, what, "recorded.data.")
    check_fields(data.get("accuracy_budget") or {}, {"budget": str, "rounds": list, "float_nodes": list}, path,
                 what, "accuracy_budget.")


def _require_names(specs, path, field: str) -> None:
    for i, s in enumerate(specs or []):
        if not s.get("name"):
            raise SideFileError(f"{path}: field {field}[{i}] has no name; this manifest is damaged or was not "
                                "written by this app")


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
                          data.get("normalize") or opts.get("normalize"), int(data.get("limit") or 2000),
                          Path(data["eval_path"]) if data.get("eval_path") else None)
    return model, data
