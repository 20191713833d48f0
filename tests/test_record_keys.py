"""Record keys (the cell-key method's secret) are drawn once, kept, and never shown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from domain.cellkey import MODULUS
from schema.build import sdl
from tests.support.databases import as_service
from tests.support.graphql import run
from tests.test_record_mutations import KALTENG, READ, UPDATE, create

NIB = "7719000000001"


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(reference_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _scalars(value: Any) -> set[str]:
    """Every scalar in a JSON-like value, as text."""
    if isinstance(value, dict):
        return set().union(*map(_scalars, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_scalars, value)) if value else set()
    return {str(value)}


async def _key(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT cell_key FROM msmes WHERE nib = :nib"), {"nib": NIB}
        )
        return int(found.scalar_one())


def test_no_field_of_the_schema_holds_a_record_key() -> None:
    printed = sdl().lower()
    assert "cellkey" not in printed
    assert "cell_key" not in printed


async def test_a_new_record_gets_a_random_key_that_writes_keep_and_no_answer_shows(
    engine: AsyncEngine,
) -> None:
    created = await create(engine, NIB)
    assert created.errors is None, created.errors
    key = await _key(engine)
    assert 0 <= key < MODULUS
    record = created.data["createMsme"]
    changes = {"name": "Keripik Kelakai Baru", "annualTurnover": "480000000"}
    updated = await run(
        engine, KALTENG, UPDATE, {"id": record["id"], "version": 1, "changes": changes}
    )
    assert updated.errors is None, updated.errors
    assert await _key(engine) == key, "the key is permanent"
    read = await run(engine, KALTENG, READ, {"nib": NIB})
    assert read.errors is None, read.errors
    assert str(key) not in _scalars(read.data)
    fields = {f["field"] for change in read.data["msme"]["changes"] for f in change["fields"]}
    assert fields
    assert not any("key" in field.lower() for field in fields)
    async with engine.connect() as connection:
        history = await connection.execute(
            text(
                "SELECT changes FROM record_changes WHERE record_kind = 'msme' AND record_id = :id"
            ),
            {"id": int(record["id"])},
        )
        stored = [row[0] for row in history]
    assert stored
    assert not any("cell_key" in changes for changes in stored)
    assert str(key) not in _scalars(stored)
    async with engine.connect() as connection:
        keys = await connection.execute(
            text("SELECT count(DISTINCT cell_key), count(*) FROM msmes")
        )
        distinct, total = keys.one()
    assert distinct == total, "every record draws its own key"
