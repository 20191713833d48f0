"""The change feed of one record kind: entries after a cursor, each with only what the client
may read of the record as it is now, noted for the audit log like any read of those records.

The fields of a record are named as the record's GraphQL type names them, with the same values
(money as strings, enums by name, regions by code), so a copy kept from the feed compares field
for field with what a page of `msmes` or `cooperatives` shows. A removal carries no record.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from auth.scopes import Scope
from db.queries import Record, change_feed
from db.queries.change_feed import Position, Reader
from resolvers.access import AccessNotes
from resolvers.context import Context
from resolvers.errors import bad_input

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
    entries: list[Entry]
    end_cursor: str
    has_more: bool


def encode_cursor(kind: str, position: Position) -> str:
    return base64.urlsafe_b64encode(f"{kind}-feed:{position.seq}:{position.id}".encode()).decode()


def decode_cursor(after: str | None, kind: str) -> Position:
    """A cursor names its feed, so one of another kind's feed is refused rather than misread."""
    if after is None:
        return change_feed.START
    try:
        prefix, seq, entry = base64.urlsafe_b64decode(after.encode()).decode().split(":")
        if prefix != f"{kind}-feed":
            raise ValueError(prefix)
        position = Position(int(seq), int(entry))
        if position.seq < 0 or position.id < 0 or position.id > change_feed.LAST_ID:
            raise ValueError(after)
        return position
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise bad_input("after", "is not a cursor of this feed") from None


def checked_page_size(first: int | None) -> int:
    if first is None:
        return DEFAULT_PAGE_SIZE
    if first < 1 or first > MAX_PAGE_SIZE:
        raise bad_input("first", f"must be between 1 and {MAX_PAGE_SIZE}, got {first}")
    return first


def _rupiah(value: int | None) -> str | None:
    return None if value is None else str(value)


def _day(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _name(value: str | None) -> str | None:
    """An enum stored as its value ("simpan_pinjam") goes out by its GraphQL name."""
    return None if value is None else value.upper()


def _msme(row: Record, personal_data: bool) -> dict[str, Any]:
    record = {
        "id": str(row.id),
        "nib": row.nib,
        "name": row.name,
        "kbliCode": row.kbli_code,
        "kbliSection": row.kbli_section,
        "scale": _name(row.scale),
        "establishedOn": _day(row.established_on),
        "capital": _rupiah(row.capital),
        "annualTurnover": _rupiah(row.annual_turnover),
        "turnoverYear": row.turnover_year,
        "employees": row.employees,
        "isActive": row.is_active,
        "version": row.version,
        "provinceCode": row.province_code,
        "regencyCode": row.regency_code,
        "districtCode": row.district_code,
        "cooperativeId": None if row.cooperative_id is None else str(row.cooperative_id),
    }
    if personal_data:
        record["owner"] = (
            None
            if row.owner_nik is None
            else {
                "nik": row.owner_nik,
                "fullName": row.owner_full_name,
                "sex": row.owner_sex,
                "birthDate": _day(row.owner_birth_date),
                "phone": row.owner_phone,
                "address": row.owner_address,
            }
        )
    return record


def _cooperative(row: Record, personal_data: bool) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "legalEntityNo": row.legal_entity_no,
        "odsNo": row.ods_no,
        "name": row.name,
        "type": _name(row.type),
        "tier": row.tier,
        "status": _name(row.status),
        "isActive": row.status == "active",
        "kbliCode": row.kbli_code,
        "membersMale": row.members_male,
        "membersFemale": row.members_female,
        "memberCount": row.members_male + row.members_female,
        "businessVolume": _rupiah(row.business_volume),
        "assets": _rupiah(row.assets),
        "surplus": _rupiah(row.surplus),
        "bookYear": row.book_year,
        "lastRatDate": _day(row.last_rat_date),
        "lastRatBookYear": row.last_rat_book_year,
        "version": row.version,
        "provinceCode": row.province_code,
        "regencyCode": row.regency_code,
        "districtCode": row.district_code,
    }


def _participation(row: Record, personal_data: bool) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "programmeId": row.programme_id,
        "msmeId": None if row.msme_id is None else str(row.msme_id),
        "cooperativeId": None if row.cooperative_id is None else str(row.cooperative_id),
        "role": row.role,
        "status": row.status,
        "detail": row.detail,
        "startedOn": _day(row.started_on),
        "version": row.version,
    }


def _guarantee(row: Record, personal_data: bool) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "decisionId": str(row.decision_id),
        "bank": row.bank,
        "amount": _rupiah(row.amount),
        "coverageAmount": _rupiah(row.coverage_amount),
        "startsOn": _day(row.starts_on),
        "endsOn": _day(row.ends_on),
        "status": _name(row.status),
    }


RECORDS: dict[str, Callable[[Record, bool], dict[str, Any]]] = {
    "msme": _msme,
    "cooperative": _cooperative,
    "participation": _participation,
    "guarantee": _guarantee,
}


def reader_of(context: Context) -> Reader:
    principal = context.principal
    return Reader(
        jurisdiction=principal.jurisdiction,
        personal_data=principal.has(Scope.PII_READ),
        client_id=principal.client_id,
    )


def _entries(context: Context, kind: str, rows: list[Record], notes: AccessNotes) -> list[Entry]:
    """The entries a client receives, each record noted as handed out, each owner's NIK as a
    data subject whose personal data went out (a removal, or a record without an owner the
    client may see, releases no one's)."""
    reader = reader_of(context)
    render = RECORDS[kind]
    entries = []
    for row in rows:
        if row.feed_change != "REMOVED" and not row.present:
            continue  # it has left the client's view since; that entry follows
        record = render(row, reader.personal_data) if row.present else None
        if record is not None:
            notes.records_returned(kind, 1)
            owner = record.get("owner")
            if owner is not None:
                notes.personal_data_of(owner["nik"])
        position = Position(row.feed_seq, row.feed_id)
        entries.append(
            Entry(encode_cursor(kind, position), row.feed_record_id, row.feed_change, record)
        )
    return entries


async def page(
    context: Context,
    kind: str,
    *,
    after: str | None,
    first: int | None,
    notes: AccessNotes | None = None,
) -> Page:
    """`notes`: where what the page hands out is noted; the request's own by default."""
    size = checked_page_size(first)
    start = decode_cursor(after, kind)
    async with context.reads.connect() as connection:
        found = await change_feed.page(
            connection, kind, reader_of(context), after=start, first=size
        )
    entries = _entries(context, kind, found.entries, notes or context.accesses)
    return Page(entries, encode_cursor(kind, found.end), found.has_more)


async def follow(
    context: Context, kind: str, *, after: str | None
) -> AsyncIterator[tuple[Page, AccessNotes]]:
    """Pages as changes commit, from `after`, each with what it hands out: every page with
    entries at once, then a wait for the next commit anywhere (NOTIFY, see db/change_signal.py).
    Ends when the client's token no longer stands: revoked, narrowed or expired."""
    live = context.live
    if live is None:
        raise bad_input("subscription", "subscriptions run over a WebSocket (graphql-transport-ws)")
    decode_cursor(after, kind)  # a bad cursor is refused before anything is sent
    await live.signal.listen()
    cursor = after
    while True:
        seen = live.signal.generation
        notes = AccessNotes()  # each delivery is audited as a read of its own
        result = await page(context, kind, after=cursor, first=MAX_PAGE_SIZE, notes=notes)
        cursor = result.end_cursor
        if result.entries:
            yield result, notes
        if not await live.still_authorised():
            return
        if not result.has_more:
            await live.signal.wait_after(seen, at_most=live.recheck_seconds)
