"""A file read as text while its bytes are hashed: the hash is of what was read, whatever the
path holds by the time the reading is done (a file replaced meanwhile)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any, TextIO


class HashingReader(io.RawIOBase):
    """Raw bytes of an open file, each block added to a sha256 as it passes."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        count = self._raw.readinto(buffer)
        if count:
            self._digest.update(memoryview(buffer)[:count])
        return count

    def close(self) -> None:
        self._raw.close()
        super().close()

    def hexdigest(self) -> str:
        """The sha256 of the bytes read so far: the whole file's once the text was read to
        its end."""
        return self._digest.hexdigest()


def open_hashed(path: Path, *, encoding: str) -> tuple[TextIO, HashingReader]:
    """`path` opened for csv (newline=""), and the reader whose hash its text is decoded from."""
    hashing = HashingReader(path.open("rb", buffering=0))
    text = io.TextIOWrapper(io.BufferedReader(hashing), encoding=encoding, newline="")
    return text, hashing
