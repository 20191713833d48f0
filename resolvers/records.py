"""Lists and lookups of MSMEs and cooperatives: validate arguments, then one scoped statement."""

from __future__ import annotations

from typing import Any, TypeVar

from strawberry.types import Info

from db.queries import cooperatives, msmes
from db.queries.cooperatives import CooperativeFilter
from db.queries.msmes import MsmeFilter
from db.queries.paging import Listing
from domain.errors import InvalidValue
from domain.identifiers import legal_entity_no_key, validate_nib, validate_region_code
from domain.personal import owner_finances
from resolvers import Node
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.lookahead import (
    hands_out_rows,
    node_columns,
    object_selection,
    peeks_past_page,
    selected_columns,
)
from resolvers.paging import PageResult, decode_cursor, page_size

KBLI_SECTIONS = frozenset("ABCDEFGHIJKLMNOPQRSTU")

Filter = TypeVar("Filter", MsmeFilter, CooperativeFilter)


def checked_region_code(code: str, field: str = "code") -> str:
    """A region code's shape; whether the region exists is `checked_region`'s to ask."""
    try:
        return validate_region_code(code, field=field)
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


async def known_region(context: Context, code: str, field: str) -> str:
    """A region code naming a region that exists, or `InvalidValue`: for a write that reports
    every rule its input breaks together (`domain.records.Collector`). The region loader caches
    the answer."""
    code = validate_region_code(code, field=field)
    if code != "ID" and await context.loaders.region.load(code) is None:
        raise InvalidValue(field, f"unknown region code {code!r}")
    return code


async def checked_region(context: Context, code: str | None, field: str) -> str | None:
    """A region filter must name a region that exists."""
    if code is None:
        return None
    try:
        return await known_region(context, code, field)
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


def checked_kbli_section(section: str | None) -> str | None:
    if section is not None and section not in KBLI_SECTIONS:
        raise bad_input("filter.kbliSection", "must be a KBLI 2020 section letter A-U")
    return section


async def msme_page(
    info: Info[Context, Any], *, first: int | None, after: str | None, where: MsmeFilter
) -> PageResult:
    return await _page(info, "msme", msmes.LISTING, first=first, after=after, where=where)


async def cooperative_page(
    info: Info[Context, Any], *, first: int | None, after: str | None, where: CooperativeFilter
) -> PageResult:
    return await _page(
        info, "cooperative", cooperatives.LISTING, first=first, after=after, where=where
    )


async def _page(
    info: Info[Context, Any],
    kind: str,
    listing: Listing[Filter],
    *,
    first: int | None,
    after: str | None,
    where: Filter,
) -> PageResult:
    """A page of `kind` through its `listing` (db/queries/msmes or cooperatives)."""
    context = info.context
    size = page_size(first, context.limits)
    start = decode_cursor(after, kind)
    scope = context.policy.records
    # What the filter tells of each record handed out, and of the row read past the page when
    # hasNextPage tells of it, read as if selected, so that the NIK of its owner comes with it;
    # a count alone hands out no record.
    selections = object_selection(info)
    revealed = where.revealed if hands_out_rows(selections) else frozenset()
    async with context.reads.connect() as connection:
        page = await listing.page(
            connection,
            scope=scope,
            where=where,
            columns=node_columns(info) | revealed,
            first=size,
            after=start,
        )

    async def count() -> int:
        async with context.reads.connect() as connection:
            return await listing.total(connection, scope=scope, where=where)

    itemised = owner_finances("Msme", revealed)
    context.accesses.rows_returned(kind, page.rows, itemised)
    if page.peeked is not None and peeks_past_page(selections):
        context.accesses.owner_told_of(page.peeked, itemised)
    return PageResult(kind, page.rows, page.has_next, count)


def checked_nib(nib: str) -> str:
    try:
        return validate_nib(nib, field="nib")
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


def checked_legal_entity_no(legal_entity_no: str) -> str:
    try:
        return legal_entity_no_key(legal_entity_no, field="legalEntityNo")
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


async def msme_by_nib(info: Info[Context, Any], nib: str) -> Node | None:
    """`nib` checked. Outside the jurisdiction answers exactly like an unknown NIB: null."""
    found = await info.context.loaders.msme_by_nib.load((nib, selected_columns(info)))
    info.context.accesses.rows_returned("msme", () if found is None else (found,))
    return found


async def cooperative_by_legal_entity_no(info: Info[Context, Any], number: str) -> Node | None:
    """`number` checked."""
    found = await info.context.loaders.cooperative_by_legal_no.load(
        (number, selected_columns(info))
    )
    info.context.accesses.records_returned("cooperative", found is not None)
    return found
