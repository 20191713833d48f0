"""Relay-style connections (edges, nodes, pageInfo, totalCount) over keyset pages.

The source of a connection is a `resolvers.paging.PageResult`; its attributes are read here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import strawberry
from strawberry.types import Info

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
    lists: strawberry.Private[Mapping[str, Any]]
    end: strawberry.Private[int | None]

    @strawberry.field
    def nodes(self, info: Info) -> list[T]:
        compiled = self.lists.get(str(info.path.key))
        return list(self.rows) if compiled is None else compiled

    @strawberry.field
    def edges(self, info: Info) -> list[Edge[T]]:
        compiled = self.lists.get(str(info.path.key))
        if compiled is not None:
            return compiled  # type: ignore[no-any-return]
        return [Edge(cursor=encode_cursor(self.kind, row.id), node=row) for row in self.rows]

    @strawberry.field
    def page_info(self) -> PageInfo:
        end = None if self.end is None else encode_cursor(self.kind, self.end)
        return PageInfo(has_next_page=self.has_next, end_cursor=end)

    @strawberry.field(description="All items matching the filter, counted only when asked for.")
    async def total_count(self) -> int:
        return await self.count()
