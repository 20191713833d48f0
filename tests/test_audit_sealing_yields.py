"""Sealing a backlog lets the serving process answer requests meanwhile.

Every `serve` process seals what was written in the last two seconds on its own event loop: on
a busy server, thousands of entries a round. Sealed in one go, each round held the loop for
50-70 ms, and every request in flight waited that long (bench: a lookup's p99 under load was
72 ms with sealing, 17 ms without). Here a task that steps whenever the loop is free runs beside
a round of thousands of entries, and no more than one partition of entries may be sealed
without it getting a step in; the seals still verify."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import pytest

from db.queries import audit_seals
from db.queries.audit import verify
from tests.support.audit_trail import append, one_connection_engine

KEY = bytes(32)
ENTRIES = 3_000


def test_a_sealing_round_gives_the_event_loop_back_between_partitions(
    module_reference_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = 0
    sealed_at_step: Counter[int] = Counter()
    computed = audit_seals.row_mac

    here = threading.get_ident()

    def noted(key: bytes, previous: str, row: Any) -> str:
        # Only this thread's: an app another test left serving on its own thread seals its own
        # trail meanwhile, through the same function.
        if threading.get_ident() == here:
            sealed_at_step[steps] += 1
        return computed(key, previous, row)

    monkeypatch.setattr(audit_seals, "row_mac", noted)

    async def scenario() -> tuple[int, int | None]:
        nonlocal steps
        engine = one_connection_engine(module_reference_url)

        async def step_whenever_free() -> None:
            nonlocal steps
            while True:
                steps += 1
                await asyncio.sleep(0)

        try:
            async with engine.begin() as connection:
                await append(connection, ENTRIES)
            stepping = asyncio.create_task(step_whenever_free())
            try:
                async with engine.begin() as connection:
                    sealed = await audit_seals.seal(connection, KEY)
            finally:
                stepping.cancel()
            assert sealed is not None
            async with engine.connect() as connection:
                verification = await verify(connection, KEY)
            return sealed.count, verification.breaks[0].first if verification.breaks else None
        finally:
            await engine.dispose()

    count, broken = asyncio.run(scenario())
    assert count == ENTRIES
    assert broken is None
    assert sum(sealed_at_step.values()) == ENTRIES
    most = max(sealed_at_step.values())
    assert most <= audit_seals.PARTITION, f"{most:,} entries sealed without a step between"
