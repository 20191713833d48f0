"""Two agencies update one record at the same moment over separate connections: one wins, the
other gets CONFLICT, and nothing is lost or half-written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run

PROVINCE = principal(OrgKind.PROVINCE, "62")
CITY = principal(OrgKind.REGENCY, "62.71")

CREATE = """
mutation($nib: String!) {
  createMsme(input: {nib: $nib, name: "Warung Rebutan", kbliCode: "47112", region: "62.71",
                     capital: "50000000", annualTurnover: "90000000"}) { id }
}
"""
UPDATE = """
mutation($id: ID!, $name: String!, $employees: Int!) {
  updateMsme(id: $id, version: 1, changes: {name: $name, employees: $employees}) {
    name employees version
  }
}
"""


@pytest.fixture(scope="module")
async def engines(reference_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines, so the two clients really hold two PostgreSQL connections."""
    first = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    second = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.mark.parametrize("attempt", range(5))
async def test_two_concurrent_updates_one_wins_the_other_gets_conflict(
    engines: tuple[AsyncEngine, AsyncEngine], attempt: int
) -> None:
    first, second = engines
    nib = f"777100000000{attempt}"
    created = await run(first, PROVINCE, CREATE, {"nib": nib})
    msme_id = created.data["createMsme"]["id"]

    results = await asyncio.gather(
        run(first, PROVINCE, UPDATE, {"id": msme_id, "name": "Versi Provinsi", "employees": 7}),
        run(second, CITY, UPDATE, {"id": msme_id, "name": "Versi Kota", "employees": 9}),
    )

    winners = [result for result in results if result.errors is None]
    losers = [result for result in results if result.errors is not None]
    assert len(winners) == 1
    assert len(losers) == 1
    assert losers[0].errors[0].extensions["code"] == "CONFLICT"
    assert losers[0].errors[0].extensions["currentVersion"] == 2
    won = winners[0].data["updateMsme"]
    async with first.connect() as connection:
        stored = (
            await connection.execute(
                text("SELECT id, name, employees, version FROM msmes WHERE nib = :nib"),
                {"nib": nib},
            )
        ).one()
        history = (
            await connection.execute(
                text(
                    "SELECT operation, version, changes FROM record_changes"
                    " WHERE record_kind = 'msme' AND record_id = :id ORDER BY id"
                ),
                {"id": stored.id},
            )
        ).all()
    # The winner's change is whole (both fields) and the loser's left no trace.
    assert (stored.name, stored.employees, stored.version) == (won["name"], won["employees"], 2)
    assert [(row.operation, row.version) for row in history] == [("create", 1), ("update", 2)]
    assert history[1].changes["name"] == {"before": "Warung Rebutan", "after": won["name"]}
