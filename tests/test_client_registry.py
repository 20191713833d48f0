"""Each process holds the client registrations it read only while PostgreSQL's notifications
can tell it of a change (auth/registry.py, db/notifications.py), on the one connection that also
hears the change feed's channel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import clients
from auth.registry import CHANNEL, ClientRegistry, forgotten
from db import change_signal
from db.engine import autocommit, create_engine
from db.notifications import CONFIRMED, Confirmation, Listener, libpq_url
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


class Heard:
    """What the listener told one channel's subscriber."""

    def __init__(self) -> None:
        self.notices: list[str] = []
        self.states: list[bool] = []

    def changed(self, payload: str) -> None:
        self.notices.append(payload)

    def listening(self, listening: bool) -> None:
        self.states.append(listening)


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


async def _listening(subscriber: Heard) -> None:
    """Once the listener has told `subscriber` it listens (at most 5 s)."""
    for _ in range(100):
        if subscriber.states == [True]:
            return
        await asyncio.sleep(0.05)


async def test_a_revocation_is_notified_and_the_listener_says_when_it_listens(
    engine: AsyncEngine,
) -> None:
    clients, changes = Heard(), Heard()
    listener = Listener(
        libpq_url(engine.url),
        {CHANNEL: clients, change_signal.CHANNEL: changes},
        check_seconds=0.2,
    )
    running = asyncio.create_task(listener.run())
    try:
        await _listening(clients)
        assert clients.states == changes.states == [True]
        for change in (  # apart: PostgreSQL sends a transaction's equal notifications once
            "INSERT INTO client_writes VALUES ('notified-client', now())",
            "DELETE FROM client_writes WHERE client_id = 'notified-client'",
            f"NOTIFY {change_signal.CHANNEL}, 'a record changed'",
        ):
            async with engine.begin() as connection:
                await connection.execute(text(change))
        for _ in range(100):
            if len(clients.notices) >= 2 and changes.notices:
                break
            await asyncio.sleep(0.05)
        assert clients.notices[:2] == ["notified-client", "notified-client"]
        assert changes.notices == ["a record changed"]  # each channel to its own subscriber
        async with engine.connect() as connection:  # the server drops the listener
            dropped = await connection.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'sinergi-listener' AND datname = current_database()"
                )
            )
        assert dropped == 1, "one connection listens for both channels"
        for _ in range(100):
            if clients.states[-2:] == [False, True]:
                break
            await asyncio.sleep(0.05)
        assert clients.states[-2:] == changes.states[-2:] == [False, True]  # it listens again
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running


async def test_only_a_confirmation_request_is_acknowledged(engine: AsyncEngine) -> None:
    """A write note notifies `sinergi_clients` on every write: it must cost no statement on the
    listener's connection. A confirmation request is applied, then acknowledged once."""
    clients, changes = Heard(), Heard()
    url = libpq_url(engine.url)
    listener = Listener(url, {CHANNEL: clients, change_signal.CHANNEL: changes}, check_seconds=0.2)
    acknowledgements: list[str] = []
    observer = await asyncpg.connect(url)
    await observer.add_listener(CONFIRMED, lambda *heard: acknowledgements.append(heard[3]))
    running = asyncio.create_task(listener.run())
    try:
        await _listening(clients)
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO client_writes VALUES ('confirmed-client', now())")
            )
        heard = await forgotten(url, "confirmed-client", timeout_seconds=10)
        assert heard == Confirmation(listening=1, confirmed=1)
        assert clients.notices == ["confirmed-client", "confirmed-client"]  # note, request
        await observer.execute(f"NOTIFY {CONFIRMED}, 'last'")  # delivered after every ack sent
        for _ in range(100):
            if "last" in acknowledgements:
                break
            await asyncio.sleep(0.05)
        assert len(acknowledgements) == 2  # the request's and 'last': none for the write note
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await observer.close()


async def test_a_client_id_longer_than_the_registry_holds_is_refused_by_name(
    demo_url: str,
) -> None:
    """It reached the INSERT and failed there as the database's truncation error; it is now a
    ClientError naming the field, as every other refused registration is. (Over the demo
    database, whose regions hold the jurisdiction; rolled back.)"""
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    registration = {
        "name": "Long id",
        "org_kind": "ministry",
        "jurisdiction": "ID",
        "scopes": None,
        "purpose": "tests the client id bound",
    }
    try:
        async with engine.connect() as connection:
            with pytest.raises(clients.ClientError, match="client_id: at most 64 characters"):
                await clients.create(connection, client_id="x" * 65, **registration)
            longest, _ = await clients.create(connection, client_id="y" * 64, **registration)
            await connection.rollback()
    finally:
        await engine.dispose()
    assert longest.client_id == "y" * 64
