"""Every artifact kind, declared: the registry of :mod:`app.model.kinds` once the front door (which
declares the PyTorch family and imports every runtime module, each declaring its own kind) is
imported. What reads the registry from above the loaders imports it from here, so no kind is missing
because its module was not imported yet."""

from __future__ import annotations

from app.loaders import front_door  # noqa: F401 - importing it declares every kind
from app.model.kinds import ArtifactKind, all_kinds, get_kind, model_suffixes, supported

__all__ = ["ArtifactKind", "all_kinds", "get_kind", "model_suffixes", "supported"]
