"""The service's database role: it may append to the audit trail and nothing more.

An insider holding the service's credentials (or SQL injected into it) tries every way of
rewriting the trail that PostgreSQL offers a role: each must be refused for want of privilege
(SQLSTATE 42501), not merely stopped by a trigger the role could switch off. In embedded mode
and against a server alike (the suite runs in both).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from unittest import mock

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from db.roles import SERVICE_GRANTS, grant_statements
from tests.support.databases import TEST_OWNER, TEST_PASSWORD, TEST_SERVICE, as_service

HASH_SIGNATURE = "audit_log_hash(text, bigint, timestamptz, text, jsonb, text[])"

ATTACKS = {
    "update an entry": "UPDATE audit_log SET client_id = 'someone-else'",
    "delete entries": "DELETE FROM audit_log",
    "truncate": "TRUNCATE audit_log",
    "update a seal": "UPDATE audit_seals SET mac = ''",
    "delete seals": "DELETE FROM audit_seals",
    "truncate seals": "TRUNCATE audit_seals",
    "disable its triggers": "ALTER TABLE audit_log DISABLE TRIGGER USER",
    "disable one trigger": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete",
    "disable the seals' triggers": "ALTER TABLE audit_seals DISABLE TRIGGER USER",
    "drop a trigger": "DROP TRIGGER audit_log_no_update_or_delete ON audit_log",
    "alter the table": "ALTER TABLE audit_log ADD COLUMN forged text",
    "drop the table": "DROP TABLE audit_log",
    "rename it away": "ALTER TABLE audit_log RENAME TO audit_log_old",
    "replace it with a table of its own": "CREATE TABLE public.audit_log_new (LIKE audit_log)",
    "replace the hash function": (
        f"CREATE OR REPLACE FUNCTION {HASH_SIGNATURE} RETURNS text LANGUAGE sql AS $$ SELECT '' $$"
    ),
    "replace the chain trigger's function": (
        "CREATE OR REPLACE FUNCTION audit_log_chain() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN NEW; END $$"
    ),
    "replace the refusing function": (
        "CREATE OR REPLACE FUNCTION audit_log_refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN RETURN OLD; END $$"
    ),
    "drop a function": "DROP FUNCTION audit_log_refuse() CASCADE",
    "rename a function": "ALTER FUNCTION audit_log_chain() RENAME TO audit_log_chain_old",
    "skip every trigger": "SET session_replication_role = replica",
    # The chain's trigger also refuses oversized and unsigned entries (migration 0061).
    "drop the chain's trigger": "DROP TRIGGER audit_log_chain ON audit_log",
    "disable it": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain",
    "drop its function": "DROP FUNCTION audit_log_chain() CASCADE",
    "drop the MAC's check": "ALTER TABLE audit_log DROP CONSTRAINT ck_audit_log_entry_mac_shape",
    "drop the nonce's": "ALTER TABLE audit_log DROP CONSTRAINT ck_audit_log_entry_nonce_shape",
    "drop the seal's": "ALTER TABLE audit_seals DROP CONSTRAINT ck_audit_seals_mac_shape",
    "become the owner": "SET ROLE sinergi_test_owner",
    "backdate an entry": (
        "INSERT INTO audit_log (client_id, entry, subjects, at) "
        "VALUES ('x', '{}', '{}', '2020-01-01')"
    ),
    "forge its place in the chain": (
        "INSERT INTO audit_log (client_id, entry, subjects, seq, prev_hash, hash) "
        "VALUES ('x', '{}', '{}', 1, '', 'forged')"
    ),
    "write a record's history": "DELETE FROM record_changes",
    "forge a client": "INSERT INTO oauth_clients (client_id) VALUES ('forged')",
}


@pytest.fixture
async def service(migrated_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(as_service(migrated_url))
    yield connection
    await connection.close()


@pytest.mark.parametrize("statement", ATTACKS.values(), ids=ATTACKS.keys())
async def test_the_service_role_cannot_rewrite_the_audit_trail(
    service: asyncpg.Connection, statement: str
) -> None:
    with pytest.raises(asyncpg.PostgresError) as refused:
        await service.execute(statement)
    assert refused.value.sqlstate == "42501", refused.value  # insufficient_privilege


KEY_WRITES = {
    "zero the keys": "UPDATE msmes SET cell_key = 0",
    "zero a cooperative's key": "UPDATE cooperatives SET cell_key = 0 WHERE id = 1",
    "create with a key": (
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code, cell_key) VALUES ('9990000000001', 'x', '10794', 'C', 'micro', '62',"
        " '62.71', 0)"
    ),
    "create a cooperative with a key": (
        "INSERT INTO cooperatives (legal_entity_no, name, type, province_code, regency_code,"
        " cell_key) VALUES ('AHU-0', 'x', 'producer', '62', '62.71', 0)"
    ),
    "upsert a key": (
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) VALUES ('9990000000001', 'x', '10794', 'C', 'micro', '62', '62.71')"
        " ON CONFLICT (nib) DO UPDATE SET cell_key = 0"
    ),
    # Renumbered, a record would take another's history, owner and feed entries as its own.
    "renumber a record": "UPDATE msmes SET id = id + 1000000 WHERE id = 1",
    "renumber a cooperative": "UPDATE cooperatives SET id = id + 1000000 WHERE id = 1",
}


@pytest.mark.parametrize("statement", KEY_WRITES.values(), ids=KEY_WRITES.keys())
async def test_the_service_role_cannot_set_a_record_key_or_renumber_a_record(
    service: asyncpg.Connection, statement: str
) -> None:
    """An insider holding the service's credentials who set every record key to 0 would know
    each cell's noise from the public perturbation table, and keep knowing it after the
    credentials were rotated: the keys are the database's to draw, once."""
    with pytest.raises(asyncpg.PostgresError) as refused:
        await service.execute(statement)
    assert refused.value.sqlstate == "42501", refused.value  # insufficient_privilege
    await service.execute("UPDATE msmes SET employees = employees, version = version WHERE false")


