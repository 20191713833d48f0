"""Appending to the audit trail costs the same however far it has grown since a connection first
appended to it.

Each entry links to the one before it: the chain's trigger (migrations 0002, 0010) looks up the
latest entry on every append. PostgreSQL plans that lookup once per connection, with the
statistics of the moment; a connection that first appended when the trail had been analyzed
empty (an ANALYZE of a new database) kept a plan that reads the whole trail, so each entry
cost more than the last, on every pooled connection, until autovacuum analyzed the table
again, and never where it does not run."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from db.engine import create_engine

ENTRIES = 3_000

_APPEND = text(
    "INSERT INTO audit_log (client_id, entry, subjects)"
    " SELECT 'chain-test', '{}'::jsonb, '{}' FROM generate_series(1, :n)"
)
_READ_BY_SCANS = text(
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname = 'audit_log'"
)


def test_appending_reads_no_more_of_the_trail_as_it_grows_from_empty(
    module_reference_url: str,
) -> None:
    async def scenario() -> int:
        engine = create_engine(module_reference_url, statement_timeout_ms=30_000, pool_size=1)
        try:
            async with engine.connect() as connection:  # as VACUUM ANALYZE after installing
                await connection.execute(text("COMMIT"))
                await connection.execute(text("ANALYZE audit_log"))
            async with engine.begin() as connection:  # the chain's lookup planned: trail empty
                await connection.execute(_APPEND, {"n": 1})
            async with engine.begin() as connection:
                await connection.execute(_APPEND, {"n": ENTRIES})
                return int((await connection.execute(_READ_BY_SCANS)).scalar_one())
        finally:
            await engine.dispose()

    read = asyncio.run(scenario())
    assert read <= 2 * ENTRIES, f"appending {ENTRIES:,} entries read {read:,} rows of the trail"
