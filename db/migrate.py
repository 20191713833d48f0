"""Bring a database schema up to date with Alembic, from the CLI and at start-up."""

from __future__ import annotations

import asyncio
import enum
import functools

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

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
    return frozenset(_scripts().get_heads())


@functools.cache
def _scripts() -> ScriptDirectory:
    """This code's migrations, read once: `/readyz` asks after them on every probe."""
    return ScriptDirectory.from_config(alembic_config("postgresql://"))


@functools.cache
def _known_revisions() -> frozenset[str]:
    return frozenset(script.revision for script in _scripts().walk_revisions())


class SchemaState(enum.Enum):
    CURRENT = "at this code's newest migrations"
    AHEAD = "past this code's newest migrations"
    BEHIND = "migrations pending"


def schema_state(stands_at: frozenset[str]) -> SchemaState:
    """Where a database standing at `stands_at` is against this code's migrations.

    A revision this code does not know is taken to be a newer release's, made by that release's
    `sinergi migrate` ahead of the instances still running this one (README, "Upgrading"):
    migrations only add what older code leaves alone, so this code serves it. Behind is a
    database never migrated, or standing at a revision this code knows short of its head."""
    heads = head_revisions()
    if stands_at == heads:
        return SchemaState.CURRENT
    if not stands_at:
        return SchemaState.BEHIND
    if stands_at & (_known_revisions() - heads):
        return SchemaState.BEHIND
    return SchemaState.AHEAD


async def is_current(connection: AsyncConnection) -> bool:
    """True when this code can serve the database: at its newest migrations or past them (a
    newer release migrated it first); `/readyz` and `serve` ask this."""
    return schema_state(await revisions(connection)) is not SchemaState.BEHIND


async def revisions(connection: AsyncConnection) -> frozenset[str]:
    """The revisions the database stands at; none when it was never migrated."""
    current = await connection.run_sync(
        lambda sync: MigrationContext.configure(sync).get_current_heads()
    )
    return frozenset(current)
