"""A figure's sum of people travels as a `Total` string. The attack: a regency's app, within
its rights, imported 216 businesses of 10,000,000 employees each (the most a record may hold);
`employeesSum`, a 32-bit Int, then failed as INTERNAL in its regency's, its province's and the
national cell, for every reader and in every release while the records stood. `employeesTotal`
and `membersTotal` answer such a cell; the Int fields are deprecated."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db import releases
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PROVINCE = principal(OrgKind.PROVINCE, "62")
REGENCY = principal(OrgKind.REGENCY, "62.71")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
MOST_EMPLOYEES = 10_000_000
IMPORT = """
mutation ($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) { created rejected }
}
"""

COOPERATIVE = """
mutation {
  createCooperative(input: {legalEntityNo: "AHU-9997781.AH.01.26.TAHUN 2021",
                            name: "Koperasi Padat Karya", type: PRODUSEN, region: "62.71",
                            membersMale: 30, membersFemale: 25}) { id }
}
"""


@pytest.fixture
async def engine(own_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(own_reference_url), statement_timeout_ms=30_000)
    yield engine
    await engine.dispose()


def _row(index: int) -> dict[str, Any]:
    return {
        "nib": f"88{index:011d}",
        "name": f"Usaha Padat Karya {index}",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
        "employees": MOST_EMPLOYEES,
    }


async def test_a_regencys_valid_records_leave_every_total_answering(
    engine: AsyncEngine, own_reference_url: str
) -> None:
    imported = await run(engine, REGENCY, IMPORT, {"rows": [_row(i) for i in range(216)]})
    assert imported.errors is None, imported.errors
    assert imported.data["importMsmes"] == {"created": 216, "rejected": 0}
    assert await releases.release_now(own_reference_url) is not None
    exact = 216 * MOST_EMPLOYEES  # past 2,147,483,647

    province = await run(
        engine, PROVINCE, "{ msmeFigures(groupBy: [REGENCY]) { key { value } employeesTotal } }"
    )
    assert province.errors is None, province.errors
    totals = {
        cell["key"][0]["value"]: cell["employeesTotal"] for cell in province.data["msmeFigures"]
    }
    assert totals == {"62.71": str(exact), None: str(exact)}  # its own records: exact

    national = await run(
        engine, MINISTRY, "{ msmeFigures(groupBy: [PROVINCE]) { count employeesTotal } }"
    )
    assert national.errors is None, national.errors
    for cell in national.data["msmeFigures"]:  # Kalteng and the nation: perturbed, answered
        assert cell["count"] is not None, cell
        assert cell["employeesTotal"].isdigit(), cell

    # The deprecated Int still fails past its range, as the contract says.
    legacy = await run(engine, PROVINCE, "{ msmeFigures(groupBy: [PROVINCE]) { employeesSum } }")
    assert legacy.errors
    assert {error.extensions["code"] for error in legacy.errors} == {"INTERNAL"}


async def test_a_total_answers_as_its_int_does_within_range(
    engine: AsyncEngine, own_reference_url: str
) -> None:
    document = """{
      msmeFigures(groupBy: [PROVINCE]) { employeesSum employeesTotal }
      cooperativeFigures(groupBy: [PROVINCE]) { membersSum membersTotal }
    }"""
    imported = await run(engine, REGENCY, IMPORT, {"rows": [_row(1) | {"employees": 7}]})
    assert imported.errors is None, imported.errors
    assert imported.data["importMsmes"]["created"] == 1
    created = await run(engine, REGENCY, COOPERATIVE)
    assert created.errors is None, created.errors
    assert await releases.release_now(own_reference_url) is not None
    answered = await run(engine, PROVINCE, document)
    assert answered.errors is None, answered.errors
    ours = [cell for cell in answered.data["msmeFigures"] if cell["employeesSum"] == 7]
    assert [cell["employeesTotal"] for cell in ours] == ["7", "7"]  # Kalteng and the total
    members = [cell for cell in answered.data["cooperativeFigures"] if cell["membersSum"] == 55]
    assert [cell["membersTotal"] for cell in members] == ["55", "55"]
    # Read perturbed (one record a cell: suppressed, null), each Total is its Int as a string.
    perturbed = await run(engine, MINISTRY, document)
    assert perturbed.errors is None, perturbed.errors
    for read in (answered, perturbed):
        for cell in read.data["msmeFigures"]:
            expected = None if cell["employeesSum"] is None else str(cell["employeesSum"])
            assert cell["employeesTotal"] == expected, cell
        for cell in read.data["cooperativeFigures"]:
            expected = None if cell["membersSum"] is None else str(cell["membersSum"])
            assert cell["membersTotal"] == expected, cell
