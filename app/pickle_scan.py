"""Static scan of a pickle's opcodes: which globals would unpickling import?

This is advice, not a sandbox: deny-lists have known bypasses. It runs before any full-module
unpickling the user allowed, and refuses the obviously hostile (os, subprocess, eval, ...).
"""

from __future__ import annotations

import io
import pickletools
import zipfile
from pathlib import Path

DANGEROUS_MODULES = {
    "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pty",
    "commands", "webbrowser", "ctypes", "multiprocessing", "code", "codeop", "pickle", "_pickle",
    "marshal", "types", "asyncio", "requests", "urllib", "http", "ftplib", "telnetlib", "smtplib",
}
DANGEROUS_BUILTINS = {"eval", "exec", "compile", "open", "__import__", "getattr", "setattr", "delattr",
                      "globals", "locals", "vars", "input", "breakpoint", "apply"}


def _pickles(path: Path) -> list[bytes]:
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
    return [path.read_bytes()]


def pickle_globals(path: Path) -> set[str]:
    """Every ``module.name`` the pickle(s) in ``path`` reference through GLOBAL/STACK_GLOBAL."""
    found: set[str] = set()
    for data in _pickles(path):
        strings: list[str] = []
        try:
            for op, arg, _pos in pickletools.genops(io.BytesIO(data)):
                if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8"):
                    strings.append(arg)
                elif op.name == "GLOBAL":
                    found.add(str(arg).replace(" ", "."))
                elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.add(f"{strings[-2]}.{strings[-1]}")
        except Exception:
            # a legacy torch.save file holds several pickles back to back; what we read counts
            continue
    return found


def dangerous_globals(names: set[str]) -> list[str]:
    bad = []
    for name in sorted(names):
        module, _, attr = name.rpartition(".")
        root = module.split(".")[0]
        if root in DANGEROUS_MODULES or (root in ("builtins", "__builtin__") and attr in DANGEROUS_BUILTINS):
            bad.append(name)
    return bad
