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

from tests.support.audit_trail import (
    analyzed_empty,
    append,
    one_connection_engine,
    rows_read_by_scans,
)

ENTRIES = 3_000


def test_appending_reads_no_more_of_the_trail_as_it_grows_from_empty(
    module_reference_url: str,
) -> None:
    async def scenario() -> int:
        engine = one_connection_engine(module_reference_url)
        try:
            await analyzed_empty(engine)
            async with engine.begin() as connection:  # the chain's lookup planned: trail empty
                await append(connection, 1)
            async with engine.begin() as connection:
                await append(connection, ENTRIES)
                return await rows_read_by_scans(connection)
        finally:
            await engine.dispose()

    read = asyncio.run(scenario())
    assert read <= 2 * ENTRIES, f"appending {ENTRIES:,} entries read {read:,} rows of the trail"
