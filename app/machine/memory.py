"""Memory and disk before, during and after a job: estimate, refuse or warn, and explain an OOM.

Before a conversion starts (in the parent, before a child exists) :func:`preflight` estimates the
job's peak memory from the source's size and the target, compares it with the memory available
(``MemAvailable``, capped by the cgroup's limit), and refuses a job that will not fit
(:class:`NotEnoughMemory`, with the estimate and what to do) or warns when it is tight; it also checks
the free space of the output folder (where the work folder lies) and of the temporary folder.
``--ignore-memory-check`` (the window: a tick box) skips the memory refusal.

While a job runs, :func:`peak_rss` reads a child's high-water mark (``VmHWM``), so when the kernel's
out-of-memory killer ends it, :func:`out_of_memory_message` can say "ran out of memory (peak N GB)".

Tests (and users who want to rehearse) fake the machine: ``DEPLOY_STUDIO_AVAILABLE_MEMORY=3G`` and
``DEPLOY_STUDIO_FREE_DISK=500M`` (every folder) or ``DEPLOY_STUDIO_FREE_DISK=/path=1G;/other=0``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.errors import BadInput, ConversionFailed, StudioError

GB = 1e9

# Peak memory of a whole `convert` (CLI process + forkserver + fenced child, summed PSS) as
# BASE + factor x source size, per target and precision. Calibrated on the 671 M-parameter MLP
# (2.68 GB of fp32 weights) by benchmarks/bench_memory.py (see the README), rounded up by ~10 %:
# onnx fp32 5.9 GB, torch-export 6.4 GB, torchscript-trace 5.7 GB from the state dict; onnx fp16 and
# int8 3.0 GB from the fp32 ONNX (streamed). From a torch source fp16/int8 first export fp32.
BASE_BYTES = int(1.2 * GB)   # python + torch + onnxruntime in three processes, exporter code
FACTORS = {
    ("onnx", "fp32"): 1.9, ("onnx", "fp16"): 1.9, ("onnx", "int8"): 1.9,
    ("torch-export", "fp32"): 2.1, ("torchscript-trace", "fp32"): 1.9, ("torchscript-script", "fp32"): 1.9,
}
FROM_ONNX = {("onnx", "fp16"): 0.8, ("onnx", "int8"): 0.8}  # the weights streamed, never all in memory
DEFAULT_FACTOR = 3.0          # targets not calibrated yet (OpenVINO, TensorRT, bf16/fp16 torch targets)
TIGHT = 0.8                   # warn above this share of the available memory

# bytes written beside the output (the work folder lies inside it) as a multiple of the source
DISK_FACTORS = {"fp32": 1.05, "fp16": 1.6, "bf16": 1.6, "int8": 2.3}
TMP_FACTOR = {"int8": 1.05}    # ONNX Runtime's pre-quantization pass writes a copy to the temporary folder


class NotEnoughMemory(BadInput):
    """The job's estimated peak memory exceeds what this machine has available."""


class NotEnoughDisk(BadInput):
    """A folder the job writes to has less free space than the artifact needs."""


def parse_size(text: str) -> int:
    """``"3G"``, ``"512M"``, ``"1.5GB"``, ``"2GiB"`` or a byte count → bytes (decimal units, ``i``: binary)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(i?)[bB]?\s*", text)
    if not m:
        raise ValueError(f"not a size: {text!r} (e.g. 4G, 512M, 1000000)")
    base = 1024 if m.group(3) else 1000
    power = " kmgt".index(m.group(2).lower() or " ")
    return int(float(m.group(1)) * base ** power)


def gb(n: float) -> str:
    """Bytes as ``"2.7 GB"`` (``"0.35 GB"`` under 1 GB)."""
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / GB:.2f} GB"


# ---------------------------------------------------------------------------- the machine
def _meminfo_available() -> int | None:
    # one reader of /proc/meminfo: the fence's (app.safety lies below app.machine in the layers)
    from app.safety.sandbox import available_memory

    return available_memory()


def _cgroup_room() -> int | None:
    """What the cgroup (v2) this process is in still allows: memory.max - memory.current."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split(":", 2)[2]
        folder = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((folder / "memory.current").read_text()), 0)
    except (OSError, IndexError, ValueError):
        return None


def available_memory() -> int:
    """Bytes a new job can use: ``DEPLOY_STUDIO_AVAILABLE_MEMORY`` if set (tests, rehearsals), else the
    kernel's ``MemAvailable`` (free + reclaimable cache), capped by the cgroup's limit."""
    fake = os.environ.get("DEPLOY_STUDIO_AVAILABLE_MEMORY")
    if fake:
        return parse_size(fake)
    found = [n for n in (_meminfo_available(), _cgroup_room()) if n is not None]
    if not found:
        import psutil

        found = [psutil.virtual_memory().available]
    return min(found)


