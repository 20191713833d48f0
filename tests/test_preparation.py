"""A command skips preparing a database this code prepared already (db/preparation.py), and only
then: a new migration, a changed grant or changed reference data is still applied. Only the
commands that set a database up create or upgrade its schema."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from db import migrate, preparation, roles
from sinergi import demo
from sinergi.database import migrated, prepared
from sinergi.settings import Settings
from tests.support.cli import sinergi
from tests.support.databases import (
    TEST_SERVICE,
    as_service,
    create_database,
    drop_database,
    empty_database,
)

REGENCY = "62.71"


def _settings(owner_url: str) -> Settings:
    return Settings(database_url=as_service(owner_url), owner_url=owner_url)


def _fetch(url: str, query: str, *arguments: object) -> object:
    async def fetch() -> object:
        connection = await asyncpg.connect(url)
        try:
            return await connection.fetchval(query, *arguments)
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _region_name(url: str) -> object:
    return _fetch(url, "SELECT name FROM regions WHERE code = $1", REGENCY)


def test_a_prepared_database_is_not_prepared_again_but_migrate_always_prepares(
    fresh_url: str,
) -> None:
    prepared(_settings(fresh_url))
    name = _region_name(fresh_url)
    _fetch(fresh_url, "UPDATE regions SET name = 'Edited by hand' WHERE code = $1", REGENCY)
    prepared(_settings(fresh_url))
    assert _region_name(fresh_url) == "Edited by hand"  # the steps were skipped
    migrated(_settings(fresh_url))
    assert _region_name(fresh_url) == name


def test_changed_reference_data_is_loaded(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared(_settings(fresh_url))
    edition = tmp_path / "seed_data"
    shutil.copytree(demo.SEED_DATA, edition)
    regions = edition / "regions.csv"
    lines = regions.read_text(encoding="utf-8").splitlines(keepends=True)
    renamed = [
        ",".join([REGENCY, *line.split(",")[1:2], "Kota Uji Baru", *line.split(",")[3:]])
        if line.startswith(f"{REGENCY},")
        else line
        for line in lines
    ]
    assert renamed != lines
    regions.write_text("".join(renamed), encoding="utf-8")
    monkeypatch.setattr(demo, "SEED_DATA", edition)
    prepared(_settings(fresh_url))
    assert _region_name(fresh_url) == "Kota Uji Baru"


def test_a_new_migration_is_applied_and_again_after_a_downgrade(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command

    prepared(_settings(fresh_url))
    migrations = tmp_path / "migrations"
    shutil.copytree(preparation.MIGRATIONS, migrations)
    head = max(path.stem[:4] for path in (migrations / "versions").glob("0*.py"))
    (migrations / "versions" / "9999_probe.py").write_text(
        f'revision = "9999"\ndown_revision = "{head}"\nbranch_labels = None\n'
        "depends_on = None\n\n"
        "from alembic import op\n\n\n"
        'def upgrade() -> None:\n    op.execute("CREATE TABLE migration_probe ()")\n\n\n'
        'def downgrade() -> None:\n    op.execute("DROP TABLE migration_probe")\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(preparation, "MIGRATIONS", migrations)
    monkeypatch.setattr(migrate, "MIGRATIONS", migrations)
    probe = "SELECT to_regclass('migration_probe') IS NOT NULL"
    prepared(_settings(fresh_url))
    assert _fetch(fresh_url, probe) is True
    # The same code, the database taken back below the revisions it recorded: migrated again.
    command.downgrade(migrate.alembic_config(fresh_url), head)
    assert _fetch(fresh_url, probe) is False
    prepared(_settings(fresh_url))
    assert _fetch(fresh_url, probe) is True


def test_a_database_from_before_the_record_is_prepared(server_url: str) -> None:
    name = f"sinergi_prep_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    asyncio.run(create_database(server_url, name))
    try:
        migrate.upgrade(url, "0017")
        prepared(Settings(database_url=url))
        assert _fetch(url, "SELECT revisions FROM preparation") == sorted(migrate.head_revisions())
    finally:
        asyncio.run(drop_database(server_url, name))


def test_a_changed_grant_is_applied(fresh_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    privilege = f"SELECT has_table_privilege('{TEST_SERVICE}', 'programmes', 'SELECT')"
    prepared(_settings(fresh_url))
    assert _fetch(fresh_url, privilege) is True
    monkeypatch.setattr(roles, "SERVICE_GRANTS", {**roles.SERVICE_GRANTS, "programmes": ""})
    prepared(_settings(fresh_url))
    assert _fetch(fresh_url, privilege) is False


def test_another_service_role_is_granted(fresh_url: str) -> None:
    """Prepared for the owner serving alone, then with the service role: the grants follow."""
    _fetch(fresh_url, f"REVOKE ALL ON programmes FROM {TEST_SERVICE}")
    prepared(Settings(database_url=fresh_url))
    prepared(_settings(fresh_url))
    privilege = f"SELECT has_table_privilege('{TEST_SERVICE}', 'programmes', 'SELECT')"
    assert _fetch(fresh_url, privilege) is True


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO preparation (fingerprint, revisions) VALUES ('forged', '{}')",
        "UPDATE preparation SET fingerprint = 'forged'",
        "DELETE FROM preparation",
        "SELECT fingerprint FROM preparation",
    ],
)
def test_the_service_role_cannot_touch_the_record(fresh_url: str, statement: str) -> None:
    prepared(_settings(fresh_url))
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        _fetch(as_service(fresh_url), statement)


def test_only_setting_up_commands_create_or_upgrade_a_schema(server_url: str) -> None:
    """`clients list` (any command but serve, migrate and demo-data) against a database without
    Sinergi's schema, or with migrations pending, names `sinergi migrate` and changes nothing."""
    name = f"sinergi_bare_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    parsed = make_url(url)
    where = f"{parsed.host or parsed.query['host']}:{parsed.port or 5432}/{name}"  # or a socket
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    asyncio.run(create_database(server_url, name))
    try:
        assert sinergi(url, "clients", "list") == (
            2,
            "",
            f"sinergi: the database at {where} holds no Sinergi schema: `sinergi migrate`"
            " creates it, if it is the right database\n",
        )
        assert _fetch(url, tables) == 0
        migrate.upgrade(url, "0027")
        assert sinergi(url, "clients", "list") == (
            2,
            "",
            f"sinergi: the database at {where} has migrations pending: run `sinergi migrate` to"
            " bring it up to date\n",
        )
        assert _fetch(url, "SELECT version_num FROM alembic_version") == "0027"
        assert sinergi(url, "migrate")[0] == 0
        assert sinergi(url, "clients", "list")[0] == 0
    finally:
        asyncio.run(drop_database(server_url, name))


