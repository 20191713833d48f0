"""Concurrent writers never make the feed skip a change: transactions that began first and
commit last, while a reader keeps advancing its cursor, are still delivered to it, once, in the
order they became visible. Also: only the database's own triggers can write the feed."""

from __future__ import annotations

import asyncio
import random
import time

import asyncpg
import pytest

from db.driver import check_out
from db.engine import create_engine
from db.queries import change_feed
from db.queries.change_feed import Reader
from db.queries.ownership import Ownership
from db.queries.scoping import EVERYWHERE
from domain.personal import OWNER_COLUMNS
from tests.support.databases import as_service

NATIONAL = Reader(
    jurisdiction="ID",
    personal_data=True,
    personal_columns=OWNER_COLUMNS,
    records=True,
    own=Ownership(("test-order",), EVERYWHERE),
)
WRITERS = 6
TRANSACTIONS = 25


async def _writer(url: str, seed: int, nibs: list[str], spans: list[tuple[float, float]]) -> None:
    """Transactions that stay open a while after writing (so rows written early commit late);
    `spans` gets when each wrote and when it committed."""
    rng = random.Random(seed)
    connection = await asyncpg.connect(url)
    try:
        for number in range(TRANSACTIONS):
            async with connection.transaction():
                wrote_at = time.perf_counter()
                nib = f"99916{seed:02d}{number:03d}{rng.randrange(1000):03d}"
                await connection.execute(
                    "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
                    " regency_code)"
                    " VALUES ($1, 'Uji urutan', '10794', 'C', 'micro', '62', '62.71')",
                    nib,
                )
                nibs.append(nib)
                if nibs[:-1] and rng.random() < 0.5:
                    await connection.execute(
                        "UPDATE msmes SET employees = $2 WHERE nib = $1",
                        rng.choice(nibs[:-1]),
                        rng.randrange(100),
                    )
                await asyncio.sleep(rng.choice([0, 0, 0.005, 0.05, 0.2]))
            spans.append((wrote_at, time.perf_counter()))
    finally:
        await connection.close()


async def _follow(url: str, done: asyncio.Event, advances: list[float]) -> list[int]:
    """A reader advancing its cursor as fast as it can while the writers run, then once more;
    `advances` gets when it moved past entries."""
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    seen: list[int] = []
    after = change_feed.START
    try:
        while True:
            finished = done.is_set()
            async with await check_out(engine) as connection:
                page = await change_feed.page(connection, "msme", NATIONAL, after=after, first=7)
            seen += [row.feed_id for row in page.entries]
            if page.entries:
                advances.append(time.perf_counter())
            after = page.end
            if finished and not page.has_more:
                return seen
            await asyncio.sleep(0 if page.has_more else 0.003)
    finally:
        await engine.dispose()


async def _everything(url: str, after: int) -> list[int]:
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    found: list[int] = []
    try:
        while True:
            async with await check_out(engine) as connection:
                page = await change_feed.page(connection, "msme", NATIONAL, after=after, first=1000)
            found += [row.feed_id for row in page.entries]
            after = page.end
            if not page.has_more:
                return found
    finally:
        await engine.dispose()


async def _race(url: str) -> tuple[list[int], list[int], int]:
    start = (await _everything(url, change_feed.START) or [change_feed.START])[-1]
    done = asyncio.Event()
    advances: list[float] = []
    spans: list[tuple[float, float]] = []
    reader = asyncio.create_task(_follow(url, done, advances))
    nibs: list[list[str]] = [[] for _ in range(WRITERS)]
    await asyncio.gather(*(_writer(url, seed, nibs[seed], spans) for seed in range(WRITERS)))
    done.set()
    seen = [position for position in await reader if position > start]
    # Transactions that had written when the reader moved past others' commits, and committed
    # only after: the changes a cursor over write order would skip.
    late = sum(any(wrote < moved < committed for moved in advances) for wrote, committed in spans)
    return seen, await _everything(url, start), late


def test_a_reader_racing_concurrent_writers_misses_no_change(module_reference_url: str) -> None:
    seen, everything, late = asyncio.run(_race(module_reference_url))
    assert late > 0  # the race was on
    assert len(everything) >= WRITERS * TRANSACTIONS
    assert seen == everything  # every entry, once, in the order of the feed
    assert seen == sorted(seen)


