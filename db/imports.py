"""Bulk MSME import, shared by the `importMsmes` mutation and `sinergi import msmes`.

The path is PostgreSQL's bulk one: rows are checked in Python (identifiers, scale, NIBs and SKUs
not repeated in the file), then, a chunk at a time, against the database: the records their
NIBs and SKUs name are looked up and locked in one statement, each row is matched to its record
(`_Chunks._match`: by its NIB, else by its SKU), and the regions and the records' jurisdiction
are checked as sets against that and the region table (loaded once), as is, in one more
statement for the rows that move a record, that no record leaves the region of a programme it
takes part in. The chunk's new records without an owner or an SKU are COPYed straight into the
register, their change history noted per run of ids (migrations 0015 and 0016); the others are
COPYed into a temporary staging table, each row beside the id of its record (a new record's
taken beforehand), and written set-based: one UPDATE for the records the file changes and one
INSERT for those it creates with an owner or an SKU, each writing its change history in the
same statement, then owners and scale history.
A chunk is written while Python checks the next, so both cores work. Everything runs in the
caller's transaction, so a failure or a killed process leaves the database as it was.

Idempotent: only rows whose values differ are written, so importing a file twice changes
nothing the second time (no version bump, no history row).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Select,
    SmallInteger,
    Table,
    Text,
    case,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import MSME_OWNERS, MSMES, REGIONS
from db.queries.scoping import RowScope
from db.writes import msmes, participations, vocabulary
from db.writes.history import Actor
from domain.errors import InvalidValue
from domain.identifiers import (
    issued_within,
    validate_nib,
    validate_sku_issuer,
    validate_sku_number,
)
from domain.personal import OWNER_COLUMNS, OWNER_FIELDS
from domain.records import CheckedMsme, MsmeDraft, Vocabulary, check_registered_msme
from domain.register_csv import as_stored, unchanged_fields
from domain.scale import CORRECTION, RULE_VERSION

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
    """The NIB or SKU is registered to a record the writer may not change (another
    jurisdiction's), or to another business than the row's other key names."""
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
    figures_of: frozenset[str] = frozenset()
    """NIKs of the owners on record of the records whose figures, their finances
    (domain.personal.OWNER_FINANCES), a row compared (`unchanged` confirms them) or overwrote."""

    @property
    def rejected(self) -> int:
        return len({error.row for error in self.errors})


Drafted = tuple[int, MsmeDraft | None, Sequence[InvalidValue]]
"""A row number (as the person who made the file counts rows), its draft (None when the row
could not be read into fields at all) and the values that could not be read into it
(`check_registered_msme`'s `unread`)."""
Absent = frozenset[str] | Mapping[int, frozenset[str]]
"""The draft fields rows leave out (`import_msmes`): the same for every row (a file's missing
columns), or by row number (`importMsmes`, each of whose rows omits fields of its own)."""

_STAGING_METADATA = MetaData()
RECORD_COLUMNS = (
    "nib",
    "sku_number",
    "sku_issuer",
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
    *(Column(name, Text) for name in RECORD_COLUMNS[:11]),
    Column("established_on", Date),
    Column("capital", BigInteger),
    Column("annual_turnover", BigInteger),
    Column("turnover_year", SmallInteger),
    Column("employees", Integer),
    *(
        Column(f"owner_{field.column}", Date if field.kind is date else Text)
        for field in OWNER_FIELDS
    ),
    # The record the row writes: the one its NIB or SKU names, or a new one's id, taken before
    # (`created`). Statements match records to staged rows by it one by one (see _UPDATE): a
    # probe, not a scan.
    Column("msme_id", BigInteger),
    Column("created", Boolean),
    Index("ix_msme_import_msme_id", "msme_id"),
)
WRITTEN = _scratch(
    "msme_import_written",
    Column("id", BigInteger),
    Column("created", Boolean),
    Column("scale_row", Boolean),  # a scale history row to write: see _SCALES
    Column("scale", Text),
    Column("capital", BigInteger),
    Column("annual_turnover", BigInteger),
    Column("turnover_year", SmallInteger),
)
EXISTING = _scratch(
    "msme_import_existing",
    # The records the chunk's NIBs and SKUs name, locked by `locked_records`: the statements
    # read them here.
    Column("id", BigInteger),
)
OWNER_CHANGES = _scratch(
    "msme_import_owners",
    Column("msme_id", BigInteger),
    Column("personal_fields", ARRAY(Text)),
    Column("former_nik", Text),  # the owner on record before, if any
    # The history row's (migration 0062): the owners whose figures it holds, the one before and
    # the one written. The row is written before the owner (_OWNERS), so the owner on record
    # then is the one before, or none; a record whose owner stays has no row here, and the
    # statements take the one on record. Each import statement passes every row's owners
    # itself: the database's trigger, filling a row without them, costs a PL/pgSQL call a row.
    Column("owner_niks", ARRAY(Text)),
)
STAGED_COLUMNS = [column.name for column in STAGING.columns]
_ROW_NO, _NIB, _SKU_NUMBER, _SKU_ISSUER, _PROVINCE, _REGENCY, _DISTRICT, _OWNER_NIK = map(
    STAGED_COLUMNS.index,
    (
        "row_no",
        "nib",
        "sku_number",
        "sku_issuer",
        "province_code",
        "regency_code",
        "district_code",
        "owner_nik",
    ),
)
_RECORD = slice(_NIB, _NIB + len(RECORD_COLUMNS))
"""A staged row's record columns, in RECORD_COLUMNS order."""


def _staged(row_no: int, checked: CheckedMsme) -> tuple[Any, ...]:
    """A checked row as staged, but for its record (`msme_id`, `created`): `_Chunks._match`
    finds that once the chunk's records are locked."""
    owner = checked.owner
    return (
        row_no,
        checked.nib,
        checked.sku_number,
        checked.sku_issuer,
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
    absent: Absent = frozenset(),
    sku_given: bool = False,
) -> Report:
    """Import `rows` inside the caller's transaction; see the module docstring for the steps.

    An import in progress is waited for at most as long as a single write waits for one
    (`msmes.IMPORT_WAIT`; then ImportInProgress), or however long it takes with `queue` (an
    operator's command, which has no client waiting on a connection of the shared pool).

    In ALL_OR_NOTHING mode a file with any bad row writes nothing at all (the report says which
    rows and why); in VALID_ROWS mode the good rows are written and the bad ones reported.

    `absent` are the draft fields the rows do not give (a file without their columns,
    domain.register_csv `absent_fields`; or, by row number, the fields each `importMsmes` row
    omits): a record a row updates keeps them as stored, read before the row is checked, a
    chunk at a time.

    A row's SKU replaces the stored one of the record it updates; `sku_given`, the rows give the
    SKU whole (a file with its columns), so a row without one clears it, else (a file without the
    columns, a batch of `importMsmes`) leaves it as stored.

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
    chunks = _Chunks(connection, scope, actor, today, mode, name, regions, sku_given=sku_given)
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
        figures_of=frozenset(chunks.owners.figures_of),
    )


async def _check(
    rows: Iterable[Drafted],
    rules: Vocabulary,
    chunks: _Chunks,
    *,
    total: int,
    report: Progress,
    absent: Absent,
) -> int:
    """Check every row in Python, handing each full chunk of good ones over to be written; the
    number of rows received. Bad rows go to `chunks.errors`. The rows are taken a chunk at a
    time and merged with the records they name first (`_Chunks.as_stored`), their `absent`
    fields as stored and the fields they give as stored noted (domain/records.py `unchanged`),
    so the record is checked as `updateMsme` checks it: the stored values are read while no
    chunk is being written."""
    name, scope, covered = chunks.name, chunks.scope, chunks.covered
    first_row_of: dict[tuple[str, ...], int] = {}  # a NIB or SKU -> the first row carrying it
    staged: list[tuple[Any, ...]] = []
    received = 0
    chunk = min(FIRST_CHUNK, CHUNK)
    for batch in _batches(rows, CHUNK):
        for (row_no, draft, unread), kept in await chunks.as_stored(batch, absent):
            received += 1
            checked = (
                list(unread)
                if draft is None
                else check_registered_msme(draft, rules, name=name, unread=unread, kept=kept)
            )
            if isinstance(checked, list):
                chunks.errors.extend(
                    RowError(row_no, error.field, error.reason, Problem.INVALID)
                    for error in checked
                )
                if (nib := _sound_nib(draft)) is not None:
                    chunks.refused.append((row_no, nib))
            elif not _covers(scope, checked.regency_code, covered):
                chunks.errors.append(
                    RowError(
                        row_no,
                        name("region"),
                        f"is outside your jurisdiction ({scope.code})",
                        Problem.OUTSIDE,
                    )
                )
                if (nib := _sound_nib(draft)) is not None:
                    chunks.refused.append((row_no, nib))
            else:
                chunks.errors.extend(_repeats(row_no, checked, first_row_of, name))
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


def _repeats(
    row_no: int, checked: CheckedMsme, first_row_of: dict[tuple[str, ...], int], name: Namer
) -> list[RowError]:
    """The row's NIB and SKU that an earlier row of the file carries (`first_row_of`, which
    notes the row's own): two rows naming one business would both write it, and two new ones
    would both create it."""
    keys: dict[str, tuple[str, tuple[str, ...] | None]] = {
        "nib": ("NIB", (checked.nib,) if checked.nib else None)
    }
    if checked.sku_issuer is not None and checked.sku_number is not None:
        keys["skuNumber"] = ("SKU", (checked.sku_issuer, checked.sku_number))
    errors = []
    for field_name, (what, key) in keys.items():
        if key is None:
            continue
        first = first_row_of.setdefault(key, row_no)
        if first != row_no:
            reason = f"repeats the {what} of row {first}"
            errors.append(RowError(row_no, name(field_name), reason, Problem.INVALID))
    return errors


def _batches(rows: Iterable[Drafted], size: int) -> Iterator[list[Drafted]]:
    taken = iter(rows)
    while batch := list(itertools.islice(taken, size)):
        yield batch


def _absent_from(absent: Absent, row_no: int) -> frozenset[str]:
    return absent if isinstance(absent, frozenset) else absent.get(row_no, frozenset())


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
    figures_of: set[str] = field(default_factory=set)
    """NIKs of the owners on record of the records whose figures a row written compared or
    overwrote (`locked_records` reads them)."""


_Dropping = dict[tuple[str, str], tuple[int, list[RowError]]]
"""A chunk's stored SKUs (issuer, number) that a row takes from its business: that row, and the
refusals of the chunk's later rows carrying the SKU (`_Chunks._taken`)."""


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
        *,
        sku_given: bool,
    ) -> None:
        self.connection = connection
        self.scope = scope
        self.actor = actor
        self.today = today
        self.mode = mode
        self.name = name
        self.regions = regions
        self.sku_given = sku_given
        self.covered: dict[str, bool] = {}  # regency -> inside the scope: a file names few
        self.claimed: dict[int, int] = {}  # record id -> the first row writing it, file-wide
        # A stored SKU (issuer, number) -> the row taking it from its business, file-wide: rows
        # written (or all or nothing, that would be) only: a row refused later in its chunk
        # takes nothing
        self.dropped: dict[tuple[str, str], int] = {}
        self.errors: list[RowError] = []
        # Rows refused before the database is asked, with their well-formed NIB (`_sound_nib`),
        # for `_taken_elsewhere`: handed over with the next chunk
        self.refused: list[tuple[int, str]] = []
        self.created = 0
        self.updated = 0
        self.loaded = 0
        self.owners = _OwnersChanged()
        self._pending: asyncio.Task[None] | None = None

    async def hand_over(self, staged: list[tuple[Any, ...]]) -> None:
        """Wait for the chunk before (one connection runs one statement), then start this one."""
        await self.finish()
        refused, self.refused = self.refused, []
        if staged or refused:
            self._pending = asyncio.create_task(self._load_and_write(staged, refused))
            await asyncio.sleep(0)  # let it start its COPY before checking goes on

    async def as_stored(
        self, batch: list[Drafted], absent: Absent
    ) -> list[tuple[Drafted, frozenset[str]]]:
        """`batch` with the `absent` fields of each draft naming a record (by its NIB, else its
        SKU, as `_match` matches it) as the record holds them (domain.register_csv
        `as_stored`), each with the fields its draft leaves as the record holds them
        (`unchanged_fields`; none for a new record). Records outside the jurisdiction are not
        read: their rows are refused (`_match`), and errors must not tell their values."""
        await self.finish()  # one statement at a time on the connection
        left_out = [_absent_from(absent, row_no) for row_no, _, _ in batch]
        owners = any(draft is not None and draft.owner is not None for _, draft, _ in batch) or any(
            field.startswith("owner.") for fields in left_out for field in fields
        )
        keys = [(None, None) if draft is None else _keys_of(draft) for _, draft, _ in batch]
        skus = [sku for _, sku in keys if sku is not None]
        nibs = [nib for nib, _ in keys if nib is not None]
        by_nib: dict[str, dict[str, Any]] = {}
        by_sku: dict[tuple[str, str], dict[str, Any]] = {}
        for stored in await stored_records(self.connection, self.scope, nibs, skus, owners=owners):
            if stored["nib"] is not None:
                by_nib[stored["nib"]] = stored
            if stored["sku_number"] is not None:
                by_sku[stored["sku_issuer"], stored["sku_number"]] = stored
        merged: list[tuple[Drafted, frozenset[str]]] = []
        for (row_no, draft, unread), (nib, sku), fields in zip(batch, keys, left_out, strict=True):
            record = by_nib.get(nib) if nib is not None else None
            if record is None and sku is not None:
                record = by_sku.get(sku)
            kept: frozenset[str] = frozenset()
            if draft is not None and record is not None:
                draft = as_stored(draft, record, fields) if fields else draft
                kept = unchanged_fields(draft, record)
            merged.append(((row_no, draft, unread), kept))
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

    async def _load_and_write(
        self,
        staged: list[tuple[Any, ...]],
        checked_out: Sequence[tuple[int, str]] = (),
    ) -> None:
        raw = await self.connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        if checked_out:
            self.errors.extend(await self._taken_elsewhere(driver, checked_out))
        if not staged:
            return
        locked = await locked_records(
            self.connection,
            self.scope,
            [row[_NIB] for row in staged if row[_NIB] is not None],
            [(row[_SKU_ISSUER], row[_SKU_NUMBER]) for row in staged if row[_SKU_NUMBER]],
        )
        self.loaded += len(staged)
        rows = {row[_ROW_NO] for row in staged}
        bad = {error.row for error in self.errors if error.row in rows}
        matched, records, kept_skus, refused, dropping = self._match(staged, locked, bad)
        self.errors.extend(refused)
        self.errors.extend(self._set_checks(matched, kept_skus))
        bad = {error.row for error in self.errors if error.row in rows}
        held = await self._held_by_programmes(matched, records, bad)
        self.errors.extend(held)
        bad.update(error.row for error in held)
        self._retell(dropping, bad)
        # Written (or, all or nothing, a row that would have been): the record no longer holds
        # the SKU, which the later chunks must know to refuse a row carrying it alike.
        for sku, (row_no, _) in dropping.items():
            if row_no not in bad:
                self.dropped.setdefault(sku, row_no)
        if self.errors and self.mode is Mode.ALL_OR_NOTHING:
            return  # nothing will be kept: the remaining chunks are only checked
        fresh: list[tuple[Any, ...]] = []
        kept: list[tuple[Any, ...]] = []
        for row in matched:
            if row[_ROW_NO] in bad:
                continue
            plain = row[_OWNER_NIK] is None and row[_SKU_NUMBER] is None
            (fresh if plain and row[_ROW_NO] not in records else kept).append(row)
        # The records created from staging (with an owner or an SKU) take their ids first, as
        # _create does, so that every statement finds a row's record by its id.
        new = sum(row[_ROW_NO] not in records for row in kept)
        self.owners.figures_of.update(
            nik
            for row in kept
            if row[_ROW_NO] in records and (nik := records[row[_ROW_NO]]["owner_nik"]) is not None
        )
        ids = iter(sorted(record[0] for record in await driver.fetch(_BY_ID, new)) if new else ())
        staying = [
            (*row, records[row[_ROW_NO]]["id"], False)
            if row[_ROW_NO] in records
            else (*row, next(ids), True)
            for row in kept
        ]
        if staying:
            await driver.execute(f"TRUNCATE {', '.join(_STAGING_METADATA.tables)}")
            await driver.copy_records_to_table(
                EXISTING.name, records=[(record["id"],) for record in locked]
            )
            await driver.copy_records_to_table(
                STAGING.name, records=staying, columns=STAGED_COLUMNS
            )
            # Row counts and the join columns' statistics for the joins of _write (not every
            # column).
            await driver.execute("ANALYZE msme_import (row_no, msme_id)")
        created, updated = await _write(
            self.connection,
            self.actor,
            self.today,
            fresh=fresh,
            existing=len(staying) - new,
            staged_new=new,
            owned=any(row[_OWNER_NIK] is not None for row in staying),
            noted=self.owners,
        )
        self.created += created
        self.updated += updated

    def _match(
        self, staged: list[tuple[Any, ...]], locked: Sequence[Any], bad: set[int]
    ) -> tuple[list[tuple[Any, ...]], dict[int, Any], set[int], list[RowError], _Dropping]:
        """Each row's record (by row number; a row without one creates it): the record holding
        its NIB, else the one holding its SKU (a business registered by SKU is given its NIB);
        the rows with the NIB and SKU the record is to keep (a row without a NIB leaves the
        stored one: a NIB is removed with `updateMsme`; a row without an SKU the stored one,
        unless `sku_given`); and the rows keeping a stored SKU. Refused, as CONFLICT on the key:
        a NIB or SKU held by a record outside the jurisdiction (as `createMsme` refuses a taken
        one, telling nothing of that record), a NIB and an SKU held by two records, or an SKU
        held by a record with another NIB (nothing is merged, nor a NIB replaced: `updateMsme`
        corrects a NIB); and a row naming by one key a record an earlier row named by the other
        (both would write it). Refused as well, before all that: a row carrying an SKU an
        earlier row takes from its record (`dropped`, and the chunk's own `_Dropping`, which the
        rows that are written, or all or nothing would be, add to `dropped`). Such a key names
        that record while the earlier row's chunk is unwritten and nothing once it is, so the
        row would update it or be refused in one chunk and create a second business under the
        key in the next: an outcome hanging on how far apart the rows are."""
        by_nib = {record["nib"]: record for record in locked if record["nib"] is not None}
        by_sku = {
            (record["sku_issuer"], record["sku_number"]): record
            for record in locked
            if record["sku_number"] is not None
        }
        matched: list[tuple[Any, ...]] = []
        records: dict[int, Any] = {}
        kept_skus: set[int] = set()
        errors: list[RowError] = []
        dropping: _Dropping = {}
        for row in staged:
            row_no, nib, number = row[_ROW_NO], row[_NIB], row[_SKU_NUMBER]
            taken = self._taken(row, dropping)
            if taken is not None:
                errors.append(taken)
                matched.append(row)
                continue
            held = {
                "nib": None if nib is None else by_nib.get(nib),
                "skuNumber": None if number is None else by_sku.get((row[_SKU_ISSUER], number)),
            }
            refusal = self._refusal(nib, held)
            record = held["nib"] or held["skuNumber"]
            if refusal is not None or record is None:
                # A refused row is checked on (`_set_checks`), so all its problems are told.
                if refusal is not None:
                    field_name, reason = refusal
                    errors.append(RowError(row_no, self.name(field_name), reason, Problem.TAKEN))
                matched.append(row)
                continue
            first = row_no if row_no in bad else self.claimed.setdefault(record["id"], row_no)
            if first != row_no:
                reason = f"names the business row {first} names"
                key = "nib" if nib is not None else "skuNumber"
                errors.append(RowError(row_no, self.name(key), reason, Problem.INVALID))
            records[row_no] = record
            kept = list(row)
            if nib is None:
                kept[_NIB] = record["nib"]
            if number is None and not self.sku_given:
                kept[_SKU_NUMBER], kept[_SKU_ISSUER] = record["sku_number"], record["sku_issuer"]
                kept_skus.add(row_no)
            if row_no not in bad and first == row_no:
                self._drop(row_no, record, kept, dropping)
            matched.append(tuple(kept))
        return matched, records, kept_skus, errors, dropping

    def _drop(self, row_no: int, record: Any, kept: list[Any], dropping: _Dropping) -> None:
        """Note in `dropping` the stored SKU that row `row_no` takes from `record` (`kept`, the
        row as it will be written, gives another or none) for `_taken`. A key the record keeps
        needs no note: it names the record in every chunk, where the record's id tells the
        repeat. So a NIB needs none: an import never takes one from its record (a row without a
        NIB keeps it, another NIB is refused)."""
        stored = (record["sku_issuer"], record["sku_number"])
        if stored[1] is not None and stored != (kept[_SKU_ISSUER], kept[_SKU_NUMBER]):
            dropping.setdefault(stored, (row_no, []))

    def _taken(self, row: tuple[Any, ...], dropping: _Dropping) -> RowError | None:
        """The row's SKU, when an earlier row takes it from the business holding it (`dropped`,
        or `dropping` in this chunk, where the refusal is noted for `_retell`), refused as a
        repeat is (`_repeats`)."""
        sku = (row[_SKU_ISSUER], row[_SKU_NUMBER])
        written = self.dropped.get(sku)
        first = written if written is not None else dropping.get(sku, (None, []))[0]
        if first is None:
            return None
        reason = f"is the SKU of the business row {first} changes"
        taken = RowError(row[_ROW_NO], self.name("skuNumber"), reason, Problem.INVALID)
        if written is None:
            dropping[sku][1].append(taken)
        return taken

    def _retell(self, dropping: _Dropping, bad: set[int]) -> None:
        """The refusals of rows carrying an SKU that an earlier row of the chunk takes from its
        business, when that row is refused too (`bad`: by `_set_checks` or
        `_held_by_programmes`, after `_match` noted what it takes) and so changes nothing: the
        SKU stays its business's, which the earlier row names, as the refusal now says (the
        reason a row naming it in a later chunk is given, `_match`)."""
        retold = {
            taken: replace(taken, reason=f"names the business row {row_no} names")
            for row_no, refused in dropping.values()
            if row_no in bad
            for taken in refused
        }
        if retold:
            self.errors = [retold.get(error, error) for error in self.errors]

    async def _taken_elsewhere(
        self, driver: Any, refused: Sequence[tuple[int, str | None]]
    ) -> list[RowError]:
        """The CONFLICT on the NIB of rows refused before the database was asked (a value
        breaking a rule, a region outside the jurisdiction), as `_match` refuses a staged row's:
        a row is told every problem at once, not this one only once its values are mended. The
        NIB only: it is unique nationally, so its CONFLICT tells what any row carrying it would.
        An SKU's CONFLICT is told only of a village the writer may write in, which a refused
        row's SKU need not be (its village outside the jurisdiction is refused, whoever holds
        it). The records are read, not locked: nothing of them is written."""
        holders = await driver.fetch(_HOLDERS, [nib for _, nib in refused])
        outside = {
            record["nib"]
            for record in holders
            if not _covers(self.scope, record["regency_code"], self.covered)
        }
        reason = "is registered to a record outside your jurisdiction"
        return [
            RowError(row_no, self.name("nib"), reason, Problem.TAKEN)
            for row_no, nib in refused
            if nib in outside
        ]

    def _refusal(self, nib: str | None, held: dict[str, Any]) -> tuple[str, str] | None:
        """(field, reason) refusing a row whose NIB and SKU name the records `held` (by the
        field naming each), as `_match` says; None when it may write them."""
        for key, record in held.items():
            if record is not None and not _covers(self.scope, record["regency_code"], self.covered):
                return key, "is registered to a record outside your jurisdiction"
        by_nib, by_sku = held["nib"], held["skuNumber"]
        if by_sku is None:
            return None
        if by_nib is not None and by_nib["id"] != by_sku["id"]:
            return "skuNumber", "is registered to another business than the NIB: nothing is merged"
        if by_nib is None and nib is not None and by_sku["nib"] is not None:
            return (
                "nib",
                "is not the NIB of the business this SKU is registered to: correct its NIB"
                " (updateMsme) first",
            )
        return None

    def _set_checks(self, matched: list[tuple[Any, ...]], kept_skus: set[int]) -> list[RowError]:
        """What only the database can tell, for a whole chunk: the regions exist (`regions`
        holds every code), as does the kecamatan of a row's SKU village, and a record keeping
        its SKU (the rows `kept_skus`) stays where that was issued."""
        name = self.name
        errors = []
        for row in matched:
            row_no, district, issuer = row[_ROW_NO], row[_DISTRICT], row[_SKU_ISSUER]
            stored_sku = row_no in kept_skus
            if (
                stored_sku
                and issuer is not None
                and not issued_within(issuer, row[_REGENCY], district)
            ):
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
            # As createMsme checks it (resolvers/msme_writes.py `_check_issuer`): with a
            # kecamatan, the village was checked to lie in it.
            if (
                not stored_sku
                and issuer is not None
                and district is None
                and issuer[:8] not in self.regions
            ):
                reason = f"{issuer[:8]}, its kecamatan, is not a known kecamatan code"
                errors.append(RowError(row_no, name("skuIssuer"), reason, Problem.INVALID))
        return errors

    async def _held_by_programmes(
        self, matched: list[tuple[Any, ...]], records: dict[int, Any], bad: set[int]
    ) -> list[RowError]:
        """The rows (not `bad` already) that would move their record (`records`, by row) out of
        the region of a programme it takes part in, refused as `updateMsme` refuses that move
        (db/writes/participations.py `refused_moves`): on `region`, or `district` when only the
        kecamatan changes. Only the rows that move a record are asked about, all in one
        statement; a chunk moving none asks nothing."""
        if not records:
            return []  # new records only: nothing moves
        moving: dict[int, tuple[int, str]] = {}  # record id -> (row, column at fault)
        places: list[participations.Place] = []
        for row in matched:
            record = records.get(row[_ROW_NO])
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


def _keys_of(draft: MsmeDraft) -> tuple[str | None, tuple[str, str] | None]:
    """The NIB and SKU (issuer, number) a draft names its business by, spelled as stored; None
    for one it does not give, or gives wrongly (its row is refused when checked). Only a NIB
    of the right shape (`_sound_nib`) is looked up: one holding a NUL would fail the lookup of
    the whole chunk as a database error instead of refusing its row."""
    nib = _sound_nib(draft)
    sku = None
    if draft.sku_number is not None and draft.sku_issuer is not None:
        with contextlib.suppress(InvalidValue):
            sku = (validate_sku_issuer(draft.sku_issuer), validate_sku_number(draft.sku_number))
    return nib, sku


def _sound_nib(draft: MsmeDraft | None) -> str | None:
    """The NIB a draft gives, if well formed, else None (a malformed one is refused as such):
    the key its stored record is looked up by (`_keys_of`), and `_Chunks._taken_elsewhere`'s."""
    if draft is None or draft.nib is None or not draft.nib.strip():
        return None
    try:
        return validate_nib(draft.nib)
    except InvalidValue:
        return None


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
       SET nib = s.nib, sku_number = s.sku_number, sku_issuer = s.sku_issuer,
           name = s.name, kbli_code = s.kbli_code, kbli_section = s.kbli_section,
           scale = s.scale, declared_scale = s.declared_scale,
           province_code = s.province_code, regency_code = s.regency_code,
           district_code = s.district_code, established_on = s.established_on,
           capital = s.capital, annual_turnover = s.annual_turnover,
           turnover_year = s.turnover_year, employees = s.employees,
           version = m.version + 1, updated_at = now()
      FROM msmes AS old JOIN msme_import s ON s.msme_id = old.id
     WHERE old.id = ANY(ARRAY(SELECT id FROM msme_import_existing))
       AND m.id = old.id
       AND (old.nib, old.sku_number, old.sku_issuer, old.name, old.kbli_code,
            old.kbli_section, old.scale, old.declared_scale, old.province_code,
            old.regency_code, old.district_code, old.established_on, old.capital,
            old.annual_turnover, old.turnover_year, old.employees)
           IS DISTINCT FROM
           (s.nib, s.sku_number, s.sku_issuer, s.name, s.kbli_code, s.kbli_section, s.scale,
            s.declared_scale, s.province_code, s.regency_code, s.district_code,
            s.established_on, s.capital, s.annual_turnover, s.turnover_year, s.employees)
    RETURNING m.*,
              old.nib AS old_nib, old.sku_number AS old_sku_number,
              old.sku_issuer AS old_sku_issuer, old.name AS old_name,
              old.kbli_code AS old_kbli_code,
              old.kbli_section AS old_kbli_section, old.scale AS old_scale,
              old.declared_scale AS old_declared_scale,
              old.province_code AS old_province_code, old.regency_code AS old_regency_code,
              old.district_code AS old_district_code, old.established_on AS old_established_on,
              old.capital AS old_capital, old.annual_turnover AS old_annual_turnover,
              old.turnover_year AS old_turnover_year, old.employees AS old_employees
), history AS (
    INSERT INTO record_changes
           (client_id, organisation, record_kind, record_id, operation, version, changes,
            personal_fields, owner_niks)
    SELECT :client_id, :organisation, 'msme', w.id, 'import', w.version,
           field_change('nib', w.old_nib, w.nib)
           || field_change('sku_number', w.old_sku_number, w.sku_number)
           || field_change('sku_issuer', w.old_sku_issuer, w.sku_issuer)
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
           coalesce(o.personal_fields, '{}'),
           coalesce(o.owner_niks, ARRAY(SELECT nik FROM msme_owners p WHERE p.msme_id = w.id))
      FROM written w LEFT JOIN msme_import_owners o ON o.msme_id = w.id
     ORDER BY w.id
)
INSERT INTO msme_import_written
       (id, created, scale_row, scale, capital, annual_turnover, turnover_year)