def _owner_env(owner_url: str) -> dict[str, str]:
    """This environment, with the owner granting the service and no other Sinergi setting."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    return env | {"DATABASE_OWNER_URL": owner_url, "DATABASE_URL": as_service(owner_url)}


def _migrate_at_once(owner_url: str, count: int) -> list[subprocess.CompletedProcess[str]]:
    """`count` `sinergi migrate` processes started together, as the owner granting the
    service (replicas' start scripts, two operators)."""
    command = [sys.executable, "-m", "sinergi.cli", "migrate"]
    started = [
        subprocess.Popen(
            command,
            env=_owner_env(owner_url),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    return [
        subprocess.CompletedProcess(command, process.wait(300), *process.communicate())
        for process in started
    ]


def test_concurrent_migrations_take_turns(server_url: str) -> None:
    """Two `migrate`s on a new database raced to create the same types (duplicate key in
    pg_type), three on a migrated one to grant the same privileges ("tuple concurrently
    updated"), and one of them ended in a traceback. They take turns now: each exits 0."""
    with empty_database(server_url, "sinergi_race") as url:
        for count in (2, 3):
            for result in _migrate_at_once(url, count):
                assert result.returncode == 0, result.stderr
                assert "Traceback" not in result.stderr
                assert result.stdout == "database schema and reference data are up to date\n"
        assert _fetch(url, "SELECT revisions FROM preparation") == sorted(migrate.head_revisions())


def test_a_waiting_migrate_holds_back_no_index_built_concurrently(fresh_url: str) -> None:
    """A `migrate` waiting for the preparing lock waited inside `SELECT pg_advisory_lock`, whose
    snapshot a `CREATE INDEX CONCURRENTLY` in the lock holder's migrations waits out: each
    waited for the other, and PostgreSQL aborted one as a deadlock. It asks again every half
    second now, holding nothing between: the index is built, then the `migrate` goes ahead."""

    async def run() -> None:
        holder = await asyncpg.connect(fresh_url)
        try:
            await holder.execute("SELECT pg_advisory_lock(hashtext('sinergi.prepare'))")
            await holder.execute("CREATE TABLE concurrent_probe (n integer)")
            waiting = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "sinergi.cli",
                "migrate",
                env=_owner_env(fresh_url),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            assert waiting.stderr is not None
            said = await asyncio.wait_for(waiting.stderr.readline(), 120)
            assert said.startswith(b"sinergi: another process is preparing the database (pid ")
            assert said.endswith(b"); waiting\n")
            await asyncio.sleep(1)  # past the message, into waiting (the old code's statement)
            await asyncio.wait_for(
                holder.execute("CREATE INDEX CONCURRENTLY ON concurrent_probe (n)"), 30
            )
            await holder.execute("SELECT pg_advisory_unlock(hashtext('sinergi.prepare'))")
            out, err = await asyncio.wait_for(waiting.communicate(), 120)
            assert waiting.returncode == 0, err.decode()
            assert out == b"database schema and reference data are up to date\n"
        finally:
            await holder.close()

    asyncio.run(run())


@pytest.mark.parametrize("argv", [["migrate"], ["serve", "--port", "1"]], ids=lambda a: a[0])
def test_a_holder_that_never_lets_go_is_named_and_the_wait_ends(
    fresh_url: str, tmp_path: Path, argv: list[str]
) -> None:
    """A process holding the preparing lock for good (a migration stuck behind a lock, a
    session left open in psql) hung `serve` and `migrate` without a word. The wait names the
    holder at once, and past SINERGI_PREPARE_WAIT ends in one line naming it, exit 2."""

    async def run() -> tuple[int, str, str, int]:
        holder = await asyncpg.connect(fresh_url, server_settings={"application_name": "stuck"})
        try:
            await holder.execute("SELECT pg_advisory_lock(hashtext('sinergi.prepare'))")
            pid = await holder.fetchval("SELECT pg_backend_pid()")
            env = _owner_env(fresh_url) | {
                "SINERGI_PREPARE_WAIT": "1",
                "SINERGI_HOME": str(tmp_path),
            }
            waiting = await asyncio.create_subprocess_exec(
                *(sys.executable, "-m", "sinergi.cli", *argv),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(waiting.communicate(), 120)
            assert waiting.returncode is not None
            return waiting.returncode, out.decode(), err.decode(), pid
        finally:
            await holder.close()

    code, out, err, pid = asyncio.run(run())
    holder = f"pid {pid}, application 'stuck', connected since "
    assert (code, out, len(err.splitlines())) == (2, "", 2), err
    said, refused = err.splitlines()
    assert said.startswith(f"sinergi: another process is preparing the database ({holder}")
    assert refused.startswith(
        "sinergi: another process has been preparing the database for over 1 s"
        f" (SINERGI_PREPARE_WAIT): {holder}"
    )
    assert refused.endswith("; if it is stuck, end it (pg_terminate_backend) and run this again")
