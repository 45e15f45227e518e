"""Atomic output: everything is written into a private temporary folder inside the output folder
and renamed into place at the end, so a crash or cancel never leaves a half-written artifact."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from app.errors import BadInput, OutputExists

TMP_PREFIX = ".studio-tmp-"


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def prepare_out_dir(out_dir: Path) -> Path:
    """Create ``out_dir`` if needed and check it is writable; one clear line if not."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BadInput(f"cannot create output folder {out_dir} ({e.strerror}); choose another with --out") from None
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise BadInput(f"cannot write to output folder {out_dir} (permission denied); choose another with --out")
    return out_dir


def check_targets(paths: list[Path], *, source: Path, overwrite: bool) -> None:
    for p in paths:
        if p.resolve() == source.resolve():
            raise BadInput(f"refusing to write {p}: it is the source model; choose another --out")
        if p.exists() and not overwrite:
            raise OutputExists(f"{p} exists already; pass --overwrite to replace it, or choose another --out")


def work_dir(out_dir: Path) -> Path:
    try:
        return Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=out_dir)).resolve()
    except OSError as e:
        raise BadInput(f"cannot write to output folder {out_dir} ({e.strerror}); choose another with --out") from None


def commit(files: list[Path], out_dir: Path) -> list[Path]:
    """Rename ``files`` (in the work dir) into ``out_dir``; the primary (first) goes last but one,
    side files first, so a visible artifact always has its data beside it."""
    placed = []
    order = files[1:] + files[:1]
    for f in order:
        dest = out_dir / f.name
        os.replace(f, dest)
        placed.append(dest)
    return [out_dir / f.name for f in files]


def remove_work_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clean_stale_work_dirs(out_dir: Path, prefix: str = TMP_PREFIX) -> list[Path]:
    """Remove ``prefix<pid>-*`` temporaries whose process is gone (left by a crashed or killed run)."""
    removed = []
    if out_dir.is_dir():
        for p in out_dir.glob(prefix + "*"):
            pid = p.name[len(prefix):].split("-")[0]
            if p.is_dir() and not (pid.isdigit() and _alive(int(pid))):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file beside it: readers see the old file or the
    whole new one, never half of it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
