"""A mutation's audit entry commits with its write, or the write does not commit.

The attack, or the fault: the entry of a write of personal data was appended after the write had
committed, on another connection. When that append failed (the trail's connection lost, a
statement timeout, a grant taken back), the client was answered INTERNAL, but the owner's data
was written, or replaced and erased, and no entry recorded it: `personalDataAccess` for the
owner it replaced never showed who had overwritten their data. `sinergi import msmes` appended its
entry within its transaction already (db.queries.audit.append_within).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from db.engine import create_engine
from db.queries.audit import AuditWriter
from tests.support.databases import TEST_SERVICE, as_service, run
from tests.support.demo_data import demo_clients
from tests.support.graphql import run as run_graphql
from tests.support.http import Api, served
from tests.test_audit_writes import WRITER, owner
from tests.test_record_mutations import msme_input

CLIENT = "demo-province-62"
CREATE = "mutation Create($input: CreateMsmeInput!) { createMsme(input: $input) { id version } }"
REPLACE = """
mutation Replace($id: ID!, $version: Int!, $owner: OwnerInput) {
  updateMsme(id: $id, version: $version, changes: {owner: $owner}) { id version }
}
"""
IMPORT = """
mutation Import($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) { created updated applied }
}
"""
CREATE_READING_OWNER = """
mutation CreateReadingOwner($input: CreateMsmeInput!) {
  createMsme(input: $input) { id owner { nik fullName } }
}
"""


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    demo_clients(module_reference_url)
    with served(module_reference_url) as served_api:
        yield served_api


@contextmanager
def trail_refused(url: str) -> Iterator[None]:
    """The service may not append to the trail, as a grant taken back by hand leaves it."""
    run(url, f"REVOKE INSERT ON audit_log FROM {TEST_SERVICE}")
    try:
        yield
    finally:
        run(url, f"GRANT INSERT ON audit_log TO {TEST_SERVICE}")


def _codes(answer: dict[str, Any]) -> set[str]:
    return {error["extensions"]["code"] for error in answer.get("errors", ())}


def _owner_of(url: str, nib: str) -> list[str]:
    """The NIK of the owner on record of the MSME `nib` (none: no such MSME, or no owner)."""
    rows = run(
        url,
        "SELECT o.nik FROM msmes m JOIN msme_owners o ON o.msme_id = m.id WHERE m.nib = $1",
        nib,
    )
    return [row["nik"] for row in rows]


def _msmes(url: str, nib: str) -> int:
    return len(run(url, "SELECT 1 FROM msmes WHERE nib = $1", nib))


def _entries(url: str) -> int:
    return len(run(url, "SELECT 1 FROM audit_log"))


def test_writes_whose_entry_cannot_be_appended_change_nothing(
    api: Api, module_reference_url: str
) -> None:
    url = module_reference_url
    kept, replacing = "6271010101900001", "6271010101900002"
    made = api.graphql(
        CREATE, CLIENT, {"input": msme_input("9990000999001", owner=owner(kept, "Ani A"))}
    )
    assert "errors" not in made, made
    entries = _entries(url)
    with trail_refused(url):
        created = api.graphql(
            CREATE, CLIENT, {"input": msme_input("9990000999002", owner=owner(replacing, "B"))}
        )
        replaced = api.graphql(
            REPLACE,
            CLIENT,
            {"id": made["data"]["createMsme"]["id"], "version": 1, "owner": owner(replacing, "B")},
        )
        imported = api.graphql(
            IMPORT, CLIENT, {"rows": [msme_input("9990000999003", owner=owner(replacing, "C"))]}
        )
    assert _codes(created) == {"INTERNAL"}, created
    assert _msmes(url, "9990000999002") == 0
    assert _codes(replaced) == {"INTERNAL"}, replaced
    assert _owner_of(url, "9990000999001") == [kept]
    assert _codes(imported) == {"INTERNAL"}, imported
    assert _msmes(url, "9990000999003") == 0
    assert _entries(url) == entries


def test_the_schemas_own_execution_rolls_the_write_back_too(module_reference_url: str) -> None:
    """Through the schema's execution (schema/audit.py), not the HTTP engine's."""

    async def create() -> Any:
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=30_000)
        try:
            new = msme_input("9990000999004", owner=owner("6271010101900004", "Ani D"))
            return await run_graphql(engine, WRITER, CREATE, {"input": new})
        finally:
            await engine.dispose()

    with trail_refused(module_reference_url):
        result = asyncio.run(create())
    assert result.errors, result
    assert _msmes(module_reference_url, "9990000999004") == 0


def test_a_write_is_recorded_once_and_its_answers_read_after_it(
    api: Api, module_reference_url: str
) -> None:
    """The write's entry, appended within its transaction, is not appended again once the
    request is done; what its answer read after the commit (the owner) is recorded apart."""
    nik = "6271010101900005"
    answer = api.graphql(
        CREATE_READING_OWNER,
        CLIENT,
        {"input": msme_input("9990000999005", owner=owner(nik, "Ani E"))},
    )
    assert "errors" not in answer, answer
    rows = run(
        module_reference_url,
        "SELECT entry FROM audit_log WHERE $1 = ANY(subjects) ORDER BY seq",
        nik,
    )
    written, read = (json.loads(row["entry"]) for row in rows)
    assert written["operation"] == read["operation"] == "CreateReadingOwner"
    assert written["records"] == {"msme": 1}
    assert "Mutation.createMsme" in written["fields"]
    assert read["records"] == {}
    assert "Mutation.createMsme" not in read["fields"]
    assert {"Owner.nik", "Owner.fullName"} <= set(read["personalFields"])


def test_a_write_undone_by_its_failing_entry_is_not_recorded_as_done(
    module_reference_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The write's notes outlived its rollback: the request's closing entry, appended when the
    one within the transaction had failed (a statement timeout there, say), named the owner of a
    business never written, as a write of their data, and a retry named them again."""
    nik = "6271010101900006"

    async def failing(*_: Any, **__: Any) -> None:
        raise RuntimeError("the entry within the write's transaction failed")

    monkeypatch.setattr(AuditWriter, "append_within", failing)

    async def create() -> Any:
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=30_000)
        try:
            new = msme_input("9990000999006", owner=owner(nik, "Ani F"))
            return await run_graphql(engine, WRITER, CREATE, {"input": new})
        finally:
            await engine.dispose()

    result = asyncio.run(create())
    assert result.errors, result
    assert _msmes(module_reference_url, "9990000999006") == 0
    named = "SELECT 1 FROM audit_log WHERE $1 = ANY(subjects)"
    assert run(module_reference_url, named, nik) == []
