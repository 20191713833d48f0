"""Change-feed cursors as the app under test seals them, for tests that need one at a given
position (a database restored behind its clients, a compaction a copy slept through), and in
clear, as the feed handed them out before it sealed them."""

from __future__ import annotations

import base64
from functools import cache

from domain.cursor_seal import CursorSeal


@cache
def default_audit_key() -> bytes:
    """The audit key of an app made with the tests' default settings: the one under the
    tests' SINERGI_HOME (tests/conftest.py), which signs its audit entries."""
    from sinergi import audit_key
    from sinergi.settings import Settings

    return audit_key.load(Settings())


@cache
def cursor_seal() -> CursorSeal:
    """The seal of an app made with the tests' default settings: its key derives from
    `default_audit_key`."""
    return CursorSeal(default_audit_key())


def sealed(kind: str, position: int, horizon: int = 0) -> str:
    """A cursor of `kind`'s feed after `position`, read under `horizon`."""
    return cursor_seal().seal(f"{kind}-feed", position, horizon)


def in_clear(kind: str, position: int, horizon: int | None = 0) -> str:
    """A cursor as the feed wrote them before sealing them (before they named the horizon,
    with `horizon` None)."""
    text = f"{kind}-feed:{position}" + ("" if horizon is None else f":{horizon}")
    return base64.urlsafe_b64encode(text.encode()).decode()
