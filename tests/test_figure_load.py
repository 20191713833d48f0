"""What one request's figure tables may take of the server: their connections one at a time,
and no more cells than FIGURE_CELLS_READ read. Four aliased tables of 6,000 cells each held four
pooled connections at once (another client's read then waited out the pool timeout), and the
guard's estimate capped what a table cost, not what it read."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from db.queries import aggregates
from resolvers import aggregates as figure_tables
from schema.limits import KBLI_SECTIONS, REGIONS
from sinergi.settings import Settings
from tests.support.http import Api, served

ANALYST = "demo-jamkrida-62"
TABLES = ("[PROVINCE]", "[SCALE]", "[ACTIVE]", "[PROVINCE, ACTIVE]")


@pytest.fixture(scope="module")
def uncached(demo_url: str, api: Api) -> Iterator[Api]:
    """The app with no figure cache: every table is read (`api` has registered the demo
    clients)."""
    with served(demo_url, Settings(rate_limit=1_000_000, figures_cache_seconds=0)) as api:
        yield api


def test_a_requests_figure_tables_hold_one_connection_at_a_time(
    uncached: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    reading, most = 0, 0
    grouped = aggregates.grouped

    async def counted(*args: Any, **kwargs: Any) -> list[aggregates.GroupRow]:
        nonlocal reading, most
        reading += 1
        most = max(most, reading)
        try:
            await asyncio.sleep(0)  # the others, were they running at once, start meanwhile
            return await grouped(*args, **kwargs)
        finally:
            reading -= 1

    monkeypatch.setattr(aggregates, "grouped", counted)
    query = (
        "{ "
        + " ".join(
            f"t{index}: msmeFigures(groupBy: {group_by}) {{ count }}"
            for index, group_by in enumerate(TABLES)
        )
        + " }"
    )
    answer = uncached.graphql(query, ANALYST)
    assert "errors" not in answer
    assert all(answer["data"][f"t{index}"] for index in range(len(TABLES)))
    assert most == 1


def test_a_table_of_more_cells_than_the_limit_is_refused_naming_it(
    uncached: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate lets it run (it is within FIGURE_ROWS as costed); what it reads is not, and
    the refusal says how to ask for less."""
    monkeypatch.setattr(figure_tables, "FIGURE_CELLS_READ", 3)
    query = "{ msmeFigures(groupBy: [PROVINCE, ACTIVE]) { count } }"
    (error,) = uncached.graphql(query, ANALYST)["errors"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "figure rows",
        "maximum": 3,
        "actual": 4,
    }
    assert "filter it to a province" in error["message"]
    small = uncached.graphql("{ msmeFigures(groupBy: [ACTIVE]) { count } }", ANALYST)
    assert "errors" not in small


def test_a_table_may_read_more_cells_than_it_is_costed_at(
    uncached: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The estimate is capped at FIGURE_ROWS, but a national table of regencies by section
    reads up to (514 + 1) × (21 + 1) = 11,330 cells with its subtotals: read against that cap,
    it was refused though its two dimensions are a legitimate table. Here the cap is made
    smaller than a table that must still be served."""
    assert (REGIONS["REGENCY"] + 1) * (KBLI_SECTIONS + 1) < figure_tables.FIGURE_CELLS_READ
    monkeypatch.setattr(figure_tables, "FIGURE_ROWS", 3)
    answer = uncached.graphql("{ msmeFigures(groupBy: [PROVINCE, ACTIVE]) { count } }", ANALYST)
    assert "errors" not in answer
    assert len(answer["data"]["msmeFigures"]) > 3
