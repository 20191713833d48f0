"""Cooperative and programme-participation mutations: jurisdiction, versions, history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db import releases
from db.engine import create_engine
from resolvers.calendar import today
from tests.support.databases import as_service
from tests.support.graphql import principal, run

KALTENG = principal(OrgKind.PROVINCE, "62")
KALBAR = principal(OrgKind.PROVINCE, "61")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71")
CITY_PROGRAMME = "PR-UJI-KOTA-6271"
"""A programme of Palangka Raya alone, which the reference data has none of."""


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def city_programme(reference_url: str) -> str:
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO programmes (id, name, kind, jurisdiction)"
                    " VALUES (:id, 'Pendampingan usaha Kota Palangka Raya', 'training', '62.71')"
                ),
                {"id": CITY_PROGRAMME},
            )
    finally:
        await owner.dispose()
    return CITY_PROGRAMME


CREATE = """
mutation($input: CreateCooperativeInput!) {
  createCooperative(input: $input) { id legalEntityNo type status version memberCount }
}
"""
UPDATE = """
mutation($id: ID!, $version: Int!, $changes: CooperativeChanges!) {
  updateCooperative(id: $id, version: $version, changes: $changes) {
    version membersFemale changes { operation fields { field before after } }
  }
}
"""
DEACTIVATE = """
mutation($id: ID!, $version: Int!) {
  deactivateCooperative(id: $id, version: $version) { status isActive version }
}
"""
ADD = """
mutation($input: ParticipationInput!) {
  addParticipation(input: $input) { id role status version programme { id } cooperative { id } }
}
"""
CHANGE = """
mutation($id: ID!, $version: Int!, $changes: ParticipationChanges!) {
  updateParticipation(id: $id, version: $version, changes: $changes) {
    status version changes { operation fields { field before after } }
  }
}
"""


def cooperative(number: int, **overrides: Any) -> dict[str, Any]:
    return {
        "legalEntityNo": f"AHU-777{number:04d}.AH.01.26.TAHUN 2021",
        "name": "Koperasi Produsen Uji",
        "type": "PRODUSEN",
        "region": "62.01",
        "membersMale": 30,
        "membersFemale": 25,
        "businessVolume": "1500000000",
        **overrides,
    }


async def test_a_cooperative_is_created_updated_and_deactivated_with_its_history(
    engine: AsyncEngine,
) -> None:
    created = await run(engine, KALTENG, CREATE, {"input": cooperative(1)})
    assert created.errors is None, created.errors
    record = created.data["createCooperative"]
    assert (record["status"], record["version"], record["memberCount"]) == ("ACTIVE", 1, 55)
    updated = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": record["id"], "version": 1, "changes": {"membersFemale": 40}},
    )
    answer = updated.data["updateCooperative"]
    assert answer["version"] == 2
    assert answer["changes"][-1] == {
        "operation": "update",
        "fields": [{"field": "membersFemale", "before": "25", "after": "40"}],
    }
    stale = await run(engine, KALTENG, DEACTIVATE, {"id": record["id"], "version": 1})
    assert stale.errors[0].extensions["code"] == "CONFLICT"
    done = await run(engine, KALTENG, DEACTIVATE, {"id": record["id"], "version": 2})
    assert done.data["deactivateCooperative"] == {
        "status": "INACTIVE",
        "isActive": False,
        "version": 3,
    }


async def test_a_cooperative_outside_the_jurisdiction_cannot_be_written(
    engine: AsyncEngine,
) -> None:
    outside = await run(engine, KALBAR, CREATE, {"input": cooperative(2)})
    assert outside.errors[0].extensions["code"] == "FORBIDDEN"
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(2)})).data[
        "createCooperative"
    ]
    for document, variables in (
        (UPDATE, {"id": record["id"], "version": 1, "changes": {"name": "Diambil"}}),
        (DEACTIVATE, {"id": record["id"], "version": 1}),
    ):
        result = await run(engine, KALBAR, document, variables)
        assert result.errors[0].extensions["code"] == "NOT_FOUND"
    moved = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": record["id"], "version": 1, "changes": {"region": "61.71"}},
    )
    assert moved.errors[0].extensions["code"] == "FORBIDDEN"


async def test_bad_cooperative_input_names_the_field(engine: AsyncEngine) -> None:
    result = await run(
        engine, KALTENG, CREATE, {"input": cooperative(3, legalEntityNo="AHU-12.XX.TAHUN")}
    )
    assert result.errors[0].extensions["code"] == "BAD_USER_INPUT"
    assert result.errors[0].extensions["field"] == "input.legalEntityNo"


@pytest.mark.parametrize("year", ["0000", "9999"])
async def test_a_legal_entity_number_of_no_possible_year_is_bad_input_on_its_field(
    engine: AsyncEngine, year: str
) -> None:
    """Year 0000 was stored, and its deed's date then failed as INTERNAL (no year 0), as did every
    eligibility check on it; Kemenkumham numbers run from 2019 (Permenkumham 14/2019) to today."""
    number = f"AHU-7785{year}.AH.01.26.TAHUN {year}"
    draft = cooperative(0, legalEntityNo=number, establishedOn="2020-02-01")
    result = await run(engine, KALTENG, CREATE, {"input": draft})
    assert result.data == {"createCooperative": None}
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "input.legalEntityNo"
    assert "2019" in error.message


async def test_a_taken_legal_entity_number_is_a_conflict_on_its_argument(
    engine: AsyncEngine,
) -> None:
    """The field is the path from the argument, as every other refusal names it."""
    assert (await run(engine, KALTENG, CREATE, {"input": cooperative(7)})).errors is None
    again = await run(engine, KALTENG, CREATE, {"input": cooperative(7, name="Lain")})
    assert again.data == {"createCooperative": None}
    (error,) = again.errors
    assert error.extensions == {"code": "CONFLICT", "field": "input.legalEntityNo"}
    assert error.message == "input.legalEntityNo: is already registered"


async def test_a_participation_is_added_and_kept_current_inside_the_jurisdiction(
    engine: AsyncEngine,
) -> None:
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(4)})).data[
        "createCooperative"
    ]
    given = {"programmeId": "PR-MMM", "cooperativeId": record["id"], "role": "producer"}
    outside = await run(engine, KALBAR, ADD, {"input": given})
    assert outside.errors[0].extensions == {"code": "NOT_FOUND", "field": "input.cooperativeId"}
    added = await run(engine, KALTENG, ADD, {"input": given})
    assert added.errors is None, added.errors
    participation = added.data["addParticipation"]
    assert participation["cooperative"] == {"id": record["id"]}
    again = await run(engine, KALTENG, ADD, {"input": given})
    assert again.errors[0].extensions["code"] == "CONFLICT"
    unknown = await run(engine, KALTENG, ADD, {"input": {**given, "programmeId": "PR-NONE"}})
    assert unknown.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": "input.programmeId"}

    changes = {"status": "COMPLETED"}
    moved = {"id": participation["id"], "version": 1, "changes": changes}
    assert (await run(engine, KALBAR, CHANGE, moved)).errors[0].extensions == {
        "code": "NOT_FOUND",
        "field": "id",
    }
    changed = (await run(engine, KALTENG, CHANGE, moved)).data["updateParticipation"]
    assert (changed["status"], changed["version"]) == ("COMPLETED", 2)
    assert changed["changes"][-1]["fields"] == [
        {"field": "status", "before": "active", "after": "completed"}
    ]


async def test_a_business_joins_only_programmes_of_a_region_it_lies_in(
    engine: AsyncEngine,
) -> None:
    """A Kalteng cooperative joins Kalteng's and national programmes, not Kaltim's (64); Kalbar
    cannot put its own business in Kalteng's programme, which Kalteng could not see or end."""
    kalteng = (await run(engine, KALTENG, CREATE, {"input": cooperative(5)})).data
    kalbar = (await run(engine, KALBAR, CREATE, {"input": cooperative(6, region="61.71")})).data
    own = {"cooperativeId": kalteng["createCooperative"]["id"], "role": "participant"}
    for programme in ("PR-KOPPROD-62", "PR-MMM"):
        added = await run(engine, KALTENG, ADD, {"input": {**own, "programmeId": programme}})
        assert added.errors is None, added.errors
    refused = [
        await run(engine, KALTENG, ADD, {"input": {**own, "programmeId": "PR-LATIH-64"}}),
        await run(
            engine,
            KALBAR,
            ADD,
            {
                "input": {
                    "cooperativeId": kalbar["createCooperative"]["id"],
                    "role": "participant",
                    "programmeId": "PR-KOPPROD-62",
                }
            },
        ),
    ]
    for result in refused:
        assert result.data == {"addParticipation": None}
        assert result.errors[0].extensions == {
            "code": "BAD_USER_INPUT",
            "field": "input.programmeId",
        }


