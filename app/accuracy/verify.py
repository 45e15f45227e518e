"""Verification: does the artifact compute what the source computes? Metrics every target shares, and
:func:`verify_artifact`, which runs both models on the same input sets (as Polygraphy's
``Comparator.run`` does) and compares their outputs with them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from app.errors import VerificationFailed, first_line
from app.model.inputs import make_feeds, second_sizes, twin_feeds
from app.model.loaded import LoadedModel

# Pass thresholds on relative L2 error, by precision; int8 is judged by cosine only and never fails
# the conversion (quantization error is expected), it warns below INT8_MIN_COSINE.
# bf16 keeps 8 mantissa bits to fp16's 11 (8x coarser steps): its limit is 5x fp16's.
REL_L2_LIMIT = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 5e-2}
INT8_MIN_COSINE = 0.99


@dataclass(frozen=True)
class OutputMetrics:
    """Agreement of one output tensor on one input set."""

    name: str
    max_abs_err: float
    rel_l2: float
    cosine: float
    top1_agreement: float | None = None


@dataclass
class Verification:
    """Worst-case metrics over every output and input set, plus the per-output details."""

    precision: str
    max_abs_err: float = 0.0
    rel_l2: float = 0.0
    cosine: float = 1.0
    top1_agreement: float | None = None
    passed: bool = True
    enforced: bool = True
    checks: list[str] = field(default_factory=list)
    outputs: list[OutputMetrics] = field(default_factory=list)
    failure: str | None = None
    blind: str | None = None        # why these inputs cannot tell a good artifact from a bad one
    vanished: float | None = None   # the largest |output| of the source when every output vanishes (near zero)

    def to_json(self) -> dict:
        d = asdict(self)
        return d

    def summary(self) -> str:
        t1 = f", top-1 {self.top1_agreement:.1%}" if self.top1_agreement is not None else ""
        # int8 is not held to the float tolerance on random inputs (they fall outside its calibrated
        # ranges): a miss here is not a failure to shout about; the artifact's verdict
        # (app.accuracy.verdict) weighs it, or its evaluation on data where there is one
        verdict = "passed" if self.passed else ("FAILED" if self.enforced else
                                                f"below {INT8_MIN_COSINE} on random inputs (not a failure for "
                                                "int8: see the verdict)")
        return (f"max|Δ| {self.max_abs_err:.3g}, rel L2 {self.rel_l2:.3g}, cosine {self.cosine:.6f}{t1} "
                f"→ {verdict}")


def compare(name: str, ref: np.ndarray, got: np.ndarray) -> OutputMetrics:
    """Metrics of ``got`` against ``ref`` (computed in float64)."""
    if ref.shape != got.shape:
        raise ValueError(f"output {name}: shape {tuple(got.shape)} but the source gives {tuple(ref.shape)}")
    r = ref.astype(np.float64).ravel()
    g = got.astype(np.float64).ravel()
    if r.size == 0:
        return OutputMetrics(name, 0.0, 0.0, 1.0)
    diff = g - r
    max_abs = float(np.max(np.abs(diff)))
    nr = float(np.linalg.norm(r))
    ng = float(np.linalg.norm(g))
    rel = float(np.linalg.norm(diff) / nr) if nr > 0 else float(np.linalg.norm(diff))
    cos = float(np.dot(r, g) / (nr * ng)) if nr > 0 and ng > 0 else (1.0 if nr == ng else 0.0)
    if not np.all(np.isfinite(g)):
        max_abs, rel, cos = float("inf"), float("inf"), 0.0
    top1 = None
    if ref.ndim == 2 and ref.shape[1] > 1 and ref.dtype.kind == "f":  # classifier-shaped logits
        top1 = float(np.mean(np.argmax(ref, axis=1) == np.argmax(got, axis=1)))
    return OutputMetrics(name, max_abs, rel, cos, top1)


NEAR_ZERO = 1e-6
FLOAT32_TINY = float(np.finfo(np.float32).tiny)    # 1.2e-38: below it float32 is denormal


def vanishing_peak(refs_per_set: list[list[np.ndarray]]) -> float | None:
    """The largest |value| of every float output of the source over the test inputs when all of them are
    near zero (≤ :data:`NEAR_ZERO`), else None: outputs that vanish, as a random-weight vision
    transformer's logits (~1e-41, float32 denormals) do."""
    values = [np.asarray(r, dtype=np.float64).ravel() for refs in refs_per_set for r in refs
              if np.asarray(r).dtype.kind == "f" and np.asarray(r).size]
    if not values:
        return None
    flat = np.concatenate(values)
    if not np.all(np.isfinite(flat)):
        return None
    peak = float(np.max(np.abs(flat)))
    return peak if peak <= NEAR_ZERO else None


