"""The change feed of one record kind: entries after a cursor, each with only what the client
may read of the record as it is now, noted for the audit log like any read of those records.

The fields of a record are named as the record's GraphQL type names them, with the same values
(money as strings, enums by name, regions by code; db/queries/change_feed.py), so a copy kept
from the feed compares field for field with what a page of `msmes` or `cooperatives` shows. A
removal carries no record.

A page whose selection under `entries` compiles (schema/compiled.py) is one statement in which
PostgreSQL writes the entries' JSON, embedded in the answer as it is; any other selection is
answered entry by entry from rows of the same statement.

Every cursor handed out is sealed (domain/cursor_seal.py): its position is a place in a log
numbering every change in the country, which the client may not learn, and a fresh seal each
time makes two cursors of one place differ. PostgreSQL, which never holds the key, writes an
entry's position where its cursor goes, and the page seals it here.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from strawberry.types import Info

from db.driver import Row
from db.queries import change_feed
from db.queries.change_feed import SCAN, Reader
from db.queries.json_pages import Field, JsonShape
from domain.cursor_seal import CursorSeal
from domain.personal import OWNER_COLUMNS, OWNER_FINANCES, owner_finances
from resolvers.access import AccessNotes
from resolvers.context import Context
from resolvers.eligibility import WEIGHED_FINANCES
from resolvers.errors import bad_input
from resolvers.lookahead import selects

MAX_PAGE_SIZE = 1000
"""Larger than a page of records: a feed entry is small, and a backlog drains in fewer pages."""
DEFAULT_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Entry:
    cursor: str
    id: str
    change: str
    record: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Page:
    """A page of entries: `rows`, or, compiled, each list of them as the JSON PostgreSQL wrote,
    by response key (`lists`)."""

    rows: list[Entry]
    end_cursor: str
    has_more: bool
    count: int
    """Entries on the page."""
    lists: Mapping[str, orjson.Fragment] = field(default_factory=dict)


Plan = tuple[tuple[str, JsonShape], ...]
"""(response key, shape) of each `entries` selected on a page: what schema/compiled.py makes
of a selection it can write as JSON, empty when it cannot."""


def cursor_kind(kind: str) -> str:
    """The feed a cursor of `kind`'s is sealed for: one of another feed does not open."""
    return f"{kind}-feed"


@dataclass(frozen=True, slots=True)
class Place:
    """Where a cursor resumes: after `position`, in the feed as compacted through `horizon`
    when the cursor was handed out (the horizon a page reads in its own snapshot)."""

    position: int
    horizon: int
    clear: bool = field(default=False, compare=False)
    """Read from a cursor in clear, as the feed handed them out before it sealed them."""


NOT_A_CURSOR = "is not a cursor of this feed"
"""Why a cursor that does not open is refused, and a cursor in clear for whatever reason."""


START = Place(change_feed.START, change_feed.START)


def cursor_field(key: str) -> Field:
    """What PostgreSQL writes under an entry's `cursor` (response key `key`): the entry's
    position, which `page` seals into the cursor."""
    return Field(key, "position", nullable=False)


def encode_cursor(seal: CursorSeal, kind: str, place: Place) -> str:
    return seal.seal(cursor_kind(kind), place.position, place.horizon)


def decode_cursor(seal: CursorSeal, after: str | None, kind: str) -> Place:
    """A cursor this server sealed for `kind`'s feed, or, for the copies kept before cursors
    were sealed, one in clear (`_clear_place`, whose position `page` still has to vouch for).
    Anything else, one of another feed or altered included, is refused."""
    if after is None:
        return START
    opened = seal.open(cursor_kind(kind), after)
    place = _clear_place(after, kind) if opened is None else Place(*opened)
    if place is None:
        raise bad_input("after", NOT_A_CURSOR)
    return place


def _clear_place(after: str, kind: str) -> Place | None:
    """Where a cursor in clear resumes (base64 of "msme-feed:position:horizon", or, before
    cursors named the horizon, of "msme-feed:position"), or None if `after` is not one of
    `kind`'s feed. Anyone can make one up, and taken exactly it would be an oracle: a binary
    search over made-up positions would find the reader's own entries' exact positions in the
    log (so how many changes others made between them), and one over horizons where compaction
    stands. So it resumes from the start of its stretch of the log (a multiple of `SCAN`, the
    stretch a page looks at), read as from before any compaction: every cursor in a stretch,
    whatever fold it names, answers alike. Its copy reads again at most a stretch of entries it
    holds, which changes nothing (each carries the record as it is now, and they apply in
    order); one short of a compaction since starts again, as it must."""
    try:
        prefix, *numbers = base64.urlsafe_b64decode(after.encode()).decode().split(":")
        if prefix != cursor_kind(kind) or len(numbers) not in (1, 2):
            return None
        position, horizon = int(numbers[0]), int(numbers[1]) if numbers[1:] else START.horizon
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not (0 <= position < 2**63 and 0 <= horizon < 2**63):
        return None
    return Place(position - position % SCAN, START.horizon, clear=True)


