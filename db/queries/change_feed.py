"""The change feed's statement: the next entries of one record kind after a position, each
with the record as it is now when the reader may see it; as rows, or as the JSON of the answer
(`json_statement`).

A position is an entry's id, numbered at commit as migration 0014 explains: whatever a reader
sees is a prefix of the ids, so a position once passed is never preceded by a later commit.
The ids count every change in the country, so a position leaves here only sealed into a cursor
(resolvers/change_feed.py).
The entry says where the record was before and after the change; the reader's jurisdiction,
applied to both with the same rule as every other read (db/queries/scoping.py), decides whether
the entry concerns it and how: into the jurisdiction is a creation, out of it a removal. The
record is joined as it is now, within the jurisdiction, so an entry never shows more than a
fresh read would; an entry whose record has since left is passed over (its removal follows).
A member's entry for its cooperative's move also says where the cooperative was and went, and
concerns only a reader who sees the cooperative at either place (`_sees_the_cooperative`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ColumnElement,
    MetaData,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    case,
    cast,
    column,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    true,
)
from sqlalchemy.sql.selectable import FromClause

from db.driver import DriverStatement, Pooled, Row, fetch
from db.models import COOPERATIVES, GUARANTEES, MSME_OWNERS, MSMES, PARTICIPATIONS, PROGRAMMES
from db.queries import programmes
from db.queries.guarantees import guarantee_subject
from db.queries.json_pages import JsonBuild, JsonShape
from db.queries.ownership import Ownership
from db.queries.scoping import RowScope, within, within_place
from domain.personal import OWNER_FIELDS

LEVELS = ("province", "regency", "district")
COOPERATIVE_PLACES = ("cooperative_old", "cooperative_new")
PLACES = ("old", "new", *COOPERATIVE_PLACES)
"""The places an entry names, each as a column per level: where the record was and went, and,
in a member's entry for its cooperative's move (migration 0027), where the cooperative was and
went (null in every other entry)."""
COOPERATIVE_PLACE_COLUMNS = tuple(
    f"{place}_{level}" for place in COOPERATIVE_PLACES for level in LEVELS
)
LOG = table(
    "change_log",
    column("id", BigInteger),
    column("record_kind", Text),
    column("record_id", Text),
    column("operation", Text),
    column("deactivated", Boolean),
    column("personal", Boolean),
    *(column(f"{place}_{level}", Text) for place in PLACES for level in LEVELS),
    column("owner_client_id", Text),
)
HORIZON = table(
    "change_log_horizon",
    column("horizon", BigInteger),
    column("clear_cursors_until", BigInteger),
)
"""The newest entry `sinergi feed compact` folded (db/queries/change_feed_compaction.py), and
how far the log reached when cursors began to be sealed (migration 0029)."""


ENTRY = Table(
    "change_entry",
    MetaData(),
    Column("position", BigInteger),
    Column("id", Text),
    Column("change", Text),
    Column("record", JSON),
)
"""The columns of a page's entries that a JsonShape (db/queries/json_pages.py) may name: the
entry's position in the feed (which the page seals into the entry's cursor), the record's id,
what the change means to the reader (a ChangeKind name) and the record as JSON, null when it
carries none."""

START = 0
"""The position before every entry."""
SCAN = 20_000
"""A page looks at most this many entries of the log (20 for each of the 1,000 the largest page
holds): every page costs a bounded range of the primary key, however few of the entries concern
its reader (a regency amid national changes), and the planner cannot choose to scan the whole
log. Counted in entries, not ids: compaction leaves the ids of the entries it keeps far apart,
and a page read through them is as full as any other. One length whatever the page's size: a
page that found nothing for its reader and says more is waiting tells it that a whole stretch
of others' changes lies after its cursor, and a stretch in proportion to the page let a reader
asking for one entry at a time count everyone's changes in twenties."""


