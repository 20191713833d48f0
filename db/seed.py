"""Load the reference data (regions, KBLI, agencies, programmes, indicators, targets) from CSV.

Every load is an upsert keyed on the natural key, so loading twice leaves the same data and a new
edition of a reference file updates names without touching the records that point at them. The
demo's targets and realisations are the exception: they fill only what nobody else has set, and
update only their own, a target told its own by its source (`_load_targets`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.errors import is_lock_timeout
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
from domain.csv_header import header_refusal
from domain.errors import InvalidValue, one_of
from domain.indicators import (
    PLANNING_LEVELS,
    TARGET_KINDS,
    validate_indicator_value,
    validate_qualifier,
    validate_report_jurisdiction,
    validate_target_year,
)
from domain.programmes import ProgrammeKind, ProgrammeSubjects
from domain.records import NOTE_MAX, validate_text
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
    targets, a production deployment loads its own (`sinergi targets load`).
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
                "subjects": one_of(
                    ProgrammeSubjects,
                    row["subjects"],
                    field=f"programmes.csv: {row['id']}: subjects",
                ),
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


TARGET_COLUMNS = (
    "indicator",
    "jurisdiction",
    "year",
    "kind",
    "value",
    "qualifier",
    "year_inferred",
    "source",
)
"""The columns of a targets file (sinergi/seed_data/targets.csv); `qualifier` and
`year_inferred` may be left out."""
_OPTIONAL_TARGET_COLUMNS = frozenset({"qualifier", "year_inferred"})
_TARGET_KEY = ("indicator_code", "jurisdiction", "year", "kind")
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
"""A value as a spreadsheet writes it: no sign, exponent, grouping ("1_000", "1,000") or other
digits, which Decimal would read."""
REALISATION = "realisation"
"""The seeded file's kind for a realisation a planning document reports."""


@dataclass(frozen=True, slots=True)
class TargetFile:
    targets: list[dict[str, Any]]
    """Rows of `targets`, one per (indicator, jurisdiction, year, kind)."""
    realisations: list[dict[str, Any]]


async def read_targets(
    connection: AsyncConnection, path: Path, *, realisations: bool
) -> TargetFile:
    """The rows of a targets file, each checked as a reported realisation is (docs/domain.md,
    Indicators) against the indicators and regions stored: the demo's and an operator's file
    alike. The first bad row is raised, named by its row (the header is row 1, as a
    spreadsheet shows it) and column. `realisations`: whether the file may hold them (the
    demo's does; anyone else's are reported by clients, `reportRealisation`)."""
    units = {row.code: row.unit for row in await connection.execute(select(INDICATORS))}
    planning = set(
        await connection.scalars(
            select(REGIONS.c.code).where(REGIONS.c.level.in_(sorted(PLANNING_LEVELS)))
        )
    )
    read = TargetFile([], [])
    seen: dict[tuple[Any, ...], int] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        refusal = header_refusal(
            header, _missing_target_columns, TARGET_COLUMNS, others_ignored=False
        )
        if refusal is not None:
            raise InvalidValue(str(path), refusal)
        left_out = _OPTIONAL_TARGET_COLUMNS.difference(header)
        for number, row in enumerate(reader, start=2):
            cells = {column: (row.get(column) or "").strip() for column in TARGET_COLUMNS}
            if not any(cells.values()) and not any(row.get(None) or ()):
                continue
            _check_fields(row, f"{path}: row {number}")
            checked = _target_row(
                cells, f"{path}: row {number}", units, planning, realisations=realisations
            )
            for column in left_out:
                del checked[column]
            if checked["kind"] == REALISATION:
                del checked["kind"]
                checked.pop("year_inferred", None)
                read.realisations.append({**checked, "reported_by": "seed"})
                continue
            key = tuple(checked[column] for column in _TARGET_KEY)
            if key in seen:
                raise InvalidValue(
                    f"{path}: row {number}",
                    f"sets the {key[3]} of {key[0]} for {key[1]} in {key[2]} again (row "
                    f"{seen[key]}): one value per indicator, jurisdiction, year and kind",
                )
            seen[key] = number
            read.targets.append(checked)
    return read


def _check_fields(row: Mapping[str | None, Any], where: str) -> None:
    """A row of as many fields as the header has columns. An unquoted decimal comma ("3,84",
    as Indonesian spreadsheets write 3.84) or comma in a source makes one more, which shifted
    the columns after it: a value of 3 loaded, with "84" for its source and the document's
    name dropped. A row cut short would clear its last cells."""
    if None in row:  # csv.DictReader's key for the fields past the header's columns
        raise InvalidValue(
            where,
            "more fields than the header (a decimal comma? write 3.84, not 3,84; a comma in "
            'the source? quote it: "RPJMD Kalteng, 2025-2029")',
        )
    if None in row.values():  # its value for the columns past a row's last field
        raise InvalidValue(
            where,
            "fewer fields than the header (a cell left out, or the line cut short; leave "
            "an empty cell for no value)",
        )


def _missing_target_columns(header: list[str]) -> list[str]:
    """The columns of a targets file a header lacks; qualifier and year_inferred may be."""
    return [c for c in TARGET_COLUMNS if c not in header and c not in _OPTIONAL_TARGET_COLUMNS]


