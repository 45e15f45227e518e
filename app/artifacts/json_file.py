"""Reading the JSON files that lie beside artifacts and runs (manifests, saved ``bench --json`` results,
sweeps, TensorRT side files) in the unfenced process: never blocking, bounded, one typed error.

A side file is data a model's author may have shaped: :func:`read_json_file` opens it without
blocking (a FIFO or a device where a manifest should be is refused, not waited on: ``O_NONBLOCK``,
then ``fstat`` must say a regular file), reads at most ``max_bytes``, counts its containers before
parsing (each ``{``/``[`` costs ~60 bytes once parsed: a file of ``[{},{},...]`` is refused rather
than grown 25-fold in memory), and refuses nesting deeper than ``max_depth`` after parsing (so no
consumer recurses into a ``RecursionError``). Every failure is :class:`SideFileError`, a
:class:`~app.errors.BadInput` whose message names the file and says what is wrong with it.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from app.errors import SideFileError, SideFileMissing

__all__ = ["SideFileError", "SideFileMissing", "read_json_file", "read_json_object", "read_bytes_bounded",
           "check_fields", "check_list_of"]

MAX_SIDE_FILE_BYTES = 32 * 2**20     # a manifest is a few kB, a saved benchmark or sweep well under 1 MB
MAX_CONTAINERS = 200_000             # objects and arrays ({ and [, strings included: an upper bound)
MAX_DEPTH = 32                       # a manifest nests ~6 deep


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def read_bytes_bounded(path: Path, what: str, max_bytes: int = MAX_SIDE_FILE_BYTES) -> bytes:
    """The content of the regular file ``path``, at most ``max_bytes``; opened without blocking and
    without becoming a controlling terminal. Raises :class:`SideFileMissing` / :class:`SideFileError`."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SideFileMissing(f"{path}: no such {what}") from None
    except OSError as e:
        raise SideFileError(f"{path}: cannot read this {what} ({e.strerror or type(e).__name__})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SideFileError(f"{path}: {_kind_of(st.st_mode)} where a {what} should be (a {what} is a plain "
                                "file); nothing was read from it")
        if st.st_size > max_bytes:
            raise SideFileError(f"{path}: {st.st_size / 2**20:.1f} MB is too large for a {what} "
                                f"(at most {max_bytes / 2**20:.0f} MB); refused")
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as e:
        raise SideFileError(f"{path}: cannot read this {what} ({e.strerror or type(e).__name__})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:  # it grew while we read
        raise SideFileError(f"{path}: larger than {max_bytes / 2**20:.0f} MB; too large for a {what}; refused")
    return data


def read_json_file(path: str | os.PathLike, what: str = "JSON file", *, max_bytes: int = MAX_SIDE_FILE_BYTES,
                   max_containers: int = MAX_CONTAINERS, max_depth: int = MAX_DEPTH):
    """The JSON value in the side file ``path`` (``what`` names the kind in messages: "manifest",
    "benchmark result"). Raises :class:`SideFileMissing` when it does not exist and
    :class:`SideFileError` (one line naming the file) for everything else that is wrong with it."""
    path = Path(path)
    raw = read_bytes_bounded(path, what, max_bytes)
    containers = raw.count(b"{") + raw.count(b"[")
    if containers > max_containers:
        raise SideFileError(f"{path}: {containers:,} JSON objects/arrays is far more than a {what} holds "
                            f"(at most {max_containers:,}); refused")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SideFileError(f"{path}: not UTF-8 text, so not a {what}") from None
    except RecursionError:
        raise SideFileError(f"{path}: nested more than {max_depth} levels deep; not a {what}") from None
    except ValueError as e:  # JSONDecodeError, and integers too long to convert
        raise SideFileError(f"{path}: not a readable JSON file ({str(e).splitlines()[0][:120]}), so not a "
                            f"{what}") from None
    if _depth_over(data, max_depth):
        raise SideFileError(f"{path}: nested more than {max_depth} levels deep; not a {what}")
    return data


def _depth_over(data, limit: int) -> bool:
    """Whether ``data`` nests containers more than ``limit`` deep (walked without recursion)."""
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = list(value.values())
        elif not isinstance(value, list):
            continue
        if depth > limit:
            return True
        stack.extend((v, depth + 1) for v in value if isinstance(v, (dict, list)))
    return False


def read_json_object(path: str | os.PathLike, what: str = "JSON file", **limits) -> dict:
    """:func:`read_json_file` for files whose top level must be an object."""
    data = read_json_file(path, what, **limits)
    if not isinstance(data, dict):
        raise SideFileError(f"{path}: a JSON {type(data).__name__}, not a {what}")
    return data


# ---------------------------------------------------------------------------- checking fields' types
def type_name(value) -> str:
    """How a message names a JSON value's type."""
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def _names(types: tuple) -> str:
    return " or ".join(dict.fromkeys(type_name(t()) for t in types))


def check_fields(data: dict, fields: dict, path, what: str, prefix: str = "") -> None:
    """Refuse (:class:`SideFileError`, naming the file and the field) a field of ``data`` whose value is
    not of the type ``fields`` gives it (``{name: type or tuple of types}``; null is always allowed:
    a missing value). ``bool`` is no number here."""
    for name, types in fields.items():
        value = data.get(name)
        if value is None:
            continue
        types = types if isinstance(types, tuple) else (types,)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            raise SideFileError(f"{path}: field {prefix}{name!s} is {type_name(value)}, not {_names(types)}; "
                                f"this {what} is damaged or was not written by this app")


def check_list_of(data: dict, name: str, types, path, what: str, fields: dict | None = None,
                  prefix: str = "") -> None:
    """Refuse a list field ``name`` of ``data`` whose items are not of ``types`` (and, for objects, whose
    ``fields`` are not of their types); null or missing is allowed."""
    items = data.get(name)
    if items is None:
        return
    check_fields(data, {name: list}, path, what, prefix)
    types = types if isinstance(types, tuple) else (types,)
    for i, item in enumerate(items):
        if isinstance(item, bool) and bool not in types or not isinstance(item, types):
            raise SideFileError(f"{path}: field {prefix}{name}[{i}] is {type_name(item)}, not {_names(types)}; "
                                f"this {what} is damaged or was not written by this app")
        if fields and isinstance(item, dict):
            check_fields(item, fields, path, what, prefix=f"{prefix}{name}[{i}].")
