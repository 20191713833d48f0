"""The change feed's one statement: the next entries of one record kind after a position, each
with the record as it is now when the reader may see it.

A position is an entry's id, numbered at commit as migration 0014 explains: whatever a reader
sees is a prefix of the ids, so a position once passed is never preceded by a later commit.
The entry says where the record was before and after the change; the reader's jurisdiction,
applied to both with the same rule as every other read (db/queries/scoping.py), decides whether
the entry concerns it and how: into the jurisdiction is a creation, out of it a removal. The
record is joined as it is now, within the jurisdiction, so an entry never shows more than a
fresh read would; an entry whose record has since left is passed over (its removal follows).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Text,
    and_,
    bindparam,
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
from sqlalchemy.sql.selectable import FromClause

from db import models
from db.driver import DriverStatement, Pooled, Row, fetch
from db.models import table_of
from db.queries.scoping import within, within_place
from domain.personal import OWNER_FIELDS

LOG = table(
    "change_log",
    column("id", BigInteger),
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

MSMES = table_of(models.Msme)
OWNERS = table_of(models.MsmeOwner)
COOPERATIVES = table_of(models.Cooperative)
PARTICIPATIONS = table_of(models.Participation)
GUARANTEES = table_of(models.Guarantee)

START = 0
"""The position before every entry."""
SCAN_PER_ENTRY = 20
"""A page looks at most this many entries of the log per entry it may return: every page costs
a bounded range of the primary key, however few of the entries concern its reader (a regency
amid national changes), and the planner cannot choose to scan the whole log."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Whose feed: the jurisdiction and rights that decide which entries and fields it gets."""

    jurisdiction: str
    personal_columns: tuple[str, ...]
    """The owners' columns it may read (resolvers/policy.py): none without pii:read."""
    client_id: str

    @property
    def personal_data(self) -> bool:
        """Reads owners' personal data: their changes concern it, and it gets them."""
        return bool(self.personal_columns)


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[Row]
    """In feed order, each with `feed_id` (its position), `feed_record_id`, `feed_change`,
    `record` (JSON text; null when the record is gone from the reader's view, `present` false)
    and `subject` (the NIK whose personal data the record holds, if any)."""
    end: int
    has_more: bool


def _was_within(entries: FromClause, code: str) -> ColumnElement[bool]:
    """Where the record was before the change lies in `code` (a creation was nowhere)."""
    log = entries.c
    place = within_place(log.old_province, log.old_regency, log.old_district, code)
    return and_(log.old_province.is_not(None), place)


def _is_within(entries: FromClause, code: str) -> ColumnElement[bool]:
    """Where the record went lies in `code` (a deletion went nowhere)."""
    log = entries.c
    place = within_place(log.new_province, log.new_regency, log.new_district, code)
    return and_(log.new_province.is_not(None), place)


def _change(entries: FromClause, code: str) -> ColumnElement[str]:
    """What the entry means to a reader in `code`: a move in is a creation, out a removal."""
    log = entries.c
    return case(
        (log.operation == "delete", literal("REMOVED")),
        (~_is_within(entries, code), literal("REMOVED")),
        (log.operation == "insert", literal("CREATED")),
        (~_was_within(entries, code), literal("CREATED")),
        (log.deactivated.is_(true()), literal("DEACTIVATED")),
        else_=literal("UPDATED"),
    )


def _text(column: ColumnElement[Any]) -> ColumnElement[Any]:
    """Money and ids go out as strings, as their GraphQL scalars (Rupiah, ID) write them."""
    return cast(column, Text)


