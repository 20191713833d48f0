"""Clients registered as an operator registers them, through `sinergi clients create`, and the
server processes listening for their revocation: what several modules that serve Sinergi for
real need."""

from __future__ import annotations

import contextlib
import io
import json
import os
from unittest import mock

import asyncpg

from db.notifications import LISTENER_NAME
from sinergi.cli import main


def registered(url: str, name: str, *, purpose: str, scopes: str) -> tuple[str, str]:
    """A Kalimantan Tengah provincial client with `scopes`: its id and secret."""
    out = io.StringIO()
    argv = ["clients", "create", "--name", name, "--org-kind", "province"]
    argv += ["--jurisdiction", "62", "--purpose", purpose, "--json", "--scopes", scopes]
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        assert main(argv) == 0
    created = json.loads(out.getvalue())
    return created["client_id"], created["client_secret"]


async def listeners(url: str) -> int:
    """How many server processes hold their LISTEN connection to the database at `url`."""
    connection = await asyncpg.connect(url)
    try:
        found: int = await connection.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = $1 AND datname = current_database()",
            LISTENER_NAME,
        )
    finally:
        await connection.close()
    return found
