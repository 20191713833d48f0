"""What the figures and indicators count of an MSME's scale (and of a cooperative's book
year), through the schema.

The module's own database: it adds targets for the year its clock is held in, so that the
indicators' computed values can be read against the records written here alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from auth.principal import Principal
from auth.scopes import OrgKind
from db import releases
from db.engine import async_url, create_engine
from tests.support.clock import Clock
from tests.support.databases import as_service
from tests.support.graphql import principal, run

KALTENG = principal(OrgKind.PROVINCE, "62")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
SUKAMARA = "62.08"  # a regency only `test_large_enterprises_are_no_msmes` writes in
SERUYAN = "62.07"  # a regency only `test_the_production_volume_is_that_of_the_book_year` writes in
# Regencies of Kalbar and Kaltim only `test_no_graduate_and_a_few_answer_alike` writes in.
SAMBAS, MEMPAWAH, PASER, KUTAI = "61.01", "61.02", "64.01", "64.02"
# Regencies only `test_no_small_business_and_a_few_answer_alike` writes in.
SANGGAU, KETAPANG = "61.03", "61.04"
# Regencies only `test_only_large_enterprises_and_a_few_msmes_answer_alike` writes in.
SINTANG, KAPUAS_HULU = "61.05", "61.06"
YEAR = 2026
REGISTERED_ON = date(YEAR, 6, 1)


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    owner = create_async_engine(async_url(module_reference_url))
    async with owner.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO targets (indicator_code, jurisdiction, year, kind, value, source)"
                " VALUES ('MIKRO_NAIK_KELAS', '62', :year, 'target', 800, 'test'),"
                " ('MIKRO_NAIK_KELAS', '62', :year - 1, 'target', 800, 'test'),"
                " ('UKM_PROPORSI', '62', :year, 'target', 3.84, 'test'),"
                " ('UMKM_JUMLAH', :regency, :year, 'target', 10, 'test'),"
                " ('UKM_PROPORSI', :regency, :year, 'target', 50, 'test'),"
                " ('KOP_PRODUKSI_VOLUME', :seruyan, :year - 1, 'target', 10000000000, 'test'),"
                " ('KOP_PRODUKSI_VOLUME', :seruyan, :year, 'target', 10000000000, 'test'),"
                " ('MIKRO_NAIK_KELAS', :sambas, :year, 'target', 10, 'test'),"
                " ('MIKRO_NAIK_KELAS', :mempawah, :year, 'target', 10, 'test'),"
                " ('MIKRO_NAIK_KELAS', '61', :year, 'target', 10, 'test'),"
                " ('MIKRO_NAIK_KELAS', '64', :year, 'target', 10, 'test'),"
                " ('UKM_PROPORSI', :sanggau, :year, 'target', 5, 'test'),"
                " ('UKM_PROPORSI', :ketapang, :year, 'target', 5, 'test'),"
                " ('UMKM_JUMLAH', :sintang, :year, 'target', 5, 'test'),"
                " ('UMKM_JUMLAH', :kapuas_hulu, :year, 'target', 5, 'test')"
            ),
            {
                "year": YEAR,
                "regency": SUKAMARA,
                "seruyan": SERUYAN,
                "sambas": SAMBAS,
                "mempawah": MEMPAWAH,
                "sanggau": SANGGAU,
                "ketapang": KETAPANG,
                "sintang": SINTANG,
                "kapuas_hulu": KAPUAS_HULU,
            },
        )
    await owner.dispose()
    # Kalbar's and Kaltim's targets are read perturbed by Kalteng, from a release.
    assert await releases.release_now(module_reference_url) is not None
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


def _values(nib: str, **figures: Any) -> dict[str, Any]:
    values = {
        "nib": nib,
        "name": "Usaha Uji Skala",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
        "turnoverYear": 2025,
    }
    return {key: value for key, value in {**values, **figures}.items() if value is not None}


async def _create(
    engine: AsyncEngine, nib: str, annual_turnover: str, who: Principal = KALTENG, **figures: Any
) -> Any:
    values = _values(nib, annualTurnover=annual_turnover, **figures)
    result = await run(engine, who, CREATE, {"input": values})
    assert result.errors is None, result.errors
    return result.data["createMsme"]


async def _report(
    engine: AsyncEngine,
    created: Any,
    annual_sales: str,
    on: date,
    version: int = 1,
    who: Principal = KALTENG,
) -> str:
    report = {"annualSales": annual_sales, "turnoverYear": YEAR, "effectiveFrom": on.isoformat()}
    result = await run(
        engine, who, REPORT, {"id": created["id"], "version": version, "report": report}
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
    before, steps_before = await _graduated(engine)
    clock.day = REGISTERED_ON + timedelta(days=1)
    assert await _report(engine, small, "20000000000", clock.day) == "MEDIUM"
    after_small, steps = await _graduated(engine)
    assert after_small == before
    assert steps[("small", "medium")] == steps_before.get(("small", "medium"), 0) + 1
    assert await _report(engine, micro, "3000000000", clock.day) == "SMALL"
    after_micro, steps = await _graduated(engine)
    assert after_micro == before + 1
    assert steps[("micro", "small")] == steps_before.get(("micro", "small"), 0) + 1
    assert steps[(None, None)] == steps_before.get((None, None), 0) + 2


MICRO_SALES, SMALL_SALES, MEDIUM_SALES = "240000000", "3000000000", "20000000000"
LARGE_SALES = "60000000000"


async def test_a_micro_firm_that_rose_twice_in_a_year_is_one_graduate(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Micro, small from March, micro again from June, small from September: one micro
    enterprise became small in the year, so MIKRO_NAIK_KELAS (a count of enterprises) and the
    micro-to-small cell count it once. Counted per step, a region could report its way past its
    target with one business."""
    clock.day = date(YEAR, 1, 15)
    before, steps_before = await _graduated(engine)
    created = await _create(engine, "7785000000001", MICRO_SALES)
    changes = [(SMALL_SALES, 3), (MICRO_SALES, 6), (SMALL_SALES, 9)]
    for version, (sales, month) in enumerate(changes, start=1):
        clock.day = date(YEAR, month, 1)
        await _report(engine, created, sales, clock.day, version)
    after, steps = await _graduated(engine)
    assert after == before + 1
    assert steps[("micro", "small")] == steps_before.get(("micro", "small"), 0) + 1
    assert steps[(None, None)] == steps_before.get((None, None), 0) + 1


