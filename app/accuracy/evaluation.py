"""Evaluation on real data: how close an artifact stays to its source, sample by sample, and, with
labels, the task accuracy of both.

Verification (:mod:`app.accuracy.verify`) runs random inputs and judges the worst case; evaluation runs the
user's own samples (the part of ``--data`` not used for calibration) and reports the distribution:
cosine mean / min / 5th percentile over samples, relative L2, top-1 agreement, and top-1 / top-5
accuracy of source and artifact when the data carries labels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from app.accuracy.data import DataSet, held_out, load_data
from app.artifacts.manifest import read_manifest
from app.errors import StudioError, VerificationFailed, first_line
from app.loaders.front_door import load_model, prepare_model
from app.model.loaded import LoadedModel

Outputs = list[list[np.ndarray]]   # per sample, the model's outputs


EVALUATION_COLUMNS = ("cosine_mean", "cosine_min", "cosine_p5", "rel_l2_mean", "top1_agreement", "source_top1",
                      "artifact_top1", "top1_drop", "samples")


def evaluation_columns(evaluation: dict | None) -> dict:
    """An evaluation on data (``Evaluation.to_json()``) as flat ``eval_*`` row fields, for benchmark
    tables and CSV; none without one."""
    if not evaluation:
        return {}
    return {f"eval_{k}": evaluation.get(k) for k in EVALUATION_COLUMNS}


@dataclass
class Evaluation:
    """Agreement with the source (and task accuracy) of one artifact over a data set."""

    samples: int
    data: str
    cosine_mean: float
    cosine_min: float
    cosine_p5: float
    rel_l2_mean: float
    rel_l2_max: float
    top1_agreement: float | None = None
    source_top1: float | None = None
    artifact_top1: float | None = None
    source_top5: float | None = None
    artifact_top5: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def top1_drop(self) -> float | None:
        """Accuracy points lost (source top-1 − artifact top-1), with labels."""
        if self.source_top1 is None or self.artifact_top1 is None:
            return None
        return self.source_top1 - self.artifact_top1

    def to_json(self) -> dict:
        d = asdict(self)
        d["top1_drop"] = self.top1_drop
        return d

    def summary(self) -> str:
        parts = [f"cosine mean {self.cosine_mean:.5f} / min {self.cosine_min:.5f} / p5 {self.cosine_p5:.5f}",
                 f"rel L2 {self.rel_l2_mean:.3g}"]
        if self.top1_agreement is not None:
            parts.append(f"top-1 agreement {self.top1_agreement:.1%}")
        if self.artifact_top1 is not None:
            parts.append(f"top-1 {self.source_top1:.1%} → {self.artifact_top1:.1%}")
        if self.artifact_top5 is not None:
            parts.append(f"top-5 {self.source_top5:.1%} → {self.artifact_top5:.1%}")
        return f"{', '.join(parts)} on {self.samples} samples"


def run_all(model: LoadedModel, data: DataSet, what: str = "the model") -> Outputs:
    """``model`` on every sample of ``data``; a failure names the sample."""
    outputs = []
    for i, feeds in enumerate(data.samples):
        try:
            outputs.append([np.asarray(o) for o in model.run(feeds)])
        except Exception as e:
            raise VerificationFailed(f"{what} fails on data sample {i} ({first_line(e)})") from None
    return outputs


def classifier_output(outputs: Outputs) -> int | None:
    """Index of the first output shaped like logits ([batch, classes], float, classes > 1)."""
    for i, o in enumerate(outputs[0] if outputs else []):
        if o.ndim == 2 and o.shape[1] > 1 and o.dtype.kind == "f":
            return i
    return None


def _rows(outputs: list[np.ndarray]) -> np.ndarray:
    """One float64 vector per batch row: every float output of the sample, flattened and joined."""
    floats = [o for o in outputs if o.dtype.kind == "f" and o.ndim >= 1]
    if not floats:
        floats = [o.astype(np.float64) for o in outputs if o.ndim >= 1]
    batch = floats[0].shape[0]
    return np.concatenate([o.reshape(batch, -1).astype(np.float64) for o in floats], axis=1)


def _topk(logits: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    k = min(k, logits.shape[1])
    best = np.argsort(-logits, axis=1)[:, :k]
    return np.any(best == labels[:, None], axis=1)


def compare_outputs(reference: Outputs, got: Outputs, data: DataSet) -> Evaluation:
    """Per-row metrics of ``got`` against ``reference`` over every sample of ``data``."""
    cosines, rels, agree = [], [], []
    acc: dict[str, list] = {"s1": [], "a1": [], "s5": [], "a5": []}
    head = classifier_output(reference)
    for i, (ref, out) in enumerate(zip(reference, got)):
        if len(ref) != len(out) or any(r.shape != o.shape for r, o in zip(ref, out)):
            raise VerificationFailed(f"on data sample {i} the artifact returns shapes "
                                     f"{[list(o.shape) for o in out]}, the source {[list(r.shape) for r in ref]}")
        r, g = _rows(ref), _rows(out)
        nr, ng = np.linalg.norm(r, axis=1), np.linalg.norm(g, axis=1)
        diff = np.linalg.norm(g - r, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cos = np.where((nr > 0) & (ng > 0), np.sum(r * g, axis=1) / (nr * ng), np.where(nr == ng, 1.0, 0.0))
            rel = np.where(nr > 0, diff / nr, diff)
        finite = np.all(np.isfinite(g), axis=1)
        cosines.extend(np.where(finite, cos, 0.0).tolist())
        rels.extend(np.where(finite, rel, np.inf).tolist())
        if head is not None:
            agree.extend((np.argmax(ref[head], 1) == np.argmax(out[head], 1)).tolist())
            if data.labels is not None:
                labels = data.labels[i]
                acc["s1"].extend(_topk(ref[head], labels, 1)); acc["a1"].extend(_topk(out[head], labels, 1))
                acc["s5"].extend(_topk(ref[head], labels, 5)); acc["a5"].extend(_topk(out[head], labels, 5))
    cos_arr = np.asarray(cosines)
    mean = lambda xs: float(np.mean(xs)) if len(xs) else None  # noqa: E731
    return Evaluation(
        samples=len(cosines), data=data.describe(), cosine_mean=float(cos_arr.mean()),
        cosine_min=float(cos_arr.min()), cosine_p5=float(np.percentile(cos_arr, 5)),
        rel_l2_mean=float(np.mean(rels)), rel_l2_max=float(np.max(rels)), top1_agreement=mean(agree),
        source_top1=mean(acc["s1"]), artifact_top1=mean(acc["a1"]), source_top5=mean(acc["s5"]),
        artifact_top5=mean(acc["a5"]), notes=list(data.notes))


def evaluate(source: LoadedModel, artifact: LoadedModel, data: DataSet,
             reference: Outputs | None = None) -> Evaluation:
    """Run source (unless ``reference`` holds its outputs already) and artifact on ``data``."""
    reference = reference if reference is not None else run_all(source, data, "the source")
    return compare_outputs(reference, run_all(artifact, data, "the artifact"), data)


def evaluation_part(data_source, model, artifacts: list[Path]):
    """The samples of ``data_source`` (an :class:`app.request.DataSource`) to evaluate on: the
    evaluation split when an artifact was calibrated on this data (same path, same seed as its
    manifest records), else all of them. Returns (data, note)."""
    data = load_data(data_source, model.inputs, model.outputs)
    for artifact in artifacts:   # the split policy and its notes: app.accuracy.data.held_out
        recorded = ((read_manifest(artifact) or {}).get("recorded") or {}).get("data") or {}
        part = held_out(data, recorded, data_source.path)
        if part is not None:
            return part[0], f"{artifact.name}: {part[1]}"
    return data, "all samples"


def evaluate_artifacts(model_source, data_source, artifacts: list[Path], progress=None) -> dict:
    """Run the source model (an :class:`app.request.ModelSource`) and every artifact on the samples of
    ``data_source`` (``--data``; the ``evaluate --json`` object); an artifact that fails is reported,
    the others still evaluated."""
    return evaluate_on_data(prepare_model(model_source), data_source, artifacts, progress)


def evaluate_on_data(source: LoadedModel, data_source, artifacts: list[Path], progress=None) -> dict:
    """:func:`evaluate_artifacts` for a source model already loaded."""
    progress = progress or (lambda stage, fraction=None: None)
    data, note = evaluation_part(data_source, source, artifacts)
    progress(f"run the source on {len(data)} samples", None)
    reference = run_all(source, data, "the source")
    rows = []
    for path in artifacts:
        progress(f"evaluate {path.name}", None)
        try:
            scores = evaluate(source, load_model(path), data, reference)
            rows.append({"artifact": str(path), "status": "ok", "evaluation": scores.to_json(),
                         "summary": scores.summary()})
        except StudioError as e:
            rows.append({"artifact": str(path), "status": "failed", "message": str(e), "evaluation": None})
    return {"data": data.describe(), "split": note, "notes": list(data.notes), "artifacts": rows}
