"""Scratch databases on the test server, made and dropped by the fixtures and tests that need
one of their own."""

from __future__ import annotations

import asyncpg


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
