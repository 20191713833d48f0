"""Records stored before today's rules stay writable: a rule added since judges only the values
a write changes (domain/records.py `changes`), through `updateMsme`, `updateCooperative`,
`importMsmes` and `sinergi import msmes` alike, and still refuses a bad value a write sets.

Each record is made through the API, then given the old value behind its back as the owner
role (as older code, or an operator, left it), hence the module's own database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.databases import run as run_sql
from tests.support.graphql import principal, run
from tests.test_import_cli import sinergi

KALTENG = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
NIK = "6271995204880717"
BLANK = "\u2800"
"""The Braille pattern blank, refused in text since domain/text.py `printable` named it."""


@dataclass(frozen=True)
class Old:
    """A value older rules took: the SQL that leaves a record holding it, the same value as a
    write gives it (sent back unchanged), and a write changing it to one today's rules refuse,
    with the field refused (None: no such write)."""

    sql: str
    given: dict[str, Any]
    bad: dict[str, Any]
    refused: str | None


MSME_OLD = {
    "sales before the founding": Old(
        "UPDATE msmes SET turnover_year = 2005 WHERE nib = $1",
        {"turnoverYear": 2005},
        {"turnoverYear": 2006},
        "turnoverYear",
    ),
    "a name of no letter": Old(
        "UPDATE msmes SET name = '***' WHERE nib = $1", {"name": "***"}, {"name": "+++"}, "name"
    ),
    "a Braille blank in the name": Old(
        "UPDATE msmes SET name = 'Toko' || chr(10240) || 'Lama' WHERE nib = $1",
        {"name": f"Toko{BLANK}Lama"},
        {"name": f"Toko{BLANK}Baru"},
        "name",
    ),
    "an owner named by no letter": Old(
        "UPDATE msme_owners SET full_name = '***'"
        " WHERE msme_id = (SELECT id FROM msmes WHERE nib = $1)",
        {"owner": {"nik": NIK, "fullName": "***"}},
        {"owner": {"nik": NIK, "fullName": "+++"}},
        "owner.fullName",
    ),
}

CREATE_MSME = """
mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id version } }"""
UPDATE_MSME = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { version employees }
}"""
IMPORT = """
mutation($rows: [MsmeImportRow!]!) {
  importMsmes(mode: ALL_OR_NOTHING, rows: $rows) { applied updated errors { field reason } }
}"""
CREATE_COOPERATIVE = """
mutation($input: CreateCooperativeInput!) { createCooperative(input: $input) { id version } }"""
UPDATE_COOPERATIVE = """
mutation($id: ID!, $version: Int!, $changes: CooperativeChanges!) {
  updateCooperative(id: $id, version: $version, changes: $changes) { version assets }
}"""


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


async def _as_owner(url: str, sql: str, *args: Any) -> None:
    """`sql` run as the database's owner role, behind the API's back (`run_sql`, in a test
    already running an event loop)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(sql, *args)
    finally:
        await connection.close()


def _msme(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Toko Uji Lama",
        "kbliCode": "10794",
        "region": "62.71",
        "establishedOn": "2010-05-01",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2012,
        "owner": {"nik": NIK, "fullName": "Sri Lama"},
        **overrides,
    }


def _refused_on(result: Any, field: str) -> None:
    assert result.errors is not None, result.data
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT", error
    assert error.extensions["field"] == field, error


@pytest.mark.parametrize("case", list(MSME_OLD))
async def test_an_msme_holding_a_value_older_rules_took_stays_writable(
    engine: AsyncEngine, module_reference_url: str, case: str
) -> None:
    """The bug: updateMsme(changes: {employees: 4}) on a record founded in 2010 with sales of
    2005 was refused on changes.turnoverYear, a field the client never sent; one named '***' on
    changes.name. An import row giving the stored values back was refused the same way. Only a
    write changing the value to one today's rules refuse is refused."""
    old = MSME_OLD[case]
    nib = f"77170000000{list(MSME_OLD).index(case) + 10}"
    created = await run(engine, KALTENG, CREATE_MSME, {"input": _msme(nib)})
    assert created.errors is None, created.errors
    record = created.data["createMsme"]["id"]
    await _as_owner(module_reference_url, old.sql, nib)

    unrelated = {"id": record, "version": 1, "changes": {"employees": 4}}
    updated = await run(engine, KALTENG, UPDATE_MSME, unrelated)
    assert updated.errors is None, updated.errors
    assert updated.data["updateMsme"] == {"version": 2, "employees": 4}
    resent = {"id": record, "version": 2, "changes": {**old.given, "employees": 5}}
    updated = await run(engine, KALTENG, UPDATE_MSME, resent)
    assert updated.errors is None, updated.errors

    row = _msme(nib, employees=6, **old.given)
    imported = await run(engine, KALTENG, IMPORT, {"rows": [row]})
    assert imported.errors is None, imported.errors
    assert imported.data["importMsmes"] == {"applied": True, "updated": 1, "errors": []}

    assert old.refused is not None
    bad = {"id": record, "version": 4, "changes": old.bad}
    _refused_on(await run(engine, KALTENG, UPDATE_MSME, bad), f"changes.{old.refused}")
    refused = await run(engine, KALTENG, IMPORT, {"rows": [_msme(nib, **old.bad)]})
    assert refused.data["importMsmes"]["applied"] is False
    (error,) = refused.data["importMsmes"]["errors"]
    assert error["field"] == old.refused, error


