"""A check that travels with the artifact: ``python main.py pack ARTIFACT --out DIR``
(the command: :mod:`app.cli.serving_commands`).

DIR receives the artifact and its side files (an ONNX model's external data, OpenVINO's ``.bin``), its
manifest, ``samples.npz`` (evaluation inputs and the source model's outputs for them; with labels
when the data has them), ``pack.json`` (the accuracy budget, the build machine's CPU and instruction
sets, runtime versions, and the metrics the app measured here) and ``check.py``: one file that needs
only numpy and the artifact's runtime (onnxruntime for ``.onnx``, openvino for ``.xml``). Run as
``python check.py`` on the machine the artifact is deployed on, it prints the same metrics the app
computes (cosine mean/min, max abs error, relative L2, top-1 agreement for class scores) and that
machine's instruction sets, and exits 0 when the budget holds there, 1 when it does not.

Samples come from the data the manifest records (``--data``: the evaluation part when the artifact
was calibrated on it), else from the random inputs verification uses (``pack.json`` says which).
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from app.artifacts.manifest import load_manifest, manifest_path_of, source_of_manifest
from app.artifacts.placement import shown
from app.request import ModelSource
from app.artifacts.versions import tool_versions
from app.errors import BadInput
from app.machine.hardware import isa_record

DEFAULT_SAMPLES = 32
PACK_FILES = ("samples.npz", "pack.json", "check.py")
CHECKER = Path(__file__).resolve().parents[2] / "resources" / "pack_check.py"   # becomes DIR/check.py


# ---------------------------------------------------------------------------- manifest → what to run
def artifact_files(artifact: Path, manifest: dict) -> list[Path]:
    """The artifact and its side files, as the manifest lists them (beside the artifact): plain names
    (no folder), none of the names the pack writes itself, each a regular file (not a link, FIFO or
    device; :func:`app.artifacts.placement.copy_plain` checks again on the open file)."""
    entries = manifest.get("files") if isinstance(manifest.get("files"), list) else []
    names = [f.get("name") for f in entries if isinstance(f, dict) and f.get("name")]
    own = {*PACK_FILES, manifest_path_of(artifact).name}
    for n in names:
        if not isinstance(n, str) or n != Path(n).name or n in (".", "..") or n in own:
            raise BadInput(f"{artifact}: its manifest lists {shown(n)!r} as a side file, which is not a file name "
                           "pack copies (a plain name beside the artifact, not one of the pack's own files)")
    files = [artifact.parent / n for n in names] or [artifact]
    if artifact not in files:
        files.insert(0, artifact)
    for f in [*files, manifest_path_of(artifact)]:
        if f.is_symlink() or not f.is_file():
            what = "is a link" if f.is_symlink() else "is not a regular file" if f.exists() else "is not beside it"
            raise BadInput(f"{artifact}: its side file {shown(f.name)} {what}; pack copies only the files "
                           "themselves (put the file there, not a link)")
    return files


TRUST_FLAGS = (("arch", "--arch"), ("allow_pickle", "--allow-pickle"), ("trusted_globals", "--trust-global"),
               ("run_code_from_file", "--unsafe-run-code-from-file"))


def source_for_pack(manifest: dict, trust: ModelSource):
    """The source model and data ``pack`` runs: the path, signature and data from the manifest, and
    what runs code — ``--arch`` (and its arguments), ``--allow-pickle``, ``--trust-global``,
    ``--unsafe-run-code-from-file`` — from the command line only (``trust``), never from a file. A
    manifest that records trust the command line does not give is one line naming the flags."""
    try:
        source, data = source_of_manifest(manifest)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise BadInput(f"the manifest's source or data entry is malformed ({type(e).__name__}); convert the "
                       "artifact again") from None
    recorded = {"arch": source.arch, "allow_pickle": source.allow_pickle,
                "trusted_globals": source.trusted_globals, "run_code_from_file": source.run_code_from_file}
    missing = [flag for field, flag in TRUST_FLAGS if recorded[field] and not getattr(trust, field)]
    if missing:
        said = f" (it names --arch {shown(source.arch, 200)!r})" if source.arch and not trust.arch else ""
        raise BadInput(f"the source model {shown(source.path, 200)} was converted with {', '.join(missing)}{said}; "
                       "pack runs no code and trusts nothing a file names: give the flags on pack's command "
                       "line if you trust that code")
    return replace(source, arch=trust.arch, arch_kwargs=trust.arch_kwargs, allow_pickle=trust.allow_pickle,
                   trusted_globals=trust.trusted_globals, run_code_from_file=trust.run_code_from_file), data


def check_packable(artifact: Path) -> tuple[dict, str]:
    """The manifest of ``artifact`` and its runtime; one line (BadInput) when it cannot be packed."""
    if not artifact.is_file():
        raise BadInput(f"{artifact}: no such artifact file")
    manifest = load_manifest(artifact)  # one line when it is there but cannot be used (a FIFO, damaged)
    if manifest is None:
        raise BadInput(f"{artifact}: no manifest ({manifest_path_of(artifact).name}) beside it; pack needs the one "
                       "convert writes (source model, options, data)")
    from app.loaders.kinds import all_kinds

    target = str(manifest.get("target"))
    suffix = artifact.suffix.lower()
    packable = [k for k in all_kinds() if k.pack_runtime]  # each kind says the runtime pack's checker runs it in
    kind = next((k for k in packable if k.name == target and suffix in k.suffixes), None)
    if kind is None:
        names = " and ".join(f"{k.label} ({'/'.join(k.suffixes)})" for k in packable)
        raise BadInput(f"{artifact}: pack supports {names} artifacts, not {target!r} ({suffix or 'no extension'})")
    return manifest, kind.pack_runtime


def budget_of(manifest: dict) -> dict:
    """The accuracy budget ``check.py`` holds the artifact to: ``--accuracy-budget`` when the
    manifest has one, else verification's limit for its precision (int8: mean cosine ≥
    ``INT8_MIN_COSINE``; fp32/fp16/bf16: worst relative L2 ≤ ``REL_L2_LIMIT``)."""
    from app.accuracy.verify import INT8_MIN_COSINE, REL_L2_LIMIT

    precision = str(manifest.get("precision"))
    recorded = (manifest.get("accuracy_budget") or {}).get("budget")
    if recorded:
        from app.accuracy.budget import AccuracyBudget

        b = AccuracyBudget.parse(recorded)
        # check.py holds one figure: the budget's first part it measures (cosine, top-1 drop)
        measured = [p for p in b.parts if p.metric in ("cosine", "top1-drop")]
        if measured:
            p = measured[0]
            origin = f"--accuracy-budget {b}" + ("" if len(b.parts) == 1 else
                                                 f" (check.py measures its part {p} only)")
            if p.metric == "cosine":
                return {"metric": "cosine_mean", "op": ">=", "value": p.value, "from": origin}
            return {"metric": "top1_drop", "op": "<=", "value": p.value, "from": origin}
        # confident-agreement / kl: check.py does not compute them; it holds the int8 cosine warning instead
        return {"metric": "cosine_mean", "op": ">=", "value": INT8_MIN_COSINE,
                "from": f"the accuracy warning's cosine {INT8_MIN_COSINE} (check.py does not measure --accuracy-budget {b})"}
    if precision in REL_L2_LIMIT:
        return {"metric": "rel_l2_max", "op": "<=", "value": REL_L2_LIMIT[precision],
                "from": f"verification's {precision} limit"}
    where = "its evaluation on data" if manifest.get("evaluation") else "verification"
    return {"metric": "cosine_mean", "op": ">=", "value": INT8_MIN_COSINE,
            "from": f"the {precision} accuracy warning of {where} (cosine {INT8_MIN_COSINE})"}


# ---------------------------------------------------------------------------- the fenced child
def pack_job(payload: dict, progress=None, should_cancel=None) -> dict:
    """Load the source, take the samples, run source and artifact on them, and write DIR."""
    import numpy as np

    from app.accuracy.evaluation import compare_outputs, run_all
    from app.loaders.front_door import load_model, prepare_model
    from app.accuracy.verify import compare

    say = progress or (lambda stage, fraction=None: None)
    artifact, out, count = Path(payload["artifact"]), Path(payload["out"]), int(payload["samples"])
    manifest, source, data_source = payload["manifest"], payload["source"], payload["data"]
    say("load the source model", None)
    model = prepare_model(source)
    data, origin = _pack_samples(model, manifest, data_source, count)
    say(f"run the source on {len(data)} samples", None)
    reference = run_all(model, data, "the source")
    say(f"run {artifact.name} on them", None)
    got = run_all(load_model(artifact), data, "the artifact")
    evaluation = compare_outputs(reference, got, data)
    per_output = [compare(str(j), np.stack([r[j] for r in reference]), np.stack([g[j] for g in got]))
                  for j in range(len(reference[0]))]
    metrics = {"samples": evaluation.samples, "cosine_mean": evaluation.cosine_mean,
               "cosine_min": evaluation.cosine_min, "max_abs_err": max(m.max_abs_err for m in per_output),
               "rel_l2_mean": evaluation.rel_l2_mean, "rel_l2_max": evaluation.rel_l2_max,
               "top1_agreement": evaluation.top1_agreement, "top1_drop": evaluation.top1_drop}

    say("write the pack", None)
    arrays: dict[str, np.ndarray] = {}
    for i, (feeds, outs) in enumerate(zip(data.samples, reference)):
        for k, spec in enumerate(model.inputs):
            arrays[f"s{i}_in{k}"] = np.ascontiguousarray(feeds[spec.name])
        for j, o in enumerate(outs):
            arrays[f"s{i}_out{j}"] = np.ascontiguousarray(o)
        if data.labels is not None:
            arrays[f"s{i}_label"] = np.asarray(data.labels[i], dtype=np.int64)
    with open(out / "samples.npz", "wb") as f:
        np.savez(f, **arrays)
    versions = tool_versions()
    runtime = payload["runtime"]
    pack = {
        "format_version": 1,
        "artifact": artifact.name, "runtime": runtime, "target": manifest.get("target"),
        "precision": manifest.get("precision"), "files": payload["files"],
        "inputs": [s.name for s in model.inputs], "outputs": [s.name for s in model.outputs],
        "samples": dict(origin, count=len(data), labels=data.labels is not None),
        "budget": budget_of(manifest),
        "build_machine": {"isa": isa_record(), "manifest_isa": manifest.get("build_isa"),
                          "int8_for_cpu": (manifest.get("recorded") or {}).get("int8_for_cpu"),
                          "versions": dict({k: versions.get(k) for k in ("python", "platform", runtime)},
                                           numpy=np.__version__)},
        "build_metrics": metrics,
        "openvino_config": _openvino_config(manifest) if runtime == "openvino" else None,
        "source": {"path": (manifest.get("source") or {}).get("path"),
                   "sha256": (manifest.get("source") or {}).get("sha256")},
    }
    (out / "pack.json").write_text(json.dumps(pack, indent=2, default=str) + "\n")
    return {"pack": str(out), "samples": len(data), "metrics": metrics, "budget": pack["budget"],
            "sample_origin": origin["kind"]}


def _pack_samples(model, manifest: dict, data_source, count: int):
    """The samples a pack carries, and where they came from: the artifact's held-out data (its
    ``--eval-data``, else the part of ``--data`` it was not calibrated on), else random inputs."""
    from app.accuracy.data import held_out, load_data
    from app.model.inputs import make_feeds

    if data_source is not None:
        recorded = (manifest.get("recorded") or {}).get("data") or {}
        part = "all samples"
        if getattr(data_source, "eval_path", None) is not None:   # converted with --eval-data: judged on it
            data_source = replace(data_source, path=data_source.eval_path, eval_path=None)
        data = load_data(data_source, model.inputs, model.outputs)
        held = held_out(data, recorded, data_source.path) if recorded.get("source") else None
        if held is not None:
            data, part = held
        elif recorded.get("source") and recorded.get("same_folder") is not False:   # moved since: its split
            seed = int(recorded.get("split_seed", 0))
            data, part = data.split(seed)[1], f"the evaluation part (split seed {seed}; not calibrated on)"
        data = data.subset(list(range(min(count, len(data)))))
        origin = {"kind": "data", "source": str(data_source.path), "part": part, "describe": data.describe()}
    else:
        from app.accuracy.data import DataSet

        feeds = [make_feeds(model.inputs, seed=i) for i in range(count)]
        data = DataSet(Path("random"), "random", feeds)
        origin = {"kind": "random", "note": "the manifest records no --data: random inputs like verification's "
                                            "(app.model.inputs.make_feeds, seeds 0..N-1); they say whether the artifact "
                                            "computes the same function, not what a user loses on real data"}
    return data, origin


def _openvino_config(manifest: dict) -> dict:
    from app.runtimes.openvino import compile_config

    return compile_config(str(manifest.get("precision")))


# ---------------------------------------------------------------------------- the parent: what goes into DIR
def make_pack(artifact: Path, out: Path, *, samples: int, overwrite: bool, trust: ModelSource,
              progress=None) -> dict:
    """Write the pack into ``out``. This process copies the artifact, its side files and manifest (regular
    files only, never links) and ``check.py`` into a private work folder inside ``out``; the fenced job,
    which may write only its own folder in there, writes ``samples.npz`` and ``pack.json``; this process
    takes those two names (plain files) and renames everything into ``out`` — a link there is replaced,
    never written through. Without ``overwrite`` nothing that exists is replaced."""
    import shutil

    from app.artifacts import atomic_output as files, placement
    from app.jobs import InvalidResult, run_job

    manifest, runtime = check_packable(artifact)
    source, data = source_for_pack(manifest, trust)
    parts = artifact_files(artifact, manifest)
    names = [f.name for f in parts] + [manifest_path_of(artifact).name, *PACK_FILES]
    created = not out.exists()
    out = files.prepare_out_dir(out)
    work = files.work_dir(out)
    try:
        for f in [*parts, manifest_path_of(artifact)]:
            placement.copy_plain(f, work / f.name, "the artifact's file")
        placement.copy_plain(CHECKER, work / "check.py", "the checker")
        (work / "job").mkdir()
        result = run_job(pack_job,
                         {"artifact": str(work / artifact.name), "out": str(work / "job"), "samples": samples,
                          "manifest": manifest, "source": source, "data": data, "runtime": runtime,
                          "files": [f.name for f in parts]},
                         progress=progress, writable=[work / "job"])
        try:
            made = [placement.take_plain(work / "job", n) for n in ("samples.npz", "pack.json")]
            result = _pack_result(result, out)
        except ValueError as e:
            raise InvalidResult(f"the job's process sent an invalid result ({e}); nothing was kept") from None
        for path in made:
            os.replace(path, work / path.name)
        for name in names:
            placement.check_free(out / name, overwrite=overwrite)
        for name in names[len(parts):] + [f.name for f in parts[1:]] + [parts[0].name]:  # the artifact last
            placement.place(work / name, out / name, overwrite=overwrite)
    except BaseException:  # a failed pack leaves no folder it made
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
    finally:
        files.remove_work_dir(work)
    return result


def _pack_result(result, out: Path) -> dict:
    """The job's summary, checked to be what :func:`pack_job` returns (it is printed)."""
    number = (int, float)
    if not isinstance(result, dict) or not isinstance(result.get("metrics"), dict) \
            or not isinstance(result.get("budget"), dict) or not isinstance(result.get("samples"), int):
        raise ValueError("not a pack's summary")
    m, b = result["metrics"], result["budget"]
    if not all(isinstance(m.get(k), number) for k in ("cosine_mean", "cosine_min", "max_abs_err")) \
            or not isinstance(b.get("value"), number) \
            or not isinstance(m.get("top1_agreement"), (*number, type(None))):
        raise ValueError("not a pack's summary")
    budget = dict(b, metric=shown(b.get("metric"), 40), op=shown(b.get("op"), 4))
    return dict(result, pack=str(out), budget=budget, sample_origin=shown(result.get("sample_origin"), 20))
