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

from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries.audit_seals import seal
from tests.support.audit_trail import (
    analyzed_empty,
    append,
    one_connection_engine,
    rows_read_by_scans,
)

KEY = bytes(32)
ENTRIES = 3_000


async def _sealed_reading(connection: AsyncConnection) -> tuple[int, int]:
    """How many entries a seal in the connection's transaction sealed, and how many rows the
    connection's sequential scans read."""
    sealed = await seal(connection, KEY)
    assert sealed is not None  # nobody else seals this database
    return sealed.count, await rows_read_by_scans(connection)


def test_sealing_reads_the_trail_at_most_once_after_it_grew_from_empty(
    module_reference_url: str,
) -> None:
    async def scenario() -> list[int]:
        engine = one_connection_engine(module_reference_url)
        appender = one_connection_engine(module_reference_url)  # the sealer's counts its own
        try:
            await analyzed_empty(engine)
            for _ in range(8):  # plans made, and kept, while the trail is empty
                async with engine.begin() as connection:
                    sealed, _ = await _sealed_reading(connection)
                    assert sealed == 0
            async with appender.begin() as connection:
                await append(connection, ENTRIES)
            readings = []
            for expected in (ENTRIES, 0):
                async with engine.begin() as connection:
                    sealed, read = await _sealed_reading(connection)
                    assert sealed == expected
                    readings.append(read)
            return readings
        finally:
            await engine.dispose()
            await appender.dispose()

    for read in asyncio.run(scenario()):
        assert read <= 2 * ENTRIES, f"sealing read {read:,} rows to seal {ENTRIES:,}"
