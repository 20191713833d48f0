"""Reference lookups: regions, programmes and indicators (not scoped: public planning data)."""

from __future__ import annotations

from typing import Any

from strawberry.types import Info

from db.queries import indicators, programmes
from domain.errors import InvalidValue
from domain.text import UNSTORABLE, storable
from resolvers import Node
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.records import checked_region


async def region(info: Info[Context, Any], code: str) -> Node | None:
    checked = await checked_region(info.context, code, "code")
    return None if checked is None else await info.context.loaders.region.load(checked)


async def all_programmes(info: Info[Context, Any]) -> list[Node]:
    async with info.context.reads.connect() as connection:
        return await programmes.all_programmes(connection)


def checked_programme_id(programme_id: str, field: str = "id") -> str:
    """A programme's id follows no shape (the reference data names each programme), so it is
    held to the one rule for every string that reaches a query (`domain.text.storable`): a NUL
    failed the statement as INTERNAL where the request guard, which refuses one in any HTTP or
    WebSocket request, did not stand in front of the schema."""
    if not storable(programme_id):
        raise bad_input(field, UNSTORABLE)
    return programme_id


INDICATOR_CODE_MAX = 40
"""The length of `indicators.code`: a longer code names no indicator."""


def checked_indicator_code(code: str, field: str) -> str:
    """An indicator's code as a client names it, held to the rule for every string that reaches
    a query (`domain.text.storable`) as a programme's id is (`checked_programme_id`), and to the
    column's length, so that no answer echoes a longer one: InvalidValue on `field`."""
    if not storable(code):
        raise InvalidValue(field, UNSTORABLE)
    if len(code) > INDICATOR_CODE_MAX:
        raise InvalidValue(
            field, f"unknown indicator: a code is at most {INDICATOR_CODE_MAX} characters"
        )
    return code


async def programme(info: Info[Context, Any], programme_id: str) -> Node | None:
    return await info.context.loaders.programme.load(programme_id)


async def all_indicators(info: Info[Context, Any]) -> list[Node]:
    async with info.context.reads.connect() as connection:
        return await indicators.all_indicators(connection)


async def indicator(info: Info[Context, Any], code: str) -> Node | None:
    """None for a code no indicator has, one longer than any's too (as `programme` answers);
    BAD_USER_INPUT for one no text column could hold."""
    if not storable(code):
        raise bad_input("code", UNSTORABLE)
    if len(code) > INDICATOR_CODE_MAX:
        return None
    return await info.context.loaders.indicator.load(code)