SELECT id, false, scale IS DISTINCT FROM old_scale, scale, capital, annual_turnover,
       turnover_year
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
    """COPY the `fresh` rows (new records without an owner or an SKU) straight into msmes, in
    file order, and note their batches; how many. A COPY into the register costs a third of
    writing the rows to a staging table and from there into the register; its ids are taken
    first, as the default takes them, so that the batches are known without reading the rows
    back. Every check an INSERT … SELECT from staging would meet is met the same: the table's
    constraints and triggers (the change feed, the rollups) fire for a COPY as for an INSERT."""
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


# A record created with an owner or an SKU keeps a history row of its own (the owner fields it
# set are named there, from msme_import_owners; the batches' view, record_history, names no SKU
# columns), and a scale history row (_SCALES): every stored value
# is a change from nothing, so the diff is the object `field_change` would give ({"column":
# {"before": null, "after": value}} for each non-null column), written as JSON text and parsed
# once. tests/test_imports.py checks that both entries agree with field_change.
_CREATE_STAGED = """
WITH written AS (
    INSERT INTO msmes (id, nib, sku_number, sku_issuer, name, kbli_code, kbli_section, scale,
                       declared_scale, province_code, regency_code, district_code,
                       established_on, capital, annual_turnover, turnover_year, employees)
    SELECT msme_id, nib, sku_number, sku_issuer, name, kbli_code, kbli_section, scale,
           declared_scale, province_code, regency_code, district_code, established_on, capital,
           annual_turnover, turnover_year, employees
      FROM msme_import s
     WHERE s.created
     ORDER BY row_no
    RETURNING msmes.*
), history AS (
    INSERT INTO record_changes
           (client_id, organisation, record_kind, record_id, operation, version, changes,
            personal_fields, owner_niks)
    SELECT :client_id, :organisation, 'msme', w.id, 'import', w.version,
           ('{' || concat_ws(',',
               '"nib":{"before"\\:null,"after":' || to_json(w.nib) || '}',
               '"sku_number":{"before"\\:null,"after":' || to_json(w.sku_number) || '}',
               '"sku_issuer":{"before"\\:null,"after":' || to_json(w.sku_issuer) || '}',
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
           coalesce(o.personal_fields, '{}'),
           coalesce(o.owner_niks, ARRAY(SELECT nik FROM msme_owners p WHERE p.msme_id = w.id))
      FROM written w LEFT JOIN msme_import_owners o ON o.msme_id = w.id
     ORDER BY w.id
)
INSERT INTO msme_import_written
       (id, created, scale_row, scale, capital, annual_turnover, turnover_year)
SELECT id, true, true, scale, capital, annual_turnover, turnover_year
  FROM written
"""


