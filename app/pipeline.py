"""convert(request, work=…): load → build (with the exporter fallback) → verify → evaluate on data → judge
→ record the manifest, all inside a work folder the caller made (:mod:`app.jobs` prepares the output
folder and places the files: one owner of the output).

The same function runs behind ``python main.py convert`` and behind every job in the window (in the
job's fenced child); it reports progress through a callback and checks ``should_cancel`` between stages.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from app.accuracy.budget import AccuracyBudget, meet_budget
from app.accuracy.data import SAME_FOLDER_WARNING, DataSet, load_data, load_eval_data
from app.accuracy.evaluation import Evaluation, compare_outputs, run_all
from app.accuracy.verdict import Verdict, verdict_of
from app.accuracy.verify import INT8_MIN_COSINE, Verification, vanishing_text, verify_artifact
from app.artifacts import atomic_output as files, placement
from app.artifacts.manifest import manifest_path_of
from app.artifacts.versions import tool_versions
from app.errors import BadInput, BudgetUnmet, ConversionFailed, StudioError, VerificationFailed, describe, first_line
from app.loaders.front_door import prepare_model
from app.machine.hardware import isa_record
from app.model.inputs import export_sizes
from app.model.kinds import model_suffixes
from app.model.loaded import LoadedModel
from app.request import ConversionRequest, DataSource
from converters.base import ConversionContext, all_converters, get_converter, options_of
from converters.options import ACCURACY_BUDGET, MAX_FLOAT_NODES, MIN_SPEEDUP, SEED

Progress = Callable[[str, float | None], None]


@dataclass
class ConversionResult:
    """What a finished job produced (also the CLI's ``--json`` output)."""

    target: str
    precision: str
    status: str                       # ok | failed | handoff
    artifact: Path | None
    files: list[Path] = field(default_factory=list)
    size_bytes: int = 0
    seconds: float = 0.0
    verification: Verification | None = None
    warnings: list[str] = field(default_factory=list)
    manifest: Path | None = None
    message: str = ""
    evaluation: Evaluation | None = None     # on the evaluation part of --data
    accuracy_budget: dict | None = None      # --accuracy-budget: rounds, float nodes, latency
    delegation: dict | None = None           # on-device targets: which operators run in the accelerated backend
    data: dict | None = None                 # the manifest's data record: what calibrated, what evaluated

    @property
    def verdict(self) -> Verdict:
        """Passed, passed with accuracy loss or failed, with the reason and the figure that decided it
        (:func:`app.accuracy.verdict.verdict_of`): what every view, the report and the manifest show."""
        return verdict_of(self.status, self.precision,
                          self.verification.to_json() if self.verification is not None else None,
                          self.evaluation.to_json() if self.evaluation is not None else None, self.accuracy_budget)

    def to_json(self) -> dict:
        v = self.verification
        return {
            "artifact": str(self.artifact) if self.artifact else None,
            "files": [str(f) for f in self.files],
            "target": self.target, "precision": self.precision, "status": self.status,
            "verdict": self.verdict.to_json(),
            "size_bytes": self.size_bytes, "seconds": round(self.seconds, 3),
            "verification": None if v is None else {
                "max_abs_err": v.max_abs_err, "rel_l2": v.rel_l2, "cosine": v.cosine,
                "top1_agreement": v.top1_agreement, "passed": v.passed, "enforced": v.enforced,
                "checks": v.checks, "failure": v.failure, "blind": v.blind},
            "warnings": self.warnings, "manifest": str(self.manifest) if self.manifest else None,
            "message": self.message,
            "evaluation": self.evaluation.to_json() if self.evaluation else None,
            "accuracy_budget": self.accuracy_budget,
            "delegation": self.delegation,
            "data": self.data,
        }


def artifact_path(request: ConversionRequest) -> Path:
    """Where :func:`convert` places the request's primary artifact (to ask before replacing it)."""
    source = Path(request.source.path)
    out_dir = Path(request.out_dir) if request.out_dir else source.parent
    return out_dir / get_converter(request.target)().artifact_name(model_stem(source), request.precision)


def check_result(result, work: Path, request) -> str | None:
    """Why a conversion job's ``result`` cannot be placed (None when it can): every file must be a plain
    file directly in ``work`` named as the converter declares for this request (the primary artifact
    first), and the manifest the primary's."""
    if not isinstance(result, ConversionResult) or result.manifest is None or not isinstance(result.files, list):
        return "not a conversion's"
    paths = [*result.files, result.manifest]
    if not result.files or not all(isinstance(f, (str, os.PathLike)) for f in paths):
        return "not a conversion's"
    paths = [Path(f) for f in paths]
    primary = artifact_path(request).name
    declared = set(get_converter(request.target)().declared_files(model_stem(Path(request.source.path)),
                                                                  request.precision))
    allowed = declared | {manifest_path_of(Path(primary)).name}
    for path in paths:
        if path.parent != Path(work) or not placement.plain_file(path):
            return f"a file outside its work folder: {placement.shown(path, 200)}"
        if path.name not in allowed:
            return f"a file this conversion does not write: {placement.shown(path.name)}"
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        return "a file named twice"
    if names[0] != primary or names[-1] != manifest_path_of(Path(primary)).name:
        return f"not this conversion's artifact first: {placement.shown(names[0])}"
    return None


def model_size(converter, source: Path, precision: str, produced: list[Path]) -> int:
    """The bytes of the files that make up the model (.onnx + .onnx.data, .xml + .bin, the .pte alone):
    not the hand-off files written beside it (an ExecuTorch program's samples and README)."""
    own = set(converter.model_files(model_stem(source), precision))
    return sum(p.stat().st_size for p in produced if p.name in own or p == produced[0])


def output_folder(request: ConversionRequest) -> Path:
    """Where the request's artifacts go: ``--out``, else beside the model."""
    return Path(request.out_dir) if request.out_dir else Path(request.source.path).parent


def convert(request: ConversionRequest, progress: Progress | None = None,
            should_cancel: Callable[[], bool] | None = None, *, work: Path) -> ConversionResult:
    """Run one conversion into ``work``, a work folder the caller made inside the output folder, and
    return what it wrote there; the caller places the files (:func:`app.jobs.run_conversion`, or
    :func:`app.jobs.convert_in_process`). Raises :class:`StudioError` subclasses on failure.

    The steps: load, :func:`build` (with the exporter fallback, verifying each build), evaluate on
    ``--data`` (and meet the accuracy budget), :func:`judge`, :func:`record` the manifest."""
    progress = progress or (lambda stage, fraction=None: None)
    should_cancel = should_cancel or (lambda: False)
    started = time.perf_counter()
    converter_cls = get_converter(request.target)
    source_path = Path(request.source.path)
    progress("load model", None)
    source_hash = files.sha256(source_path) if source_path.is_file() else None
    model = prepare_model(request.source)
    converter_cls.check(model.format, request.precision)
    converter = converter_cls()
    calibration, evaluation = split_data(request.data, model, SEED.of(request), progress)
    budget = _budget_of(request, evaluation)

    ctx = ConversionContext(request=request, model=model, inputs=list(model.inputs),
                            export_inputs=export_sizes(model.inputs), work_dir=Path(work),
                            artifact_name=converter.artifact_name(model_stem(source_path), request.precision),
                            progress=progress, should_cancel=should_cancel, warnings=list(model.warnings),
                            calibration=calibration,
                            # the budget loop rebuilds from the fp32 ONNX; automatic ONNX int8 times itself against it
                            keep_reference=budget is not None or (request.target == "onnx" and
                                                                  request.precision == "int8" and evaluation is not None))
    same_folder = data_record(request, calibration, evaluation).get("warning")
    if same_folder:   # loud: in the warnings (CLI, --json, manifest, window) and the manifest's data record
        ctx.warnings.append(same_folder)
    produced, verification = build(converter, ctx)
    if verification.blind:
        ctx.warnings.append(verification.blind)
    scores = budget_report = None
    if evaluation is not None and (verification.passed or not verification.enforced):
        produced, verification, scores, budget_report = _evaluate_on_data(converter, ctx, produced, verification,
                                                                          calibration, evaluation, budget)
    status = judge(ctx, verification, scores, budget, budget_report)
    result = ConversionResult(request.target, request.precision, status, produced[0], produced,
                              model_size(converter, source_path, request.precision, produced),
                              time.perf_counter() - started,
                              verification, ctx.warnings, None, evaluation=scores,
                              accuracy_budget=budget_report, message=ctx.record.get("handoff_message", ""),
                              delegation=ctx.record.get("delegation"), data=ctx.record.get("data"))
    if status == "failed" and not request.keep_failed:
        raise VerificationFailed(f"verification failed: {verification.failure} (nothing written; "
                                 "--keep-failed keeps the artifact for inspection)")
    if status == "unmet" and budget_report.get("too_slow") and not request.keep_failed:
        # never an int8 artifact slower than fp32 (or below --min-speedup) as the loop's answer
        error = BudgetUnmet(f"accuracy budget {budget} not met: {budget_report['unmet_reason']}, the fp32 "
                            f"({budget_report['fp32_runtime']}) takes {budget_report['fp32_latency_ms']:.3f} ms "
                            "(nothing written; --keep-failed keeps the most accurate round for inspection)")
        error.details = {"accuracy_budget": budget_report}
        raise error
    ctx.stage("write", None)
    result.manifest = record(request, model, source_hash, result, ctx.record)
    result.seconds = time.perf_counter() - started
    return result


def build(converter, ctx) -> tuple[list[Path], Verification]:
    """Build the artifact into ``ctx.work_dir`` and verify it; where its exporter's ONNX fails and the
    other exporter could build it, build with that one too and keep the better."""
    produced, verification = _build_and_verify(converter, ctx)
    if not verification.passed and _other_exporter(ctx):
        produced, verification = _try_other_exporter(converter, ctx, produced, verification)
    return produced, verification


def _evaluate_on_data(converter, ctx, produced: list[Path], verification: Verification, calibration: DataSet,
                      evaluation: DataSet, budget) -> tuple[list[Path], Verification, Evaluation, dict | None]:
    """Evaluate the artifact on the evaluation part of ``--data`` (recorded in the manifest); with an
    accuracy budget, keep the worst nodes in float until it is met (and verify the artifact again)."""
    request = ctx.request
    ctx.stage(f"evaluate on {len(evaluation)} data samples", None)
    reference = run_all(ctx.model, evaluation, "the source", ctx.counted("evaluate: the source"))
    artifact = converter.load_artifact(produced[0])
    scores = compare_outputs(reference, run_all(artifact, evaluation, "the artifact",
                                                ctx.counted("evaluate: the artifact")), evaluation)
    ctx.record["data"] = data_record(request, calibration, evaluation)
    budget_report = None
    if budget is not None:
        budget.check_scores(scores)     # a figure these outputs and data cannot give (no classifier, no confident call)
        produced, scores, budget_report = meet_budget(converter, ctx, produced, scores, evaluation, reference,
                                                      budget, MAX_FLOAT_NODES.of(request), MIN_SPEEDUP.of(request))
        if budget_report["best_round"]:   # another quantizer or float nodes: verify what is kept
            ctx.stage("verify", None)
            verification = _verify(ctx, produced, converter)
    elif request.target == "onnx" and request.precision == "int8" and ctx.reference_onnx is not None:
        _speed_against_fp32(converter, ctx, produced[0], evaluation)
    return produced, verification, scores, budget_report


def _speed_against_fp32(converter, ctx, artifact: Path, evaluation: DataSet) -> None:
    """Automatic ONNX int8 (no budget): time it against the fp32 ONNX the quantizer read, as the budget loop
    times its rounds; recorded (``recorded.speed_vs_fp32``), and a warning when it runs slower than that fp32
    (ONNX Runtime's u8×u8 convolutions ran ~9× slower than its u8×s8 ones on an AVX2-only CPU)."""
    from app.accuracy.budget import measure_pair

    ctx.stage("time the int8 artifact against the fp32 ONNX", None)
    feeds = evaluation.samples[0]
    try:
        fp32, int8 = (t["p50_ms"] for t in measure_pair(converter.load_artifact(ctx.reference_onnx).run,
                                                          converter.load_artifact(artifact).run, feeds))
    except Exception as e:  # noqa: BLE001 - a figure for the manifest: the artifact stands without it
        ctx.record["speed_vs_fp32"] = {"error": first_line(e)}
        return
    ctx.record["speed_vs_fp32"] = record = {"int8_ms": round(int8, 4), "fp32_ms": round(fp32, 4),
                                            "speedup": round(fp32 / int8, 3) if int8 > 0 else None,
                                            "fp32_runtime": converter.fp32_runtime}
    warning = slower_than_fp32_warning(record, ctx.record.get("int8_weights_type"))
    if warning:
        ctx.warnings.append(warning)


def slower_than_fp32_warning(record: dict, weights: str | None) -> str | None:
    """One line when the int8 artifact runs slower than its fp32 ONNX on this CPU (``record``:
    ``recorded.speed_vs_fp32``); None when it is faster or the figure is missing."""
    speedup = record.get("speedup")
    if not speedup or speedup >= 1:
        return None
    why = (" (uint8 weights: ONNX Runtime's u8×u8 kernels are slow on this CPU)" if weights == "uint8" else "")
    return (f"speed: this int8 artifact runs at {speedup:.2f}× its fp32 ONNX on this CPU ({record['int8_ms']:.2f} ms "
            f"against {record['fp32_ms']:.2f} ms){why} — --accuracy-budget searches faster settings and never "
            "returns int8 slower than fp32; or use the fp32 artifact")


def judge(ctx, verification: Verification, scores: Evaluation | None, budget, budget_report: dict | None) -> str:
    """The job's status from what verification and the data said: ``ok``, ``handoff`` (the artifact is
    built elsewhere), ``failed`` (an enforced verification failed) or ``unmet`` (the accuracy budget);
    the warnings go into ``ctx``, the failure's advice into ``verification``."""
    request = ctx.request
    status = "handoff" if ctx.record.get("handoff") else "ok"
    if not verification.passed:
        # trace advice only where the precision is exact enough to blame the trace (not int8's loss), and the
        # source's outputs do not vanish (float32 denormals: then nothing can be blamed on what they show)
        if verification.vanished is not None:
            verification.failure = f"{verification.failure}: {vanishing_text(verification.vanished)}"
        elif verification.enforced and (ctx.record.get("tracer_warnings") or request.target == "torchscript-trace"
                                      or ctx.record.get("exporter") == "torchscript"):
            verification.failure = (f"{verification.failure}: the traced graph differs from the model on "
                                    f"{'/'.join(verification.checks[1:2]) or 'a second input'} — forward() "
                                    "may have data-dependent control flow that tracing froze; use --to "
                                    "torchscript-script (or torch.cond and torch-export)")
        if verification.enforced:
            status = "failed"
        elif scores is None:
            ctx.warnings.append(f"accuracy: {verification.failure}")
    if scores is not None and not verification.enforced:
        # int8 ranges come from the real data: random inputs fall outside them, so the data decides
        verification.failure = (None if verification.passed else
                                f"{verification.failure} on random inputs (outside the calibrated ranges; "
                                "the evaluation on data is what counts)")
        if scores.cosine_mean < INT8_MIN_COSINE:
            ctx.warnings.append(f"accuracy: mean cosine {scores.cosine_mean:.4f} on {scores.samples} data samples "
                                f"is below {INT8_MIN_COSINE}")
    if budget_report is not None and not budget_report["met"]:
        status = "unmet" if status != "failed" else status
        why = f" ({budget_report['unmet_reason']})" if budget_report.get("unmet_reason") else ""
        speed = f" at {budget_report['speedup']:.2f}× fp32" if budget_report.get("speedup") is not None else ""
        ctx.warnings.append(f"accuracy budget {budget} not met{why}: the best artifact ({len(budget_report['float_nodes'])} "
                            f"nodes in float) keeps {budget.describe(scores)}{speed}")
    return status


def record(request: ConversionRequest, model: LoadedModel, source_hash: str | None, result: ConversionResult,
           recorded: dict) -> Path:
    """Write the manifest beside the artifact, in the work folder; its path."""
    path = manifest_path_of(result.files[0])
    path.write_text(json.dumps(build_manifest(request, model, source_hash, result, recorded), indent=2, default=str))
    return path


def split_data(data: DataSource | None, model: LoadedModel, seed: int,
               progress: Progress | None = None) -> tuple[DataSet | None, DataSet | None]:
    """(calibration, evaluation) for ``model``: with ``--eval-data``, all of ``--data`` (at most
    :data:`app.accuracy.data.MAX_CALIBRATION`) and all of ``--eval-data``; else ``--data`` split by ``seed``
    (:meth:`app.accuracy.data.DataSet.split`)."""
    if data is None:
        return None, None
    if progress:
        progress("read data", None)
    if data.eval_path is not None and Path(data.eval_path).resolve() == Path(data.path).resolve():
        raise BadInput(f"--eval-data {data.eval_path}: the same as --data; give samples of other photos or "
                       "recordings (or leave --eval-data out: --data is then split, with a warning)")
    samples = load_data(data, model.inputs, model.outputs)
    if data.eval_path is None:
        return samples.split(seed)
    if progress:
        progress("read evaluation data", None)
    return samples.calibration_part(seed), load_eval_data(data, model.inputs, model.outputs)


def data_record(request: ConversionRequest, calibration: DataSet | None, evaluation: DataSet | None) -> dict:
    """The manifest's ``data`` record (also the result's): where calibration and evaluation came from, how
    many samples each, the split's seed, and — when both come from one folder — the warning that says so
    (``evaluate``, ``bench`` and ``pack`` find the evaluation part again from it)."""
    if request.data is None or evaluation is None:
        return {}
    record = {"source": str(request.data.path), "kind": evaluation.kind,
              "calibration_samples": len(calibration), "evaluation_samples": len(evaluation),
              "split_seed": SEED.of(request), "notes": evaluation.notes}
    if request.data.eval_path is not None:
        record.update(evaluation_source=str(request.data.eval_path), same_folder=False,
                      split=(f"calibration: all {len(calibration)} samples of --data; evaluation: all "
                             f"{len(evaluation)} of --eval-data"))
    else:
        record.update(evaluation_source=str(request.data.path), same_folder=True,
                      split=(f"one folder: {len(calibration)} samples calibrate, the other {len(evaluation)} "
                             f"evaluate (seed {SEED.of(request)})"),
                      warning=SAME_FOLDER_WARNING.format(data=request.data.path, calibration=len(calibration),
                                                         evaluation=len(evaluation)))
    return record


def _budget_of(request: ConversionRequest, evaluation: DataSet | None):
    """The request's ``--accuracy-budget`` parsed and checked against the target and the data."""
    if not ACCURACY_BUDGET.of(request):
        return None
    budget = AccuracyBudget.parse(ACCURACY_BUDGET.of(request))
    if request.precision not in get_converter(request.target).accuracy_budget:
        takers = [f"--to {c.name} --precision {'/'.join(c.accuracy_budget)}" for c in all_converters() if c.accuracy_budget]
        raise BadInput(f"--accuracy-budget applies to {', '.join(takers)} (not {request.target} {request.precision})")
    budget.check_data(evaluation)
    if MAX_FLOAT_NODES.of(request) < 1:
        raise BadInput(f"--max-float-nodes {MAX_FLOAT_NODES.of(request)}: give at least 1")
    floor = MIN_SPEEDUP.of(request)
    if not isinstance(floor, (int, float)) or not 0 <= floor < float("inf"):
        raise BadInput(f"--min-speedup {floor}: give a speed-up over the same runtime's fp32, e.g. 1.2 (a floor "
                       "below 1 still keeps no round slower than fp32)")
    return budget


def _build_and_verify(converter, ctx) -> tuple[list[Path], Verification]:
    """Run the converter into ``ctx.work_dir`` and verify what it wrote against the source."""
    request = ctx.request
    try:
        produced = converter.convert(ctx)
    except StudioError:
        raise
    except Exception as e:
        raise ConversionFailed(f"{request.target} conversion failed: {describe(e)}") from e
    ctx.stage("verify", None)
    return produced, _verify(ctx, produced, converter)


def _verify(ctx, produced: list[Path], converter=None) -> Verification:
    converter = converter or get_converter(ctx.request.target)()
    precision = ctx.request.precision
    try:
        return verify_artifact(ctx.model, lambda: converter.load_artifact(produced[0]), precision, seed=SEED.of(ctx.request))
    except VerificationFailed as e:  # it does not run, or returns other shapes: failed, whatever the precision
        return Verification(precision, rel_l2=float("inf"), cosine=0.0, passed=False, enforced=True, failure=str(e))


def _other_exporter(ctx) -> str | None:
    """The ONNX exporter not yet tried for this artifact, where the source allows both."""
    used = ctx.record.get("exporter")
    if used not in ("dynamo", "torchscript") or ctx.model.format not in ("state-dict", "pickle"):
        return None
    if ctx.record.get("exporter_fallback") or ctx.record.get("exporters_failed"):
        return None
    return "torchscript" if used == "dynamo" else "dynamo"


def _try_other_exporter(converter, ctx, produced: list[Path], verification: Verification):
    """The first exporter's artifact failed verification: build with the other exporter and keep
    whichever verifies (or, if neither does, the one closer to the source). Recorded in the manifest."""
    first, second = ctx.record["exporter"], _other_exporter(ctx)
    aside = ctx.work_dir / f"first-{first}"
    aside.mkdir()
    kept_first = [p.rename(aside / p.name) for p in produced]
    record, warnings = dict(ctx.record), list(ctx.warnings)
    ctx.only_exporter = second
    try:
        again, checked = _build_and_verify(converter, ctx)
    except StudioError as e:
        again, checked, why = None, None, first_line(e)
    better = checked is not None and (checked.passed or checked.rel_l2 < verification.rel_l2)
    fallback = {"tried": [first, second], "kept": second if better else first,
                "first_failure": verification.failure,
                "second": checked.failure or "passed" if checked else f"failed: {why}"}
    if better:
        for p in kept_first:
            p.unlink()
        ctx.record["exporter_fallback"] = fallback
        ctx.warnings.append(f"the {first} exporter's ONNX failed verification ({verification.failure}); "
                            f"kept the {second} exporter's, which " + ("verifies" if checked.passed else "is closer"))
        return again, checked
    for p in again or []:
        p.unlink(missing_ok=True)
    ctx.record.clear()
    ctx.record.update(record, exporter_fallback=fallback)
    ctx.warnings[:] = warnings
    return [p.rename(ctx.work_dir / p.name) for p in kept_first], verification


def build_manifest(request: ConversionRequest, model: LoadedModel, source_hash: str | None,
                   result: ConversionResult, record: dict) -> dict:
    return {
        "format_version": 1,
        "artifact": result.files[0].name,
        "files": [{"name": f.name, "sha256": files.sha256(f), "size_bytes": f.stat().st_size} for f in result.files],
        "target": request.target, "precision": request.precision, "status": result.status,
        "verdict": result.verdict.to_json(),     # what the window, the report and --json say of it
        "source": {"path": str(Path(request.source.path).resolve()), "sha256": source_hash, "format": model.format},
        "inputs": [s.to_json() for s in model.inputs], "outputs": [s.to_json() for s in model.outputs],
        "options": request.recorded_options(options_of(request.target)),
        "recorded": record,
        "tools": tool_versions(),
        "build_isa": isa_record(),     # the CPU it was built and verified on (evaluate warns on another)
        "verification": result.verification.to_json() if result.verification else None,
        "evaluation": result.evaluation.to_json() if result.evaluation else None,
        "accuracy_budget": result.accuracy_budget,
        "warnings": result.warnings,
        "seconds": round(result.seconds, 3),
    }


def model_stem(path: Path) -> str:
    name = path.name

    for suffix in model_suffixes():
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# ---------------------------------------------------------------------------- read back from a manifest
def from_manifest(manifest: dict, artifact: Path) -> tuple[ConversionRequest, ConversionResult]:
    """The request and result a manifest recorded for ``artifact`` (made earlier, by the window or the
    command line): what the window's table shows of an artifact found on disk. The manifest is untrusted
    (its structure checked by :func:`~app.artifacts.manifest.check_manifest`, its figures not): a
    verification or an evaluation whose figures are not numbers is left out, an option that is not a
    plain value too. Raises :class:`~app.errors.StudioError` (a target or precision this version does
    not know, no source path)."""
    from app.artifacts.manifest import source_of_manifest

    target, precision = str(manifest["target"]), str(manifest["precision"])
    model, data = source_of_manifest(manifest)
    opts = manifest.get("options") or {}
    declared = options_of(target)           # raises for a target this version does not know
    options = {o.name: opts[o.name] for o in declared if isinstance(opts.get(o.name), (str, int, float, bool))
               and not o.is_default(opts.get(o.name))}
    request = ConversionRequest(model, target, precision, options, data=data, out_dir=Path(artifact).parent)
    recorded = manifest.get("recorded") or {}
    names = [f.get("name") for f in manifest.get("files") or [] if isinstance(f, dict)]
    files_ = [Path(artifact).parent / n for n in names if isinstance(n, str) and n and "/" not in n and "\\" not in n]
    sizes = [f.get("size_bytes") for f in manifest.get("files") or [] if isinstance(f, dict)]
    size = sum(int(s) for s in sizes if type(s) is int and s >= 0)
    seconds = manifest.get("seconds")
    budget = manifest.get("accuracy_budget")
    result = ConversionResult(
        target, precision, manifest.get("status") if isinstance(manifest.get("status"), str) else "ok",
        Path(artifact), files=files_ or [Path(artifact)], size_bytes=size,
        seconds=float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else 0.0,
        verification=_verification_of(manifest.get("verification"), precision),
        warnings=[w for w in manifest.get("warnings") or [] if isinstance(w, str)],
        manifest=manifest_path_of(Path(artifact)), evaluation=_evaluation_of(manifest.get("evaluation")),
        accuracy_budget=budget if isinstance(budget, dict) else None,
        delegation=recorded.get("delegation") if isinstance(recorded.get("delegation"), dict) else None,
        data=recorded.get("data") if isinstance(recorded.get("data"), dict) else None)
    return request, result


def _figure(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _verification_of(v, precision: str) -> Verification | None:
    """A recorded verification, if its figures are numbers (else None: the manifest's verdict still says it)."""
    if not isinstance(v, dict) or any(_figure(v.get(k)) is None for k in ("max_abs_err", "rel_l2", "cosine")):
        return None
    text = lambda k: v.get(k) if isinstance(v.get(k), str) else None  # noqa: E731
    return Verification(precision, _figure(v["max_abs_err"]), _figure(v["rel_l2"]), _figure(v["cosine"]),
                        top1_agreement=_figure(v.get("top1_agreement")), passed=v.get("passed") is True,
                        enforced=v.get("enforced") is not False,
                        checks=[c for c in v.get("checks") or [] if isinstance(c, str)],
                        failure=text("failure"), blind=text("blind"), vanished=_figure(v.get("vanished")))


_EVALUATION_NEEDED = ("cosine_mean", "cosine_min", "cosine_p5", "rel_l2_mean", "rel_l2_max")
_EVALUATION_OPTIONAL = ("top1_agreement", "source_top1", "artifact_top1", "source_top5", "artifact_top5",
                        "confident_agreement", "confident_margin", "kl_mean", "kl_max", "top1_drop_low",
                        "top1_drop_high")


def _evaluation_of(e) -> Evaluation | None:
    """A recorded evaluation on data, if its figures are numbers (else None)."""
    if not isinstance(e, dict) or type(e.get("samples")) is not int \
            or any(_figure(e.get(k)) is None for k in _EVALUATION_NEEDED):
        return None
    counts = {k: e.get(k) if type(e.get(k)) is int else None for k in ("confident_samples", "kl_samples")}
    return Evaluation(e["samples"], e.get("data") if isinstance(e.get("data"), str) else "",
                      *(_figure(e[k]) for k in _EVALUATION_NEEDED),
                      notes=[n for n in e.get("notes") or [] if isinstance(n, str)],
                      **{k: _figure(e.get(k)) for k in _EVALUATION_OPTIONAL}, **counts)
