"""What the front door (:func:`app.loaders.front_door.load`) learned about a model file before a loader reads it.

The front door opens the file once, sniffs its format and runs the checks every file gets (damaged
or polyglot zips, zip bombs, members' CRCs, forged safetensors headers); each loader is handed this
record instead of the bare path, so it neither re-opens the file to learn what is already known nor
repeats a check."""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from app.errors import UnsafeModelError
from app.safety.unpickling import ZIP_MAGIC


@dataclass(frozen=True)
class CheckedFile:
    """A model file, sniffed and checked; valid while the front door holds it open."""

    path: Path
    kind: str                                 # app.loaders.front_door.sniff_format's name
    size: int                                 # bytes
    head: bytes                               # its first 16 bytes
    stream: BinaryIO | None = None            # the open file (readers that take a stream read it from the start)
    archive: zipfile.ZipFile | None = None    # zip formats: the archive, open, its members checked

    def reader_path(self) -> str:
        """The path for a reader that opens the file itself (torch's and safetensors' memory-map it),
        once it is sure the path still names the file that was checked: the same device, inode, size
        and modification time as the open handle (a file swapped in since would skip the checks)."""
        if self.stream is not None:
            held, named = os.fstat(self.stream.fileno()), os.stat(self.path)
            if (held.st_dev, held.st_ino, held.st_size, held.st_mtime_ns) != (
                    named.st_dev, named.st_ino, named.st_size, named.st_mtime_ns):
                raise UnsafeModelError(f"{self.path} changed on disk while it was being checked; nothing was "
                                       "loaded from it: open it again once it is no longer being written")
        return str(self.path)

    @property
    def is_zip(self) -> bool:
        """Starts with a zip local header (how ``torch.load`` decides whether to memory-map it)."""
        return self.head[:4] == ZIP_MAGIC