async def test_a_firm_rising_micro_to_small_to_medium_in_a_year_is_one_graduate(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Micro to small in March, small to medium in June: one graduate of the year, in the cell
    of the lowest scale it rose from and the highest it reached (micro to medium), so every
    cell and total holds each business once."""
    clock.day = date(YEAR, 1, 20)
    before, steps_before = await _graduated(engine)
    created = await _create(engine, "7785000000002", MICRO_SALES)
    for version, (sales, month) in enumerate([(SMALL_SALES, 3), (MEDIUM_SALES, 6)], start=1):
        clock.day = date(YEAR, month, 2)
        await _report(engine, created, sales, clock.day, version)
    after, steps = await _graduated(engine)
    assert after == before + 1
    assert steps[("micro", "medium")] == steps_before.get(("micro", "medium"), 0) + 1
    for step in [("micro", "small"), ("small", "medium"), (None, "small"), ("small", None)]:
        assert steps.get(step, 0) == steps_before.get(step, 0)
    assert steps[(None, None)] == steps_before.get((None, None), 0) + 1
    assert steps[("micro", None)] == steps_before.get(("micro", None), 0) + 1
    assert steps[(None, "medium")] == steps_before.get((None, "medium"), 0) + 1


async def test_a_lone_business_rising_ten_times_stays_hidden_from_a_ministry(
    engine: AsyncEngine, clock: Clock, module_reference_url: str
) -> None:
    """Ten steps from micro to small in a year by one business of Kapuas (the module's only
    graduate there): a regency cell of one business, which disclosure control must hide from
    a ministry reading the release, however many steps it took. (Ten: counted per step, the
    cell's perturbed count is at least 10 - max_noise = k, so it was shown whatever the record's
    key; with five it was shown or not by the key's draw.) Hidden means left out, key and all,
    as a programme's table leaves out its hidden cells: a cell shown suppressed told the ministry
    that some business of Kapuas passed Rp 2 miliar of sales that year, a past turnover band of a
    lone business (docs/disclosure-control.md, point 8)."""
    clock.day = date(YEAR, 2, 1)
    created = await _create(engine, "7785000000003", MICRO_SALES, region="62.03")
    for version in range(1, 20):  # small, micro, small, ...: ten steps up
        clock.day = date(YEAR, 2, 1 + version)
        sales = SMALL_SALES if version % 2 else MICRO_SALES
        await _report(engine, created, sales, clock.day, version)
    assert await releases.release_now(module_reference_url) is not None
    result = await run(
        engine,
        MINISTRY,
        """{ graduations(year: 2026, groupBy: [REGENCY], region: "62") {
              key { value } suppressed count } }""",
    )
    assert result.errors is None, result.errors
    cells = {cell["key"][0]["value"]: cell for cell in result.data["graduations"]}
    assert "62.03" not in cells
    assert not any(cell["suppressed"] for cell in cells.values())


TARGETS = """{
  indicator(code: "MIKRO_NAIK_KELAS") {
    targets { year jurisdiction { code } computedValue progress }
  }
}"""


async def _targets(engine: AsyncEngine, who: Principal) -> dict[str, tuple[Any, Any]]:
    """`who`'s computed MIKRO_NAIK_KELAS of YEAR, and its progress, by jurisdiction."""
    result = await run(engine, who, TARGETS)
    assert result.errors is None, result.errors
    return {
        target["jurisdiction"]["code"]: (target["computedValue"], target["progress"])
        for target in result.data["indicator"]["targets"]
        if target["year"] == YEAR
    }


async def test_no_graduate_and_a_few_answer_alike(
    engine: AsyncEngine, clock: Clock, module_reference_url: str
) -> None:
    """A place's graduates are members, as `graduations`' cells are: a place with none and one
    with a graduate too few to show answer alike (null), or the indicator would say what the
    figures leave out, that some business of Mempawah passed a sales threshold this year (0
    for Sambas, which had none, null for Mempawah, which had one). A regency reading its
    province's indicator sees its own graduates exact, and others too few to show as none,
    whether they had none (Kalbar's others) or one (Kaltim's). A reader of the records gets
    the exact counts, 0 included."""
    kalbar, kaltim = principal(OrgKind.PROVINCE, "61"), principal(OrgKind.PROVINCE, "64")
    for nib, who, region in [
        ("7786000000001", kalbar, MEMPAWAH),
        ("7786000000002", kaltim, PASER),
        ("7786000000003", kaltim, KUTAI),
    ]:
        clock.day = date(YEAR, 3, 1)
        created = await _create(engine, nib, MICRO_SALES, who, region=region)
        clock.day = date(YEAR, 3, 2)
        assert await _report(engine, created, SMALL_SALES, clock.day, who=who) == "SMALL"
    assert await releases.release_now(module_reference_url) is not None
    ministry = await _targets(engine, MINISTRY)
    assert ministry[SAMBAS] == ministry[MEMPAWAH] == (None, None)
    exact = await _targets(engine, kalbar)
    assert (exact[SAMBAS][0], exact[MEMPAWAH][0]) == ("0", "1")
    mempawah = await _targets(engine, principal(OrgKind.REGENCY, MEMPAWAH))
    paser = await _targets(engine, principal(OrgKind.REGENCY, PASER))
    assert mempawah["61"][0] == paser["64"][0] == "1"


SHARES = """{
  indicator(code: "UKM_PROPORSI") { targets { year jurisdiction { code } computedValue } }
}"""


async def _computed(engine: AsyncEngine, who: Principal, document: str) -> dict[str, Any]:
    """`who`'s computed value of YEAR of the one indicator `document` reads, by jurisdiction."""
    result = await run(engine, who, document)
    assert result.errors is None, result.errors
    return {
        target["jurisdiction"]["code"]: target["computedValue"]
        for target in result.data["indicator"]["targets"]
        if target["year"] == YEAR
    }


async def test_no_small_business_and_a_few_answer_alike(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """UKM_PROPORSI's part is the small and medium businesses, a scale being its owner's
    finances: a table by scale leaves out a cell of too few to show, and the indicator must
    not say it either. Twelve micro businesses in Sanggau, eleven and one small one in Ketapang:
    a ministry was told 0.00 for Sanggau and null for Ketapang, so that one of Ketapang's
    businesses was small. Both now answer null; a reader of the records gets the exact shares."""
    kalbar = principal(OrgKind.PROVINCE, "61")
    for n in range(12):
        for region, prefix in [(SANGGAU, "77870"), (KETAPANG, "77871")]:
            sales = SMALL_SALES if (region, n) == (KETAPANG, 0) else MICRO_SALES
            await _create(engine, f"{prefix}000000{n:02d}", sales, kalbar, region=region)
    assert await releases.release_now(module_reference_url) is not None
    ministry = await _computed(engine, MINISTRY, SHARES)
    assert ministry[SANGGAU] == ministry[KETAPANG] is None
    exact = await _computed(engine, kalbar, SHARES)
    assert (exact[SANGGAU], exact[KETAPANG]) == ("0", "8.33")


MSME_COUNTS = """{
  indicator(code: "UMKM_JUMLAH") { targets { year jurisdiction { code } computedValue } }
}"""


async def test_only_large_enterprises_and_a_few_msmes_answer_alike(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """UMKM_JUMLAH counts the MSMEs, leaving large enterprises out: a count by scale. Two large
    enterprises in Sintang, two and one micro business in Kapuas Hulu: a ministry was told 0
    for Sintang, beside its suppressed total of businesses, so that every business there was
    large (over Rp50 miliar of sales). Both now answer null; a reader of the records gets the
    exact counts."""
    kalbar = principal(OrgKind.PROVINCE, "61")
    for region, prefix in [(SINTANG, "77872"), (KAPUAS_HULU, "77873")]:
        for n in range(2):
            await _create(engine, f"{prefix}000000{n:02d}", LARGE_SALES, kalbar, region=region)
    await _create(engine, "7787300000002", MICRO_SALES, kalbar, region=KAPUAS_HULU)
    assert await releases.release_now(module_reference_url) is not None
    ministry = await _computed(engine, MINISTRY, MSME_COUNTS)
    assert ministry[SINTANG] == ministry[KAPUAS_HULU] is None
    exact = await _computed(engine, kalbar, MSME_COUNTS)
    assert (exact[SINTANG], exact[KAPUAS_HULU]) == ("0", "1")


SALES_YEAR = """query Graduated($year: Int!) {
  indicator(code: "MIKRO_NAIK_KELAS") { targets { year jurisdiction { code } computedValue } }
  graduations(year: $year, groupBy: [FROM_SCALE, TO_SCALE], region: "62") {
    key { value } count
  }
}"""
HISTORY = """query History($nib: String!) {
  msme(nib: $nib) { scaleHistory { scale effectiveFrom turnoverYear } }
}"""


async def _graduated_in(engine: AsyncEngine, year: int) -> tuple[int, int]:
    """Kalteng's MIKRO_NAIK_KELAS for `year` and its micro-to-small graduations that year."""
    result = await run(engine, KALTENG, SALES_YEAR, {"year": year})
    assert result.errors is None, result.errors
    (value,) = [
        target["computedValue"]
        for target in result.data["indicator"]["targets"]
        if (target["year"], target["jurisdiction"]["code"]) == (year, "62")
    ]
    steps = {
        tuple(part["value"] for part in cell["key"]): cell["count"]
        for cell in result.data["graduations"]
    }
    return int(value or 0), steps.get(("micro", "small"), 0)


async def test_a_graduation_counts_in_the_year_the_sales_were_made(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Micro on its 2024 sales, reported small in February 2026 on its 2025 sales: it became
    small in 2025 (domain: computedScale(t-1) = MIKRO, computedScale(t) small, by the year's
    annual sales), so 2025's MIKRO_NAIK_KELAS and graduations count it, 2026's do not."""
    clock.day = date(YEAR - 1, 11, 3)
    created = await _create(engine, "7799000000001", MICRO_SALES, turnoverYear=YEAR - 2)
    before = {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)}
    clock.day = date(YEAR, 2, 10)
    report = {"annualSales": SMALL_SALES, "turnoverYear": YEAR - 1, "effectiveFrom": "2026-02-10"}
    result = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert result.errors is None, result.errors
    after = {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)}
    assert after[YEAR - 1] == (before[YEAR - 1][0] + 1, before[YEAR - 1][1] + 1)
    assert after[YEAR] == before[YEAR]
    read = await run(engine, KALTENG, HISTORY, {"nib": "7799000000001"})
    assert read.errors is None, read.errors
    assert read.data["msme"]["scaleHistory"] == [
        {"scale": "MICRO", "effectiveFrom": "2025-11-03", "turnoverYear": YEAR - 2},
        {"scale": "SMALL", "effectiveFrom": "2026-02-10", "turnoverYear": YEAR - 1},
    ]


async def _update(engine: AsyncEngine, created: Any, version: int, **changes: Any) -> None:
    variables = {"id": created["id"], "version": version, "changes": changes}
    result = await run(engine, KALTENG, UPDATE, variables)
    assert result.errors is None, result.errors


async def _history(engine: AsyncEngine, nib: str) -> list[tuple[str, str]]:
    """(scale, rule version) of each entry of the record's scale history, oldest first."""
    read = await run(engine, KALTENG, RULES, {"nib": nib})
    assert read.errors is None, read.errors
    return [(entry["scale"], entry["ruleVersion"]) for entry in read.data["msme"]["scaleHistory"]]


RULES = """query Rules($nib: String!) {
  msme(nib: $nib) { scaleHistory { scale ruleVersion } }
}"""


async def test_a_mistyped_figure_and_its_fix_are_no_graduation(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Micro on its 2025 sales, then an update typing Rp 3 miliar for Rp 300 juta, fixed the
    next day: the same year's figures corrected twice, no business grew (docs/domain.md, "A
    correction is no graduation"). The entries stay in the history, as corrections."""
    clock.day = date(YEAR, 1, 15)
    created = await _create(engine, "7799600000001", "300000000")
    before = {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)}
    clock.day = date(YEAR, 3, 1)
    await _update(engine, created, 1, annualTurnover="3000000000")
    clock.day = date(YEAR, 3, 2)
    await _update(engine, created, 2, annualTurnover="300000000")
    assert {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)} == before
    assert await _history(engine, "7799600000001") == [
        ("MICRO", "PP7_2021"),
        ("SMALL", "PP7_2021/correction"),
        ("MICRO", "PP7_2021/correction"),
    ]


async def test_an_update_bringing_a_later_years_sales_is_a_graduation(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Micro on its 2025 sales, updated with its 2026 sales, small: a new year's figures, which
    an update may bring as a report does, so the business rose in 2026."""
    clock.day = date(YEAR, 1, 15)
    created = await _create(engine, "7799600000002", "300000000")
    before = await _graduated_in(engine, YEAR)
    clock.day = date(YEAR, 3, 1)
    await _update(engine, created, 1, annualTurnover=SMALL_SALES, turnoverYear=YEAR)
    assert await _graduated_in(engine, YEAR) == (before[0] + 1, before[1] + 1)
    assert await _history(engine, "7799600000002") == [("MICRO", "PP7_2021"), ("SMALL", "PP7_2021")]


async def test_an_update_without_the_sales_year_is_a_correction(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Figures an update gives without their year: nothing tells them from a fix of the figures
    held, so the change is a correction, counted in no year."""
    clock.day = date(YEAR - 1, 12, 1)
    created = await _create(engine, "7799000000002", MICRO_SALES, turnoverYear=None)
    before = {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)}
    clock.day = date(YEAR, 3, 2)
    await _update(engine, created, 1, annualTurnover=SMALL_SALES)
    assert {year: await _graduated_in(engine, year) for year in (YEAR - 1, YEAR)} == before
    read = await run(engine, KALTENG, HISTORY, {"nib": "7799000000002"})
    assert [entry["turnoverYear"] for entry in read.data["msme"]["scaleHistory"]] == [None, None]
    assert await _history(engine, "7799000000002") == [
        ("MICRO", "PP7_2021"),
        ("SMALL", "PP7_2021/correction"),
    ]


async def test_an_import_correcting_a_years_figures_is_no_graduation(
    engine: AsyncEngine, clock: Clock
) -> None:
    """A file's row that changes a record's figures of the same year (a fix of a typing error
    in an earlier file): a correction, as an update's is."""
    clock.day = date(YEAR, 1, 5)
    row = _values("7799600000003", annualTurnover=MICRO_SALES, turnoverYear=YEAR)
    created = await run(engine, KALTENG, IMPORT, {"rows": [row]})
    assert created.errors is None, created.errors
    before = await _graduated_in(engine, YEAR)
    clock.day = date(YEAR, 1, 6)
    mistyped = await run(
        engine, KALTENG, IMPORT, {"rows": [{**row, "annualTurnover": SMALL_SALES}]}
    )
    assert mistyped.errors is None, mistyped.errors
    assert await _graduated_in(engine, YEAR) == before
    assert await _history(engine, "7799600000003") == [
        ("MICRO", "PP7_2021"),
        ("SMALL", "PP7_2021/correction"),
    ]


async def test_an_import_notes_the_year_of_the_sales_it_carries(
    engine: AsyncEngine, clock: Clock
) -> None:
    """A file's row carries its sales' year (`turnover_year`): the scale entry it writes is of
    that year, for a created record (read through its batch) and an updated one alike."""
    clock.day = date(YEAR, 1, 5)
    row = _values("7799000000003", annualTurnover=MICRO_SALES, turnoverYear=YEAR - 2)
    created = await run(engine, KALTENG, IMPORT, {"rows": [row]})
    assert created.errors is None, created.errors
    clock.day = date(YEAR, 1, 6)
    grown = {**row, "annualTurnover": SMALL_SALES, "turnoverYear": YEAR - 1}
    updated = await run(engine, KALTENG, IMPORT, {"rows": [grown]})
    assert updated.errors is None, updated.errors
    read = await run(engine, KALTENG, HISTORY, {"nib": "7799000000003"})
    assert read.errors is None, read.errors
    history = read.data["msme"]["scaleHistory"]
    assert [(entry["scale"], entry["turnoverYear"]) for entry in history] == [
        ("MICRO", YEAR - 2),
        ("SMALL", YEAR - 1),
    ]
    assert await _history(engine, "7799000000003") == [("MICRO", "PP7_2021"), ("SMALL", "PP7_2021")]


FIGURES = """{
  msmeFigures(groupBy: [SCALE], filter: {region: "62"}) { key { value } count }
  indicator(code: "UKM_PROPORSI") { targets { year jurisdiction { code } computedValue } }
}"""
SCALES = """
mutation Create($input: CreateMsmeInput!) {
  createMsme(input: $input) { id scale declaredScale version }
}"""
UPDATE = """
mutation Update($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { scale declaredScale version }
}"""
READ = """query Read($nib: String!) {
  msme(nib: $nib) { scale declaredScale scaleHistory { scale annualSales } }
}"""
IMPORT = """
mutation Import($rows: [MsmeImportRow!]!) {
  importMsmes(mode: ALL_OR_NOTHING, rows: $rows) { applied created updated errors { reason } }
}"""


async def _by_scale(engine: AsyncEngine) -> tuple[dict[str | None, int], float | None]:
    """Kalteng's MSMEs by scale (None: all), and its UKM_PROPORSI for YEAR: None while Kalteng
    has no MSME (a share of none is no number), as when the test runs first or alone."""
    result = await run(engine, KALTENG, FIGURES)
    assert result.errors is None, result.errors
    counts = {cell["key"][0]["value"]: cell["count"] for cell in result.data["msmeFigures"]}
    (share,) = [
        target["computedValue"]
        for target in result.data["indicator"]["targets"]
        if (target["year"], target["jurisdiction"]["code"]) == (YEAR, "62")
    ]
    return counts, None if share is None else float(share)


async def test_a_declared_scale_the_sales_contradict_is_kept_apart_and_not_counted(
    engine: AsyncEngine,
) -> None:
    """Declared micro (as its capital allows, the NIB's criterion) with Rp20 miliar of annual
    sales: the register, its figures and UKM_PROPORSI hold it medium, as eligibility does
    (Pasal 35(4)); the declaration stays readable as declaredScale."""
    before, _ = await _by_scale(engine)
    values = _values(
        "7780500000003", scale="MICRO", capital="900000000", annualTurnover="20000000000"
    )
    result = await run(engine, KALTENG, SCALES, {"input": values})
    assert result.errors is None, result.errors
    created = result.data["createMsme"]
    assert (created["scale"], created["declaredScale"]) == ("MEDIUM", "MICRO")
    read = (await run(engine, KALTENG, READ, {"nib": "7780500000003"})).data["msme"]
    assert read["scaleHistory"] == [{"scale": "MEDIUM", "annualSales": "20000000000"}]
    after, share = await _by_scale(engine)
    assert after["medium"] == before.get("medium", 0) + 1
    assert after.get("micro") == before.get("micro")
    assert after[None] == before.get(None, 0) + 1
    expected = 100 * (after.get("small", 0) + after["medium"]) / after[None]
    assert share is not None
    assert share == pytest.approx(expected, abs=0.005)  # published to two places


MSME_INDICATORS = """{
  msmes: indicator(code: "UMKM_JUMLAH") { targets { year jurisdiction { code } computedValue } }
  share: indicator(code: "UKM_PROPORSI") { targets { year jurisdiction { code } computedValue } }
}"""


async def test_large_enterprises_are_no_msmes(engine: AsyncEngine) -> None:
    """The register holds large enterprises too (over Rp50 miliar of annual sales), but they are
    outside the MSMEs (PP 7/2021): of 1 micro, 2 small and 3 large firms of a regency, UMKM_JUMLAH
    counts 3. UKM_PROPORSI is small and medium units of all business units, so 2 of 6, not 2 of
    the 3 MSMEs: a large enterprise lowers the share."""
    sales = ["240000000", "3000000000", "3000000000", *["60000000000"] * 3]
    scales = []
    for n, annual_turnover in enumerate(sales):
        values = _values(f"778550000000{n}", region=SUKAMARA, annualTurnover=annual_turnover)
        result = await run(engine, KALTENG, CREATE, {"input": values})
        assert result.errors is None, result.errors
        scales.append(result.data["createMsme"]["scale"])
    assert sorted(scales) == ["LARGE"] * 3 + ["MICRO"] + ["SMALL"] * 2
    result = await run(engine, KALTENG, MSME_INDICATORS)
    assert result.errors is None, result.errors
    values = {
        name: [
            target["computedValue"]
            for target in indicator["targets"]
            if (target["year"], target["jurisdiction"]["code"]) == (YEAR, SUKAMARA)
        ]
        for name, indicator in result.data.items()
    }
    assert values["msmes"] == ["3"]
    (share,) = values["share"]
    assert float(share) == pytest.approx(100 * 2 / 6, abs=0.01)


COOPERATIVE = """
mutation Create($input: CreateCooperativeInput!) { createCooperative(input: $input) { id } }
"""
VOLUME = """{
  indicator(code: "KOP_PRODUKSI_VOLUME") {
    targets { year jurisdiction { code } computedValue progress }
  }
}"""


async def test_the_production_volume_is_that_of_the_book_year(engine: AsyncEngine) -> None:
    """KOP_PRODUKSI_VOLUME is a flow: a year's target is met by the business volume of that
    book year. A producer whose latest figures are of an older book year adds nothing to it,
    nor does a cooperative of another type. A book year no producer's figures have reached yet
    has no volume (null, not 0: not known yet), nor progress towards its target."""
    for n, (kind, book_year, volume) in enumerate(
        [
            ("PRODUSEN", YEAR - 1, "4000000000"),
            ("PRODUSEN", YEAR - 2, "7000000000"),
            ("KONSUMEN", YEAR - 1, "3000000000"),
        ]
    ):
        fields = {
            "legalEntityNo": f"AHU-778700{n}.AH.01.26.TAHUN 2021",
            "name": f"Koperasi Uji Volume {n}",
            "type": kind,
            "region": SERUYAN,
            "businessVolume": volume,
            "bookYear": book_year,
        }
        result = await run(engine, KALTENG, COOPERATIVE, {"input": fields})
        assert result.errors is None, result.errors
    result = await run(engine, KALTENG, VOLUME)
    assert result.errors is None, result.errors
    by_year = {
        target["year"]: (target["computedValue"], target["progress"])
        for target in result.data["indicator"]["targets"]
        if target["jurisdiction"]["code"] == SERUYAN
    }
    assert by_year == {YEAR - 1: ("4000000000", "0.4"), YEAR: (None, None)}


async def test_updates_keep_the_declaration_and_compute_the_scale(engine: AsyncEngine) -> None:
    values = _values(
        "7780500000004", scale="MICRO", capital="900000000", annualTurnover="20000000000"
    )
    created = (await run(engine, KALTENG, SCALES, {"input": values})).data["createMsme"]
    renamed = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 1, "changes": {"name": "Usaha Uji Skala Baru"}},
    )
    assert renamed.errors is None, renamed.errors
    assert renamed.data["updateMsme"] == {"scale": "MEDIUM", "declaredScale": "MICRO", "version": 2}
    declared = await run(
        engine, KALTENG, UPDATE, {"id": created["id"], "version": 2, "changes": {"scale": "SMALL"}}
    )
    assert code_of(declared) == "BAD_USER_INPUT"  # small fits neither figure
    shrunk = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 2, "changes": {"annualTurnover": "1000000000"}},
    )
    assert shrunk.errors is None, shrunk.errors
    assert shrunk.data["updateMsme"] == {"scale": "MICRO", "declaredScale": None, "version": 3}


