"""The checkpoint file: signed checkpoints of the audit chain, appended outside PostgreSQL.

One JSON line each (db/seals.py), appended with `O_APPEND` and synced before the call returns, so
a crash leaves whole lines only. Whoever can rewrite the database cannot unwrite this file; to
keep a host's own root from rewriting it as well, make it append-only (`chattr +a`), or have
`serve` send each checkpoint to syslog too (sinergi/checkpoint_syslog.py). A file a syslog
daemon wrote reads as this one does: its prefix before each checkpoint is passed over.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from db.seals import BadCheckpoint, Checkpoint, read_checkpoint


def check_writable(path: Path) -> None:
    """Raise OSError unless checkpoints can be appended to `path` (made, with its folder, if
    missing). `serve` asks before it serves: a path it cannot write would leave the trail
    vouched for by nothing outside PostgreSQL, noticed only in the logs."""
    os.close(_open(path))


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


def append(path: Path, line: str) -> None:
    descriptor = _open(path)
    try:
        os.write(descriptor, line.encode())
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@dataclass(frozen=True, slots=True)
class Read:
    checkpoints: list[Checkpoint]
    problems: list[str]
    """Lines that are malformed or not signed with the key, each with its line number."""


def _checkpoint_in(line: str) -> str:
    """The checkpoint's JSON: the whole line as `append` wrote it, or what follows the prefix
    (time, host, tag) a syslog daemon writes before each message. The signature covers the
    JSON alone, so a prefix can neither make nor break a checkpoint."""
    start = line.find("{")
    return line[start:] if start > 0 else line


def read(path: Path, key: bytes) -> Read:
    """Each line decoded by itself: a line that is not UTF-8 (a torn write, a syslog daemon's
    byte) is one more malformed line, where decoding the whole file stopped `audit verify` with
    a traceback, before any finding and without the other files."""
    checkpoints: list[Checkpoint] = []
    problems: list[str] = []
    if not path.exists():
        return Read(checkpoints, problems)
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode()
            except UnicodeDecodeError as error:
                problems.append(f"{path}:{number}: malformed: {error}")
                continue
            if not line.strip():
                continue
            try:
                checkpoints.append(read_checkpoint(_checkpoint_in(line), key))
            except BadCheckpoint as problem:
                problems.append(f"{path}:{number}: {problem}")
    return Read(checkpoints, problems)
