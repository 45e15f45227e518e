"""What this machine's CPU and GPU can do for inference, detected at run time (Qt-free, cheap).

The instruction sets that decide which precision is fast on a CPU:

- **AVX2** / **AVX-512F**: wide float vectors (fp32 kernels of every runtime use them).
- **VNNI** (AVX-512 VNNI or AVX-VNNI): int8 dot products in one instruction — what makes INT8 fast.
- **AVX-512 BF16**: bfloat16 dot products; **AMX** (AMX-TILE with AMX-BF16/AMX-INT8): matrix units
  on Xeon Sapphire Rapids and later. BF16 artifacts are offered only where one of them exists:
  elsewhere bf16 is emulated and slower than fp32.

Linux: the ``flags`` line of ``/proc/cpuinfo`` (no library import, so the window can ask). Elsewhere:
OpenVINO's ``OPTIMIZATION_CAPABILITIES`` of the CPU device (``BF16``/``INT8``), when OpenVINO is
installed. ``DEPLOY_STUDIO_CPU_FLAGS`` (space-separated ``/proc/cpuinfo`` flag names) replaces the
detected flags: to see what the app would offer on another CPU (e.g. one without BF16).
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from dataclasses import dataclass

CPU_FLAGS_ENV = "DEPLOY_STUDIO_CPU_FLAGS"

# (display name, /proc/cpuinfo flags any of which means the feature is there)
ISA_FEATURES = (
    ("AVX2", ("avx2",)),
    ("AVX-512", ("avx512f",)),
    ("VNNI", ("avx512_vnni", "avx_vnni")),
    ("AVX-512 BF16", ("avx512_bf16",)),
    ("AMX", ("amx_bf16", "amx_int8")),
)


@dataclass(frozen=True)
class CpuInfo:
    """The CPU's name and the instruction sets that matter for inference speed."""

    name: str
    flags: frozenset[str]
    source: str = "/proc/cpuinfo"    # where the flags came from

    def has(self, *flags: str) -> bool:
        return any(f in self.flags for f in flags)

    @property
    def avx2(self) -> bool:
        return self.has("avx2")

    @property
    def avx512(self) -> bool:
        return self.has("avx512f")

    @property
    def vnni(self) -> bool:
        return self.has("avx512_vnni", "avx_vnni", "amx_int8")

    @property
    def amx(self) -> bool:
        return self.has("amx_bf16", "amx_int8")

    @property
    def bf16(self) -> bool:
        """Native bfloat16 compute: AVX-512 BF16 or AMX-BF16."""
        return self.has("avx512_bf16", "amx_bf16")

    def features(self) -> list[str]:
        """The display names of the features present, e.g. ``["AVX2", "AVX-512", "VNNI"]``."""
        return [name for name, flags in ISA_FEATURES if self.has(*flags)]

    def bf16_refusal(self) -> str:
        """Why bf16 artifacts are not offered on this CPU; "" when they are."""
        if self.bf16:
            return ""
        return (f"this CPU ({self.name or 'unknown'}) has no BF16 instructions (AVX-512 BF16 or AMX); bf16 would "
                "be emulated and slower than fp32 — build bf16 on a CPU that has them (e.g. Xeon Sapphire Rapids, "
                "AMD Zen 4)")

    def to_json(self) -> dict:
        return {"name": self.name, "features": self.features(), "avx2": self.avx2, "avx512": self.avx512,
                "vnni": self.vnni, "avx512_bf16": self.has("avx512_bf16"), "amx": self.amx, "bf16": self.bf16,
                "source": self.source}


@dataclass(frozen=True)
class Hardware:
    """The CPU and (if any) the NVIDIA GPU of this machine."""

    cpu: CpuInfo
    gpu: str | None = None           # device name, None when there is none (or it was not asked)
    gpu_note: str = ""               # why there is no GPU, or that it was not probed

    def to_json(self) -> dict:
        return {"cpu": self.cpu.to_json(), "gpu": self.gpu, "gpu_note": self.gpu_note}

    def summary(self) -> str:
        """One line for a status bar: ``CPU: Xeon …, AVX2 · AVX-512 · VNNI · GPU: none``."""
        feats = " · ".join(self.cpu.features()) or "no AVX2"
        gpu = self.gpu or ("not probed yet" if self.gpu_note.startswith("not probed") else "none")
        return f"CPU: {self.cpu.name or platform.machine()} ({feats}) · GPU: {gpu}"


def cpu_from_flags(flags, name: str = "", source: str = "given") -> CpuInfo:
    """A :class:`CpuInfo` from a set (or a space-separated string) of ``/proc/cpuinfo`` flag names."""
    if isinstance(flags, str):
        flags = flags.split()
    return CpuInfo(name, frozenset(f.strip().lower() for f in flags if f.strip()), source)


def _read_cpuinfo(path: str = "/proc/cpuinfo") -> tuple[str, set[str]] | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(1 << 20)
    except OSError:
        return None
    name, flags = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key == "model name" and not name:
            name = value.strip()
        elif key in ("flags", "features") and not flags:  # "Features" on ARM
            flags = set(value.split())
    return name, flags


def _openvino_capabilities() -> CpuInfo | None:
    """Non-Linux fallback: OpenVINO's view of the CPU (BF16/INT8 capabilities)."""
    try:
        from app.runtimes.openvino import openvino_module

        ov = openvino_module()
        core = ov.Core()
        caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        name = str(core.get_property("CPU", "FULL_DEVICE_NAME"))
    except Exception:  # noqa: BLE001 - no OpenVINO: nothing known
        return None
    flags = {"avx2"}
    if "BF16" in caps:
        flags.add("avx512_bf16")
    if "INT8" in caps:
        flags.add("avx_vnni")
    return CpuInfo(name, frozenset(flags), "OpenVINO OPTIMIZATION_CAPABILITIES")


@functools.lru_cache(maxsize=1)
def _detect_cpu(override: str | None) -> CpuInfo:
    found = _read_cpuinfo()
    name = found[0] if found else ""
    if override is not None:
        return cpu_from_flags(override, name or platform.processor(), f"${CPU_FLAGS_ENV}")
    if found and found[1]:
        return CpuInfo(name, frozenset(found[1]))
    return _openvino_capabilities() or CpuInfo(platform.processor() or platform.machine(), frozenset(), "unknown")


def detect_cpu() -> CpuInfo:
    """This machine's CPU (``$DEPLOY_STUDIO_CPU_FLAGS`` replaces the detected flags)."""
    return _detect_cpu(os.environ.get(CPU_FLAGS_ENV))


def detect_gpu(import_torch: bool = True) -> tuple[str | None, str]:
    """The first CUDA device's name and a note; torch is imported only when ``import_torch``."""
    torch = sys.modules.get("torch")
    if torch is None and not import_torch:
        return None, "not probed (PyTorch is loaded in the background)"
    try:
        import torch

        if torch.cuda.is_available():
            return str(torch.cuda.get_device_name(0)), ""
        return None, "no CUDA device visible to PyTorch"
    except Exception as e:  # noqa: BLE001
        return None, f"PyTorch cannot query CUDA ({type(e).__name__})"


def detect(import_torch: bool = True) -> Hardware:
    """CPU and GPU of this machine."""
    gpu, note = detect_gpu(import_torch)
    return Hardware(detect_cpu(), gpu, note)