def _target_row(
    cells: dict[str, str],
    where: str,
    units: Mapping[str, str | None],
    planning: set[str],
    *,
    realisations: bool,
) -> dict[str, Any]:
    indicator = cells["indicator"]
    if indicator not in units:
        raise InvalidValue(f"{where}: indicator", f"unknown indicator {indicator!r}")
    jurisdiction = validate_report_jurisdiction(
        cells["jurisdiction"], field=f"{where}: jurisdiction"
    )
    if jurisdiction not in planning:
        raise InvalidValue(f"{where}: jurisdiction", f"unknown region code {jurisdiction!r}")
    kinds = (*TARGET_KINDS, REALISATION) if realisations else TARGET_KINDS
    kind = cells["kind"]
    if kind == REALISATION and not realisations:
        raise InvalidValue(
            f"{where}: kind",
            "a realisation is not loaded from a file: the province or regency reports it "
            "(reportRealisation), and every report is kept",
        )
    if kind not in kinds:
        raise InvalidValue(f"{where}: kind", f"must be one of {', '.join(kinds)}, not {kind!r}")
    if not cells["year"].isascii() or not cells["year"].isdigit():
        raise InvalidValue(f"{where}: year", f"must be a year such as 2029, not {cells['year']!r}")
    year = validate_target_year(int(cells["year"]), field=f"{where}: year")
    if not _DECIMAL.fullmatch(cells["value"]):
        raise InvalidValue(
            f"{where}: value",
            f"must be digits, with '.' before any decimals (3.5), not {cells['value']!r}",
        )
    value = Decimal(cells["value"])
    if cells["year_inferred"] not in ("", "true", "false"):
        raise InvalidValue(f"{where}: year_inferred", "must be true, false or empty")
    qualifier = cells["qualifier"]
    return {
        "indicator_code": indicator,
        "jurisdiction": jurisdiction,
        "year": year,
        "kind": kind,
        "value": validate_indicator_value(value, units[indicator], field=f"{where}: value"),
        "qualifier": validate_qualifier(qualifier, field=f"{where}: qualifier")
        if qualifier
        else None,
        "year_inferred": cells["year_inferred"] == "true",
        "source": validate_text(cells["source"], field=f"{where}: source", max_length=NOTE_MAX),
    }


TARGETS_LOCK_WAIT = "5s"
"""How long a load waits for another to finish: long enough for an autovacuum holding the table
to be cancelled (after deadlock_timeout, 1 s by default), short of the command's 30 s
statement timeout."""


class TargetsLoadRunning(Exception):
    """Another transaction held the targets for longer than TARGETS_LOCK_WAIT: a load under
    way (`targets load`, or `demo-data`'s own)."""


async def lock_targets(connection: AsyncConnection) -> None:
    """Targets are loaded one load at a time, until the transaction ends: a load reads what is
    stored to report what it changes, and two loads reading at once both reported as new the
    rows one of them then replaced unsaid. Readers of targets are not held up. A load still
    under way after TARGETS_LOCK_WAIT raises TargetsLoadRunning: waiting on, the command ran
    into its statement timeout, a traceback."""
    await connection.execute(text(f"SET LOCAL lock_timeout = '{TARGETS_LOCK_WAIT}'"))
    try:
        await connection.execute(text(f"LOCK TABLE {TARGETS.name} IN SHARE ROW EXCLUSIVE MODE"))
    except DBAPIError as error:
        if is_lock_timeout(error):
            raise TargetsLoadRunning from None
        raise
    await connection.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


async def store_targets(connection: AsyncConnection, targets: Sequence[Mapping[str, Any]]) -> None:
    """Targets and baselines are upserted by (indicator, jurisdiction, year, kind): a revised
    planning document's file loaded again replaces the values it changes."""
    await upsert(connection, TARGETS, targets, _TARGET_KEY)


async def _load_targets(connection: AsyncConnection, path: Path) -> None:
    """The demo's targets and realisations, only where nothing else is stored: a database the
    demo joins (`demo-data --alongside-clients`) keeps the targets its operator loaded
    (`targets load`) and the realisations its provinces reported, which the demo's, noted now,
    would have replaced or read as the latest. Its own realisations are replaced, not
    duplicated; its own targets, stored (those whose source is the one its file gives them), are
    brought to its file's values, so that a new edition of it reaches a database it loaded
    before; inserted only where none was stored, they never did. A target is told the demo's by
    that source alone: one an operator loaded, quoting the same document in the same words, is
    taken for the demo's and brought to its values too (README, Command line)."""
    read = await read_targets(connection, path, realisations=True)
    if read.targets:
        statement = insert(TARGETS)
        columns = [column for column in read.targets[0] if column not in _TARGET_KEY]
        stored = tuple_(*(TARGETS.c[column] for column in columns))
        given = tuple_(*(statement.excluded[column] for column in columns))
        await connection.execute(
            statement.on_conflict_do_update(
                index_elements=list(_TARGET_KEY),
                set_={column: statement.excluded[column] for column in columns},
                where=(TARGETS.c.source == statement.excluded.source)
                & stored.is_distinct_from(given),
            ),
            read.targets,
        )
    await connection.execute(delete(REALISATIONS).where(REALISATIONS.c.reported_by == "seed"))
    reported = set(
        map(
            tuple,
            await connection.execute(
                select(
                    REALISATIONS.c.indicator_code, REALISATIONS.c.jurisdiction, REALISATIONS.c.year
                ).distinct()
            ),
        )
    )
    seeded = [
        row
        for row in read.realisations
        if (row["indicator_code"], row["jurisdiction"], row["year"]) not in reported
    ]
    if seeded:
        await connection.execute(REALISATIONS.insert(), seeded)
