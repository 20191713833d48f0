"""The change history of a record, batched per request by the `record_changes` loader."""

from __future__ import annotations

import json
from typing import Any

from strawberry import Parent
from strawberry.types import Info

from resolvers import Node
from resolvers.context import Context

Source = Parent[Node]


async def msme_changes(root: Source, info: Info[Context, Any]) -> list[Node]:
    return await info.context.loaders.record_changes.load(("msme", root.id))


async def cooperative_changes(root: Source, info: Info[Context, Any]) -> list[Node]:
    return await info.context.loaders.record_changes.load(("cooperative", root.id))


async def participation_changes(root: Source, info: Info[Context, Any]) -> list[Node]:
    return await info.context.loaders.record_changes.load(("participation", root.id))


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