def _each(template: str, separator: str = ", ") -> str:
    """`template` spelled for each personal column (`{c}`), in declaration order."""
    return separator.join(template.format(c=column) for column in OWNER_COLUMNS)


# Owner statements are spelled from the declaration of personal fields (domain.personal), so a
# new personal field is imported without touching them. The history keeps the names of the
# personal fields that changed, never their values, and is append-only (db/roles.py): which
# fields a row changes is worked out before the records are written, so that the record's own
# history row names them (the statements above join msme_import_owners by record id).
_NEXT_LINE = ",\n" + " " * 23
_CHANGED = "CASE WHEN o.{c} IS DISTINCT FROM s.owner_{c} THEN 'owner.{c}' END"
# It answers, in one row, how many owners change, the NIKs of the owners on record they replace
# and the personal fields changed: for the import's audit entry (Report).
_OWNER_CHANGES = f"""
WITH noted AS (
    INSERT INTO msme_import_owners (msme_id, personal_fields, former_nik, owner_niks)
    SELECT msme_id, personal_fields, former_nik,
           ARRAY(SELECT DISTINCT n FROM unnest(ARRAY[former_nik, owner_nik]) AS n
                  WHERE n IS NOT NULL ORDER BY n)
      FROM (SELECT s.msme_id, o.nik AS former_nik, s.owner_nik,
                   array_remove(ARRAY[
                       {_each(_CHANGED, _NEXT_LINE)}
                   ], NULL) AS personal_fields
              FROM msme_import s LEFT JOIN msme_owners o ON o.msme_id = s.msme_id
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
SELECT c.msme_id, {_each("s.owner_{c}")}
  FROM msme_import_owners c JOIN msme_import s ON s.msme_id = c.msme_id
ON CONFLICT (msme_id) DO UPDATE SET {_each("{c} = EXCLUDED.{c}")}
"""  # noqa: S608  # the names are the declaration's, not input