@dataclass(frozen=True, slots=True)
class Reader:
    """Whose feed: the jurisdiction and rights that decide which entries and fields it gets."""

    jurisdiction: str
    personal_data: bool
    """Reads owners' personal data (pii:read): a change to an owner alone concerns it."""
    personal_columns: tuple[str, ...]
    """The owners' columns its statement selects (resolvers/policy.py): none without pii:read,
    nor for a page that hands out no record, whose statement then reads no owner at all."""
    records: bool
    """Its pages hand out records (`entries { record }`): an MSME's carries its figures, its
    owner's finances (domain.personal.OWNER_FINANCES), so the statement reads the owner's NIK,
    with pii:read or without, to name them in the audit entry. A page of ids reads no owner."""
    own: Ownership
    """Whose guarantees are its own (resolvers/policy.py): the guarantee feed carries only
    those."""


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[Row]
    """In feed order, each with `feed_id` (its position), `feed_record_id`, `feed_change`,
    `record` (JSON text; null when the record is gone from the reader's view, `present` false)
    and `subject` (the NIK whose personal data the record holds, if any)."""
    end: int
    has_more: bool
    horizon: int
    """The newest entry compaction folded, in the page's own snapshot: a cursor short of it
    would pass over what the folded entries said."""
    head: int
    """How far the feed reaches (`reach`), in the page's own snapshot: a cursor past it is not
    one this feed handed out."""


def reach(head: int | None, horizon: int) -> int:
    """The furthest position the feed has handed out a cursor to: its newest entry (`head`,
    None for an empty log), or the newest one compaction folded when that is further
    (compaction drops the newest entries when their records are gone)."""
    return max(START if head is None else head, horizon)


def _lies_within(entries: FromClause, place: str, code: str) -> ColumnElement[bool]:
    """The entry's `place` (one of PLACES) lies in `code`: a place it does not name lies
    nowhere."""
    province, regency, district = (entries.c[f"{place}_{level}"] for level in LEVELS)
    return and_(province.is_not(None), within_place(province, regency, district, code))


def _was_within(entries: FromClause, code: str) -> ColumnElement[bool]:
    """Where the record was before the change lies in `code` (a creation was nowhere)."""
    return _lies_within(entries, "old", code)


def _is_within(entries: FromClause, code: str) -> ColumnElement[bool]:
    """Where the record went lies in `code` (a deletion went nowhere)."""
    return _lies_within(entries, "new", code)


def _sees_the_cooperative(code: str) -> ColumnElement[bool]:
    """A member's entry for its cooperative's move (migration 0027) concerns a reader in `code`
    only if it sees the cooperative before or after the move: its copy of the member names the
    cooperative, or now must, or must no longer. To any other reader the member's record did not
    change, and the entry would only tell it that the business belongs to a cooperative it
    cannot see, when that cooperative moved, and (by the entries of one commit) which
    businesses share it. Every other entry names no cooperative's place, nor does a member's
    entry logged before 0027, which reaches its readers as it did."""
    log = LOG.c
    return or_(
        log.cooperative_old_province.is_(None),
        _lies_within(LOG, "cooperative_old", code),
        _lies_within(LOG, "cooperative_new", code),
    )