async def _stored(engine: AsyncEngine, legal_entity_no: str) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT count(*) FROM cooperatives WHERE legal_entity_no = :n"),
            {"n": legal_entity_no},
        )
        return int(found.scalar_one())


async def test_a_cooperative_whose_dates_disagree_is_refused_and_nothing_written(
    engine: AsyncEngine,
) -> None:
    """A RAT held 120 years before the deed, on a book year before it, and figures of a book
    year before it were all stored, and R11 decides a guarantee check on the RAT's book year."""
    dates = {"establishedOn": "2021-01-01", "lastRatDate": "1901-01-01", "bookYear": 1900}
    attack = cooperative(20, **dates, lastRatBookYear=2020)
    result = await run(engine, KALTENG, CREATE, {"input": attack})
    assert result.data == {"createCooperative": None}
    (error,) = result.errors
    assert (error.extensions["code"], error.extensions["field"]) == (
        "BAD_USER_INPUT",
        "input.bookYear",
    )
    assert error.message == (
        "input.bookYear: is before 2021, the year the cooperative was established"
    )
    assert [problem["field"] for problem in error.extensions["problems"]] == [
        "input.bookYear",
        "input.lastRatDate",
        "input.lastRatBookYear",
    ]
    assert await _stored(engine, attack["legalEntityNo"]) == 0
    held_in_its_year = cooperative(20, lastRatDate="2024-12-30", lastRatBookYear=2024)
    (error,) = (await run(engine, KALTENG, CREATE, {"input": held_in_its_year})).errors
    assert error.extensions["field"] == "input.lastRatBookYear"
    assert error.message.startswith("input.lastRatBookYear: must be before 2024, the year of")
    consistent = cooperative(
        20,
        establishedOn="2021-01-01",
        bookYear=2021,
        lastRatDate="2022-03-15",
        lastRatBookYear=2021,
    )
    assert (await run(engine, KALTENG, CREATE, {"input": consistent})).errors is None


async def test_an_update_s_dates_are_checked_against_the_stored_ones(engine: AsyncEngine) -> None:
    """The patch is merged into the stored record and the dates of the result must agree: a
    change of one date is refused for what it makes of a date the client did not send."""
    stored = cooperative(
        21,
        establishedOn="2019-05-01",
        bookYear=2020,
        lastRatDate="2021-03-15",
        lastRatBookYear=2020,
    )
    created = (await run(engine, KALTENG, CREATE, {"input": stored})).data["createCooperative"]
    refused = {
        # the patch -> the fields refused
        "a RAT before the stored deed": ({"lastRatDate": "2019-01-02"}, ["changes.lastRatDate"]),
        "a deed after the stored book years": (
            {"establishedOn": "2021-01-01"},
            ["changes.bookYear", "changes.lastRatBookYear"],
        ),
        "a RAT in the stored RAT's book year": (
            {"lastRatDate": "2020-11-30"},
            ["changes.lastRatBookYear"],
        ),
    }
    for case, (changes, fields) in refused.items():
        variables = {"id": created["id"], "version": 1, "changes": changes}
        result = await run(engine, KALTENG, UPDATE, variables)
        assert result.data == {"updateCooperative": None}, case
        (error,) = result.errors
        assert error.extensions["code"] == "BAD_USER_INPUT", case
        assert error.message.startswith(f"{fields[0]}: "), case
        named = [p["field"] for p in error.extensions.get("problems", [error.extensions])]
        assert named == fields, case
    # Nothing was written: version 1 is still current, and a consistent change is taken.
    consistent = {"lastRatDate": "2022-04-01", "lastRatBookYear": 2021}
    variables = {"id": created["id"], "version": 1, "changes": consistent}
    updated = await run(engine, KALTENG, UPDATE, variables)
    assert updated.errors is None, updated.errors
    assert updated.data["updateCooperative"]["version"] == 2


LOOKUP = "query($number: String!) { cooperative(legalEntityNo: $number) { id legalEntityNo } }"
# One Kemenkumham number as the register prints it (seven digits) and as a letterhead does (six).
REGISTER_SPELLING = "AHU-0077341.AH.01.26.TAHUN 2021"
LETTERHEAD_SPELLING = "ahu-077341.AH.01.26.Tahun  2021"


async def test_another_spelling_of_a_taken_number_is_the_same_cooperative(
    engine: AsyncEngine,
) -> None:
    """Leading zeros, case and spaces do not make a second cooperative: the second create is
    refused as a duplicate, and a lookup by either spelling finds the first."""
    first = await run(
        engine, KALTENG, CREATE, {"input": cooperative(8, legalEntityNo=LETTERHEAD_SPELLING)}
    )
    assert first.errors is None, first.errors
    record = first.data["createCooperative"]
    assert record["legalEntityNo"] == REGISTER_SPELLING
    again = await run(
        engine, KALTENG, CREATE, {"input": cooperative(9, legalEntityNo=REGISTER_SPELLING)}
    )
    (error,) = again.errors
    assert error.extensions == {"code": "CONFLICT", "field": "input.legalEntityNo"}
    for spelling in (LETTERHEAD_SPELLING, REGISTER_SPELLING, "AHU-77341.AH.01.26.TAHUN 2021"):
        found = await run(engine, KALTENG, LOOKUP, {"number": spelling})
        assert found.data == {
            "cooperative": {"id": record["id"], "legalEntityNo": REGISTER_SPELLING}
        }


