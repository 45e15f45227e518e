"""optimize(): convert to every available target × precision (× static-INT8 calibration method),
verify and benchmark each, and recommend the fastest artifact within an accuracy budget.

Static INT8 is tried with each calibration method (MinMax, Entropy, Percentile) because which one
wins differs by model, and a wrong one can collapse accuracy; dynamic INT8 is tried beside them.
Accuracy of a candidate, without data, is the worse of its conversion's verification cosine (random,
twin and second-size inputs) and its cosine against the source on the benchmark's inputs. With
``--data``, every candidate is calibrated and evaluated on the user's samples and the budget is read on
that evaluation (``cosine=`` or ``top1-drop=``); ONNX fp16/int8 and OpenVINO int8 candidates also run
the budget loop (:func:`app.accuracy.budget.meet_budget`: the quantizer's settings, then the nodes that add the
most error in float — or NNCF's accuracy control for OpenVINO — until it holds).
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from app.accuracy.budget import AccuracyBudget
from app.accuracy.evaluation import EVALUATION_COLUMNS, evaluation_columns
from app.bench.benchmark import pick_providers, source_runner
from app.bench.harness import BenchConfig, BenchResult, Progress, run_benchmark
from app.bench.runners import runners_for_artifact
from app.bench.stats import rows_no_faster_than_fp32
from app.errors import BadInput, Cancelled, StudioError, describe
from app.jobs import convert_in_process as convert
from app.loaders.front_door import prepare_model
from app.pipeline import model_stem
from app.request import ConversionRequest, DataSource, ModelSource
from app.runtimes.base import Runner
from converters.base import all_converters, get_converter
from converters.options import ACCURACY_BUDGET, MAX_FLOAT_NODES, SEED

CONVERT_SHARE = 0.6  # of the progress bar: conversions first, then the benchmark


@dataclass(frozen=True)
class Candidate:
    """One target × precision × settings of its searchable options (``Converter.search_space``)."""

    target: str
    precision: str
    settings: tuple[tuple[str, Any], ...] = ()

    @property
    def quantization(self) -> str | None:
        return dict(self.settings).get("quantization")

    @property
    def calibration_method(self) -> str | None:
        return dict(self.settings).get("calibration_method")

    @property
    def label(self) -> str:
        """``onnx int8 static/minmax``: the target, the precision, then every setting's value in the
        order the converter declares its options (so two candidates never share a label or a folder)."""
        return " ".join([self.target, self.precision, "/".join(str(v) for _, v in self.settings)]).rstrip()

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9]+", "-", self.label).strip("-")

    def to_json(self) -> dict:
        return {"candidate": self.label, "target": self.target, "quantization": self.quantization,
                "calibration_method": self.calibration_method, **dict(self.settings)}


@dataclass(frozen=True)
class OptimizeResult:
    """The benchmark of every candidate, what could not be built, and the recommendation."""

    bench: BenchResult
    budget_cosine: float
    candidates: dict[str, dict]            # runner name → candidate fields + verification (+ evaluation)
    failed: tuple[dict, ...]               # candidates not built, with the reason
    recommended: dict | None
    out_dir: Path
    accuracy_budget: str | None = None     # with --data: the budget read on the evaluation (one part or several)

    def rows(self) -> list[dict]:
        """Benchmark rows with the candidate, its accuracy verdict and whether it fits the budget."""
        budget = AccuracyBudget.parse(self.accuracy_budget) if self.accuracy_budget else None
        out = []
        for r in self.bench.to_json()["results"]:
            info = dict(self.candidates.get(r["name"], {"candidate": "source", "target": "source", "quantization": None,
                                                        "calibration_method": None, "verification_cosine": None}))
            cos = _worst_cosine(r.get("cosine"), info.get("verification_cosine"))
            evaluation = info.pop("evaluation", None)
            if r.get("baseline"):
                within = None
            elif budget is not None:  # real data decides: random inputs fall outside int8's calibrated ranges
                within = evaluation is not None and budget.met(evaluation)
            else:
                within = cos is not None and cos >= self.budget_cosine
            out.append({**r, **info, **evaluation_columns(evaluation.to_json() if evaluation else None),
                        "accuracy_cosine": cos, "within_budget": within})
        return out

    def to_json(self) -> dict:
        data = self.bench.to_json()
        rows = self.rows()
        data.update(results=rows, budget_cosine=self.budget_cosine, accuracy_budget=self.accuracy_budget,
                    recommended=self.recommended, out_dir=str(self.out_dir),
                    no_faster_than_fp32=rows_no_faster_than_fp32(rows))  # measured here: bf16 without AMX …
        data["skipped"] = list(self.failed) + data["skipped"]
        return data


def _worst_cosine(*values: float | None) -> float | None:
    known = [v for v in values if v is not None]
    return min(known) if known else None


def candidates_for(source_format: str) -> tuple[list[Candidate], list[dict]]:
    """Every available target × precision for a source format, and the unavailable targets with why."""
    out: list[Candidate] = []
    unavailable: list[dict] = []
    for conv in all_converters():
        ok, why = conv.available()
        if not ok:
            unavailable.append({"name": conv.name, "candidate": conv.name, "runtime": conv.name, "provider": "",
                                "precision": "/".join(conv.precisions), "status": "unavailable", "reason": why,
                                "batch": None, "artifact": None})
            continue
        for precision in conv.valid_precisions(source_format):
            out += [Candidate(conv.name, precision, tuple(s.items())) for s in conv.search_space(precision)]
    return out, unavailable


def default_out_dir(model_path: Path) -> Path:
    """``<folder of the model>/<stem>.optimize/``."""
    return Path(model_path).parent / f"{model_stem(Path(model_path))}.optimize"


def optimize(source: ModelSource, config: BenchConfig, *, data: DataSource | None = None,
             budget_cosine: float = 0.99, accuracy_budget: str | None = None, max_float_nodes: int = 32,
             out_dir: Path | None = None, providers: list[str] | None = None, only: list[str] | None = None,
             openvino: bool | None = None, progress: Progress | None = None,
             should_cancel: Callable[[], bool] | None = None) -> OptimizeResult:
    """Try every candidate, benchmark the ones that were built, recommend the fastest within budget.

    Parameters
    ----------
    source
        The source model and its signature flags (as for ``convert``).
    config
        Benchmark settings (one batch size: the model's own, unless ``config.batches`` says otherwise).
    budget_cosine
        The lowest acceptable cosine similarity against the source.
    out_dir
        Where the artifacts go (default :func:`default_out_dir`); one sub-folder per candidate.
    data
        Real samples (``--data``): calibration for static INT8 (random data otherwise, with a warning in
        each row); every candidate is also evaluated on their held-out part.
    accuracy_budget, max_float_nodes
        With data: ``cosine=0.99`` or ``top1-drop=1%`` read on that evaluation (default: ``cosine=`` the
        ``budget_cosine``); ONNX fp16/int8 candidates keep their worst nodes (at most ``max_float_nodes``)
        in float until it holds.
    providers
        ONNX Runtime execution providers (default: all installed).
    only
        Restrict to candidates whose label contains one of these strings (e.g. ``["onnx"]``).
    openvino
        Also time ONNX candidates in OpenVINO (default: where it is installed); ``False`` also skips
        the ``openvino`` target.
    progress, should_cancel
        As in :func:`app.pipeline.convert`; cancelling stops at the next conversion stage or timed call.
    """
    if not 0.0 < budget_cosine <= 1.0:
        raise BadInput(f"--budget-cosine {budget_cosine}: give a number in (0, 1], e.g. 0.99")
    if accuracy_budget and not data:
        raise BadInput(f"--accuracy-budget {accuracy_budget}: needs --data (real samples to measure accuracy on)")
    if data:
        accuracy_budget = str(AccuracyBudget.parse(accuracy_budget or f"cosine={budget_cosine}"))
    progress = progress or (lambda stage, fraction=None: None)
    should_cancel = should_cancel or (lambda: False)
    config = config.with_threads()
    out_dir = Path(out_dir) if out_dir else default_out_dir(source.path)
    progress("load model", 0.0)
    started = time.perf_counter()
    model = prepare_model(source)
    load_seconds = time.perf_counter() - started
    cands, failed = candidates_for(model.format)
    if openvino is False:
        cands = [c for c in cands if c.target != "openvino"]
    if only:
        cands = [c for c in cands if any(o in c.label for o in only)]
    if not cands:
        raise BadInput("no target can be built from this model here" + (f" matching {only}" if only else ""))
    built = _build(cands, source, config, data, accuracy_budget, max_float_nodes, out_dir, failed,
                   progress, should_cancel)
    runners, infos = _runners(built, pick_providers(providers), config.threads, openvino)
    baseline = source_runner(model, load_seconds, threads=config.threads)
    bench = run_benchmark(baseline, runners, list(model.inputs), config, int_high=model.details.get("int_high", 2),
                          progress=lambda stage, f=None: progress(f"benchmark: {stage}",
                                                                   CONVERT_SHARE + (1 - CONVERT_SHARE) * (f or 0.0)),
                          should_cancel=should_cancel,
                          notes=([] if data or not any(c.quantization == "static" for c in cands) else
                                 ["static INT8 was calibrated on random data (no --data DIR): its accuracy "
                                  "on real inputs may differ"]))
    result = OptimizeResult(bench, budget_cosine, infos, tuple(failed), None, out_dir, accuracy_budget)
    return replace(result, recommended=recommend(result.rows(), budget_cosine))


def optimize_job(payload: tuple, progress=None, should_cancel=None) -> OptimizeResult:
    """``optimize`` in the fenced child (:func:`app.jobs.run_job`): ``(source, config, keywords of
    :func:`optimize`)``."""
    source, config, kwargs = payload
    return optimize(source, config, progress=progress, should_cancel=should_cancel, **kwargs)


def _build(cands: list[Candidate], source: ModelSource, config: BenchConfig, data: DataSource | None,
           accuracy_budget: str | None, max_float_nodes: int, out_dir: Path, failed: list,
           progress: Progress, should_cancel: Callable[[], bool]) -> list[tuple]:
    """Convert every candidate into its own folder under ``out_dir``: ``(candidate, artifact, verification
    cosine, warnings, extra)`` for each one built; each failure goes into ``failed``, and the search goes on."""
    built: list[tuple[Candidate, Path, float | None, list[str], dict]] = []
    for i, cand in enumerate(cands):
        if should_cancel():
            raise Cancelled("optimize cancelled by the user")
        step = lambda stage, fraction=None, i=i, c=cand: progress(  # noqa: E731
            f"convert {c.label}: {stage}", CONVERT_SHARE * (i + (fraction or 0.0)) / len(cands))
        step("start")
        looped = bool(data) and cand.precision in get_converter(cand.target).accuracy_budget
        options = get_converter(cand.target).options_in(dict(cand.settings))
        if config.seed:
            options[SEED.name] = config.seed   # the verification inputs follow the benchmark's --seed
        if looped:
            options.update({ACCURACY_BUDGET.name: accuracy_budget, MAX_FLOAT_NODES.name: max_float_nodes})
        req = ConversionRequest(source, cand.target, cand.precision, options,
                                data=data,  # with data, every candidate is evaluated on it too
                                out_dir=out_dir / cand.slug, overwrite=True,
                                keep_failed=looped)  # an int8 below the budget's speed floor is still timed here
        try:
            result = convert(req, progress=step, should_cancel=should_cancel)
        except Cancelled:
            raise
        except StudioError as e:
            failed.append(_failed(cand, str(e)))
            continue
        except Exception as e:  # noqa: BLE001 - one candidate failing must not stop the search
            failed.append(_failed(cand, describe(e)))
            continue
        if result.status not in ("ok", "unmet") or result.artifact is None:  # unmet: the best it found
            failed.append(_failed(cand, result.message or f"status {result.status} (no artifact to run here)"))
            shutil.rmtree(out_dir / cand.slug, ignore_errors=True)
            continue
        v = result.verification
        extra = {"evaluation": result.evaluation,  # an Evaluation: the budget is read on it
                 "float_nodes": len((result.accuracy_budget or {}).get("float_nodes") or []) if looped else None}
        built.append((cand, result.artifact, v.cosine if v else None, result.warnings, extra))
    return built


def _runners(built: list[tuple], providers, threads: int | None, openvino: bool | None) -> tuple[list[Runner], dict]:
    """A runner per built artifact and runtime (named after its candidate), and what each row reports."""
    runners: list[Runner] = []
    infos: dict[str, dict] = {}
    for cand, artifact, cosine, warnings, extra in built:
        for runner in runners_for_artifact(artifact, providers=providers, threads=threads, openvino=openvino):
            suffix = runner.name[len(artifact.name):]  # " [CUDA]" for non-CPU providers
            runner.name = cand.label + suffix
            infos[runner.name] = {**cand.to_json(), "verification_cosine": cosine,
                                  "random_calibration": any("RANDOM DATA" in w for w in warnings), **extra}
            runners.append(runner)
    return runners, infos


def recommend(rows: list[dict], budget_cosine: float) -> dict | None:
    """The fastest artifact row (lowest p50 at the smallest batch) whose cosine is within the budget."""
    if not rows:
        return None
    batch = min(int(r["batch"]) for r in rows)
    fits = [r for r in rows if int(r["batch"]) == batch and not r.get("baseline") and r.get("within_budget")]
    if not fits:
        return None
    best = min(fits, key=lambda r: r["p50_ms"])
    return {k: best.get(k) for k in ("name", "candidate", "target", "precision", "quantization", "calibration_method",
                                     "provider", "artifact", "batch", "p50_ms", "speedup_vs_baseline",
                                     "accuracy_cosine", "rel_l2", "float_nodes",
                                     *(f"eval_{c}" for c in EVALUATION_COLUMNS))}


def _failed(cand: Candidate, reason: str) -> dict:
    return {"name": cand.label, "candidate": cand.label, "runtime": cand.target, "provider": "",
            "precision": cand.precision, "status": "failed", "reason": reason, "batch": None, "artifact": None}
