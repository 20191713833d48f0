"""Realisations a province or regency reports (`reportRealisation`), as the schema answers them
in-process, where no request guard stands in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import DEFAULT_SCOPES, OrgKind, Scope
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PALANGKA_RAYA = principal(OrgKind.REGENCY, "62.71", extra=frozenset({Scope.TARGETS_WRITE}))
REPORT = """mutation($report: RealisationInput!) {
  reportRealisation(report: $report) { value source reportedBy } }"""


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def report(**overrides: Any) -> dict[str, Any]:
    given = {
        "indicator": "KOP_PRODUKSI_VOLUME",
        "jurisdiction": "62.71",
        "year": 2025,
        "value": "12",
        "source": "Laporan Dinas Koperasi Kota Palangka Raya",
    }
    return {"report": {**given, **overrides}}


async def test_an_indicator_code_is_storable_text_of_an_indicator_s_length_never_echoed_long(
    engine: AsyncEngine,
) -> None:
    """A NUL in the code failed the statement as INTERNAL; a code of 60,000 characters came back
    whole in the error, a 60 KB answer. Both are BAD_USER_INPUT on report.indicator, naming
    neither; a code of an indicator's length that names none is still echoed."""
    for code in ("KOP\u0000JUMLAH", "X" * 60_000):
        refused = await run(engine, PALANGKA_RAYA, REPORT, report(indicator=code))
        assert refused.data == {"reportRealisation": None}
        (error,) = refused.errors
        assert error.extensions == {"code": "BAD_USER_INPUT", "field": "report.indicator"}
        assert len(error.message) < 200
        assert "XXXX" not in error.message
    unknown = await run(engine, PALANGKA_RAYA, REPORT, report(indicator="KOP_TIDAK_ADA"))
    (error,) = unknown.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "report.indicator"}
    assert error.message == "report.indicator: unknown indicator 'KOP_TIDAK_ADA'"


async def test_an_indicator_looked_up_by_a_code_holding_a_nul_is_bad_input(
    engine: AsyncEngine,
) -> None:
    query = "query($code: String!) { indicator(code: $code) { code } }"
    refused = await run(engine, PALANGKA_RAYA, query, {"code": "KOP\u0000JUMLAH"})
    (error,) = refused.errors
    assert error.extensions == {"code": "BAD_USER_INPUT", "field": "code"}
    long = await run(engine, PALANGKA_RAYA, query, {"code": "X" * 60_000})
    assert long.errors is None
    assert long.data == {"indicator": None}


SSO = "https://sso.kalteng.go.id/realms/pemda"
OFFICIAL = "198507142010011003"
"""An official's NIP, the SSO's `sub` of her user token: the client id when the issuer maps
none (auth.external), so it stood in every report she made."""
READ_BACK = """query($year: Int!) { indicator(code: "KOP_PRODUKSI_VOLUME") {
  realisations(jurisdiction: "62.71", year: $year) { value reportedBy } } }"""
MINISTRY = principal(OrgKind.MINISTRY, "ID")


def reporting(client_id: str, organisation: str) -> Principal:
    return Principal(
        client_id=client_id,
        org_kind=OrgKind.REGENCY,
        jurisdiction="62.71",
        scopes=DEFAULT_SCOPES[OrgKind.REGENCY] | {Scope.TARGETS_WRITE},
        organisation=organisation,
    )


async def test_a_report_names_the_organisation_that_made_it_never_an_sso_user(
    engine: AsyncEngine,
) -> None:
    """`reportedBy` is read nationwide (targets:read) and unaudited: it named the client id
    beside the organisation, and an SSO user's client id may be her NIP. The organisation alone
    is shown, in the mutation's answer and read back; a client registered here is known by its
    name, or by its id when it has none."""
    for year, who, shown in (
        (
            2025,
            reporting(f"{SSO}#{OFFICIAL}@regency:62.71", "Dinas Koperasi (SSO) Palangka Raya"),
            "Dinas Koperasi (SSO) Palangka Raya",
        ),
        (2024, reporting(f"{SSO}#{OFFICIAL}@regency:62.71", ""), None),
        (2023, reporting("sng_uji6271", "Dinas Koperasi dan UKM Kota Palangka Raya (uji)"), None),
        (2022, reporting("sng_uji6271", ""), "sng_uji6271"),
    ):
        sent = await run(engine, who, REPORT, report(year=year))
        assert sent.errors is None, sent.errors
        expected = shown or who.organisation or None
        assert sent.data["reportRealisation"]["reportedBy"] == expected, who
        read = await run(engine, MINISTRY, READ_BACK, {"year": year})
        assert read.errors is None, read.errors
        assert read.data["indicator"]["realisations"] == [{"value": "12", "reportedBy": expected}]
        assert OFFICIAL not in str(read.data)


async def test_reports_stored_before_name_the_organisation_alone_too(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """Reports stored with the reporter's client id keep it (the owner's history of who
    reported what): readers are shown the organisation, an external principal's id of the
    older form (`ISSUER#CLIENT`) cut off too."""
    stored = {
        2021: (
            f"Dinas Koperasi Kota Palangka Raya ({SSO}#{OFFICIAL} (NIP))",
            "Dinas Koperasi Kota Palangka Raya",
        ),
        2020: ("Bappeda Kota Palangka Raya (sng_bappeda)", "Bappeda Kota Palangka Raya"),
    }
    owner = await asyncpg.connect(module_reference_url)
    try:
        for year, (reported_by, _) in stored.items():
            await owner.execute(
                "INSERT INTO realisations (indicator_code, jurisdiction, year, value, source,"
                " reported_by) VALUES ('KOP_PRODUKSI_VOLUME', '62.71', $1, 12, 'Laporan', $2)",
                year,
                reported_by,
            )
    finally:
        await owner.close()
    for year, (_, shown) in stored.items():
        read = await run(engine, MINISTRY, READ_BACK, {"year": year})
        assert read.errors is None, read.errors
        assert read.data["indicator"]["realisations"] == [{"value": "12", "reportedBy": shown}]
