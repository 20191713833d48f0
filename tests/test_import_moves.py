"""A bulk import moves no business out of the region of a programme it takes part in: as
`updateMsme` refuses that move, `importMsmes` and `sinergi import msmes` reject its row."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.graphql import principal, run
from tests.test_import_cli import HEADER, fetch, sinergi, table_lines
from tests.test_imports import IMPORT, draft, import_directly

KALTENG = principal(OrgKind.PROVINCE, "62")
PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71")
CITY = "PR-UJI-IMPOR-6271"
"""A programme of Palangka Raya alone."""
KECAMATAN = "PR-UJI-IMPOR-627103"
"""A programme of Jekan Raya, a kecamatan of Palangka Raya, alone."""

ENROL = """
mutation($input: ParticipationInput!) { addParticipation(input: $input) { id } }
"""
CHANGE = """
mutation($id: ID!, $version: Int!, $changes: ParticipationChanges!) {
  updateParticipation(id: $id, version: $version, changes: $changes) { status version }
}
"""
HELD = """
query($nib: String!) { msme(nib: $nib) { id version regency { code } district { code } } }
"""


@pytest.fixture(scope="module")
async def programmes(reference_url: str) -> None:
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO programmes (id, name, kind, jurisdiction) VALUES"
                    " (:city, 'Pendampingan impor Kota Palangka Raya', 'training', '62.71'),"
                    " (:kecamatan, 'Pendampingan impor Jekan Raya', 'training', '62.71.03')"
                ),
                {"city": CITY, "kecamatan": KECAMATAN},
            )
    finally:
        await owner.dispose()


def row(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Toko Pindah",
        "kbliCode": "47112",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "100000000",
        "annualTurnover": "300000000",
        "turnoverYear": 2025,
        **overrides,
    }


async def place_of(engine: AsyncEngine, nib: str) -> tuple[str, str | None, int]:
    held = (await run(engine, KALTENG, HELD, {"nib": nib})).data["msme"]
    district = held["district"]["code"] if held["district"] else None
    return held["regency"]["code"], district, held["version"]


async def enrolled(
    engine: AsyncEngine, nib: str, programme: str, *, withdrawn: bool = False
) -> str:
    """The id of a participation of `nib`'s record in `programme`, withdrawn if asked."""
    msme_id = (await run(engine, KALTENG, HELD, {"nib": nib})).data["msme"]["id"]
    given = {"programmeId": programme, "msmeId": msme_id, "role": "recipient"}
    added = await run(engine, KALTENG, ENROL, {"input": given})
    assert added.errors is None, added.errors
    participation: str = added.data["addParticipation"]["id"]
    if withdrawn:
        withdraw = {"id": participation, "version": 1, "changes": {"status": "WITHDRAWN"}}
        assert (await run(engine, PALANGKA_RAYA, CHANGE, withdraw)).errors is None
    return participation


async def businesses(engine: AsyncEngine, prefix: str) -> dict[str, str]:
    """Five records of Jekan Raya, by role: `city` and `kecamatan` take part in those
    programmes, `province` in the province's, `ended` withdrew from the city's, `stays` takes
    part in the city's too."""
    nibs = {
        role: f"{prefix}{number:09d}"
        for number, role in enumerate(("city", "kecamatan", "province", "ended", "stays"), 1)
    }
    created = await run(
        engine, KALTENG, IMPORT, {"rows": [row(nib) for nib in nibs.values()], "mode": "VALID_ROWS"}
    )
    assert created.data["importMsmes"]["created"] == 5, created
    await enrolled(engine, nibs["city"], CITY)
    await enrolled(engine, nibs["kecamatan"], KECAMATAN)
    await enrolled(engine, nibs["province"], "PR-SERBU-NIB")
    await enrolled(engine, nibs["ended"], CITY, withdrawn=True)
    await enrolled(engine, nibs["stays"], CITY)
    return nibs


def moves(nibs: dict[str, str]) -> list[dict[str, Any]]:
    """Each record out of Palangka Raya but `kecamatan`, moved within it, and `stays`, renamed."""
    elsewhere = {"region": "62.01", "district": None}
    return [
        row(nibs["city"], **elsewhere),
        row(nibs["kecamatan"], district="62.71.01"),
        row(nibs["province"], **elsewhere),
        row(nibs["ended"], **elsewhere),
        row(nibs["stays"], name="Toko Tetap"),
    ]


