"""`sinergi targets load FILE.csv`: a planning document's targets and baselines into Sinergi.

A production database holds no targets until it loads its own (the demo's are the seeded
Kalimantan Tengah ones): a province or regency enters its RPJMD's, the ministry the RPJMN's, as
a CSV file of the columns of sinergi/seed_data/targets.csv, checked row by row as a reported
realisation is. Realisations are not loaded: clients report them (`reportRealisation`).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import TARGETS
from db.seed import (
    TARGET_COLUMNS,
    TargetsLoadRunning,
    lock_targets,
    read_targets,
    store_targets,
)
from domain.errors import InvalidValue
from sinergi.database import in_transaction
from sinergi.settings import Settings

_COMPARED = ("value", "qualifier", "year_inferred", "source")


def add_parsers(commands: Any) -> None:
    targets = commands.add_parser("targets", help="planning targets and baselines")
    actions = targets.add_subparsers(dest="targets_command", required=True)
    load = actions.add_parser(
        "load",
        help="load targets and baselines from a CSV file (see README)",
        description="Load targets and baselines from a CSV file: UTF-8, comma-separated, with "
        f"a header row. Columns: {', '.join(TARGET_COLUMNS)}, no others (qualifier and "
        "year_inferred may be left out: a row then keeps the stored ones). A row replaces the "
        "stored value of its indicator, jurisdiction, year and kind. Nothing is loaded if any "
        "row is refused (exit status 2, naming it).",
    )
    load.add_argument("file", type=Path, metavar="FILE")
    load.set_defaults(handler=_load)


def _load(args: argparse.Namespace, settings: Settings) -> int:
    path: Path = args.file
    if not path.is_file():
        raise InvalidValue(str(path), "no such file")

    async def work(connection: AsyncConnection) -> int:
        try:
            read = await read_targets(connection, path, realisations=False)
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise InvalidValue(str(path), f"cannot be read as UTF-8 CSV ({error})") from None
        await lock_targets(connection)
        stored = await _stored(connection, read.targets)
        found = [_change(row, stored) for row in read.targets]
        changes = Counter(change for change, _ in found)
        await store_targets(connection, read.targets)
        for row, (_, shown) in zip(read.targets, found, strict=True):
            print(
                f"{row['kind']} {row['indicator_code']} {row['jurisdiction']} {row['year']}: "
                f"{row['value']} ({shown})"
            )
        print(
            f"{path}: {len(read.targets)} rows: {changes['new']} new, {changes['changed']} "
            f"changed, {changes['unchanged']} unchanged"
        )
        return 0

    try:
        return in_transaction(settings, work)
    except TargetsLoadRunning:
        print(
            "sinergi targets load: another load of targets is running; run it again once that"
            " one has finished",
            file=sys.stderr,
        )
        return 1


Key = tuple[str, str, int, str]


async def _stored(
    connection: AsyncConnection, rows: list[dict[str, Any]]
) -> dict[Key, tuple[Any, ...]]:
    """The stored values of the rows' indicators, to tell what the load changes. Selected by
    indicator, not by each row's key: a ministry's RPJMN file holds tens of thousands of rows,
    and a condition naming each overflowed PostgreSQL's expression stack (and asyncpg's 32,767
    arguments); a file names a few indicators, and the rows it does not key cost no more."""
    codes = sorted({row["indicator_code"] for row in rows})
    if not codes:
        return {}
    key = (TARGETS.c.indicator_code, TARGETS.c.jurisdiction, TARGETS.c.year, TARGETS.c.kind)
    found = await connection.execute(
        select(*key, *(TARGETS.c[column] for column in _COMPARED)).where(
            TARGETS.c.indicator_code.in_(codes)
        )
    )
    return {tuple(row[:4]): tuple(row[4:]) for row in found}


def _key(row: dict[str, Any]) -> Key:
    return (row["indicator_code"], row["jurisdiction"], row["year"], row["kind"])


def _change(row: dict[str, Any], stored: dict[Key, tuple[Any, ...]]) -> tuple[str, str]:
    """new, unchanged or changed, and as printed: a change names each field it changes, from
    what to what, and the source of the figure it replaced, so an operator sees a load replaced
    the right document's figures (and can put one back). A column the file leaves out is kept
    as stored, so it changes nothing."""
    before = stored.get(_key(row))
    if before is None:
        return "new", "new"
    was = dict(zip(_COMPARED, before, strict=True))
    changed = [column for column in _COMPARED if column in row and row[column] != was[column]]
    if not changed:
        return "unchanged", "unchanged"
    named = ", ".join(
        f"{column} from {_shown(was[column])} to {_shown(row[column])}" for column in changed
    )
    document = "" if "source" in changed else f" ({was['source']})"
    return "changed", f"changed {named}{document}"


def _shown(value: Any) -> str:
    """A field as a targets file writes it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Decimal):
        # Fixed-point: the database hands a stored 222000000000 back as 2.220E+11, which the
        # loader refuses (a value is digits), so the operator could not copy it back.
        return format(value.normalize(), "f")
    return str(value)
