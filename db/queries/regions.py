"""Region reference data (Kemendagri codes). Public: not scoped to a jurisdiction."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.models import REGIONS
from db.queries import Record, any_of

REFRESH_SECONDS = 300.0
"""How long a process serves regions before reading them again (a renamed region shows up)."""
MISS_RELOAD_SECONDS = 1.0
"""A code not held is looked for again at most this often (a seed loaded while serving), so a
flood of unknown codes costs at most one statement a second."""


class RegionDirectory:
    """Every region, held in memory by each serving process.

    Nearly every request names or renders regions: a filter's region is checked, a page shows
    each record's regency and province. They are some eight thousand rows of reference data that
    only loading the seed changes, so reading them once beats a statement, and a pooled
    connection, on every request.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._regions: dict[str, Record] = {}
        self._loaded_at = -math.inf
        self._loading = asyncio.Lock()

    async def by_codes(self, codes: Iterable[str]) -> dict[str, Record]:
        """The regions of those codes that exist."""
        wanted = set(codes)
        age = time.monotonic() - self._loaded_at
        if age > REFRESH_SECONDS or (
            age > MISS_RELOAD_SECONDS and not wanted <= self._regions.keys()
        ):
            await self._load()
        regions = self._regions
        return {code: regions[code] for code in wanted if code in regions}

    async def level_of(self, code: str) -> str | None:
        """The level of the region `code`, None when there is none (as `level_of` below)."""
        found = await self.by_codes((code,))
        return found[code].level if code in found else None

    async def _load(self) -> None:
        asked = time.monotonic()
        async with self._loading:
            if self._loaded_at >= asked:  # loaded by another request while this one waited
                return
            async with self._engine.connect() as connection:
                rows = await connection.execute(select(REGIONS))
            self._regions = {row.code: row for row in rows}
            self._loaded_at = time.monotonic()


async def children_of(
    connection: AsyncConnection, parent_codes: Sequence[str]
) -> dict[str, list[Record]]:
    statement = (
        select(REGIONS).where(any_of(REGIONS.c.parent_code, parent_codes)).order_by(REGIONS.c.code)
    )
    grouped: dict[str, list[Record]] = {code: [] for code in parent_codes}
    for row in await connection.execute(statement):
        grouped[row.parent_code].append(row)
    return grouped


async def level_of(connection: AsyncConnection, code: str) -> str | None:
    """The level of the region `code` (domain.identifiers.RegionLevel), None when there is none:
    what a jurisdiction given on the command line or at registration is checked against."""
    found = await connection.execute(select(REGIONS.c.level).where(REGIONS.c.code == code))
    return found.scalar_one_or_none()
