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
computation gives. Of the variables, only those the operation declares are keyed (no other can
change its answer), and the key is a digest of fixed size: keyed as sent, a large variable
changed each time, declared or not, kept a new entry of its size per request.

Memory is bounded by cells and by entries: a grouping by regency, KBLI section, scale and status
has tens of thousands of cells, so such a table is not kept at all, and the oldest tables make
room when the cache holds `capacity` cells or `entries` tables (a table of no cells still costs
its key and its dictionaries). Tables past their time are dropped as others are put, not only
when asked for again.

A table is never from a release older than the one its process reads (db/releases.py): keyed on
the document and the caller alone, a table cached before a release was served under the next
one, beside a `figureRelease` already naming it. Two things tell the cache of a release, neither
costing a cache hit anything: the notification each release sends as it commits (`changed`, from
the process's listener, db/notifications.py), and the release each request read (`released`).
Either lets every table go. The notification's payload is not trusted (any role that can connect
may NOTIFY): it only lets the tables go, and a table computed by a request begun before it is
not kept (`generation`); a forged one costs the tables of the moment, never a wrong one. The
number comes from what requests read: a table of a release older than one a request has read (a
replica not yet replaying it) is not kept. Nothing is kept or served while the listener is not
listening, and a request begun before it listened again keeps nothing, since a release made
meanwhile went unannounced. What remains is a moment's window: between a release's commit and
its notification reaching the process, a table of the release before may still be served, as a
request already running when the release commits answers from the one before. A process that
has read a release numbered higher than any its database now holds (after a restore, or a
failover to a replica that lagged) keeps no released table until it restarts.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Collection, Hashable, Mapping
from typing import Any

import orjson


class FigureCache:
    def __init__(
        self, seconds: float, capacity: int = 20_000, largest: int = 2_000, entries: int = 1_000
    ) -> None:
        """`entries`: ample for the tables polled within `seconds` (one per client, document
        and variables), and a bound on the tables of few or no cells, which `capacity` alone
        let grow without end."""
        self.seconds = seconds
        self.capacity = capacity
        self.largest = largest
        self.entries = entries
        self._tables: dict[Hashable, tuple[float, int, dict[str, Any]]] = {}
        self._cells = 0
        self._release = 0
        """The newest figure release a request of the process has read (0: none yet)."""
        self._listening = False
        """Whether releases are announced to the cache: until they are, it holds nothing."""
        self.generation = 0
        """Counts the announcements and the listener's starts and stops: a request notes it
        before it computes a table, which is kept only if nothing was announced meanwhile."""

    @staticmethod
    def key(
        query: str,
        operation_name: str | None,
        variables: Mapping[str, Any],
        declared: Collection[str],
        audience: Hashable,
    ) -> Hashable | None:
        """`declared`: the names of the operation's variables, the only ones keyed. `audience`:
        the access policy's `figure_audience`, all the table depends on of the caller. None for
        variables orjson cannot write (an integer past 64 bits, which the standard library
        decodes; arrays nested past 254), which no figure table accepts: such a request is
        answered afresh, its variables refused, where keying it raised, answering INTERNAL. So
        too for a NaN or an infinity, which orjson writes as null: keyed, a NaN (refused) was
        answered the table its null had been given."""
        kept = [
            query,
            operation_name,
            {name: variables[name] for name in declared if name in variables},
        ]
        try:
            document = orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            return None
        if not _finite(kept[2]):
            return None
        return hashlib.blake2b(document, digest_size=32).digest(), audience

    def __len__(self) -> int:
        """The tables held, those past their time not yet dropped among them."""
        return len(self._tables)

    def changed(self, _payload: str, /) -> None:
        """A release was announced (db/releases.py's `CHANNEL`): every table goes, and none
        begun before is kept. Its payload, a number anyone may send, is not read."""
        self.generation += 1
        self.clear()

    def listening(self, listening: bool, /) -> None:
        """The listener started or stopped listening: a release may have gone unannounced, so
        every table goes, none begun before is kept, and none at all until it listens again."""
        self._listening = listening
        self.generation += 1
        self.clear()

    def released(self, number: int) -> None:
        """A request read release `number`: every table, all of releases before it or of the
        live tables, goes once it is newer than any read before."""
        if number > self._release:
            self._release = number
            self.clear()

    def clear(self) -> None:
        """Every table let go."""
        self._tables.clear()
        self._cells = 0

    def get(self, key: Hashable, now: float | None = None) -> dict[str, Any] | None:
        found = self._tables.get(key)
        if found is None:
            return None
        expires, _, data = found
        if (time.monotonic() if now is None else now) >= expires:
            self._drop(key)
            return None
        return data

    def put(
        self,
        key: Hashable,
        data: dict[str, Any],
        *,
        release: int | None,
        generation: int,
        now: float | None = None,
    ) -> None:
        """Kept for `seconds`, unless it has more than `largest` cells, or was computed from a
        release (`release`, None for a table of the live tables alone) older than one read
        before, or by a request begun at an earlier `generation`, or the cache is not
        listening. Tables are held in the order they expire (each for `seconds`), so those
        past it are the first ones."""
        stale = generation != self.generation or (release is not None and release < self._release)
        cells = sum(len(value) for value in data.values() if isinstance(value, list))
        if stale or not self._listening or cells > self.largest:
            return
        now = time.monotonic() if now is None else now
        self._drop(key)
        while self._tables:
            oldest, (expires, _, _) = next(iter(self._tables.items()))
            room = self._cells + cells <= self.capacity and len(self._tables) < self.entries
            if room and expires > now:
                break
            self._drop(oldest)
        self._tables[key] = (now + self.seconds, cells, data)
        self._cells += cells

    def _drop(self, key: Hashable) -> None:
        dropped = self._tables.pop(key, None)
        if dropped is not None:
            self._cells -= dropped[1]


def _finite(value: Any) -> bool:
    """No NaN or infinity anywhere in a decoded JSON value (which orjson has written, so it is
    nested no deeper than 254: the walk cannot exhaust the stack)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, list):
        return all(_finite(item) for item in value)
    return True