async def test_the_service_role_appends_and_the_database_fills_in_the_rest(
    service: asyncpg.Connection,
) -> None:
    """And a temporary table named like the log, in the service's own session, cannot feed
    the chain a forged predecessor."""
    await service.execute("CREATE TEMPORARY TABLE audit_log (seq bigint, hash text)")
    await service.execute("INSERT INTO audit_log VALUES (1000, 'forged')")
    for n in range(2):
        await service.execute(
            "INSERT INTO public.audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
            " VALUES ($1, $2, '{}', repeat('0', 64), md5(random()::text))",
            "test-roles",
            f'{{"n": {n}}}',
        )
    rows = await service.fetch(
        "SELECT seq, prev_hash, hash, at <= clock_timestamp() AS now FROM public.audit_log"
        " WHERE client_id = 'test-roles' ORDER BY seq"
    )
    assert [row["now"] for row in rows] == [True, True]
    assert rows[1]["seq"] == rows[0]["seq"] + 1
    assert rows[1]["prev_hash"] == rows[0]["hash"] != "forged"


async def test_the_service_role_owns_nothing_and_is_no_superuser(
    service: asyncpg.Connection,
) -> None:
    role = await service.fetchrow(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
        " WHERE rolname = current_user"
    )
    assert dict(role) == dict.fromkeys(role.keys(), False)
    owned = await service.fetchval(
        "SELECT count(*) FROM pg_class WHERE relowner = current_user::regrole"
        " AND relnamespace = 'public'::regnamespace"
    )
    assert owned == 0
    functions = await service.fetchval(
        "SELECT count(*) FROM pg_proc WHERE proowner = current_user::regrole"
    )
    assert functions == 0


async def test_every_table_and_sequence_is_declared_in_the_grants(migrated_url: str) -> None:
    """A migration that adds a table must say in db/roles.py what the service may do to it."""
    connection = await asyncpg.connect(migrated_url)
    try:
        names = await connection.fetch(
            "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace"
            " AND relkind IN ('r', 'p', 'S', 'v', 'm', 'f')"
        )
        public = await connection.fetch(
            "SELECT c.relname, a.privilege_type FROM pg_class c,"
            " aclexplode(c.relacl) a"
            " WHERE c.relnamespace = 'public'::regnamespace AND a.grantee = 0"
        )
    finally:
        await connection.close()
    assert sorted(row["relname"] for row in names) == sorted(SERVICE_GRANTS)
    assert [tuple(row) for row in public] == [], "PUBLIC holds nothing"


