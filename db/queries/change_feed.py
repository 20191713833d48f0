"""The change feed's one statement: the next entries of one record kind after a position, each
with the record as it is now when the reader may see it.

Positions are (commit stamp, entry id), in the order migration 0016 explains: whatever a reader
sees is a prefix of that order, so a position once passed is never preceded by a later commit.
The entry says where the record was before and after the change; the reader's jurisdiction,
applied to both with the same rule as every other read (db/queries/scoping.py), decides whether
the entry concerns it and how: into the jurisdiction is a creation, out of it a removal. The
record is joined as it is now, within the jurisdiction, so an entry never shows more than a
fresh read would; an entry whose record has since left is passed over (its removal follows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    column,
    false,
    func,
    literal,
    null,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import FromClause

from db import models
from db.models import table_of
from db.queries import Record
from db.queries.scoping import within, within_place

LOG = table(
    "change_log",
    column("id", BigInteger),
    column("xid"),
    column("record_kind", Text),
    column("record_id", Text),
    column("operation", Text),
    column("deactivated", Boolean),
    column("personal", Boolean),
    *(
        column(f"{when}_{level}", Text)
        for when in ("old", "new")
        for level in ("province", "regency", "district")
    ),
    column("owner_client_id", Text),
)
STAMPS = table("change_transactions", column("xid"), column("seq", BigInteger))

MSMES = table_of(models.Msme)
OWNERS = table_of(models.MsmeOwner)
COOPERATIVES = table_of(models.Cooperative)
PARTICIPATIONS = table_of(models.Participation)
GUARANTEES = table_of(models.Guarantee)

LAST_ID = 2**63 - 1
"""An entry id past every entry: (stamp, LAST_ID) is the position after all of a stamp."""


@dataclass(frozen=True, slots=True, order=True)
class Position:
    seq: int
    id: int


START = Position(0, 0)


@dataclass(frozen=True, slots=True)
class Reader:
    """Whose feed: the jurisdiction and rights that decide which entries and fields it gets."""

    jurisdiction: str
    personal_data: bool
    """Reads owners' personal data (pii:read): their changes concern it, and it gets them."""
    client_id: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[Record]
    """In feed order, each with `position`, `change` and the record's columns (`present` is
    false when the record is gone from the reader's view)."""
    end: Position
    has_more: bool


def _was_within(code: str) -> ColumnElement[bool]:
    place = within_place(LOG.c.old_province, LOG.c.old_regency, LOG.c.old_district, code)
    return and_(LOG.c.old_province.is_not(None), place)


def _is_within(code: str) -> ColumnElement[bool]:
    place = within_place(LOG.c.new_province, LOG.c.new_regency, LOG.c.new_district, code)
    return and_(LOG.c.new_province.is_not(None), place)


def _change(code: str) -> ColumnElement[str]:
    """What the entry means to a reader in `code`: a move in is a creation, out a removal."""
    was, is_ = _was_within(code), _is_within(code)
    return case(
        (LOG.c.operation == "delete", literal("REMOVED")),
        (~is_, literal("REMOVED")),
        (LOG.c.operation == "insert", literal("CREATED")),
        (~was, literal("CREATED")),
        (LOG.c.deactivated.is_(true()), literal("DEACTIVATED")),
        else_=literal("UPDATED"),
    )