# A record whose owner alone changed moves on a version, as `updateMsme` making the same change
# does (db/writes/versioned.py), and gets a history row of its own at that version: a client
# holding the version before must get CONFLICT rather than overwrite the owner imported. (A
# record whose other columns changed too moved on in _UPDATE, whose history row names its owner
# fields: one version per record and import.) The records were locked by `locked_records`. The
# row keeps the owner just written (_OWNERS runs first), as _SCALES does.
_OWNER_HISTORY = """
WITH bumped AS (
    UPDATE msmes AS m
       SET version = m.version + 1, updated_at = now()
     WHERE m.id = ANY(ARRAY(
               SELECT c.msme_id
                 FROM msme_import_owners c
                WHERE NOT EXISTS (SELECT FROM msme_import_written w WHERE w.id = c.msme_id)))
    RETURNING m.id, m.version
)
INSERT INTO record_changes
       (client_id, organisation, record_kind, record_id, operation, version, changes,
        personal_fields, owner_niks)
SELECT :client_id, :organisation, 'msme', b.id, 'import', b.version, '{}'::jsonb,
       c.personal_fields, ARRAY(SELECT nik FROM msme_owners p WHERE p.msme_id = b.id)
  FROM bumped b JOIN msme_import_owners c ON c.msme_id = b.id
 ORDER BY b.id
"""

