"""MSME writes: create, update, (de)activate, report a scale change; owners kept apart (UU 27/2022).

Callers validate with `domain.records.check_registered_msme` first; these functions enforce what
only the database knows (the NIB is free, the record is inside the jurisdiction, the version is
current).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.errors import is_lock_timeout
from db.models import MSME_OWNERS, MSME_SCALE_HISTORY, MSMES
from db.queries import Record, programmes
from db.queries.aggregates import graduation_year
from db.queries.owners import owner_nik
from db.queries.scoping import RowScope
from db.writes import ImportInProgress
from db.writes.history import Actor, record
from db.writes.versioned import inserted, locked, write
from domain.errors import InvalidValue
from domain.personal import OWNER_COLUMNS
from domain.records import CheckedMsme, CheckedOwner
from domain.scale import RULE_VERSION, classify, entry_rule_version, standing_declaration

TIMELINE = programmes.SCALE_HISTORY
"""The scale history as read: the rows, and the first entries an import keeps per batch."""
OWNER_NIK = (owner_nik(MSMES.c.id),)
"""What a write's statement reads beside the MSME it locks or writes: its owner's NIK, since
the row it answers with may hand out the figures that are the owner's finances
(domain.personal.OWNER_FINANCES), and the audit entry then names the owner
(resolvers/msme_writes.py); returned nowhere else."""
IMPORT_LOCK = func.hashtext("sinergi.import")
"""Advisory lock key: an import holds it exclusively, single writes share it."""
IMPORT_TURN = func.hashtext("sinergi.import.turn")
"""Advisory lock key: an import's turn among imports, held exclusively until it commits and taken
before IMPORT_LOCK. Imports queue for it, not for IMPORT_LOCK: PostgreSQL queues a shared
request behind the exclusive ones that came first, so with imports queued there, a single
write would wait out each of them in turn (three in flight took it past IMPORT_WAIT). Waiting
here, at most one import at a time waits for IMPORT_LOCK, and a write for the one import holding
or about to take it."""
IMPORT_WAIT = "2s"
"""How long a write waits for an import in progress before it is refused (ImportInProgress).
A batch through `importMsmes` (5,000 rows at most) ends well within it; an operator's import of
a whole register holds the lock for seconds per 100,000 rows, and a write waiting that out would
run into the statement timeout, an uncoded failure, holding its pooled connection meanwhile."""


@dataclass(frozen=True, slots=True)
class OwnerChange:
    """What a write did to an MSME's owner, for the history and the audit entry: the owner
    columns it changed (wrote or erased), and the NIK of the owner on record before when it
    changed or erased that owner, who is a data subject of the write as much as the new one."""

    columns: tuple[str, ...] = ()
    former_nik: str | None = None

    @property
    def personal_fields(self) -> list[str]:
        """As the record's history names them: `owner.<column>`."""
        return [f"owner.{column}" for column in self.columns]

    def owners_of_figures(self, owner: CheckedOwner | None) -> list[str] | None:
        """Whose figures the write's history entry holds (`owner`: the one on record after
        it): its before's were the replaced or erased owner's. None: the owner stayed, and the
        database takes the one on record (migration 0062)."""
        if self.former_nik is None:
            return None
        return sorted({self.former_nik} | ({owner.nik} if owner is not None else set()))


def natural_keys(argument: str) -> dict[str, str]:
    """The keys that name one business nationwide, a NIB and an SKU (its number with its
    issuing village), each by the field of `argument` ("input", "changes") it came from."""
    return {"uq_msmes_nib": f"{argument}.nib", "uq_msmes_sku_issuer": f"{argument}.skuNumber"}


def record_values(checked: CheckedMsme, cooperative_id: int | None) -> dict[str, Any]:
    """The `msmes` columns of a checked draft (the owner goes to its own table)."""
    values = {key: value for key, value in asdict(checked).items() if key != "owner"}
    values["scale"] = str(checked.scale)
    values["declared_scale"] = (
        None if checked.declared_scale is None else str(checked.declared_scale)
    )
    values["cooperative_id"] = cooperative_id
    return values


async def create(
    connection: AsyncConnection,
    checked: CheckedMsme,
    actor: Actor,
    *,
    cooperative_id: int | None,
    today: date,
) -> tuple[Record, OwnerChange]:
    """A NIB or an SKU names one business nationwide, so a taken one is refused wherever its
    record is."""
    await after_imports(connection)
    values = record_values(checked, cooperative_id)
    created = await inserted(connection, MSMES, values, keys=natural_keys("input"))
    owner = await set_owner(connection, created.id, checked.owner)
    await note_scale(connection, created, effective_from=today)
    await record(
        connection,
        actor,
        kind="msme",
        record_id=created.id,
        operation="create",
        version=created.version,
        before=None,
        after=values,
        personal_fields=owner.personal_fields,
    )
    return created, owner


