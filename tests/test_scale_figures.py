"""What the figures and indicators count of an MSME's scale, through the schema.

The module's own database: it adds a target for the year its clock is held in, so that the
indicator's computed value can be read against the records written here alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from auth.scopes import OrgKind
from db.engine import async_url, create_engine
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import principal, run

KALTENG = principal(OrgKind.PROVINCE, "62")
YEAR = 2026
REGISTERED_ON = date(YEAR, 6, 1)


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    owner = create_async_engine(async_url(module_reference_url))
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO targets (indicator_code, jurisdiction, year, kind, value, source)"
                " VALUES ('MIKRO_NAIK_KELAS', '62', :year, 'target', 800, 'test')"
            ),
            {"year": YEAR},
        )
    await owner.dispose()
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, REGISTERED_ON)


CREATE = """
mutation Create($input: CreateMsmeInput!) {
  createMsme(input: $input) { id scale version }
}"""
REPORT = """
mutation Report($id: ID!, $version: Int!, $report: ScaleReport!) {
  reportScaleChange(id: $id, version: $version, report: $report) { scale version }
}"""
GRADUATED = """{
  indicator(code: "MIKRO_NAIK_KELAS") { targets { year jurisdiction { code } computedValue } }
  graduations(year: 2026, groupBy: [FROM_SCALE, TO_SCALE], region: "62") {
    key { value } count
  }
}"""


async def _create(engine: AsyncEngine, nib: str, annual_turnover: str) -> Any:
    values = {
        "nib": nib,
        "name": "Usaha Uji Naik Kelas",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
        "annualTurnover": annual_turnover,
        "turnoverYear": 2025,
    }
    result = await run(engine, KALTENG, CREATE, {"input": values})
    assert result.errors is None, result.errors
    return result.data["createMsme"]


async def _report(engine: AsyncEngine, created: Any, annual_sales: str, on: date) -> str:
    report = {"annualSales": annual_sales, "turnoverYear": YEAR, "effectiveFrom": on.isoformat()}
    result = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert result.errors is None, result.errors
    return str(result.data["reportScaleChange"]["scale"])


async def _graduated(engine: AsyncEngine) -> tuple[int, dict[tuple[str | None, ...], int]]:
    """The indicator's computed value for Kalteng in YEAR, and the graduation figures by step."""
    result = await run(engine, KALTENG, GRADUATED)
    assert result.errors is None, result.errors
    (target,) = [
        target
        for target in result.data["indicator"]["targets"]
        if (target["year"], target["jurisdiction"]["code"]) == (YEAR, "62")
    ]
    steps = {
        tuple(part["value"] for part in cell["key"]): cell["count"]
        for cell in result.data["graduations"]
    }
    return int(target["computedValue"]), steps


async def test_only_micro_firms_that_grew_count_as_usaha_mikro_naik_kelas(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Kalteng's target counts micro enterprises that became small or medium: a small firm
    growing to medium is in the graduation figures, as a step from small, but not in it."""
    micro = await _create(engine, "7780500000001", "240000000")
    small = await _create(engine, "7780500000002", "3000000000")
    assert (micro["scale"], small["scale"]) == ("MICRO", "SMALL")
    before, _ = await _graduated(engine)
    clock.day = REGISTERED_ON + timedelta(days=1)
    assert await _report(engine, small, "20000000000", clock.day) == "MEDIUM"
    after_small, steps = await _graduated(engine)
    assert after_small == before
    assert steps[("small", "medium")] == 1
    assert await _report(engine, micro, "3000000000", clock.day) == "SMALL"
    after_micro, steps = await _graduated(engine)
    assert after_micro == before + 1
    assert steps[("micro", "small")] == 1
    assert steps[(None, None)] == 2
