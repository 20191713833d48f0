"""The sealer keeps sealing however far the audit trail has grown since its connection first
planned its statements.

A `serve` process seals on one long-lived connection, whose statements PostgreSQL prepares once.
After five runs PostgreSQL may keep one plan for any parameter values, chosen with the
statistics of the moment: on a new database, an empty trail and no seals. Once the trail had
grown, the plan that finds the last seal compared every seal with every entry (twenty seconds
at fifteen thousand of each), past the statement timeout on every try, so sealing stopped for
good wherever autovacuum does not analyze the tables. Here a sealing connection first seals an
empty trail many times over, then thousands of entries, and no statement may read the trail
more than once."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from db.engine import create_engine
from db.queries.audit_seals import seal

KEY = bytes(32)
ENTRIES = 3_000

_READ_BY_SCANS = text(
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname IN ('audit_log', 'audit_seals')"
)


async def _sealed_reading(connection: AsyncConnection) -> tuple[int, int]:
    """How many entries a seal in the connection's transaction sealed, and how many rows the
    connection's sequential scans read."""
    sealed = await seal(connection, KEY)
    assert sealed is not None  # nobody else seals this database
    read = (await connection.execute(_READ_BY_SCANS)).scalar_one()
    return sealed.count, int(read)


async def _append(url: str, entries: int) -> None:
    """`entries` entries, appended on a connection of their own: the sealer's counts only its
    own reading."""
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO audit_log (client_id, entry, subjects)"
                    " SELECT 'sealing-test', '{}'::jsonb, '{}' FROM generate_series(1, :n)"
                ),
                {"n": entries},
            )
    finally:
        await engine.dispose()


def test_sealing_reads_the_trail_at_most_once_after_it_grew_from_empty(
    module_reference_url: str,
) -> None:
    async def scenario() -> list[int]:
        engine = create_engine(module_reference_url, statement_timeout_ms=30_000, pool_size=1)
        try:
            async with engine.connect() as connection:  # as VACUUM ANALYZE after installing
                await connection.execute(text("COMMIT"))
                await connection.execute(text("ANALYZE audit_log, audit_seals"))
            for _ in range(8):  # plans made, and kept, while the trail is empty
                async with engine.begin() as connection:
                    sealed, _ = await _sealed_reading(connection)
                    assert sealed == 0
            await _append(module_reference_url, ENTRIES)
            readings = []
            for expected in (ENTRIES, 0):
                async with engine.begin() as connection:
                    sealed, read = await _sealed_reading(connection)
                    assert sealed == expected
                    readings.append(read)
            return readings
        finally:
            await engine.dispose()

    for read in asyncio.run(scenario()):
        assert read <= 2 * ENTRIES, f"sealing read {read:,} rows to seal {ENTRIES:,}"
