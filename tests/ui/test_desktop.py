"""Double-click launch: the gui-script, the icon, the .desktop file and its user install."""

from __future__ import annotations

import configparser
import importlib
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gui_script_entry_point_exists():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    module, _, name = project["gui-scripts"]["deploy-studio-gui"].partition(":")
    assert callable(getattr(importlib.import_module(module), name))


def test_desktop_file_declares_the_model_mime_types():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(REPO / "resources" / "deploy-studio.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Icon"] == "deploy-studio"
    assert set(desktop["MimeType"].strip(";").split(";")) == {
        "application/x-pytorch", "application/x-pytorch-export", "application/x-onnx"}
    xml = (REPO / "resources" / "deploy-studio-mime.xml").read_text()
    for glob in ("*.pt", "*.pth", "*.pt2", "*.onnx"):
        assert f'pattern="{glob}"' in xml


def test_install_desktop_writes_launcher_icon_and_mime_for_the_user(tmp_path):
    sys.path.insert(0, str(REPO / "resources"))
    try:
        import install_desktop
    finally:
        sys.path.pop(0)
    written = install_desktop.install(tmp_path, refresh=False)
    launcher = written["desktop"].read_text()
    exec_line = next(line for line in launcher.splitlines() if line.startswith("Exec="))
    assert exec_line.endswith(" %f") and ("deploy-studio-gui" in exec_line or "main.py" in exec_line)
    assert written["svg"].read_text().startswith("<svg") and written["png"].stat().st_size > 1000
    assert (tmp_path / "mime" / "packages" / "deploy-studio.xml").exists()
    removed = install_desktop.uninstall(tmp_path, refresh=False)
    assert sorted(removed) == sorted(written.values())