async def test_without_figures_the_declared_scale_is_the_registered_one(
    engine: AsyncEngine,
) -> None:
    values = _values("7780500000005", scale="SMALL", capital=None, turnoverYear=None)
    result = await run(engine, KALTENG, SCALES, {"input": values})
    assert result.errors is None, result.errors
    assert (result.data["createMsme"]["scale"], result.data["createMsme"]["declaredScale"]) == (
        "SMALL",
        "SMALL",
    )


async def test_a_record_without_figures_migrated_without_a_declaration_stays_writable(
    engine: AsyncEngine, module_reference_url: str
) -> None:
    """Migration 0037 leaves a record without figures as it was, its declared scale null (its
    scale was declared, as without figures it must be): a later write keeps that scale and
    names it as the declaration, rather than refusing the record for want of one."""
    values = _values("7780500000011", scale="SMALL", capital=None, turnoverYear=None)
    created = (await run(engine, KALTENG, SCALES, {"input": values})).data["createMsme"]
    owner = create_async_engine(async_url(module_reference_url))
    async with owner.begin() as connection:
        await connection.execute(
            text("UPDATE msmes SET declared_scale = NULL WHERE nib = '7780500000011'")
        )
    await owner.dispose()
    renamed = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 1, "changes": {"name": "Usaha Uji Skala Lama"}},
    )
    assert renamed.errors is None, renamed.errors
    assert renamed.data["updateMsme"] == {"scale": "SMALL", "declaredScale": "SMALL", "version": 2}


