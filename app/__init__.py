"""Qt-free core of Model Deployment Studio: loading, conversion jobs, verification, CLI."""

__version__ = "0.1.0"
