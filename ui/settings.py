"""What the window remembers between runs: geometry, recent files, the last choices (QSettings).

The CLI never reads these; they are the window's memory only. Values go through small typed
accessors so a damaged or old settings file degrades to the defaults instead of raising.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QCoreApplication, QSettings

ORGANIZATION = "DeployStudio"
APPLICATION = "Model Deployment Studio"
MAX_RECENT = 8


class Settings:
    """Typed access to the window's QSettings (INI format, per user)."""

    def __init__(self) -> None:
        org = QCoreApplication.organizationName() or ORGANIZATION
        app = QCoreApplication.applicationName() or APPLICATION
        self._q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, org, app)

    @property
    def path(self) -> str:
        return self._q.fileName()

    def sync(self) -> None:
        self._q.sync()

    # -- raw typed values
    def value(self, key: str, default: Any) -> Any:
        raw = self._q.value(key, None)
        if raw is None:
            return default
        try:
            if isinstance(default, bool):
                return raw in (True, "true", "1", 1)
            if isinstance(default, int):
                return int(raw)
            if isinstance(default, float):
                return float(raw)
            if isinstance(default, (list, dict)):
                value = json.loads(raw) if isinstance(raw, str) else raw
                return value if isinstance(value, type(default)) else default
            return str(raw)
        except (TypeError, ValueError):
            return default

    def set_value(self, key: str, value: Any) -> None:
        if isinstance(value, (list, dict)):
            value = json.dumps(value)
        self._q.setValue(key, value)

    # -- window geometry and splitters
    def bytes_value(self, key: str) -> QByteArray | None:
        raw = self._q.value(key, None)
        return raw if isinstance(raw, QByteArray) and not raw.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self._q.setValue(key, value)

    # -- recent files
    def recent_files(self) -> list[str]:
        return [p for p in self.value("recent/files", []) if isinstance(p, str)][:MAX_RECENT]

    def add_recent_file(self, path: str | Path) -> list[str]:
        path = str(Path(path).resolve())
        files = [path] + [p for p in self.recent_files() if p != path]
        self.set_value("recent/files", files[:MAX_RECENT])
        return files[:MAX_RECENT]

    def clear_recent_files(self) -> None:
        self.set_value("recent/files", [])