def free_disk(folder: Path) -> int:
    """Free bytes on ``folder``'s file system (the nearest existing parent's); faked by
    ``DEPLOY_STUDIO_FREE_DISK`` (``BYTES`` for every folder, or ``PATH=BYTES;...``, longest path wins)."""
    folder = Path(folder).resolve()
    fake = os.environ.get("DEPLOY_STUDIO_FREE_DISK")
    if fake:
        if "=" not in fake:
            return parse_size(fake)
        rules = [part.rsplit("=", 1) for part in fake.split(";") if part.strip()]
        matching = [(len(p), parse_size(n)) for p, n in rules if folder.is_relative_to(Path(p).resolve())]
        if matching:
            return max(matching)[1]
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


# ---------------------------------------------------------------------------- the job
def source_bytes(path: Path) -> int:
    """Size of a model file plus the external-data files an ONNX model names (what gets loaded)."""
    path = Path(path)
    total = path.stat().st_size if path.is_file() else 0
    if path.suffix.lower() == ".onnx" and path.is_file():
        try:  # read from the wire format, never parsed here (bounded: app.runtimes.onnx_scan)
            from app.runtimes.onnx_scan import scan_onnx

            names = {e.value for t in scan_onnx(path).external for e in t.external_data if e.key == "location"}
            total += sum((path.parent / n).stat().st_size for n in names if (path.parent / n).is_file())
        except Exception:  # noqa: BLE001 - an unreadable model fails later with its own clear message
            pass
    return total


@dataclass(frozen=True)
class Estimate:
    """A job's expected peak memory (bytes) and how it was reckoned."""

    peak: int
    source: int
    factor: float
    calibrated: bool

    def describe(self) -> str:
        return f"about {gb(self.peak)} (source {gb(self.source)} × {self.factor:g} + {gb(BASE_BYTES)})"


def estimate(source: int, target: str, precision: str, *, from_onnx: bool = False) -> Estimate:
    """Peak memory of converting a ``source``-byte model (``from_onnx``: an ONNX file) to
    ``target``/``precision``."""
    factor = (FROM_ONNX if from_onnx else {}).get((target, precision)) or FACTORS.get((target, precision))
    return Estimate(int(BASE_BYTES + (factor or DEFAULT_FACTOR) * source), source, factor or DEFAULT_FACTOR,
                    factor is not None)


def _lighter(source: int, target: str, precision: str, room: int, from_onnx: bool) -> str:
    """A calibrated target that would fit, to suggest instead (empty when none does)."""
    fits = sorted((estimate(source, t, p, from_onnx=from_onnx).peak, t, p) for t, p in FACTORS
                  if (t, p) != (target, precision))
    return next((f"--to {t} --precision {p} needs {gb(n)}" for n, t, p in fits if n <= room), "")


def check_memory(request, source: int | None = None) -> list[str]:
    """Refuse (:class:`NotEnoughMemory`) a conversion that will not fit; return warnings when tight."""
    path = Path(request.source.path)
    source = source_bytes(path) if source is None else source
    from_onnx = path.suffix.lower() == ".onnx"
    est = estimate(source, request.target, request.precision, from_onnx=from_onnx)
    room = available_memory()
    what = f"--to {request.target} --precision {request.precision} of {path.name}"
    if est.peak > room:
        lighter = _lighter(source, request.target, request.precision, room, from_onnx)
        raise NotEnoughMemory(
            f"{what} needs {est.describe()} of memory but only {gb(room)} is available: close other programs, "
            + (f"choose another target ({lighter}), " if lighter else "")
            + "or run it on a machine with more memory; --ignore-memory-check runs it anyway")
    if est.peak > TIGHT * room:
        return [f"memory is tight: {what} needs {est.describe()} of the {gb(room)} available; other programs "
                "that grow meanwhile may make it run out"]
    return []


def disk_need(source: int, precision: str) -> tuple[int, int]:
    """(bytes in the output folder, bytes in the temporary folder) a conversion writes at most (over
    2 GB the pre-quantization pass, the only user of the temporary folder, is skipped)."""
    tmp = TMP_FACTOR.get(precision, 0.0) if source <= 2 * GB else 0.0
    return int(DISK_FACTORS.get(precision, 1.05) * source), int(tmp * source)


def check_disk(request, out_dir: Path, source: int | None = None) -> None:
    """Refuse (:class:`NotEnoughDisk`, naming the folder) when the output or temporary folder lacks room."""
    source = source_bytes(Path(request.source.path)) if source is None else source
    out_need, tmp_need = disk_need(source, request.precision)
    for folder, need, what in ((Path(out_dir), out_need, "output folder"),
                               (Path(tempfile.gettempdir()), tmp_need, "temporary folder (TMPDIR)")):
        if need <= 0:
            continue
        free = free_disk(folder)
        if free < need:
            hint = ("--out DIR on a disk with room" if what == "output folder"
                    else "TMPDIR=DIR on a disk with room")
            raise NotEnoughDisk(f"the {what} {folder} has {gb(free)} free but --to {request.target} --precision "
                                f"{request.precision} writes about {gb(need)} there: free space, or use {hint}")


