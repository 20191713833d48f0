"""A ministry asks for many tables of one regency where a single business has employees and
turnover and fourteen others have none (NULL) or zero, spread over activity, scale, KBLI section
and founding year. Every shown cell holding the business sums the same contributions: that one
business's. Were a sum's noise keyed on every record of its cell, each such cell would be an
independent reading of the same sum; a sum's noise is 0.5 to 1.5 times its scale (for employees
below about 50, 3 to 7), so each reading rules out a band around itself, and a reviewer's
fifteen tables pinned the employees exactly and the turnover to 2 %. Keyed on the sum's
contributors, every such cell publishes one value: one reading, however many tables.
"""

from __future__ import annotations

import asyncio
from itertools import combinations
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.demo_data import release_figures
from tests.support.graphql import principal, run

MINISTRY = principal(OrgKind.MINISTRY, "ID")
DIMENSIONS = ("ACTIVE", "SCALE", "KBLI_SECTION", "ESTABLISHED_YEAR")
LONE = {"active": "true", "scale": "micro", "kbli_section": "C", "established_year": "2020"}
EMPLOYEES, TURNOVER = 4, 250_000_000
REGENCIES = {None: "62.01", 0: "62.02"}
"""A regency per kind of record that adds nothing (NULL values, zeros), no other MSME in it."""


def _companions() -> list[tuple[str, str, bool, int]]:
    """Fourteen businesses (scale, section, active, founding year) around the lone one's cell."""
    return [
        (
            "small" if i in (0, 1) else "micro",
            "G" if i in (2, 3, 4) else "C",
            i not in (5, 6, 7),
            2019 if i in (8, 9, 10, 11) else 2020,
        )
        for i in range(14)
    ]


async def _register(url: str) -> None:
    owner = create_engine(url, statement_timeout_ms=20_000)
    async with owner.begin() as connection:
        for companion, regency in REGENCIES.items():
            rows = [("micro", "C", True, 2020, EMPLOYEES, TURNOVER)]
            rows += [(*row, companion, companion) for row in _companions()]
            for n, (scale, section, active, year, employees, turnover) in enumerate(rows):
                await connection.execute(
                    text(
                        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale,"
                        " province_code, regency_code, established_on, annual_turnover,"
                        " employees, is_active) VALUES (:nib, :name, :kbli, :section, :scale,"
                        " :province, :regency, make_date(:year, 1, 1), :turnover, :employees,"
                        " :active)"
                    ),
                    {
                        "nib": f"5310{regency[-1]}{n:08d}",
                        "name": f"Usaha Sepi {regency} {n}",
                        "kbli": "10110" if section == "C" else "47111",
                        "section": section,
                        "scale": scale,
                        "province": regency[:2],
                        "regency": regency,
                        "year": year,
                        "turnover": turnover,
                        "employees": employees,
                        "active": active,
                    },
                )
    await owner.dispose()


@pytest.fixture(scope="module")
def released(module_reference_url: str) -> str:
    """The database with both regencies' businesses, released: what a ministry reads."""
    asyncio.run(_register(module_reference_url))
    release_figures(module_reference_url)
    return module_reference_url


async def _lone_cells(engine: AsyncEngine, regency: str) -> list[dict[str, Any]]:
    """Every shown cell holding the lone business, in every table of up to three dimensions."""
    shown = []
    for size in range(len(DIMENSIONS)):
        for group_by in combinations(DIMENSIONS, size):
            document = (
                f"{{ msmeFigures(groupBy: [{', '.join(group_by)}], "
                f'filter: {{region: "{regency}"}}) {{ key {{ dimension value }} suppressed '
                "count employeesSum turnoverSum turnoverAverage } }"
            )
            result = await run(engine, MINISTRY, document)
            assert result.errors is None, result.errors
            assert result.data is not None
            for cell in result.data["msmeFigures"]:
                holds = all(
                    part["value"] in (None, LONE[part["dimension"]]) for part in cell["key"]
                )
                if holds and not cell["suppressed"]:
                    shown.append(cell)
    return shown


def _employees_consistent(published: int) -> set[int]:
    """The employees a published sum of one small contribution may come from: the noise is
    3 to 7 either way (the floor of 5 units, times 0.5 to 1.5), a sum is never below zero."""
    if published == 0:
        return set(range(8))
    return {
        value
        for size in range(3, 8)
        for value in (published - size, published + size)
        if value >= 0
    }


@pytest.mark.parametrize("companion", [None, 0], ids=["null", "zero"])
async def test_records_adding_nothing_to_a_sum_give_no_new_reading_of_it(
    released: str, companion: int | None
) -> None:
    engine = create_engine(as_service(released), statement_timeout_ms=20_000)
    try:
        cells = await _lone_cells(engine, REGENCIES[companion])
    finally:
        await engine.dispose()
    assert len(cells) >= 20, "too few shown cells for the attack to mean anything"
    assert len({cell["employeesSum"] for cell in cells}) == 1, cells
    assert len({cell["turnoverSum"] for cell in cells}) == 1, cells
    if companion is None:  # the same records with a value: the average divides alike too
        assert len({cell["turnoverAverage"] for cell in cells}) == 1, cells
    # One reading leaves every value its band allows: the intersection pins nothing.
    candidates = set.intersection(*(_employees_consistent(c["employeesSum"]) for c in cells))
    assert EMPLOYEES in candidates
    assert len(candidates) > 1