def _cooperative(number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "legalEntityNo": f"AHU-717{number:04d}.AH.01.26.TAHUN 2021",
        "name": "Koperasi Uji Lama",
        "type": "PRODUSEN",
        "region": "62.01",
        "membersMale": 30,
        "membersFemale": 25,
        "businessVolume": "1500000000",
        "bookYear": 2024,
        "odsNo": "ODS-1",
        **overrides,
    }


COOPERATIVE_OLD = {
    "persons in a secondary cooperative": Old(
        "UPDATE cooperatives SET tier = 'secondary' WHERE legal_entity_no = $1",
        {},
        {"membersMale": 31},
        "membersMale",
    ),
    "a name of no letter": Old(
        "UPDATE cooperatives SET name = '***' WHERE legal_entity_no = $1",
        {"name": "***"},
        {"name": "+++"},
        "name",
    ),
    "a Braille blank in the ODS number": Old(
        "UPDATE cooperatives SET ods_no = 'ODS' || chr(10240) || '1' WHERE legal_entity_no = $1",
        {"odsNo": f"ODS{BLANK}1"},
        {"odsNo": f"ODS{BLANK}2"},
        "odsNo",
    ),
}


@pytest.mark.parametrize("case", list(COOPERATIVE_OLD))
async def test_a_cooperative_holding_a_value_older_rules_took_stays_writable(
    engine: AsyncEngine, module_reference_url: str, case: str
) -> None:
    """As for an MSME: a secondary cooperative counting persons, a name of no letter, a Braille
    blank, each stored before its rule, take an update of the assets and the value sent back as
    stored; a write setting a value the rule refuses is refused."""
    old = COOPERATIVE_OLD[case]
    given = _cooperative(list(COOPERATIVE_OLD).index(case) + 1)
    created = await run(engine, KALTENG, CREATE_COOPERATIVE, {"input": given})
    assert created.errors is None, created.errors
    record = created.data["createCooperative"]["id"]
    await _as_owner(module_reference_url, old.sql, given["legalEntityNo"])

    unrelated = {"id": record, "version": 1, "changes": {"assets": "5000000"}}
    updated = await run(engine, KALTENG, UPDATE_COOPERATIVE, unrelated)
    assert updated.errors is None, updated.errors
    resent = {"id": record, "version": 2, "changes": {**old.given, "assets": "6000000"}}
    updated = await run(engine, KALTENG, UPDATE_COOPERATIVE, resent)
    assert updated.errors is None, updated.errors
    assert updated.data["updateCooperative"] == {"version": 3, "assets": "6000000"}
    if old.refused is not None:
        bad = {"id": record, "version": 3, "changes": old.bad}
        _refused_on(await run(engine, KALTENG, UPDATE_COOPERATIVE, bad), f"changes.{old.refused}")