async def after_imports(connection: AsyncConnection) -> None:
    """Wait for an import in progress (single writes do not wait for each other), at most
    IMPORT_WAIT: ImportInProgress after that.

    An import writes chunk by chunk and keeps the rollup rows it touched locked until it commits;
    a single write slipping in between would lock a record a later chunk reaches, then wait for
    one of those rollup rows: a deadlock, which PostgreSQL breaks by failing one of the two.
    """
    await _import_lock(connection, IMPORT_LOCK, exclusive=False, bounded=True)


async def before_import(connection: AsyncConnection, *, bounded: bool) -> None:
    """Wait for this import's turn (IMPORT_TURN: the imports ahead of it end), then for the
    single writes under way, then hold every other MSME write off until this transaction ends;
    `bounded`: each wait at most IMPORT_WAIT, as a single write waits (ImportInProgress after
    that), else however long it takes."""
    await _import_lock(connection, IMPORT_TURN, exclusive=True, bounded=bounded)
    await _import_lock(connection, IMPORT_LOCK, exclusive=True, bounded=bounded)


async def _import_lock(
    connection: AsyncConnection,
    key: ColumnElement[Any],
    *,
    exclusive: bool,
    bounded: bool,
) -> None:
    """The advisory lock `key` for this transaction. Bounded, it is first tried without waiting
    (no import: one statement, as before), then waited for in the lock's queue under a
    `lock_timeout` set for that statement alone (an import queued behind single writes is not
    overtaken by later ones, as it would be by retried attempts)."""
    if exclusive:
        take, attempt = func.pg_advisory_xact_lock, func.pg_try_advisory_xact_lock
    else:
        take, attempt = func.pg_advisory_xact_lock_shared, func.pg_try_advisory_xact_lock_shared
    if not bounded:
        await connection.execute(select(take(key)))
        return
    if (await connection.execute(select(attempt(key)))).scalar_one():
        return
    await connection.execute(text(f"SET LOCAL lock_timeout = '{IMPORT_WAIT}'"))
    try:
        await connection.execute(select(take(key)))
    except DBAPIError as error:
        if is_lock_timeout(error):
            raise ImportInProgress from None
        raise
    await connection.execute(text("SET LOCAL lock_timeout TO DEFAULT"))


async def lock(connection: AsyncConnection, msme_id: int, scope: RowScope) -> Record:
    """The MSME a mutation's `id` names."""
    await after_imports(connection)
    return await locked(
        connection, MSMES, msme_id, scope.rows(MSMES), field="id", returning=OWNER_NIK
    )


async def update(
    connection: AsyncConnection,
    current: Record,
    *,
    expected_version: int,
    values: dict[str, Any],
    actor: Actor,
    owner: CheckedOwner | None,
    owner_given: bool,
    today: date,
) -> tuple[Record, OwnerChange]:
    """`owner_given` False leaves the owner alone; True with None erases the personal data."""
    change = await set_owner(connection, current.id, owner) if owner_given else OwnerChange()
    written = await write(
        connection,
        MSMES,
        current,
        expected_version=expected_version,
        values=values,
        actor=actor,
        kind="msme",
        operation="update",
        personal_fields=change.personal_fields,
        keys=natural_keys("changes"),
        returning=OWNER_NIK,
        owner_niks=change.owners_of_figures(owner),
    )
    if written.scale != current.scale:
        previous = await _previous_year(connection, current.id, before=today)
        year = sales_year(written.annual_turnover, written.turnover_year)
        rule_version = entry_rule_version(year, previous)
        await note_scale(connection, written, effective_from=today, rule_version=rule_version)
    return written, change


