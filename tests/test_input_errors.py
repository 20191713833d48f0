"""Input errors as an adversarial client meets them: every one BAD_USER_INPUT (or FORBIDDEN for a
move out of the jurisdiction), naming its field in `extensions.field` and in the message, for
literal arguments as for variables, and never INTERNAL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

KALTENG = principal(OrgKind.PROVINCE, "62")
PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71")
BEYOND_BIGINT = "99999999999999999999"
FULLWIDTH_ONE = "\uff11"


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def msme(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Usaha Uji Masukan",
        "kbliCode": "10794",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "150000000",
        **overrides,
    }


CREATE_MSME = "mutation($i: CreateMsmeInput!) { createMsme(input: $i) { id version } }"
CREATE_MSME_CAPITAL = "mutation($i: CreateMsmeInput!) { createMsme(input: $i) { capital } }"
CREATE_COOPERATIVE_SURPLUS = """mutation($i: CreateCooperativeInput!) {
  createCooperative(input: $i) { surplus } }"""
UPDATE_MSME = """mutation($id: ID!, $c: MsmeChanges!) {
  updateMsme(id: $id, version: 1, changes: $c) { id } }"""
ID_CASES: dict[str, tuple[str, str, dict[str, Any]]] = {
    # name → (document with $id, the field named, other variables)
    "updateMsme": (UPDATE_MSME, "id", {"c": {"name": "x"}}),
    "deactivateMsme": (
        "mutation($id: ID!) { deactivateMsme(id: $id, version: 1) { id } }",
        "id",
        {},
    ),
    "reactivateMsme": (
        "mutation($id: ID!) { reactivateMsme(id: $id, version: 1) { id } }",
        "id",
        {},
    ),
    "reactivateCooperative": (
        "mutation($id: ID!) { reactivateCooperative(id: $id, version: 1) { id } }",
        "id",
        {},
    ),
    "updateCooperative": (
        """mutation($id: ID!) {
          updateCooperative(id: $id, version: 1, changes: {name: "x"}) { id } }""",
        "id",
        {},
    ),
    "updateParticipation": (
        """mutation($id: ID!) {
          updateParticipation(id: $id, version: 1, changes: {status: COMPLETED}) { id } }""",
        "id",
        {},
    ),
    "addParticipation.msmeId": (
        """mutation($id: ID!) { addParticipation(input: {
          programmeId: "PR-MMM", msmeId: $id, role: "supplier"}) { id } }""",
        "input.msmeId",
        {},
    ),
    "createMsme.cooperativeId": (
        """mutation($id: ID!) { createMsme(input: {nib: "7780000000001", name: "Uji",
          kbliCode: "10794", region: "62.71", capital: "1", cooperativeId: $id}) { id } }""",
        "input.cooperativeId",
        {},
    ),
}


@pytest.mark.parametrize("raw", [BEYOND_BIGINT, FULLWIDTH_ONE, "1" + FULLWIDTH_ONE])
@pytest.mark.parametrize("case", list(ID_CASES))
async def test_an_id_that_is_not_ascii_digits_within_a_bigint_names_its_field(
    engine: AsyncEngine, case: str, raw: str
) -> None:
    document, field, variables = ID_CASES[case]
    result = await run(engine, KALTENG, document, {"id": raw, **variables})
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT", error.message
    assert error.extensions["field"] == field
    assert error.message.startswith(f"{field}: ")


async def test_a_fullwidth_digit_does_not_reach_record_one(engine: AsyncEngine) -> None:
    created = await run(engine, KALTENG, CREATE_MSME, {"i": msme("7780000000002")})
    assert created.errors is None, created.errors
    record = created.data["createMsme"]
    spelled = record["id"].translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    result = await run(engine, KALTENG, UPDATE_MSME, {"id": spelled, "c": {"name": "Diubah"}})
    assert result.errors[0].extensions["field"] == "id"
    again = await run(engine, KALTENG, UPDATE_MSME, {"id": record["id"], "c": {"name": "Sama"}})
    assert again.errors is None, again.errors


# (literal argument, variables form) → field. Each kind of value the engine coerces.
COERCIONS: dict[str, tuple[str, str]] = {
    "negative Rupiah": ('capital: "-5"', "input.capital"),
    "Rupiah with letters": ('annualTurnover: "12abc"', "input.annualTurnover"),
    "fullwidth Rupiah": ('capital: "１０"', "input.capital"),
    "Int over 32 bits": ("employees: 99999999999", "input.employees"),
    "Int as a string": ('employees: "3"', "input.employees"),
    "unknown enum value": (
        'owner: {nik: "6271995204880001", fullName: "A", sex: X}',
        "input.owner.sex",
    ),
    "impossible Date": ('establishedOn: "2020-13-01"', "input.establishedOn"),
    "Date in another format": ('establishedOn: "01/03/2021"', "input.establishedOn"),
    "unknown input field": ("bogus: 1", "input.bogus"),
    "owner Date": (
        'owner: {nik: "6271995204880001", fullName: "A", birthDate: "1990-02-30"}',
        "input.owner.birthDate",
    ),
}
BASE = 'nib: "7780000000003", name: "Uji", kbliCode: "10794", region: "62.71", scale: MICRO'


@pytest.mark.parametrize("case", list(COERCIONS))
async def test_a_bad_literal_names_its_field_in_the_message_and_extensions(
    engine: AsyncEngine, case: str
) -> None:
    literal, field = COERCIONS[case]
    document = f"mutation {{ createMsme(input: {{{BASE}, {literal}}}) {{ id }} }}"
    result = await run(engine, KALTENG, document)
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == field
    assert error.message.startswith(f"{field}: ")


VARIABLE_VALUES: dict[str, tuple[dict[str, Any], str]] = {
    "negative Rupiah": ({"capital": "-5"}, "input.capital"),
    "Rupiah as a number": ({"capital": 5.5}, "input.capital"),
    "Int over 32 bits": ({"employees": 99_999_999_999}, "input.employees"),
    "unknown enum value": ({"scale": "HUGE"}, "input.scale"),
    "impossible Date": ({"establishedOn": "2020-02-30"}, "input.establishedOn"),
    "unknown input field": ({"bogus": 1}, "input.bogus"),
    "owner Date": (
        {"owner": {"nik": "6271995204880001", "fullName": "A", "birthDate": "x"}},
        "input.owner.birthDate",
    ),
}


@pytest.mark.parametrize("case", list(VARIABLE_VALUES))
async def test_a_bad_variable_value_names_the_field_it_feeds(
    engine: AsyncEngine, case: str
) -> None:
    values, field = VARIABLE_VALUES[case]
    result = await run(engine, KALTENG, CREATE_MSME, {"i": msme("7780000000004", **values)})
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == field
    assert error.message.startswith(f"{field}: ")


async def test_a_rupiah_of_thousands_of_digits_is_refused_in_the_projects_words(
    engine: AsyncEngine,
) -> None:
    """Past 4,300 digits Python's int() refuses a number with its own message (naming
    sys.set_int_max_str_digits), which reached the client as the reason."""
    amount = "9" * 5_000
    literal = f'mutation {{ createMsme(input: {{{BASE}, capital: "{amount}"}}) {{ id }} }}'
    for result in (
        await run(engine, KALTENG, literal),
        await run(engine, KALTENG, CREATE_MSME, {"i": msme("7780000000006", capital=amount)}),
    ):
        (error,) = result.errors
        assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.capital"}
        assert error.message.startswith("input.capital: ")
        assert "Rupiah must be at most 1,000,000,000,000,000 rupiah" in error.message
        assert "4300" not in error.message


async def test_a_rupiah_of_the_largest_amounts_length_is_held_to_the_largest_amount(
    engine: AsyncEngine,
) -> None:
    """Compared by its digits alone, "9999999999999999" (16, as many as Rp10^15) was taken:
    almost ten times the largest amount, stored and computed on."""
    for amount in ("1000000000000001", "9999999999999999", "0009999999999999999"):
        literal = f'mutation {{ createMsme(input: {{{BASE}, capital: "{amount}"}}) {{ id }} }}'
        for result in (
            await run(engine, KALTENG, literal),
            await run(engine, KALTENG, CREATE_MSME, {"i": msme("7794700000001", capital=amount)}),
        ):
            (error,) = result.errors
            assert error.extensions == {"code": "BAD_USER_INPUT", "field": "input.capital"}
            assert "Rupiah must be at most 1,000,000,000,000,000 rupiah" in error.message, amount
    largest = {"i": msme("7794700000001", capital="1000000000000000")}
    created = await run(engine, KALTENG, CREATE_MSME, largest)
    assert created.errors is None, created.errors


async def test_an_amount_padded_with_thousands_of_zeros_is_its_amount(
    engine: AsyncEngine,
) -> None:
    """Leading zeros are no digits of an amount: "0" * 5000 + "1" is Rp1 ("-" before it a loss
    of Rp1), not a number Python's int() refuses past 4,300 digits with its own message, which
    reached the client as the reason."""
    zeros = "0" * 5_000
    given = msme("7722000000001", capital=f"{zeros}150000000")
    created = await run(engine, KALTENG, CREATE_MSME_CAPITAL, {"i": given})
    assert created.errors is None, created.errors
    assert created.data["createMsme"]["capital"] == "150000000"
    cooperative = {
        "legalEntityNo": "AHU-7722001.AH.01.26.TAHUN 2021",
        "name": "Koperasi Uji Nol",
        "type": "PRODUSEN",
        "region": "62.71",
        "surplus": f"-{zeros}1",
        "bookYear": 2024,
    }
    founded = await run(engine, KALTENG, CREATE_COOPERATIVE_SURPLUS, {"i": cooperative})
    assert founded.errors is None, founded.errors
    assert founded.data["createCooperative"]["surplus"] == "-1"


async def test_arguments_of_queries_name_their_field_too(engine: AsyncEngine) -> None:
    literal = await run(engine, KALTENG, "{ msmes(first: 99999999999) { totalCount } }")
    assert literal.errors[0].extensions["field"] == "first"
    document = "query($f: MsmeFilter) { msmes(filter: $f) { totalCount } }"
    variable = await run(engine, KALTENG, document, {"f": {"scale": "GIANT"}})
    assert variable.errors[0].extensions["field"] == "filter.scale"


LONG_INTEGER = "9" * 5_000
LONG_INTEGER_LITERALS: dict[str, tuple[str, str]] = {
    # a document with an integer literal past the digits int() converts → the field named
    "msmes first": (f"{{ msmes(first: {LONG_INTEGER}) {{ totalCount }} }}", "first"),
    "a negative first": (f"{{ msmes(first: -{LONG_INTEGER}) {{ totalCount }} }}", "first"),
    "changes first": (
        f'{{ msme(nib: "9990000000001") {{ changes(first: {LONG_INTEGER}) {{ at }} }} }}',
        "first",
    ),
    "year": (
        f"{{ graduations(groupBy: [PROVINCE], year: {LONG_INTEGER}) {{ count }} }}",
        "year",
    ),
    "an input field": (
        f"mutation {{ createMsme(input: {{{BASE}, employees: {LONG_INTEGER}}}) {{ id }} }}",
        "input.employees",
    ),
    "a variable's default": (
        f"query($f: Int = {LONG_INTEGER}) {{ msmes(first: $f) {{ totalCount }} }}",
        "query",
    ),
}


@pytest.mark.parametrize("case", list(LONG_INTEGER_LITERALS))
async def test_an_integer_literal_of_thousands_of_digits_is_refused_in_the_projects_words(
    engine: AsyncEngine, case: str
) -> None:
    """Past 4,300 digits Python's int() refuses a literal with its own message (naming
    sys.set_int_max_str_digits), which reached the client as the reason."""
    document, field = LONG_INTEGER_LITERALS[case]
    result = await run(engine, KALTENG, document)
    (error,) = result.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": field}
    assert error.message.startswith(f"{field}: must be an integer within "), error.message
    assert "set_int_max_str_digits" not in error.message
    assert "4300" not in error.message


async def test_moving_a_record_out_by_its_region_alone_is_forbidden(engine: AsyncEngine) -> None:
    created = await run(engine, KALTENG, CREATE_MSME, {"i": msme("7780000000005")})
    record = created.data["createMsme"]
    for who, region in ((KALTENG, "61.71"), (PALANGKA_RAYA, "62.01")):
        moved = await run(engine, who, UPDATE_MSME, {"id": record["id"], "c": {"region": region}})
        (error,) = moved.errors
        assert error.extensions["code"] == "FORBIDDEN", error.message
        assert error.extensions["field"] == "changes.region"


async def test_a_cooperative_moved_out_by_its_region_alone_is_forbidden(
    engine: AsyncEngine,
) -> None:
    created = await run(
        engine,
        KALTENG,
        """mutation { createCooperative(input: {
          legalEntityNo: "AHU-7780001.AH.01.26.TAHUN 2021", name: "Koperasi Uji Pindah",
          type: PRODUSEN, region: "62.71", district: "62.71.03"}) { id } }""",
    )
    assert created.errors is None, created.errors
    moved = await run(
        engine,
        KALTENG,
        """mutation($id: ID!) {
          updateCooperative(id: $id, version: 1, changes: {region: "61.71"}) { id } }""",
        {"id": created.data["createCooperative"]["id"]},
    )
    (error,) = moved.errors
    assert error.extensions["code"] == "FORBIDDEN"
    assert error.extensions["field"] == "changes.region"


async def test_a_region_that_does_not_exist_is_a_region_error(engine: AsyncEngine) -> None:
    created = await run(engine, KALTENG, CREATE_MSME, {"i": msme("7780000000006")})
    record = created.data["createMsme"]
    moved = await run(engine, KALTENG, UPDATE_MSME, {"id": record["id"], "c": {"region": "62.79"}})
    (error,) = moved.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "changes.region"
    fresh = await run(
        engine, KALTENG, CREATE_MSME, {"i": msme("7780000000007", region="62.79", district=None)}
    )
    assert fresh.errors[0].extensions["field"] == "input.region"


async def test_a_nik_in_fullwidth_digits_is_refused_by_the_audit_queries(
    engine: AsyncEngine,
) -> None:
    custodian = principal(OrgKind.CUSTODIAN, "ID")
    spelled = "6271995204880001".translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    for document in (
        "query($n: String!) { personalDataAccess(nik: $n) { clientId } }",
        "query($n: String!) { auditEntries(nik: $n) { seq } }",
    ):
        result = await run(engine, custodian, document, {"n": spelled})
        (error,) = result.errors
        assert (error.extensions["code"], error.extensions["field"]) == ("BAD_USER_INPUT", "nik")


@pytest.mark.parametrize(
    "owner",
    [
        '{nik: "6271995204880001", fullName: "A", bogus: 1}',
        '{nik: "6271995204880001", fullName: "A", nmae: 1}',
        '{nik: "6271995204880001"}',
    ],
)
async def test_an_input_error_never_echoes_the_owners_nik(engine: AsyncEngine, owner: str) -> None:
    document = f"mutation {{ createMsme(input: {{{BASE}, owner: {owner}}}) {{ id }} }}"
    variable = {"i": msme("7780000000008", owner=parse_owner(owner))}
    for result in (
        await run(engine, KALTENG, document),
        await run(engine, KALTENG, CREATE_MSME, variable),
    ):
        (error,) = result.errors
        assert error.extensions["code"] == "BAD_USER_INPUT"
        assert "6271995204880001" not in error.message
        assert error.extensions["field"].startswith("input.owner")


def parse_owner(literal: str) -> dict[str, Any]:
    """The owner literal of the test above as a variable value."""
    pairs = (part.split(":") for part in literal.strip("{}").split(","))
    return {key.strip(): value.strip().strip('"') for key, value in pairs}


GUARANTOR = principal(OrgKind.BUMD, "62")
REQUEST = (
    'product: "JAMKRIDA_KTG_PRODUKTIF", nib: "9990000000001", tenorMonths: 24, '
    "attestation: {maxCollectibility: 1}"
)
ELSEWHERE: dict[str, tuple[Any, str, str]] = {
    # (who, document, field) for the other mutations: the same rules wherever an input is
    "Rupiah in a request": (
        GUARANTOR,
        f'mutation {{ checkEligibility(request: {{{REQUEST}, loanAmount: "5e7"}}) {{ id }} }}',
        "request.loanAmount",
    ),
    "Date in a request": (
        GUARANTOR,
        f'mutation {{ checkEligibility(request: {{{REQUEST}, loanAmount: "1", '
        'checkDate: "2026-02-30"}) { id } }',
        "request.checkDate",
    ),
    "Int in an attestation": (
        GUARANTOR,
        'mutation { checkEligibility(request: {product: "P", nib: "9990000000001", '
        'tenorMonths: 24, loanAmount: "1", attestation: {maxCollectibility: 4294967296}}) '
        "{ id } }",
        "request.attestation.maxCollectibility",
    ),
    "enum of a status": (
        GUARANTOR,
        'mutation { changeGuaranteeStatus(guaranteeId: "x", status: LOST, '
        'effectiveOn: "2026-01-01") { id } }',
        "status",
    ),
    "an import row's field": (
        KALTENG,
        'mutation { importMsmes(mode: VALID_ROWS, rows: [{nib: "1", name: "a", kbliCode: "1", '
        'region: "62.71"}, {nib: "2", name: "b", kbliCode: "1", region: "62.71", '
        "employees: -99999999999}]) { created } }",
        "rows[1].employees",
    ),
    "a figure dimension": (
        principal(OrgKind.MINISTRY, "ID"),
        "{ msmeFigures(groupBy: [PROVINCE, SIZE]) { count } }",
        "groupBy[1]",
    ),
}


@pytest.mark.parametrize("case", list(ELSEWHERE))
async def test_the_same_coercion_errors_name_their_field_in_every_operation(
    engine: AsyncEngine, case: str
) -> None:
    who, document, field = ELSEWHERE[case]
    result = await run(engine, who, document)
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == field
    assert error.message.startswith(f"{field}: ")
