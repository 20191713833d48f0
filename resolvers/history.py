"""The change history of a record, batched per request by the `record_changes` loader."""

from __future__ import annotations

import json
from typing import Any

from strawberry import Parent
from strawberry.types import Info

from db.queries.changes import RecordKey
from domain.personal import owner_finances
from resolvers import Node
from resolvers.context import Context
from resolvers.lookahead import selects
from resolvers.paging import page_size

Source = Parent[Node]


async def _changes(
    info: Info[Context, Any], key: RecordKey, first: int | None, *, owner: bool = False
) -> list[Node]:
    """A page of the history: every write adds a change, so it grows without bound. `owner`:
    with the NIKs of the owners whose figures each holds (`owner_niks`), for an MSME's changes
    showing what changed."""
    size = page_size(first, info.context.limits)
    page = await info.context.loaders.record_changes.load((key, size, owner))
    return list(page.rows)


async def msme_changes(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    """The changes, and, where they show the MSME's figures (`fields`), the owners whose
    figures they are named with the figures they show: the owner's finances
    (domain.personal.OWNER_FINANCES), kept by each change (migration 0062), so a page spanning
    a change of owner names both, and an owner replaced or erased since is named still."""
    fields = selects(info, "fields")
    changes = await _changes(info, ("msme", root.id), first, owner=fields)
    if fields:
        notes = info.context.accesses
        for change in changes:
            shown = owner_finances("Msme", change.changes)
            if shown:
                for nik in change.owner_niks:
                    if nik is not None:
                        notes.owner_finances_of(nik, shown)
    return changes


async def cooperative_changes(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    return await _changes(info, ("cooperative", root.id), first)


async def participation_changes(
    root: Source, info: Info[Context, Any], first: int | None = None
) -> list[Node]:
    return await _changes(info, ("participation", root.id), first)


def _text(value: Any) -> str | None:
    """Values travel as text: numbers exceed GraphQL's Int, dates are ISO already."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def field_changes(root: Source) -> list[tuple[str, str | None, str | None]]:
    """(field, before, after) per changed column, in column-name order."""
    return [
        (field, _text(change.get("before")), _text(change.get("after")))
        for field, change in sorted(root.changes.items())
    ]
