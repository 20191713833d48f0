"""Clients registered as an operator registers them, through `sinergi clients create`, a second
guarantor beside the demo one, and the server processes listening for their revocation: what
several modules that serve Sinergi for real need."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from auth import clients
from db.engine import async_url
from db.notifications import LISTENER_NAME
from db.queries import guarantees
from sinergi.demo_mode import DEMO_SECRET
from tests.support.cli import sinergi


def registered(url: str, name: str, *, purpose: str, scopes: str) -> tuple[str, str]:
    """A Kalimantan Tengah provincial client with `scopes`: its id and secret."""
    argv = ["clients", "create", "--name", name, "--org-kind", "province"]
    argv += ["--jurisdiction", "62", "--purpose", purpose, "--json", "--scopes", scopes]
    code, out, err = sinergi(url, *argv)
    assert code == 0, err
    created = json.loads(out)
    return created["client_id"], created["client_secret"]


def second_guarantor(url: str, client_id: str) -> None:
    """Another credit guarantor of Kalimantan Tengah beside PT Jamkrida Kalteng's demo client,
    registered as the owner at `url` with the demo secret (so `Api.graphql` speaks for it) and,
    as the demo guarantor has, Rp50 miliar of equity geared at most 20 times."""

    async def register() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as connection:
                await clients.create(
                    connection,
                    client_id=client_id,
                    secret=DEMO_SECRET,
                    name="PT Penjaminan Uji",
                    org_kind="bumd",
                    jurisdiction="62",
                    scopes=None,
                    purpose="testing",
                )
                await guarantees.set_equity(connection, client_id, 50_000_000_000, Decimal(20))
        finally:
            await engine.dispose()

    asyncio.run(register())


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
