"""The artifact kinds the studio reads, one declaration each (:class:`ArtifactKind`): the registry.

A kind is a file format a model comes in — ONNX, an OpenVINO IR, a TensorRT engine, an ExecuTorch
program, the PyTorch family (TorchScript, ``torch.export``, ``torch.save``, safetensors). Each runtime
module declares its own with :func:`register` when it is imported (``app/runtimes/onnxrt.py`` the
ONNX kind, …), as converters register themselves in ``converters/base.py``; the PyTorch family is
declared beside its loaders (``app/loaders/front_door.py``), which imports every runtime module: once
:mod:`app.loaders.front_door` is imported the registry is full. Everything that used to key off a
format by an if-chain reads the declaration instead: the front door's sniffing and loading, the
benchmark's runners, Triton's platform, ``pack``'s runtime, the graph view, the suffixes the window
accepts and the "supported: …" sentence. A kind nobody declared is an error, never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from app.errors import BadInput

# (checked file: .path, .stream, .head, .size, .archive; the ModelSource; guess inputs) -> LoadedModel
Loader = Callable[[Any, Any, bool], Any]
# (path, *, providers, threads, precision, device, openvino) -> [app.runtimes.base.Runner]: how the
# benchmark times an artifact of this kind (ONNX: one runner per ONNX Runtime provider, plus OpenVINO)
Runners = Callable[..., list]
# (path, the first 16 bytes) -> whether the file is of this kind (by content; the name only where the
# content says too little, as for a TensorRT engine's header)
Sniff = Callable[[Path, bytes], bool]


@dataclass(frozen=True)
class ArtifactKind:
    """One artifact kind, everything the studio needs to know about it in one place.

    ``name`` is :func:`app.loaders.front_door.sniff_format`'s answer; ``label`` what a person reads;
    ``runtime`` what runs it (a benchmark row's ``[OpenVINO]``); ``suffixes`` the file names it comes
    under (the window's drop check, the artifact's stem); ``described`` how the "supported: …" sentence
    names it (empty: ``.a/.b (label)``; ``"-"``: another kind's words name it too);
    ``sniff`` recognises its files (None: the front door's own archive/pickle checks do);
    ``fallback``: the kind a file nothing else claimed is read as (its loader refuses what it is not);
    ``load`` reads it into a :class:`~app.model.loaded.LoadedModel`; ``runners`` times it in the
    benchmark; ``no_graph``: why Netron cannot draw it (empty: it can); ``triton``: (platform or
    backend, file name in the version folder), None where Triton cannot serve it; ``backend``: Triton
    names it under ``backend:`` rather than ``platform:``; ``pack_runtime``: the runtime ``pack``'s
    checker runs it in (None: not packable); ``gpu``: it runs on an NVIDIA GPU only; ``also_times``:
    other kinds whose files this kind's runtime also times in the benchmark (OpenVINO reads ONNX),
    where ``available()`` says it is installed.
    """

    name: str
    label: str
    suffixes: tuple[str, ...]
    load: Loader | None
    runners: Runners | None
    runtime: str = ""
    described: str = ""
    sniff: Sniff | None = None
    fallback: bool = False
    no_graph: str = ""
    triton: tuple[str, str] | None = None
    backend: bool = False
    pack_runtime: str | None = None
    gpu: bool = False
    also_times: tuple[str, ...] = ()
    available: Callable[[], tuple[bool, str]] | None = None

    @property
    def draws(self) -> bool:
        """Whether the graph view draws it (Netron reads its layers)."""
        return not self.no_graph


_KINDS: dict[str, ArtifactKind] = {}


def register(kind: ArtifactKind) -> ArtifactKind:
    """Declare ``kind`` (a runtime module, when it is imported). The same declaration again is a no-op (a
    module imported twice); another kind under a name already taken is a programming error."""
    known = _KINDS.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"artifact kind {kind.name!r} is declared twice")
    if kind.fallback and any(k.fallback for k in _KINDS.values() if k.name != kind.name):
        raise ValueError(f"artifact kind {kind.name!r}: only one kind reads what nothing else claimed")
    _KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Forget a kind (tests that declare one of their own)."""
    _KINDS.pop(name, None)


def all_kinds() -> list[ArtifactKind]:
    """Every declared kind, in the order they were declared (the order files are sniffed in)."""
    return list(_KINDS.values())


def get_kind(name: str, path: Path | str | None = None) -> ArtifactKind:
    """The declaration of ``name``; a kind nobody declared is one line (exit code 2), never a guess."""
    kind = _KINDS.get(name)
    if kind is None:
        what = f"{Path(path).name}: " if path is not None else ""
        raise BadInput(f"{what}no artifact kind {name!r} is registered here (known: {', '.join(_KINDS) or 'none'}); "
                       "give a supported model file")
    return kind


def sniffed(path: Path, head: bytes) -> str | None:
    """The first declared kind whose ``sniff`` claims the file, else the fallback kind (None: neither)."""
    for kind in _KINDS.values():
        if kind.sniff is not None and kind.sniff(path, head):
            return kind.name
    return next((k.name for k in _KINDS.values() if k.fallback), None)


def model_suffixes() -> tuple[str, ...]:
    """Every file name the loaders read, longest first (``.pt2`` before ``.pt``)."""
    found = {s for k in _KINDS.values() for s in k.suffixes}
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def supported() -> str:
    """The "supported: …" sentence of every load error, from the declarations."""
    return ", ".join(k.described or f"{'/'.join(k.suffixes)} ({k.label})" for k in _KINDS.values()
                     if k.described != "-")