LOOKUP_BY_ROWS = LOOKUP.replace("legalEntityNo }", "legalEntityNo @include(if: true) }")
"""`LOOKUP` answered from rows (resolvers.loaders), not compiled: it has a directive."""
OLDER_NUMBER = "518/BH/XIV/1999"
"""A dinas number from before the Kemenkumham register: kept as typed."""


async def test_an_older_number_is_registered_once_in_any_case_and_in_ascii_only(
    engine: AsyncEngine,
) -> None:
    """`518/bh/xiv/1999` is `518/BH/XIV/1999`: a CONFLICT on `input.legalEntityNo`, as another
    spelling of a Kemenkumham number is, and the number keeps the spelling it was typed in; a
    lookup in any case finds it (it compared exactly, answering null for the number that
    registering was refused for). A
    Greek capital Iota standing for the I is refused naming the field: no case folding joins it
    to the number, so it registered the cooperative a second time."""
    first = await run(
        engine, KALTENG, CREATE, {"input": cooperative(10, legalEntityNo=OLDER_NUMBER)}
    )
    assert first.errors is None, first.errors
    assert first.data["createCooperative"]["legalEntityNo"] == OLDER_NUMBER
    for spelling in ("518/bh/xiv/1999", "518/Bh/XiV/1999"):
        again = await run(
            engine, KALTENG, CREATE, {"input": cooperative(11, legalEntityNo=spelling)}
        )
        assert again.data == {"createCooperative": None}, spelling
        (error,) = again.errors
        assert error.extensions == {"code": "CONFLICT", "field": "input.legalEntityNo"}
    look_alike = await run(
        engine, KALTENG, CREATE, {"input": cooperative(12, legalEntityNo="518/BH/X\u0399V/1999")}
    )
    assert look_alike.data == {"createCooperative": None}
    (error,) = look_alike.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.legalEntityNo"}
    assert await _stored(engine, "518/BH/X\u0399V/1999") == 0
    for spelling in (OLDER_NUMBER, "518/bh/xiv/1999", "518/Bh/XiV/1999"):
        for lookup in (LOOKUP, LOOKUP_BY_ROWS):
            found = await run(engine, KALTENG, lookup, {"number": spelling})
            assert found.errors is None, found.errors
            assert found.data["cooperative"] == {
                "id": first.data["createCooperative"]["id"],
                "legalEntityNo": OLDER_NUMBER,
            }, (spelling, lookup)


STORED_BEFORE = "518/BH/XIV/1999 \u2013 Kab. Kapuas"
"""An older number with an en dash, as one was stored before numbers were held to ASCII."""


async def test_a_number_stored_before_the_ascii_rule_stays_writable_and_found(
    engine: AsyncEngine, reference_url: str
) -> None:
    """Only a number a client sends to be stored is held to ASCII: a cooperative stored with an
    en dash in its number was refused on every update (on `changes.legalEntityNo`, a field the
    update cannot even send) and every lookup by its number. It is updated keeping its number,
    found by it, and a client still cannot register another such number."""
    created = await run(engine, KALTENG, CREATE, {"input": cooperative(14)})
    record = created.data["createCooperative"]
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            await connection.execute(
                text("UPDATE cooperatives SET legal_entity_no = :n WHERE id = :id"),
                {"n": STORED_BEFORE, "id": int(record["id"])},
            )
    finally:
        await owner.dispose()
    updated = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": record["id"], "version": 1, "changes": {"membersFemale": 41}},
    )
    assert updated.errors is None, updated.errors
    assert updated.data["updateCooperative"]["version"] == 2
    found = await run(engine, KALTENG, LOOKUP, {"number": f"  {STORED_BEFORE} "})
    assert found.errors is None, found.errors
    assert found.data["cooperative"] == {"id": record["id"], "legalEntityNo": STORED_BEFORE}
    another = STORED_BEFORE.replace("1999", "2000")
    refused = await run(engine, KALTENG, CREATE, {"input": cooperative(15, legalEntityNo=another)})
    (error,) = refused.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.legalEntityNo"}


CREATE_MSME = """
mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id version } }
"""
UPDATE_MSME = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { version regency { code } }
}
"""
LEAVE_PALANGKA_RAYA = {"region": "62.01", "district": None}


def refused_on(result: Any, field: str) -> str:
    """The message of the one BAD_USER_INPUT `result` was refused with, on `field`."""
    assert result.data is not None, result
    assert list(result.data.values()) == [None], result
    (error,) = result.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": field}, error
    return str(error.message)


async def test_a_business_taking_part_in_a_programme_of_its_city_cannot_be_moved_out(
    engine: AsyncEngine, city_programme: str
) -> None:
    """Kalteng moves a Palangka Raya business taking part in the city's programme to another
    regency: refused on `changes.region`, naming that programme (not the province's, which it
    still lies in), and nothing written, for the city could no longer see or end that
    participation. Once the city withdraws it the move is taken, and the participation cannot be
    made ACTIVE again in a programme of a city the business no longer lies in."""
    business = {
        "nib": "7744000000001",
        "name": "Keripik Kelakai Pindah",
        "kbliCode": "10794",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
    }
    created = await run(engine, KALTENG, CREATE_MSME, {"input": business})
    assert created.errors is None, created.errors
    msme_id = created.data["createMsme"]["id"]
    joined = {}
    for programme in (city_programme, "PR-SERBU-NIB"):
        given = {"programmeId": programme, "msmeId": msme_id, "role": "recipient"}
        added = await run(engine, KALTENG, ADD, {"input": given})
        assert added.errors is None, added.errors
        joined[programme] = added.data["addParticipation"]["id"]

    move = {"id": msme_id, "version": 1, "changes": LEAVE_PALANGKA_RAYA}
    message = refused_on(await run(engine, KALTENG, UPDATE_MSME, move), "changes.region")
    assert city_programme in message
    assert "PR-SERBU-NIB" not in message
    withdraw = {"id": joined[city_programme], "version": 1, "changes": {"status": "WITHDRAWN"}}
    withdrawn = await run(engine, PALANGKA_RAYA, CHANGE, withdraw)
    assert withdrawn.errors is None, withdrawn.errors

    moved = await run(engine, KALTENG, UPDATE_MSME, move)
    assert moved.errors is None, moved.errors
    assert moved.data["updateMsme"] == {"version": 2, "regency": {"code": "62.01"}}
    again = {"id": joined[city_programme], "version": 2, "changes": {"status": "ACTIVE"}}
    refused_on(await run(engine, KALTENG, CHANGE, again), "changes.status")


async def test_a_cooperative_is_not_moved_out_of_a_programme_it_is_proposed_for(
    engine: AsyncEngine, city_programme: str
) -> None:
    """Proposed is taking part as much as active: the move is refused until the participation
    is completed (or withdrawn)."""
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(30, region="62.71")})).data[
        "createCooperative"
    ]
    given = {
        "programmeId": city_programme,
        "cooperativeId": record["id"],
        "role": "participant",
        "status": "PROPOSED",
    }
    added = (await run(engine, KALTENG, ADD, {"input": given})).data["addParticipation"]
    move = {"id": record["id"], "version": 1, "changes": {"region": "62.01"}}
    assert city_programme in refused_on(await run(engine, KALTENG, UPDATE, move), "changes.region")
    done = {"id": added["id"], "version": 1, "changes": {"status": "COMPLETED"}}
    assert (await run(engine, PALANGKA_RAYA, CHANGE, done)).errors is None
    moved = await run(engine, KALTENG, UPDATE, move)
    assert moved.errors is None, moved.errors


BUNGA = principal(OrgKind.REGENCY, "62.01")
"""Kabupaten Kotawaringin Barat, where the businesses below move to from Palangka Raya."""
SUBJECTS = """query($id: ID!) { programme(id: $id) { participants(first: 100) {
  id detail msme { nib owner { nik } } cooperative { legalEntityNo } } } }"""
MSME_PARTICIPATIONS = """query($nib: String!) { msme(nib: $nib) { participations { id } } }"""


async def _ended_in_the_city_then_moved(
    engine: AsyncEngine, programme: str, subject: tuple[str, str], move: str, changes: Any
) -> str:
    """`subject` (its input field, its id) completes a grant of `programme` in Palangka Raya
    and is then moved by Kalteng (`move`, the mutation) to Kotawaringin Barat: ended, the
    participation does not hold it back. The participation's id."""
    field, subject_id = subject
    given = {
        "programmeId": programme,
        field: subject_id,
        "role": "recipient",
        "status": "COMPLETED",
        "detail": "Rp5.000.000 grant 2025",
    }
    added = await run(engine, PALANGKA_RAYA, ADD, {"input": given})
    assert added.errors is None, added.errors
    moved = await run(engine, KALTENG, move, {"id": subject_id, "version": 1, "changes": changes})
    assert moved.errors is None, moved.errors
    return str(added.data["addParticipation"]["id"])


