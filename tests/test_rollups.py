"""Rollups stay exact under writes: after seeded random inserts, upserts, COPY, updates that move
records between regions, scales and activity, deactivations and deletes, in single-row and
multi-row statements, every rollup cell (its count, sums, sums of squares and the sum of its
records' keys, which the cell-key method perturbs with) equals the same aggregate computed from
the records, and figures read from a rollup equal figures read from the records."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import date
from typing import Any

import asyncpg
import pytest
from sqlalchemy import ColumnElement, Numeric, Table, cast, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import create_engine
from db.migrate import upgrade
from db.models import COOPERATIVES, MSMES
from db.queries import aggregates, cooperatives, msmes
from db.queries.aggregates import Figures, Rollup
from db.queries.scoping import EVERYWHERE
from sinergi import demo
from tests.support.databases import with_database

SEED = 20_261_123
ROUNDS = 40
MSME_SCALES = ("micro", "small", "medium", "large")
COOPERATIVE_TYPES = ("produsen", "konsumen", "simpan_pinjam", "pemasaran", "jasa")
COOPERATIVE_STATUSES = ("active", "inactive", "dissolved")
# The record column(s) behind each rollup measure.
MSME_SOURCES = {
    "turnover": MSMES.c.annual_turnover,
    "capital": MSMES.c.capital,
    "employees": MSMES.c.employees,
}
COOPERATIVE_SOURCES = {
    "business_volume": COOPERATIVES.c.business_volume,
    "assets": COOPERATIVES.c.assets,
    "members": COOPERATIVES.c.members_male + COOPERATIVES.c.members_female,
}


async def _admin(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@pytest.fixture(scope="module")
def rollup_url(server_url: str) -> Iterator[str]:
    """A database of its own: these tests rewrite records at random."""
    name = f"sinergi_rollups_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
    url = with_database(server_url, name)
    upgrade(url)
    yield url
    asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
async def engine(rollup_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(rollup_url, statement_timeout_ms=60_000)
    async with engine.begin() as connection:
        await demo.load(connection, msmes=400, seed=3)
    yield engine
    await engine.dispose()


class Writer:
    """Random writes, each one SQL statement, drawn from a seeded generator."""

    def __init__(self, connection: AsyncConnection, rng: random.Random, regencies: list[str]):
        self.connection = connection
        self.rng = rng
        self.regencies = regencies
        self.serial = itertools.count(1)

    async def ids(self, table: str, most: int, where: str = "true") -> list[int]:
        rows = await self.connection.execute(
            text(f"SELECT id FROM {table} k WHERE {where} ORDER BY id")  # noqa: S608
        )
        ids = [row[0] for row in rows]
        return self.rng.sample(ids, min(len(ids), self.rng.randint(1, most)))

    def maybe(self, value: Any) -> Any:
        return None if self.rng.random() < 0.2 else value

    def msme(self) -> dict[str, Any]:
        rng, regency = self.rng, self.rng.choice(self.regencies)
        return {
            "nib": f"5{next(self.serial):012d}",
            "name": "Usaha Acak",
            "kbli_code": "10794",
            "kbli_section": rng.choice("ACGI"),
            "scale": rng.choice(MSME_SCALES),
            "province_code": regency[:2],
            "regency_code": regency,
            "district_code": None,
            "established_on": self.maybe(date(rng.randint(1995, 2025), 1 + rng.randint(0, 11), 1)),
            "capital": self.maybe(rng.randint(0, 10**10)),
            "annual_turnover": self.maybe(rng.randint(0, 10**11)),
            "employees": self.maybe(rng.randint(0, 40)),
            "is_active": rng.random() < 0.8,
        }

    def cooperative(self) -> dict[str, Any]:
        rng, regency = self.rng, self.rng.choice(self.regencies)
        return {
            "legal_entity_no": f"AHU-5{next(self.serial):09d}",
            "name": "Koperasi Acak",
            "type": rng.choice(COOPERATIVE_TYPES),
            "province_code": regency[:2],
            "regency_code": regency,
            "district_code": None,
            "members_male": rng.randint(0, 300),
            "members_female": rng.randint(0, 300),
            "business_volume": rng.randint(0, 10**10),
            "assets": rng.randint(0, 10**10),
            "book_year": self.maybe(rng.randint(2019, 2025)),
            "status": rng.choice(COOPERATIVE_STATUSES),
        }

    async def insert_msmes(self) -> None:
        rows = [self.msme() for _ in range(self.rng.choice((1, 1, 5, 30)))]
        await self.connection.execute(MSMES.insert(), rows)

    async def upsert_msmes(self) -> None:
        """The import path: INSERT .. ON CONFLICT DO UPDATE, new and existing NIBs mixed."""
        nibs = await self.connection.execute(
            text("SELECT nib FROM msmes WHERE nib IS NOT NULL ORDER BY nib")
        )
        existing = self.rng.sample([row[0] for row in nibs], 5)
        rows = [self.msme() for _ in range(10)]
        for row, nib in zip(rows, existing, strict=False):
            row["nib"] = nib
        statement = insert(MSMES).values(rows)
        updates = {name: statement.excluded[name] for name in rows[0] if name != "nib"}
        await self.connection.execute(
            statement.on_conflict_do_update(index_elements=["nib"], set_=updates)
        )

    async def copy_msmes(self) -> None:
        rows = [self.msme() for _ in range(self.rng.randint(1, 50))]
        raw = await self.connection.get_raw_connection()
        driver: Any = raw.driver_connection
        await driver.copy_records_to_table(
            "msmes", records=[tuple(row.values()) for row in rows], columns=list(rows[0])
        )

    async def move_msmes(self) -> None:
        """Each chosen record gets its own new region, scale, activity, year and turnover."""
        ids = await self.ids("msmes", 25)
        changes = [{"id": msme_id, **self.msme()} for msme_id in ids]
        await self.connection.execute(
            text(
                "UPDATE msmes m SET province_code = c.province_code, regency_code = c.regency_code,"
                " district_code = NULL, scale = c.scale, is_active = c.is_active,"
                " kbli_section = c.kbli_section, established_on = c.established_on,"
                " annual_turnover = c.annual_turnover, capital = c.capital,"
                " employees = c.employees"
                " FROM jsonb_to_recordset(CAST(:changes AS jsonb)) AS c(id bigint,"
                " province_code text, regency_code text, scale text, is_active boolean,"
                " kbli_section text, established_on date, annual_turnover bigint,"
                " capital bigint, employees int) WHERE m.id = c.id"
            ),
            {"changes": _json(changes)},
        )

    async def deactivate_msmes(self) -> None:
        ids = await self.ids("msmes", 20)
        active = self.rng.random() < 0.3
        await self.connection.execute(
            text("UPDATE msmes SET is_active = :active WHERE id = ANY(:ids)"),
            {"active": active, "ids": ids},
        )

    async def rename_msmes(self) -> None:
        ids = await self.ids("msmes", 20)
        await self.connection.execute(
            text("UPDATE msmes SET name = name || '.' WHERE id = ANY(:ids)"), {"ids": ids}
        )

    async def delete_msmes(self) -> None:
        ids = await self.ids("msmes", self.rng.choice((1, 8)))
        await self.connection.execute(text("DELETE FROM msmes WHERE id = ANY(:ids)"), {"ids": ids})

    async def insert_cooperatives(self) -> None:
        rows = [self.cooperative() for _ in range(self.rng.choice((1, 6)))]
        await self.connection.execute(COOPERATIVES.insert(), rows)

    async def move_cooperatives(self) -> None:
        ids = await self.ids("cooperatives", 10)
        changes = [{"id": cooperative_id, **self.cooperative()} for cooperative_id in ids]
        await self.connection.execute(
            text(
                "UPDATE cooperatives k SET province_code = c.province_code,"
                " regency_code = c.regency_code, district_code = NULL, type = c.type,"
                " status = c.status, book_year = c.book_year, assets = c.assets,"
                " business_volume = c.business_volume, members_male = c.members_male"
                " FROM jsonb_to_recordset(CAST(:changes AS jsonb)) AS c(id bigint,"
                " province_code text, regency_code text, type text, status text,"
                " book_year smallint, assets bigint, business_volume bigint, members_male int)"
                " WHERE k.id = c.id"
            ),
            {"changes": _json(changes)},
        )

    async def delete_cooperatives(self) -> None:
        """Only cooperatives nothing points at (members and participations keep the others)."""
        unused = (
            "NOT EXISTS (SELECT FROM msmes WHERE cooperative_id = k.id) AND NOT EXISTS"
            " (SELECT FROM participations WHERE cooperative_id = k.id)"
        )
        ids = await self.ids("cooperatives", self.rng.choice((1, 4)), unused)
        await self.connection.execute(
            text("DELETE FROM cooperatives WHERE id = ANY(:ids)"), {"ids": ids}
        )


def _json(rows: Sequence[dict[str, Any]]) -> str:
    return json.dumps(rows, default=str)


def _direct(rollup: Rollup, base: Table, dimensions: dict[str, ColumnElement[Any]]) -> Any:
    """The rollup's cells computed from the records, in the rollup's column order: the count,
    the record keys' sum, and per measure its non-NULL count, sum and sum of squares, and the
    key sums of its contributors and of the records with a value."""
    keys = [dimensions[name] for name in rollup.dimensions]
    sources = MSME_SOURCES if base is MSMES else COOPERATIVE_SOURCES
    measures: list[ColumnElement[Any]] = []
    for column in rollup.table.c:
        name = column.name
        if column in rollup.dimensions.values():
            continue
        if name == "n":
            measures.append(func.count())
        elif name == "cell_key_sum":
            measures.append(func.coalesce(func.sum(base.c.cell_key), 0))
        elif name.endswith("_valued_key_sum"):
            source = sources[name.removesuffix("_valued_key_sum")]
            measures.append(func.coalesce(func.sum(base.c.cell_key).filter(source.isnot(None)), 0))
        elif name.endswith("_key_sum"):  # its contributors: a value neither NULL nor 0
            source = sources[name.removesuffix("_key_sum")]
            contributes = source.isnot(None) & (source != 0)
            measures.append(func.coalesce(func.sum(base.c.cell_key).filter(contributes), 0))
        elif name.endswith("_n"):
            measures.append(func.count(sources[name.removesuffix("_n")]))
        elif name.endswith("_sum"):
            measures.append(func.coalesce(func.sum(sources[name.removesuffix("_sum")]), 0))
        else:
            source = sources[name.removesuffix("_squares")]
            measures.append(func.coalesce(func.sum(cast(source, Numeric) * source), 0))
    return select(*keys, *measures).group_by(*keys)


def _stored(rollup: Rollup) -> Any:
    keys = list(rollup.dimensions.values())
    rest = [column for column in rollup.table.c if column not in keys]
    return select(*keys, *rest)


async def _cells(connection: AsyncConnection, statement: Any) -> set[tuple[Any, ...]]:
    return {tuple(row) for row in await connection.execute(statement)}


async def _assert_rollups_exact(connection: AsyncConnection) -> None:
    for rollups, base, dimensions in (
        (aggregates.MSME_ROLLUPS, MSMES, aggregates.MSME_DIMENSIONS),
        (
            aggregates.COOPERATIVE_ROLLUPS,
            COOPERATIVES,
            aggregates.COOPERATIVE_DIMENSIONS,
        ),
    ):
        for rollup in rollups:
            stored = await _cells(connection, _stored(rollup))
            direct = await _cells(connection, _direct(rollup, base, dict(dimensions)))
            assert stored == direct, (
                f"{rollup.table.name}: only stored {sorted(stored - direct, key=str)[:3]}, "
                f"only direct {sorted(direct - stored, key=str)[:3]}"
            )
    await connection.rollback()


async def _regencies(connection: AsyncConnection) -> list[str]:
    rows = await connection.execute(
        text("SELECT code FROM regions WHERE level IN ('regency', 'city') ORDER BY code LIMIT 6")
    )
    return [row[0] for row in rows]


async def test_every_rollup_cell_equals_the_aggregate_of_the_records_after_random_writes(
    engine: AsyncEngine,
) -> None:
    rng = random.Random(SEED)
    async with engine.connect() as connection:
        await _assert_rollups_exact(connection)
        writer = Writer(connection, rng, await _regencies(connection))
        await connection.rollback()
        operations = [
            writer.insert_msmes,
            writer.upsert_msmes,
            writer.copy_msmes,
            writer.move_msmes,
            writer.deactivate_msmes,
            writer.rename_msmes,
            writer.delete_msmes,
            writer.insert_cooperatives,
            writer.move_cooperatives,
            writer.delete_cooperatives,
        ]
        for round_ in range(ROUNDS):
            transaction = await connection.begin()
            for _ in range(rng.randint(1, 4)):
                await rng.choice(operations)()
            if round_ % 7 == 3:
                await transaction.rollback()
            else:
                await transaction.commit()
            if round_ % 10 == 9:
                await _assert_rollups_exact(connection)
        await _assert_rollups_exact(connection)
        empty = await connection.execute(text("SELECT count(*) FROM msme_rollup_regency_kbli"))
        assert empty.scalar_one() > 0


def _answers(rows: Sequence[aggregates.GroupRow]) -> dict[Any, Any]:
    """Cells by key, each measure with its Python type (a bigint must not come back numeric)."""
    return {
        row.key: {name: (value, type(value)) for name, value in row.measures.items()}
        for row in rows
    }


MSME_CASES = [
    *[
        (list(group), msmes.MsmeFilter())
        for n in (0, 1, 2)
        for group in itertools.permutations(aggregates.MSME_DIMENSIONS, n)
    ],
    (["province", "scale", "active"], msmes.MsmeFilter(region="62")),
    (["regency", "kbli_section"], msmes.MsmeFilter(region="62", scale="micro")),
    (["established_year"], msmes.MsmeFilter(region="61", active=True, kbli_section="C")),
    (["scale"], msmes.MsmeFilter(region="62.71")),
]
COOPERATIVE_CASES = [
    *[
        (list(group), cooperatives.CooperativeFilter())
        for n in (0, 1, 2, 3)
        for group in itertools.combinations(aggregates.COOPERATIVE_DIMENSIONS, n)
    ],
    (["type", "status"], cooperatives.CooperativeFilter(region="62", active=True)),
    (["book_year"], cooperatives.CooperativeFilter(region="62.71", type="produsen", active=False)),
]


async def test_figures_from_rollups_equal_figures_from_the_records(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        from_rollups = 0
        for group_by, where in MSME_CASES:
            figures = aggregates.msme_figures(where, group_by)
            records = Figures(
                MSMES,
                aggregates.MSME_DIMENSIONS,
                aggregates.MSME_MEASURES,
                msmes.conditions(EVERYWHERE, where),
            )
            from_rollups += figures.source is not MSMES
            expected = _answers(await aggregates.grouped(connection, records, group_by=group_by))
            got = _answers(await aggregates.grouped(connection, figures, group_by=group_by))
            assert got == expected, (group_by, where)
        for cooperative_group, cooperative_where in COOPERATIVE_CASES:
            figures = aggregates.cooperative_figures(cooperative_where, cooperative_group)
            records = Figures(
                COOPERATIVES,
                aggregates.COOPERATIVE_DIMENSIONS,
                aggregates.COOPERATIVE_MEASURES,
                cooperatives.conditions(EVERYWHERE, cooperative_where),
            )
            assert figures.source is not COOPERATIVES
            expected = _answers(
                await aggregates.grouped(connection, records, group_by=cooperative_group)
            )
            got = _answers(
                await aggregates.grouped(connection, figures, group_by=cooperative_group)
            )
            assert got == expected, (cooperative_group, cooperative_where)
    # In no rollup: regency x year and KBLI x year (both orders), and years filtered by KBLI.
    assert from_rollups == len(MSME_CASES) - 5


def test_filters_no_rollup_can_answer_read_the_records() -> None:
    for where in (
        msmes.MsmeFilter(programme="KUR"),
        msmes.MsmeFilter(cooperative_id=1),
        msmes.MsmeFilter(region="62.71.01"),
    ):
        assert aggregates.msme_figures(where, ["scale"]).source is MSMES
    programme = cooperatives.CooperativeFilter(programme="KUR")
    figures = aggregates.cooperative_figures(programme, ["type"])
    assert figures.source is COOPERATIVES
    national = aggregates.msme_figures(msmes.MsmeFilter(), ["province", "scale"])
    assert national.source is aggregates.MSME_ROLLUPS[0].table
