"""Install Model Deployment Studio into the user's desktop menu (Linux; no Qt, no root).

    python resources/install_desktop.py            # install for this user
    python resources/install_desktop.py --uninstall

Writes, under ``$XDG_DATA_HOME`` (default ``~/.local/share``): the launcher
``applications/deploy-studio.desktop`` (its command points at this checkout's Python), the icon in
``icons/hicolor``, and the MIME types of .pt/.pth/.pt2/.onnx in ``mime/packages``; then refreshes
the desktop's caches when their tools exist. After that the app is in the menu and model files
open with it on double-click.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NAME = "deploy-studio"
MIME_TYPES = ("application/x-pytorch", "application/x-pytorch-export", "application/x-onnx")


def data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")


def launch_command() -> str:
    """The launcher's command: the installed gui-script beside this Python, else main.py."""
    scripts = Path(sys.executable).parent
    for candidate in (scripts / "deploy-studio-gui", scripts / "deploy-studio-gui.exe"):
        if candidate.exists():
            return f"{shlex.quote(str(candidate))} %f"
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(REPO / 'main.py'))} %f"


def desktop_entry() -> str:
    lines = []
    for line in (HERE / f"{NAME}.desktop").read_text(encoding="utf-8").splitlines():
        if line.startswith("Exec="):
            line = f"Exec={launch_command()}"
        elif line.startswith("TryExec="):
            continue  # the absolute command above is what runs; TryExec would hide it off PATH
        elif line.startswith("Icon="):
            line = f"Icon={NAME}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def targets(root: Path) -> dict[str, Path]:
    return {
        "desktop": root / "applications" / f"{NAME}.desktop",
        "svg": root / "icons" / "hicolor" / "scalable" / "apps" / f"{NAME}.svg",
        "png": root / "icons" / "hicolor" / "256x256" / "apps" / f"{NAME}.png",
        "mime": root / "mime" / "packages" / f"{NAME}.xml",
    }


def _refresh(root: Path, register_default: bool) -> None:
    def run(*cmd: str) -> None:
        if shutil.which(cmd[0]):
            subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    run("update-mime-database", str(root / "mime"))
    run("update-desktop-database", str(root / "applications"))
    run("gtk-update-icon-cache", "-f", "-t", str(root / "icons" / "hicolor"))
    if register_default:
        run("xdg-mime", "default", f"{NAME}.desktop", *MIME_TYPES)


def install(root: Path | None = None, *, refresh: bool = True) -> dict[str, Path]:
    """Write the launcher, icon and MIME types under ``root``; returns what was written."""
    root = root or data_home()
    paths = targets(root)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    paths["desktop"].write_text(desktop_entry(), encoding="utf-8")
    paths["desktop"].chmod(0o755)
    shutil.copyfile(HERE / f"{NAME}.svg", paths["svg"])
    if (HERE / f"{NAME}.png").exists():
        shutil.copyfile(HERE / f"{NAME}.png", paths["png"])
    else:
        del paths["png"]
    shutil.copyfile(HERE / f"{NAME}-mime.xml", paths["mime"])
    if refresh:
        _refresh(root, register_default=True)
    return paths


def uninstall(root: Path | None = None, *, refresh: bool = True) -> list[Path]:
    root = root or data_home()
    removed = []
    for p in targets(root).values():
        if p.exists():
            p.unlink()
            removed.append(p)
    if refresh:
        _refresh(root, register_default=False)
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Install Model Deployment Studio into the desktop menu (Linux).")
    parser.add_argument("--uninstall", action="store_true", help="remove what install wrote")
    parser.add_argument("--data-home", type=Path, help="install under this folder instead of $XDG_DATA_HOME")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        print("This installs a freedesktop launcher (Linux). On Windows and macOS see the README: "
              "'The window' → 'Launching it'.", file=sys.stderr)
        return 2
    if args.uninstall:
        for p in uninstall(args.data_home):
            print(f"removed {p}")
        return 0
    for p in install(args.data_home).values():
        print(f"wrote {p}")
    print("Model Deployment Studio is in your applications menu; .pt/.pth/.pt2/.onnx files open with it.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