async def _previous_year(connection: AsyncConnection, msme_id: int, *, before: date) -> int | None:
    """The year the record's latest scale entry before `before` counts in (None: it has none),
    what an update's entry is told a correction by (domain/scale.py `entry_rule_version`). An
    entry of the same day is left out: the new one replaces it. The table is enough: an imported
    record's first entry is written out as a row when its scale changes (migration 0016)."""
    return (
        await connection.execute(
            select(graduation_year(MSME_SCALE_HISTORY))
            .where(
                MSME_SCALE_HISTORY.c.msme_id == msme_id,
                MSME_SCALE_HISTORY.c.effective_from < before,
            )
            .order_by(MSME_SCALE_HISTORY.c.effective_from.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def set_active(
    connection: AsyncConnection,
    current: Record,
    *,
    active: bool,
    expected_version: int,
    actor: Actor,
) -> Record:
    """Deactivate, or undo a deactivation. A reactivation is an update of `is_active` (false to
    true) in the history, whose operations (migration 0004) have no name of its own; the change
    feed shows it as UPDATED with the record active again."""
    return await write(
        connection,
        MSMES,
        current,
        expected_version=expected_version,
        values={"is_active": active},
        actor=actor,
        kind="msme",
        operation="update" if active else "deactivate",
        returning=OWNER_NIK,
    )


async def report_scale(
    connection: AsyncConnection,
    current: Record,
    *,
    expected_version: int,
    annual_sales: int,
    capital: int | None,
    turnover_year: int,
    effective_from: date,
    actor: Actor,
) -> Record:
    """New annual figures: the scale is recomputed (PP 7/2021) and a change enters the history.

    A report may not predate the latest recorded change: the history is a timeline, and the
    current scale must be the one in force now.
    """
    latest = (
        await connection.execute(
            select(TIMELINE.c.effective_from, TIMELINE.c.scale)
            .where(TIMELINE.c.msme_id == current.id)
            .order_by(TIMELINE.c.effective_from.desc())
            .limit(1)
        )
    ).first()
    if latest is not None and effective_from < latest.effective_from:
        raise InvalidValue(
            "report.effectiveFrom",
            f"is before the latest recorded scale change ({latest.effective_from})",
        )
    capital = current.capital if capital is None else capital
    scale = classify(capital=capital, annual_sales=annual_sales)
    written = await write(
        connection,
        MSMES,
        current,
        expected_version=expected_version,
        values={
            "annual_turnover": annual_sales,
            "capital": capital,
            "turnover_year": turnover_year,
            "scale": str(scale),
            # A declaration the new figures contradict is cleared, or it refuses later writes.
            "declared_scale": _standing(current, capital=capital, annual_sales=annual_sales),
        },
        actor=actor,
        kind="msme",
        operation="scale",
        returning=OWNER_NIK,
    )
    if latest is None or latest.scale != written.scale or latest.effective_from == effective_from:
        await note_scale(connection, written, effective_from=effective_from)
    return written


async def note_scale(
    connection: AsyncConnection,
    msme: Record,
    *,
    effective_from: date,
    rule_version: str = RULE_VERSION,
) -> None:
    """One history row per change; a second report on the same day replaces that day's row,
    rule version too (a correction's or not, domain/scale.py `entry_rule_version`). The row
    keeps the year its sales were made, which graduations count in (migration 0055)."""
    statement = insert(MSME_SCALE_HISTORY).values(
        msme_id=msme.id,
        scale=msme.scale,
        effective_from=effective_from,
        annual_sales=msme.annual_turnover,
        capital=msme.capital,
        turnover_year=sales_year(msme.annual_turnover, msme.turnover_year),
        rule_version=rule_version,
    )
    excluded = statement.excluded
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["msme_id", "effective_from"],
            set_={
                "scale": excluded.scale,
                "annual_sales": excluded.annual_sales,
                "capital": excluded.capital,
                "turnover_year": excluded.turnover_year,
                "rule_version": excluded.rule_version,
                "owner_niks": excluded.owner_niks,
                "recorded_at": func.now(),
            },
        )
    )


def sales_year(annual_sales: int | None, turnover_year: int | None) -> int | None:
    """A history entry's turnover year from its record's: none without sales to be of a year (a
    scale from capital alone), as migration 0055's SQL has it for the entries it writes."""
    return None if annual_sales is None else turnover_year


async def stored_owner(connection: AsyncConnection, msme_id: int) -> dict[str, Any]:
    """The owner's stored row (none: empty), locked for the write that replaces it."""
    current = (
        await connection.execute(
            select(MSME_OWNERS).where(MSME_OWNERS.c.msme_id == msme_id).with_for_update()
        )
    ).first()
    return {} if current is None else dict(current._mapping)


async def set_owner(
    connection: AsyncConnection, msme_id: int, owner: CheckedOwner | None
) -> OwnerChange:
    """Replace (or erase, with None) the owner: which personal fields changed, and whose."""
    stored = await stored_owner(connection, msme_id)
    if owner is None:
        if not stored:
            return OwnerChange()
        await connection.execute(delete(MSME_OWNERS).where(MSME_OWNERS.c.msme_id == msme_id))
        erased = tuple(name for name in OWNER_COLUMNS if stored[name] is not None)
        return OwnerChange(erased, stored["nik"])
    values = asdict(owner)
    changed = tuple(name for name in OWNER_COLUMNS if stored.get(name) != values[name])
    if not changed:
        return OwnerChange()
    statement = insert(MSME_OWNERS).values(msme_id=msme_id, **values)
    await connection.execute(
        statement.on_conflict_do_update(index_elements=["msme_id"], set_=values)
    )
    return OwnerChange(changed, stored.get("nik"))


def _standing(current: Record, *, capital: int | None, annual_sales: int) -> str | None:
    declared = standing_declaration(
        current.declared_scale, capital=capital, annual_sales=annual_sales
    )
    return None if declared is None else str(declared)
