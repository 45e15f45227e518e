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


CORE_FLOW = {"request", "pipeline", "jobs", "session", "errors"}


def _top_of_app() -> tuple[set[str], set[str]]:
    here = (REPO / "app").iterdir()
    entries = [p for p in here if p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists())]
    modules = {p.stem for p in entries if p.is_file() and p.stem != "__init__"}
    packages = {p.name for p in entries if p.is_dir()}
    return modules, packages


def test_every_core_package_has_a_layer():
    """The layers contract names packages, not modules: every package of app/ and every module of the
    core flow takes its place in pyproject.toml (converters/ and ui/ are one layer each), and no entry
    names a module inside a package."""
    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    placed = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}
    modules, packages = _top_of_app()
    core = {f"app.{name}" for name in modules | packages}
    assert core - placed == set(), "packages of app/ missing from the layers contract in pyproject.toml"
    assert placed - core == {"ui", "converters"}, "the layers contract names only app's packages and core flow"


def test_app_root_holds_only_the_core_flow():
    """app/ by concern: at its top only the core flow (request → pipeline → jobs → session, and the
    errors they end in); everything else lives in a package whose __init__ says what it owns."""
    modules, packages = _top_of_app()
    assert modules == CORE_FLOW
    for name in packages:
        doc = (REPO / "app" / name / "__init__.py").read_text()
        assert doc.lstrip().startswith('"""') and len(doc.split('"""')[1]) > 80, f"app/{name}/__init__.py says what it owns"


def test_no_function_over_80_lines_in_the_core():
    """Long functions are split where a name explains the part; the TensorRT engine builder (a
    script run as its own process, one linear recipe) is the one exception."""
    import ast

    long = []
    for path in [*(REPO / "app").rglob("*.py"), *(REPO / "converters").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 80:
                long.append(f"{path.relative_to(REPO)}:{node.name}")
    assert long == ["app/runtimes/tensorrt_build.py:build_engine"]
