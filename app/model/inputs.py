"""Test inputs built from a signature: random values, a differently-valued twin, a second size."""

from __future__ import annotations

import numpy as np

from app.model.loaded import Feeds
from app.model.specs import TensorSpec
from app.safety.security import check_elements


def make_feeds(specs: list[TensorSpec], *, seed: int = 0, sizes: dict[str, int] | None = None,
               int_high: int = 2) -> Feeds:
    """Random inputs for ``specs``; ``sizes`` maps a dynamic label to the size to use.

    Floats are standard normal; integers are uniform in ``[0, int_high)`` (``int_high`` is the
    smallest embedding table of the model, so token ids stay valid).
    """
    rng = np.random.default_rng(seed)
    feeds: Feeds = {}
    for spec in specs:
        shape = tuple(sizes[d] if isinstance(d, str) and sizes and d in sizes else e
                      for d, e in zip(spec.shape, spec.example_shape())) if spec.shape else ()
        check_elements(spec.name, shape)
        if spec.dtype in ("float32", "float16", "float64", "bfloat16"):
            arr = rng.standard_normal(shape).astype(np.float32 if spec.dtype == "bfloat16" else spec.dtype)
        elif spec.dtype == "bool":
            arr = rng.integers(0, 2, shape).astype(bool)
        else:
            arr = rng.integers(0, max(int_high, 1), shape).astype(spec.dtype)
        feeds[spec.name] = arr
    return feeds


def twin_feeds(feeds: Feeds, specs: list[TensorSpec], *, int_high: int = 2) -> Feeds:
    """The same shapes with different values: floats negated and shifted, ids mirrored.

    Flipping the sign flips the branch of ``if x.sum() > 0``-style control flow, which is what a
    traced graph gets wrong silently.
    """
    out: Feeds = {}
    for spec in specs:
        arr = feeds[spec.name]
        if arr.dtype.kind == "f":
            out[spec.name] = (-1.5 * arr + 0.25).astype(arr.dtype)
        elif arr.dtype.kind == "b":
            out[spec.name] = ~arr
        else:
            out[spec.name] = (max(int_high, 1) - 1 - arr).astype(arr.dtype)
    return out


def second_sizes(specs: list[TensorSpec]) -> dict[str, int]:
    """For each dynamic label, a size other than the example's (to check the dynamic axis)."""
    sizes: dict[str, int] = {}
    for spec in specs:
        for axis, label in spec.dynamic_axes.items():
            n = spec.example_shape()[axis]
            sizes.setdefault(label, n + 1 if n < 4 else n // 2)
    return sizes


def export_sizes(specs: list[TensorSpec]) -> list[TensorSpec]:
    """Examples for tracing/exporting: a dynamic dim of size 0 or 1 becomes 2.

    torch.export specialises dimensions of size 0/1 to constants, so exporting a dynamic batch with
    a batch-1 example would silently fix the batch to 1.
    """
    out = []
    for spec in specs:
        ex = list(spec.example_shape())
        for axis in spec.dynamic_axes:
            ex[axis] = max(ex[axis], 2)
        out.append(spec.with_sizes(ex))
    return out