# A scale history row for each record whose scale an UPDATE changed, and each record created
# with an owner (the others' first entry is their batch's), with the year of the row's sales
# (db/writes/msmes.py `sales_year`) and its rule version: a correction where the record's latest
# entry before today (a row: migration 0016 wrote an imported record's first entry out when its
# scale changed) counts in the same year, a later one, or the sales' year is not known
# (domain/scale.py `entry_rule_version`, as `updateMsme` writes it), and the owner on record
# after the import's write (_OWNERS ran before), whose figures the row holds (migration 0062).
_SCALES = """
INSERT INTO msme_scale_history
       (msme_id, scale, effective_from, annual_sales, capital, turnover_year, rule_version,
        owner_niks)
SELECT w.id, w.scale, :today, w.annual_turnover, w.capital, s.turnover_year,
       CASE WHEN p.year IS NOT NULL AND NOT coalesce(s.turnover_year > p.year, false)
            THEN :correction ELSE :rule_version END,
       ARRAY(SELECT nik FROM msme_owners o WHERE o.msme_id = w.id)
  FROM msme_import_written w
       CROSS JOIN LATERAL (
           SELECT CASE WHEN w.annual_turnover IS NOT NULL THEN w.turnover_year END
                  AS turnover_year) s
       LEFT JOIN LATERAL (
           SELECT coalesce(h.turnover_year, extract(year FROM h.effective_from)::int) AS year
             FROM msme_scale_history h
            WHERE h.msme_id = w.id AND h.effective_from < :today
            ORDER BY h.effective_from DESC
            LIMIT 1) p ON NOT w.created
 WHERE w.scale_row
ON CONFLICT (msme_id, effective_from) DO UPDATE
   SET scale = EXCLUDED.scale, annual_sales = EXCLUDED.annual_sales,
       capital = EXCLUDED.capital, turnover_year = EXCLUDED.turnover_year,
       rule_version = EXCLUDED.rule_version, owner_niks = EXCLUDED.owner_niks,
       recorded_at = now()
"""

