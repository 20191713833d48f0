"""Aggregate figures through the schema: totals, suppression per caller, bounded statements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import LIMITS, principal, run
from tests.support.statements import recorded_statements

MINISTRY = principal(OrgKind.MINISTRY, "ID")
KALTENG = principal(OrgKind.PROVINCE, "62")
EVERYWHERE = principal(OrgKind.PROVINCE, "ID")  # reads every record, so every figure is exact
K = LIMITS.suppression_k
NOISE = LIMITS.perturbation.max_noise


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


BY_PROVINCE_AND_SCALE = """
{ msmeFigures(groupBy: [PROVINCE, SCALE]) {
    key { dimension value region { name } } suppressed count turnoverSum
} }"""


def _cells(result: Any) -> dict[tuple[str | None, ...], dict[str, Any]]:
    assert result.errors is None, result.errors
    (figures,) = result.data.values()
    return {tuple(part["value"] for part in cell["key"]): cell for cell in figures}


async def test_a_reader_of_every_record_gets_exact_national_and_provincial_figures(
    engine: AsyncEngine,
) -> None:
    cells = _cells(await run(engine, EVERYWHERE, BY_PROVINCE_AND_SCALE))
    async with engine.connect() as connection:
        national = (await connection.execute(text("SELECT count(*) FROM msmes"))).scalar_one()
        kalteng_micro = (
            await connection.execute(
                text("SELECT count(*) FROM msmes WHERE province_code='62' AND scale='micro'")
            )
        ).scalar_one()
    assert cells[(None, None)]["count"] == national
    assert cells[("62", "micro")]["count"] == kalteng_micro
    assert cells[("62", None)]["key"][0]["region"]["name"] == "Kalimantan Tengah"
    provinces = [cell for key, cell in cells.items() if key[1] is None and key[0] is not None]
    assert {key[0] for key in cells if key[0]} == {"61", "62", "64"}
    assert sum(cell["count"] for cell in provinces) == national
    assert not any(cell["suppressed"] for cell in cells.values())


async def test_a_ministry_gets_every_count_within_the_noise_and_not_all_exact(
    engine: AsyncEngine,
) -> None:
    exact = _cells(await run(engine, EVERYWHERE, BY_PROVINCE_AND_SCALE))
    cells = _cells(await run(engine, MINISTRY, BY_PROVINCE_AND_SCALE))
    assert cells.keys() <= exact.keys()
    for key in exact.keys() - cells.keys():  # a table by scale leaves out what it hides
        assert exact[key]["count"] < K + NOISE, key
    published = {key: cell for key, cell in cells.items() if not cell["suppressed"]}
    for key, cell in published.items():
        assert abs(cell["count"] - exact[key]["count"]) <= NOISE, key
    assert any(cell["count"] != exact[key]["count"] for key, cell in published.items())
    assert any(cell["turnoverSum"] != exact[key]["turnoverSum"] for key, cell in published.items())


BY_REGENCY_AND_SECTION = """
{ msmeFigures(groupBy: [REGENCY, KBLI_SECTION]) {
    key { dimension value } suppressed count turnoverSum
} }"""


async def test_small_cells_are_suppressed_for_a_ministry(engine: AsyncEngine) -> None:
    # Regencies by KBLI section: dozens of cells of a few records each, so that some are
    # perturbed below k whatever the demo population's random record keys (a cell of 1 may be
    # perturbed up to 1 + NOISE, so a table of a few small cells may show none suppressed).
    cells = _cells(await run(engine, MINISTRY, BY_REGENCY_AND_SECTION))
    suppressed = [cell for cell in cells.values() if cell["suppressed"]]
    assert suppressed, "the demo population has regencies with few records of a section"
    for cell in suppressed:
        assert cell["count"] is None
        assert cell["turnoverSum"] is None
    for key, cell in cells.items():
        if not cell["suppressed"]:
            assert cell["count"] >= K, key


async def test_a_province_sees_its_own_small_cells_exactly_but_not_other_provinces(
    engine: AsyncEngine,
) -> None:
    kalteng_regencies = """{ msmeFigures(groupBy: [REGENCY, SCALE], filter: {region: "62"}) {
        key { value } suppressed count turnoverSum } }"""
    ministry = _cells(await run(engine, MINISTRY, kalteng_regencies))
    province = _cells(await run(engine, KALTENG, kalteng_regencies))
    exact = _cells(await run(engine, EVERYWHERE, kalteng_regencies))
    hidden_from_ministry = exact.keys() - ministry.keys()  # by scale: left out, not suppressed
    assert hidden_from_ministry
    assert not any(cell["suppressed"] for cell in ministry.values())
    assert province == exact
    assert not any(cell["suppressed"] for cell in province.values())
    kalbar = _cells(await run(engine, KALTENG, BY_PROVINCE_AND_SCALE))
    for key, cell in kalbar.items():
        if key[0] not in ("62", None) and not cell["suppressed"]:
            assert cell["count"] >= K, f"{key} published a small cell of another province"


async def test_figures_cost_a_bounded_number_of_statements(engine: AsyncEngine) -> None:
    with recorded_statements(engine) as statements:
        result = await run(
            engine,
            MINISTRY,
            "{ cooperativeFigures(groupBy: [PROVINCE, TYPE, STATUS]) { count } }",
        )
    assert result.errors is None
    assert len(statements) == 2  # which release to read (perturbed, so from one), the table


async def test_a_ministry_may_not_read_records(engine: AsyncEngine) -> None:
    result = await run(
        engine, MINISTRY, "{ msmes { totalCount } cooperativeFigures(groupBy: []) { count } }"
    )
    assert result.data["msmes"] is None
    assert result.data["cooperativeFigures"][0]["count"] > 0
    (error,) = result.errors
    assert error.extensions == {"code": "FORBIDDEN", "requiredScopes": ["records:read"]}


VOLUME_AGAINST_TARGET = """{
  cooperativeFigures(groupBy: [PROVINCE, BOOK_YEAR], filter: {region: "62", type: PRODUSEN}) {
    key { value } count businessVolumeSum
  }
  indicator(code: "KOP_PRODUKSI_VOLUME") {
    targets { year value computedValue progress jurisdiction { code } }
  }
}"""


@pytest.mark.parametrize("who", [KALTENG, MINISTRY], ids=["exact", "perturbed"])
async def test_kalteng_producer_cooperatives_against_the_2025_volume_target(
    engine: AsyncEngine, who: Principal
) -> None:
    """The indicator is the figure of the same records, the producers' volume of the target's
    book year, as the caller sees it: exact for the province, perturbed (or, for a small cell,
    suppressed) for a ministry. A book year no producer's figures have reached (the demo's
    books reach 2024) has no volume yet: null, as its figure cell's sum, and no progress."""
    result = await run(engine, who, VOLUME_AGAINST_TARGET)
    assert result.errors is None
    figures = {
        tuple(part["value"] for part in cell["key"]): cell
        for cell in result.data["cooperativeFigures"]
    }
    (target,) = result.data["indicator"]["targets"]
    assert target["year"] == 2025
    assert target["value"] == "222000000000"
    cell = figures.get(("62", "2025"))
    volume = None if cell is None else cell["businessVolumeSum"]
    assert target["computedValue"] == volume
    if volume is None:
        assert target["progress"] is None
    else:
        expected = int(volume) / 222_000_000_000
        assert float(target["progress"]) == pytest.approx(expected, abs=1e-4)
    async with engine.connect() as connection:
        exact = (
            await connection.execute(
                text(
                    "SELECT sum(business_volume) FROM cooperatives"
                    " WHERE province_code = '62' AND type = 'produsen' AND status <> 'dissolved'"
                    " AND book_year = 2025"
                )
            )
        ).scalar_one()
    if exact is None:
        assert volume is None
    else:
        assert (volume == str(int(exact))) is (who is KALTENG or exact == 0)


async def test_micro_firms_that_graduated_in_2025_per_kalteng_regency(
    engine: AsyncEngine,
) -> None:
    result = await run(
        engine,
        KALTENG,
        """{ graduations(year: 2025, groupBy: [REGENCY], region: "62") {
              key { value region { name } } count suppressed } }""",
    )
    cells = _cells(result)
    async with engine.connect() as connection:
        boga_regency = (
            await connection.execute(
                text("SELECT regency_code FROM msmes WHERE nib='9990000000002'")
            )
        ).scalar_one()
    assert cells[(boga_regency,)]["count"] >= 1  # Boga Contoh Lada: micro to small in 2025
    regencies = [cell["count"] for key, cell in cells.items() if key != (None,)]
    assert sum(regencies) == cells[(None,)]["count"]


async def test_grouping_by_too_many_dimensions_is_refused(engine: AsyncEngine) -> None:
    result = await run(
        engine,
        MINISTRY,
        "{ msmeFigures(groupBy: [PROVINCE, REGENCY, SCALE, ACTIVE, KBLI_SECTION]) { count } }",
    )
    (error,) = result.errors
    assert error.extensions["code"] == "BAD_USER_INPUT"
    assert error.extensions["field"] == "groupBy"
