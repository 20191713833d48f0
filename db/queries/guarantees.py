"""Guarantees issued by BUMDs, their status history, and the guarantor's equity.

Recording a guarantee locks the guarantor's row first, so two guarantees recorded at the same
moment cannot both squeeze under the gearing limit, and then its decision's row, so two
guarantors recording on the same decision at once cannot both find it unguaranteed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Label,
    case,
    cast,
    exists,
    extract,
    func,
    select,
    update,
)
from sqlalchemy import Integer as SqlInteger
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import ELIGIBILITY_DECISIONS, GUARANTEE_STATUS_CHANGES, GUARANTEES, GUARANTORS
from db.queries import Record, any_of
from db.queries.aggregates import Figures, record_measures
from db.queries.ownership import Ownership
from db.queries.scoping import within

OUTSTANDING = ("active", "claimed")

DIMENSIONS: Mapping[str, ColumnElement[Any]] = {
    "province": GUARANTEES.c.province_code,
    "regency": GUARANTEES.c.regency_code,
    "status": GUARANTEES.c.status,
    "year": cast(extract("year", GUARANTEES.c.starts_on), SqlInteger),
    "subject_kind": case((GUARANTEES.c.msme_id.isnot(None), "msme"), else_="cooperative"),
}
SUMS: Mapping[str, ColumnElement[Any]] = {
    "amount": GUARANTEES.c.amount,
    "coverage": GUARANTEES.c.coverage_amount,
}


def figures(region: str, *, members_only: bool) -> Figures:
    """Guarantees of businesses in `region`, with the measures disclosure control needs.

    `members_only`: a table of members, its cells too few to show left out, key and all. A
    guaranteed loan is a borrower's credit file, not public: a cell `{62.71, claimed}` shown
    suppressed beside no other told a ministry that some borrower of that regency defaulted.
    For whoever reads its own guarantees apart (a guarantor) the caller says not: a hidden cell
    of none of its own is already left out, and one of its own shown alike, rivals or none."""
    return Figures(
        source=GUARANTEES,
        dimensions=DIMENSIONS,
        measures=record_measures(GUARANTEES.c.cell_key, SUMS),
        where=[within(GUARANTEES, region)],
        sums=tuple(SUMS),
        members_only=members_only,
    )


async def set_equity(
    connection: AsyncConnection, client_id: str, equity: int, gearing_limit: Decimal
) -> None:
    statement = insert(GUARANTORS).values(
        client_id=client_id, equity=equity, gearing_limit=gearing_limit
    )
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=[GUARANTORS.c.client_id],
            set_={"equity": equity, "gearing_limit": gearing_limit, "updated_at": func.now()},
        )
    )


async def lock_guarantor(connection: AsyncConnection, client_id: str) -> Record | None:
    statement = (
        select(GUARANTORS.c.equity, GUARANTORS.c.gearing_limit)
        .where(GUARANTORS.c.client_id == client_id)
        .with_for_update()
    )
    return (await connection.execute(statement)).first()


async def outstanding_cover(connection: AsyncConnection, own: Ownership) -> int:
    """The cover outstanding on the guarantor's own guarantees (`own`), which its gearing limit
    weighs. Its whole book: a client's guarantees all lie inside its jurisdiction (each keeps
    its decision's place, and a check finds only businesses inside it), so the jurisdiction
    leaves none out; for an external principal it is what makes the guarantees under its id
    of the older form, shared by every jurisdiction's users, count towards the one whose
    jurisdiction they lie in."""
    statement = select(func.coalesce(func.sum(GUARANTEES.c.coverage_amount), 0)).where(
        own.guarantees, GUARANTEES.c.status.in_(OUTSTANDING)
    )
    return int((await connection.execute(statement)).scalar_one())


def has_defaulted(subject: ColumnElement[bool], own: Ownership) -> Exists:
    """Whether a guarantee of the guarantor's own (`own`) for the business `subject` picks out
    has defaulted (rule R13). Its own only: counting every guarantor's let a rival make a
    business ineligible for all the others with a guarantee of Rp1 defaulted the day it was
    recorded, and told each guarantor of its rivals' defaults. The business's credit history
    with other lenders is what the lender attests from SLIK (R05, R06)."""
    return exists().where(subject, own.guarantees, GUARANTEES.c.status == "defaulted")


def guarantee_subject() -> Label[str | None]:
    """The data subject of a guarantee: its decision's (`subject_nik`, the owner of the MSME
    when it was checked; NULL for a cooperative's). A guarantee rests on the decision, and is
    data about the person the decision is about, whoever owns the business today."""
    subject = select(ELIGIBILITY_DECISIONS.c.subject_nik).where(
        ELIGIBILITY_DECISIONS.c.id == GUARANTEES.c.decision_id
    )
    return subject.scalar_subquery().label("subject_nik")


async def is_guaranteed(connection: AsyncConnection, decision_id: uuid.UUID) -> bool:
    """Whether the decision is guaranteed, its row locked first (`FOR UPDATE`) until the
    recording commits. Two principals may hold one decision (an external SSO's decisions of the
    older id `ISSUER#CLIENT` are every jurisdiction's that contains them), each locking only its
    own guarantor row: unlocked, both found it unguaranteed and the later insert hit the unique
    key, an INTERNAL error where the contract says CONFLICT. `FOR UPDATE` also waits for any
    transaction that inserted a guarantee on the decision (its foreign key holds the row `FOR
    KEY SHARE`), and the guarantee is looked for in a statement of its own, after the lock: READ
    COMMITTED then sees the guarantee committed while it waited."""
    lock = (
        select(ELIGIBILITY_DECISIONS.c.id)
        .where(ELIGIBILITY_DECISIONS.c.id == decision_id)
        .with_for_update()
    )
    await connection.execute(lock)
    statement = select(GUARANTEES.c.id).where(GUARANTEES.c.decision_id == decision_id)
    return (await connection.execute(statement)).first() is not None


async def insert_guarantee(
    connection: AsyncConnection, values: dict[str, Any], *, changed_by: str
) -> Record:
    row: Record = (
        await connection.execute(insert(GUARANTEES).values(**values).returning(GUARANTEES))
    ).one()
    await connection.execute(
        GUARANTEE_STATUS_CHANGES.insert().values(
            guarantee_id=row.id,
            from_status=None,
            to_status=row.status,
            effective_on=row.starts_on,
            changed_by=changed_by,
        )
    )
    return row


async def guarantee_for_update(
    connection: AsyncConnection, guarantee_id: uuid.UUID, visible: ColumnElement[bool]
) -> Record | None:
    """A guarantee among those `visible` to the caller (resolvers/policy.py decides), locked for
    its status to change, with its `guarantee_subject`."""
    statement = (
        select(GUARANTEES, guarantee_subject())
        .where(GUARANTEES.c.id == guarantee_id, visible)
        .with_for_update(of=GUARANTEES)
    )
    return (await connection.execute(statement)).first()


async def latest_effective_on(connection: AsyncConnection, guarantee_id: uuid.UUID) -> date:
    """The day the guarantee's latest status change took effect, which the next may not precede.
    Read once `guarantee_for_update` holds the lock, in a statement of its own: a subquery of
    that statement would read the history as it stood before the lock was waited for (READ
    COMMITTED rechecks the locked row alone), missing a change committed meanwhile."""
    statement = select(func.max(GUARANTEE_STATUS_CHANGES.c.effective_on)).where(
        GUARANTEE_STATUS_CHANGES.c.guarantee_id == guarantee_id
    )
    latest: date = (await connection.execute(statement)).scalar_one()
    return latest


async def change_status(
    connection: AsyncConnection,
    guarantee: Record,
    *,
    status: str,
    effective_on: date,
    note: str | None,
    changed_by: str,
) -> Record:
    row: Record = (
        await connection.execute(
            update(GUARANTEES)
            .where(GUARANTEES.c.id == guarantee.id)
            .values(status=status)
            .returning(GUARANTEES)
        )
    ).one()
    await connection.execute(
        GUARANTEE_STATUS_CHANGES.insert().values(
            guarantee_id=guarantee.id,
            from_status=guarantee.status,
            to_status=status,
            effective_on=effective_on,
            note=note,
            changed_by=changed_by,
        )
    )
    return row


async def history(connection: AsyncConnection, guarantee_ids: list[uuid.UUID]) -> list[Record]:
    statement = (
        select(GUARANTEE_STATUS_CHANGES)
        .where(any_of(GUARANTEE_STATUS_CHANGES.c.guarantee_id, guarantee_ids))
        .order_by(GUARANTEE_STATUS_CHANGES.c.guarantee_id, GUARANTEE_STATUS_CHANGES.c.id)
    )
    return list(await connection.execute(statement))