def _change(entries: FromClause, code: str, gone: ColumnElement[bool]) -> ColumnElement[str]:
    """What the entry means to a reader in `code`: a move in is a creation, out (`gone`) a
    removal."""
    log = entries.c
    return case(
        (log.operation == "delete", literal("REMOVED")),
        (gone, literal("REMOVED")),
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
    records is then one value per row to hand on, not thirty to convert in Python. As the row
    of a subquery (`row_to_json`), not `json_build_object`: PostgreSQL 15 looks up how to write
    each argument of the latter on every row, which took twice as long for a page of MSMEs."""
    labelled = select(*(value.label(name) for name, value in pairs)).correlate_except(None)
    row = labelled.subquery("record_row")
    whole_row: ColumnElement[Any] = literal_column(row.name)
    return select(func.row_to_json(whole_row)).select_from(row).scalar_subquery()


def _msme(reader: Reader) -> tuple[FromClause, ColumnElement[Any], list[Any]]:
    """An MSME names its cooperative only if the reader may see it, as `Msme.cooperative` does,
    and its owner only to a reader whose statement selects owners' columns (pii:read, and a
    page handing out records); its owner's NIK is its data subject whenever the page hands out
    records (`Reader.records`)."""
    code = reader.jurisdiction
    cooperative = COOPERATIVES.alias("member_of")
    joined: FromClause = MSMES.outerjoin(
        cooperative, and_(cooperative.c.id == MSMES.c.cooperative_id, within(cooperative, code))
    )
    m = MSMES.c
    fields = [
        ("id", _text(m.id)),
        ("nib", m.nib),
        ("skuNumber", m.sku_number),
        ("skuIssuer", m.sku_issuer),
        ("name", m.name),
        ("kbliCode", m.kbli_code),
        ("kbliSection", m.kbli_section),
        ("scale", func.upper(m.scale)),
        ("declaredScale", func.upper(m.declared_scale)),
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
    if reader.records:  # the owner's finances go out: the owner is named, pii:read or not
        joined = joined.outerjoin(MSME_OWNERS, MSME_OWNERS.c.msme_id == MSMES.c.id)
        subject = MSME_OWNERS.c.nik
    if reader.personal_columns:
        o = MSME_OWNERS.c
        readable = [field for field in OWNER_FIELDS if field.column in reader.personal_columns]
        owner = _record(*((field.name, o[field.column]) for field in readable))
        fields.append(("owner", case((o.msme_id.is_not(None), owner), else_=null())))
    return joined, m.id, [_record(*fields), subject]


def _cooperative() -> list[tuple[str, ColumnElement[Any]]]:
    """Every field the Cooperative type reads from the row, as `Cooperative` answers it (the
    test of the feed's fields compares them with the type's)."""
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
        ("establishedOn", c.established_on),
        ("lastRatDate", c.last_rat_date),
        ("lastRatBookYear", c.last_rat_book_year),
        ("kspHealth", func.upper(c.ksp_health)),
        ("kspHealthBookYear", c.ksp_health_book_year),
        ("version", c.version),
        ("provinceCode", c.province_code),
        ("regencyCode", c.regency_code),
        ("districtCode", c.district_code),
    ]


def _participation(scope: RowScope) -> list[tuple[str, ColumnElement[Any]]]:
    """A participation whose business has left the programme's region (programmes.visible)
    names no business outside `scope`, as its `msme` and `cooperative` are null in GraphQL."""
    p = PARTICIPATIONS.c

    def subject(table: Table, link: ColumnElement[Any]) -> ColumnElement[Any]:
        seen = (
            select(table.c.id)
            .where(table.c.id == link, scope.rows(table))
            .correlate(PARTICIPATIONS)  # the participation the record is built of
            .exists()
        )
        return case((seen, _text(link)), else_=null())

    return [
        ("id", _text(p.id)),
        ("programmeId", p.programme_id),
        ("msmeId", subject(MSMES, p.msme_id)),
        ("cooperativeId", subject(COOPERATIVES, p.cooperative_id)),
        ("role", p.role),
        ("status", func.upper(p.status)),
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
        scope = RowScope(code)
        condition = and_(
            PARTICIPATIONS.c.id == numeric_id, programmes.visible(scope, PARTICIPATIONS)
        )
        record = _record(*_participation(scope))
        return PARTICIPATIONS, condition, PARTICIPATIONS.c.id, [record, nobody]
    condition = and_(cast(GUARANTEES.c.id, Text) == entries.c.record_id, reader.own.guarantees)
    # A guarantee of an MSME is data about the owner its decision is about.
    return GUARANTEES, condition, GUARANTEES.c.id, [_record(*_guarantee()), guarantee_subject()]


def _concerns(kind: str, reader: Reader) -> ColumnElement[bool]:
    """Entries that concern the reader: of `kind`, touching its jurisdiction, of data it reads,
    and, for a member of a cooperative that moved, about a cooperative it sees."""
    code = reader.jurisdiction
    clauses = [LOG.c.record_kind == kind, or_(_was_within(LOG, code), _is_within(LOG, code))]
    if kind == "participation":
        clauses[1] = or_(clauses[1], _left_behind(code))
        clauses.append(_held_before_or_now(code))
    if kind == "msme":
        clauses.append(_sees_the_cooperative(code))
    if not reader.personal_data:
        clauses.append(LOG.c.personal.is_(false()))
    if kind == "guarantee":
        clauses.append(reader.own.names(LOG.c.owner_client_id))
    return and_(*clauses)


def _left_behind(code: str) -> ColumnElement[bool]:
    """A participation's entry, placed where its business is, that concerns a reader in `code`
    all the same: the business has left the programme's region, which lies in `code`, so the
    participation is that region's record now (programmes.visible). The entry's key is cast
    only on a participation's entry."""
    participation = PARTICIPATIONS.alias("left_behind")
    key = case((LOG.c.record_kind == "participation", cast(LOG.c.record_id, BigInteger)))
    return (
        select(participation.c.id)
        .where(participation.c.id == key, programmes.left_behind(RowScope(code), participation))
        .exists()
    )


