"""Realisations a province or regency reports (`reportRealisation`), as the schema answers them
in-process, where no request guard stands in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
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