async def test_an_ended_participation_stays_with_the_programme_s_region_after_a_move(
    engine: AsyncEngine, city_programme: str
) -> None:
    """Once its business has left the programme's region (possible only after the participation
    ended), the participation is the programme's region's record, not the new region's: the new
    region neither sees it (among the programme's participants or the business's) nor rewrites
    it, and the city still reads and corrects it. The city is not shown the business itself,
    which lies outside its jurisdiction now, nor its owner."""
    nib = "7712000000001"
    msme_id = await _created_msme(engine, business(nib, district="62.71.03"))
    cooperative_id = (
        await run(engine, KALTENG, CREATE, {"input": cooperative(7712, region="62.71")})
    ).data["createCooperative"]["id"]
    ended = [
        await _ended_in_the_city_then_moved(
            engine, city_programme, ("msmeId", msme_id), UPDATE_MSME, LEAVE_PALANGKA_RAYA
        ),
        await _ended_in_the_city_then_moved(
            engine, city_programme, ("cooperativeId", cooperative_id), UPDATE, {"region": "62.01"}
        ),
    ]

    for participation in ended:
        withdraw = {"id": participation, "version": 1, "changes": {"status": "WITHDRAWN"}}
        refused = await run(engine, BUNGA, CHANGE, withdraw)
        assert refused.errors[0].extensions == {"code": "NOT_FOUND", "field": "id"}
    elsewhere = await run(engine, BUNGA, SUBJECTS, {"id": city_programme})
    assert elsewhere.errors is None, elsewhere.errors
    listed = {row["id"] for row in elsewhere.data["programme"]["participants"]}
    assert listed.isdisjoint(ended)
    mine = await run(engine, BUNGA, MSME_PARTICIPATIONS, {"nib": nib})
    assert mine.errors is None, mine.errors
    assert mine.data["msme"]["participations"] == []

    city = await run(engine, PALANGKA_RAYA, SUBJECTS, {"id": city_programme})
    assert city.errors is None, city.errors
    shown = {row["id"]: row for row in city.data["programme"]["participants"]}
    for participation in ended:
        assert shown[participation] == {
            "id": participation,
            "detail": "Rp5.000.000 grant 2025",
            "msme": None,
            "cooperative": None,
        }
        corrected = {"id": participation, "version": 1, "changes": {"detail": "Rp5.500.000"}}
        answer = await run(engine, PALANGKA_RAYA, CHANGE, corrected)
        assert answer.errors is None, answer.errors
        assert answer.data["updateParticipation"]["version"] == 2


HISTORY = """query($id: ID!) { programme(id: $id) { participants(first: 100) {
  id msme { id } cooperative { id } changes { fields { field before after } } } } }"""


async def test_a_left_behind_participation_s_history_names_no_business_outside(
    engine: AsyncEngine, city_programme: str
) -> None:
    """The programme's region reads a participation whose business has left it without the
    business (`msme` and `cooperative` null): its history does not name the business either,
    the create entry's `msmeId` or `cooperativeId` null as the change feed's are."""
    msme_id = await _created_msme(engine, business("7720000000001", district="62.71.03"))
    cooperative_id = (
        await run(engine, KALTENG, CREATE, {"input": cooperative(7720, region="62.71")})
    ).data["createCooperative"]["id"]
    ended = {
        await _ended_in_the_city_then_moved(
            engine, city_programme, ("msmeId", msme_id), UPDATE_MSME, LEAVE_PALANGKA_RAYA
        ),
        await _ended_in_the_city_then_moved(
            engine, city_programme, ("cooperativeId", cooperative_id), UPDATE, {"region": "62.01"}
        ),
    }
    city = await run(engine, PALANGKA_RAYA, HISTORY, {"id": city_programme})
    assert city.errors is None, city.errors
    shown = [row for row in city.data["programme"]["participants"] if row["id"] in ended]
    assert len(shown) == 2
    for row in shown:
        (created,) = row["changes"]
        named = {
            change["field"]: (change["before"], change["after"])
            for change in created["fields"]
            if change["field"] in ("msmeId", "cooperativeId")
        }
        assert set(named.values()) <= {(None, None)}, row

    province = await run(engine, KALTENG, HISTORY, {"id": city_programme})
    seen = {row["id"]: row for row in province.data["programme"]["participants"]}
    fields = [change for row in ended for change in seen[row]["changes"][0]["fields"]]
    assert {"after": msme_id, "before": None, "field": "msmeId"} in fields
    assert {"after": cooperative_id, "before": None, "field": "cooperativeId"} in fields


async def test_a_left_behind_participation_says_nothing_of_its_business_s_state(
    engine: AsyncEngine, reference_url: str, city_programme: str
) -> None:
    """Taking up again a participation whose cooperative has left the programme's region is
    refused for that alone: whether the cooperative, outside the programme's region's
    jurisdiction, has been dissolved since is not the region's to learn from the answer."""
    cooperative_id = (
        await run(engine, KALTENG, CREATE, {"input": cooperative(7721, region="62.71")})
    ).data["createCooperative"]["id"]
    participation = await _ended_in_the_city_then_moved(
        engine, city_programme, ("cooperativeId", cooperative_id), UPDATE, {"region": "62.01"}
    )
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            dissolve = "UPDATE cooperatives SET status = 'dissolved' WHERE id = :id"
            await connection.execute(text(dissolve), {"id": int(cooperative_id)})
    finally:
        await owner.dispose()
    again = {"id": participation, "version": 1, "changes": {"status": "ACTIVE"}}
    message = refused_on(await run(engine, PALANGKA_RAYA, CHANGE, again), "changes.status")
    assert "no longer lies in the region" in message
    assert "dissolved" not in message