def _held_before_or_now(code: str) -> ColumnElement[bool]:
    """A participation's entry concerns a reader in `code` only if the reader could see the
    participation before the change or can now (programmes.visible): before, it lay where its
    business was (the entry's old place) while that lay in the programme's region, else in that
    region. The region a business moved to after its participation ended never saw it, and is
    sent nothing of it, not a REMOVED at the move nor one at each later correction by the
    programme's region (whose entries are placed where the business lies). A deletion concerns
    its readers as its place says: its row is gone, and 0058 notes one left behind at the
    programme's region too (a reader holding both places gets REMOVED twice)."""
    participation = PARTICIPATIONS.alias("held")
    programme = PROGRAMMES.alias("held_programme")
    key = case((LOG.c.record_kind == "participation", cast(LOG.c.record_id, BigInteger)))
    region = programme.c.jurisdiction
    stayed = programmes.lies_in_place(
        LOG.c.old_province, LOG.c.old_regency, LOG.c.old_district, region
    )
    scope = RowScope(code)
    before = or_(and_(stayed, _was_within(LOG, code)), and_(~stayed, scope.holds(region)))
    held = (
        select(participation.c.id)
        .select_from(participation.join(programme, programme.c.id == participation.c.programme_id))
        .where(
            participation.c.id == key,
            or_(before, programmes.visible(scope, participation)),
        )
        .exists()
    )
    return or_(LOG.c.operation == "delete", held)


def _entries(kind: str, reader: Reader, first: int) -> Select[Any]:
    """The next `first` + 1 entries in id order (the primary key's) after `:after` up to
    `_scan_end()`, as ENTRY's columns, with whether the reader may see the record now (`present`),
    the data subject whose personal data it holds (`subject`), and its place on the page (`n`,
    from 1)."""
    entries = (
        select(LOG)
        .where(
            LOG.c.id > bindparam("after", type_=BigInteger),
            LOG.c.id <= _scan_end(),
            _concerns(kind, reader),
        )
        .order_by(LOG.c.id)
        .limit(first + 1)
        .subquery("entries")
    )
    code = reader.jurisdiction
    records, found, key, (record, subject) = _current(kind, reader, entries)
    present = key.is_not(None)
    # A participation is where programmes.visible places it now, which an entry placed where its
    # business was does not say: it is gone from a reader that may no longer read it.
    placed = true() if kind == "participation" else _is_within(entries, code)
    gone = ~present if kind == "participation" else ~placed
    page = select(
        entries.c.id.label("position"),
        entries.c.record_id.label("id"),
        _change(entries, code, gone).label("change"),
        present.label("present"),
        case((present, record), else_=null()).label("record"),
        subject.label("subject"),
        func.row_number().over(order_by=entries.c.id).label("n"),
    )
    joined = entries.outerjoin(records, and_(placed, found))
    return page.select_from(joined).order_by(entries.c.id)


