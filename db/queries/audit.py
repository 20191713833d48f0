"""The audit log: append an entry, read entries, verify the hash chain and its seals.

The chain is computed by the database (migration 0002), and verification recomputes it with the
same SQL function, so the check cannot drift from how entries were chained; the keyed seals and
the checkpoints (db/seals.py) catch what that function alone cannot: a chain recomputed with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.driver import DriverStatement, check_out, fetch
from db.engine import json_text
from db.models import AUDIT_LOG, AUDIT_SEALS
from db.queries import Record
from db.queries.audit_seals import recomputed_hash
from db.seals import Checkpoint, row_mac

# One statement per batch, however many entries: asyncpg's executemany ran the INSERT once per
# entry, an executor started and ended for each. The batch goes as arrays, unnested;
# each entry's subjects are the slice `first_subject:last_subject` (1-based, inclusive; empty when
# last < first) of one flat array, PostgreSQL having no array of arrays of differing lengths.
# The entry goes as JSON text, cast by PostgreSQL: db.driver takes no parameter SQLAlchemy must
# convert. Compiled once and run on asyncpg itself (db/driver.py): through SQLAlchemy a batch
# cost several hundred µs of CPU more, paid per request when requests come one at a time.
_APPEND = DriverStatement(
    text(
        """
    INSERT INTO audit_log (client_id, entry, subjects)
    SELECT batch.client_id, CAST(batch.entry AS jsonb),
           (CAST(:subjects AS text[]))[batch.first_subject:batch.last_subject]
      FROM unnest(CAST(:client_ids AS text[]), CAST(:entries AS text[]),
                  CAST(:first_subjects AS integer[]), CAST(:last_subjects AS integer[]))
           AS batch (client_id, entry, first_subject, last_subject)
    """
    )
)


@dataclass(frozen=True, slots=True)
class _Pending:
    client_id: str
    entry: str
    """As JSON text."""
    subjects: list[str]
    done: asyncio.Future[None]


def _parameters(batch: Sequence[_Pending]) -> dict[str, list[Any]]:
    subjects: list[str] = []
    first_subjects: list[int] = []
    last_subjects: list[int] = []
    for pending in batch:
        first_subjects.append(len(subjects) + 1)
        subjects.extend(pending.subjects)
        last_subjects.append(len(subjects))
    return {
        "client_ids": [pending.client_id for pending in batch],
        "entries": [pending.entry for pending in batch],
        "first_subjects": first_subjects,
        "last_subjects": last_subjects,
        "subjects": subjects,
    }


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
        """A batch is one statement, in a transaction of its own (asyncpg's autocommit), on a
        connection of `engine`'s pool."""
        self._engine = engine
        self._waiting: list[_Pending] = []
        self._writer: asyncio.Task[None] | None = None

    async def append(
        self, *, client_id: str, entry: dict[str, Any], subjects: Iterable[str]
    ) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append(_Pending(client_id, json_text(entry), sorted(set(subjects)), done))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_all())
        await done

    async def _write_all(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                failure: Exception | None = None
                try:
                    async with await check_out(self._engine) as connection:
                        await fetch(connection, _APPEND, _parameters(batch))
                except Exception as error:  # each request fails rather than go out unrecorded
                    failure = error
                for pending in batch:
                    if pending.done.done():  # its request was cancelled; the entry stands
                        continue
                    if failure is None:
                        pending.done.set_result(None)
                    else:
                        pending.done.set_exception(failure)
        finally:
            self._writer = None
            for pending in [*batch, *self._waiting]:  # pending only if this task was cancelled
                pending.done.cancel()
            self._waiting = []


@dataclass(frozen=True, slots=True)
class BrokenLink:
    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class Verification:
    checked: int
    sealed: int
    """Entries whose seal checked out; those after them were written since the last seal."""
    broken: BrokenLink | None


_WALK = (
    select(AUDIT_LOG, recomputed_hash(), AUDIT_SEALS.c.mac)
    .join(AUDIT_SEALS, AUDIT_SEALS.c.seq == AUDIT_LOG.c.seq, isouter=True)
    .order_by(AUDIT_LOG.c.seq)
)


async def verify(
    connection: AsyncConnection, key: bytes, checkpoints: Iterable[Checkpoint] = ()
) -> Verification:
    """Walk the chain in order: each entry against its hash, its predecessor and its seal, the
    seals against the checkpoints of this database. The first broken link, if any, names the
    first entry that is not as it was written.

    A rewritten entry fails its hash; one rewritten with its hashes recomputed (by
    `audit_log_hash()`) fails its seal; a removed entry leaves a gap, or, renumbered, fails the
    seals after it; removed newest entries fall short of a checkpoint that sealed them.
    """
    database = (await connection.execute(text("SELECT current_database()"))).scalar_one()
    signed: dict[int, Checkpoint] = {}
    for checkpoint in checkpoints:
        if checkpoint.database == database:
            signed[checkpoint.seq] = checkpoint
    newest_checkpoint = max(signed, default=0)
    checked = sealed = 0
    previous_seq, previous_hash, previous_mac = 0, "", ""
    result = await connection.stream(_WALK)
    async for row in result:
        checked += 1
        broken = _broken(row, previous_seq, previous_hash)
        if broken is None and row.mac is not None:
            if sealed != checked - 1:
                broken = BrokenLink(sealed + 1, "its seal is missing")
            else:
                previous_mac = row_mac(key, previous_mac, row)
                if row.mac != previous_mac:
                    broken = BrokenLink(
                        row.seq, "does not match its seal: rewritten, its hashes recomputed"
                    )
                sealed += 1
        anchor = signed.get(row.seq)
        if broken is None and anchor is not None:
            if sealed != checked:
                broken = BrokenLink(sealed + 1, "its seal is missing")
            elif (anchor.hash, anchor.mac) != (row.hash, row.mac):
                broken = BrokenLink(row.seq, "differs from the checkpoint that sealed it")
        if broken is not None:
            await result.close()
            return Verification(checked, sealed, broken)
        previous_seq, previous_hash = row.seq, row.hash
    if newest_checkpoint > previous_seq:
        return Verification(
            checked,
            sealed,
            BrokenLink(
                previous_seq + 1,
                f"entries {previous_seq + 1} to {newest_checkpoint} are missing: a checkpoint "
                f"of {signed[newest_checkpoint].at.isoformat()} sealed them",
            ),
        )
    if newest_checkpoint > sealed:
        return Verification(checked, sealed, BrokenLink(sealed + 1, "its seal is missing"))
    return Verification(checked, sealed, None)


def _broken(row: Row[Any], previous_seq: int, previous_hash: str) -> BrokenLink | None:
    if row.seq != previous_seq + 1:
        return BrokenLink(previous_seq + 1, "entry missing: the sequence has a gap")
    if row.prev_hash != previous_hash:
        return BrokenLink(row.seq, "does not link to the entry before it")
    if row.hash != row.expected:
        return BrokenLink(row.seq, "content does not match its hash")
    return None


def _naming(subject: str) -> ColumnElement[bool]:
    """Entries whose subjects include `subject`. The second condition follows from the first; it
    is stated for the planner, which uses the partial index on `subjects` (migration 0017) only
    for a query that says its predicate in as many words."""
    return and_(
        AUDIT_LOG.c.subjects.contains([subject]), AUDIT_LOG.c.subjects != literal_column("'{}'")
    )


async def entries(
    connection: AsyncConnection,
    *,
    subject: str | None,
    client_id: str | None,
    first: int,
    after: int | None,
) -> list[Record]:
    statement = select(AUDIT_LOG).order_by(AUDIT_LOG.c.seq.desc()).limit(first + 1)
    if subject is not None:
        statement = statement.where(_naming(subject))
    if client_id is not None:
        statement = statement.where(AUDIT_LOG.c.client_id == client_id)
    if after is not None:
        statement = statement.where(AUDIT_LOG.c.seq < after)
    return list(await connection.execute(statement))


async def accessors_of(connection: AsyncConnection, subject: str) -> list[Record]:
    """Which clients received this person's data, how often, first and last time."""
    statement = (
        select(
            AUDIT_LOG.c.client_id,
            func.max(AUDIT_LOG.c.entry["organisation"].astext).label("organisation"),
            func.count().label("times"),
            func.min(AUDIT_LOG.c.at).label("first_at"),
            func.max(AUDIT_LOG.c.at).label("last_at"),
        )
        .where(_naming(subject))
        .group_by(AUDIT_LOG.c.client_id)
        .order_by(AUDIT_LOG.c.client_id)
    )
    return list(await connection.execute(statement))