def test_the_service_cannot_write_the_feed_but_its_writes_are_logged(
    module_reference_url: str,
) -> None:
    """The service's own role (what db/roles.py grants it) changes records, and the triggers log
    them; it cannot forge, alter, delete or renumber an entry, nor slip one into a transaction's
    pending notes."""

    async def attempt() -> None:
        service = await asyncpg.connect(as_service(module_reference_url))
        try:
            await service.execute(
                "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
                " regency_code) VALUES ('9991700000001', 'Uji hak', '10794', 'C', 'micro',"
                " '62', '62.71')"
            )
            logged = await service.fetchval(
                "SELECT count(*) FROM change_log l JOIN msmes m ON m.id::text = l.record_id"
                " WHERE l.record_kind = 'msme' AND m.nib = '9991700000001'"
            )
            assert logged == 1
            for forgery in (
                "INSERT INTO change_log (record_kind, record_id, operation, deactivated,"
                " personal, new_province, new_regency) VALUES"
                " ('msme', '1', 'insert', false, false, '62', '62.71')",
                "UPDATE change_log SET new_province = '61'",
                "DELETE FROM change_log",
                "INSERT INTO change_pending_transactions (xid) VALUES (pg_current_xact_id())",
                "INSERT INTO change_pending (record_kind, record_id, operation, deactivated,"
                " personal) VALUES ('msme', '1', 'insert', false, false)",
                # A run of new records (migration 0032) naming ids that are not its own.
                "INSERT INTO change_pending (record_kind, record_id, operation, deactivated,"
                " personal, last_record_id) VALUES ('msme', '1', 'insert', false, false, 9)",
                "UPDATE change_log SET id = id + 1000000",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await service.execute(forgery)
        finally:
            await service.close()

    asyncio.run(attempt())


def test_new_records_noted_as_runs_give_the_feed_every_entry_each_would_have(
    module_reference_url: str,
) -> None:
    """The insider's view of migration 0032: new MSMEs wait for their entries as runs of ids. The
    service, choosing its own ids (gaps, places changing along consecutive ids, a record moved
    and more created in the same transaction), still gets one entry per record and change, in
    the order the per-record notes gave them, each creation where the record was created."""
    base = 9_170_000_000

    def values(offset: int, regency: str, district: str | None) -> str:
        district_sql = "NULL" if district is None else f"'{district}'"
        return (
            f"({base + offset}, '99918{offset:08d}', 'Uji run', '10794', 'C', 'micro',"
            f" '{regency[:2]}', '{regency}', {district_sql})"
        )

    insert = (
        "INSERT INTO msmes (id, nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code, district_code) VALUES "
    )

    async def attempt() -> list[tuple[str, str, str | None, str | None, str | None]]:
        service = await asyncpg.connect(as_service(module_reference_url))
        try:
            async with service.transaction():
                await service.execute(
                    insert
                    + ", ".join(
                        [
                            values(0, "62.71", None),
                            values(1, "62.71", None),
                            values(2, "62.71", "62.71.03"),
                            values(3, "62.71", None),
                            values(5, "62.71", None),  # a gap before it
                            values(6, "61.71", None),
                        ]
                    )
                )
                await service.execute(
                    "UPDATE msmes SET province_code = '61', regency_code = '61.71' WHERE id = $1",
                    base + 1,
                )
                await service.execute(insert + values(7, "62.71", None))
            found = await service.fetch(
                "SELECT record_id, operation, old_regency, new_regency, new_district"
                " FROM change_log WHERE record_kind = 'msme' AND record_id = ANY($1::text[])"
                " ORDER BY id",
                [str(base + offset) for offset in range(10)],
            )
            return [tuple(entry) for entry in found]
        finally:
            await service.close()

    assert asyncio.run(attempt()) == [
        (str(base), "insert", None, "62.71", None),
        (str(base + 1), "insert", None, "62.71", None),
        (str(base + 2), "insert", None, "62.71", "62.71.03"),
        (str(base + 3), "insert", None, "62.71", None),
        (str(base + 5), "insert", None, "62.71", None),
        (str(base + 6), "insert", None, "61.71", None),
        (str(base + 1), "update", "62.71", "61.71", None),
        (str(base + 7), "insert", None, "62.71", None),
    ]