def _head() -> ColumnElement[Any]:
    """The newest entry anyone can see: where a reader stands once no entry is left for it."""
    return select(func.max(LOG.c.id)).scalar_subquery()


def _scan_end() -> ColumnElement[Any]:
    """Where a page stops looking: the entry `:skip` + 1 places after `:after`, whatever its
    kind and whoever it concerns, or the head when fewer are left (null for an empty log);
    with `:until` (a page from a cursor in clear), no further than it, and there when fewer
    are left up to it, wherever the head is (`_end`). A statement's WHERE and its columns both
    ask; as one WITH query, referenced twice, PostgreSQL finds it once (the scan of up to
    `skip` primary-key entries is a millisecond)."""
    return select(_SCAN_END.c.scan_end).scalar_subquery()


_UNTIL = bindparam("until", type_=BigInteger)
_SCAN_END = select(
    func.least(  # LEAST passes over a null `until`
        func.coalesce(
            select(LOG.c.id)
            .where(LOG.c.id > bindparam("after", type_=BigInteger))
            .order_by(LOG.c.id)
            .offset(bindparam("skip", type_=BigInteger))
            .limit(1)
            .scalar_subquery(),
            _UNTIL,
            _head(),
        ),
        _UNTIL,
    ).label("scan_end")
).cte("scan_end")


def _scanning(after: int, until: int | None) -> dict[str, int | None]:
    """The parameters of a page after `after`, read no further than `until` unless None."""
    return {"after": after, "skip": SCAN - 1, "until": until}


def _horizon() -> ColumnElement[Any]:
    return select(func.coalesce(func.max(HORIZON.c.horizon), START)).scalar_subquery()


_CLEAR_CURSORS_UNTIL = DriverStatement(select(HORIZON.c.clear_cursors_until))


async def clear_cursors_until(connection: Pooled) -> int:
    """The furthest position a cursor in clear can name: how far the feed reached when cursors
    began to be sealed (migration 0029)."""
    (row,) = await fetch(connection, _CLEAR_CURSORS_UNTIL, {})
    until: int = row.clear_cursors_until
    return until


@lru_cache(maxsize=256)
def statement(kind: str, reader: Reader, first: int) -> DriverStatement:
    """One statement, so one snapshot: the entries of `_entries`, each with its record as JSON
    text, the head and the horizon. Compiled once per feed, reader and page size, and run on
    asyncpg itself (db/driver.py): a page is a thousand rows of thirty columns, whose result
    rows through SQLAlchemy cost more than the statement."""
    page = _entries(kind, reader, first).lateral("page")
    ends = (_head().label("head"), _horizon().label("horizon"), _scan_end().label("scan_end"))
    head = select(*ends).subquery("head")
    columns = (
        page.c.position.label("feed_id"),
        page.c.id.label("feed_record_id"),
        page.c.change.label("feed_change"),
        page.c.present,
        _text(page.c.record).label("record"),
        page.c.subject,
    )
    bounds = (head.c.head, head.c.horizon, head.c.scan_end)
    return DriverStatement(select(*bounds, *columns).select_from(head.outerjoin(page, true())))