async def test_the_grants_are_what_the_declaration_says(migrated_url: str) -> None:
    connection = await asyncpg.connect(migrated_url)
    try:
        granted = await connection.fetch(
            "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
            " WHERE grantee = $1",
            TEST_SERVICE,
        )
        columns = await connection.fetch(
            "SELECT table_name, column_name FROM information_schema.column_privileges"
            " WHERE grantee = $1 AND privilege_type = 'INSERT' AND table_name = 'audit_log'",
            TEST_SERVICE,
        )
        record_columns = await connection.fetch(
            "SELECT table_name, column_name, privilege_type"
            " FROM information_schema.column_privileges WHERE grantee = $1"
            " AND table_name IN ('msmes', 'cooperatives')"
            " AND privilege_type IN ('INSERT', 'UPDATE')",
            TEST_SERVICE,
        )
    finally:
        await connection.close()
    held = {(row["table_name"], row["privilege_type"]) for row in granted}
    assert ("audit_log", "SELECT") in held
    assert {("audit_log", p) for p in ("INSERT", "UPDATE", "DELETE", "TRUNCATE")} & held == set()
    assert {("regions", "UPDATE"), ("oauth_clients", "INSERT")} & held == set()
    assert {("msmes", p) for p in ("SELECT", "INSERT", "UPDATE")} & held == {("msmes", "SELECT")}
    writable = {(row["table_name"], row["privilege_type"]) for row in record_columns}
    assert writable == {(t, p) for t in ("msmes", "cooperatives") for p in ("INSERT", "UPDATE")}
    assert "cell_key" not in {row["column_name"] for row in record_columns}
    assert ("msmes", "name", "UPDATE") in {tuple(row) for row in record_columns}
    assert ("msmes", "id", "UPDATE") not in {tuple(row) for row in record_columns}
    assert sorted(row["column_name"] for row in columns) == [
        "client_id",
        "entry",
        "entry_mac",
        "entry_nonce",
        "subjects",
    ]