def _current(kind: str, reader: Reader) -> tuple[FromClause, ColumnElement[bool], list[Any]]:
    """The record table of `kind`, how an entry finds its row if the reader may see it, and the
    columns to select (the first is the record's key). The casts of the entry's key run only on
    entries of `kind` (see _concerns): the other kinds' keys need not be numbers."""
    code = reader.jurisdiction
    numeric_id = cast(LOG.c.record_id, BigInteger)
    if kind == "msme":
        # Its cooperative is named only if the reader may see it, as `Msme.cooperative` does.
        cooperative = COOPERATIVES.alias("member_of")
        joined: FromClause = MSMES.outerjoin(
            cooperative,
            and_(cooperative.c.id == MSMES.c.cooperative_id, within(cooperative, code)),
        )
        condition = and_(MSMES.c.id == numeric_id, within(MSMES, code))
        selected: list[Any] = [
            *(column for column in MSMES.c if column.name != "cooperative_id"),
            cooperative.c.id.label("cooperative_id"),
        ]
        if reader.personal_data:
            joined = joined.outerjoin(OWNERS, OWNERS.c.msme_id == MSMES.c.id)
            selected += [
                OWNERS.c[name].label(f"owner_{name}")
                for name in ("nik", "full_name", "sex", "birth_date", "phone", "address")
            ]
        return joined, condition, selected
    if kind == "cooperative":
        return (
            COOPERATIVES,
            and_(COOPERATIVES.c.id == numeric_id, within(COOPERATIVES, code)),
            list(COOPERATIVES.c),
        )
    if kind == "participation":
        subject_msme = MSMES.alias("subject_msme")
        subject_cooperative = COOPERATIVES.alias("subject_cooperative")
        visible = or_(
            and_(PARTICIPATIONS.c.msme_id.is_not(None), within(subject_msme, code)),
            and_(PARTICIPATIONS.c.cooperative_id.is_not(None), within(subject_cooperative, code)),
        )
        joined = PARTICIPATIONS.outerjoin(
            subject_msme, subject_msme.c.id == PARTICIPATIONS.c.msme_id
        ).outerjoin(
            subject_cooperative, subject_cooperative.c.id == PARTICIPATIONS.c.cooperative_id
        )
        return joined, and_(PARTICIPATIONS.c.id == numeric_id, visible), list(PARTICIPATIONS.c)
    guarantees_within = within_place(
        GUARANTEES.c.province_code, GUARANTEES.c.regency_code, null(), code
    )
    condition = and_(
        cast(GUARANTEES.c.id, Text) == LOG.c.record_id,
        GUARANTEES.c.guarantor_client_id == reader.client_id,
        guarantees_within,
    )
    return GUARANTEES, condition, list(GUARANTEES.c)


def _concerns(kind: str, reader: Reader) -> ColumnElement[bool]:
    """Entries that concern the reader: of `kind`, touching its jurisdiction, of data it reads."""
    code = reader.jurisdiction
    clauses = [LOG.c.record_kind == kind, or_(_was_within(code), _is_within(code))]
    if not reader.personal_data:
        clauses.append(LOG.c.personal.is_(false()))
    if kind == "guarantee":
        clauses.append(LOG.c.owner_client_id == reader.client_id)
    return and_(*clauses)


def statement(kind: str, reader: Reader, after: Position, first: int) -> Select[Any]:
    """One statement, so one snapshot: the entries, and the newest stamp the reader can see,
    which is where it stands once no entry is left."""
    records, found, columns = _current(kind, reader)
    entries = (
        select(
            STAMPS.c.seq.label("feed_seq"),
            LOG.c.id.label("feed_id"),
            LOG.c.record_id.label("feed_record_id"),
            _change(reader.jurisdiction).label("feed_change"),
            columns[0].is_not(None).label("present"),
            *columns,
        )
        .select_from(
            LOG.join(STAMPS, STAMPS.c.xid == LOG.c.xid).outerjoin(
                records, and_(_is_within(reader.jurisdiction), found)
            )
        )
        .where(
            STAMPS.c.seq >= after.seq,
            or_(STAMPS.c.seq > after.seq, LOG.c.id > after.id),
            _concerns(kind, reader),
        )
        .order_by(STAMPS.c.seq, LOG.c.id)
        .limit(first + 1)
        .lateral("entries")
    )
    head = select(func.max(STAMPS.c.seq).label("head")).subquery("head")
    return select(head.c.head, *entries.c).select_from(head.outerjoin(entries, true()))


async def page(
    connection: AsyncConnection, kind: str, reader: Reader, *, after: Position, first: int
) -> FeedPage:
    rows = list(await connection.execute(statement(kind, reader, after, first)))
    entries = [row for row in rows if row.feed_seq is not None]
    has_more = len(entries) > first
    entries = entries[:first]
    if has_more:
        end = Position(entries[-1].feed_seq, entries[-1].feed_id)
    elif rows and rows[0].head is not None:
        end = max(after, Position(rows[0].head, LAST_ID))
    else:
        end = after
    return FeedPage(entries, end, has_more)
