"""A mutation cut short (the shutdown grace running out) while its COMMIT is in flight may be
stored: its answer must say it may have been applied, so that its client reads it back rather
than send it again and store it twice. The context stays `committing`, which the withheld
answer's `applied` counts (sinergi/graphql_app.py's `may_have_changed`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncTransaction

from auth.scopes import OrgKind
from db.engine import create_engine
from resolvers.context import Context
from sinergi.graphql_app import _Answered
from sinergi.graphql_http import settled
from tests.support.databases import as_service
from tests.support.graphql import principal, request_context


@pytest.fixture
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _maybe_applied(context: Context) -> bool:
    answered = _Answered(operations={})
    answered.contexts[0] = context
    return answered.may_have_changed()


async def test_a_transaction_cut_short_in_its_commit_may_have_been_applied(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
    sent = asyncio.Event()
    ending = AsyncTransaction.__aexit__

    async def in_flight(self: AsyncTransaction, *raised: Any) -> None:
        if raised[0] is None:  # the block ended: it commits
            sent.set()
            await asyncio.sleep(5)  # the server's COMMIT under way
        await ending(self, *raised)

    monkeypatch.setattr(AsyncTransaction, "__aexit__", in_flight)

    async def write() -> None:
        async with context.transaction() as connection:
            await connection.execute(text("SELECT 1"))

    task = asyncio.create_task(write())
    await asyncio.wait(
        [task, asyncio.create_task(sent.wait())], timeout=10, return_when="FIRST_COMPLETED"
    )
    assert sent.is_set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not context.changed
    assert _maybe_applied(context), "answered `applied: true`: it may be stored"


async def test_a_single_write_cut_short_may_have_been_applied(engine: AsyncEngine) -> None:
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
    running = asyncio.Event()

    async def write() -> None:
        async with context.single_write() as connection:
            running.set()
            await connection.driver.execute("SELECT pg_sleep(5)")  # its autocommitted write

    task = asyncio.create_task(write())
    await running.wait()
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _maybe_applied(context)


async def test_a_write_that_fails_or_is_cut_short_before_its_commit_was_not_applied(
    engine: AsyncEngine,
) -> None:
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))

    async def refused() -> None:
        async with context.transaction() as connection:
            await connection.execute(text("SELECT 1"))
            raise RuntimeError("refused")

    with pytest.raises(RuntimeError):
        await refused()
    assert not _maybe_applied(context)

    async def write() -> None:
        async with context.transaction() as connection:
            await connection.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(write())
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not _maybe_applied(context)


async def test_a_commit_that_lost_its_connection_may_have_been_applied(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT went through but its answer was lost with the connection: the server cannot
    tell, so the operation's outage error says it may have been applied, 200 with its data
    kept, never 503 "retry shortly", which sent again could store it twice. (No deferred
    trigger can end the backend in the COMMIT itself: the audit entry's append makes every
    constraint immediate first, db/queries/audit.py.)"""
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
    ending = AsyncTransaction.__aexit__

    async def lost(self: AsyncTransaction, *raised: Any) -> None:
        await ending(self, *raised)
        if raised[0] is None:  # committed; its answer is lost on the way
            raise ConnectionResetError("connection lost while the COMMIT's answer was sent")

    monkeypatch.setattr(AsyncTransaction, "__aexit__", lost)
    with pytest.raises(ConnectionResetError):
        async with context.transaction() as connection:
            await connection.execute(text("SELECT 1"))
    assert context.commit_lost
    assert _maybe_applied(context)
    outage = {
        "message": "the database is unavailable; retry shortly",
        "path": ["addParticipation"],
        "extensions": {"code": "SERVICE_UNAVAILABLE"},
    }
    answer = settled({"data": {"addParticipation": None}, "errors": [outage]}, commit_lost=True)
    assert answer["data"] == {"addParticipation": None}
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}, error
    assert "may have been applied" in error["message"], error
    assert "retry" not in error["message"], error


async def test_an_outage_before_the_commit_applied_nothing(engine: AsyncEngine) -> None:
    """An outage met inside the block, before the COMMIT was sent, rolled it back: not
    `commit_lost`, so its client is told to send it again."""
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
    with pytest.raises(ConnectionResetError):
        async with context.transaction():
            raise ConnectionResetError("lost before the commit")
    assert not context.commit_lost
    assert not _maybe_applied(context)


async def test_a_single_write_that_lost_its_connection_in_its_write_may_have_been_applied(
    engine: AsyncEngine,
) -> None:
    """A single write's statement commits as it runs: an outage once it is under way (`store`)
    may have come after it was stored; one in the reads before it stored nothing."""
    context = request_context(engine, principal(OrgKind.PROVINCE, "62"))

    async def lost(*, storing: bool) -> None:
        async with context.single_write():
            if storing:
                context.store()
            raise ConnectionResetError("connection lost")

    with pytest.raises(ConnectionResetError):
        await lost(storing=False)
    assert not context.commit_lost
    with pytest.raises(ConnectionResetError):
        await lost(storing=True)
    assert context.commit_lost
    assert _maybe_applied(context)
