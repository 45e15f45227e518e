"""The import contracts of pyproject.toml: no Qt in the core, one-way layers, no import cycles."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _contracts() -> list[dict]:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept():
    """lint-imports with every contract of pyproject.toml: app/ and converters/ never import PySide6
    or ui/, every import goes down the layers, and no package's modules import each other in a circle."""
    linter = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    proc = subprocess.run([linter], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in proc.stdout
    assert {c["type"] for c in _contracts()} == {"forbidden", "layers", "acyclic_siblings"}


def test_every_core_module_has_a_layer():
    """A module the layers contract does not name is unconstrained: each new module of app/ takes its
    place in pyproject.toml (converters/ and ui/ are one layer each)."""
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    core = {f"app.{p.stem}" if p.is_file() else f"app.{p.name}" for p in (REPO / "app").iterdir()
            if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert core - placed == set(), "modules of app/ missing from the layers contract in pyproject.toml"
    assert {"ui", "converters"} <= placed
