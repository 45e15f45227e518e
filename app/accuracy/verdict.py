"""One verdict per artifact: passed, passed with accuracy loss, failed or cancelled — with the reason and the
figure that decided it. Decided here, once, from what a conversion recorded (its status, its verification
on random inputs, its evaluation on data, its accuracy budget); the window's jobs list, results table and
details pane, the HTML report, ``convert --json`` and the manifest all show this one
(:attr:`app.pipeline.ConversionResult.verdict`, :func:`verdict_of_manifest`).

The rules, in order:

- an enforced verification failed (fp32/fp16/bf16 outside its tolerance, or the artifact does not run), or the
  accuracy budget was not met: **failed**;
- an accuracy budget was met: **passed**, on the budget's figure;
- with data: the mean cosine to the source on the data samples decides — below
  :data:`~app.accuracy.verify.INT8_MIN_COSINE` (0.99) **passed with accuracy loss**; so is a classifier that
  keeps fewer than :data:`CONFIDENT_MIN` (0.99) of the predictions its source is confident about (on at least
  :data:`CONFIDENT_MIN_SAMPLES` such samples); else **passed** (int8's random-input figures do not count:
  random inputs fall outside its calibrated ranges);
- without data: the verification on random inputs — int8 below the cosine floor is **passed with accuracy
  loss** (its loss is expected and never fails the conversion), else **passed**.

Everything here reads plain JSON (``Verification.to_json()``, a manifest's fields), so a manifest written by
another version, or one whose figures are not numbers, still gets a verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PASSED, ACCURACY_LOSS, FAILED, CANCELLED = "passed", "passed_with_accuracy_loss", "failed", "cancelled"
KINDS = (PASSED, ACCURACY_LOSS, FAILED, CANCELLED)
LABELS = {PASSED: "passed", ACCURACY_LOSS: "passed with accuracy loss", FAILED: "failed", CANCELLED: "cancelled"}

# how each figure is named in a sentence, and whether more is better
FIGURE_NAMES = {"cosine_mean": "mean cosine", "cosine": "cosine", "rel_l2": "relative L2 error",
                "top1_drop": "top-1 drop", "confident_agreement": "confident agreement",
                "kl_mean": "mean KL divergence", "top1_agreement": "top-1 agreement"}
_BUDGET_FIGURES = {"cosine": "cosine_mean", "top1-drop": "top1_drop", "confident-agreement": "confident_agreement",
                   "kl": "kl_mean"}
_LOWER_IS_BETTER = ("rel_l2", "top1_drop", "kl_mean")
# with data on a classifier: below this share of the samples the source is confident about (top-1 beats
# top-2 by a margin) keeping their class, an artifact has lost accuracy whatever its cosine — judged once
# there are enough such samples for one flip not to decide it
CONFIDENT_MIN, CONFIDENT_MIN_SAMPLES = 0.99, 20
_SHARES = ("top1_drop", "confident_agreement", "top1_agreement")


@dataclass(frozen=True)
class Figure:
    """The number that decided a verdict: which (``metric``, an evaluation's or verification's field name),
    its ``value``, the ``limit`` it was held to (None: none) and what it was measured ``on``."""

    metric: str
    value: float | None
    limit: float | None = None
    on: str = ""

    @property
    def name(self) -> str:
        return FIGURE_NAMES.get(self.metric, self.metric)

    def value_text(self) -> str:
        return _format(self.metric, self.value)

    def text(self) -> str:
        """``mean cosine 0.9550 on 20 data samples``."""
        return f"{self.name} {self.value_text()}" + (f" on {self.on}" if self.on else "")

    def to_json(self) -> dict:
        return {"metric": self.metric, "name": self.name, "value": self.value, "limit": self.limit, "on": self.on,
                "text": self.text()}

    @staticmethod
    def from_json(data) -> "Figure | None":
        if not isinstance(data, dict) or not isinstance(data.get("metric"), str):
            return None
        return Figure(data["metric"], _number(data.get("value")), _number(data.get("limit")),
                      data.get("on") if isinstance(data.get("on"), str) else "")


@dataclass(frozen=True)
class Verdict:
    """What became of one artifact, in one word (``kind``: one of :data:`KINDS`), why (``reason``, one
    sentence) and the figure that decided it (None where no number did: a failure to run, a cancel)."""

    kind: str
    reason: str
    figure: Figure | None = None

    @property
    def label(self) -> str:
        """``passed with accuracy loss``."""
        return LABELS.get(self.kind, self.kind)

    @property
    def good(self) -> bool:
        """The artifact may be used (passed, with or without an accuracy loss)."""
        return self.kind in (PASSED, ACCURACY_LOSS)

    def summary(self) -> str:
        """One line: the label and the deciding figure (``passed with accuracy loss: mean cosine 0.9550 on 20
        data samples``); without a figure, the reason."""
        detail = self.figure.text() if self.figure is not None else self.reason
        return f"{self.label}: {detail}" if detail else self.label

    def text(self) -> str:
        """The label and the full reason (``passed with accuracy loss — mean cosine 0.9550 … below 0.99``)."""
        return f"{self.label} — {self.reason}" if self.reason else self.label

    def to_json(self) -> dict:
        return {"kind": self.kind, "label": self.label, "reason": self.reason,
                "figure": self.figure.to_json() if self.figure is not None else None}

    @staticmethod
    def from_json(data) -> "Verdict | None":
        """A recorded verdict (a manifest's ``verdict``); None when it is missing or not one."""
        if not isinstance(data, dict) or data.get("kind") not in KINDS or not isinstance(data.get("reason"), str):
            return None
        return Verdict(data["kind"], data["reason"], Figure.from_json(data.get("figure")))


def failed(message: str) -> Verdict:
    """A job that produced no artifact (a conversion error, a refused verification, a crash)."""
    return Verdict(FAILED, message or "the conversion failed")


def cancelled(message: str = "") -> Verdict:
    return Verdict(CANCELLED, message or "cancelled before it finished")


def verdict_of(status: str, precision: str, verification: dict | None, evaluation: dict | None = None,
               accuracy_budget: dict | None = None) -> Verdict:
    """The verdict of a conversion that wrote an artifact, from its ``status`` (``ok``, ``handoff``,
    ``failed``, ``unmet``) and the JSON of its verification, evaluation on data and accuracy budget."""
    from app.accuracy.verify import REL_L2_LIMIT   # numpy: not for a window's first paint

    v = verification if isinstance(verification, dict) else None
    e = evaluation if isinstance(evaluation, dict) and evaluation else None
    b = accuracy_budget if isinstance(accuracy_budget, dict) else None
    enforced = bool(v.get("enforced", precision in REL_L2_LIMIT)) if v else precision in REL_L2_LIMIT
    if status == "failed" or (v is not None and enforced and not v.get("passed")):
        return Verdict(FAILED, _text(v.get("failure") if v else None) or "verification failed",
                       _random_figure(v, precision) if v else None)
    if status == "unmet" or (b is not None and b.get("met") is False):
        return _budget_verdict(b, e, met=False)
    if b is not None and b.get("met") and e is not None:
        return _budget_verdict(b, e, met=True)
    if e is not None and _number(e.get("cosine_mean")) is not None:
        return _data_verdict(e)
    if v is None:
        return Verdict(FAILED, "not verified: no comparison with the source was recorded")
    figure = _random_figure(v, precision)
    if v.get("passed"):
        if enforced:
            return Verdict(PASSED, f"{figure.text()}, within the {precision} limit {_g(figure.limit)}", figure)
        return Verdict(PASSED, f"{figure.text()}, at least {_g(figure.limit)} (no data: add a data folder to judge "
                               "it on real samples)", figure)
    return Verdict(ACCURACY_LOSS, f"{figure.text()} is below {_g(figure.limit)}: int8 lost accuracy on random inputs "
                                  "(no data: add a data folder to judge it on real samples)", figure)


def verdict_of_manifest(manifest: dict) -> Verdict:
    """A manifest's verdict: the one recorded when it was written, else (a manifest of an older version)
    decided from its fields by :func:`verdict_of`."""
    recorded = Verdict.from_json(manifest.get("verdict"))
    if recorded is not None:
        return recorded
    return verdict_of(_text(manifest.get("status")) or "ok", _text(manifest.get("precision")) or "",
                      manifest.get("verification"), manifest.get("evaluation"), manifest.get("accuracy_budget"))


def _data_verdict(e: dict) -> Verdict:
    from app.accuracy.verify import INT8_MIN_COSINE

    figure = Figure("cosine_mean", _number(e.get("cosine_mean")), INT8_MIN_COSINE, _samples(e))
    also = []
    agreement = _number(e.get("top1_agreement"))
    if agreement is not None:
        also.append(f"top-1 agreement {_format('top1_agreement', agreement)}")
    confident = _number(e.get("confident_agreement"))
    if confident is not None and _number(e.get("confident_samples")):
        also.append(f"confident agreement {_format('confident_agreement', confident)} on "
                    f"{int(_number(e.get('confident_samples')))} samples")
    drop = _number(e.get("top1_drop"))
    if drop is not None:
        also.append(f"top-1 accuracy drop {_format('top1_drop', drop)}")
    tail = f" ({', '.join(also)})" if also else ""
    if figure.value < INT8_MIN_COSINE:
        return Verdict(ACCURACY_LOSS, f"{figure.text()} is below {_g(INT8_MIN_COSINE)}{tail}", figure)
    # a classifier whose logits keep their direction can still flip the predictions the source is sure of
    # (issue 32: EfficientNet-Lite0 int8 at cosine 0.9905 kept 0.932 of its confident photos)
    n = _number(e.get("confident_samples"))
    if confident is not None and n is not None and n >= CONFIDENT_MIN_SAMPLES and confident < CONFIDENT_MIN:
        decided = Figure("confident_agreement", confident, CONFIDENT_MIN, f"{int(n)} confident data samples")
        return Verdict(ACCURACY_LOSS, f"{decided.text()} is below {_g(CONFIDENT_MIN)} (mean cosine "
                                      f"{figure.value_text()})", decided)
    return Verdict(PASSED, f"{figure.text()}, at least {_g(INT8_MIN_COSINE)}{tail}", figure)


def _budget_verdict(b: dict | None, e: dict | None, *, met: bool) -> Verdict:
    budget = _text((b or {}).get("budget")) or "?"
    metric = budget.split("=", 1)[0].split(",", 1)[0].strip()
    field = _BUDGET_FIGURES.get(metric)
    figure = None
    if field and e is not None:
        figure = Figure(field, _number(e.get(field)), _budget_value(budget), _samples(e))
    if met:
        return Verdict(PASSED, f"accuracy budget {budget} met" + (f": {figure.text()}" if figure else ""), figure)
    why = _text((b or {}).get("unmet_reason"))
    return Verdict(FAILED, f"accuracy budget {budget} not met" + (f" ({why})" if why else "")
                   + (f": {figure.text()}" if figure else ""), figure)


def _random_figure(v: dict, precision: str) -> Figure:
    """What judged the verification on random inputs: the relative L2 error (fp32/fp16/bf16) or the cosine (int8)."""
    from app.accuracy.verify import INT8_MIN_COSINE, REL_L2_LIMIT

    if precision in REL_L2_LIMIT and v.get("enforced", True):
        return Figure("rel_l2", _number(v.get("rel_l2")), REL_L2_LIMIT[precision], "random inputs")
    return Figure("cosine", _number(v.get("cosine")), INT8_MIN_COSINE, "random inputs")


def _samples(e: dict) -> str:
    n = _number(e.get("samples"))
    return f"{int(n)} data samples" if n is not None else "the data"


def _budget_value(budget: str) -> float | None:
    first = budget.split(",", 1)[0]
    if "=" not in first:
        return None
    text = first.split("=", 1)[1].strip()
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        return None
    return value / 100 if text.endswith("%") else value


def _format(metric: str, value: float | None) -> str:
    if value is None:
        return "–"
    if math.isinf(value) or math.isnan(value):
        return str(value)
    if metric in _SHARES:
        return f"{100 * value:.1f}%" if metric != "top1_drop" else f"{100 * value:.2f} points"
    if metric in ("cosine_mean", "cosine"):
        return f"{value:.4f}"
    return f"{value:.3g}"


def _g(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _number(value) -> float | None:
    """A figure read from JSON: a number (not a bool), else None (a manifest may say anything)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None
