"""Load the reference data (regions, KBLI, agencies, programmes, indicators, targets) from CSV.

Every load is an upsert keyed on the natural key, so loading twice leaves the same data and a new
edition of a reference file updates names without touching the records that point at them.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    AGENCIES,
    INDICATORS,
    KBLI_CODES,
    KBLI_SECTIONS,
    PROGRAMMES,
    REALISATIONS,
    REGIONS,
    TARGETS,
)
from db.queries.eligibility import sync_rulesets
from domain.errors import one_of
from domain.programmes import ProgrammeKind
from domain.ruleset import BUNDLED_RULESETS, load_rulesets

NATIONAL = {"code": "ID", "level": "national", "name": "Indonesia", "parent_code": None}


def read_csv(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _partial_date(raw: str) -> date | None:
    """Programme start dates come as "2023", "2023-01" or "2023-01-30"; keep the first day."""
    if not raw:
        return None
    parts = [int(part) for part in raw.split("-")] + [1, 1]
    return date(parts[0], parts[1], parts[2])


async def upsert(
    connection: AsyncConnection, table: Table, rows: Sequence[Mapping[str, Any]], key: Sequence[str]
) -> None:
    """Rows whose values are already stored are left alone: every command loads the reference
    data, and rewriting identical rows left a dead copy of each (8,000 regions) per start.
    They are left out before they are sent, too: reading the table is a tenth of sending its
    8,000 rows to be compared (0.3 s of every command's start)."""
    if not rows:
        return
    names = list(rows[0])
    stored_rows = set(
        map(tuple, await connection.execute(select(*(table.c[name] for name in names))))
    )
    rows = [row for row in rows if tuple(row[name] for name in names) not in stored_rows]
    if not rows:
        return
    statement = insert(table)
    columns = [column for column in rows[0] if column not in key]
    stored = tuple_(*(table.c[column] for column in columns))
    given = tuple_(*(statement.excluded[column] for column in columns))
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(key),
            set_={column: statement.excluded[column] for column in columns},
            where=stored.is_distinct_from(given),
        ),
        list(rows),
    )


def _region_rows(directory: Path) -> list[dict[str, str | None]]:
    rows: list[dict[str, str | None]] = [NATIONAL]
    for row in read_csv(directory / "regions.csv"):
        rows.append(
            {
                "code": row["code"],
                "level": row["level"],
                "name": row["name"],
                "parent_code": row["parent_code"] or "ID",
            }
        )
    for row in read_csv(directory / "districts.csv"):
        rows.append(
            {
                "code": row["code"],
                "level": "district",
                "name": row["name"],
                "parent_code": row["parent_code"],
            }
        )
    return rows


async def load_reference(
    connection: AsyncConnection, directory: Path, *, targets: bool = True
) -> None:
    """Load every reference file in `directory` (the layout of sinergi/seed_data).

    Targets are planning data rather than reference: demo mode loads the seeded Kalimantan Tengah
    targets, a production deployment reports its own.
    """
    await upsert(connection, REGIONS, _region_rows(directory), ["code"])
    await upsert(
        connection,
        KBLI_SECTIONS,
        [
            {
                "section": row["section"],
                "title": row["title"],
                "first_division": int(row["first_division"]),
                "last_division": int(row["last_division"]),
            }
            for row in read_csv(directory / "kbli-sections.csv")
        ],
        ["section"],
    )
    await upsert(connection, KBLI_CODES, list(read_csv(directory / "kbli-codes.csv")), ["code"])
    await upsert(connection, AGENCIES, list(read_csv(directory / "agencies.csv")), ["id"])
    await upsert(
        connection,
        PROGRAMMES,
        [
            {
                "id": row["id"],
                "name": row["name"],
                "kind": one_of(
                    ProgrammeKind, row["kind"], field=f"programmes.csv: {row['id']}: kind"
                ),
                "owner_agency_id": row["owner_agency"] or None,
                "legal_basis": row["legal_basis"] or None,
                "jurisdiction": row["jurisdiction"],
                "starts_on": _partial_date(row["start"]),
            }
            for row in read_csv(directory / "programmes.csv")
        ],
        ["id"],
    )
    await upsert(
        connection,
        INDICATORS,
        [
            {
                **row,
                "higher_is_better": row["higher_is_better"] == "true",
                "computable_from_records": row["computable_from_records"] == "true",
            }
            for row in read_csv(directory / "indicators.csv")
        ],
        ["code"],
    )
    await sync_rulesets(connection, load_rulesets(BUNDLED_RULESETS))
    if targets:
        await _load_targets(connection, directory / "targets.csv")


async def _load_targets(connection: AsyncConnection, path: Path) -> None:
    """Targets and baselines are upserted; seeded realisations are replaced, not duplicated."""
    targets: list[dict[str, Any]] = []
    realisations: list[dict[str, Any]] = []
    for row in read_csv(path):
        common = {
            "indicator_code": row["indicator"],
            "jurisdiction": row["jurisdiction"],
            "year": int(row["year"]),
            "value": Decimal(row["value"]),
            "qualifier": row["qualifier"] or None,
            "source": row["source"],
        }
        if row["kind"] == "realisation":
            realisations.append({**common, "reported_by": "seed"})
        else:
            targets.append(
                {**common, "kind": row["kind"], "year_inferred": row["year_inferred"] == "true"}
            )
    await upsert(connection, TARGETS, targets, ["indicator_code", "jurisdiction", "year", "kind"])
    await connection.execute(delete(REALISATIONS).where(REALISATIONS.c.reported_by == "seed"))
    await connection.execute(REALISATIONS.insert(), realisations)
