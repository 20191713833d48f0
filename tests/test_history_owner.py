"""A record's history and scale history show figures recorded while an earlier owner held the
business: a read of them names that owner, whose finances they are (UU 27/2022), not the one
on record at the read, and names them still once the owner is erased (migration 0062)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal
from tests.test_audit_owner_finances import audited, read
from tests.test_record_mutations import CREATE, msme_input

PROVINCE = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
REGENCY = principal(OrgKind.REGENCY, "62.71")
"""Reads Palangka Raya's records (records:read), not owners' personal data."""
CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
UPDATE = """mutation Update($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { id version } }"""
HISTORY = """query History($nib: String!, $first: Int) {
  msme(nib: $nib) { changes(first: $first) { operation fields { field before after } } } }"""
SCALES = """query Scales($nib: String!) {{
  msme(nib: $nib) {{ scaleHistory {{ effectiveFrom scale annualSales{rows} capital }} }} }}"""
ROWS = " @include(if: true)"
"""A directive the compiler leaves to the executor: the same document resolved row by row."""


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=30_000)
    yield engine
    await engine.dispose()


async def readers_of(engine: AsyncEngine, nik: str) -> set[str]:
    data = await read(
        engine,
        "query($nik: String!) { personalDataAccess(nik: $nik) { clientId } }",
        CUSTODIAN,
        {"nik": nik},
    )
    return {row["clientId"] for row in data["personalDataAccess"]}


class Business:
    """An MSME the province writes, one change at a time."""

    def __init__(self, engine: AsyncEngine, nib: str) -> None:
        self.engine, self.nib = engine, nib
        self.key: dict[str, Any] = {}

    async def create(self, nik: str) -> None:
        owner = {"nik": nik, "fullName": "Pemilik Pertama"}
        data = await read(
            self.engine, CREATE, PROVINCE, {"input": msme_input(self.nib, owner=owner)}
        )
        self.key = {"id": data["createMsme"]["id"], "version": data["createMsme"]["version"]}

    async def change(self, **changes: Any) -> None:
        data = await read(self.engine, UPDATE, PROVINCE, {**self.key, "changes": changes})
        self.key = dict(data["updateMsme"])


async def test_the_history_names_the_owner_whose_figures_it_shows(engine: AsyncEngine) -> None:
    first, second = "6271011503900941", "6271011503900942"
    business = Business(engine, "8819400000001")
    await business.create(first)
    await business.change(annualTurnover="260000000")
    await business.change(owner={"nik": second, "fullName": "Pemilik Kedua"})

    data = await read(engine, HISTORY, REGENCY, {"nib": business.nib, "first": 10})
    fields = [field for change in data["msme"]["changes"] for field in change["fields"]]
    assert {"field": "annualTurnover", "before": "240000000", "after": "260000000"} in fields
    assert (await audited(engine, "History"))[0] == [first]
    assert REGENCY.client_id in await readers_of(engine, first)

    await business.change(capital="170000000")  # the second owner's figures
    await read(engine, HISTORY, REGENCY, {"nib": business.nib, "first": 10})
    assert (await audited(engine, "History"))[0] == sorted([first, second])
    await read(engine, HISTORY, REGENCY, {"nib": business.nib, "first": 1})
    assert (await audited(engine, "History"))[0] == [second]


@pytest.mark.parametrize(
    ("rows", "nib", "first", "second"),
    [
        ("", "8819400000002", "6271011503900951", "6271011503900952"),
        (ROWS, "8819400000012", "6271011503900971", "6271011503900972"),
    ],
    ids=["compiled", "row by row"],
)
async def test_the_scale_history_names_the_owner_whose_figures_it_shows(
    engine: AsyncEngine, rows: str, nib: str, first: str, second: str
) -> None:
    business = Business(engine, nib)
    await business.create(first)
    await business.change(owner={"nik": second, "fullName": "Pemilik Kedua"})

    data = await read(engine, SCALES.format(rows=rows), REGENCY, {"nib": business.nib})
    assert data["msme"]["scaleHistory"][0]["annualSales"] == "240000000"
    assert (await audited(engine, "Scales"))[0] == [first]
    assert REGENCY.client_id in await readers_of(engine, first)


async def test_an_erased_owner_is_named_for_the_figures_still_shown(engine: AsyncEngine) -> None:
    nik = "6271011503900961"
    business = Business(engine, "8819400000003")
    await business.create(nik)
    await business.change(owner=None)

    await read(engine, HISTORY, REGENCY, {"nib": business.nib, "first": 10})
    assert (await audited(engine, "History"))[0] == [nik]
    for rows in ("", ROWS):
        await read(engine, SCALES.format(rows=rows), REGENCY, {"nib": business.nib})
        assert (await audited(engine, "Scales"))[0] == [nik]


IMPORT = """mutation Import($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) { created updated applied } }"""


async def test_an_import_keeps_the_owners_whose_figures_its_rows_hold(engine: AsyncEngine) -> None:
    """An import writes a row's history before its owner: a record it creates with an owner,
    and a change of the figures with the owner replaced, name the owners the row wrote."""
    first, second = "6271011503900981", "6271011503900982"
    nib = "8819400000004"
    owner = {"nik": first, "fullName": "Pemilik Pertama"}
    made = await read(engine, IMPORT, PROVINCE, {"rows": [msme_input(nib, owner=owner)]})
    assert made["importMsmes"]["created"] == 1, made
    await read(engine, HISTORY, REGENCY, {"nib": nib, "first": 10})
    assert (await audited(engine, "History"))[0] == [first]

    row = msme_input(nib, annualTurnover="280000000", owner={**owner, "nik": second})
    changed = await read(engine, IMPORT, PROVINCE, {"rows": [row]})
    assert changed["importMsmes"]["updated"] == 1, changed
    await read(engine, HISTORY, REGENCY, {"nib": nib, "first": 1})
    assert (await audited(engine, "History"))[0] == sorted([first, second])


PREVIOUS_RELEASE = [
    "UPDATE msmes SET capital = 170000000, version = version + 1 WHERE nib = :nib"
    " RETURNING id, version",
    "INSERT INTO record_changes (client_id, organisation, record_kind, record_id, operation,"
    " version, changes, personal_fields)"
    " VALUES (:client, '62', 'msme', :id, 'import', :version,"
    " field_change('capital', 150000000::bigint, 170000000::bigint), ARRAY['owner.nik'])",
    "INSERT INTO msme_owners (msme_id, nik, full_name) VALUES (:id, :nik, 'Pemilik Baru')",
]
"""An import by an instance of the previous release, still serving during an upgrade (README,
"Upgrading"): it knows no `owner_niks`, and writes a record's history before its owner."""


async def test_an_entry_the_previous_release_imports_names_the_owner_now(
    engine: AsyncEngine,
) -> None:
    """The trigger finds no owner when the entry is written: it keeps none, not an empty list,
    and a read of the figures names the owner written after it, as before migration 0062."""
    nik, nib = "6271011503900991", "8819400000005"
    await read(engine, CREATE, PROVINCE, {"input": msme_input(nib)})
    async with engine.begin() as connection:
        update, history, owner = (text(statement) for statement in PREVIOUS_RELEASE)
        written = (await connection.execute(update, {"nib": nib})).one()
        key = {"id": written.id, "version": written.version}
        await connection.execute(history, {**key, "client": PROVINCE.client_id})
        await connection.execute(owner, {**key, "nik": nik})

    data = await read(engine, HISTORY, REGENCY, {"nib": nib, "first": 1})
    fields = data["msme"]["changes"][0]["fields"]
    assert {"field": "capital", "before": "150000000", "after": "170000000"} in fields
    assert (await audited(engine, "History"))[0] == [nik]
