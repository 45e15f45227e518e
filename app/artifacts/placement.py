"""What the app writes on the user's disk, and what it takes from a job's work folder.

A fenced job writes only into a private work folder; the parent (this module's callers: conversions in
:mod:`app.jobs`, ``pack``, ``example``) places the files. Three rules hold everywhere:

- **Only declared names.** A job's result may name only the files its command writes (a converter's
  :meth:`~converters.base.Converter.declared_files` and the manifest; ``pack``'s ``samples.npz`` and
  ``pack.json``); anything else is refused and nothing is kept.
- **Plain files only.** What is taken from a work folder or copied from beside an artifact must be a
  regular file, not a link, a FIFO or a device (read with ``O_NOFOLLOW``, checked with ``fstat``).
- **Never through links.** A file is placed by renaming it over its destination, which replaces a link
  rather than writing into what it points at; a destination that exists is replaced only with
  ``overwrite``; a folder where a file should go is refused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
from pathlib import Path

from app.errors import BadInput, OutputExists

_CLEAN = str.maketrans({c: None for c in [*map(chr, range(32)), "\x7f"]})


def shown(name: object, limit: int = 120) -> str:
    """A file name from a job or a file, safe for one line on a terminal."""
    return str(name).translate(_CLEAN)[:limit]


def plain_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def check_free(dest: Path, *, overwrite: bool, folder: bool = False) -> None:
    """Refuse (one line) to place over ``dest`` when it exists and ``overwrite`` is off, or when it is
    a folder where a file goes (or a file where a folder goes). A link counts as existing, whatever it
    points at, and is replaced, never followed."""
    try:
        st = os.lstat(dest)
    except FileNotFoundError:
        return
    if not overwrite:
        raise OutputExists(f"{dest} exists already; pass --overwrite to replace it, or choose another folder")
    if stat.S_ISLNK(st.st_mode):
        return
    if folder != stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{dest} is a {'folder' if stat.S_ISDIR(st.st_mode) else 'file'}; it is not replaced "
                       f"by a {'folder' if folder else 'file'} (move it away, or choose another folder)")


def place(src: Path, dest: Path, *, overwrite: bool) -> Path:
    """Rename ``src`` (in a work folder on the same file system) to ``dest``: a file replaces a file or
    a link in one step, never writing through the link; a folder replaces a folder (removed first,
    links in it not followed) or a link."""
    check_free(dest, overwrite=overwrite, folder=src.is_dir() and not src.is_symlink())
    if src.is_dir() and not src.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(dest)
            if stat.S_ISDIR(st.st_mode):
                shutil.rmtree(dest)
            else:
                os.unlink(dest)
    os.replace(src, dest)
    return dest


def open_plain(path: Path, what: str):
    """``path`` opened for reading if it is a regular file and not a link (else one line naming it);
    the check is made on the open file, so it cannot be swapped between check and read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise BadInput(f"{path}: {what} is missing") from None
    except OSError as e:
        if Path(path).is_symlink():
            raise BadInput(f"{path}: {what} is a link; links are not copied (put the file itself there)") from None
        raise BadInput(f"{path}: cannot read {what} ({e.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise BadInput(f"{path}: {what} is not a regular file (a FIFO, device or folder is not copied)")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def copy_plain(src: Path, dest: Path, what: str) -> Path:
    """Copy the regular file ``src`` (never a link, a FIFO, a device) to the new file ``dest``, which
    must not exist (``O_EXCL``: nothing is written through a link there)."""
    with open_plain(src, what) as f_in:
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
        with os.fdopen(fd, "wb") as f_out:
            shutil.copyfileobj(f_in, f_out, 1 << 20)
    return dest


def take_plain(work: Path, name: str) -> Path:
    """``work/name`` if the job left it there as a regular file (not a link, FIFO or folder); else the
    one-line reason as :class:`ValueError`."""
    path = Path(work) / name
    if not plain_file(path):
        raise ValueError(f"{shown(name)} is missing or not a regular file")
    return path
