"""Published figure tables held for a moment, so dashboards polling the same national figures
cost no statement and no disclosure-control pass each time.

Figures come from rollups that every write keeps exact; a table served from here is at most
`seconds` old, like one read from a lagging replica, and with the same exception: a client
that wrote within the read-your-writes window is never served from here, so it sees its own
writes at once. An entry is keyed by everything its table depends on: the document, operation
and variables, and what the table depends on of the caller (the access policy's
`figure_audience`: its scopes, which decide the fields that answer and whether its own records
are exact, and its own region and client, which decide the records each cell reads apart: its
jurisdiction's, the guarantees it issued), so no caller is ever handed a table made for
another, and tables are shared only among one client's tokens. Since the cell-key noise
depends only on the records, a table served from here holds the very values a fresh
computation gives.

Memory is bounded by cells, not entries: a grouping by regency, KBLI section, scale and status
has tens of thousands of cells, so such a table is not kept at all, and the oldest tables make
room when the cache holds `capacity` cells.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Mapping
from typing import Any

import orjson


class FigureCache:
    def __init__(self, seconds: float, capacity: int = 20_000, largest: int = 2_000) -> None:
        self.seconds = seconds
        self.capacity = capacity
        self.largest = largest
        self._tables: dict[Hashable, tuple[float, int, dict[str, Any]]] = {}
        self._cells = 0

    @staticmethod
    def key(
        query: str,
        operation_name: str | None,
        variables: Mapping[str, Any],
        audience: Hashable,
    ) -> Hashable:
        """`audience`: the access policy's `figure_audience`, all the table depends on of the
        caller."""
        return (
            query,
            operation_name,
            orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
            audience,
        )

    def get(self, key: Hashable, now: float | None = None) -> dict[str, Any] | None:
        found = self._tables.get(key)
        if found is None:
            return None
        expires, _, data = found
        if (time.monotonic() if now is None else now) >= expires:
            self._drop(key)
            return None
        return data

    def put(self, key: Hashable, data: dict[str, Any], now: float | None = None) -> None:
        """Kept for `seconds`, unless it has more than `largest` cells."""
        cells = sum(len(value) for value in data.values() if isinstance(value, list))
        if cells > self.largest:
            return
        self._drop(key)
        while self._tables and self._cells + cells > self.capacity:
            self._drop(next(iter(self._tables)))
        expires = (time.monotonic() if now is None else now) + self.seconds
        self._tables[key] = (expires, cells, data)
        self._cells += cells

    def _drop(self, key: Hashable) -> None:
        dropped = self._tables.pop(key, None)
        if dropped is not None:
            self._cells -= dropped[1]
