"""Model Deployment Studio.

``python main.py`` (optionally with a model file) opens the window; ``python main.py
convert|inspect|targets ...`` runs the same engine headless.
"""

from __future__ import annotations

import sys

CLI_COMMANDS = {"convert", "inspect", "targets", "serve-bundle", "native-check", "bench", "optimize", "evaluate", "diagnose",
                "-h", "--help"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in CLI_COMMANDS:
        from app.cli import main as cli_main

        return cli_main(argv)
    from ui.app import run_gui

    return run_gui(argv)


if __name__ == "__main__":
    raise SystemExit(main())
