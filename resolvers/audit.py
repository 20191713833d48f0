"""The custodian's view of the audit log (audit:read).

Reading the trail hands out NIKs and who received them, so each read is itself an entry of the
trail, whatever it found: the entries returned count as records, named by their positions, and
the person asked about as personal data handed out. The NIKs the returned entries name are not
copied into the read's entry: `personalDataAccess` finds the read through those positions (one
level: a read's entry names only whom it asked about), where a copy made each read of the newest
entries carry the last read's subjects again, without end.
"""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from db.queries import audit
from resolvers import Node
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.paging import page_size


def _checked_nik(nik: str | None) -> str | None:
    """Only the shape is checked: the log keeps NIKs of any region, including historical ones."""
    if nik is not None and not (len(nik) == 16 and nik.isascii() and nik.isdigit()):
        raise bad_input("nik", "must be 16 digits")
    return nik


async def entries(
    info: Info[Context, Any],
    *,
    nik: str | None,
    client_id: str | None,
    first: int | None,
    before_position: int | None,
    before_seq: int | None,
) -> list[Node]:
    """`before_seq`: `before_position` as a 32-bit Int, for clients that page by it."""
    if before_position is not None and before_seq is not None:
        raise bad_input("beforePosition", "give beforePosition or beforeSeq, not both")
    before = before_seq if before_position is None else before_position
    size = page_size(first, info.context.limits)
    async with info.context.reads.connect() as connection:
        rows = await audit.entries(
            connection, subject=_checked_nik(nik), client_id=client_id, first=size, after=before
        )
    page = rows[:size]
    notes = info.context.accesses
    notes.trail_was_read()
    notes.records_returned("audit_entry", len(page))
    if nik is not None:  # asked about, whether or not anyone received their data
        notes.personal_data_of(nik)
    notes.entries_returned(row.seq for row in page)
    return page


async def accessors(info: Info[Context, Any], nik: str) -> list[Node]:
    checked = _checked_nik(nik)
    assert checked is not None
    async with info.context.reads.connect() as connection:
        found = await audit.accessors_of(connection, checked)
    notes = info.context.accesses
    notes.trail_was_read()
    notes.records_returned("personal_data_access", len(found))
    notes.personal_data_of(checked)
    return found