LISTED_IN = """query($programme: ID!, $region: String) {
  msmes(filter: {programme: $programme, region: $region}) { totalCount }
  cooperatives(filter: {programme: $programme, region: $region}) { totalCount }
}"""
COUNTED_IN = """query($programme: ID!, $region: String) {
  msmeFigures(filter: {programme: $programme, region: $region}, groupBy: [REGENCY]) { count }
  cooperativeFigures(filter: {programme: $programme, region: $region}, groupBy: [REGENCY]) {
    count }
}"""


async def test_the_programme_filter_tells_no_region_of_a_participation_left_behind(
    engine: AsyncEngine, reference_url: str
) -> None:
    """The region a business moved to does not see the participation it left behind in
    another region's programme (`programmes.visible`), so the `programme` filter does not list
    or count the business there either: it would say the business completed that programme.
    Figures, read alike for every reader, count no left-behind participation, exactly or
    from a release; the province, which sees the participation, still lists the business."""
    programme = "PR-UJI-TINGGAL-6271"
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            insert = (
                "INSERT INTO programmes (id, name, kind, jurisdiction, subjects)"
                " VALUES (:id, 'Pelatihan Kota Palangka Raya', 'training', '62.71', 'both')"
            )
            await connection.execute(text(insert), {"id": programme})
    finally:
        await owner.dispose()
    msme_id = await _created_msme(engine, business("7724000000001", district="62.71.03"))
    cooperative_id = (
        await run(engine, KALTENG, CREATE, {"input": cooperative(7724, region="62.71")})
    ).data["createCooperative"]["id"]
    await _ended_in_the_city_then_moved(
        engine, programme, ("msmeId", msme_id), UPDATE_MSME, LEAVE_PALANGKA_RAYA
    )
    await _ended_in_the_city_then_moved(
        engine, programme, ("cooperativeId", cooperative_id), UPDATE, {"region": "62.01"}
    )
    assert await releases.release_now(reference_url) is not None

    for who, region in ((BUNGA, None), (BUNGA, "62.01"), (KALTENG, "62.01")):
        given = {"programme": programme, "region": region}
        listed = await run(engine, who, LISTED_IN, given)
        assert listed.errors is None, listed.errors
        totals = [listed.data[root]["totalCount"] for root in ("msmes", "cooperatives")]
        assert totals == ([1, 1] if who is KALTENG else [0, 0]), (who, region)
    for who, region in ((BUNGA, None), (BUNGA, "62.01"), (KALTENG, "62.01"), (MINISTRY, None)):
        given = {"programme": programme, "region": region}
        counted = await run(engine, who, COUNTED_IN, given)
        assert counted.errors is None, counted.errors
        for cells in counted.data.values():
            assert [cell["count"] for cell in cells] in ([], [0]), (who, region, cells)


async def test_a_role_in_another_case_is_the_same_role(engine: AsyncEngine) -> None:
    """ "Supplier" after "supplier" would be a second participation of one business in one role:
    a CONFLICT on `input.role`, as the same spelling is; the role keeps the spelling it was
    given first, and another role is still taken."""
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(31)})).data[
        "createCooperative"
    ]
    given = {"programmeId": "PR-MMM", "cooperativeId": record["id"], "role": "supplier"}
    assert (await run(engine, KALTENG, ADD, {"input": given})).errors is None
    for spelling in ("Supplier", "SUPPLIER"):
        again = await run(engine, KALTENG, ADD, {"input": {**given, "role": spelling}})
        assert again.data == {"addParticipation": None}, spelling
        (error,) = again.errors
        assert error.extensions == {"code": "CONFLICT", "field": "input.role"}, spelling
    other = await run(engine, KALTENG, ADD, {"input": {**given, "role": "Producer"}})
    assert other.errors is None, other.errors
    assert other.data["addParticipation"]["role"] == "Producer"


PROGRAMME = "query($id: ID!) { programme(id: $id) { id } }"


async def test_a_nul_in_a_programme_id_is_bad_input_naming_it(engine: AsyncEngine) -> None:
    """A NUL reached asyncpg and failed the statement as INTERNAL wherever the request guard
    (which refuses one in any HTTP or WebSocket request) did not stand in front of the schema;
    it is refused as every string no text column can store is, naming the argument."""
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(13)})).data[
        "createCooperative"
    ]
    given = {"programmeId": "PR-MMM\x00", "cooperativeId": record["id"], "role": "producer"}
    added = await run(engine, KALTENG, ADD, {"input": given})
    assert added.data == {"addParticipation": None}
    (error,) = added.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.programmeId"}
    assert error.message.startswith("input.programmeId: holds a NUL character")
    for programme_id in ("PR-MMM\x00", "PR-\ud800"):
        found = await run(engine, KALTENG, PROGRAMME, {"id": programme_id})
        assert found.data == {"programme": None}
        (error,) = found.errors
        assert error.extensions == {"code": "BAD_USER_INPUT", "field": "id"}


def business(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Usaha Uji Program",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
        "annualTurnover": "240000000",
        "turnoverYear": 2025,
        **overrides,
    }


async def _created_msme(engine: AsyncEngine, given: dict[str, Any]) -> str:
    created = await run(engine, KALTENG, CREATE_MSME, {"input": given})
    assert created.errors is None, created.errors
    return str(created.data["createMsme"]["id"])


async def test_a_large_enterprise_joins_no_programme(engine: AsyncEngine) -> None:
    """Rp 60 miliar of annual sales is a large enterprise (PP 7/2021 Pasal 35), outside the MSME
    programmes: MBG takes it in as no supplier, naming the business. A supplier that grew large
    after it was proposed is not made active either."""
    large = await _created_msme(engine, business("7749000000001", annualTurnover="60000000000"))
    given = {"programmeId": "PR-MBG", "msmeId": large, "role": "supplier"}
    assert "large enterprise" in refused_on(
        await run(engine, KALTENG, ADD, {"input": given}), "input.msmeId"
    )

    grown = await _created_msme(engine, business("7749000000002"))
    proposed = {"programmeId": "PR-MBG", "msmeId": grown, "role": "supplier", "status": "PROPOSED"}
    added = await run(engine, KALTENG, ADD, {"input": proposed})
    assert added.errors is None, added.errors
    figures = {"annualTurnover": "60000000000", "turnoverYear": 2025}
    updated = await run(
        engine, KALTENG, UPDATE_MSME, {"id": grown, "version": 1, "changes": figures}
    )
    assert updated.errors is None, updated.errors
    made_active = {
        "id": added.data["addParticipation"]["id"],
        "version": 1,
        "changes": {"status": "ACTIVE"},
    }
    refused_on(await run(engine, KALTENG, CHANGE, made_active), "changes.status")
    ended = {**made_active, "changes": {"status": "WITHDRAWN"}}
    assert (await run(engine, KALTENG, CHANGE, ended)).errors is None