def _record(*pairs: tuple[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """The record as JSON, its fields named as the GraphQL type names them (dates come out in
    ISO form, as the Date scalar writes them), built by PostgreSQL: a page of a thousand
    records is then one value per row to hand on, not thirty to convert in Python."""
    return func.json_build_object(*(part for name, value in pairs for part in (name, value)))


def _msme(reader: Reader) -> tuple[FromClause, ColumnElement[Any], list[Any]]:
    """An MSME names its cooperative only if the reader may see it, as `Msme.cooperative` does,
    and its owner only to a reader with pii:read."""
    code = reader.jurisdiction
    cooperative = COOPERATIVES.alias("member_of")
    joined: FromClause = MSMES.outerjoin(
        cooperative, and_(cooperative.c.id == MSMES.c.cooperative_id, within(cooperative, code))
    )
    m = MSMES.c
    fields = [
        ("id", _text(m.id)),
        ("nib", m.nib),
        ("name", m.name),
        ("kbliCode", m.kbli_code),
        ("kbliSection", m.kbli_section),
        ("scale", func.upper(m.scale)),
        ("establishedOn", m.established_on),
        ("capital", _text(m.capital)),
        ("annualTurnover", _text(m.annual_turnover)),
        ("turnoverYear", m.turnover_year),
        ("employees", m.employees),
        ("isActive", m.is_active),
        ("version", m.version),
        ("provinceCode", m.province_code),
        ("regencyCode", m.regency_code),
        ("districtCode", m.district_code),
        ("cooperativeId", _text(cooperative.c.id)),
    ]
    subject: ColumnElement[Any] = null()
    if reader.personal_data:
        joined = joined.outerjoin(OWNERS, OWNERS.c.msme_id == MSMES.c.id)
        o = OWNERS.c
        readable = [field for field in OWNER_FIELDS if field.column in reader.personal_columns]
        owner = _record(*((field.name, o[field.column]) for field in readable))
        fields.append(("owner", case((o.msme_id.is_not(None), owner), else_=null())))
        subject = o.nik
    return joined, m.id, [_record(*fields), subject]


def _cooperative() -> list[tuple[str, ColumnElement[Any]]]:
    c = COOPERATIVES.c
    return [
        ("id", _text(c.id)),
        ("legalEntityNo", c.legal_entity_no),
        ("odsNo", c.ods_no),
        ("name", c.name),
        ("type", func.upper(c.type)),
        ("tier", c.tier),
        ("status", func.upper(c.status)),
        ("isActive", c.status == "active"),
        ("kbliCode", c.kbli_code),
        ("membersMale", c.members_male),
        ("membersFemale", c.members_female),
        ("memberCount", c.members_male + c.members_female),
        ("businessVolume", _text(c.business_volume)),
        ("assets", _text(c.assets)),
        ("surplus", _text(c.surplus)),
        ("bookYear", c.book_year),
        ("lastRatDate", c.last_rat_date),
        ("lastRatBookYear", c.last_rat_book_year),
        ("version", c.version),
        ("provinceCode", c.province_code),
        ("regencyCode", c.regency_code),
        ("districtCode", c.district_code),
    ]


def _participation() -> list[tuple[str, ColumnElement[Any]]]:
    p = PARTICIPATIONS.c
    return [
        ("id", _text(p.id)),
        ("programmeId", p.programme_id),
        ("msmeId", _text(p.msme_id)),
        ("cooperativeId", _text(p.cooperative_id)),
        ("role", p.role),
        ("status", p.status),
        ("detail", p.detail),
        ("startedOn", p.started_on),
        ("version", p.version),
    ]


def _guarantee() -> list[tuple[str, ColumnElement[Any]]]:
    g = GUARANTEES.c
    return [
        ("id", _text(g.id)),
        ("decisionId", _text(g.decision_id)),
        ("bank", g.bank),
        ("amount", _text(g.amount)),
        ("coverageAmount", _text(g.coverage_amount)),
        ("startsOn", g.starts_on),
        ("endsOn", g.ends_on),
        ("status", func.upper(g.status)),
    ]


def _current(
    kind: str, reader: Reader, entries: FromClause
) -> tuple[FromClause, ColumnElement[bool], ColumnElement[Any], list[Any]]:
    """The record table of `kind`, how an entry finds its row if the reader may see it, the
    row's key (null when it may not), the record as JSON, and the data subject whose personal
    data it holds. The casts of the entry's key run only on
    entries of `kind` (see _concerns): the other kinds' keys need not be numbers."""
    code = reader.jurisdiction
    numeric_id = cast(entries.c.record_id, BigInteger)
    nobody = null()
    if kind == "msme":
        joined, key, columns = _msme(reader)
        return joined, and_(MSMES.c.id == numeric_id, within(MSMES, code)), key, columns
    if kind == "cooperative":
        condition = and_(COOPERATIVES.c.id == numeric_id, within(COOPERATIVES, code))
        return COOPERATIVES, condition, COOPERATIVES.c.id, [_record(*_cooperative()), nobody]
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
        condition = and_(PARTICIPATIONS.c.id == numeric_id, visible)
        return joined, condition, PARTICIPATIONS.c.id, [_record(*_participation()), nobody]
    guarantees_within = within_place(
        GUARANTEES.c.province_code, GUARANTEES.c.regency_code, null(), code
    )
    condition = and_(
        cast(GUARANTEES.c.id, Text) == entries.c.record_id,
        GUARANTEES.c.guarantor_client_id == reader.client_id,
        guarantees_within,
    )
    return GUARANTEES, condition, GUARANTEES.c.id, [_record(*_guarantee()), nobody]


def _concerns(kind: str, reader: Reader) -> ColumnElement[bool]:
    """Entries that concern the reader: of `kind`, touching its jurisdiction, of data it reads."""
    code = reader.jurisdiction
    clauses = [LOG.c.record_kind == kind, or_(_was_within(LOG, code), _is_within(LOG, code))]
    if not reader.personal_data:
        clauses.append(LOG.c.personal.is_(false()))
    if kind == "guarantee":
        clauses.append(LOG.c.owner_client_id == reader.client_id)
    return and_(*clauses)


@lru_cache(maxsize=256)
def statement(kind: str, reader: Reader, first: int) -> DriverStatement:
    """One statement, so one snapshot: the next entries in id order (the primary key's) after
    `:after` up to `:scan_end`, the records they concern as the reader may see them now, and the
    newest entry the reader can see, which is where it stands once no entry is left. Compiled
    once per feed, reader and page size, and run on asyncpg itself (db/driver.py): a page is a
    thousand rows of thirty columns, whose result rows through SQLAlchemy cost more than the
    statement."""
    entries = (
        select(LOG)
        .where(
            LOG.c.id > bindparam("after", type_=BigInteger),
            LOG.c.id <= bindparam("scan_end", type_=BigInteger),
            _concerns(kind, reader),
        )
        .order_by(LOG.c.id)
        .limit(first + 1)
        .subquery("entries")
    )
    code = reader.jurisdiction
    records, found, key, (record, subject) = _current(kind, reader, entries)
    present = key.is_not(None)
    page = (
        select(
            entries.c.id.label("feed_id"),
            entries.c.record_id.label("feed_record_id"),
            _change(entries, code).label("feed_change"),
            present.label("present"),
            case((present, _text(record)), else_=null()).label("record"),
            subject.label("subject"),
        )
        .select_from(entries.outerjoin(records, and_(_is_within(entries, code), found)))
        .order_by(entries.c.id)
        .lateral("page")
    )
    head = select(func.max(LOG.c.id).label("head")).subquery("head")
    return DriverStatement(select(head.c.head, *page.c).select_from(head.outerjoin(page, true())))


async def page(
    connection: Pooled, kind: str, reader: Reader, *, after: int, first: int
) -> FeedPage:
    scan_end = after + first * SCAN_PER_ENTRY
    rows = await fetch(
        connection, statement(kind, reader, first), {"after": after, "scan_end": scan_end}
    )
    entries = [row for row in rows if row.feed_id is not None]
    head = rows[0].head if rows and rows[0].head is not None else after
    if len(entries) > first:
        entries = entries[:first]
        return FeedPage(entries, entries[-1].feed_id, True)
    scanned = min(head, scan_end)
    return FeedPage(entries, max(after, scanned), head > scanned)
