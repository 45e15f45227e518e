"""Byte-level mutation of valid model files, fed to the loaders in a supervised child process."""

from __future__ import annotations

import random
from pathlib import Path

from app.errors import StudioError
from app.jobs import JobTimeout, run_inspection


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of: flip bytes, truncate, splice a chunk elsewhere, insert junk, zero a run."""
    buf = bytearray(data)
    kind = rng.choice(["flip", "truncate", "splice", "insert", "zero"])
    if kind == "flip":
        for _ in range(rng.randint(1, 32)):
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)):]
    elif kind == "splice":
        a, b = sorted(rng.sample(range(len(buf)), 2))
        chunk = buf[a:b][:4096]
        at = rng.randrange(len(buf))
        buf[at:at] = chunk
    elif kind == "insert":
        at = rng.randrange(len(buf))
        buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        a = rng.randrange(len(buf))
        buf[a:a + rng.randint(1, 256)] = bytes(min(256, len(buf) - a))
    return bytes(buf)


def run_case(path: Path, timeout: float = 10.0) -> str:
    """``ok`` (loaded), ``error`` (clean StudioError), ``crash`` (child died) or ``hang``."""
    try:
        run_inspection({"path": str(path)}, timeout=timeout)
        return "ok"
    except JobTimeout:
        return "hang"
    except StudioError as e:
        return "crash" if "crashed" in str(e) else "error"
