"""Each model file's ticked targets, remembered (issue 33, item 6: ticked targets were lost when another
model was opened, and one model's ticks were carried over to the next).

What the user ticks is saved under the model file on screen; opening a file restores what was ticked for
it. A file never seen keeps the window's current ticks (less what its format cannot build), as before.
Ticks the window sets itself (a format that disables a box, restored settings) are not the user's and
are not saved.
"""

from __future__ import annotations

from pathlib import Path

KEY = "targets/by_file"
KEPT_FILES = 50


class TicksPerFile:
    def __init__(self, window) -> None:
        self.window = window
        self.path: str | None = None
        window.session.events.model_loaded.connect(self._on_model_loaded)
        window.targets.ticked_by_user.connect(self.save)

    def _remembered(self) -> dict:
        value = self.window.settings.value(KEY, {})
        return dict(value) if isinstance(value, dict) else {}

    def _on_model_loaded(self, summary: dict) -> None:
        path = str(Path(summary["path"]).resolve())
        if path == self.path:         # the same file inspected again (typed shapes): nothing to restore
            return
        self.path = path
        keys = self._remembered().get(path)
        if isinstance(keys, list) and self.window.targets.is_ready:
            self.window.targets.set_only_checked([str(k) for k in keys])

    def save(self) -> None:
        """The user's ticks, under the model file on screen (the newest :data:`KEPT_FILES` files)."""
        if self.path is None:
            return
        by_file = self._remembered()
        by_file.pop(self.path, None)
        by_file[self.path] = self.window.targets.checked_keys()
        self.window.settings.set_value(KEY, dict(list(by_file.items())[-KEPT_FILES:]))