async def test_an_import_stores_the_scale_as_a_mutation_does(engine: AsyncEngine) -> None:
    """Created by the file, then updated by it: the figures decide the scale both times, the
    file's scale is the declaration."""
    row = _values("7780500000006", scale="MICRO", capital="900000000", annualTurnover="20000000000")
    created = await run(engine, KALTENG, IMPORT, {"rows": [row]})
    assert created.errors is None, created.errors
    assert created.data["importMsmes"]["created"] == 1
    read = (await run(engine, KALTENG, READ, {"nib": "7780500000006"})).data["msme"]
    assert (read["scale"], read["declaredScale"]) == ("MEDIUM", "MICRO")
    smaller = {**row, "annualTurnover": "3000000000", "scale": None}
    updated = await run(engine, KALTENG, IMPORT, {"rows": [smaller]})
    assert updated.data["importMsmes"]["updated"] == 1
    read = (await run(engine, KALTENG, READ, {"nib": "7780500000006"})).data["msme"]
    assert (read["scale"], read["declaredScale"]) == ("SMALL", None)


def code_of(result: Any) -> str:
    assert result.errors, result
    return str(result.errors[0].extensions["code"])


CHANGES = """query Read($nib: String!) {
  msme(nib: $nib) { declaredScale changes { operation fields { field before after } } }
}"""


