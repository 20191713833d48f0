"""During a rolling upgrade the new release migrates first: the instances still running the old
one stay ready on a database past their newest migration, and only one behind it is pending."""

from __future__ import annotations

import asyncio

import asyncpg

from db.migrate import SchemaState, head_revisions, schema_state
from tests.support.http import served


def _stand_at(owner_url: str, revision: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(owner_url)
        try:
            await connection.execute("UPDATE alembic_version SET version_num = $1", revision)
        finally:
            await connection.close()

    asyncio.run(run())


def test_an_instance_stays_ready_on_a_database_a_newer_release_migrated(fresh_url: str) -> None:
    (head,) = head_revisions()
    with served(fresh_url) as api:
        assert api.client.get("/readyz").json() == {"status": "ready"}
        _stand_at(fresh_url, "9999_a_newer_release")  # a revision this code does not know
        ahead = api.client.get("/readyz")
        assert (ahead.status_code, ahead.json()) == (200, {"status": "ready"})
        _stand_at(fresh_url, "0027")
        behind = api.client.get("/readyz")
        assert behind.status_code == 503
        assert behind.json() == {"status": "unavailable", "database": "migrations pending"}
        _stand_at(fresh_url, head)


def test_where_a_database_stands_against_this_codes_migrations() -> None:
    heads = head_revisions()
    assert schema_state(heads) is SchemaState.CURRENT
    assert schema_state(frozenset({"9999_a_newer_release"})) is SchemaState.AHEAD
    assert schema_state(frozenset()) is SchemaState.BEHIND
    assert schema_state(frozenset({"0001"})) is SchemaState.BEHIND
