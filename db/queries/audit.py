"""The audit log: append an entry, read entries, verify the hash chain.

The chain is computed by the database (migration 0002), and verification recomputes it with the
same SQL function, so the check cannot drift from how entries were sealed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import models
from db.models import table_of
from db.queries import Record

AUDIT = table_of(models.AuditEntry)
# Built once, values passed as parameters: `.values(...)` per call coerces every value into an
# expression and hashes the statement anew, on every audited request.
_APPEND = AUDIT.insert()


class AuditWriter:
    """Appends the entries of concurrent requests together: one statement, one commit.

    Each entry links to the one before it under a single advisory lock (migration 0002), so
    entries appended one transaction each queue on that lock across every worker, and each pays
    a round trip and a commit of its own. Here, entries that arrive while a batch is being
    written go into the next batch: a lone request is written at once, a busy process commits
    once per batch. `append` returns only once its entry is committed, and raises if the batch
    could not be.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        """`engine`: autocommit (db.engine.autocommit); a batch is one atomic executemany."""
        self._engine = engine
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(
        self, *, client_id: str, entry: dict[str, Any], subjects: Iterable[str]
    ) -> None:
        done = asyncio.get_running_loop().create_future()
        parameters = {"client_id": client_id, "entry": entry, "subjects": sorted(set(subjects))}
        self._waiting.append((parameters, done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                failure: Exception | None = None
                try:
                    async with self._engine.connect() as connection:
                        await connection.execute(_APPEND, [parameters for parameters, _ in batch])
                except Exception as error:  # each request fails rather than go out unrecorded
                    failure = error
                for _, done in batch:
                    if done.done():  # its request was cancelled; the entry stands
                        continue
                    if failure is None:
                        done.set_result(None)
                    else:
                        done.set_exception(failure)
        finally:
            self._writer = None
            for _, done in [*batch, *self._waiting]:  # pending only if this task was cancelled
                done.cancel()
            self._waiting = []


@dataclass(frozen=True, slots=True)
class BrokenLink:
    seq: int
    reason: str


_RECOMPUTED = text(
    """
    SELECT seq, prev_hash, hash,
           audit_log_hash(prev_hash, seq, at, client_id, entry, subjects) AS expected,
           lag(hash) OVER (ORDER BY seq) AS previous_hash,
           lag(seq) OVER (ORDER BY seq) AS previous_seq
      FROM audit_log ORDER BY seq
    """
)


async def verify(connection: AsyncConnection) -> tuple[int, BrokenLink | None]:
    """Walk the chain in order; return how many entries were checked and the first broken link."""
    checked = 0
    async for row in await connection.stream(_RECOMPUTED):
        checked += 1
        expected_seq = 1 if row.previous_seq is None else row.previous_seq + 1
        if row.seq != expected_seq:
            return checked, BrokenLink(expected_seq, "entry missing: the sequence has a gap")
        if row.prev_hash != (row.previous_hash or ""):
            return checked, BrokenLink(row.seq, "does not link to the entry before it")
        if row.hash != row.expected:
            return checked, BrokenLink(row.seq, "content does not match its hash")
    return checked, None


async def entries(
    connection: AsyncConnection,
    *,
    subject: str | None,
    client_id: str | None,
    first: int,
    after: int | None,
) -> list[Record]:
    statement = select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(first + 1)
    if subject is not None:
        statement = statement.where(AUDIT.c.subjects.contains([subject]))
    if client_id is not None:
        statement = statement.where(AUDIT.c.client_id == client_id)
    if after is not None:
        statement = statement.where(AUDIT.c.seq < after)
    return list(await connection.execute(statement))


async def accessors_of(connection: AsyncConnection, subject: str) -> list[Record]:
    """Which clients received this person's data, how often, first and last time."""
    statement = (
        select(
            AUDIT.c.client_id,
            func.max(AUDIT.c.entry["organisation"].astext).label("organisation"),
            func.count().label("times"),
            func.min(AUDIT.c.at).label("first_at"),
            func.max(AUDIT.c.at).label("last_at"),
        )
        .where(AUDIT.c.subjects.contains([subject]))
        .group_by(AUDIT.c.client_id)
        .order_by(AUDIT.c.client_id)
    )
    return list(await connection.execute(statement))
