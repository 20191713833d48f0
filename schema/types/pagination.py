"""Relay-style connections (edges, nodes, pageInfo, totalCount) over keyset pages.

The source of a connection is a `resolvers.paging.PageResult`; its attributes are read here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import strawberry

from resolvers.paging import encode_cursor

T = TypeVar("T")


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list; pass pageInfo.endCursor as `after` for the next.")
class Connection(Generic[T]):
    kind: strawberry.Private[str]
    rows: strawberry.Private[Sequence[Any]]
    has_next: strawberry.Private[bool]
    count: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field
    def nodes(self) -> list[T]:
        return list(self.rows)

    @strawberry.field
    def edges(self) -> list[Edge[T]]:
        return [Edge(cursor=encode_cursor(self.kind, row.id), node=row) for row in self.rows]

    @strawberry.field
    def page_info(self) -> PageInfo:
        end = encode_cursor(self.kind, self.rows[-1].id) if self.rows else None
        return PageInfo(has_next_page=self.has_next, end_cursor=end)

    @strawberry.field(description="All items matching the filter, counted only when asked for.")
    async def total_count(self) -> int:
        return await self.count()