def _serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "serve", "--port", "1", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_serve_refuses_a_superuser_or_the_owner_in_production(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    """Its remedy is serving as the service role: `sinergi migrate` takes nothing back from a
    superuser or the database's owner, so the line does not offer it."""
    superuser = make_url(server_url).set(database=make_url(fresh_url).database)
    for url, who in ((superuser.render_as_string(False), "superuser"), (fresh_url, "owns")):
        refused = _serve({"DATABASE_URL": url, "SINERGI_HOME": str(tmp_path)})
        assert refused.returncode == 2, refused.stderr
        assert who in refused.stderr
        assert "SINERGI_UNSAFE_PRIVILEGED_ROLE" in refused.stderr
        assert "Serve as the service role" in refused.stderr
        assert "sinergi migrate" not in refused.stderr
        assert "REVOKE" not in refused.stderr


# Ways past the service's grants short of a superuser or the owner, each granted to a role of
# the test's own by the server's superuser ({role}), with what `serve`'s refusal names. CREATEROLE
# grants itself the owner (PostgreSQL 15 lets it) and `SET ROLE`s; pg_execute_server_program runs
# `COPY … FROM PROGRAM 'id'`, a shell as the server's OS user; an object's owner alters it.
BEYOND_SERVICE = {
    "CREATEROLE": (["ALTER ROLE {role} CREATEROLE"], "CREATEROLE"),
    "CREATEDB": (["ALTER ROLE {role} CREATEDB"], "CREATEDB"),
    "REPLICATION": (["ALTER ROLE {role} REPLICATION"], "REPLICATION"),
    "BYPASSRLS": (["ALTER ROLE {role} BYPASSRLS"], "BYPASSRLS"),
    "server programs": (["GRANT pg_execute_server_program TO {role}"], "pg_execute_server_program"),
    "server files written": (["GRANT pg_write_server_files TO {role}"], "pg_write_server_files"),
    "server files read": (["GRANT pg_read_server_files TO {role}"], "pg_read_server_files"),
    "a role that may create roles, through another": (
        [
            "CREATE ROLE {role}_creator CREATEROLE",
            "CREATE ROLE {role}_between",
            "GRANT {role}_creator TO {role}_between",
            "GRANT {role}_between TO {role}",
        ],
        "{role}_creator",
    ),
    "a role that bypasses row-level security": (
        ["CREATE ROLE {role}_bypass BYPASSRLS", "GRANT {role}_bypass TO {role}"],
        "{role}_bypass",
    ),
    "a schema": (["CREATE SCHEMA {role}_schema AUTHORIZATION {role}"], "schema {role}_schema"),
    "a table": (
        ["CREATE TABLE public.{role}_table (n int)", "ALTER TABLE {role}_table OWNER TO {role}"],
        "table {role}_table",
    ),
    "a function": (
        [
            "CREATE FUNCTION public.{role}_function() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            "ALTER FUNCTION {role}_function() OWNER TO {role}",
        ],
        "function {role}_function()",
    ),
    "an ordinary role's grants": (
        [
            "CREATE ROLE {role}_extra",
            "GRANT INSERT, UPDATE, DELETE ON change_log, audit_seals TO {role}_extra",
            "GRANT {role}_extra TO {role}",
        ],
        "{role}_extra",
    ),
    # A schema of its own named like the owner would come first on the owner's default
    # search_path ("$user", public): the owner's psql would run the service's code.
    "CREATE on the database": (
        [
            "DO $$ BEGIN EXECUTE format('GRANT ALL PRIVILEGES ON DATABASE %I TO {role}',"
            " current_database()); END $$"
        ],
        "may create schemas in this database (CREATE on it: `sinergi migrate` takes it back",
    ),
    "a column of the audit trail to update": (
        ["GRANT UPDATE (client_id) ON audit_log TO {role}"],
        "the service only reads or appends to (audit_log)",
    ),
    "a type, through a role it belongs to": (
        [
            "CREATE ROLE {role}_typer",
            "GRANT {role}_typer TO {role}",
            "CREATE TYPE public.{role}_type AS ENUM ('a')",
            "ALTER TYPE {role}_type OWNER TO {role}_typer",
        ],
        "type {role}_type",
    ),
}


@contextlib.contextmanager
def _role_of_its_own(server_url: str, url: str, grants: list[str]) -> Iterator[str]:
    """A login role made for one test, granted what db/roles.py grants the service (so it reads
    what `serve` reads before it refuses; not through membership in the service role, which is
    itself a membership refused), then given `grants` ({role} names it) by the superuser in
    `url`'s database; the URL of `url`'s database as it. Dropped afterwards, with what it owns
    and was granted."""
    role = f"sinergi_priv_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(database=make_url(url).database).render_as_string(False)
    statements = [
        f"CREATE ROLE {role} LOGIN PASSWORD '{TEST_PASSWORD}'",
        *grant_statements(role),
        *(grant.format(role=role) for grant in grants),
    ]
    extra = [f"{role}_{name}" for name in ("creator", "between", "bypass", "typer", "extra")]
    try:
        asyncio.run(_execute(admin, statements))
        yield make_url(url).set(username=role, password=TEST_PASSWORD).render_as_string(False)
    finally:
        owners = ", ".join([role, *extra])
        asyncio.run(
            _execute(
                admin,
                [
                    f"DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}')"
                    f" THEN EXECUTE 'DROP OWNED BY {name}'; END IF; END $$"
                    for name in owners.split(", ")
                ]
                + [f"DROP ROLE IF EXISTS {owners}"],
            )
        )


async def _execute(url: str, statements: list[str]) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def test_only_what_the_service_holds_passes_the_check(server_url: str, fresh_url: str) -> None:
    """The service role, and a role that holds only the service's privileges, pass; so does
    one whose other session holds a temporary table, which any role with TEMPORARY may make."""
    from sinergi.database import privileges_beyond_service

    assert asyncio.run(privileges_beyond_service(as_service(fresh_url))) is None
    with _role_of_its_own(server_url, fresh_url, []) as url:

        async def with_a_temporary_table() -> str | None:
            other = await asyncpg.connect(url)
            try:
                await other.execute("CREATE TEMPORARY TABLE scratch (n int)")
                return await privileges_beyond_service(url)
            finally:
                await other.close()

        assert asyncio.run(with_a_temporary_table()) is None


@pytest.mark.parametrize("held", BEYOND_SERVICE.values(), ids=BEYOND_SERVICE.keys())
def test_every_way_past_the_service_grants_is_named(
    server_url: str, migrated_url: str, held: tuple[list[str], str]
) -> None:
    from sinergi.database import privileges_beyond_service

    grants, named = held
    with _role_of_its_own(server_url, migrated_url, grants) as url:
        role = make_url(url).username
        reason = asyncio.run(privileges_beyond_service(url))
    assert reason is not None
    assert repr(role) in reason
    assert named.format(role=role) in reason


def test_serve_refuses_a_superuser_replica_url(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    """The replica's role reads every record as the primary's does: a superuser there started
    silently, though refused as DATABASE_URL."""
    superuser = make_url(server_url).set(database=make_url(fresh_url).database)
    refused = _serve(
        {
            "DATABASE_URL": as_service(fresh_url),
            "DATABASE_REPLICA_URL": superuser.render_as_string(False),
            "SINERGI_HOME": str(tmp_path),
        }
    )
    assert refused.returncode == 2, refused.stderr
    assert "refusing to serve: DATABASE_REPLICA_URL: the database role" in refused.stderr
    assert "is a superuser" in refused.stderr
    assert "SINERGI_UNSAFE_PRIVILEGED_ROLE" in refused.stderr


def test_serve_refuses_a_role_that_may_create_roles_run_programs_or_belongs_to_a_role(
    server_url: str, fresh_url: str, tmp_path: Path
) -> None:
    """Through the CLI, as production starts it: the reason, and how to override it."""
    for case in ("CREATEROLE", "server programs", "an ordinary role's grants"):
        grants, named = BEYOND_SERVICE[case]
        with _role_of_its_own(server_url, fresh_url, grants) as url:
            role = make_url(url).username
            refused = _serve({"DATABASE_URL": url, "SINERGI_HOME": str(tmp_path)})
        assert refused.returncode == 2, refused.stderr
        assert "refusing to serve" in refused.stderr
        assert named.format(role=role) in refused.stderr
        assert "--unsafe-privileged-role" in refused.stderr
        assert "SINERGI_UNSAFE_PRIVILEGED_ROLE" in refused.stderr


def test_migrate_takes_back_create_on_the_database(server_url: str, fresh_url: str) -> None:
    """`GRANT ALL PRIVILEGES ON DATABASE … TO sinergi_service`, a common habit, includes CREATE:
    the service could make a schema named like the owner, which the owner's psql searches first
    ("$user", public), and plant an `audit_log` there that runs as the owner. `migrate` takes
    CREATE back, from PUBLIC too, and leaves CONNECT and TEMPORARY; `serve`'s check then
    passes."""
    from db.migrate import upgrade
    from sinergi.database import privileges_beyond_service

    admin = make_url(server_url).set(database=make_url(fresh_url).database)
    grant = (
        "DO $$ BEGIN EXECUTE format('GRANT ALL PRIVILEGES ON DATABASE %I TO PUBLIC, {role}',"
        " current_database()); END $$"
    )
    asyncio.run(_execute(admin.render_as_string(False), [grant.format(role=TEST_SERVICE)]))
    service = as_service(fresh_url)
    assert "CREATE on it" in (asyncio.run(privileges_beyond_service(service)) or "")
    upgrade(fresh_url, service_role=TEST_SERVICE)

    async def attempt() -> list[bool]:
        connection = await asyncpg.connect(service)
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(f"CREATE SCHEMA {TEST_OWNER}")
            return [
                await connection.fetchval(
                    "SELECT has_database_privilege(current_database(), $1)", privilege
                )
                for privilege in ("CONNECT", "TEMPORARY")
            ]
        finally:
            await connection.close()

    assert asyncio.run(attempt()) == [True, True]
    assert asyncio.run(privileges_beyond_service(service)) is None


def test_migrate_refuses_a_service_role_that_belongs_to_a_role(
    server_url: str, fresh_url: str
) -> None:
    """A role the service belongs to lends it its grants (here INSERT and DELETE on the change
    feed), which no REVOKE on the service takes back: `migrate`, as the owner, cannot revoke a
    membership the superuser granted, so it stops, naming it and the statement that ends it;
    once an administrator has run that, it migrates, and `serve`'s check passes."""
    from sinergi.cli import main
    from sinergi.database import privileges_beyond_service

    admin = make_url(server_url).set(database=make_url(fresh_url).database)
    with _role_of_its_own(
        server_url, fresh_url, BEYOND_SERVICE["an ordinary role's grants"][0]
    ) as url:
        role = make_url(url).username
        env = {"DATABASE_OWNER_URL": fresh_url, "DATABASE_URL": url}
        with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(io.StringIO()):
            with contextlib.redirect_stderr(io.StringIO()) as refused:
                assert main(["migrate"]) == 2
            revoke = f"REVOKE {role}_extra FROM {role} GRANTED BY {admin.username}"
            assert f"is a member of {role}_extra" in refused.getvalue()
            assert revoke in refused.getvalue()
            asyncio.run(_execute(admin.render_as_string(False), [revoke]))
            assert main(["migrate"]) == 0
        assert asyncio.run(privileges_beyond_service(url)) is None


def test_a_superuser_applying_the_grants_ends_the_services_memberships(
    server_url: str, fresh_url: str
) -> None:
    """`roles.apply` revokes every membership it may: a superuser's connection may revoke any."""
    from db import roles
    from db.engine import one_connection

    admin = make_url(server_url).set(database=make_url(fresh_url).database)
    with _role_of_its_own(
        server_url, fresh_url, BEYOND_SERVICE["an ordinary role's grants"][0]
    ) as url:
        role = make_url(url).username
        assert role is not None

        async def apply() -> list[object]:
            superuser = admin.render_as_string(False)
            async with one_connection(
                superuser, statement_timeout_ms=60_000, transaction=True
            ) as connection:
                await roles.apply(connection, role)
            async with one_connection(superuser, statement_timeout_ms=10_000) as connection:
                return list(await roles.memberships(connection, role))

        assert asyncio.run(apply()) == []


def test_the_embedded_roles_lose_what_serve_refuses(server_url: str, fresh_url: str) -> None:
    """`provision.ensure_role`, as every embedded start runs it, takes away the attributes and
    memberships `serve` would refuse, whoever granted them."""
    from db import provision
    from sinergi.database import privileges_beyond_service

    grants = [
        "ALTER ROLE {role} CREATEROLE CREATEDB REPLICATION BYPASSRLS",
        "GRANT pg_execute_server_program, pg_read_server_files TO {role}",
        "CREATE ROLE {role}_creator CREATEROLE",
        "SET ROLE {role}_creator",
        "CREATE ROLE {role}_between",
        "GRANT {role}_between TO {role}",  # its grantor not the superuser
        "RESET ROLE",
    ]
    with _role_of_its_own(server_url, fresh_url, grants) as url:
        role = make_url(url).username
        assert role is not None
        assert asyncio.run(privileges_beyond_service(url)) is not None

        async def ensure() -> None:
            admin = await asyncpg.connect(server_url)
            try:
                await provision.ensure_role(admin, role, None)
            finally:
                await admin.close()

        asyncio.run(ensure())
        assert asyncio.run(privileges_beyond_service(url)) is None
        asyncio.run(ensure())  # nothing left to take away


def test_the_grants_converge_when_applied_again(migrated_url: str) -> None:
    """Applying twice (every upgrade does) leaves the same grants."""
    from db.migrate import upgrade

    async def snapshot() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(migrated_url)
        try:
            rows = await connection.fetch(
                "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
                " WHERE grantee = $1 ORDER BY 1, 2",
                TEST_SERVICE,
            )
        finally:
            await connection.close()
        return [tuple(row) for row in rows]

    before = asyncio.run(snapshot())
    upgrade(migrated_url, service_role=TEST_SERVICE)
    assert asyncio.run(snapshot()) == before


def test_a_database_made_before_the_roles_is_handed_over_to_the_owner(server_url: str) -> None:
    """An embedded data directory from before this migration: everything its superuser's."""
    from db import provision
    from db.migrate import upgrade
    from tests.support.databases import TEST_OWNER, TEST_PASSWORD, create_database, drop_database

    name = f"sinergi_legacy_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(make_url(server_url).set(database=name).render_as_string(False), "0009")
        asyncio.run(
            provision.ensure_database(
                server_url, name, owner=TEST_OWNER, service=TEST_SERVICE, password=TEST_PASSWORD
            )
        )
        owner_url = provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD)
        upgrade(owner_url, service_role=TEST_SERVICE)

        async def check() -> None:
            owner = await asyncpg.connect(owner_url)
            service = await asyncpg.connect(as_service(owner_url))
            try:
                foreign = await owner.fetchval(
                    "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"
                    " AND relowner <> current_user::regrole"
                )
                assert foreign == 0
                await service.execute(
                    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
                    " VALUES ('c', '{}', '{}', repeat('0', 64), md5(random()::text))"
                )
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await service.execute("ALTER TABLE audit_log DISABLE TRIGGER USER")
            finally:
                await owner.close()
                await service.close()

        asyncio.run(check())
    finally:
        asyncio.run(drop_database(server_url, name))


def test_the_service_role_alone_serves_a_current_schema_and_never_migrates(
    fresh_url: str, server_url: str
) -> None:
    from db.migrate import upgrade
    from sinergi.database import SchemaNotCurrent, prepared_for_serving
    from sinergi.settings import Settings
    from tests.support.databases import create_database, drop_database

    current = prepared_for_serving(Settings(database_url=as_service(fresh_url)))
    assert current.service_url == current.owner_url == as_service(fresh_url)
    name = f"sinergi_behind_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(make_url(server_url).set(database=name).render_as_string(False), "0009")
        behind = as_service(make_url(fresh_url).set(database=name).render_as_string(False))
        with pytest.raises(SchemaNotCurrent, match="sinergi migrate"):
            prepared_for_serving(Settings(database_url=behind))
    finally:
        asyncio.run(drop_database(server_url, name))


# Defaults the service role may set for its own later sessions, in one database; each would
# weaken what the code relies on (a commit on disk before it is acknowledged, audit entries
# included; writes allowed; read committed; the migrations' schema).
OWN_DEFAULTS = {
    "synchronous_commit": ("off", "on"),
    "default_transaction_read_only": ("on", "off"),
    "default_transaction_isolation": ("serializable", "read committed"),
    "search_path": ("pg_temp", "public"),
}


async def _set_own_defaults(url: str, *, everywhere: bool) -> None:
    """As the service role: its defaults in this database, and its synchronous_commit in every
    database when `everywhere` (the roles are the test server's, shared by concurrent test
    runs: only a default they cannot notice is set there, and for a moment)."""
    service = await asyncpg.connect(as_service(url))
    try:
        database = await service.fetchval("SELECT current_database()")
        for name, (weak, _) in OWN_DEFAULTS.items():
            await service.execute(
                f"ALTER ROLE CURRENT_USER IN DATABASE \"{database}\" SET {name} = '{weak}'"
            )
        if everywhere:
            await service.execute("ALTER ROLE CURRENT_USER SET synchronous_commit = off")
    finally:
        await service.close()


async def _sessions_defaults(url: str) -> dict[str, str]:
    connection = await asyncpg.connect(url)
    try:
        return {name: await connection.fetchval(f"SHOW {name}") for name in OWN_DEFAULTS}
    finally:
        await connection.close()


async def _service_defaults_stored(owner_url: str) -> list[tuple[str, list[str]]]:
    owner = await asyncpg.connect(owner_url)
    try:
        rows = await owner.fetch(
            "SELECT coalesce(d.datname, '*'), s.setconfig FROM pg_db_role_setting s"
            " LEFT JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE s.setrole = $1::regrole AND s.setdatabase IN (0, ("
            "   SELECT oid FROM pg_database WHERE datname = current_database()))",
            TEST_SERVICE,
        )
    finally:
        await owner.close()
    return [tuple(row) for row in rows]


async def _reset_own_defaults(url: str) -> None:
    writable = {"default_transaction_read_only": "off"}  # else ALTER ROLE is refused too
    service = await asyncpg.connect(as_service(url), server_settings=writable)
    try:
        database = await service.fetchval("SELECT current_database()")
        await service.execute(f'ALTER ROLE CURRENT_USER IN DATABASE "{database}" RESET ALL')
        await service.execute("ALTER ROLE CURRENT_USER RESET synchronous_commit")
    finally:
        await service.close()


async def test_defaults_the_service_role_sets_itself_do_not_reach_the_apps_sessions(
    fresh_url: str,
) -> None:
    """`ALTER ROLE sinergi_service SET synchronous_commit = off` succeeds for the role itself,
    and a session that does not pin it runs so; the app's sessions do not."""
    from db.engine import autocommit, create_engine
    from db.queries.audit import AuditWriter

    await _set_own_defaults(fresh_url, everywhere=True)
    try:
        weakened = await _sessions_defaults(as_service(fresh_url))
        assert weakened == {name: weak for name, (weak, _) in OWN_DEFAULTS.items()}
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000, pool_size=1)
        try:
            async with engine.connect() as connection:
                pinned = {
                    name: (await connection.exec_driver_sql(f"SHOW {name}")).scalar_one()
                    for name in OWN_DEFAULTS
                }
            await AuditWriter(autocommit(engine), bytes(32)).append(
                client_id="test-roles", entry={"n": 1}, subjects=[]
            )
        finally:
            await engine.dispose()
    finally:
        await _reset_own_defaults(fresh_url)
    assert pinned == {name: kept for name, (_, kept) in OWN_DEFAULTS.items()}


