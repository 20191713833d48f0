"""Which PostgreSQL to use, and bringing it up to date before anything else touches it."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from db import embedded
from db.engine import create_engine
from db.migrate import upgrade
from db.seed import load_reference
from sinergi.demo import SEED_DATA
from sinergi.settings import Settings, default_home


def resolve_url(settings: Settings) -> str:
    """`DATABASE_URL` when set, else the embedded server under SINERGI_HOME."""
    if settings.database_url is not None:
        return settings.database_url
    if not embedded.exists(settings.home):
        _announce_new_database(settings.home)
    admin_url = embedded.start(settings.home)
    asyncio.run(embedded.ensure_database(admin_url, embedded.DATABASE_NAME))
    return embedded.with_database(admin_url, embedded.DATABASE_NAME)


def _announce_new_database(home: Path) -> None:
    """Says so before a command makes a new, empty database while another one exists: a
    command run with another SINERGI_HOME than the server's would otherwise quietly use it."""
    others = embedded.running_homes()
    if embedded.exists(default_home(os.environ)):
        others.add(default_home(os.environ))
    others = {other.resolve() for other in others} - {home.resolve()}
    print(f"sinergi: creating a new database under SINERGI_HOME={home}", file=sys.stderr)
    for other in sorted(others):
        print(
            f"sinergi: note: a Sinergi database already exists under {other}; to use that one, "
            f"stop here (Ctrl-C) and run again with SINERGI_HOME={other}",
            file=sys.stderr,
        )


def prepared_url(settings: Settings) -> str:
    """The database, migrated and holding the reference data (regions, KBLI, programmes,
    indicators) that clients and records refer to; both steps are idempotent."""
    url = resolve_url(settings)
    upgrade(url)
    asyncio.run(_load_reference(url))
    return url


async def _load_reference(url: str) -> None:
    engine = create_engine(url, statement_timeout_ms=120_000, pool_size=1)
    try:
        async with engine.begin() as connection:
            await load_reference(connection, SEED_DATA, targets=False)
    finally:
        await engine.dispose()


def in_transaction(settings: Settings, work: Callable[[AsyncConnection], Awaitable[int]]) -> int:
    """Run a CLI command's `work` in one transaction on the prepared database; its exit code."""
    url = prepared_url(settings)

    async def run() -> int:
        engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
        try:
            async with engine.begin() as connection:
                return await work(connection)
        finally:
            await engine.dispose()

    return asyncio.run(run())