def preflight(request, out_dir: Path, source: int | None = None) -> list[str]:
    """The checks before a conversion starts: disk always, memory unless the request overrides it.
    Returns warnings (a tight fit); raises :class:`NotEnoughMemory` / :class:`NotEnoughDisk`.
    ``source``: :func:`source_bytes` of the request's model, where the caller has it."""
    source = source_bytes(Path(request.source.path)) if source is None else source
    check_disk(request, out_dir, source)
    if getattr(request, "ignore_memory_check", False):
        return []
    return check_memory(request, source)


# ---------------------------------------------------------------------------- during and after
def peak_rss(pid: int) -> int | None:
    """A live process's peak resident memory (``VmHWM``), bytes; None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def own_peak_rss() -> int:
    """This process's peak resident memory, bytes (getrusage; Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)


def oom_kills() -> int | None:
    """The kernel's count of out-of-memory kills in this process's cgroup (v2 ``memory.events``)."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split(":", 2)[2]
        events = (Path("/sys/fs/cgroup") / rel.lstrip("/") / "memory.events").read_text()
    except (OSError, IndexError):
        return None
    m = re.search(r"^oom_kill (\d+)$", events, re.M)
    return int(m.group(1)) if m else None


_ALLOCATION_FAILURES = ("MemoryError", "bad_alloc", "can't allocate memory", "Failed to allocate memory",
                        "Unable to allocate", "Cannot allocate memory", "out of memory",
                        "failed to map segment from shared object")  # a library loaded past RLIMIT_AS


def is_allocation_failure(message: str) -> bool:
    """Whether a child's error message is an allocation that failed (RLIMIT_AS, or the machine full)."""
    return any(s.lower() in message.lower() for s in _ALLOCATION_FAILURES)


def out_of_memory_message(peak: int | None, how: str) -> str:
    """The one line for a job that ran out of memory; ``how``: what ended it."""
    at = f" (peak {gb(peak)})" if peak else ""
    limit = os.environ.get("DEPLOYSTUDIO_JOB_MEMORY_MB")
    raise_it = f", or raise DEPLOYSTUDIO_JOB_MEMORY_MB={limit} (the job's address-space limit)" if limit else ""
    return (f"the converter process ran out of memory{at}: {how}; close other programs, choose a lighter "
            f"target or precision, or run it on a machine with more memory{raise_it}")


_NO_SPACE = re.compile(r"No space left on device|\[Errno 28\]|Disk quota exceeded|ENOSPC", re.I)


def disk_full_message(message: str, folder: Path) -> str | None:
    """The one line for a job whose disk filled up mid-write (None when ``message`` is something else)."""
    if not _NO_SPACE.search(message):
        return None
    named = re.search(r"'(/[^']+)'", message)
    where = Path(named.group(1)).parent if named else Path(folder)
    return (f"the disk of {where} filled up while writing (no space left on device); nothing was written: free "
            "space there, or use --out DIR (and TMPDIR) on a disk with room")


class OutOfMemory(ConversionFailed):
    """The job's child ran out of memory (killed by the kernel, or an allocation was refused)."""


class DiskFull(ConversionFailed):
    """A folder the job wrote to filled up mid-write."""


def explain_failure(error: StudioError, peak: int | None, folder: Path | None) -> StudioError:
    """A child's error, reworded when it was an exhausted resource: memory (with the child's peak) or
    disk (naming the folder); other errors are returned as they are."""
    message = str(error)
    if is_allocation_failure(message):  # even where a loader called it a bad input: memory ran out
        cut = message if len(message) <= 160 else message[:159] + "…"
        better: StudioError = OutOfMemory(out_of_memory_message(peak, f"an allocation failed ({cut})"))
    elif (full := disk_full_message(message, folder or Path(tempfile.gettempdir()))) is not None:
        better = DiskFull(full)
    else:
        return error
    better.details = error.details
    return better


def written_progress(progress, work: Path, request, every: float = 0.5, source: int | None = None):
    """(progress, tick) for a conversion: ``tick`` (called often by :func:`app.jobs.run_job`) adds how
    much the child has written to its work folder to the current stage — "wrote 1.2 / ~2.8 GB" — at
    most every ``every`` seconds and only when it grew (multi-GB exports are quiet for minutes).
    ``source``: :func:`source_bytes` of the request's model, where the caller has it."""
    import time

    source = source_bytes(Path(request.source.path)) if source is None else source
    expected = disk_need(source, request.precision)[0]
    state = {"stage": "", "shown": 0, "at": 0.0}

    def on_progress(stage: str, fraction: float | None = None) -> None:
        state["stage"] = stage
        progress(stage, fraction)

    def tick() -> None:
        now = time.monotonic()
        if now - state["at"] < every:
            return
        state["at"] = now
        try:
            written = sum(e.stat().st_size for e in os.scandir(work) if e.is_file())
        except OSError:
            return
        if written >= 64e6 and written - state["shown"] >= max(expected * 0.05, 64e6):
            state["shown"] = written
            progress(f"{state['stage'] or 'write'}: wrote {written / GB:.1f} / ~{expected / GB:.1f} GB", None)

    return on_progress, tick
