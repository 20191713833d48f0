"""No audit entry outgrows what sealing can read in a statement, and sealing reads by size.

Whoever holds the service's database credentials may insert entries. Eight of 40 MB each (their
MACs garbage) made the sealer's statement, reading 250 entries at a time, outlast the statement
timeout on every round: sealing stopped for good. The trail now refuses an entry over 1 MiB
(migration 0053); the service writes an entry naming more people than one holds in parts; and
sealing reads a few MiB of entries at a time, however many that is.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any

import asyncpg
import pytest

from db.engine import autocommit, create_engine
from db.queries import audit_seals
from db.queries.audit import SUBJECTS_PER_ENTRY, AuditWriter, append_within, verify
from tests.support.audit_trail import (
    chained_by_hand,
    one_connection_engine,
    written_past_the_checks,
)
from tests.support.databases import as_service, run

KEY = bytes(32)
INSERT = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " SELECT 'size-test', jsonb_build_object('pad', repeat('a', $1::int)), '{}',"
    " repeat('0', 64), replace(gen_random_uuid()::text, '-', '') FROM generate_series(1, $2::int)"
)
PADDING = len('{"pad": ""}') + len("{}")
"""What an entry of `INSERT` comes to besides its pad, as the trail measures it."""


def _as_service(url: str, statement: str, *arguments: Any) -> None:
    async def insert() -> None:
        connection = await asyncpg.connect(as_service(url))
        try:
            await connection.execute(statement, *arguments)
        finally:
            await connection.close()

    asyncio.run(insert())


def test_the_trail_refuses_an_entry_over_a_mebibyte(fresh_url: str) -> None:
    largest = audit_seals.MAX_ENTRY_BYTES - PADDING
    _as_service(fresh_url, INSERT, largest, 1)
    with pytest.raises(asyncpg.CheckViolationError, match="more than 1048576 bytes"):
        _as_service(fresh_url, INSERT, largest + 1, 1)
    with pytest.raises(asyncpg.CheckViolationError, match="more than 1048576 bytes"):
        _as_service(fresh_url, INSERT, 40_000_000, 8)
    assert run(fresh_url, "SELECT count(*) FROM audit_log")[0][0] == 1


def _niks(count: int) -> list[str]:
    return [f"6177{n:012d}" for n in range(count)]


def test_an_entry_naming_more_people_than_one_holds_is_written_in_parts(fresh_url: str) -> None:
    people = _niks(2 * SUBJECTS_PER_ENTRY + 1)

    async def write() -> Any:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=30_000)
        try:
            await AuditWriter(autocommit(engine), KEY).append(
                client_id="size-test", entry={"operation": "Many"}, subjects=reversed(people)
            )
            async with engine.begin() as connection:  # as `sinergi import msmes` appends
                await append_within(
                    connection,
                    KEY,
                    client_id="size-test",
                    entry={"operation": "Cli"},
                    subjects=people,
                )
            async with engine.connect() as connection:
                return await verify(connection, KEY)
        finally:
            await engine.dispose()

    verification = asyncio.run(write())
    assert verification.breaks == ()  # each part signed as the service signs an entry
    rows = run(
        fresh_url,
        "SELECT entry::text AS entry, subjects,"
        " octet_length(entry::text) + octet_length(subjects::text) AS size"
        " FROM audit_log ORDER BY seq",
    )
    for operation, written in (("Many", rows[:3]), ("Cli", rows[3:])):
        entries = [json.loads(row["entry"]) for row in written]
        assert entries == [{"operation": operation, "part": part, "parts": 3} for part in (1, 2, 3)]
        assert [name for row in written for name in row["subjects"]] == people
        assert max(row["size"] for row in written) < audit_seals.MAX_ENTRY_BYTES / 2


def test_sealing_reads_large_entries_a_few_at_a_time(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries as large as the trail takes, inserted with the service's credentials: sealed
    (past, their MACs being garbage), a few MiB to a statement, the event loop free between."""
    entries = 12
    _as_service(fresh_url, INSERT, audit_seals.MAX_ENTRY_BYTES - PADDING, entries)
    steps = 0
    sealed_at_step: Counter[int] = Counter()
    computed = audit_seals.row_mac
    here = threading.get_ident()

    def noted(key: bytes, previous: str, row: Any) -> str:
        if threading.get_ident() == here:
            sealed_at_step[steps] += 1
        return computed(key, previous, row)

    monkeypatch.setattr(audit_seals, "row_mac", noted)

    async def scenario() -> audit_seals.Sealed | None:
        nonlocal steps
        engine = one_connection_engine(as_service(fresh_url))

        async def step_whenever_free() -> None:
            nonlocal steps
            while True:
                steps += 1
                await asyncio.sleep(0)

        stepping = asyncio.create_task(step_whenever_free())
        try:
            async with engine.begin() as connection:
                return await audit_seals.seal(connection, KEY)
        finally:
            stepping.cancel()
            await engine.dispose()

    sealed = asyncio.run(scenario())
    assert sealed is not None
    assert (sealed.count, sealed.refused_at, len(sealed.tampered)) == (entries, None, entries)
    most = max(sealed_at_step.values())
    assert most <= audit_seals.PARTITION_BYTES // audit_seals.MAX_ENTRY_BYTES, (
        f"{most} entries of 1 MiB read and sealed without a step between"
    )


def test_entries_of_40_mb_stored_before_the_bound_are_sealed_within_the_statement_timeout(
    fresh_url: str,
) -> None:
    """As a database upgraded from before migration 0053 may hold them: the owner inserts them
    with the bound off. Measuring every candidate up front read all of them in each partition's
    statement (16 took 7.5 s), and every round failed at the statement timeout: sealing
    measures only what it takes, so each is sealed within the timeout every request runs under."""
    entries = 20

    def insert_unbounded() -> None:
        padded = chained_by_hand("jsonb_build_object('pad', repeat('a', $5::int))")
        unbounded = [("size-test", [], "0" * 64, f"{n:032x}", 40_000_000) for n in range(entries)]
        asyncio.run(written_past_the_checks(fresh_url, padded, *unbounded))

    async def seal_all() -> list[audit_seals.Sealed]:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=5_000, pool_size=1)
        rounds = []
        try:
            while True:
                async with engine.begin() as connection:
                    sealed = await audit_seals.seal(connection, KEY)
                assert sealed is not None
                if sealed.count == 0:
                    return rounds
                rounds.append(sealed)
        finally:
            await engine.dispose()

    insert_unbounded()
    rounds = asyncio.run(seal_all())
    assert sum(sealed.count for sealed in rounds) == entries
    assert all(sealed.refused_at is None for sealed in rounds)
    assert sum(len(sealed.tampered) for sealed in rounds) == entries  # their MACs garbage
    assert run(fresh_url, "SELECT count(*) FROM audit_seals")[0][0] == entries