async def test_a_report_the_declaration_no_longer_fits_clears_it_and_later_writes_pass(
    engine: AsyncEngine, clock: Clock
) -> None:
    """Declared small on Rp2 miliar of capital, then reported down to micro by both figures: the
    declaration, contradicted, is cleared by the report (a change in its history), so a rename,
    or an import row leaving the figures and the scale out, is not refused for it."""
    nib = "7732000000001"
    values = _values(nib, scale="SMALL", capital="2000000000")
    created = (await run(engine, KALTENG, SCALES, {"input": values})).data["createMsme"]
    assert (created["scale"], created["declaredScale"]) == ("SMALL", "SMALL")
    report = {
        "annualSales": "100000000",
        "capital": "100000000",
        "turnoverYear": 2025,
        "effectiveFrom": REGISTERED_ON.isoformat(),
    }
    reported = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert reported.errors is None, reported.errors
    assert reported.data["reportScaleChange"] == {"scale": "MICRO", "version": 2}
    read = (await run(engine, KALTENG, CHANGES, {"nib": nib})).data["msme"]
    assert read["declaredScale"] is None
    assert {"field": "declaredScale", "before": "small", "after": None} in read["changes"][-1][
        "fields"
    ]
    renamed = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": created["id"], "version": 2, "changes": {"name": "A renamed"}},
    )
    assert renamed.errors is None, renamed.errors
    assert renamed.data["updateMsme"] == {"scale": "MICRO", "declaredScale": None, "version": 3}
    row = {"nib": nib, "name": "A imported", "kbliCode": "10794", "region": "62.71"}
    imported = await run(engine, KALTENG, IMPORT, {"rows": [row]})
    assert imported.data["importMsmes"] == {
        "applied": True,
        "created": 0,
        "updated": 1,
        "errors": [],
    }


