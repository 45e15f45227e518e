"""Versions of the tools that shape an artifact (recorded in every manifest, shown in About)."""

from __future__ import annotations

import platform
import sys
from importlib import metadata

PACKAGES = ("torch", "onnx", "onnxruntime", "onnxscript", "openvino", "nncf", "tensorrt", "netron", "PySide6")


def tool_versions(packages=PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version(), "platform": platform.platform()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    out["executable"] = sys.executable
    return out
