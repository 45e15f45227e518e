"""What the window does once it has painted: the slow imports, in the background (Qt-free).

The window's own process never imports torch: models are inspected and converted in supervised
child processes (:mod:`app.jobs`), whose fork server imports torch, onnx and onnxruntime once.
Importing torch in the window's process would hold the interpreter lock for hundreds of
milliseconds (its C extension initialises under the GIL) and freeze the event loop; a fork server
warms the same imports with no such cost. So warming up means: start that server, import the light
engine modules here, and probe which targets this machine can build.
"""

from __future__ import annotations

import os



def hardware_summary() -> str:
    """The status bar's line about this machine (CPU instruction sets; the GPU once probed)."""
    from app.machine.hardware import detect

    return detect(import_torch=False).summary()


def warm_engine() -> list:
    """Import the engine's light modules in this process and probe the targets (``app.targets.probe.TargetChoice`` list)."""
    import app.pipeline  # noqa: F401 - unpickling a ConversionResult needs it
    import app.accuracy.verify  # noqa: F401

    from app.targets.probe import probe_targets

    return probe_targets()


CHILD_READY_WALL_LIMIT = 300.0  # seconds the warm-up job may take (the fork server's imports)


def child_ready(payload=None, progress=None, should_cancel=None) -> dict:
    """A no-op job: running it starts the fork server, which imports torch & co. once."""
    import torch

    from app.machine.hardware import detect_gpu

    return {"pid": os.getpid(), "torch": torch.__version__, "gpu": detect_gpu()[0]}
