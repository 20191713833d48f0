"""Wakes a process's subscriptions when a transaction that changed records commits anywhere.

The process's listener (db/notifications.py) hears `sinergi_changes`, which migration 0014's
commit stamp NOTIFYs, on the connection it also keeps for the client registry's channel;
PostgreSQL delivers a notification only once its transaction has committed. Nothing depends on a
notification arriving: a subscriber reads from its own cursor each time it wakes, and wakes at
least every few seconds anyway, so a lost connection costs latency, not changes. When listening
stops or starts again every subscriber is woken, since a commit in between went unnotified.
"""

from __future__ import annotations

import asyncio
import contextlib

CHANNEL = "sinergi_changes"


class ChangeSignal:
    def __init__(self) -> None:
        self._changed = asyncio.Event()
        self.generation = 0
        """Counts the wake-ups: a waiter that read it before its last query returns at once if
        it moved since, so a commit between that query and the wait is not slept through."""

    async def wait_after(self, seen: int, *, at_most: float) -> None:
        """Return once a wake-up came after generation `seen`, or after `at_most` seconds."""
        if self.generation != seen:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), at_most)

    def changed(self, _payload: str, /) -> None:
        """A notification (its payload says nothing subscribers use): wake every waiter."""
        self.generation += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def listening(self, _listening: bool, /) -> None:
        """Listening stopped or started: a commit may have gone unnotified, so waiters read."""
        self.changed("")
