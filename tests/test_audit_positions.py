"""The custodian reads and pages the audit trail past 2,147,483,647 entries.

An entry's `seq` is a bigint, and `AuditEntry.seq` and `beforeSeq` a GraphQL Int, 32 bits: past
2^31 entries every page holding a later one failed. `position` and `beforePosition` carry it as
an `AuditSeq` string (read as a string or a number); `seq` and `beforeSeq` stay for the clients
that page by them, deprecated. Here the trail is moved on past 2^31 as the owner moves it, with
the triggers off (no trail grows that long in a test), and read as the custodian.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.audit_trail import written
from tests.support.databases import as_service
from tests.support.graphql import principal, run

CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
FAR = 2**31 + 5
"""Past a 32-bit Int."""


async def _chain_on_from(url: str, seq: int) -> None:
    """The next entry at `seq`, chained to the last one: as the owner, with the triggers off."""
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            await connection.execute(
                """
                INSERT INTO audit_log (seq, at, client_id, entry, subjects, prev_hash, hash)
                SELECT $1, now.at, 'far', '{}', '{}', last.hash,
                       audit_log_hash(last.hash, $1, now.at, 'far', '{}', '{}')
                  FROM (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1) AS last,
                       (SELECT clock_timestamp() AS at) AS now
                """,
                seq,
            )
            await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER USER")
    finally:
        await connection.close()


@pytest.fixture
def far(fresh_url: str) -> str:
    """Entries 1 and 2, then FAR and FAR + 1, the last appended by the service as usual."""
    asyncio.run(written(fresh_url, bytes(32), 2))
    asyncio.run(_chain_on_from(fresh_url, FAR))
    asyncio.run(written(fresh_url, bytes(32), 1))
    return fresh_url


def _read(url: str, document: str, variables: dict[str, Any] | None = None) -> Any:
    async def read() -> Any:
        engine = create_engine(as_service(url), statement_timeout_ms=10_000)
        try:
            return await run(engine, CUSTODIAN, document, variables)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def _positions(answer: Any) -> list[str]:
    assert answer.errors is None, answer.errors
    return [entry["position"] for entry in answer.data["auditEntries"]]


def test_the_custodian_reads_and_pages_entries_past_a_32_bit_int(far: str) -> None:
    newest = _read(far, "{ auditEntries(first: 2) { position } }")
    assert _positions(newest) == [str(FAR + 1), str(FAR)]
    page = f'{{ auditEntries(first: 2, beforePosition: "{FAR}") {{ position }} }}'
    assert _positions(_read(far, page)) == ["2", "1"]
    # A position sent as a number, as a client holding a `seq` sends it, is read alike.
    by_number = "query($before: AuditSeq) { auditEntries(first: 1, beforePosition: $before) {"
    by_number += " position } }"
    assert _positions(_read(far, by_number, {"before": FAR + 1})) == [str(FAR)]


def test_a_client_paging_by_seq_still_does_below_2_to_the_31(far: str) -> None:
    answer = _read(far, "{ auditEntries(first: 1, beforeSeq: 2) { seq position } }")
    assert answer.errors is None, answer.errors
    assert answer.data["auditEntries"] == [{"seq": 1, "position": "1"}]
    both = _read(far, '{ auditEntries(beforeSeq: 2, beforePosition: "2") { position } }')
    (error,) = both.errors
    assert (error.extensions["code"], error.extensions["field"]) == (
        "BAD_USER_INPUT",
        "beforePosition",
    )
