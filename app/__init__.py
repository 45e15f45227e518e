"""Qt-free core of Model Deployment Studio: loading, conversion jobs, verification, CLI."""

import os as _os

__version__ = "0.1.0"

# ONNX Runtime (1.2x+, Linux too) queues usage events in a SQLite database under
# ~/.cache/Microsoft/DeveloperTools from the moment it is imported; its documented switch, set before
# any import of it (the README's "No telemetry" section says what each runtime would record)
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