async def test_a_report_the_declaration_still_fits_keeps_it(
    engine: AsyncEngine, clock: Clock
) -> None:
    nib = "7732000000002"
    values = _values(nib, scale="SMALL", capital="2000000000")
    created = (await run(engine, KALTENG, SCALES, {"input": values})).data["createMsme"]
    report = {
        "annualSales": "100000000",
        "turnoverYear": 2025,
        "effectiveFrom": REGISTERED_ON.isoformat(),
    }
    reported = await run(
        engine, KALTENG, REPORT, {"id": created["id"], "version": 1, "report": report}
    )
    assert reported.data["reportScaleChange"] == {"scale": "MICRO", "version": 2}
    read = (await run(engine, KALTENG, READ, {"nib": nib})).data["msme"]
    assert read["declaredScale"] == "SMALL"  # the capital, Rp2 miliar, still supports it


async def test_an_update_sending_the_stored_figures_again_keeps_the_declaration(
    engine: AsyncEngine,
) -> None:
    """Only figures that differ from the stored ones clear the declaration: a client sending
    the record back whole changes nothing of it."""
    values = _values(
        "7733000000001", scale="SMALL", capital="2000000000", annualTurnover="100000000"
    )
    created = (await run(engine, KALTENG, SCALES, {"input": values})).data["createMsme"]
    assert (created["scale"], created["declaredScale"]) == ("MICRO", "SMALL")
    changes = {"name": "A2", "capital": "2000000000", "annualTurnover": "100000000"}
    resent = await run(
        engine, KALTENG, UPDATE, {"id": created["id"], "version": 1, "changes": changes}
    )
    assert resent.errors is None, resent.errors
    assert resent.data["updateMsme"] == {"scale": "MICRO", "declaredScale": "SMALL", "version": 2}


@pytest.mark.parametrize("year", [32768, 2_097_151, -32769])
async def test_a_year_beyond_a_smallint_has_no_graduates_rather_than_failing(
    engine: AsyncEngine, year: int
) -> None:
    """The year asked is compared with the stored years of sales (a smallint): one past what a
    smallint holds matches no business, as any year without graduates does (it failed to send)."""
    query = f'{{ graduations(year: {year}, groupBy: [FROM_SCALE], region: "62") {{ count }} }}'
    result = await run(engine, KALTENG, query)
    assert result.errors is None, result.errors
    assert [cell["count"] for cell in result.data["graduations"]] in ([], [0])
