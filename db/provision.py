"""Create the owner and service roles and a database the owner owns, as a superuser.

The embedded server does this on every start (idempotent), and the tests do it on their server;
with `DATABASE_URL` an administrator runs the README's statements instead. Neither role is a
superuser, may create roles or databases, replicate or bypass row-level security, or is a member
of another role; the owner owns the database and, after this, every
object in its `public` schema (a database made before the roles existed is handed over).
"""

from __future__ import annotations

import contextlib

import asyncpg
from sqlalchemy.engine import make_url

from db import roles


def with_role(url: str, role: str, database: str, password: str | None = None) -> str:
    """The same server, as `role` (without a password: the embedded server trusts its socket)."""
    parsed = make_url(url).set(username=role, password=password, database=database)
    return parsed.render_as_string(hide_password=False)


async def ensure_role(admin: asyncpg.Connection, role: str, password: str | None) -> None:
    """Made once, with `password` if given; an existing role is altered only to take away
    powers it must not have (so that processes starting together do not alter it at once):
    every attribute beyond LOGIN that `serve` refuses (sinergi/database.py), and membership in
    any role (db/roles.py `MEMBERSHIPS`: the server's file and program roles, say), which neither
    role needs."""
    found = await admin.fetchrow(_HELD, role)
    if found is None:
        secret = "" if password is None else " PASSWORD '" + password.replace("'", "''") + "'"
        # Another process may make it a moment before this one.
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await admin.execute(
                f"CREATE ROLE {roles.quoted(role)}"
                f" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE{secret}"
            )
        return
    if found["privileged"]:
        await admin.execute(
            f"ALTER ROLE {roles.quoted(role)} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
            " NOBYPASSRLS"
        )
    for held in await admin.fetch(roles.MEMBERSHIPS, role):
        if held["revoke"] is not None:
            await admin.execute(held["revoke"])


_HELD = """
SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls
       AS privileged
  FROM pg_roles r WHERE r.rolname = $1
"""


# Objects of `public` owned by anyone but the owner: tables first (their sequences follow them).
_FOREIGN_OBJECTS = """
SELECT format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, $1::text)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
   AND c.relowner <> $1::regrole
UNION ALL
SELECT format('ALTER FUNCTION %s OWNER TO %I', p.oid::regprocedure, $1::text)
  FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace AND p.proowner <> $1::regrole
UNION ALL
SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $1::text)
  FROM pg_type t
 WHERE t.typnamespace = 'public'::regnamespace AND t.typowner <> $1::regrole
   AND t.typtype IN ('e', 'd') AND t.typelem = 0
"""

_FOREIGN_SEQUENCES = """
SELECT format('ALTER SEQUENCE %s OWNER TO %I', c.oid::regclass, $1::text)
  FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
   AND c.relowner <> $1::regrole
"""


async def ensure_database(
    admin_url: str, name: str, *, owner: str, service: str, password: str | None = None
) -> None:
    """The two roles (with `password`, when given), and database `name` owned by `owner` with
    everything in it."""
    admin = await asyncpg.connect(admin_url)
    try:
        await ensure_role(admin, owner, password)
        await ensure_role(admin, service, password)
        current_owner = await admin.fetchval(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", name
        )
        if current_owner is None:
            await admin.execute(f"CREATE DATABASE {roles.quoted(name)} OWNER {roles.quoted(owner)}")
            return
        if current_owner != owner:
            await admin.execute(
                f"ALTER DATABASE {roles.quoted(name)} OWNER TO {roles.quoted(owner)}"
            )
    finally:
        await admin.close()
    database = await asyncpg.connect(make_url(admin_url).set(database=name).render_as_string(False))
    try:
        for query in (_FOREIGN_OBJECTS, _FOREIGN_SEQUENCES):
            for statement in await database.fetch(query, owner):
                await database.execute(statement[0])
    finally:
        await database.close()