async def page(
    connection: Pooled,
    kind: str,
    reader: Reader,
    *,
    after: int,
    first: int,
    until: int | None = None,
) -> FeedPage:
    """The entries after `after`; with `until`, of the log up to it only (`_end`)."""
    rows = await fetch(connection, statement(kind, reader, first), _scanning(after, until))
    entries = [row for row in rows if row.feed_id is not None]
    head, horizon, scan_end = rows[0].head, rows[0].horizon, rows[0].scan_end
    last = entries[min(len(entries), first) - 1].feed_id if entries else None
    end, has_more = _end(after, scan_end, head, len(entries), first, last, until)
    return FeedPage(entries[:first], end, has_more, horizon, reach(head, horizon))


def _end(
    after: int,
    scan_end: int | None,
    head: int | None,
    fetched: int,
    first: int,
    last: int | None,
    until: int | None,
) -> tuple[int, bool]:
    """Where the reader stands after a page, and whether more is waiting: past the page's last
    entry when more entries than fit were found; else past what the page scanned. A page read
    up to `until` (from a cursor in clear, which anyone can make up) always says more is
    waiting: whether the head lies a stretch beyond its cursor or not would tell its maker
    where the feed stands now, so the page says nothing of the log past `until`."""
    if fetched > first:
        assert last is not None
        return last, True
    scanned = after if scan_end is None else max(after, scan_end)
    if until is not None:
        return scanned, True
    return scanned, head is not None and head > scanned


@dataclass(frozen=True, slots=True)
class JsonFeedPage:
    lists: tuple[str, ...]
    """For each shape asked for, the page's entries in it: a JSON array."""
    end: int
    has_more: bool
    count: int
    """Entries on the page."""
    records: int
    """Records the page hands out (a removal, or an entry passed over, hands out none)."""
    subjects: list[str]
    """The NIK of each owner whose personal data the page hands out."""
    horizon: int
    """As FeedPage's."""
    head: int
    """As FeedPage's."""


@lru_cache(maxsize=256)
def json_statement(
    kind: str, reader: Reader, first: int, shapes: tuple[JsonShape, ...]
) -> DriverStatement:
    """One statement, so one snapshot, for a page of `statement`'s entries of which PostgreSQL
    writes the JSON: one array of the entries in each of `shapes` (made of ENTRY's columns and
    the entry's cursor), what the audit needs to know of them, the head and the horizon. A page
    of a thousand entries is then one row of text to embed in the answer, not a thousand rows
    for the executor to walk field by field."""
    rows = _entries(kind, reader, first).subquery("page")
    build = JsonBuild(RowScope(reader.jurisdiction), rows)
    on_page = rows.c.n <= first
    entries = and_(on_page, or_(rows.c.change == "REMOVED", rows.c.present))
    handed_out = and_(on_page, rows.c.present)
    lists = [build.array(shape, rows, order_by=rows.c.position, shown=entries) for shape in shapes]
    columns = (
        _head(),
        _horizon(),
        _scan_end(),
        func.count(rows.c.position),
        func.max(rows.c.position).filter(on_page),
        func.count().filter(handed_out),
        func.array_agg(rows.c.subject).filter(and_(handed_out, rows.c.subject.is_not(None))),
        func.count().filter(entries),
        build.any_missing(entries),
        *lists,
    )
    return DriverStatement(select(*columns).select_from(build.source))


async def json_page(
    connection: Pooled,
    kind: str,
    reader: Reader,
    *,
    after: int,
    first: int,
    shapes: tuple[JsonShape, ...],
    until: int | None = None,
) -> JsonFeedPage | None:
    """The page `page` would read, as JSON; None when a part that may not be null turns out
    null (the executor then reports it, as it reports everything else)."""
    scanning = _scanning(after, until)
    (row,) = await fetch(connection, json_statement(kind, reader, first, shapes), scanning)
    head, horizon, scan_end, fetched, last_on_page, records, subjects, count, missing, *lists = row
    if missing:
        return None
    end, has_more = _end(after, scan_end, head, fetched, first, last_on_page, until)
    return JsonFeedPage(
        tuple(lists), end, has_more, count, records, subjects or [], horizon, reach(head, horizon)
    )
