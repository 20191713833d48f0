"""Alembic environment: runs migrations over the asyncpg URL handed in by `db.migrate`."""

import asyncio

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from db.models import METADATA


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=METADATA)
    with context.begin_transaction():
        context.run_migrations()


async def _migrate(url: str) -> None:
    # Parameters out of error text, as on every engine of db.engine's.
    engine = create_async_engine(url, hide_parameters=True)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


asyncio.run(_migrate(context.config.attributes["url"]))