async def test_a_programme_takes_in_only_the_subjects_it_is_for(engine: AsyncEngine) -> None:
    """Minyak Makan Merah is produced by palm-farmer cooperatives only, Bantuan Produktif UMKM
    is a grant to MSMEs: neither takes the other kind of business. MBG takes both."""
    msme_id = await _created_msme(engine, business("7749000000003"))
    record = (await run(engine, KALTENG, CREATE, {"input": cooperative(40)})).data[
        "createCooperative"
    ]
    for given in (
        {"programmeId": "PR-MMM", "msmeId": msme_id, "role": "producer"},
        {"programmeId": "PR-BANPROD-22", "cooperativeId": record["id"], "role": "recipient"},
    ):
        message = refused_on(await run(engine, KALTENG, ADD, {"input": given}), "input.programmeId")
        assert "only" in message
    for given in (
        {"programmeId": "PR-MBG", "msmeId": msme_id, "role": "supplier"},
        {"programmeId": "PR-MBG", "cooperativeId": record["id"], "role": "supplier"},
    ):
        added = await run(engine, KALTENG, ADD, {"input": given})
        assert added.errors is None, added.errors


async def test_a_participation_starts_no_earlier_than_its_programme(engine: AsyncEngine) -> None:
    """MBG started on 6 January 2025: a supplier dated 2001 would be taking part in a programme
    that did not exist, on create or on update."""
    msme_id = await _created_msme(engine, business("7749000000004"))
    given = {"programmeId": "PR-MBG", "msmeId": msme_id, "role": "supplier"}
    early = {**given, "startedOn": "2001-03-01"}
    assert "2025-01-06" in refused_on(
        await run(engine, KALTENG, ADD, {"input": early}), "input.startedOn"
    )
    added = await run(engine, KALTENG, ADD, {"input": {**given, "startedOn": "2025-01-06"}})
    assert added.errors is None, added.errors
    moved = {"id": added.data["addParticipation"]["id"], "version": 1}
    before = {**moved, "changes": {"startedOn": "2025-01-05"}}
    refused_on(await run(engine, KALTENG, CHANGE, before), "changes.startedOn")
    later = {**moved, "changes": {"startedOn": "2025-02-01"}}
    assert (await run(engine, KALTENG, CHANGE, later)).errors is None


async def test_only_the_programme_s_owner_marks_a_participation_verified(
    engine: AsyncEngine,
) -> None:
    """VERIFIED is "checked by the programme's owner". Kalteng's dinas enrols its business in
    PT Jamkrida Kalteng's guarantee programme and in the national MBG (Badan Gizi Nasional's)
    but cannot vouch for it there, on create or update: FORBIDDEN naming the status. In its own
    Serbu NIB programme it may; the guarantor, given records:write, verifies in its own."""
    msme_id = await _created_msme(engine, business("7749000000005"))
    for programme in ("PR-JAMKRIDA-62", "PR-MBG"):
        given = {"programmeId": programme, "msmeId": msme_id, "role": "debtor"}
        verified = {**given, "status": "VERIFIED"}
        refused = await run(engine, KALTENG, ADD, {"input": verified})
        assert refused.data == {"addParticipation": None}
        (error,) = refused.errors
        assert error.extensions == {"code": "FORBIDDEN", "field": "input.status"}, programme
        added = await run(engine, KALTENG, ADD, {"input": {**given, "status": "PROPOSED"}})
        assert added.errors is None, added.errors
        change = {"id": added.data["addParticipation"]["id"], "version": 1}
        made = await run(engine, KALTENG, CHANGE, {**change, "changes": {"status": "VERIFIED"}})
        (error,) = made.errors
        assert error.extensions == {"code": "FORBIDDEN", "field": "changes.status"}, programme
        if programme == "PR-JAMKRIDA-62":
            guarantor = principal(
                OrgKind.BUMD, "62", extra=frozenset({Scope.RECORDS_READ, Scope.RECORDS_WRITE})
            )
            by_owner = await run(
                engine, guarantor, CHANGE, {**change, "changes": {"status": "VERIFIED"}}
            )
            assert by_owner.errors is None, by_owner.errors
    own = {"programmeId": "PR-SERBU-NIB", "msmeId": msme_id, "role": "recipient"}
    added = await run(engine, KALTENG, ADD, {"input": {**own, "status": "VERIFIED"}})
    assert added.errors is None, added.errors
    assert added.data["addParticipation"]["status"] == "VERIFIED"


async def test_only_the_programme_s_owner_takes_back_its_verified_mark_or_rewrites_it(
    engine: AsyncEngine,
) -> None:
    """Kalteng's dinas verifies a Palangka Raya supplier in its own Serbu NIB programme. The
    city's dinas writes the business's records but does not own the programme: it may not put
    the participation back to PROPOSED, nor rewrite the detail the mark vouches for while it
    stands (FORBIDDEN naming the field, nothing written); it may start it (ACTIVE, with a
    detail of its own) or end it, but not then put it back to PROPOSED (the mark taken back in
    two steps). The owner may take its mark back."""
    msme_id = await _created_msme(engine, business("7749000000006"))
    given = {"programmeId": "PR-SERBU-NIB", "msmeId": msme_id, "role": "recipient"}
    verified = {**given, "status": "VERIFIED", "detail": "NIB, checked at the office"}
    added = await run(engine, KALTENG, ADD, {"input": verified})
    assert added.errors is None, added.errors
    change = {"id": added.data["addParticipation"]["id"], "version": 1}
    for changes, field in (
        ({"status": "PROPOSED", "detail": "not checked"}, "changes.status"),
        ({"status": "PROPOSED"}, "changes.status"),
        ({"detail": "NIB and halal certificate"}, "changes.detail"),
        ({"status": "VERIFIED", "detail": None}, "changes.detail"),
    ):
        refused = await run(engine, PALANGKA_RAYA, CHANGE, {**change, "changes": changes})
        assert refused.data == {"updateParticipation": None}, changes
        (error,) = refused.errors
        assert error.extensions == {"code": "FORBIDDEN", "field": field}, changes
    unchanged = {"detail": "NIB, checked at the office", "startedOn": "2025-03-01"}
    kept = await run(engine, PALANGKA_RAYA, CHANGE, {**change, "changes": unchanged})
    assert kept.errors is None, kept.errors
    assert kept.data["updateParticipation"]["status"] == "VERIFIED"
    started = {"status": "ACTIVE", "detail": "NIB issued 2025-03-01"}
    made = await run(engine, PALANGKA_RAYA, CHANGE, {**change, "version": 2, "changes": started})
    assert made.errors is None, made.errors
    assert made.data["updateParticipation"]["status"] == "ACTIVE"
    again = await run(engine, KALTENG, ADD, {"input": {**verified, "role": "applicant"}})
    assert again.errors is None, again.errors
    other = {"id": again.data["addParticipation"]["id"], "version": 1}
    ended = await run(engine, PALANGKA_RAYA, CHANGE, {**other, "changes": {"status": "WITHDRAWN"}})
    assert ended.errors is None, ended.errors
    # Nor in two steps: once ACTIVE or ended, a participation the owner verified goes back to
    # PROPOSED (its detail rewritten or not) by the owner alone.
    for changes, at in (
        ({"status": "PROPOSED", "detail": "not checked"}, {**other, "version": 2}),
        ({"status": "PROPOSED"}, {**change, "version": 3}),
    ):
        refused = await run(engine, PALANGKA_RAYA, CHANGE, {**at, "changes": changes})
        assert refused.data == {"updateParticipation": None}, changes
        (error,) = refused.errors
        assert error.extensions == {"code": "FORBIDDEN", "field": "changes.status"}, changes
    third = await run(engine, KALTENG, ADD, {"input": {**verified, "role": "trainee"}})
    assert third.errors is None, third.errors
    taken_back = {"status": "PROPOSED", "detail": "to be checked again"}
    by_owner = await run(
        engine,
        KALTENG,
        CHANGE,
        {"id": third.data["addParticipation"]["id"], "version": 1, "changes": taken_back},
    )
    assert by_owner.errors is None, by_owner.errors
    assert by_owner.data["updateParticipation"]["status"] == "PROPOSED"


