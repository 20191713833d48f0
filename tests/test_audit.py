"""The audit trail: written for record and personal-data responses, append-only, verifiable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import autocommit, create_engine
from db.errors import is_unavailable
from db.queries import audit
from db.queries.audit import AuditWriter
from sinergi import audit_key
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.support.statements import recorded_statements

PII_READER = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
SRI = "6271995204880001"


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    """As the service role, like the app."""
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def owner(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(demo_url, statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _latest(engine: AsyncEngine) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                text("SELECT client_id, entry, subjects FROM audit_log ORDER BY seq DESC LIMIT 1")
            )
        ).one()
    return dict(row._mapping)


async def test_personal_data_in_a_response_is_audited_with_its_subject(
    engine: AsyncEngine,
) -> None:
    result = await run(
        engine,
        PII_READER,
        'query Owner { msme(nib: "9990000000001") { name owner { fullName phone } } }',
    )
    assert result.errors is None
    latest = await _latest(engine)
    assert latest["client_id"] == PII_READER.client_id
    assert latest["subjects"] == [SRI]
    entry = latest["entry"]
    assert isinstance(entry, dict)
    assert entry["operation"] == "Owner"
    assert entry["records"] == {"msme": 1}
    assert entry["fields"]["Msme.owner"] == ["pii:read"]


async def test_figures_alone_are_not_audited(engine: AsyncEngine) -> None:
    before = await _latest(engine) if await _count(engine) else None
    result = await run(engine, CUSTODIAN, "{ msmeFigures(groupBy: [PROVINCE]) { count } }")
    assert result.errors is None
    assert (await _latest(engine) if await _count(engine) else None) == before


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM audit_log"))).scalar_one())


async def test_the_custodian_finds_who_accessed_a_persons_data(engine: AsyncEngine) -> None:
    await run(engine, PII_READER, '{ msme(nib: "9990000000001") { owner { nik } } }')
    result = await run(
        engine,
        CUSTODIAN,
        f'{{ personalDataAccess(nik: "{SRI}") {{ clientId times }} '
        f'auditEntries(nik: "{SRI}", first: 5) {{ seq clientId subjects }} }}',
    )
    assert result.errors is None
    # Other test modules share this database and may have read her record too.
    times = {access["clientId"]: access["times"] for access in result.data["personalDataAccess"]}
    assert times[PII_READER.client_id] >= 1
    entries = result.data["auditEntries"]
    assert entries, "no audit entry names her"
    assert all(SRI in entry["subjects"] for entry in entries)
    assert PII_READER.client_id in {entry["clientId"] for entry in entries}


async def test_a_province_cannot_read_the_audit_log(engine: AsyncEngine) -> None:
    result = await run(engine, PII_READER, "{ auditEntries { seq } }")
    assert result.data == {"auditEntries": None}
    assert result.errors[0].extensions["requiredScopes"] == ["audit:read"]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET client_id = 'someone-else'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ],
)
async def test_the_database_refuses_to_alter_audit_entries_even_to_their_owner(
    engine: AsyncEngine, owner: AsyncEngine, statement: str
) -> None:
    """The triggers hold for the owner too; it takes ALTER TABLE, which only the owner may, to
    get past them (tests/test_roles.py: the service may not)."""
    await run(engine, PII_READER, '{ msme(nib: "9990000000001") { owner { nik } } }')
    with pytest.raises(DBAPIError, match="append-only"):
        async with owner.begin() as connection:
            await connection.execute(text(statement))


async def test_concurrent_entries_are_committed_in_one_statement_and_stay_chained(
    engine: AsyncEngine,
) -> None:
    writer = AuditWriter(autocommit(engine), audit_key.load(Settings()))
    before = await _count(engine)
    with recorded_statements(engine) as statements:
        await asyncio.gather(
            *(
                writer.append(client_id="test-batch", entry={"n": n}, subjects=[f"s{n}"])
                for n in range(20)
            )
        )
    # Every append returned: all twenty are committed, by one INSERT.
    assert await _count(engine) == before + 20
    assert sum("INSERT INTO audit_log" in statement for statement in statements) == 1
    async with engine.connect() as connection:
        verification = await audit.verify(connection, audit_key.load(Settings()))
        written = await connection.execute(
            text("SELECT entry, subjects FROM audit_log WHERE client_id = 'test-batch'")
        )
        assert sorted((row.entry["n"], row.subjects) for row in written) == [
            (n, [f"s{n}"]) for n in range(20)
        ]
    assert verification.intact


async def test_each_entry_of_a_batch_keeps_its_own_subjects(engine: AsyncEngine) -> None:
    """A batch goes as arrays, its entries' subjects as slices of one: none, one or several,
    each entry gets exactly its own."""
    writer = AuditWriter(autocommit(engine), audit_key.load(Settings()))
    named = [[], ["6271000000000003", "6271000000000001", "6271000000000003"], [], ["x"], []]
    await asyncio.gather(
        *(
            writer.append(client_id="test-slices", entry={"n": n}, subjects=subjects)
            for n, subjects in enumerate(named)
        )
    )
    async with engine.connect() as connection:
        written = await connection.execute(
            text("SELECT entry, subjects FROM audit_log WHERE client_id = 'test-slices'")
        )
        assert sorted((row.entry["n"], row.subjects) for row in written) == [
            (n, sorted(set(subjects))) for n, subjects in enumerate(named)
        ]
        verification = await audit.verify(connection, audit_key.load(Settings()))
    assert verification.intact


async def test_the_trail_is_searched_by_data_subject_through_its_index(
    engine: AsyncEngine,
) -> None:
    """The index on subjects leaves out entries that name no one: a query by subject must
    say so to the planner, or it reads the whole trail. The count is a difference: PostgreSQL
    keeps a backend's counts a moment after its transactions end, so a pooled connection may
    start with scans of the test before."""
    scans = text("SELECT pg_stat_get_xact_numscans('ix_audit_log_subjects'::regclass)")
    async with engine.connect() as connection:
        await connection.execute(text("SET LOCAL enable_seqscan = off"))
        await connection.execute(text("SET LOCAL enable_indexscan = off"))
        before = (await connection.execute(scans)).scalar_one()
        await audit.entries(connection, subject=SRI, client_id=None, first=5, after=None)
        await audit.accessors_of(connection, SRI)
        assert (await connection.execute(scans)).scalar_one() - before == 2


async def test_every_request_of_a_batch_that_cannot_be_written_fails() -> None:
    unreachable = create_engine(
        "postgresql://postgres@127.0.0.1:1/none", statement_timeout_ms=1_000
    )
    writer = AuditWriter(autocommit(unreachable), audit_key.load(Settings()))
    try:
        outcomes = await asyncio.gather(
            *(writer.append(client_id="c", entry={}, subjects=[]) for _ in range(3)),
            return_exceptions=True,
        )
    finally:
        await unreachable.dispose()
    # Each fails as an outage (answered SERVICE_UNAVAILABLE), none goes out unrecorded.
    assert all(
        isinstance(outcome, Exception) and is_unavailable(outcome) for outcome in outcomes
    ), outcomes


async def test_reading_the_audit_trail_is_itself_audited(engine: AsyncEngine) -> None:
    await run(engine, PII_READER, '{ msme(nib: "9990000000001") { owner { nik } } }')
    result = await run(
        engine, CUSTODIAN, f'query Trail {{ auditEntries(nik: "{SRI}", first: 2) {{ seq }} }}'
    )
    assert result.errors is None
    latest = await _latest(engine)
    assert latest["client_id"] == CUSTODIAN.client_id
    assert latest["subjects"] == [SRI]
    entry = latest["entry"]
    assert isinstance(entry, dict)
    assert entry["operation"] == "Trail"
    assert entry["records"] == {"audit_entry": len(result.data["auditEntries"])}


async def test_asking_who_received_a_persons_data_is_itself_audited(
    engine: AsyncEngine,
) -> None:
    nobody = "6271990000000009"  # no one received this person's data: the question still counts
    result = await run(
        engine, CUSTODIAN, f'query Who {{ personalDataAccess(nik: "{nobody}") {{ clientId }} }}'
    )
    assert result.data == {"personalDataAccess": []}
    latest = await _latest(engine)
    assert (latest["client_id"], latest["subjects"]) == (CUSTODIAN.client_id, [nobody])
    entry = latest["entry"]
    assert isinstance(entry, dict)
    assert entry["operation"] == "Who"
