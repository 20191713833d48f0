"""Bring a database schema up to date with Alembic, from the CLI and at start-up."""

from __future__ import annotations

import asyncio

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import roles
from db.engine import async_url, one_connection
from db.preparation import MIGRATIONS


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = async_url(url)
    return config


def upgrade(url: str, revision: str = "heads", *, service_role: str | None = None) -> None:
    """Migrate as the owner at `url`, then grant `service_role` what db/roles.py declares (after
    every upgrade, so the grants always match the tables the migrations made)."""
    command.upgrade(alembic_config(url), revision)
    if service_role is not None:
        asyncio.run(_grant(url, service_role))


async def _grant(url: str, service_role: str) -> None:
    async with one_connection(url, statement_timeout_ms=60_000, transaction=True) as connection:
        await roles.apply(connection, service_role)


def head_revisions() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config("postgresql://")).get_heads())


async def is_current(engine: AsyncEngine) -> bool:
    """True when the database is at the newest migrations; `/readyz` asks this."""
    async with engine.connect() as connection:
        return await revisions(connection) == head_revisions()


async def revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database stands at; none when it was never migrated."""
    current = await connection.run_sync(
        lambda sync: MigrationContext.configure(sync).get_current_heads()
    )
    return frozenset(current)