async def test_a_mark_recorded_in_the_free_text_of_before_0026_counts_as_verified(
    engine: AsyncEngine, reference_url: str
) -> None:
    """Before migration 0026 a status was free text: its history may say "Terverifikasi" or
    " Verified" where today's says "verified", and 0026 normalised the stored status, not the
    history. Such a mark, moved on from, is still the owner's to take back to PROPOSED."""
    msme_id = await _created_msme(engine, business("7749000000007"))
    given = {"programmeId": "PR-SERBU-NIB", "msmeId": msme_id, "role": "recipient"}
    added = await run(engine, PALANGKA_RAYA, ADD, {"input": {**given, "status": "ACTIVE"}})
    assert added.errors is None, added.errors
    participation = int(added.data["addParticipation"]["id"])
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            for before, after in (("diusulkan", " Terverifikasi"), ("Terverifikasi", "aktif")):
                await connection.execute(
                    text(
                        "INSERT INTO record_changes (client_id, organisation, record_kind,"
                        " record_id, operation, version, changes) VALUES ('legacy', 'legacy',"
                        " 'participation', :id, 'update', 1, CAST(:changes AS jsonb))"
                    ),
                    {
                        "id": participation,
                        "changes": f'{{"status": {{"before": "{before}", "after": "{after}"}}}}',
                    },
                )
    finally:
        await owner.dispose()
    change = {"id": str(participation), "version": 1, "changes": {"status": "PROPOSED"}}
    refused = await run(engine, PALANGKA_RAYA, CHANGE, change)
    assert refused.data == {"updateParticipation": None}
    (error,) = refused.errors
    assert error.extensions == {"code": "FORBIDDEN", "field": "changes.status"}


COUNTED = """query($programme: ID!) {
  msmes(filter: {programme: $programme}) { totalCount nodes { nib } }
  cooperatives(filter: {programme: $programme}) { totalCount nodes { legalEntityNo } }
}"""


async def test_the_programme_filter_counts_only_who_takes_or_took_part(
    engine: AsyncEngine, reference_url: str
) -> None:
    """A business proposed for a programme, verified and not yet started, or withdrawn, takes
    no part in it: listed and counted under the `programme` filter, they made its reach the
    number of businesses put forward. Only ACTIVE and COMPLETED are counted (the figures'
    filter is the same condition, `db.queries.msmes.conditions`)."""
    owner = create_engine(reference_url, statement_timeout_ms=10_000)
    try:
        async with owner.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO programmes (id, name, kind, owner_agency_id, jurisdiction)"
                    " VALUES ('PR-UJI-SARING-62', 'Hibah uji', 'grant', 'AG-DISKOP-62', '62')"
                )
            )
    finally:
        await owner.dispose()
    statuses = ["PROPOSED", "VERIFIED", "ACTIVE", "COMPLETED", "WITHDRAWN"]
    took_part: dict[str, set[str]] = {"msmes": set(), "cooperatives": set()}
    for number, status in enumerate(statuses):
        nib = f"774910000000{number}"
        msme_id = await _created_msme(engine, business(nib))
        record = (await run(engine, KALTENG, CREATE, {"input": cooperative(50 + number)})).data[
            "createCooperative"
        ]
        for subject in ({"msmeId": msme_id}, {"cooperativeId": record["id"]}):
            given = {"programmeId": "PR-UJI-SARING-62", "role": "recipient", **subject}
            added = await run(engine, KALTENG, ADD, {"input": {**given, "status": status}})
            assert added.errors is None, added.errors
        if status in ("ACTIVE", "COMPLETED"):
            took_part["msmes"].add(nib)
            took_part["cooperatives"].add(record["legalEntityNo"])
    answer = await run(engine, KALTENG, COUNTED, {"programme": "PR-UJI-SARING-62"})
    assert answer.errors is None, answer.errors
    data = answer.data
    assert {node["nib"] for node in data["msmes"]["nodes"]} == took_part["msmes"]
    assert {node["legalEntityNo"] for node in data["cooperatives"]["nodes"]} == took_part[
        "cooperatives"
    ]
    assert data["msmes"]["totalCount"] == data["cooperatives"]["totalCount"] == 2


STATUS = """query($number: String!) {
  cooperative(legalEntityNo: $number) { status lastRatBookYear } }"""
DESCRIBED = '{ __type(name: "CooperativeStatus") { description } }'


async def test_a_cooperative_s_status_is_described_as_stored_not_derived(
    engine: AsyncEngine,
) -> None:
    """A cooperative whose last RAT reviewed 2021 has held none for three book years, yet its
    status is the ACTIVE it was created with: the register keeps the status its maintainers
    record and derives nothing from the RAT (the counts and indicators read it as stored). The
    schema said a cooperative "is inactive after three book years without an RAT", which a
    client would read as the status telling it so."""
    given = cooperative(60, establishedOn="2019-02-01", lastRatDate="2022-04-10")
    created = await run(engine, KALTENG, CREATE, {"input": {**given, "lastRatBookYear": 2021}})
    assert created.errors is None, created.errors
    number = created.data["createCooperative"]["legalEntityNo"]
    answer = await run(engine, KALTENG, STATUS, {"number": number})
    assert answer.errors is None, answer.errors
    assert answer.data["cooperative"] == {"status": "ACTIVE", "lastRatBookYear": 2021}
    described = await run(engine, KALTENG, DESCRIBED)
    assert described.errors is None, described.errors
    description = described.data["__type"]["description"]
    assert "is inactive after three book years" not in description
    assert "does not derive" in description


PROGRAMME_FILTERS = {
    "msmes": "query($p: ID!) { msmes(filter: {programme: $p}) { totalCount } }",
    "cooperatives": "query($p: ID!) { cooperatives(filter: {programme: $p}) { totalCount } }",
    "msmeFigures": (
        "query($p: ID!) { msmeFigures(groupBy: [PROVINCE], filter: {programme: $p}) { count } }"
    ),
    "cooperativeFigures": (
        "query($p: ID!) { cooperativeFigures(groupBy: [PROVINCE], filter: {programme: $p})"
        " { count } }"
    ),
}


