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
class Int8Kernels:
    """How int8 weights should be stored for the CPU an artifact is verified on.

    On x86 without VNNI, ONNX Runtime's u8×s8 kernels multiply with ``VPMADDUBSW``, which adds pairs of
    u8·s8 products into a *saturating* 16-bit sum: two products of 255·127 already overflow it. The
    error is silent and large on trained models (a pretrained EfficientNet-Lite0's top-1 agreement
    with fp32 fell to 0.60 on an AVX2-only EPYC, 0.90 with VNNI; ONNX Runtime's quantization docs name
    this). Unsigned weights take the u8×u8 kernels instead, which widen to 16 bits first
    (``VPMADDWD``): exact, but far slower — measured on an AVX2-only AMD EPYC (Zen 3), pretrained
    EfficientNet-Lite0, static QDQ timed beside its fp32: uint8 weights 0.20–0.31× the fp32's speed, int8 ones
    1.3–1.5×. So weights stay signed and lose one bit instead (``reduce_range``: 7-bit, −64…64): a pair
    of products 2·255·64 = 32640 fits the 16-bit sum, so the fast u8×s8 kernels compute them exactly
    (confident agreement with fp32 on photos the calibration never saw: 0.892, cosine 0.971, against 8-bit
    weights' saturated 0.757 / 0.906). VNNI/AMX (``VPDPBUSD``, tile products) accumulate in 32 bits: signed
    8-bit weights, the fastest kernels, no saturation. ARM's ``SDOT``/``UDOT`` do not saturate either.
    """

    weight_type: str        # "int8" or "uint8": the type of the quantized weights
    saturates: bool         # whether u8×s8 products of 8-bit weights saturate on this CPU
    reason: str             # one sentence for the result, the manifest and `targets`
    reduce_range: bool = False   # 7-bit weights (what keeps u8×s8 exact where it saturates)


def int8_kernels(cpu: CpuInfo) -> Int8Kernels:
    """The int8 weight type for ONNX Runtime on ``cpu`` (see :class:`Int8Kernels`)."""
    arm = "asimd" in cpu.flags or (platform.machine().lower() in ("aarch64", "arm64") and not cpu.avx2)
    if arm:
        return Int8Kernels("int8", False, "ARM: int8 dot products (SDOT) accumulate in 32 bits; signed weights")
    if cpu.vnni:
        units = "AMX/VNNI" if cpu.amx else "VNNI"
        return Int8Kernels("int8", False, f"{units}: u8×s8 dot products accumulate in 32 bits; signed int8 weights "
                                          "(the fastest kernels)")
    return Int8Kernels("int8", True, "no VNNI on this CPU: ONNX Runtime's u8×s8 kernels add pairs of products "
                                     "into saturating 16-bit sums (VPMADDUBSW), so weights are stored as 7-bit int8 "
                                     "(reduce_range), whose sums cannot saturate: exact and fast (uint8 weights, "
                                     "also exact, take u8×u8 kernels that ran slower than fp32)", reduce_range=True)


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


def isa_record(cpu: CpuInfo | None = None) -> dict:
    """The CPU an artifact is built on, for its manifest (``build_isa``): name, machine type, the
    instruction sets that matter (:data:`ISA_FEATURES`) and the raw flags that stand for them."""
    cpu = cpu or detect_cpu()
    wanted = {f for _, flags in ISA_FEATURES for f in flags} | {"asimd", "asimddp", "amx_tile"}
    return {"cpu": cpu.name, "machine": platform.machine(), "features": cpu.features(),
            "flags": sorted(cpu.flags & wanted), "source": cpu.source}


def isa_warning(manifest: dict | None, name: str, cpu: CpuInfo | None = None) -> str | None:
    """One sentence when the manifest of artifact ``name`` names another CPU's instruction sets than
    this machine's (``build_isa``: the CPU it was built and verified on; ``recorded.int8_for_cpu``: the
    CPU its int8 weights were chosen for); None when they agree or the manifest names none."""
    cpu = cpu or detect_cpu()
    here = cpu.features()
    recorded = (manifest or {}).get("recorded") or {}
    for what, isa in (("built and verified on", (manifest or {}).get("build_isa")),
                      ("quantized for", recorded.get("int8_for_cpu"))):
        features = (isa or {}).get("features") if isinstance(isa, dict) else None
        if isinstance(features, list) and sorted(map(str, features)) != sorted(here):
            there = " · ".join(map(str, features)) or "no AVX2"
            return (f"{name} was {what} a CPU with {there} ({isa.get('name') or isa.get('cpu') or 'unnamed'}); "
                    f"this one has {' · '.join(here) or 'no AVX2'} ({cpu.name or platform.machine()}): its int8/bf16 "
                    "kernels may compute differently here, so these figures may not hold there")
    return None
