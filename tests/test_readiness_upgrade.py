"""During a rolling upgrade the new release migrates first: the instances still running the old
one stay ready on a database past their newest migration, and only one behind it is pending."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from db.migrate import SchemaState, head_revisions, schema_state
from sinergi.app import READINESS_SECONDS
from tests.support.cli import sinergi
from tests.support.http import served


def _stand_at(owner_url: str, revision: str) -> None:
    _execute(owner_url, "UPDATE alembic_version SET version_num = $1", revision)


def _stood_at(owner_url: str, revision: str) -> None:
    """At `revision`, and long enough ago that `/readyz` has asked the database again."""
    _stand_at(owner_url, revision)
    time.sleep(READINESS_SECONDS)


def _execute(url: str, statement: str, *arguments: object) -> object:
    async def run() -> object:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(statement, *arguments)
        finally:
            await connection.close()

    return asyncio.run(run())


def test_an_instance_stays_ready_on_a_database_a_newer_release_migrated(fresh_url: str) -> None:
    (head,) = head_revisions()
    with served(fresh_url) as api:
        assert api.client.get("/readyz").json() == {"status": "ready"}
        _stood_at(fresh_url, "9999_a_newer_release")  # a revision this code does not know
        ahead = api.client.get("/readyz")
        assert (ahead.status_code, ahead.json()) == (200, {"status": "ready"})
        _stood_at(fresh_url, "0027")
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


NEWER = "9999_a_newer_release"
_NOTE = (
    f"sinergi: note: the database is at a newer release's migration {NEWER}; this release serves"
    " it without preparing (no migrations, no reference data)\n"
)
_REGION = "SELECT name FROM regions WHERE code = '62.71'"


def test_an_older_release_leaves_a_newer_database_as_it_stands(
    fresh_url: str, tmp_path: Path
) -> None:
    """With the owner's URL an old release prepared the database, as its fingerprint differs:
    Alembic, asked to upgrade from a revision it does not know, ended `serve` and `clients list`
    in a traceback (and this release's older reference data would have been loaded over the
    newer's). It serves the database as it stands now, and its `migrate` refuses."""
    assert sinergi(fresh_url, "migrate")[0] == 0  # this release's reference data
    _stand_at(fresh_url, NEWER)
    _execute(
        fresh_url, "UPDATE regions SET name = 'Renamed by a newer release' WHERE code = '62.71'"
    )
    assert sinergi(fresh_url, "clients", "list") == (0, "", _NOTE)
    env = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    env |= {"DATABASE_URL": fresh_url, "SINERGI_HOME": str(tmp_path)}
    serve = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Past preparing, to the refusal of the owner's role: not a traceback.
    assert serve.returncode == 2, serve.stderr
    assert serve.stderr.startswith(_NOTE + "sinergi: refusing to serve: "), serve.stderr
    assert sinergi(fresh_url, "migrate") == (
        2,
        "",
        "sinergi: this release is older than the database, which stands at a newer release's"
        f" migration {NEWER}: run that release's `sinergi migrate`, or a newer one\n",
    )
    assert _execute(fresh_url, "SELECT version_num FROM alembic_version") == NEWER
    assert _execute(fresh_url, _REGION) == "Renamed by a newer release"
