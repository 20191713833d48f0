"""Bulk MSME import, shared by the `importMsmes` mutation and `sinergi import msmes`.

The path is PostgreSQL's bulk one: rows are checked in Python (identifiers, scale, NIBs not
repeated in the file), then, a chunk at a time, against the database: the records their NIBs
name are looked up and locked in one statement, and the regions and the records' jurisdiction
are checked as sets against that and the region table (loaded once), as is, in one more
statement for the rows that move a record, that no record leaves the region of a programme it
takes part in. The chunk's new records without an owner are COPYed straight into the register,
their change history noted per run of ids (migrations 0015 and 0016); the others are COPYed
into a temporary staging table and written set-based: one UPDATE for the records the file
changes and one INSERT for those it creates with an owner, each writing its change history in
the same statement, then owners and scale history.
A chunk is written while Python checks the next, so both cores work. Everything runs in the
caller's transaction, so a failure or a killed process leaves the database as it was.

Idempotent: only rows whose values differ are written, so importing a file twice changes
nothing the second time (no version bump, no history row).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import REGIONS
from db.queries.scoping import RowScope
from db.writes import msmes, participations, vocabulary
from db.writes.history import Actor
from domain.errors import InvalidValue
from domain.identifiers import issued_within
from domain.personal import OWNER_COLUMNS, OWNER_FIELDS
from domain.records import CheckedMsme, MsmeDraft, Vocabulary, check_msme
from domain.register_csv import as_stored
from domain.scale import RULE_VERSION

CHUNK = 10_000
"""Rows per COPY and per set of write statements, at most. (20,000 measured no faster: an import
of 100,000 rows took 3.04 s against 2.95, alternating.)"""
FIRST_CHUNK = 1_000
"""The first chunk is smaller, and each next one twice the last until CHUNK: PostgreSQL starts
writing while Python checks the rest, and is kept busy from then on. (A first chunk of 1,000
followed at once by 10,000 left PostgreSQL idle while Python checked those: a tenth of a
second of every import.)"""
REPORT_EVERY = 1_000
"""Rows between progress reports (a progress bar's update costs as much as checking a row)."""
YIELD_EVERY = 25
"""Rows checked between turns of the chunk being written: each of its statements and each part
of its COPY waits for a turn, so PostgreSQL idles while Python checks (every 250 rows left it
idle a fifth of the time)."""
WORK_MEM = "64MB"

Progress = Callable[[str, int, int], None]
"""(stage, done, total): "check" per row read, "load" per chunk copied, "write" once at the end."""
Namer = Callable[[str], str]


class Mode(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


class Problem(StrEnum):
    """What kind of problem a row error is: what a single write refusing the same thing raises
    (domain.errors InvalidValue, db.writes Duplicate, a place outside the jurisdiction), so the
    import's callers answer it with that write's code (resolvers/imports.py `row_code`)."""

    INVALID = "invalid"
    """A value breaks a rule, or the rows contradict each other: fix the row."""
    TAKEN = "taken"
    """The NIB is registered to a record the writer may not change (another jurisdiction's)."""
    OUTSIDE = "outside"
    """The row would put a record outside the writer's jurisdiction."""


@dataclass(frozen=True, slots=True, order=True)
class RowError:
    row: int
    field: str
    reason: str
    problem: Problem


@dataclass(frozen=True, slots=True)
class Report:
    received: int
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    applied: bool = False
    errors: list[RowError] = field(default_factory=list)
    former_owners: frozenset[str] = frozenset()
    """NIKs of the owners on record whose data the import replaced: data subjects of the import
    as much as the owners it wrote."""
    owner_columns: frozenset[str] = frozenset()
    """The owner columns it changed, in any row."""

    @property
    def rejected(self) -> int:
        return len({error.row for error in self.errors})


Drafted = tuple[int, MsmeDraft | None, Sequence[InvalidValue]]
"""A row number (as the person who made the file counts rows), its draft (None when the row
could not be read into fields at all) and the values that could not be read into it
(`check_msme`'s `unread`)."""

_STAGING_METADATA = MetaData()
RECORD_COLUMNS = (
    "nib",
    "name",
    "kbli_code",
    "kbli_section",
    "scale",
    "declared_scale",
    "province_code",
    "regency_code",
    "district_code",
    "established_on",
    "capital",
    "annual_turnover",
    "turnover_year",
    "employees",
)


def _scratch(name: str, *columns: Column[Any] | Index) -> Table:
    """A temporary table of the import's own, dropped when its transaction ends."""
    return Table(
        name,
        _STAGING_METADATA,
        *columns,
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )


STAGING = _scratch(
    "msme_import",
    Column("row_no", Integer),
    *(Column(name, Text) for name in RECORD_COLUMNS[:9]),
    Column("established_on", Date),
    Column("capital", BigInteger),
    Column("annual_turnover", BigInteger),
    Column("turnover_year", SmallInteger),
    Column("employees", Integer),
    *(
        Column(f"owner_{field.column}", Date if field.kind is date else Text)
        for field in OWNER_FIELDS
    ),
    # Statements match records to staged rows by NIB one by one (see _UPDATE): a probe, not a
    # scan.
    Index("ix_msme_import_nib", "nib"),
)
WRITTEN = _scratch(
    "msme_import_written",
    Column("id", BigInteger),
    Column("created", Boolean),
    Column("scale_row", Boolean),  # a scale history row to write: see _SCALES
    Column("scale", Text),
    Column("capital", BigInteger),
    Column("annual_turnover", BigInteger),
)
EXISTING = _scratch(
    "msme_import_existing",
    # The records the chunk's NIBs name, locked by _LOCK: the statements read them here.
    Column("id", BigInteger),
    Column("nib", Text),
)
OWNER_CHANGES = _scratch(
    "msme_import_owners",
    Column("nib", Text),
    Column("personal_fields", ARRAY(Text)),
    Column("former_nik", Text),  # the owner on record before, if any
)
STAGED_COLUMNS = [column.name for column in STAGING.columns]
_ROW_NO, _NIB, _PROVINCE, _REGENCY, _DISTRICT, _OWNER_NIK = map(
    STAGED_COLUMNS.index,
    ("row_no", "nib", "province_code", "regency_code", "district_code", "owner_nik"),
)
_RECORD = slice(_NIB, _NIB + len(RECORD_COLUMNS))
"""A staged row's record columns, in RECORD_COLUMNS order."""


def _staged(row_no: int, checked: CheckedMsme) -> tuple[Any, ...]:
    owner = checked.owner
    return (
        row_no,
        checked.nib,
        checked.name,
        checked.kbli_code,
        checked.kbli_section,
        str(checked.scale),
        None if checked.declared_scale is None else str(checked.declared_scale),
        checked.province_code,
        checked.regency_code,
        checked.district_code,
        checked.established_on,
        checked.capital,
        checked.annual_turnover,
        checked.turnover_year,
        checked.employees,
        *(
            (None,) * len(OWNER_COLUMNS)
            if owner is None
            else (getattr(owner, column) for column in OWNER_COLUMNS)
        ),
    )


async def import_msmes(
    connection: AsyncConnection,
    rows: Iterable[Drafted],
    *,
    total: int,
    scope: RowScope,
    actor: Actor,
    mode: Mode,
    name: Namer = str,
    today: date,
    progress: Progress | None = None,
    queue: bool = False,
    absent: frozenset[str] = frozenset(),
) -> Report:
    """Import `rows` inside the caller's transaction; see the module docstring for the steps.

    An import in progress is waited for at most as long as a single write waits for one
    (`msmes.IMPORT_WAIT`; then ImportInProgress), or however long it takes with `queue` (an
    operator's command, which has no client waiting on a connection of the shared pool).

    In ALL_OR_NOTHING mode a file with any bad row writes nothing at all (the report says which
    rows and why); in VALID_ROWS mode the good rows are written and the bad ones reported.

    `absent` are the draft fields the rows do not give (a file without their columns,
    domain.register_csv `absent_fields`): a record a row updates keeps them as stored, read
    before the row is checked, a chunk at a time.

    Rows go to PostgreSQL in chunks, and a chunk is written while Python checks the next one, so
    the two cores work at once. The chunks share one savepoint: when a bad row turns up after
    earlier chunks were written, all-or-nothing rolls back to it.
    """
    report = progress or (lambda stage, done, total: None)
    # Imports queue behind each other for their turn (two files naming one new NIB must not race
    # to create it), and single MSME writes behind the one import whose turn it is (see
    # db/writes/msmes.py IMPORT_TURN).
    await msmes.before_import(connection, bounded=not queue)
    # Sorts and hashes over a whole chunk stay in memory instead of spilling to disk.
    await connection.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    rules = await vocabulary.load(connection, today=today)
    await connection.run_sync(lambda sync: _STAGING_METADATA.create_all(sync))
    before_import = await connection.begin_nested()
    regions = frozenset(await connection.scalars(select(REGIONS.c.code)))
    chunks = _Chunks(connection, scope, actor, today, mode, name, regions)
    try:
        received = await _check(rows, rules, chunks, total=total, report=report, absent=absent)
        await chunks.finish()
    except BaseException:
        await chunks.abandon()  # the caller rolls back: the connection must be idle for that
        raise
    report("load", chunks.loaded, chunks.loaded)
    errors = sorted(chunks.errors)
    if errors and mode is Mode.ALL_OR_NOTHING:
        await before_import.rollback()
        return Report(received=received, errors=errors)
    await before_import.commit()
    report("write", 1, 1)
    valid = received - len({error.row for error in errors})
    return Report(
        received=received,
        created=chunks.created,
        updated=chunks.updated,
        unchanged=valid - chunks.created - chunks.updated,
        applied=True,
        errors=errors,
        former_owners=frozenset(chunks.owners.former_niks),
        owner_columns=frozenset(chunks.owners.columns),
    )


async def _check(
    rows: Iterable[Drafted],
    rules: Vocabulary,
    chunks: _Chunks,
    *,
    total: int,
    report: Progress,
    absent: frozenset[str],
) -> int:
    """Check every row in Python, handing each full chunk of good ones over to be written; the
    number of rows received. Bad rows go to `chunks.errors`. With `absent` fields the rows are
    taken a chunk at a time and merged with the records they name first (`_Chunks.as_stored`):
    the stored values are read while no chunk is being written."""
    name, scope, covered = chunks.name, chunks.scope, chunks.covered
    first_row_of: dict[str, int] = {}  # NIB -> the first staged row carrying it
    staged: list[tuple[Any, ...]] = []
    received = 0
    chunk = min(FIRST_CHUNK, CHUNK)
    batches: Iterable[Iterable[Drafted]] = (rows,) if not absent else _batches(rows, CHUNK)
    for batch in batches:
        if absent:
            batch = await chunks.as_stored(list(batch), absent)
        for row_no, draft, unread in batch:
            received += 1
            checked = (
                list(unread)
                if draft is None
                else check_msme(draft, rules, name=name, unread=unread)
            )
            if isinstance(checked, list):
                chunks.errors.extend(
                    RowError(row_no, error.field, error.reason, Problem.INVALID)
                    for error in checked
                )
            elif not _covers(scope, checked.regency_code, covered):
                chunks.errors.append(
                    RowError(
                        row_no,
                        name("region"),
                        f"is outside your jurisdiction ({scope.code})",
                        Problem.OUTSIDE,
                    )
                )
            else:
                first = first_row_of.setdefault(checked.nib, row_no)
                if first != row_no:
                    chunks.errors.append(
                        RowError(
                            row_no, name("nib"), f"repeats the NIB of row {first}", Problem.INVALID
                        )
                    )
                staged.append(_staged(row_no, checked))
            if received % YIELD_EVERY == 0:
                if received % REPORT_EVERY == 0:
                    report("check", received, total)
                await asyncio.sleep(0)  # the chunk being written sends its next statement
            if len(staged) == chunk:
                await chunks.hand_over(staged)
                report("load", chunks.loaded, total)
                staged, chunk = [], min(2 * chunk, CHUNK)
    report("check", received, total)
    await chunks.hand_over(staged)
    return received


def _batches(rows: Iterable[Drafted], size: int) -> Iterator[list[Drafted]]:
    taken = iter(rows)
    while batch := list(itertools.islice(taken, size)):
        yield batch


def _covers(scope: RowScope, regency: str, covered: dict[str, bool]) -> bool:
    inside = covered.get(regency)
    if inside is None:
        inside = covered[regency] = scope.covers(regency)
    return inside


@dataclass
class _OwnersChanged:
    """What the chunks written so far did to owners on record, for the audit entry (Report)."""

    former_niks: set[str] = field(default_factory=set)
    columns: set[str] = field(default_factory=set)


class _Chunks:
    """Loads, checks and writes one chunk of staged rows at a time, in a background task."""

    def __init__(
        self,
        connection: AsyncConnection,
        scope: RowScope,
        actor: Actor,
        today: date,
        mode: Mode,
        name: Namer,
        regions: frozenset[str],
    ) -> None:
        self.connection = connection
        self.scope = scope
        self.actor = actor
        self.today = today
        self.mode = mode
        self.name = name
        self.regions = regions
        self.covered: dict[str, bool] = {}  # regency -> inside the scope: a file names few
        self.errors: list[RowError] = []
        self.created = 0
        self.updated = 0
        self.loaded = 0
        self.owners = _OwnersChanged()
        self._pending: asyncio.Task[None] | None = None

    async def hand_over(self, staged: list[tuple[Any, ...]]) -> None:
        """Wait for the chunk before (one connection runs one statement), then start this one."""
        await self.finish()
        if staged:
            self._pending = asyncio.create_task(self._load_and_write(staged))
            await asyncio.sleep(0)  # let it start its COPY before checking goes on

    async def as_stored(self, batch: list[Drafted], absent: frozenset[str]) -> list[Drafted]:
        """`batch` with the `absent` fields of each draft naming a record as the record holds
        them (domain.register_csv `as_stored`). Records outside the jurisdiction are not read:
        their rows are refused (`_set_checks`), and errors must not tell their values."""
        await self.finish()  # one statement at a time on the connection
        owners = any(field.startswith("owner.") for field in absent)
        nibs = [draft.nib.strip() for _, draft, _ in batch if draft is not None and draft.nib]
        records = await self.connection.execute(
            text(_STORED_OWNED if owners else _STORED), {"nibs": nibs}
        )
        stored = {
            record["nib"]: dict(record)
            for record in records.mappings()
            if _covers(self.scope, record["regency_code"], self.covered)
        }
        merged: list[Drafted] = []
        for row_no, draft, unread in batch:
            record = None if draft is None or not draft.nib else stored.get(draft.nib.strip())
            if draft is not None and record is not None:
                draft = as_stored(draft, record, absent)
            merged.append((row_no, draft, unread))
        return merged

    async def finish(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending

    async def abandon(self) -> None:
        """Stop the chunk being written, if any; its error (if it failed) is already moot."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending

    async def _load_and_write(self, staged: list[tuple[Any, ...]]) -> None:
        raw = await self.connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        locked = await driver.fetch(_LOCK, [row[_NIB] for row in staged])
        self.loaded += len(staged)
        self.errors.extend(self._set_checks(staged, locked))
        rows = {row[_ROW_NO] for row in staged}
        bad = {error.row for error in self.errors if error.row in rows}
        held = await self._held_by_programmes(staged, locked, bad)
        self.errors.extend(held)
        bad.update(error.row for error in held)
        if self.errors and self.mode is Mode.ALL_OR_NOTHING:
            return  # nothing will be kept: the remaining chunks are only checked
        stored = {record["nib"] for record in locked}
        fresh: list[tuple[Any, ...]] = []
        staying: list[tuple[Any, ...]] = []
        for row in staged:
            if row[_ROW_NO] not in bad:
                new = row[_NIB] not in stored and row[_OWNER_NIK] is None
                (fresh if new else staying).append(row)
        if staying:
            await driver.execute(f"TRUNCATE {', '.join(_STAGING_METADATA.tables)}")
            await driver.copy_records_to_table(
                EXISTING.name, records=[(record["id"], record["nib"]) for record in locked]
            )
            await driver.copy_records_to_table(
                STAGING.name, records=staying, columns=STAGED_COLUMNS
            )
            # Row counts and the join columns' statistics for the joins of _write (not every
            # column).
            await driver.execute("ANALYZE msme_import (row_no, nib)")
        created, updated = await _write(
            self.connection,
            self.actor,
            self.today,
            fresh=fresh,
            existing=len(locked) if staying else 0,
            owned=any(row[_OWNER_NIK] is not None for row in staying),
            noted=self.owners,
        )
        self.created += created
        self.updated += updated

    def _set_checks(self, staged: list[tuple[Any, ...]], locked: Sequence[Any]) -> list[RowError]:
        """What only the database can tell, for a whole chunk: the regions exist (`regions`
        holds every code), and the records the chunk's NIBs name (`locked`) lie inside the
        jurisdiction, as `_covers` judges a row's own region."""
        scope, covered, name = self.scope, self.covered, self.name
        outside = {
            record["nib"]
            for record in locked
            if not _covers(scope, record["regency_code"], covered)
        }
        issued = {
            record["nib"]: record["sku_issuer"]
            for record in locked
            if record["sku_issuer"] is not None and record["nib"] not in outside
        }
        errors = []
        for row in staged:
            row_no, district = row[_ROW_NO], row[_DISTRICT]
            issuer = issued.get(row[_NIB])
            if issuer is not None and not issued_within(issuer, row[_REGENCY], district):
                # The database holds an SKU to its village's place (ck_msmes_sku_issuer_place):
                # one such row would otherwise fail the whole chunk.
                errors.append(
                    RowError(
                        row_no,
                        name("district" if issuer.startswith(row[_REGENCY] + ".") else "region"),
                        f"the business's SKU was issued in {issuer}, not here: clear or replace"
                        " its SKU first (updateMsme), then move it",
                        Problem.INVALID,
                    )
                )
            if row[_REGENCY] not in self.regions:
                errors.append(
                    RowError(
                        row_no,
                        name("region"),
                        "is not a known regency or city code",
                        Problem.INVALID,
                    )
                )
            if district is not None and district not in self.regions:
                errors.append(
                    RowError(
                        row_no, name("district"), "is not a known kecamatan code", Problem.INVALID
                    )
                )
            if row[_NIB] in outside:
                errors.append(
                    RowError(
                        row_no,
                        name("nib"),
                        "is registered to a record outside your jurisdiction",
                        Problem.TAKEN,
                    )
                )
        return errors

    async def _held_by_programmes(
        self, staged: list[tuple[Any, ...]], locked: Sequence[Any], bad: set[int]
    ) -> list[RowError]:
        """The rows (not `bad` already) that would move their record out of the region of a
        programme it takes part in, refused as `updateMsme` refuses that move (db/writes/
        participations.py `refused_moves`): on `region`, or `district` when only the kecamatan
        changes. Only the rows that move a record are asked about, all in one statement; a
        chunk moving none asks nothing."""
        if not locked:
            return []  # new records only: nothing moves
        stored = {record["nib"]: record for record in locked}
        moving: dict[int, tuple[int, str]] = {}  # record id -> (row, column at fault)
        places: list[participations.Place] = []
        for row in staged:
            record = stored.get(row[_NIB])
            if record is None or row[_ROW_NO] in bad:
                continue
            if (record["regency_code"], record["district_code"]) == (row[_REGENCY], row[_DISTRICT]):
                continue
            column = "region" if record["regency_code"] != row[_REGENCY] else "district"
            moving[record["id"]] = (row[_ROW_NO], column)
            places.append(
                participations.Place(record["id"], row[_PROVINCE], row[_REGENCY], row[_DISTRICT])
            )
        refused = await participations.refused_moves(self.connection, places)
        return [
            RowError(moving[msme_id][0], self.name(moving[msme_id][1]), reason, Problem.INVALID)
            for msme_id, reason in refused.items()
        ]


# The SQL is spelled out column by column (no string building) so it reads as it runs. Records
# the file changes and records it creates take separate statements: an UPDATE … FROM for the
# first and a plain INSERT … SELECT (or a COPY, see _create) for the second, so the common case
# (a register's new rows) pays neither for ON CONFLICT nor for comparing against a "before" that
# does not exist. Each
# statement writes its history rows itself, straight from what it wrote, and notes in
# msme_import_written only what the later statements need (no diffs: they are large).
# Changed records: `old` is the same record read by the statement's snapshot, so RETURNING
# gives the values before and after without joining two CTEs (their row estimates are guesses,
# and a guessed nested loop over 10,000 × 10,000 rows is what that join turned into). The diff
# is built per column with `field_change` (migration 0004), which PostgreSQL inlines.
_UPDATE = """
WITH written AS (
    UPDATE msmes AS m
       SET name = s.name, kbli_code = s.kbli_code, kbli_section = s.kbli_section,
           scale = s.scale, declared_scale = s.declared_scale,
           province_code = s.province_code, regency_code = s.regency_code,
           district_code = s.district_code, established_on = s.established_on,
           capital = s.capital, annual_turnover = s.annual_turnover,
           turnover_year = s.turnover_year, employees = s.employees,
           version = m.version + 1, updated_at = now()
      FROM msmes AS old JOIN msme_import s ON s.nib = old.nib
     WHERE old.id = ANY(ARRAY(SELECT id FROM msme_import_existing))
       AND m.id = old.id
       AND (old.name, old.kbli_code, old.kbli_section, old.scale, old.declared_scale,
            old.province_code, old.regency_code, old.district_code, old.established_on,
            old.capital, old.annual_turnover, old.turnover_year, old.employees)
           IS DISTINCT FROM
           (s.name, s.kbli_code, s.kbli_section, s.scale, s.declared_scale, s.province_code,
            s.regency_code, s.district_code, s.established_on, s.capital, s.annual_turnover,
            s.turnover_year, s.employees)
    RETURNING m.*,
              old.nib AS old_nib, old.name AS old_name, old.kbli_code AS old_kbli_code,
              old.kbli_section AS old_kbli_section, old.scale AS old_scale,
              old.declared_scale AS old_declared_scale,
              old.province_code AS old_province_code, old.regency_code AS old_regency_code,
              old.district_code AS old_district_code, old.established_on AS old_established_on,
              old.capital AS old_capital, old.annual_turnover AS old_annual_turnover,
              old.turnover_year AS old_turnover_year, old.employees AS old_employees
), history AS (
    INSERT INTO record_changes
           (client_id, organisation, record_kind, record_id, operation, version, changes,
            personal_fields)
    SELECT :client_id, :organisation, 'msme', w.id, 'import', w.version,
           field_change('nib', w.old_nib, w.nib)
           || field_change('name', w.old_name, w.name)
           || field_change('kbli_code', w.old_kbli_code, w.kbli_code)
           || field_change('kbli_section', w.old_kbli_section, w.kbli_section)
           || field_change('scale', w.old_scale, w.scale)
           || field_change('declared_scale', w.old_declared_scale, w.declared_scale)
           || field_change('province_code', w.old_province_code, w.province_code)
           || field_change('regency_code', w.old_regency_code, w.regency_code)
           || field_change('district_code', w.old_district_code, w.district_code)
           || field_change('established_on', w.old_established_on, w.established_on)
           || field_change('capital', w.old_capital, w.capital)
           || field_change('annual_turnover', w.old_annual_turnover, w.annual_turnover)
           || field_change('turnover_year', w.old_turnover_year, w.turnover_year)
           || field_change('employees', w.old_employees, w.employees),
           coalesce(o.personal_fields, '{}')
      FROM written w LEFT JOIN msme_import_owners o ON o.nib = w.nib
     ORDER BY w.id
)
INSERT INTO msme_import_written (id, created, scale_row, scale, capital, annual_turnover)
SELECT id, false, scale IS DISTINCT FROM old_scale, scale, capital, annual_turnover
  FROM written
"""


_BY_ID = """
SELECT nextval('msmes_id_seq') FROM generate_series(1, $1)
"""

# The history entry of the records created without an owner is one row per run of consecutive
# ids in msme_import_batches (migration 0015), read per record through `record_history`, which
# rebuilds the values from the record; writing them as JSON per record was a third of the
# import's time in PostgreSQL. Their first scale entry is kept the same way (migration 0016):
# the batch notes the day and the rule version, the view `scale_history` reads the rest from
# the record.
_BATCHES = """
INSERT INTO msme_import_batches
       (id, client_id, organisation, first_id, last_id, effective_from, rule_version)
SELECT nextval('record_changes_id_seq'), $2, $3, min(id), max(id), $4, $5
  FROM (SELECT id, id - row_number() OVER (ORDER BY id) AS run
          FROM unnest($1::bigint[]) AS id) AS ids
 GROUP BY run
"""


async def _create(
    connection: AsyncConnection, actor: Actor, today: date, fresh: Sequence[tuple[Any, ...]]
) -> int:
    """COPY the `fresh` rows (new NIBs, no owner) straight into msmes, in file order, and note
    their batches; how many. A COPY into the register costs a third of writing the rows to a
    staging table and from there into the register; its ids are taken first, as the default
    takes them, so that the batches are known without reading the rows back. Every check an
    INSERT … SELECT from staging would meet is met the same: the table's constraints and
    triggers (the change feed, the rollups) fire for a COPY as for an INSERT."""
    if not fresh:
        return 0
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    ids = sorted(record[0] for record in await driver.fetch(_BY_ID, len(fresh)))
    await driver.copy_records_to_table(
        "msmes",
        records=[(id_, *row[_RECORD]) for id_, row in zip(ids, fresh, strict=True)],
        columns=["id", *RECORD_COLUMNS],
    )
    await driver.execute(_BATCHES, ids, actor.client_id, actor.organisation, today, RULE_VERSION)
    return len(fresh)


# A record created with an owner keeps a history row of its own (the owner fields it set are
# named there, from msme_import_owners), and a scale history row (_SCALES): every stored value
# is a change from nothing, so the diff is the object `field_change` would give ({"column":
# {"before": null, "after": value}} for each non-null column), written as JSON text and parsed
# once. tests/test_imports.py checks that both entries agree with field_change.
_CREATE_OWNED = """
WITH written AS (
    INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, declared_scale, province_code,
                       regency_code, district_code, established_on, capital, annual_turnover,
                       turnover_year, employees)
    SELECT nib, name, kbli_code, kbli_section, scale, declared_scale, province_code,
           regency_code, district_code, established_on, capital, annual_turnover, turnover_year,
           employees
      FROM msme_import s
     WHERE s.owner_nik IS NOT NULL
       AND NOT EXISTS (SELECT FROM msme_import_existing e WHERE e.nib = s.nib)
     ORDER BY row_no
    RETURNING msmes.*
), history AS (
    INSERT INTO record_changes
           (client_id, organisation, record_kind, record_id, operation, version, changes,
            personal_fields)
    SELECT :client_id, :organisation, 'msme', w.id, 'import', w.version,
           ('{' || concat_ws(',',
               '"nib":{"before"\\:null,"after":' || to_json(w.nib) || '}',
               '"name":{"before"\\:null,"after":' || to_json(name) || '}',
               '"kbli_code":{"before"\\:null,"after":' || to_json(kbli_code) || '}',
               '"kbli_section":{"before"\\:null,"after":' || to_json(kbli_section) || '}',
               '"scale":{"before"\\:null,"after":' || to_json(scale) || '}',
               '"declared_scale":{"before"\\:null,"after":' || to_json(declared_scale) || '}',
               '"province_code":{"before"\\:null,"after":' || to_json(province_code) || '}',
               '"regency_code":{"before"\\:null,"after":' || to_json(regency_code) || '}',
               '"district_code":{"before"\\:null,"after":' || to_json(district_code) || '}',
               '"established_on":{"before"\\:null,"after":' || to_json(established_on) || '}',
               '"capital":{"before"\\:null,"after":' || to_json(capital) || '}',
               '"annual_turnover":{"before"\\:null,"after":' || to_json(annual_turnover) || '}',
               '"turnover_year":{"before"\\:null,"after":' || to_json(turnover_year) || '}',
               '"employees":{"before"\\:null,"after":' || to_json(employees) || '}'
           ) || '}')::jsonb,
           coalesce(o.personal_fields, '{}')
      FROM written w LEFT JOIN msme_import_owners o ON o.nib = w.nib
     ORDER BY w.id
)
INSERT INTO msme_import_written (id, created, scale_row, scale, capital, annual_turnover)
SELECT id, true, true, scale, capital, annual_turnover
  FROM written
"""


def _each(template: str, separator: str = ", ") -> str:
    """`template` spelled for each personal column (`{c}`), in declaration order."""
    return separator.join(template.format(c=column) for column in OWNER_COLUMNS)


# Owner statements are spelled from the declaration of personal fields (domain.personal), so a
# new personal field is imported without touching them. The history keeps the names of the
# personal fields that changed, never their values, and is append-only (db/roles.py): which
# fields a row changes is worked out before the records are written, so that the record's own
# history row names them (the statements above join msme_import_owners by NIB).
_NEXT_LINE = ",\n" + " " * 23
_CHANGED = "CASE WHEN o.{c} IS DISTINCT FROM s.owner_{c} THEN 'owner.{c}' END"
# It answers, in one row, how many owners change, the NIKs of the owners on record they replace
# and the personal fields changed: for the import's audit entry (Report).
_OWNER_CHANGES = f"""
WITH noted AS (
    INSERT INTO msme_import_owners (nib, personal_fields, former_nik)
    SELECT nib, personal_fields, former_nik
      FROM (SELECT s.nib, o.nik AS former_nik,
                   array_remove(ARRAY[
                       {_each(_CHANGED, _NEXT_LINE)}
                   ], NULL) AS personal_fields
              FROM msme_import s LEFT JOIN msme_import_existing e ON e.nib = s.nib
                   LEFT JOIN msme_owners o ON o.msme_id = e.id
             WHERE s.owner_nik IS NOT NULL) AS compared
     WHERE personal_fields <> '{{}}'
    RETURNING former_nik, personal_fields
)
SELECT count(*) AS owners,
       ARRAY(SELECT DISTINCT former_nik FROM noted WHERE former_nik IS NOT NULL) AS former_niks,
       ARRAY(SELECT DISTINCT unnest(personal_fields) FROM noted) AS personal_fields
  FROM noted
"""  # noqa: S608  # the names are the declaration's, not input

_OWNERS = f"""
INSERT INTO msme_owners AS o (msme_id, {_each("{c}")})
SELECT m.id, {_each("s.owner_{c}")}
  FROM msme_import_owners c JOIN msme_import s ON s.nib = c.nib JOIN msmes m ON m.nib = c.nib
ON CONFLICT (msme_id) DO UPDATE SET {_each("{c} = EXCLUDED.{c}")}
"""  # noqa: S608  # the names are the declaration's, not input

# A record whose owner alone changed moves on a version, as `updateMsme` making the same change
# does (db/writes/versioned.py), and gets a history row of its own at that version: a client
# holding the version before must get CONFLICT rather than overwrite the owner imported. (A
# record whose other columns changed too moved on in _UPDATE, whose history row names its owner
# fields: one version per record and import.) The records were locked by _LOCK.
_OWNER_HISTORY = """
WITH bumped AS (
    UPDATE msmes AS m
       SET version = m.version + 1, updated_at = now()
     WHERE m.id = ANY(ARRAY(
               SELECT e.id
                 FROM msme_import_owners c JOIN msme_import_existing e ON e.nib = c.nib
                WHERE NOT EXISTS (SELECT FROM msme_import_written w WHERE w.id = e.id)))
    RETURNING m.id, m.nib, m.version
)
INSERT INTO record_changes
       (client_id, organisation, record_kind, record_id, operation, version, changes,
        personal_fields)
SELECT :client_id, :organisation, 'msme', b.id, 'import', b.version, '{}'::jsonb,
       c.personal_fields
  FROM bumped b JOIN msme_import_owners c ON c.nib = b.nib
 ORDER BY b.id
"""

# A scale history row for each record whose scale an UPDATE changed, and each record created
# with an owner (the others' first entry is their batch's).
_SCALES = """
INSERT INTO msme_scale_history (msme_id, scale, effective_from, annual_sales, capital, rule_version)
SELECT id, scale, :today, annual_turnover, capital, :rule_version
  FROM msme_import_written
 WHERE scale_row
ON CONFLICT (msme_id, effective_from) DO UPDATE
   SET scale = EXCLUDED.scale, annual_sales = EXCLUDED.annual_sales,
       capital = EXCLUDED.capital, recorded_at = now()
"""

_COUNTS = """
SELECT count(*) FILTER (WHERE w.created),
       count(*) FILTER (WHERE NOT coalesce(w.created, false))
  FROM msme_import_written w
       FULL JOIN (SELECT e.id FROM msme_import_owners c
                    JOIN msme_import_existing e ON e.nib = c.nib) AS o ON o.id = w.id
"""

# The stored values a row without some columns keeps (`_Chunks.as_stored`), by draft field
# name, and the columns the declaration it keeps is read from (domain/scale.py
# `kept_declaration`, as `updateMsme` reads it).
_STORED_VALUES = """
SELECT m.nib, m.regency_code, m.district_code AS district, m.established_on, m.capital,
       m.annual_turnover, m.turnover_year, m.employees, m.scale, m.declared_scale"""
_STORED = f"""{_STORED_VALUES}
  FROM msmes m
 WHERE m.nib = ANY(:nibs)
"""
_STORED_OWNED = f"""{_STORED_VALUES},
       {_each('o.{c} AS "owner.{c}"')}
  FROM msmes m LEFT JOIN msme_owners o ON o.msme_id = m.id
 WHERE m.nib = ANY(:nibs)
"""

# Lock a chunk's existing records first, in id order, before the set checks: the writes then
# read values nobody can change before the import commits, and the jurisdiction check and the
# check of moves (`_held_by_programmes`) read where each record is from what this returns
# instead of probing msmes a second time. (A record a rejected row names stays locked until the
# import ends; single writes wait for an import anyway.) The NIBs are one array parameter: one
# index probe per row.
_LOCK = """
SELECT m.id, m.nib, m.regency_code, m.district_code, m.sku_issuer
  FROM msmes m
 WHERE m.nib = ANY($1::text[])
 ORDER BY m.id
   FOR UPDATE OF m
"""


async def _write(
    connection: AsyncConnection,
    actor: Actor,
    today: date,
    *,
    fresh: Sequence[tuple[Any, ...]],
    existing: int,
    owned: bool,
    noted: _OwnersChanged,
) -> tuple[int, int]:
    """A chunk's `fresh` rows (see _create) and its staged rows, written set-based, `existing`
    of them records locked already (in msme_import_existing), `owned` when any has an owner;
    (created, updated) counts. What owners change goes to `noted`."""
    by = {"client_id": actor.client_id, "organisation": actor.organisation}
    day = {"today": today, "rule_version": RULE_VERSION}
    owners = 0
    if owned:
        changes = (await connection.execute(text(_OWNER_CHANGES))).one()
        owners = changes.owners
        noted.former_niks.update(changes.former_niks)
        noted.columns.update(name.removeprefix("owner.") for name in changes.personal_fields)
    if existing:
        await connection.execute(text(_UPDATE), by)
    created = await _create(connection, actor, today, fresh)
    if owners:
        # Every new record with an owner names its owner fields: no owner changes, none created.
        await connection.execute(text(_CREATE_OWNED), by)
        await connection.execute(text(_OWNERS))
        await connection.execute(text(_OWNER_HISTORY), by)
    if not (existing or owners):
        return created, 0  # the usual new register: msme_import_written is empty
    await connection.execute(text(_SCALES), day)
    created_owned, updated = (await connection.execute(text(_COUNTS))).one()
    return created + int(created_owned), int(updated)
