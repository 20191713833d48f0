"""Make a figure release whenever the current one is older than `SINERGI_FIGURES_RELEASE_SECONDS`.

Each `serve` process runs one; the first to find a release due makes it, the others find it
under way (db/releases.py takes one at a time) or already made. A database that holds no
release yet gets one before the process serves, so perturbed figures are never refused for
want of one after the first start. While the database is away it fails, says so, and tries
again at its next look.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from db import releases

log = logging.getLogger("sinergi.figures")

LOOK_SECONDS = 60.0
"""How often a process looks whether a release is due: a release comes at most this late."""

FIRST_WAIT_SECONDS = 120.0
"""How long a process starting on a database without a release waits for the first."""


class FigureReleaser:
    def __init__(self, engine: AsyncEngine, interval_seconds: int) -> None:
        self._engine = engine
        self._interval = interval_seconds

    async def first(self) -> None:
        """Make the first release, when the database holds none; while another process makes
        it, wait for it (up to `FIRST_WAIT_SECONDS`). A release that fails is reported, and
        tried again by `run`: perturbed figures are refused until then, exact ones served."""
        try:
            async with asyncio.timeout(FIRST_WAIT_SECONDS):
                while await self._current() is None:
                    if await releases.release(self._engine, min_seconds=self._interval) is None:
                        await asyncio.sleep(0.2)  # another process is making it
        except Exception as error:
            log.warning("could not make the first figure release: %s", error)

    async def _current(self) -> releases.Release | None:
        async with self._engine.connect() as connection:
            return await releases.current(connection)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(self._interval, LOOK_SECONDS))
            try:
                await self.look()
            except Exception as error:
                log.warning("could not make a figure release: %s", error)

    async def look(self) -> None:
        """Make a release if one is due. Another process may have made it since this one
        looked (none is made then: the current one is not `interval` old), or be making it;
        one still due a look later has been held up, and says so."""
        if not await releases.due(self._engine, self._interval):
            return
        made = await releases.release(self._engine, min_seconds=self._interval)
        if made is not None:
            log.info("figure release %d made at %s", made.number, made.released_at.isoformat())
        elif await releases.due(self._engine, self._interval + LOOK_SECONDS):
            log.warning(
                "a figure release is overdue and could not be made: another is being made, or "
                "holds the release's lock; perturbed figures grow stale"
            )