async def _clear_until(info: Info[Context, Any], start: Place) -> int:
    """How far a page from a cursor in clear reads: where the log reached when cursors began
    to be sealed (migration 0029). Every cursor in clear the feed handed out lies there, and
    its position is its holder's already; anyone can make one up, though, so its page reads
    the log up to there and no further (db/queries/change_feed.py `_end`): nothing it says,
    entries, `hasMore` or refusal, depends on where the feed stands now, which sealing keeps
    from every client. One whose stretch starts past it was made up, and is refused as a
    forged cursor is, before anything is read; so is every one when the log was empty then:
    the feed had handed none out that named an entry."""
    async with info.context.reads.checked_out(primary=False) as connection:
        until = await change_feed.clear_cursors_until(connection)
    if until == START.position or start.position > until:
        raise bad_input("after", NOT_A_CURSOR)
    return until


def _folded(start: Place, horizon: int) -> str | None:
    """Why a cursor is refused, if it is short of what `sinergi feed compact` folded since the
    cursor was handed out: it would pass over what the folded entries said (a move out of the
    jurisdiction, a deletion), so its copy must start again, empty, from no cursor. One handed
    out by the compacted feed itself, to a reader going through the folded entries from the
    start, resumes as any other. A cursor from a feed compacted further than this one (a
    database restored from a backup) cannot be vouched for either. The page read the horizon
    in its own snapshot, so a compaction committing meanwhile cannot slip between the check and
    the entries. A cursor in clear at the start of the log may stand for one further on
    (`_clear_place`), whose copy holds what the folded entries removed."""
    if start == START and not start.clear:
        return None
    if start.horizon > horizon:
        return (
            "is from a feed compacted further than this one: empty the copy and start again "
            "without `after`"
        )
    if start.position < horizon and start.horizon < horizon:
        return (
            "is older than the feed keeps (it was compacted since): empty the copy and start "
            "again without `after`"
        )
    return None


def _ahead(start: Place, head: int) -> str | None:
    """Why a cursor is refused, if it is past every position the feed has reached: it was not
    handed out by this feed, whose database was restored from a backup or rebuilt since. Taken
    as it stands, it would answer nothing until the feed caught up with it, then go on from
    there, passing over every change in between for ever. The page read the head in its own
    snapshot, as it read the entries. Positions go unnamed in this refusal, as in the others:
    they are what sealing keeps from the client."""
    if start.position > head:
        return (
            "is ahead of the feed: the database was restored or rebuilt since; empty the copy "
            "and start again without `after`"
        )
    return None


