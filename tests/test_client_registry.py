"""Each process holds the client registrations it read only while PostgreSQL's notifications
can tell it of a change (auth/registry.py, db/notifications.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.registry import CHANNEL, ClientRegistry
from db.engine import autocommit, create_engine
from db.notifications import Listener, libpq_url
from tests.support.statements import recorded_statements

CLIENT = "no-such-client"


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url, statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _reads(registry: ClientRegistry, engine: AsyncEngine) -> int:
    with recorded_statements(engine) as statements:
        await registry.state(CLIENT)
    return len(statements)


async def test_held_only_while_listening_and_until_a_notification(engine: AsyncEngine) -> None:
    registry = ClientRegistry(autocommit(engine))
    assert [await _reads(registry, engine) for _ in range(2)] == [1, 1]  # not listening
    registry.listening(True)
    assert [await _reads(registry, engine) for _ in range(2)] == [1, 0]
    registry.changed("another-client")
    assert await _reads(registry, engine) == 0
    registry.changed(CLIENT)
    assert [await _reads(registry, engine) for _ in range(2)] == [1, 0]
    registry.changed("")  # every client (a TRUNCATE)
    assert await _reads(registry, engine) == 1
    registry.listening(False)  # notifications may be missed from now on
    assert await _reads(registry, engine) == 1


async def test_a_read_overtaken_by_a_notification_is_not_held(engine: AsyncEngine) -> None:
    registry = ClientRegistry(autocommit(engine))
    registry.listening(True)
    reading = asyncio.create_task(registry.state(CLIENT))
    await asyncio.sleep(0)  # the read is under way: what it returns may predate the change
    registry.changed(CLIENT)
    await reading
    assert await _reads(registry, engine) == 1


async def test_a_revocation_is_notified_and_the_listener_says_when_it_listens(
    engine: AsyncEngine,
) -> None:
    notices: list[str] = []
    states: list[bool] = []
    listener = Listener(
        libpq_url(engine.url),
        CHANNEL,
        on_notice=notices.append,
        on_listening=states.append,
        check_seconds=0.2,
    )
    running = asyncio.create_task(listener.run())
    try:
        for _ in range(100):
            if states == [True]:
                break
            await asyncio.sleep(0.05)
        assert states == [True]
        for change in (  # apart: PostgreSQL sends a transaction's equal notifications once
            "INSERT INTO client_writes VALUES ('notified-client', now())",
            "DELETE FROM client_writes WHERE client_id = 'notified-client'",
        ):
            async with engine.begin() as connection:
                await connection.execute(text(change))
        for _ in range(100):
            if len(notices) >= 2:
                break
            await asyncio.sleep(0.05)
        assert notices[:2] == ["notified-client", "notified-client"]
        async with engine.connect() as connection:  # the server drops the listener
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'sinergi-listener' AND datname = current_database()"
                )
            )
        for _ in range(100):
            if states[-2:] == [False, True]:
                break
            await asyncio.sleep(0.05)
        assert states[-2:] == [False, True]  # it noticed, and listens again
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
