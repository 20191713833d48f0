"""An audit trail as a new database has it, grown behind the API's back, and what reading it
cost a connection: for the tests that the chain and the seals cost no more as the trail grows
(tests/test_audit_chain_plans.py, tests/test_audit_sealing_plans.py); and a trail written and
sealed as the service does, for the tests of the key and the checkpoints."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import autocommit, create_engine
from db.queries.audit import AuditWriter
from sinergi.audit_sealer import AuditSealer
from tests.support.databases import as_service

_APPEND = text(
    "INSERT INTO audit_log (client_id, entry, subjects)"
    " SELECT 'plans-test', '{}'::jsonb, '{}' FROM generate_series(1, :n)"
)
_READ_BY_SCANS = text(
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname IN ('audit_log', 'audit_seals')"
)


def one_connection_engine(url: str) -> AsyncEngine:
    """An engine of one connection, whose prepared statements and plans therefore last."""
    return create_engine(url, statement_timeout_ms=30_000, pool_size=1)


async def analyzed_empty(engine: AsyncEngine) -> None:
    """The trail and its seals analyzed while empty, as by a VACUUM ANALYZE after installing."""
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("ANALYZE audit_log, audit_seals"))


async def append(connection: AsyncConnection, entries: int) -> None:
    """`entries` entries in one statement, each linked by the chain's trigger."""
    await connection.execute(_APPEND, {"n": entries})


async def rows_read_by_scans(connection: AsyncConnection) -> int:
    """The rows of the trail and its seals that the connection's sequential scans have read in
    its transaction (and in those of the last second, whose counts PostgreSQL has not yet
    flushed)."""
    return int((await connection.execute(_READ_BY_SCANS)).scalar_one())


async def written_and_sealed(url: str, key: bytes, checkpoints: Path, entries: int) -> None:
    """`entries` entries written as the service writes them (the owner's `url`), one at a time,
    then sealed and checkpointed with `key` as `serve` seals them."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        writer = AuditWriter(autocommit(engine))
        for n in range(entries):
            await writer.append(client_id="trail-test", entry={"n": n}, subjects=[])
        await AuditSealer(engine, key, checkpoints, 1).publish()
    finally:
        await engine.dispose()