def checked_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 1 or first > MAX_PAGE_SIZE:
        raise bad_input("first", f"must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    return first


def reader_of(info: Info[Context, Any]) -> Reader:
    """Whose feed, as the request's access policy decides it. Owners' columns are read only
    for a page whose entries hand out their `record`: a page of ids names no data subject and
    releases no personal field, so its statement reads no owner, and its audit entry says so."""
    context = info.context
    policy = context.policy
    records = selects(info, "entries", "record")
    readable = policy.owner_columns(OWNER_COLUMNS) if records else ()
    return Reader(
        jurisdiction=policy.records.code,
        personal_data=policy.reads_personal_data,
        personal_columns=tuple(column for column in OWNER_COLUMNS if column in readable),
        records=records,
        own=policy.own,
    )


FINANCES_IN_RECORD = {
    "msme": owner_finances("Msme", OWNER_FINANCES["Msme"]),
    "guarantee": WEIGHED_FINANCES,
}
"""The owner's finances, by kind, that a feed's record tells of: an MSME's, every one of its
figures the record carries (db.queries.change_feed writes them all); a guarantee's, those the
rules of the decision it rests on weigh, as any other way a guarantee is handed out itemises
them (resolvers.eligibility.handed_out)."""


def _named(notes: AccessNotes, kind: str, subject: str, reader: Reader) -> None:
    """The record's data subject, with what of theirs it carries: the owner's columns its
    statement selected and the owner's finances it tells of (`FINANCES_IN_RECORD`)."""
    notes.owner_finances_of(subject, FINANCES_IN_RECORD.get(kind, ()))
    notes.owner_columns_touched(reader.personal_columns)


def _entries(
    kind: str, rows: list[Row], horizon: int, reader: Reader, notes: AccessNotes, seal: CursorSeal
) -> list[Entry]:
    """The entries a client receives, read under `horizon`, each record noted as handed out,
    each owner's NIK as a data subject whose personal data went out, with the owner's columns
    the reader's statement selected (a removal, or a record without an owner the client may
    see, releases no one's)."""
    entries = []
    for row in rows:
        if row.feed_change != "REMOVED" and not row.present:
            continue  # it has left the client's view since; that entry follows
        record = None if row.record is None else orjson.loads(row.record)
        if record is not None:
            notes.records_returned(kind, 1)
            if row.subject is not None:
                _named(notes, kind, row.subject, reader)
        cursor = encode_cursor(seal, kind, Place(row.feed_id, horizon))
        entries.append(Entry(cursor, row.feed_record_id, row.feed_change, record))
    return entries


async def page(
    info: Info[Context, Any],
    kind: str,
    *,
    after: str | None,
    first: int | None,
    plan: Plan = (),
    notes: AccessNotes | None = None,
) -> Page:
    """`plan`: the lists PostgreSQL writes, if the selection compiled; `notes`: where what the
    page hands out is noted, the request's own by default."""
    context = info.context
    seal = context.cursor_seal
    size = checked_page_size(first)
    start = decode_cursor(seal, after, kind)
    until = await _clear_until(info, start) if start.clear else None
    reader = reader_of(info)
    notes = notes or context.accesses
    found = await _read(info, kind, reader, start, until, size, plan, primary=False)
    ahead = start.position > found.head or start.horizon > found.horizon
    if ahead and context.reads.may_lag:
        # The replica may not have replayed yet what the primary handed the cursor out from
        # (the client read there after a write of its own, or while the replica was away).
        found = await _read(info, kind, reader, start, until, size, plan, primary=True)
    refusal = _folded(start, found.horizon) or _ahead(start, found.head)
    if refusal is not None:
        # Which refusal a made-up cursor in clear met would say where the fold and the head
        # stand: it meets the one refusal that says nothing.
        raise bad_input("after", NOT_A_CURSOR if start.clear else refusal)
    end = encode_cursor(seal, kind, Place(found.end, found.horizon))
    if isinstance(found, change_feed.JsonFeedPage):
        notes.records_returned(kind, found.records)
        for subject in found.subjects:
            _named(notes, kind, subject, reader)
        lists = {
            key: _sealed(text, shape, seal, kind, found.horizon)
            for (key, shape), text in zip(plan, found.lists, strict=True)
        }
        return Page([], end, found.has_more, found.count, lists)
    entries = _entries(kind, found.entries, found.horizon, reader, notes, seal)
    return Page(entries, end, found.has_more, len(entries))


def _sealed(
    text: str, shape: JsonShape, seal: CursorSeal, kind: str, horizon: int
) -> orjson.Fragment:
    """The entries PostgreSQL wrote in `shape`, each position under a cursor's key sealed into
    the cursor (`cursor_field`). The keys are the entries' own, never a record's inside them,
    and each entry keeps its keys' order."""
    keys = [part.key for part in shape.parts if part == cursor_field(part.key)]
    if not keys:
        return orjson.Fragment(text)
    entries = orjson.loads(text)
    for entry in entries:
        for key in keys:
            entry[key] = encode_cursor(seal, kind, Place(entry[key], horizon))
    return orjson.Fragment(orjson.dumps(entries))


async def _read(
    info: Info[Context, Any],
    kind: str,
    reader: Reader,
    start: Place,
    until: int | None,
    size: int,
    plan: Plan,
    *,
    primary: bool,
) -> change_feed.JsonFeedPage | change_feed.FeedPage:
    """The page after `start`, of the log up to `until` unless None: as JSON PostgreSQL writes
    when `plan` has lists for it and none of its parts turns out null, else as rows. From the
    primary when `primary`."""
    after = start.position
    async with info.context.reads.checked_out(primary=primary) as connection:
        if plan:
            shapes = tuple(shape for _, shape in plan)
            built = await change_feed.json_page(
                connection, kind, reader, after=after, first=size, shapes=shapes, until=until
            )
            if built is not None:
                return built
        return await change_feed.page(
            connection, kind, reader, after=after, first=size, until=until
        )


async def follow(
    info: Info[Context, Any],
    kind: str,
    *,
    after: str | None,
    audit: Callable[[AccessNotes], Awaitable[None]],
    plan: Plan = (),
) -> AsyncIterator[Page]:
    """Pages as changes commit, from `after`: every page with entries at once, then a wait for
    the next commit anywhere (NOTIFY, see db/change_signal.py). Each page is audited (`audit`,
    given what it hands out) before it is sent. Ends when the client's token no longer stands:
    revoked, narrowed or expired. The token is checked before each page is read, so nothing is
    read for a client no longer authorised, and again after its audit write, the last await of
    Sinergi's before strawberry sends the page: a revocation that reaches this process while
    the page is read or audited (`clients revoke` returns once it has) stops the page (the check
    reads the process's client registry, which reads PostgreSQL only once after a notification
    about the client). A page stopped there has been audited, as has one whose answer the
    WebSocket handler finds over the response size bound (sinergi.graphql_app) and does not
    send: the trail may over-state what went out, never under-state it."""
    live = info.context.live
    if live is None:
        raise bad_input("subscription", "subscriptions run over a WebSocket (graphql-transport-ws)")
    decode_cursor(info.context.cursor_seal, after, kind)  # refused before anything is sent
    cursor = after
    while await live.still_authorised():
        seen = live.signal.generation
        notes = AccessNotes()  # each delivery is audited as a read of its own
        result = await page(info, kind, after=cursor, first=MAX_PAGE_SIZE, plan=plan, notes=notes)
        cursor = result.end_cursor
        if result.count:
            await audit(notes)
            if not await live.still_authorised():
                return
            yield result
        if not result.has_more:
            await live.signal.wait_after(seen, at_most=live.recheck_seconds)
