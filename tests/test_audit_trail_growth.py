"""A read of the audit trail names the positions of the entries it returned, not their NIKs.

It named every NIK of every entry it returned, so a custodian polling the newest entries got
back its previous read among them and copied its subjects into the next: after 30 rounds of an
agency reading 200 owners and the custodian reading 5 entries, each custodian entry named 6,000
NIKs (some 100 KB), and they grew on without end. Each hand-out of a NIK to the custodian is
still found by `personalDataAccess`, through the positions, one level deep.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import autocommit, create_engine
from db.queries.audit import AuditWriter
from tests.support.databases import as_service, run
from tests.support.feed_cursors import default_audit_key
from tests.support.graphql import principal
from tests.support.graphql import run as graphql

CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
AUDITOR = dataclasses.replace(CUSTODIAN, client_id="test-custodian-growth-auditor")
READER = principal(OrgKind.PROVINCE, "61")


def _nik(round_: int, n: int) -> str:
    return f"6188{round_:02d}{n:010d}"


async def _poll(url: str, rounds: int, owners: int) -> list[Any]:
    """Each round, an agency reads `owners` owners' data, then the custodian reads the newest
    5 entries; the custodian's answers."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    answers = []
    try:
        for round_ in range(rounds):
            # The agency's read, as an entry naming its owners, written as the service writes.
            await _entry(engine, READER.client_id, [_nik(round_, n) for n in range(owners)])
            answer = await graphql(
                engine, CUSTODIAN, "{ auditEntries(first: 5) { position clientId subjects } }"
            )
            assert answer.errors is None, answer.errors
            answers.append(answer.data["auditEntries"])
    finally:
        await engine.dispose()
    return answers


async def _entry(engine: AsyncEngine, client_id: str, subjects: list[str]) -> None:
    writer = AuditWriter(autocommit(engine), default_audit_key())
    await writer.append(client_id=client_id, entry={"records": {"msme": 1}}, subjects=subjects)


def _custodians_entries(url: str) -> list[tuple[dict[str, Any], list[str]]]:
    rows = run(
        url,
        "SELECT entry::text AS entry, subjects FROM audit_log WHERE client_id = $1 ORDER BY seq",
        CUSTODIAN.client_id,
    )
    return [(json.loads(row["entry"]), list(row["subjects"])) for row in rows]


def test_polling_the_newest_entries_does_not_grow_the_custodians_entries(fresh_url: str) -> None:
    answers = asyncio.run(_poll(fresh_url, rounds=6, owners=40))
    entries = _custodians_entries(fresh_url)
    assert len(entries) == 6
    for (entry, subjects), answer in zip(entries, answers, strict=True):
        assert subjects == []  # it asked about no one
        assert entry["positions"] == sorted(int(shown["position"]) for shown in answer)
        assert entry["records"] == {"audit_entry": len(answer)}
    # Each read returned the one before it: it names its position, and nothing of what it named.
    newest = answers[-1]
    assert [shown["clientId"] for shown in newest[:2]] == [READER.client_id, CUSTODIAN.client_id]
    assert newest[1]["subjects"] == []


async def _accessors(url: str, nik: str, *, timeout_ms: int = 10_000) -> dict[str, int]:
    engine = create_engine(as_service(url), statement_timeout_ms=timeout_ms)
    try:
        answer = await graphql(
            engine, AUDITOR, f'{{ personalDataAccess(nik: "{nik}") {{ clientId times }} }}'
        )
    finally:
        await engine.dispose()
    assert answer.errors is None, answer.errors
    return {access["clientId"]: access["times"] for access in answer.data["personalDataAccess"]}


def test_who_received_a_nik_lists_the_custodian_reads_that_handed_it_out(fresh_url: str) -> None:
    asyncio.run(_poll(fresh_url, rounds=3, owners=3))
    # Round 0's owners were in the custodian's first three reads (5 newest entries each);
    # round 2's only in its last.
    assert asyncio.run(_accessors(fresh_url, _nik(0, 1))) == {
        CUSTODIAN.client_id: 3,
        READER.client_id: 1,
    }
    assert asyncio.run(_accessors(fresh_url, _nik(2, 0))) == {
        CUSTODIAN.client_id: 1,
        READER.client_id: 1,
    }

    # A read of those reads alone hands out no NIK of theirs: one level, no more.
    async def read_the_reads() -> None:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        try:
            document = f'{{ auditEntries(clientId: "{CUSTODIAN.client_id}") {{ subjects }} }}'
            answer = await graphql(engine, AUDITOR, document)
        finally:
            await engine.dispose()
        assert answer.errors is None, answer.errors
        shown = answer.data["auditEntries"]
        assert len(shown) == 3  # the custodian's three reads, each of which handed NIKs out
        assert all(entry["subjects"] == [] for entry in shown)

    asyncio.run(read_the_reads())
    assert asyncio.run(_accessors(fresh_url, _nik(1, 0))) == {
        CUSTODIAN.client_id: 2,
        READER.client_id: 1,
    }
    # Asking is recorded, as the person asked about: the auditor's own questions are found.
    assert asyncio.run(_accessors(fresh_url, _nik(2, 0)))[AUDITOR.client_id] == 1


# Entries as the owner inserts them in bulk: chained by the trigger, a MAC and nonce of the
# shapes the trail takes (their MACs garbage: sealing and `audit verify` would name them).
_NAMING = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " SELECT $1, '{}', ARRAY[$2, '6189' || lpad(n::text, 12, '0')], repeat('0', 64),"
    " replace(gen_random_uuid()::text, '-', '') FROM generate_series(1, $3::int) AS n"
)
# Reads of the trail, each returning 5 of the first entries (`positions`), as a custodian's.
_READS = (
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " SELECT $1, jsonb_build_object('positions',"
    "  (SELECT jsonb_agg(p) FROM generate_series(n * 5 + 1, n * 5 + 5) AS p)),"
    " '{}', repeat('0', 64), replace(gen_random_uuid()::text, '-', '')"
    " FROM generate_series(0, $2::int - 1) AS n"
)


def test_who_received_the_data_of_a_person_named_in_50000_entries_answers_in_time(
    fresh_url: str,
) -> None:
    """One lookup of the reads per entry naming the person: each read every read inserted since
    the last vacuum (a GIN index's pending list), and 98,000 of them outlasted the statement
    timeout many times over. Answered within the timeout every request runs under."""
    nik, named, reads = "6189000000000000", 50_000, 2_000
    run(fresh_url, _NAMING, READER.client_id, nik, named)
    run(fresh_url, _READS, CUSTODIAN.client_id, reads)
    answer = asyncio.run(_accessors(fresh_url, nik, timeout_ms=5_000))
    assert answer[READER.client_id] == named
    assert answer[CUSTODIAN.client_id] == reads
