"""Model Deployment Studio.

``python main.py`` (optionally with a model file) opens the window; ``python main.py
convert|inspect|targets ...`` runs the same engine headless.
"""

from __future__ import annotations

import sys
from pathlib import Path

# The CLI's sub-commands (tests/test_cli.py checks this list against app.cli's parser).
CLI_COMMANDS = ("convert", "inspect", "targets", "serve-bundle", "native-check", "bench", "optimize", "report",
                "evaluate", "diagnose", "example", "pack", "profile")
HELP_FLAGS = ("-h", "--help")
VERSION_FLAGS = ("--version", "-V")
# runtimes a user may add beside the ones every manifest records
EXTRA_RUNTIMES = ("openvino", "nncf")


def print_version() -> int:
    """The app's version and each runtime's, read from package metadata (nothing heavy is imported)."""
    from importlib import metadata

    from app.artifacts.versions import PACKAGES, tool_versions

    try:
        app_version = metadata.version("model-deployment-studio")
    except metadata.PackageNotFoundError:
        app_version = "unknown (not installed)"
    print(f"Model Deployment Studio {app_version}")
    found = tool_versions(PACKAGES + tuple(p for p in EXTRA_RUNTIMES if p not in PACKAGES))
    for name, version in found.items():
        if name not in ("platform", "executable"):
            print(f"  {name:<12} {version or 'not installed'}")
    return 0


def unknown_word(word: str, as_json: bool = False) -> int:
    """``main.py WORD`` where WORD is neither a command nor a file: a usage error, never a window
    (``--json``: its one JSON object on stdout, as every command prints on every exit)."""
    import difflib

    nearest = difflib.get_close_matches(word, CLI_COMMANDS, n=1, cutoff=0.6)
    hint = f"; did you mean {nearest[0]}?" if nearest else f"; commands: {', '.join(CLI_COMMANDS)}"
    message = f"main.py: '{word}' is neither a command nor an existing model file{hint}"
    if as_json:
        import json

        from app.cli.console import STAGE, failure_json
        from app.cli.pipes import print_out

        STAGE["name"] = "parse arguments"
        print_out(json.dumps(failure_json(message, 2, "BadInput"), indent=2))
    print("usage: main.py [MODEL] | main.py {" + ",".join(CLI_COMMANDS) + "} ... | main.py --version",
          file=sys.stderr)
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    """The exit code of what ``argv`` asks for. What the command line prints passes one filter
    (:mod:`app.safety.text`); a reader of stdout that stops early (``| head``) ends it quietly
    (:mod:`app.cli.pipes`), never with a traceback."""
    from app.cli.console import cleaned_output
    from app.cli.pipes import quiet_when_stdout_closes

    with cleaned_output():
        return quiet_when_stdout_closes(_main, list(sys.argv[1:] if argv is None else argv))


def _main(argv: list[str]) -> int:
    if argv and argv[0] in VERSION_FLAGS:
        return print_version()
    if argv and (argv[0] in CLI_COMMANDS or argv[0] in HELP_FLAGS):
        from app.cli.parser import main as cli_main

        return cli_main(argv)
    words = [a for a in argv if not a.startswith("-")]
    if words and not Path(words[0]).expanduser().exists():
        return unknown_word(words[0], "--json" in argv)
    from ui.app import run_gui

    return run_gui(argv)


if __name__ == "__main__":
    raise SystemExit(main())
