"""DataLoaders, created per request so their caches never outlive it or cross principals.

Each batch opens its own short connection: loaders resolve concurrently and must not share one.
Keys that carry a column set are grouped by it, so a batch runs one statement per distinct
selection (in practice one) and still fetches only the selected columns.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
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
from db.reads import Reads
from resolvers import Node

Columns = frozenset[str]


class Loaders:
    def __init__(self, reads: Reads, jurisdiction: str) -> None:
        self._reads = reads
        scope = jurisdiction
        self.region: DataLoader[str, Node] = self._simple(regions.by_codes)
        self.region_children: DataLoader[str, list[Node]] = self._simple(
            regions.children_of, default=list
        )
        self.programme: DataLoader[str, Node] = self._simple(programmes.by_ids)
        self.indicator: DataLoader[str, Node] = self._simple(indicators.by_codes)
        self.targets: DataLoader[str, list[Node]] = self._simple(
            indicators.targets_of, default=list
        )
        self.realisations: DataLoader[TargetKey, list[Node]] = self._simple(
            indicators.realisations_of, default=list
        )
        self.computed_indicator: DataLoader[TargetKey, Decimal | None] = self._simple(
            indicator_values.computed
        )
        self.record_changes: DataLoader[changes.RecordKey, list[Node]] = self._simple(
            changes.of_records, default=list
        )
        self.scale_history: DataLoader[int, list[Node]] = self._simple(
            programmes.scale_history_of, default=list
        )
        self.msme_participations: DataLoader[int, list[Node]] = self._simple(
            programmes.participations_of_msmes, default=list
        )
        self.cooperative_participations: DataLoader[int, list[Node]] = self._simple(
            programmes.participations_of_cooperatives, default=list
        )
        self.member_count: DataLoader[int, int] = self._simple(
            lambda c, ids: msmes.member_counts(c, ids, jurisdiction=scope)
        )
        self.msme: DataLoader[tuple[int, Columns], Node] = self._grouped(
            lambda c, ids, cols: msmes.by_ids(c, ids, jurisdiction=scope, columns=cols)
        )
        self.msme_by_nib: DataLoader[tuple[str, Columns], Node] = self._grouped(
            lambda c, nibs, cols: msmes.by_nibs(c, nibs, jurisdiction=scope, columns=cols)
        )
        self.cooperative: DataLoader[tuple[int, Columns], Node] = self._grouped(
            lambda c, ids, cols: cooperatives.by_ids(c, ids, jurisdiction=scope, columns=cols)
        )
        self.cooperative_by_legal_no: DataLoader[tuple[str, Columns], Node] = self._grouped(
            lambda c, numbers, cols: cooperatives.by_legal_entity_nos(
                c, numbers, jurisdiction=scope, columns=cols
            )
        )
        self.owner: DataLoader[tuple[int, Columns], Node] = self._grouped(owners.of_msmes)
        self.members: DataLoader[tuple[int, int, Columns], Page] = self._grouped(
            lambda c, ids, first, cols: msmes.members_of(
                c, ids, jurisdiction=scope, columns=cols, first=first
            )
        )
        self.participants: DataLoader[tuple[str, int], Page] = self._grouped(
            lambda c, ids, first: programmes.participants_of(
                c, ids, jurisdiction=scope, first=first
            )
        )

    def _simple(
        self,
        fetch: Callable[[AsyncConnection, list[Any]], Awaitable[Mapping[Any, Any]]],
        default: Callable[[], Any] | None = None,
    ) -> DataLoader[Any, Any]:
        async def load(keys: list[Any]) -> list[Any]:
            async with self._reads.connect() as connection:
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
