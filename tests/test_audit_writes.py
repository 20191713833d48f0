"""Writes that overwrite or erase an owner's personal data, audited under that owner too.

The attack: a province replaces or erases an MSME owner's personal data (`updateMsme`,
`importMsmes`, `sinergi import msmes`), and the custodian, asking the trail about that owner
(`auditEntries(nik:)`, `personalDataAccess(nik:)`), never sees the write that destroyed it; nor
does any write entry say which personal fields it wrote.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from tests.support.graphql import principal, run
from tests.test_record_mutations import msme_input

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
        engine,
        WRITER,
        CREATE,
        {"input": msme_input("7740000000001", owner=owner(former, "Siti Asli"))},
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
    first = await run(
        engine, WRITER, IMPORT, {"rows": [msme_input("7740000000002", owner=owner(former, "A"))]}
    )
    assert first.data["importMsmes"]["created"] == 1, first
    second = await run(
        engine, WRITER, IMPORT, {"rows": [msme_input("7740000000002", owner=owner(successor, "B"))]}
    )
    assert second.data["importMsmes"]["updated"] == 1, second
    entries, _ = await trail(engine, former, "ImportOwners")
    replacing = [e for e in entries if successor in e["subjects"]]
    assert len(replacing) == 1, entries
    assert replacing[0]["subjects"] == [former, successor]
    assert replacing[0]["entry"]["records"] == {"msme": 1}
    assert {"Owner.nik", "Owner.fullName"} <= set(replacing[0]["entry"]["personalFields"])


def _cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", *args],
        env={**os.environ, "DATABASE_URL": url, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


async def test_the_cli_import_appends_an_entry_naming_the_owners_it_wrote_and_replaced(
    engine: AsyncEngine, reference_url: str, tmp_path: Path
) -> None:
    """`sinergi import msmes` wrote owners' personal data with no audit entry at all."""
    former, successor = "6271995204881105", "6271995204881106"
    header = "nib,name,kbli,region,district,capital,turnover,turnover_year,employees,"
    header += "owner_nik,owner_name\n"
    cells = "7740000000003,Toko Audit,47112,62.71,62.71.03,10000000,90000000,2025,1"
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(f"{header}{cells},{former},Sri Pertama\n", encoding="utf-8")
    second.write_text(f"{header}{cells},{successor},Sri Kedua\n", encoding="utf-8")

    operator = _cli(reference_url, "import", "msmes", str(first), "--jurisdiction", "62")
    assert operator.returncode == 0, operator.stdout + operator.stderr
    (entry,), _ = await trail(engine, former, "cli:import msmes")
    assert entry["clientId"] == f"cli:{getpass.getuser()}"
    assert entry["subjects"] == [former]
    assert entry["entry"]["records"] == {"msme": 1}
    assert {"Owner.nik", "Owner.fullName"} <= set(entry["entry"]["personalFields"])
    assert entry["entry"]["jurisdiction"] == "62"

    registered = _cli(
        reference_url,
        "clients",
        "create",
        "--name",
        "Dinas Audit",
        "--org-kind",
        "province",
        "--jurisdiction",
        "62",
        "--purpose",
        "register upkeep",
        "--scopes",
        "records:read records:write pii:read",
        "--json",
    )
    assert registered.returncode == 0, registered.stdout + registered.stderr
    client_id = json.loads(registered.stdout)["client_id"]
    client = _cli(reference_url, "import", "msmes", str(second), "--as", client_id)
    assert client.returncode == 0, client.stdout + client.stderr
    entries, accessors = await trail(engine, former, "cli:import msmes")
    (replacing,) = [e for e in entries if e["clientId"] == client_id]
    assert replacing["subjects"] == [former, successor]
    assert replacing["entry"]["organisation"] == "Dinas Audit"
    assert replacing["entry"]["purpose"] == "register upkeep"
    assert {"Owner.nik", "Owner.fullName"} <= set(replacing["entry"]["personalFields"])
    assert client_id in {accessor["clientId"] for accessor in accessors}
