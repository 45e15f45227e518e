"""Tensor signatures: what a model takes and returns, and the ``--input``/``--dynamic`` syntax.

A dimension is an ``int`` when fixed and a ``str`` label (``"batch"``, ``"seq"``) when dynamic.
Every spec also carries an *example* size per dimension, used to build test inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Iterable, Sequence

from app.errors import BadInput
from app.safety.security import check_elements

DTYPE_ALIASES = {
    "float": "float32", "float32": "float32", "fp32": "float32", "f32": "float32",
    "half": "float16", "float16": "float16", "fp16": "float16", "f16": "float16",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "double": "float64", "float64": "float64",
    "int64": "int64", "long": "int64", "i64": "int64",
    "int32": "int32", "int": "int32", "i32": "int32",
    "int8": "int8", "uint8": "uint8", "bool": "bool",
}
FLOAT_DTYPES = {"float32", "float16", "bfloat16", "float64"}

Dim = int | str


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: name, element type, shape (ints fixed, strings dynamic) and example sizes."""

    name: str
    dtype: str = "float32"
    shape: tuple[Dim, ...] = ()
    example: tuple[int, ...] = ()

    @property
    def is_float(self) -> bool:
        return self.dtype in FLOAT_DTYPES

    @property
    def dynamic_axes(self) -> dict[int, str]:
        """Axis index → label of every dynamic dimension."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def example_shape(self) -> tuple[int, ...]:
        """Concrete sizes: the fixed dims, and the example (or 1 / 16) for dynamic ones."""
        if self.example and len(self.example) == len(self.shape):
            return tuple(self.example)
        return tuple(d if isinstance(d, int) else (1 if i == 0 else 16) for i, d in enumerate(self.shape))

    def with_sizes(self, sizes: Sequence[int]) -> "TensorSpec":
        return replace(self, example=tuple(int(s) for s in sizes))

    def describe(self) -> str:
        if not self.shape and not self.example:
            return f"{self.name}: ? (unknown: pass --input)"
        dims = "x".join(str(d) for d in self.shape) if self.shape else "scalar"
        return f"{self.name}: {self.dtype}[{dims}]"

    def to_json(self) -> dict:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape),
                "example": list(self.example_shape())}

    @staticmethod
    def from_json(d: dict) -> "TensorSpec":
        return TensorSpec(d["name"], d.get("dtype", "float32"), tuple(d.get("shape", ())),
                          tuple(d.get("example", ())))


def normalize_dtype(text: str, *, where: str = "") -> str:
    key = text.strip().lower().removeprefix("torch.")
    if key not in DTYPE_ALIASES:
        valid = ", ".join(sorted({v for v in DTYPE_ALIASES.values()}))
        raise BadInput(f"unknown dtype {text!r}{where}; use one of: {valid}")
    return DTYPE_ALIASES[key]


_INPUT_RE = re.compile(r"^(?P<name>[^:]+):(?P<shape>[0-9xX*,]+)(?::(?P<dtype>\w+))?$")


def parse_input(text: str) -> TensorSpec:
    """Parse ``NAME:SHAPE[:DTYPE]``, e.g. ``input:1x3x224x224`` or ``input_ids:1x128:int64``."""
    m = _INPUT_RE.match(text.strip())
    if not m:
        raise BadInput(f"--input {text!r}: expected NAME:SHAPE[:DTYPE], e.g. input:1x3x224x224 or ids:1x128:int64")
    try:
        dims = tuple(int(d) for d in re.split(r"[xX*,]", m["shape"]) if d)
    except ValueError:  # pragma: no cover - the regex admits digits only
        raise BadInput(f"--input {text!r}: shape must be sizes joined by 'x', e.g. 1x3x224x224") from None
    if any(d <= 0 for d in dims):
        raise BadInput(f"--input {text!r}: every size must be at least 1")
    dtype = normalize_dtype(m["dtype"], where=f" in --input {text!r}") if m["dtype"] else "float32"

    check_elements(m["name"], dims)
    return TensorSpec(m["name"], dtype, dims, dims)


def parse_dynamic(text: str) -> tuple[str, int, str]:
    """Parse ``NAME:AXIS[:LABEL]`` into (name, axis, label); the label defaults to batch/NAME_dimAXIS."""
    parts = text.strip().split(":")
    if len(parts) not in (2, 3) or not parts[1].lstrip("-").isdigit():
        raise BadInput(f"--dynamic {text!r}: expected NAME:AXIS[:LABEL], e.g. input_ids:1:seq")
    name, axis = parts[0], int(parts[1])
    label = parts[2] if len(parts) == 3 and parts[2] else ("batch" if axis == 0 else f"{name}_dim{axis}")
    return name, axis, label


def apply_dynamic(specs: list[TensorSpec], dynamic: Iterable[tuple[str, int, str]]) -> list[TensorSpec]:
    """Mark the given axes dynamic, keeping the concrete size as the example."""
    by_name = {s.name: s for s in specs}
    for name, axis, label in dynamic:
        if name not in by_name:
            raise BadInput(f"--dynamic names input {name!r}, but the inputs are: {', '.join(by_name) or 'none'}")
        spec = by_name[name]
        rank = len(spec.shape)
        if not -rank <= axis < rank:
            raise BadInput(f"--dynamic {name}:{axis}: {name} has {rank} dimensions (axes 0..{rank - 1})")
        axis %= rank
        example = spec.example_shape()
        shape = list(spec.shape)
        shape[axis] = label
        by_name[name] = TensorSpec(spec.name, spec.dtype, tuple(shape), example)
    return [by_name[s.name] for s in specs]


def merge_user_inputs(known: list[TensorSpec], given: list[TensorSpec], *, model: str,
                      rename_ok: bool = True) -> list[TensorSpec]:
    """Overlay ``--input`` specs on what the model declares.

    With names that match the model's inputs the user's shape/dtype wins; with other names and the
    same count they are taken positionally (the user's names become the artifact's input names).
    """
    if not given:
        return known
    if not known:
        return list(given)
    names = [k.name for k in known]
    if all(g.name in names for g in given):
        merged = {k.name: k for k in known}
        for g in given:
            k = merged[g.name]
            if k.shape and len(k.shape) != len(g.shape):
                raise BadInput(f"--input {g.name}: {model} expects {len(k.shape)} dimensions "
                               f"({k.describe()}), got {len(g.shape)}")
            # keep the model's dynamic labels where the user gave a size for a dynamic dim
            shape = tuple(kd if isinstance(kd, str) else gd for kd, gd in zip(k.shape, g.shape)) if k.shape else g.shape
            merged[g.name] = TensorSpec(g.name, g.dtype, shape, g.example_shape())
        return [merged[n] for n in names]
    if len(given) == len(known):
        if rename_ok:
            return list(given)
        return [TensorSpec(k.name, g.dtype, g.shape, g.example_shape()) for k, g in zip(known, given)]
    raise BadInput(f"--input names {', '.join(g.name for g in given)} do not match {model}'s inputs "
                   f"({', '.join(names)}); give one --input per input, by name or in order")