_COUNTS = """
SELECT count(*) FILTER (WHERE w.created),
       count(*) FILTER (WHERE NOT coalesce(w.created, false))
  FROM msme_import_written w
       FULL JOIN msme_import_owners o ON o.msme_id = w.id
"""


def _named(nibs: str, issuers: str, numbers: str) -> str:
    """SQL for the ids of the records holding the NIBs of the array parameter `nibs` and the SKUs
    of `issuers` and `numbers` (the issuer and number of each, in step): each probes its unique
    index (uq_msmes_nib, uq_msmes_sku_issuer); a chunk without SKUs probes only the first."""
    return f"""SELECT id FROM msmes WHERE nib = ANY({nibs})
                UNION ALL
                SELECT n.id
                  FROM unnest({issuers}, {numbers}) AS k (issuer, number)
                  JOIN msmes n ON n.sku_issuer = k.issuer AND n.sku_number = k.number"""  # noqa: S608  # placeholders, not input


def _keys(nibs: Sequence[str], skus: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """The parameters of `_NAMED_IDS` naming the records holding `nibs` or `skus`."""
    return {
        "nibs": list(nibs),
        "issuers": [issuer for issuer, _ in skus],
        "numbers": [number for _, number in skus],
    }


# The ids of the records a chunk names, for the statements reading or locking them, its keys
# given as `_keys`.
_NAMED_IDS = text(
    _named("CAST(:nibs AS text[])", "CAST(:issuers AS text[])", "CAST(:numbers AS text[])")
).columns(MSMES.c.id)


# The stored values a row without some columns keeps (`_Chunks.as_stored`), by draft field
# name, and the columns the declaration it keeps is read from (domain/scale.py
# `kept_declaration`, as `updateMsme` reads it).
_STORED_VALUES = (
    MSMES.c.nib,
    MSMES.c.sku_number,
    MSMES.c.sku_issuer,
    MSMES.c.name,
    MSMES.c.regency_code,
    MSMES.c.district_code.label("district"),
    MSMES.c.established_on,
    MSMES.c.capital,
    MSMES.c.annual_turnover,
    MSMES.c.turnover_year,
    MSMES.c.employees,
    MSMES.c.scale,
    MSMES.c.declared_scale,
)
_STORED_OWNER = tuple(MSME_OWNERS.c[column].label(f"owner.{column}") for column in OWNER_COLUMNS)


async def stored_records(
    connection: AsyncConnection,
    scope: RowScope,
    nibs: Sequence[str],
    skus: Sequence[tuple[str, str]],
    *,
    owners: bool,
) -> list[dict[str, Any]]:
    """The stored values of the records inside `scope` holding `nibs` or `skus` (issuer,
    number), with their owner's personal columns (as `owner.<column>`) when `owners`.

    The scope is the statement's own WHERE clause (`RowScope.rows`), as in every read: a record
    outside it is not even selected, so neither is its owner's personal data, which the
    importing client may not read. Its rows are refused anyway (`_Chunks._match`), on what
    `locked_records` reads of it."""
    columns = (*_STORED_VALUES, *_STORED_OWNER) if owners else _STORED_VALUES
    found = MSMES.outerjoin(MSME_OWNERS, MSME_OWNERS.c.msme_id == MSMES.c.id) if owners else MSMES
    statement = (
        select(*columns).select_from(found).where(MSMES.c.id.in_(_NAMED_IDS), scope.rows(MSMES))
    )
    records = await connection.execute(statement, _keys(nibs, skus))
    return [dict(record) for record in records.mappings()]


# Lock a chunk's existing records first, in id order, before the set checks: the writes then
# read values nobody can change before the import commits, and the jurisdiction check and the
# check of moves (`_held_by_programmes`) read where each record is from what this returns
# instead of probing msmes a second time. (A record a rejected row names stays locked until the
# import ends; single writes wait for an import anyway.) The NIBs, and the SKUs' issuers and
# numbers, are array parameters: one index probe per key (`_named`). Each record's owner on
# record comes with it (a probe of msme_owners by its key): the record's figures are the owner's
# finances (domain.personal.OWNER_FINANCES), which a row compares or overwrites, so the owner is
# a data subject of the import (`_OwnersChanged.figures_of`).
_LOCKED_COLUMNS = (
    MSMES.c.id,
    MSMES.c.nib,
    MSMES.c.sku_number,
    MSMES.c.sku_issuer,
    MSMES.c.regency_code,
    MSMES.c.district_code,
)
_NIK_ON_RECORD = (
    select(MSME_OWNERS.c.nik).where(MSME_OWNERS.c.msme_id == MSMES.c.id).scalar_subquery()
)


@lru_cache(maxsize=256)
def _locking(scope: RowScope) -> Select[Any]:
    """The lock statement for the imports of `scope`. A record outside it is locked and read too,
    for its rows' CONFLICT (`_Chunks._refusal`), but its owner's NIK is not even selected: only
    the rows written, all inside the jurisdiction, need it, and another province's owner is
    personal data the importing client may not read. `RowScope.rows` says which records are
    inside, as in every read."""
    owner_nik = case((scope.rows(MSMES), _NIK_ON_RECORD)).label("owner_nik")
    return (
        select(*_LOCKED_COLUMNS, owner_nik)
        .where(MSMES.c.id.in_(_NAMED_IDS))
        .order_by(MSMES.c.id)
        .with_for_update(of=MSMES)
    )


async def locked_records(
    connection: AsyncConnection,
    scope: RowScope,
    nibs: Sequence[str],
    skus: Sequence[tuple[str, str]],
) -> list[RowMapping]:
    """The records holding `nibs` or `skus` (issuer, number), wherever they lie, locked for the
    import's transaction (`_locking`), with the NIK of the owner on record of those inside
    `scope` (`owner_nik`; None for the others, and for a record without an owner)."""
    records = await connection.execute(_locking(scope), _keys(nibs, skus))
    return list(records.mappings())


# Where the records holding the NIBs of rows refused when checked lie (`_taken_elsewhere`).
_HOLDERS = "SELECT nib, regency_code FROM msmes WHERE nib = ANY($1::text[])"


async def _write(
    connection: AsyncConnection,
    actor: Actor,
    today: date,
    *,
    fresh: Sequence[tuple[Any, ...]],
    existing: int,
    staged_new: int,
    owned: bool,
    noted: _OwnersChanged,
) -> tuple[int, int]:
    """A chunk's `fresh` rows (see _create) and its staged rows, written set-based, `existing`
    of them records locked already (in msme_import_existing), `staged_new` new ones (with an
    owner or an SKU), `owned` when any has an owner; (created, updated) counts. What owners
    change goes to `noted`."""
    by = {"client_id": actor.client_id, "organisation": actor.organisation}
    day = {"today": today, "rule_version": RULE_VERSION, "correction": CORRECTION}
    owners = 0
    if owned:
        changes = (await connection.execute(text(_OWNER_CHANGES))).one()
        owners = changes.owners
        noted.former_niks.update(changes.former_niks)
        noted.columns.update(name.removeprefix("owner.") for name in changes.personal_fields)
    if existing:
        await connection.execute(text(_UPDATE), by)
    created = await _create(connection, actor, today, fresh)
    if staged_new:
        await connection.execute(text(_CREATE_STAGED), by)
    if owners:
        await connection.execute(text(_OWNERS))
        await connection.execute(text(_OWNER_HISTORY), by)
    if not (existing or staged_new or owners):
        return created, 0  # the usual new register: msme_import_written is empty
    await connection.execute(text(_SCALES), day)
    created_staged, updated = (await connection.execute(text(_COUNTS))).one()
    return created + int(created_staged), int(updated)
