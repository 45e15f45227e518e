"""Resolve ``--arch path/to/file.py:Factory`` or ``--arch package.module:Factory`` into a module."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from app.errors import BadInput


def parse_arch_kwargs(text: str | None) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"--arch-kwargs is not valid JSON ({e.msg}); e.g. --arch-kwargs '{{\"num_classes\": 10}}'") from None
    if not isinstance(value, dict):
        raise BadInput("--arch-kwargs must be a JSON object, e.g. '{\"num_classes\": 10}'")
    return value


def resolve_factory(ref: str) -> Any:
    """Return the class or function named by ``ref``."""
    if ":" not in ref:
        raise BadInput(f"--arch {ref!r}: expected path/to/file.py:Factory or package.module:Factory")
    where, _, attr = ref.rpartition(":")
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).expanduser()
        if not path.is_file():
            raise BadInput(f"--arch {ref!r}: file {path} does not exist")
        name = f"_studio_arch_{abs(hash(str(path.resolve())))}"
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec and spec.loader
            module = importlib.util.module_from_spec(spec)
            sys.path.insert(0, str(path.resolve().parent))  # so the file's own sibling imports work
            try:
                sys.modules[name] = module
                spec.loader.exec_module(module)
            except Exception as e:
                sys.modules.pop(name, None)
                raise BadInput(f"--arch {ref!r}: importing {path} failed: {type(e).__name__}: {e}") from e
            finally:
                sys.path.remove(str(path.resolve().parent))
    else:
        try:
            module = importlib.import_module(where)
        except Exception as e:
            raise BadInput(f"--arch {ref!r}: cannot import {where} ({type(e).__name__}: {e}); "
                           "is its package installed or on PYTHONPATH?") from e
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = [n for n, v in vars(module).items() if inspect.isclass(v) or inspect.isfunction(v)]
            raise BadInput(f"--arch {ref!r}: {where} has no {attr!r}; it defines: {', '.join(sorted(found)[:12]) or 'nothing callable'}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise BadInput(f"--arch {ref!r}: {attr} is not a class or function")
    return obj


def build_module(ref: str, kwargs: dict | None = None) -> Any:
    """Instantiate the architecture; it must be a ``torch.nn.Module``."""
    import torch

    factory = resolve_factory(ref)
    try:
        module = factory(**(kwargs or {}))
    except TypeError as e:
        raise BadInput(f"--arch {ref!r}: calling {getattr(factory, '__name__', ref)} failed: {e}; "
                       "pass its arguments with --arch-kwargs") from e
    if not isinstance(module, torch.nn.Module):
        raise BadInput(f"--arch {ref!r} returned {type(module).__name__}, not a torch.nn.Module")
    return module
