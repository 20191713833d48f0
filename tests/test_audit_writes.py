"""Writes that overwrite or erase an owner's personal data, audited under that owner too.

The attack: a province replaces or erases an MSME owner's personal data (`updateMsme`,
`importMsmes`), and the custodian, asking the trail about that owner
(`auditEntries(nik:)`, `personalDataAccess(nik:)`), never sees the write that destroyed it; nor
does any write entry say which personal fields it wrote.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

WRITER = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")

CREATE = """
mutation CreateOwned($input: CreateMsmeInput!) { createMsme(input: $input) { id version } }
"""
REPLACE = """
mutation ReplaceOwner($id: ID!, $version: Int!, $owner: OwnerInput) {
  updateMsme(id: $id, version: $version, changes: {owner: $owner}) { id version }
}
"""
IMPORT = """
mutation ImportOwners($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) { created updated unchanged applied }
}
"""
TRAIL = """
query Trail($nik: String!) {
  auditEntries(nik: $nik, first: 50) { clientId subjects entry }
  personalDataAccess(nik: $nik) { clientId times }
}
"""


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=30_000)
    yield engine
    await engine.dispose()


def msme(nib: str, owner: dict[str, Any]) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Keripik Kelakai Audit",
        "kbliCode": "10794",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
        "employees": 3,
        "owner": owner,
    }


def owner(nik: str, name: str) -> dict[str, Any]:
    return {"nik": nik, "fullName": name}


async def trail(engine: AsyncEngine, nik: str, operation: str) -> tuple[list[Any], list[Any]]:
    """The entries naming `nik` whose operation is `operation`, and who received its data, as
    the custodian reads them."""
    result = await run(engine, CUSTODIAN, TRAIL, {"nik": nik})
    assert result.errors is None, result.errors
    entries = [e for e in result.data["auditEntries"] if e["entry"]["operation"] == operation]
    return entries, result.data["personalDataAccess"]


async def test_replacing_and_erasing_an_owner_is_audited_under_the_owner_it_destroys(
    engine: AsyncEngine,
) -> None:
    former, successor = "6271995204881101", "6271995204881102"
    created = await run(
        engine, WRITER, CREATE, {"input": msme("7740000000001", owner(former, "Siti Asli"))}
    )
    assert created.errors is None, created.errors
    (entry,) = (await trail(engine, former, "CreateOwned"))[0]
    assert {"Owner.nik", "Owner.fullName"} <= set(entry["entry"]["personalFields"])
    msme_id = created.data["createMsme"]["id"]

    replaced = await run(
        engine,
        WRITER,
        REPLACE,
        {"id": msme_id, "version": 1, "owner": owner(successor, "Siti Pengganti")},
    )
    assert replaced.errors is None, replaced.errors
    (entry,), accessors = await trail(engine, former, "ReplaceOwner")
    assert entry["clientId"] == WRITER.client_id
    assert entry["subjects"] == [former, successor]
    assert {"Owner.nik", "Owner.fullName"} <= set(entry["entry"]["personalFields"])
    assert WRITER.client_id in {accessor["clientId"] for accessor in accessors}

    erased = await run(engine, WRITER, REPLACE, {"id": msme_id, "version": 2, "owner": None})
    assert erased.errors is None, erased.errors
    entries, _ = await trail(engine, successor, "ReplaceOwner")
    erasure = [e for e in entries if e["subjects"] == [successor]]
    assert len(erasure) == 1, entries
    assert {"Owner.nik", "Owner.fullName"} <= set(erasure[0]["entry"]["personalFields"])


async def test_an_import_replacing_an_owner_is_audited_under_the_owner_it_replaced(
    engine: AsyncEngine,
) -> None:
    former, successor = "6271995204881103", "6271995204881104"
    first = await run(engine, WRITER, IMPORT, {"rows": [msme("7740000000002", owner(former, "A"))]})
    assert first.data["importMsmes"]["created"] == 1, first
    second = await run(
        engine, WRITER, IMPORT, {"rows": [msme("7740000000002", owner(successor, "B"))]}
    )
    assert second.data["importMsmes"]["updated"] == 1, second
    entries, _ = await trail(engine, former, "ImportOwners")
    replacing = [e for e in entries if successor in e["subjects"]]
    assert len(replacing) == 1, entries
    assert replacing[0]["subjects"] == [former, successor]
    assert replacing[0]["entry"]["records"] == {"msme": 1}
    assert {"Owner.nik", "Owner.fullName"} <= set(replacing[0]["entry"]["personalFields"])
