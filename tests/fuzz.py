"""Byte-level mutation of valid (and hostile) model files, fed to the loaders in fenced children.

Cases run in batches: one fenced child inspects many files in turn (so the harness measures the
loaders, not process start-up), reporting each case before it starts. A case that kills its child
(a native crash) or outlives its alarm (a hang: SIGALRM ends the child) is recorded as such and the
batch goes on in a new child. Side effects: a hostile seed's payload would create a marker file;
any marker that exists after a run is counted.
"""

from __future__ import annotations

import random
import re
import signal
from pathlib import Path

from app.errors import ConversionFailed, StudioError
from app.jobs import JobTimeout, run_inspection, run_job
from app.request import ModelSource

OUTCOMES = ("ok", "error", "raw", "unhandled", "crash", "hang")

# a user-facing message that starts with an exception's class name ("AssertionError: ...",
# "torch._C.JITException: ...") is raw exception text, not a sentence: what, which file, what to do
RAW_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?(?:[A-Z][A-Za-z0-9]*)?(?:Error|Exception|Warning|Exit|Interrupt)"
                           r"(?::|$)|^[A-Za-z_.]+Error:")


def raw_exception_text(message: str) -> bool:
    """Whether ``message`` (an ``error:`` line's text or a StudioError's) starts with a class name."""
    return bool(RAW_EXCEPTION.match(message.strip().removeprefix("error:").strip()))


def assert_sentences(stderr: str) -> None:
    """Every ``error:`` line of a command's stderr is a sentence, not raw exception text."""
    raw = [line for line in stderr.splitlines() if line.startswith("error:") and raw_exception_text(line)]
    assert not raw, f"raw exception text reaches the user: {raw}"


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


def mutate_member(data: bytes, rng: random.Random) -> bytes:
    """For a zip archive: mutate one member's bytes (often the pickle) and rewrite the archive with
    valid checksums, so the case gets past the CRC check into torch's readers; else :func:`mutate`."""
    import io
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            members = [(i.filename, z.read(i.filename)) for i in z.infolist()]
    except Exception:  # noqa: BLE001 - not a (readable) zip: plain byte mutation
        return mutate(data, rng)
    pickles = [i for i, (name, _) in enumerate(members) if name.endswith((".pkl", ".json", ".pt")) or "/code/" in name]
    k = rng.choice(pickles) if pickles and rng.random() < 0.7 else rng.randrange(len(members))
    name, content = members[k]
    members[k] = (name, mutate(content, rng) if len(content) > 1 else content)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for n, c in members:
            z.writestr(n, c)
    return out.getvalue()


def run_case(path: Path, timeout: float = 10.0) -> str:
    """One case in its own child: ``ok``, ``error`` (clean StudioError), ``crash`` or ``hang``."""
    try:
        run_inspection(ModelSource(Path(path)), timeout=timeout)
        return "ok"
    except JobTimeout:
        return "hang"
    except StudioError as e:
        return "crash" if "crashed" in str(e) else "error"


def inspect_many(payload: dict, progress, should_cancel) -> int:
    """Child entry: inspect ``payload["paths"]`` in turn, each under an alarm of ``payload["alarm"]`` s,
    reporting ``"<i> start"`` and ``"<i> <outcome>"`` as progress; returns how many ran."""
    import torch._export.serde.serialize  # noqa: F401 - imported once, before the alarms (seconds on a busy machine)
    import torch.export.pt2_archive._package  # noqa: F401

    from app.jobs import inspect_job

    for i, path in enumerate(payload["paths"]):
        progress(f"{i} start", None)
        signal.alarm(payload["alarm"])  # default action: the child ends; the parent records a hang
        try:
            inspect_job(ModelSource(Path(path), allow_pickle=payload.get("allow_pickle", False)))
            outcome = "ok"
        except StudioError as e:
            text = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            outcome = f"raw {text}" if raw_exception_text(text) else "error"
        except Exception:  # noqa: BLE001 - a loader failing without a clean message: counted, not fatal
            outcome = "unhandled"
        finally:
            signal.alarm(0)
        progress(f"{i} {outcome}", None)
    return len(payload["paths"])


def run_batch(paths: list[Path], *, alarm: int = 10, allow_pickle: bool = False,
              messages: dict[str, str] | None = None) -> list[str]:
    """Outcomes of ``paths`` (one of :data:`OUTCOMES` each), in as few fenced children as possible;
    ``messages`` gets, per path, the message of each ``raw`` outcome (raw exception text)."""
    results: list[str] = []
    todo = [str(p) for p in paths]
    while todo:
        seen: dict[int, str] = {}

        def progress(stage, fraction, seen=seen, todo=todo):
            index, what, *text = stage.split(" ", 2)
            seen[int(index)] = what
            if what == "raw" and messages is not None:
                messages[todo[int(index)]] = text[0] if text else ""

        try:
            run_job("tests.fuzz:inspect_many", {"paths": todo, "alarm": alarm, "allow_pickle": allow_pickle},
                    progress=progress, timeout=alarm * len(todo) + 60)
        except (ConversionFailed, JobTimeout) as e:
            last = max(seen, default=-1)
            if seen.get(last) == "start":  # the case the child died in
                seen[last] = "hang" if "SIGALRM" in str(e) or isinstance(e, JobTimeout) else "crash"
        done = [seen[i] for i in sorted(seen)]
        if not done:
            raise RuntimeError("the fuzz child died before its first case")
        results += done
        todo = todo[len(done):]
    return results
