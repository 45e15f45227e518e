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


# -- job entry points: function references the contracts see, never strings
def _layer_of(module: str, layers: list[str]) -> tuple[int, str]:
    """(index of ``module``'s layer in the layers contract, the package it sits under)."""
    for i, layer in enumerate(layers):
        for name in (n.strip() for n in layer.replace("|", ":").split(":")):
            if module == name or module.startswith(name + "."):
                return i, name
    raise AssertionError(f"{module} has no layer")


def _siblings_independent(layer: str) -> bool:
    return "|" in layer


def _job_calls():
    """(caller module, the expression naming the job, the module it was imported from or None) of every
    ``run_job(...)`` call in app/, converters/ and ui/."""
    import ast

    for path in [*(REPO / "app").rglob("*.py"), *(REPO / "converters").rglob("*.py"), *(REPO / "ui").rglob("*.py")]:
        caller = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        imported = {}  # name -> module:name, from every import in the file (lazy ones included)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    imported[a.asname or a.name] = (node.module, a.name)
        defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "run_job":
                yield caller, node.args[0], imported, defined


def test_every_job_target_is_a_function_its_caller_may_import():
    """run_job takes the entry point's function (an import the contracts check), never a "module:name"
    string they cannot see; each resolves to a module the caller's layer may import (down the layers,
    never a UI module from the core), and the child finds it again by its name (app.jobs.job_name)."""
    import ast
    import importlib

    from app.jobs import job_name

    (layers,) = [c["layers"] for c in _contracts() if c["type"] == "layers"]
    seen = []
    for caller, arg, imported, defined in _job_calls():
        where = f"{caller}: run_job({ast.unparse(arg)}, …)"
        assert not isinstance(arg, (ast.Constant, ast.JoinedStr)), f"{where} names its job by a string"
        if isinstance(arg, ast.Name) and arg.id in defined:
            module, name = caller, arg.id
        elif isinstance(arg, ast.Name) and arg.id in imported:
            module, name = imported[arg.id]
        elif isinstance(arg, ast.Attribute) and isinstance(arg.value, ast.Name) and arg.value.id in imported:
            module, name = ".".join(imported[arg.value.id]), arg.attr
        else:
            raise AssertionError(f"{where}: the job is not a function imported or defined at the top of a module")
        fn = getattr(importlib.import_module(module), name)
        assert job_name(fn) == f"{module}:{name}", where
        here, there = _layer_of(caller, layers), _layer_of(module, layers)
        assert here[0] < there[0] or here[1] == there[1] or not _siblings_independent(layers[here[0]]), \
            f"{where}: {module} is not below {caller} in the layers contract"
        assert here[0] <= there[0], f"{where}: {module} is above {caller}"
        if not caller.startswith("ui"):
            assert not module.startswith("ui"), f"{where}: the core names a UI module"
        seen.append(f"{module}:{name}")
    assert len(seen) >= 15 and "app.jobs:diagnose_job" in seen and "ui.warmup:child_ready" in seen
    assert not [s for s in seen if s.startswith("app.cli.")], "engine code runs in a job from app/cli"


def test_a_job_the_child_cannot_import_by_name_is_refused_in_the_caller():
    """A lambda or a nested function has no name the child can import: refused before a child starts."""
    import pytest

    from app.jobs import job_name, run_job

    def nested(payload, progress, should_cancel):
        return payload

    for fn in (nested, lambda payload, progress, cancel: payload):
        with pytest.raises(TypeError, match="not a module-level function"):
            run_job(fn, None)
    assert job_name("tests.crashers:echo") == "tests.crashers:echo"
