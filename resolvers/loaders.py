"""DataLoaders, created per request so their caches never outlive it or cross principals.

Each batch opens its own short connection: loaders resolve concurrently and must not share one.
Keys that carry a column set are grouped by it, so a batch runs one statement per distinct
selection (in practice one) and still fetches only the selected columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from db.queries import (
    changes,
    cooperatives,
    indicator_values,
    indicators,
    msmes,
    owners,
    programmes,
    regions,
)
from db.queries.indicators import TargetKey
from db.queries.paging import Page
from db.queries.regions import RegionDirectory
from db.queries.scoping import RowScope
from db.reads import Reads
from resolvers import Node

Columns = frozenset[str]


class Loaders:
    """Each loader is made on first use: most requests need one or two of them."""

    def __init__(self, reads: Reads, scope: RowScope, regions: RegionDirectory) -> None:
        self._reads = reads
        self._scope = scope
        self._regions = regions

    @cached_property
    def region(self) -> DataLoader[str, Node]:
        async def load(codes: list[str]) -> list[Node]:
            found = await self._regions.by_codes(codes)
            return [found.get(code) for code in codes]

        return DataLoader(load_fn=load)

    @cached_property
    def region_children(self) -> DataLoader[str, list[Node]]:
        return self._simple(regions.children_of, default=list)

    @cached_property
    def programme(self) -> DataLoader[str, Node]:
        return self._simple(programmes.by_ids)

    @cached_property
    def indicator(self) -> DataLoader[str, Node]:
        return self._simple(indicators.by_codes)

    @cached_property
    def targets(self) -> DataLoader[str, list[Node]]:
        return self._simple(indicators.targets_of, default=list)

    @cached_property
    def realisations(self) -> DataLoader[tuple[TargetKey, int], Page]:
        return self._grouped(
            lambda c, keys, first: indicators.realisations_of(c, keys, first=first)
        )

    @cached_property
    def computed_indicator(self) -> DataLoader[TargetKey, indicator_values.Computed | None]:
        return self._simple(indicator_values.computed)

    @cached_property
    def released_indicator(self) -> DataLoader[TargetKey, indicator_values.Computed | None]:
        """As `computed_indicator`, from the current figure release (db/releases.py)."""
        return self._simple(indicator_values.computed, released=True)

    @cached_property
    def record_changes(self) -> DataLoader[tuple[changes.RecordKey, int, bool], Page]:
        """Keys: (record, page size, with the owner's NIK: changes.of_records `owner`)."""
        return self._grouped(
            lambda c, keys, first, owner: changes.of_records(
                c, keys, first=first, scope=self._scope, owner=owner
            )
        )

    @cached_property
    def scale_history(self) -> DataLoader[tuple[int, bool], list[Node]]:
        """Keys: (MSME id, with the owner's NIK: programmes.scale_history_of `owner`)."""
        return self._grouped(lambda c, ids, owner: programmes.scale_history_of(c, ids, owner=owner))

    @cached_property
    def msme_participations(self) -> DataLoader[tuple[int, int], Page]:
        return self._grouped(
            lambda c, ids, first: programmes.participations_of(
                c, "msme_id", ids, scope=self._scope, first=first
            )
        )

    @cached_property
    def cooperative_participations(self) -> DataLoader[tuple[int, int], Page]:
        return self._grouped(
            lambda c, ids, first: programmes.participations_of(
                c, "cooperative_id", ids, scope=self._scope, first=first
            )
        )

    @cached_property
    def member_count(self) -> DataLoader[int, int]:
        return self._simple(lambda c, ids: msmes.member_counts(c, ids, scope=self._scope))

    @cached_property
    def msme(self) -> DataLoader[tuple[int, Columns], Node]:
        return self._grouped(
            lambda c, ids, cols: msmes.LISTING.by_ids(c, ids, scope=self._scope, columns=cols)
        )

    @cached_property
    def msme_by_nib(self) -> DataLoader[tuple[str, Columns], Node]:
        return self._grouped(
            lambda c, nibs, cols: msmes.by_nibs(c, nibs, scope=self._scope, columns=cols)
        )

    @cached_property
    def cooperative(self) -> DataLoader[tuple[int, Columns], Node]:
        return self._grouped(
            lambda c, ids, cols: cooperatives.LISTING.by_ids(
                c, ids, scope=self._scope, columns=cols
            )
        )

    @cached_property
    def cooperative_by_legal_no(self) -> DataLoader[tuple[str, Columns], Node]:
        return self._grouped(
            lambda c, numbers, cols: cooperatives.by_legal_entity_nos(
                c, numbers, scope=self._scope, columns=cols
            )
        )

    @cached_property
    def owner(self) -> DataLoader[tuple[int, Columns], Node]:
        return self._grouped(owners.of_msmes)

    @cached_property
    def members(self) -> DataLoader[tuple[int, int, int | None, Columns], Page]:
        """Keyed by (cooperative, size, the id after which the page starts, columns)."""
        return self._grouped(
            lambda c, ids, first, after, cols: msmes.members_of(
                c, ids, scope=self._scope, columns=cols, first=first, after=after
            )
        )

    @cached_property
    def participants(self) -> DataLoader[tuple[str, int], Page]:
        return self._grouped(
            lambda c, ids, first: programmes.participants_of(c, ids, scope=self._scope, first=first)
        )

    def _simple(
        self,
        fetch: Callable[[AsyncConnection, list[Any]], Awaitable[Mapping[Any, Any]]],
        default: Callable[[], Any] | None = None,
        *,
        released: bool = False,
    ) -> DataLoader[Any, Any]:
        connect = self._reads.released if released else self._reads.connect

        async def load(keys: list[Any]) -> list[Any]:
            async with connect() as connection:
                found = await fetch(connection, keys)
            return [found.get(key, default() if default else None) for key in keys]

        return DataLoader(load_fn=load)

    def _grouped(self, fetch: Callable[..., Awaitable[Mapping[Any, Any]]]) -> DataLoader[Any, Any]:
        """Keys are (id, *params); one statement per distinct params, e.g. a column set."""

        async def load(keys: list[tuple[Any, ...]]) -> list[Any]:
            groups: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
            for key in keys:
                groups[key[1:]].append(key[0])
            found: dict[tuple[Any, ...], Any] = {}
            async with self._reads.connect() as connection:
                for params, ids in groups.items():
                    rows = await fetch(connection, ids, *params)
                    found.update({(key, *params): row for key, row in rows.items()})
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=load)