def vanishing_text(peak: float) -> str:
    """Why outputs of magnitude ``peak`` cannot judge an artifact, and what to do."""
    if 0 < peak < FLOAT32_TINY:
        what = (f"~{peak:.0e} — float32 denormals, below its smallest normal {FLOAT32_TINY:.2g}, which fp16, int8 "
                "and flush-to-zero kernels turn into 0")
    else:
        what = "all zero" if peak == 0 else f"~{peak:.0e}, near zero"
    return (f"the source's outputs are {what}; verification cannot tell artifacts apart — use trained weights or "
            "real data (--data): a network with random weights can give logits this small")


def uninformative_outputs(names: list[str], refs_per_set: list[list[np.ndarray]]) -> str | None:
    """Name the outputs that are near zero or identical on every test input (then any artifact that
    returns the same constant passes, and verification cannot tell artifacts apart); when every output
    vanishes, say how small they are (float32 denormals) and what to do (:func:`vanishing_text`)."""
    peak = vanishing_peak(refs_per_set)
    if peak is not None and peak > 0:
        return f"{vanishing_text(peak)} (near zero: {', '.join(names)})"
    blind = []
    for i, name in enumerate(names):
        values = [np.asarray(refs[i], dtype=np.float64).ravel() for refs in refs_per_set if i < len(refs)]
        values = [v for v in values if v.size]
        if not values:
            continue
        flat = np.concatenate(values)
        if not np.all(np.isfinite(flat)):
            continue
        peak = float(np.max(np.abs(flat)))
        if peak <= NEAR_ZERO:
            blind.append(f"{name} (near zero, max |x| {peak:.2g})")
        elif float(np.ptp(flat)) <= NEAR_ZERO * peak:
            blind.append(f"{name} (constant {flat[0]:.4g})")
    if not blind:
        return None
    return ("the source's outputs are constant or near zero on the test inputs: " + ", ".join(blind)
            + "; verification cannot tell artifacts apart (check the inputs' shapes/values, or use --data)")


def judge(precision: str, metrics: list[OutputMetrics], checks: list[str]) -> Verification:
    """Aggregate worst-case metrics and decide pass/fail for ``precision``."""
    v = Verification(precision, checks=checks, outputs=metrics, enforced=precision in REL_L2_LIMIT)
    if metrics:
        v.max_abs_err = max(m.max_abs_err for m in metrics)
        v.rel_l2 = max(m.rel_l2 for m in metrics)
        v.cosine = min(m.cosine for m in metrics)
        t1 = [m.top1_agreement for m in metrics if m.top1_agreement is not None]
        v.top1_agreement = min(t1) if t1 else None
    if precision in REL_L2_LIMIT:
        v.passed = v.rel_l2 <= REL_L2_LIMIT[precision]
        if not v.passed:
            v.failure = (f"relative L2 error {v.rel_l2:.3g} exceeds the {precision} limit "
                         f"{REL_L2_LIMIT[precision]:g}")
    else:
        v.passed = v.cosine >= INT8_MIN_COSINE
        if not v.passed:
            v.failure = f"cosine similarity {v.cosine:.4f} is below {INT8_MIN_COSINE} (int8 accuracy loss)"
    return v


def verify_artifact(source: LoadedModel, artifact: LoadedModel | Callable[[], LoadedModel], precision: str, *,
                    seed: int = 0) -> Verification:
    """Run source and artifact on fresh inputs, a differently-valued twin, and (for dynamic axes) a
    second size; worst case over all of them.

    One after the other, not side by side: the source runs on every input set first and releases
    what its runs hold (an ONNX Runtime session), and only then is the artifact loaded (``artifact``
    may be a function that loads it) — so a multi-GB source and artifact are not in memory at once."""
    int_high = source.details.get("int_high", 2)
    specs = source.inputs
    base = make_feeds(specs, seed=seed + 1, int_high=int_high)
    sets = [("random inputs", base), ("negated/shifted inputs", twin_feeds(base, specs, int_high=int_high))]
    sizes = second_sizes(specs)
    if sizes:
        label = ", ".join(f"{k}={v}" for k, v in sizes.items())
        sets.append((f"second size ({label})", make_feeds(specs, seed=seed + 2, sizes=sizes, int_high=int_high)))
    metrics = []
    names = [o.name for o in source.outputs]
    refs = [source.run(feeds) for _, feeds in sets]
    source.release()
    artifact = artifact() if callable(artifact) else artifact
    for (what, feeds), ref in zip(sets, refs):
        try:
            got = artifact.run(feeds)
        except Exception as e:
            raise VerificationFailed(f"the artifact fails to run on {what}: {first_line(e)}") from e
        if len(got) != len(ref):
            raise VerificationFailed(f"the artifact returns {len(got)} outputs, the source {len(ref)}")
        for i, (r, g) in enumerate(zip(ref, got)):
            try:
                metrics.append(compare(names[i] if i < len(names) else f"output_{i}", r, g))
            except ValueError as e:
                raise VerificationFailed(f"on {what}: {e}") from None
    verification = judge(precision, metrics, [w for w, _ in sets])
    out_names = [names[i] if i < len(names) else f"output_{i}" for i in range(len(refs[0]) if refs else 0)]
    verification.blind = uninformative_outputs(out_names, refs)
    verification.vanished = vanishing_peak(refs)
    return verification