@pytest.mark.parametrize("root", sorted(PROGRAMME_FILTERS))
async def test_a_nul_in_the_programme_filter_is_bad_input_naming_it(
    engine: AsyncEngine, root: str
) -> None:
    """The `programme` filter of the lists and their figures reached asyncpg unchecked, as
    `programme(id:)` did: a NUL or a lone surrogate is refused naming `filter.programme`."""
    for programme_id in ("PR-MMM\x00", "PR-\ud800"):
        found = await run(engine, KALTENG, PROGRAMME_FILTERS[root], {"p": programme_id})
        assert found.data is None or found.data.get(root) is None, found.data
        (error,) = found.errors
        assert error.extensions == {"code": "BAD_USER_INPUT", "field": "filter.programme"}


SURPLUS = """query($number: String!) { cooperative(legalEntityNo: $number) { surplus } }"""


async def test_a_loss_is_recorded_as_a_negative_surplus(engine: AsyncEngine) -> None:
    """SHU may be a loss (UU 25/1992 Pasal 45): a negative surplus is taken, in a variable or a
    literal, and read back as written; the other amounts stay non-negative, and a sign other
    than a leading "-" is no number."""
    given = cooperative(7713, surplus="-5000000", bookYear=2024)
    created = await run(engine, KALTENG, CREATE, {"input": given})
    assert created.errors is None, created.errors
    record = created.data["createCooperative"]
    found = await run(engine, KALTENG, SURPLUS, {"number": given["legalEntityNo"]})
    assert found.data == {"cooperative": {"surplus": "-5000000"}}, found.errors

    literal = f"""mutation {{ updateCooperative(id: "{record["id"]}", version: 1,
      changes: {{surplus: "-7000000"}}) {{ version surplus }} }}"""
    changed = await run(engine, KALTENG, literal)
    assert changed.data == {"updateCooperative": {"version": 2, "surplus": "-7000000"}}

    for field, amount in (("surplus", "--5"), ("surplus", "+5"), ("assets", "-1")):
        refused = await run(engine, KALTENG, CREATE, {"input": {**given, field: amount}})
        assert refused.errors[0].extensions == {"code": "BAD_USER_INPUT", "field": f"input.{field}"}


async def test_figures_are_of_a_book_year_that_has_closed(engine: AsyncEngine) -> None:
    """Business volume, assets and SHU are a book year's accounts, which the RAT approves once
    the year has closed: this year's are not yet figures, as a RAT or a rating of it is not."""
    year = today().year
    refused = await run(engine, KALTENG, CREATE, {"input": cooperative(7714, bookYear=year)})
    message = refused_on(refused, "input.bookYear")
    assert f"must be before {year}" in message
    created = await run(engine, KALTENG, CREATE, {"input": cooperative(7714, bookYear=year - 1)})
    assert created.errors is None, created.errors
    record = created.data["createCooperative"]
    later = {"id": record["id"], "version": 1, "changes": {"bookYear": year}}
    refused_on(await run(engine, KALTENG, UPDATE, later), "changes.bookYear")


async def test_a_secondary_cooperative_has_cooperatives_for_members_not_persons(
    engine: AsyncEngine,
) -> None:
    """A secondary cooperative is formed by at least three cooperatives (UU 25/1992 Pasal 15):
    it counts no person members, and no MSME joins it, whatever else the record says."""
    secondary = {"tier": "secondary", "membersMale": 0, "membersFemale": 0}
    for field in ("membersMale", "membersFemale"):
        given = cooperative(7715, **{**secondary, field: 12})
        refused = await run(engine, KALTENG, CREATE, {"input": given})
        assert "cooperatives" in refused_on(refused, f"input.{field}")
    created = await run(engine, KALTENG, CREATE, {"input": cooperative(7715, **secondary)})
    assert created.errors is None, created.errors
    federation = created.data["createCooperative"]["id"]
    joining = business("7715000000001", region="62.01", cooperativeId=federation)
    refused = await run(engine, KALTENG, CREATE_MSME, {"input": joining})
    assert "secondary" in refused_on(refused, "input.cooperativeId")

    primary = (await run(engine, KALTENG, CREATE, {"input": cooperative(7716)})).data
    promoted = {
        "id": primary["createCooperative"]["id"],
        "version": 1,
        "changes": {"tier": "secondary"},
    }
    (error,) = (await run(engine, KALTENG, UPDATE, promoted)).errors
    assert error.extensions["field"] == "changes.membersMale"
    assert [problem["field"] for problem in error.extensions["problems"]] == [
        "changes.membersMale",
        "changes.membersFemale",
    ]


async def test_a_cooperative_with_msme_members_does_not_become_secondary(
    engine: AsyncEngine,
) -> None:
    """A secondary cooperative's members are cooperatives (UU 25/1992 Pasal 15): as no MSME
    joins one, a primary cooperative an MSME names as its cooperative is not made secondary
    (`BAD_USER_INPUT` on `changes.tier`), until the MSME has left it."""
    primary = (await run(engine, KALTENG, CREATE, {"input": cooperative(7723)})).data
    cooperative_id = primary["createCooperative"]["id"]
    member = await _created_msme(
        engine, business("7723000000001", region="62.01", cooperativeId=cooperative_id)
    )
    secondary = {"tier": "secondary", "membersMale": 0, "membersFemale": 0}
    promoted = {"id": cooperative_id, "version": 1, "changes": secondary}
    message = refused_on(await run(engine, KALTENG, UPDATE, promoted), "changes.tier")
    assert "MSME" in message

    left = {"id": member, "version": 1, "changes": {"cooperativeId": None}}
    assert (await run(engine, KALTENG, UPDATE_MSME, left)).errors is None
    answer = await run(engine, KALTENG, UPDATE, promoted)
    assert answer.errors is None, answer.errors
    assert answer.data["updateCooperative"]["version"] == 2


MEMBER_COUNT = """query($number: String!) {
  cooperative(legalEntityNo: $number) { memberMsmes { totalCount } } }"""


async def test_the_refusal_to_make_a_cooperative_secondary_is_the_same_whoever_sees_members(
    engine: AsyncEngine,
) -> None:
    """Palangka Raya sees none of its cooperative's MSME members (Kalteng put the only one in
    Kotawaringin Barat), yet the tier stays primary: refused on `changes.tier` in the words
    Kalteng, which sees the member, is refused in, which say the rule (any MSME member, in any
    region) rather than claim members Palangka Raya is shown none of."""
    created = await run(engine, KALTENG, CREATE, {"input": cooperative(7725, region="62.71")})
    record = created.data["createCooperative"]
    await _created_msme(
        engine, business("7725000000001", region="62.01", cooperativeId=record["id"])
    )
    counted = await run(engine, PALANGKA_RAYA, MEMBER_COUNT, {"number": record["legalEntityNo"]})
    assert counted.data["cooperative"]["memberMsmes"]["totalCount"] == 0
    secondary = {"tier": "secondary", "membersMale": 0, "membersFemale": 0}
    promoted = {"id": record["id"], "version": 1, "changes": secondary}
    messages = {
        refused_on(await run(engine, who, UPDATE, promoted), "changes.tier")
        for who in (PALANGKA_RAYA, KALTENG)
    }
    (message,) = messages
    assert "any region" in message
    assert "are members of the cooperative" not in message