async def test_an_import_does_not_move_a_business_out_of_a_programme_it_takes_part_in(
    engine: AsyncEngine, programmes: None
) -> None:
    """The rows moving a business out of the region of a programme it takes part in are
    rejected, on `region` (or `district`, when only the kecamatan changes), naming the
    programme; the others are written: a move the province's programme still covers, a move out
    of a programme withdrawn from, and a change that moves nothing. All or nothing, nothing is."""
    nibs = await businesses(engine, "7746")
    refused = await run(engine, KALTENG, IMPORT, {"rows": moves(nibs), "mode": "ALL_OR_NOTHING"})
    report = refused.data["importMsmes"]
    assert (report["applied"], report["rejected"]) == (False, 2), report
    assert [(error["row"], error["field"]) for error in report["errors"]] == [
        (1, "region"),
        (2, "district"),
    ]
    city, kecamatan = (error["reason"] for error in report["errors"])
    assert f"{CITY} (region 62.71, active); withdraw or complete" in city, city
    assert f": {KECAMATAN} (region 62.71.03, active);" in kecamatan, kecamatan
    assert [await place_of(engine, nib) for nib in nibs.values()] == [("62.71", "62.71.03", 1)] * 5

    written = await run(engine, KALTENG, IMPORT, {"rows": moves(nibs), "mode": "VALID_ROWS"})
    report = written.data["importMsmes"]
    assert (report["applied"], report["updated"], report["rejected"]) == (True, 3, 2), report
    assert report["errors"] == refused.data["importMsmes"]["errors"]
    assert [await place_of(engine, nib) for nib in nibs.values()] == [
        ("62.71", "62.71.03", 1),
        ("62.71", "62.71.03", 1),
        ("62.01", None, 2),
        ("62.01", None, 2),
        ("62.71", "62.71.03", 2),
    ]


async def test_a_participation_taken_up_while_an_import_moves_its_business_waits_and_is_refused(
    engine: AsyncEngine, programmes: None
) -> None:
    """The import locks the participations of a business it moves, a withdrawn one too: the
    city taking that one up again meanwhile waits for the import, then sees the move and is
    refused, rather than reading where the business was and leaving it taking part in a
    programme of a city it no longer lies in."""
    nib = "7746100000001"
    async with engine.begin() as connection:
        await import_directly(connection, [(2, draft(nib), ())], total=1)
    participation = await enrolled(engine, nib, CITY, withdrawn=True)
    again = {"id": participation, "version": 2, "changes": {"status": "ACTIVE"}}
    async with engine.begin() as connection:
        report = await import_directly(
            connection, [(2, replace(draft(nib), region="62.01"), ())], total=1
        )
        assert (report.updated, report.errors) == (1, [])
        taken_up = asyncio.create_task(run(engine, PALANGKA_RAYA, CHANGE, again))
        await asyncio.sleep(0.5)
        assert not taken_up.done()  # the import has not committed yet
    answer = await asyncio.wait_for(taken_up, timeout=10)
    (error,) = answer.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "changes.status"}, error


async def test_the_cli_rejects_a_row_moving_a_business_out_of_its_programme_on_region(
    engine: AsyncEngine, programmes: None, reference_url: str, tmp_path: Path
) -> None:
    """`sinergi import msmes` reports the row as a spreadsheet counts it, on the `region`
    column, and writes the other row; with --all-or-nothing it writes neither."""
    nibs = ["7747000000001", "7747000000002"]
    created = await run(
        engine, KALTENG, IMPORT, {"rows": [row(nib) for nib in nibs], "mode": "VALID_ROWS"}
    )
    assert created.data["importMsmes"]["created"] == 2, created
    await enrolled(engine, nibs[0], CITY)
    moved = tmp_path / "moved.csv"
    moved.write_text(
        HEADER
        + "".join(
            f"{nib},Toko Pindah,47112,62.01,,2020-01-01,10000000,90000000,2025,1\n" for nib in nibs
        ),
        encoding="utf-8",
    )
    where = "SELECT regency_code FROM msmes WHERE nib LIKE '7747%' ORDER BY nib"
    command = (reference_url, str(moved), "--jurisdiction", "62")
    refused = await asyncio.to_thread(sinergi, *command, "--all-or-nothing")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = table_lines(refused)
    assert any("2 │ region │" in line and CITY in line for line in lines), refused.stdout
    assert "nothing written (all-or-nothing)" in refused.stdout
    assert await asyncio.to_thread(fetch, reference_url, where) == [("62.71",), ("62.71",)]

    partial = await asyncio.to_thread(sinergi, *command)
    assert partial.returncode == 1, partial.stdout + partial.stderr
    assert "2 rows: 0 created, 1 updated, 0 unchanged, 1 rejected; written" in partial.stdout
    assert await asyncio.to_thread(fetch, reference_url, where) == [("62.71",), ("62.01",)]