def test_migrate_resets_the_defaults_the_service_role_set_itself(fresh_url: str) -> None:
    """Only the role itself (short of a superuser) may: `migrate` has its URL, and does."""
    from sinergi.cli import main

    asyncio.run(_set_own_defaults(fresh_url, everywhere=True))
    try:
        assert len(asyncio.run(_service_defaults_stored(fresh_url))) == 2
        env = {"DATABASE_OWNER_URL": fresh_url, "DATABASE_URL": as_service(fresh_url)}
        with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(io.StringIO()):
            assert main(["migrate"]) == 0
        assert asyncio.run(_service_defaults_stored(fresh_url)) == []
        defaults = asyncio.run(_sessions_defaults(as_service(fresh_url)))
        assert [name for name, (weak, _) in OWN_DEFAULTS.items() if defaults[name] == weak] == []
    finally:
        asyncio.run(_reset_own_defaults(fresh_url))


# Granted to the service by hand, as the owner, none of it declared in db/roles.py.
HAND_MADE = {
    "create in public": "GRANT CREATE ON SCHEMA public TO {service}",
    "call a definer function": "GRANT EXECUTE ON FUNCTION change_pending_commit() TO {service}",
    "call it through PUBLIC": "GRANT EXECUTE ON FUNCTION msmes_change_log_insert() TO PUBLIC",
    "a table not declared": "GRANT ALL ON hand_made TO {service}",
    "a declared table, beyond its grant": "GRANT ALL ON regions TO {service}",
    "a column beyond its grant": "GRANT UPDATE (hash) ON audit_log TO {service}",
    "a sequence": "GRANT ALL ON SEQUENCE change_log_id_seq TO {service}",
    "a table, through PUBLIC": "GRANT SELECT ON change_pending TO PUBLIC",
}
# What each would let the service do, asked of the database: all false once migrated.
HELD = {
    "create in public": "has_schema_privilege($1, 'public', 'CREATE')",
    "call a definer function": "has_function_privilege($1, 'change_pending_commit()', 'EXECUTE')",
    "call it through PUBLIC": (
        "has_function_privilege($1, 'msmes_change_log_insert()', 'EXECUTE')"
    ),
    "a table not declared": "has_table_privilege($1, 'hand_made', 'SELECT')",
    "a declared table, beyond its grant": "has_table_privilege($1, 'regions', 'UPDATE')",
    "a column beyond its grant": "has_column_privilege($1, 'audit_log', 'hash', 'UPDATE')",
    "a sequence": "has_sequence_privilege($1, 'change_log_id_seq', 'USAGE')",
    "a table, through PUBLIC": "has_table_privilege($1, 'change_pending', 'SELECT')",
}


