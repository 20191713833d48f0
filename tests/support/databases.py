"""Scratch databases on the test server, made and dropped by the fixtures and tests that need
one of their own."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

TEST_OWNER = "sinergi_test_owner"
TEST_SERVICE = "sinergi_test_service"
"""The roles of every test database (tests/conftest.py): made once per server, never dropped."""
TEST_PASSWORD = "sinergi-test"


def as_service(url: str) -> str:
    """The same database as the service role: what the app under test connects as."""
    parsed = make_url(url).set(username=TEST_SERVICE, password=TEST_PASSWORD)
    return parsed.render_as_string(hide_password=False)


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


async def create_database(
    admin_url: str, name: str, *, template: str | None = None, owner: str | None = None
) -> None:
    """`template`: a copy of that database (which must have no other connections)."""
    connection = await asyncpg.connect(admin_url)
    copy = f' TEMPLATE "{template}"' if template else ""
    owned = f' OWNER "{owner}"' if owner else ""
    try:
        await connection.execute(f'CREATE DATABASE "{name}"{copy}{owned}')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def fetched(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """`sql` run on the database at `url` as its URL's role, from a test's own event loop."""
    connection = await asyncpg.connect(url)
    try:
        return list(await connection.fetch(sql, *args))
    finally:
        await connection.close()


def run(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """`sql` run on the database at `url` as its URL's role: what an operator does there (or
    looks at), not the API."""
    return asyncio.run(fetched(url, sql, *args))


@contextmanager
def empty_database(server_url: str, prefix: str) -> Iterator[str]:
    """A database with the test roles and nothing else (never migrated), owned by the owner
    role, as an operator's new one is; dropped afterwards. Yields the owner's URL."""
    from db import provision

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(
            provision.ensure_database(
                server_url, name, owner=TEST_OWNER, service=TEST_SERVICE, password=TEST_PASSWORD
            )
        )
        yield provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD)
    finally:
        asyncio.run(drop_database(server_url, name))