def test_a_file_giving_a_record_its_stored_old_values_is_imported(
    module_reference_url: str, tmp_path: Path
) -> None:
    """`sinergi import msmes` as importMsmes: a row giving back a founding year after its sales
    year and a name of no letter, as stored before those rules, updates the record; a row
    changing either to a value the rules refuse is rejected."""
    url = module_reference_url

    def imported(name: str, rows: str) -> str:
        path = tmp_path / name
        path.write_text(
            "nib,name,kbli,region,established,turnover,turnover_year,employees,owner_nik,owner_name\n"
            + rows,
            encoding="utf-8",
        )
        result = sinergi(url, str(path), "--jurisdiction", "62")
        return result.stdout + result.stderr

    created = imported(
        "new.csv", f"7717000000090,Toko Berkas,10794,62.71,2010-05-01,240000000,2012,3,{NIK},Sri\n"
    )
    assert "1 created" in created, created
    run_sql(url, "UPDATE msmes SET turnover_year = 2005, name = '***' WHERE nib = '7717000000090'")
    run_sql(
        url,
        "UPDATE msme_owners SET full_name = '***'"
        " WHERE msme_id = (SELECT id FROM msmes WHERE nib = '7717000000090')",
    )
    kept = imported(
        "kept.csv", f"7717000000090,***,10794,62.71,2010-05-01,240000000,2005,4,{NIK},***\n"
    )
    assert "1 updated" in kept, kept
    assert "0 rejected" in kept, kept
    assert run_sql(url, "SELECT employees FROM msmes WHERE nib = '7717000000090'")[0][0] == 4

    for field, row in (
        ("turnover_year", "7717000000090,***,10794,62.71,2010-05-01,240000000,2006,5,,\n"),
        ("name", "7717000000090,+++,10794,62.71,2010-05-01,240000000,2005,5,,\n"),
        ("owner_name", f"7717000000090,***,10794,62.71,2010-05-01,240000000,2005,5,{NIK},+++\n"),
    ):
        refused = imported("bad.csv", row)
        assert "1 rejected" in refused, refused
        assert field in refused, refused


async def test_a_cooperative_of_a_book_year_still_running_takes_no_new_figures_for_it(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """A book year not yet closed, stored before the rule: the record takes a new name, but not
    new figures for that year (they would be a part year's, read as the whole year's by R11 and
    the indicators), refused on the book year."""
    given = _cooperative(90)
    created = await run(engine, KALTENG, CREATE_COOPERATIVE, {"input": given})
    assert created.errors is None, created.errors
    record = created.data["createCooperative"]["id"]
    await _as_owner(
        module_reference_url,
        "UPDATE cooperatives SET book_year = extract(year FROM now()) WHERE legal_entity_no = $1",
        given["legalEntityNo"],
    )
    renamed = {"id": record, "version": 1, "changes": {"name": "Koperasi Uji Baru"}}
    updated = await run(engine, KALTENG, UPDATE_COOPERATIVE, renamed)
    assert updated.errors is None, updated.errors
    for figures in ({"assets": "5000000"}, {"businessVolume": "99000000000"}):
        refused = {"id": record, "version": 2, "changes": figures}
        _refused_on(await run(engine, KALTENG, UPDATE_COOPERATIVE, refused), "changes.bookYear")


async def test_new_sales_for_a_year_before_the_founding_are_refused_on_that_year(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """Sales of 2005 stored for a business founded in 2010, before the rule: new annual sales
    sent without a year are that year's, and refused on it, as a year before the founding is."""
    nib = "7717000000091"
    created = await run(engine, KALTENG, CREATE_MSME, {"input": _msme(nib)})
    assert created.errors is None, created.errors
    record = created.data["createMsme"]["id"]
    await _as_owner(
        module_reference_url, "UPDATE msmes SET turnover_year = 2005 WHERE nib = $1", nib
    )
    sales = {"id": record, "version": 1, "changes": {"annualTurnover": "9000000000"}}
    _refused_on(await run(engine, KALTENG, UPDATE_MSME, sales), "changes.turnoverYear")
