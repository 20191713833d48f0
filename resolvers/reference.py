"""Reference lookups: regions, programmes and indicators (not scoped: public planning data)."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from db.queries import indicators, programmes
from resolvers import Node
from resolvers.context import Context
from resolvers.records import checked_region


async def region(info: Info[Context, Any], code: str) -> Node | None:
    checked = await checked_region(info.context, code, "code")
    return None if checked is None else await info.context.loaders.region.load(checked)


async def all_programmes(info: Info[Context, Any]) -> list[Node]:
    async with info.context.reads.connect() as connection:
        return await programmes.all_programmes(connection)


async def programme(info: Info[Context, Any], programme_id: str) -> Node | None:
    return await info.context.loaders.programme.load(programme_id)


async def all_indicators(info: Info[Context, Any]) -> list[Node]:
    async with info.context.reads.connect() as connection:
        return await indicators.all_indicators(connection)


async def indicator(info: Info[Context, Any], code: str) -> Node | None:
    return await info.context.loaders.indicator.load(code)
