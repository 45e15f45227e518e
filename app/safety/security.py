"""Start-up checks and limits that keep untrusted model files from doing harm.

- Dependency floors: versions below these have known holes in exactly the code paths this app
  feeds untrusted files to.
- Size limits: shapes and archive sizes are checked before anything is allocated or inflated.
"""

from __future__ import annotations

from importlib import metadata

from app.errors import BadInput, ModelLoadError

# package → (minimum version, why)
DEPENDENCY_FLOORS = {
    "torch": ("2.10", "weights-only unpickler fixes (torch.load of hostile checkpoints)"),
    "onnx": ("1.21", "external-data path traversal, symlink and hard-link CVE chain "
                     "(CVE-2022-25882, CVE-2024-27318, CVE-2026-27489, CVE-2026-34445)"),
    "onnxruntime": ("1.22", "bundles an ONNX parser with the external-data directory checks"),
    "netron": ("8.0", "current model parsers; served only as a private copy on 127.0.0.1 anyway"),
}

MAX_INPUT_ELEMENTS = 1 << 31          # per input tensor (8 GiB of float32): refuse before allocating
MAX_ARCHIVE_EXPANSION = 50            # uncompressed/compressed ratio of a zip model above which it is a bomb
MAX_ARCHIVE_BYTES = 256 << 30         # 256 GiB uncompressed: no real checkpoint is larger


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split("."):
        digits = "".join(c for c in piece if c.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def dependency_problems(installed: dict[str, str | None] | None = None) -> list[str]:
    """One line per installed package below its floor (missing packages are not listed here)."""
    problems = []
    for name, (floor, why) in DEPENDENCY_FLOORS.items():
        if installed is not None:
            version = installed.get(name)
        else:
            try:
                version = metadata.version(name)
            except metadata.PackageNotFoundError:
                version = None
        if version and _version_tuple(version) < _version_tuple(floor):
            problems.append(f"{name} {version} is older than {floor} ({why}); upgrade it: "
                            f"pip install -U '{name}>={floor}'")
    return problems


def check_elements(name: str, shape) -> None:
    """Refuse a tensor shape whose element count is absurd, before any allocation."""
    n = 1
    for d in shape:
        n *= int(d)
    if n > MAX_INPUT_ELEMENTS:
        raise BadInput(f"input {name} with shape {'x'.join(str(d) for d in shape)} has {n:.3g} elements "
                       f"(limit {MAX_INPUT_ELEMENTS:.3g}); give a realistic --input shape")


def check_zip_sizes(path, infos) -> None:
    """Refuse zip bombs dressed as model files before anything inflates them."""
    total = sum(i.file_size for i in infos)
    packed = sum(i.compress_size for i in infos)
    if total > MAX_ARCHIVE_BYTES or (total > (64 << 20) and total > MAX_ARCHIVE_EXPANSION * max(packed, 1)):
        raise ModelLoadError(f"{path} would expand to {total / 2**30:.1f} GiB from {packed / 2**20:.1f} MiB "
                             "(a zip bomb, not a model: PyTorch archives are stored uncompressed); refused")
