"""Figure releases: the copy of the registers that perturbed figures are computed from.

The cell-key method gives a cell the same noise for the same records, and fresh noise whenever
its records change. Computed from the live registers, every routine change another writer made
to a cell was a fresh reading of every difference that isolates a hidden part of it (the nation
less the provinces shown), and a ministry averaged about a hundred such readings down to a lone
business's turnover. A release is a copy of what figures read, taken in one snapshot: between
two releases no change moves a published perturbed figure, so each cell is drawn once per
release however much its records churn (docs/disclosure-control.md).

Two schemas take turns: a release is copied into the one not being read, then the pointer row
(`figure_releases`) moves to it in the same transaction, so a reader sees a whole release or
the one before. A figure statement is the same statement as on the live tables, its tables
named in the release's schema (SQLAlchemy's `schema_translate_map`): a table the release does
not copy is an error, never a quiet read of the live one.

The copy holds only what figures read (migration 0031 says what): no name, NIB or owner, so it
adds no personal data to what the database keeps. The owner makes every copy, in a function the
service may call when a release is due (`serve`), which makes none while the current one is
younger than the settings' minimum interval, whatever the caller asks (migration 0033): every
release is one more reading of each changed cell, so the service's credentials must not buy
more of them. A release at once (`sinergi figures release`, `demo-data`) is the owner's, on the
owner's connection, through a function the service may not call. The service only reads the
copies and the pointer row, and may create nothing beside them; each release takes back whatever
else its copies were given (a default privilege granting ALL on the owner's tables, say), from
every role but the owner (migration 0059).

A release made here is announced on `CHANNEL` (its number), in the transaction that makes it, so
PostgreSQL delivers it once the release commits: each process's figure cache lets go of the
tables of the releases before (schema/figure_cache.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.functions import FunctionElement

from db.engine import create_engine
from db.errors import is_serialization_failure
from db.models import FIGURE_RELEASES

SCHEMAS = ("figures_a", "figures_b")
"""The two schemas a release is copied into by turns (migration 0031 creates them)."""

LOCK_WAIT_MS = 30_000
"""How long a release waits for the copies it replaces to be free before giving up."""

CHANNEL = "sinergi_releases"
"""Where a release made by `release` or `release_now` is announced, its number the payload."""

MAKE = "make_figure_release(double precision)"
"""The owner's function that makes a release once the current one is at least an hour old, the
one the service may call (migrations 0031, 0033)."""


@dataclass(frozen=True, slots=True)
class Release:
    """One release: its number (from 1), when its copy was taken, and the schema holding it."""

    number: int
    released_at: datetime
    schema: str


class NoRelease(RuntimeError):
    """No release has been made yet: `serve` makes the first as it starts."""


async def current(connection: AsyncConnection) -> Release | None:
    """The release figures read now; None before the first."""
    row = (await connection.execute(select(FIGURE_RELEASES))).first()
    if row is None or row.schema_name is None:
        return None
    return Release(row.number, row.released_at, row.schema_name)


async def enter(connection: AsyncConnection, release: Release) -> None:
    """Point `connection`'s statements at `release`: every table they name is read from the
    release's schema."""
    await connection.execution_options(schema_translate_map={None: release.schema})


async def due(engine: AsyncEngine, seconds: float) -> bool:
    """Whether the current release is older than `seconds` by the database's clock, or none
    was made yet."""
    age = func.now() - FIGURE_RELEASES.c.released_at
    stale = or_(FIGURE_RELEASES.c.schema_name.is_(None), age >= timedelta(seconds=seconds))
    async with engine.connect() as connection:
        return bool((await connection.execute(select(func.bool_and(stale)))).scalar_one())


async def release(engine: AsyncEngine, min_seconds: float) -> Release | None:
    """Copy what figures read, in one snapshot, into the schema not being read, and point
    readers at it (`MAKE`, the service's: as the owner). None when another release is being
    made, or one was made less than `min_seconds` ago, or less than the database's floor."""
    return await _made(engine, func.make_figure_release(min_seconds))


async def _made(engine: AsyncEngine, making: FunctionElement[Any]) -> Release | None:
    """The release `making` (a call of one of the owner's release functions) made; None when it
    made none."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="REPEATABLE READ")
        try:
            async with connection.begin():
                # A copy of a million records takes seconds, more than a request's statement
                # may; the tables it replaces are read for a statement's time at most, unless
                # someone holds them on purpose: then it gives up, to be tried again.
                await connection.execute(text("SET LOCAL statement_timeout = 0"))
                await connection.execute(text(f"SET LOCAL lock_timeout = {LOCK_WAIT_MS}"))
                made = (await connection.execute(select(text("*")).select_from(making))).first()
                if made is not None:  # delivered when the release commits, and only then
                    await connection.execute(select(func.pg_notify(CHANNEL, str(made.number))))
        except Exception as error:
            if is_serialization_failure(error):
                return None  # another release committed since this snapshot was taken
            raise
    return None if made is None else Release(made.number, made.released_at, made.schema_name)


async def release_now(owner_url: str) -> Release | None:
    """A release made now, however young the current one (`copy_figure_release`, which only the
    owner may call: migration 0033), at `owner_url`: the owner's (or a superuser's). On an
    engine of its own with no time limit on its statement, client-side either, since a copy may
    take longer than any request. None when another release is being made."""
    engine = create_engine(owner_url, statement_timeout_ms=0, pool_size=1)
    try:
        return await _made(engine, func.copy_figure_release(0))
    finally:
        await engine.dispose()
