"""Evaluation on real data: how close an artifact stays to its source, sample by sample, and, with
labels, the task accuracy of both.

Verification (:mod:`app.accuracy.verify`) runs random inputs and judges the worst case; evaluation runs the
user's own samples (the part of ``--data`` not used for calibration) and reports the distribution:
cosine mean / min / 5th percentile over samples, relative L2, top-1 agreement, and top-1 / top-5
accuracy of source and artifact when the data carries labels.

For classifier outputs (``[batch, classes]`` logits) two more figures say what the raw agreement
hides. *Confident agreement*: top-1 agreement over the samples the source calls clearly — its softmax
top-1 probability beats its top-2 by at least :data:`CONFIDENT_MARGIN` — with the count of such samples.
On real photo crops a quarter of the samples are closer calls than that, where any numeric change flips
the class: raw agreement punishes a faithful artifact on them, confident agreement does not.
*KL divergence* of the softmax, source ‖ artifact (nats), mean and max over samples: how far the
artifact moves the whole distribution, not only its argmax. With labels, the top-1 drop carries a 95 %
interval (:func:`paired_drop_interval`).
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


# a sample is a confident call when the source's softmax top-1 probability beats its top-2 by this much
CONFIDENT_MARGIN = 0.1

EVALUATION_COLUMNS = ("cosine_mean", "cosine_min", "cosine_p5", "rel_l2_mean", "top1_agreement",
                      "confident_agreement", "confident_samples", "kl_mean", "kl_max", "source_top1",
                      "artifact_top1", "top1_drop", "top1_drop_low", "top1_drop_high", "samples")


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
    # classifier outputs: agreement on the source's confident calls (margin ≥ confident_margin), how many
    # samples those are (0: none, the figure is None), and the softmax KL divergence source ‖ artifact
    confident_agreement: float | None = None
    confident_samples: int | None = None
    confident_margin: float | None = None
    kl_mean: float | None = None
    kl_max: float | None = None
    kl_samples: int | None = None            # rows whose source logits give a softmax (no NaN / ±inf-only)
    # with labels: the top-1 drop's 95 % interval (paired, see paired_drop_interval)
    top1_drop_low: float | None = None
    top1_drop_high: float | None = None

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

    def confident_text(self) -> str | None:
        """``confident agreement 99.2 % on 123 of 160 samples (margin ≥ 0.1)``; None without a classifier."""
        if self.confident_samples is None:
            return None
        margin = f"margin ≥ {self.confident_margin:g}"
        if not self.confident_samples:
            return f"confident agreement: no confident sample of {self.samples} ({margin})"
        return (f"confident agreement {self.confident_agreement:.1%} on {self.confident_samples} of {self.samples} "
                f"samples ({margin})")

    def drop_text(self) -> str | None:
        """``top-1 92.0% → 91.0% (drop 1.00 points, 95% interval −0.4 … 2.4)``; None without labels."""
        if self.artifact_top1 is None:
            return None
        interval = (f", 95% interval {100 * self.top1_drop_low:.2f} … {100 * self.top1_drop_high:.2f}"
                    if self.top1_drop_low is not None else "")
        return (f"top-1 {self.source_top1:.1%} → {self.artifact_top1:.1%} (drop {100 * self.top1_drop:.2f} points"
                f"{interval})")

    def summary(self) -> str:
        parts = [f"cosine mean {self.cosine_mean:.5f} / min {self.cosine_min:.5f} / p5 {self.cosine_p5:.5f}",
                 f"rel L2 {self.rel_l2_mean:.3g}"]
        if self.top1_agreement is not None:
            parts.append(f"top-1 agreement {self.top1_agreement:.1%}")
        if self.confident_text():
            parts.append(self.confident_text())
        if self.kl_mean is not None:
            parts.append(f"KL mean {self.kl_mean:.3g} / max {self.kl_max:.3g}")
        if self.drop_text():
            parts.append(self.drop_text())
        if self.artifact_top5 is not None:
            parts.append(f"top-5 {self.source_top5:.1%} → {self.artifact_top5:.1%}")
        return f"{', '.join(parts)} on {self.samples} samples"


def run_all(model: LoadedModel, data: DataSet, what: str = "the model", step=None) -> Outputs:
    """``model`` on every sample of ``data``; a failure names the sample. ``step(i, n)`` (if given) hears of
    each sample done (evaluation N/M in the window's jobs list; a cancel it raises stops the run)."""
    outputs = []
    n = len(data.samples)
    for i, feeds in enumerate(data.samples):
        try:
            outputs.append([np.asarray(o) for o in model.run(feeds)])
        except Exception as e:
            raise VerificationFailed(f"{what} fails on data sample {i} ({first_line(e)})") from None
        if step is not None:
            step(i + 1, n)
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


def log_softmax(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise log-softmax in float64, max-subtracted (no overflow, no underflow to log 0 for the top
    classes), and which rows have one: a row with a NaN or +inf, or with every logit -inf, has none
    (a -inf logit alone is a class of probability 0)."""
    x = np.asarray(logits, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        peak = np.max(np.where(np.isnan(x), -np.inf, x), axis=1, keepdims=True)
        valid = np.isfinite(peak[:, 0]) & ~np.any(np.isnan(x), axis=1)
        z = np.where(valid[:, None], x - np.where(np.isfinite(peak), peak, 0.0), 0.0)
        out = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return out, valid


def confident_rows(logits: np.ndarray, margin: float = CONFIDENT_MARGIN) -> np.ndarray:
    """Rows the model calls clearly: softmax top-1 probability − top-2 ≥ ``margin`` (False for rows
    without a softmax, see :func:`log_softmax`)."""
    logp, valid = log_softmax(logits)
    p = np.exp(logp)
    top2 = -np.partition(-p, 1, axis=1)[:, :2]
    return valid & (top2[:, 0] - top2[:, 1] >= margin - 1e-12)


def kl_divergence(reference: np.ndarray, got: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL(softmax(reference) ‖ softmax(got)) per row, in nats, and which rows count (those where the
    reference has a softmax). A counted row where ``got`` has none (NaN, +inf) or gives probability 0 to
    a class the reference gives more than 0 is ``inf``."""
    lp, valid = log_softmax(reference)
    lq, valid_q = log_softmax(got)
    p = np.exp(lp)
    with np.errstate(invalid="ignore", over="ignore"):
        terms = np.where(p > 0, p * (lp - lq), 0.0)
        kl = np.maximum(np.sum(terms, axis=1), 0.0)      # ≥ 0; rounding can leave -1e-17
    kl = np.where(valid_q, kl, np.inf)
    return np.where(valid, kl, np.nan), valid


def paired_drop_interval(source_right: np.ndarray, artifact_right: np.ndarray, z: float = 1.959964) -> \
        tuple[float, float]:
    """95 % interval of the top-1 drop (source accuracy − artifact accuracy) on the same samples.

    The samples are paired, so only the discordant ones carry information: ``b`` samples the source gets
    right and the artifact wrong, ``c`` the reverse; the drop is (b − c) / n. The interval is Agresti and
    Min's adjusted Wald interval for a paired difference of proportions (2005): add ½ to each cell of
    the 2×2 right/wrong table, then Wald — unlike plain Wald it is not empty when b = c = 0 (an artifact
    that never disagrees on 50 samples is not proven lossless to ±0). Clipped to [−1, 1] and widened, if
    ever needed, to hold the point estimate."""
    s, a = np.asarray(source_right, dtype=bool), np.asarray(artifact_right, dtype=bool)
    n = len(s)
    if n == 0:
        return float("nan"), float("nan")
    b, c = float(np.sum(s & ~a)), float(np.sum(~s & a))
    n2, b2, c2 = n + 2.0, b + 0.5, c + 0.5
    centre = (b2 - c2) / n2
    half = z * np.sqrt(max(b2 + c2 - (b2 - c2) ** 2 / n2, 0.0)) / n2
    point = (b - c) / n
    return float(max(-1.0, min(centre - half, point))), float(min(1.0, max(centre + half, point)))


def compare_outputs(reference: Outputs, got: Outputs, data: DataSet) -> Evaluation:
    """Per-row metrics of ``got`` against ``reference`` over every sample of ``data``."""
    cosines, rels, agree, confident, kls = [], [], [], [], []
    acc: dict[str, list] = {"s1": [], "a1": [], "s5": [], "a5": []}
    head = classifier_output(reference)
    for i, (ref, out) in enumerate(zip(reference, got)):
        if len(ref) != len(out) or any(r.shape != o.shape for r, o in zip(ref, out)):
            raise VerificationFailed(f"on data sample {i} the artifact returns shapes "
                                     f"{[list(o.shape) for o in out]}, the source {[list(r.shape) for r in ref]}")
        r, g = _rows(ref), _rows(out)
        nr, ng = np.linalg.norm(r, axis=1), np.linalg.norm(g, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):   # -inf logits: -inf - -inf (its cosine is 0 below)
            diff = np.linalg.norm(g - r, axis=1)
            cos = np.where((nr > 0) & (ng > 0), np.sum(r * g, axis=1) / (nr * ng), np.where(nr == ng, 1.0, 0.0))
            rel = np.where(nr > 0, diff / nr, diff)
        finite = np.all(np.isfinite(g), axis=1)
        cosines.extend(np.where(finite, cos, 0.0).tolist())
        rels.extend(np.where(finite, rel, np.inf).tolist())
        if head is not None:
            same = np.argmax(ref[head], 1) == np.argmax(out[head], 1)
            agree.extend(same.tolist())
            confident.extend(same[confident_rows(ref[head])].tolist())
            kl, counted = kl_divergence(ref[head], out[head])
            kls.extend(kl[counted].tolist())
            if data.labels is not None:
                labels = data.labels[i]
                acc["s1"].extend(_topk(ref[head], labels, 1)); acc["a1"].extend(_topk(out[head], labels, 1))
                acc["s5"].extend(_topk(ref[head], labels, 5)); acc["a5"].extend(_topk(out[head], labels, 5))
    cos_arr = np.asarray(cosines)
    mean = lambda xs: float(np.mean(xs)) if len(xs) else None  # noqa: E731
    low = high = None
    if acc["s1"]:
        low, high = paired_drop_interval(np.asarray(acc["s1"]), np.asarray(acc["a1"]))
    classifier = head is not None
    return Evaluation(
        samples=len(cosines), data=data.describe(), cosine_mean=float(cos_arr.mean()),
        cosine_min=float(cos_arr.min()), cosine_p5=float(np.percentile(cos_arr, 5)),
        rel_l2_mean=float(np.mean(rels)), rel_l2_max=float(np.max(rels)), top1_agreement=mean(agree),
        source_top1=mean(acc["s1"]), artifact_top1=mean(acc["a1"]), source_top5=mean(acc["s5"]),
        artifact_top5=mean(acc["a5"]), notes=list(data.notes),
        confident_agreement=mean(confident), confident_samples=len(confident) if classifier else None,
        confident_margin=CONFIDENT_MARGIN if classifier else None,
        kl_mean=mean(kls), kl_max=float(np.max(kls)) if kls else None, kl_samples=len(kls) if classifier else None,
        top1_drop_low=low, top1_drop_high=high)


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


def evaluate_job(payload: tuple, progress=None, should_cancel=None) -> dict:
    """``evaluate`` in the fenced child (:func:`app.jobs.run_job`; it loads and runs the source and every
    artifact): ``(source, data, artifacts)`` -> :func:`evaluate_artifacts`'s object."""
    source, data, artifacts = payload
    return evaluate_artifacts(source, data, artifacts, progress)


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