async def _held(owner_url: str) -> dict[str, bool]:
    owner = await asyncpg.connect(owner_url)
    try:
        return {
            name: await owner.fetchval(f"SELECT {check}", TEST_SERVICE)
            for name, check in HELD.items()
        }
    finally:
        await owner.close()


def test_migrate_takes_back_what_was_granted_by_hand(fresh_url: str) -> None:
    """The service holds exactly what db/roles.py declares after `sinergi migrate`, whatever the
    owner granted it, or PUBLIC, in between: nothing to create ahead of `pg_temp` in a definer
    function's path, no definer function to call, no table beyond its declaration."""
    from sinergi.cli import main

    async def grant() -> None:
        owner = await asyncpg.connect(fresh_url)
        try:
            await owner.execute("CREATE TABLE hand_made (secret text)")
            for statement in HAND_MADE.values():
                await owner.execute(statement.format(service=TEST_SERVICE))
        finally:
            await owner.close()

    asyncio.run(grant())
    assert asyncio.run(_held(fresh_url)) == dict.fromkeys(HELD, True)
    env = {"DATABASE_OWNER_URL": fresh_url, "DATABASE_URL": as_service(fresh_url)}
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(io.StringIO()):
        assert main(["migrate"]) == 0
    assert asyncio.run(_held(fresh_url)) == dict.fromkeys(HELD, False)
