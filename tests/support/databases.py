"""Scratch databases on the test server, made and dropped by the fixtures and tests that need
one of their own."""

from __future__ import annotations

import asyncio
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


async def create_database(admin_url: str, name: str, *, template: str | None = None) -> None:
    """`template`: a copy of that database (which must have no other connections)."""
    connection = await asyncpg.connect(admin_url)
    copy = f' TEMPLATE "{template}"' if template else ""
    try:
        await connection.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await connection.close()


async def drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def run(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    """`sql` run on the database at `url` as its URL's role: what an operator does there (or
    looks at), not the API."""

    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(query())
