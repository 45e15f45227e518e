"""What a job works on, frozen and picklable (jobs take them across the process boundary): the
source model (:class:`ModelSource`), real data for it (:class:`DataSource`) and a conversion of it
(:class:`ConversionRequest`: source, target, precision, options), which the CLI and the window both
build; the precisions (:class:`Precision`)."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.errors import BadInput
from app.model.specs import TensorSpec


class Precision(str, enum.Enum):
    """The precision of an artifact (``--precision``); each converter declares the ones it builds."""

    FP32 = "fp32"
    FP16 = "fp16"
    BF16 = "bf16"
    INT8 = "int8"

    def __str__(self) -> str:
        return self.value


PRECISIONS: tuple[str, ...] = tuple(p.value for p in Precision)


@dataclass(frozen=True)
class ModelSource:
    """A model file and what the user said about it: its signature (``--input``/``--dynamic``), the
    network of a state dict (``--arch``), and what they trusted in a pickle."""

    path: Path
    inputs: tuple[TensorSpec, ...] = ()
    dynamic: tuple[tuple[str, int, str], ...] = ()
    arch: str | None = None
    arch_kwargs: tuple[tuple[str, object], ...] = ()
    allow_pickle: bool = False
    trusted_globals: tuple[str, ...] = ()
    run_code_from_file: bool = False

    @property
    def arch_kwargs_dict(self) -> dict:
        return dict(self.arch_kwargs)


class Options(Mapping):
    """The options a request sets (name → value), frozen, hashable and picklable; an option left out
    has the default its declaration gives (:meth:`converters.options.Option.of`)."""

    __slots__ = ("_items",)

    def __init__(self, values: Mapping | Iterable[tuple[str, Any]] = (), **more: Any) -> None:
        merged = dict(values)
        merged.update(more)
        object.__setattr__(self, "_items", tuple(sorted(merged.items())))

    def __getitem__(self, name: str) -> Any:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mapping) and dict(self._items) == dict(other)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Options are frozen; use replace()")

    def __reduce__(self):
        return (Options, (self._items,))

    def __repr__(self) -> str:
        return f"Options({dict(self._items)!r})"

    def replace(self, **changes: Any) -> "Options":
        """These options with ``changes`` (a value of None drops the option: its default applies)."""
        merged = dict(self._items)
        merged.update(changes)
        return Options({k: v for k, v in merged.items() if v is not None})


@dataclass(frozen=True)
class DataSource:
    """Real samples (``--data``) and how to read them (:func:`app.accuracy.data.load_data`): calibration for
    static int8 and the evaluation of every artifact on its held-out part, or on ``--eval-data`` (then all
    of ``--data`` calibrates)."""

    path: Path
    tokenizer: Path | None = None            # --tokenizer: Hugging Face tokenizer folder for text data
    normalize: str | None = None             # --normalize: image normalisation (default per channel count)
    limit: int = 2000                        # --data-limit: samples read at most
    eval_path: Path | None = None            # --eval-data: evaluate on these (read the same way); all of path calibrates

    def to_json(self) -> dict:
        return {"path": str(self.path), "tokenizer": str(self.tokenizer) if self.tokenizer else None,
                "normalize": self.normalize, "limit": self.limit,
                "eval_path": str(self.eval_path) if self.eval_path else None}


@dataclass(frozen=True)
class ConversionRequest:
    """What to convert (:class:`ModelSource`), to what target and precision, with which of the
    target's options (:class:`Options`, declared by its converter), on which real data, and where to."""

    source: ModelSource
    target: str
    precision: Precision = Precision.FP32
    options: Options = field(default_factory=Options)
    data: DataSource | None = None           # --data: calibration + evaluation samples (--eval-data: evaluation)
    out_dir: Path | None = None
    overwrite: bool = False
    keep_failed: bool = False
    ignore_memory_check: bool = False        # --ignore-memory-check: run even if the estimate says it will not fit

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "precision", Precision(self.precision))
        except ValueError:
            raise BadInput(f"--precision {self.precision!r}: choose {', '.join(PRECISIONS)}") from None
        if not isinstance(self.options, Options):
            object.__setattr__(self, "options", Options(self.options))

    def with_options(self, **changes: Any) -> "ConversionRequest":
        """This request with some options changed (None: back to the default)."""
        return replace(self, options=self.options.replace(**changes))

    def recorded_options(self, declared) -> dict:
        """Everything that shapes the artifact, for the manifest: the source's signature and network, what
        the user trusted in it (``--allow-pickle``, each ``--trust-global``), the value of every option the target ``declared`` (``converters.options.Option``; defaults included), the data."""
        s = self.source
        return {
            "inputs": [t.to_json() for t in s.inputs], "dynamic": [list(d) for d in s.dynamic],
            "arch": s.arch, "arch_kwargs": s.arch_kwargs_dict, "allow_pickle": s.allow_pickle,
            "trusted_globals": list(s.trusted_globals), "run_code_from_file": s.run_code_from_file,
            **{o.name: o.of(self) for o in declared}, "data": self.data.to_json() if self.data else None,
        }
