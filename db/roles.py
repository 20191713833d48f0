"""What the service's database role may do, table by table: the one declaration of its grants.

Three roles, in every mode (README, "Database roles"): a superuser that only creates the other two
(the embedded server does this itself); the owner, which owns every table and function and runs the
migrations; the service, which `sinergi serve` connects as, holds exactly the privileges below and
USAGE on the schema `public`, and owns nothing; it may read the figure releases' copies and call the
owner's function that makes one at most hourly (db/releases.py), not the one that makes one at once,
and create nothing in their schemas; it may call the owner's function that makes a signing key
when none signs, and write no key itself. PUBLIC holds none on tables and sequences, nor CREATE in
`public` (migration 0010), nor EXECUTE on the owner's SECURITY DEFINER functions; `apply` takes back
whatever else was granted by hand. It is a member of no role at all (`MEMBERSHIPS`): a role's
members hold its privileges, which no REVOKE on the service reaches, so `apply` refuses a membership
it cannot end and `serve` refuses to run as a member. The audit trail is append-only for the
service: it may insert an entry's content and its MAC (the database sets its time, sequence and
hashes) and a seal, never update, delete, truncate or alter either table, nor replace their
triggers' functions (which takes ownership), nor set `session_replication_role` (which takes a
superuser).

`apply` runs after every upgrade (db.migrate.upgrade), so a table a new migration adds must be
declared here; tests/test_roles.py fails for any table or sequence that is not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from sqlalchemy import Row, Table, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import releases
from db.models import COOPERATIVES, MSMES

READ = "SELECT"
APPEND = "SELECT, INSERT"
WRITE = "SELECT, INSERT, UPDATE"
CHANGE = "SELECT, INSERT, UPDATE, DELETE"


def _keyless(table: Table) -> str:
    """`WRITE` on every column of `table` but its record key (`cell_key`, db/models.py), and no
    UPDATE of its `id`: a record keeps its id (the bulk import COPYs new records with ids drawn
    from the sequence), so the history, owners and feed entries naming it stay its own."""
    inserted = [column.name for column in table.c if column.name != "cell_key"]
    updated = [name for name in inserted if name != "id"]
    return f"SELECT, INSERT ({', '.join(inserted)}), UPDATE ({', '.join(updated)})"


SERVICE_GRANTS: Mapping[str, str] = {
    # Reference data: loaded by the owner (migrate, demo-data), only read by the service.
    "agencies": READ,
    "alembic_version": READ,  # /readyz compares it with the newest migration
    "eligibility_rulesets": READ,  # `sinergi rulesets load`
    # Set by `sinergi guarantors set-equity`; a guarantee locks its guarantor's row, and a row
    # lock takes UPDATE on some column: the least consequential one.
    "guarantors": "SELECT, UPDATE (updated_at)",
    "figure_releases": READ,  # which release figures read; moved by the release functions alone
    "indicators": READ,
    "kbli_codes": READ,
    "kbli_sections": READ,
    "oauth_clients": READ,  # `sinergi clients ...`
    "programmes": READ,
    "regions": READ,
    "trusted_documents": READ,  # `sinergi clients trust`
    # What the owner last prepared the database for: the service must not make it skip a step.
    "preparation": "",
    # Which records `demo-data` loaded, the only ones it deletes (migration 0046): a row the
    # service could add would have the next reload delete a real record.
    "demo_cooperatives": "",
    "demo_msmes": "",
    # The audit trail: content in, with the service's MAC of it (migration 0051), everything
    # else set by the database; seals in batches.
    "audit_log": "SELECT, INSERT (client_id, entry, subjects, entry_mac, entry_nonce)",
    "audit_log_id_seq": "USAGE",
    "audit_seals": "SELECT, INSERT (seq, mac)",
    "audit_trail": READ,  # its id, which checkpoints name; made once by migration 0041
    # Which key seals the trail; recorded once through `RECORD_AUDIT_KEY` alone (migration 0044).
    "audit_key_fingerprint": READ,
    # The first entry that must carry the service's MAC; recorded once by migration 0051.
    "audit_entry_macs": READ,
    # Records, kept by clients with records:write, and their history. A record's cell key is
    # the database's to draw (its column default): keys set to 0 would make every cell's noise
    # known from the public perturbation table, and outlive the service's credentials.
    "cooperatives": _keyless(COOPERATIVES),
    "cooperatives_id_seq": "USAGE",
    "msmes": _keyless(MSMES),
    "msmes_id_seq": "USAGE",
    "msme_owners": CHANGE,  # an owner removed from a record is deleted
    "msme_scale_history": WRITE,
    "msme_scale_history_id_seq": "USAGE",
    "participations": WRITE,
    "participations_id_seq": "USAGE",
    "record_changes": APPEND,
    "record_changes_id_seq": "USAGE",
    "msme_import_batches": APPEND,  # the history entry of the records an import chunk creates
    "record_history": READ,  # a view: record_changes with the batches' entries per record
    "scale_history": READ,  # a view: msme_scale_history with the batches' first entries
    "realisations": APPEND,
    "realisations_id_seq": "USAGE",
    "targets": READ,
    "targets_id_seq": "",
    # Rollups, kept by SECURITY DEFINER triggers (migration 0033) alone: a cell the service
    # could raise, have released and put back would be a forged figure ministries read.
    "cooperative_rollup_province": READ,
    "cooperative_rollup_regency": READ,
    "msme_rollup_province_kbli": READ,
    "msme_rollup_province_year": READ,
    "msme_rollup_regency": READ,
    "msme_rollup_regency_kbli": READ,
    # Eligibility decisions and guarantees: what a check, a review, a guarantee and a status
    # change write, column by column; the rest (times, ids, record keys) is the database's.
    # Migration 0023's triggers add what a grant cannot say: a decision is reviewed once, only
    # if it needs review, and a guarantee's status moves only with a row of its history. A
    # decision's data subject (`subject_nik`, migration 0049) is inserted with it, never updated.
    "eligibility_decisions": "SELECT, INSERT (client_id, organisation, msme_id, cooperative_id,"
    " subject_key, province_code, regency_code, loan_amount, tenor_months, product,"
    " ruleset_version, check_date, facts, verdict, results, coverage_amount, estimated_fee,"
    " subject_nik),"
    " UPDATE (reviewed_verdict, reviewer, review_reason, reviewed_by_client)",
    "guarantees": "SELECT, INSERT (decision_id, guarantor_client_id, msme_id, cooperative_id,"
    " province_code, regency_code, bank, amount, coverage_amount, starts_on, ends_on),"
    " UPDATE (status)",  # a guarantee is recorded active; changing its status locks its row
    "guarantee_status_changes": "SELECT, INSERT (guarantee_id, from_status, to_status,"
    " effective_on, note, changed_by)",
    "guarantee_status_changes_id_seq": "USAGE",
    # Tokens and rate limits.
    # The service signs with the current key, so it reads it. It writes none: the first start
    # makes the first key through the owner's function, which makes one only when none signs
    # (`MAKE_FIRST_KEY`); a key the service could insert beside the signing one outlived
    # rotations. Rotation is the CLI's, as the owner, and erases retired private keys.
    "signing_keys": READ,
    "rate_limit_windows": CHANGE,
    "client_writes": CHANGE,
    "auth_failures": CHANGE,  # failed /oauth/token attempts, counted per client id and address
    # The change feed: written by its SECURITY DEFINER triggers alone, so nobody can forge it.
    "change_log": READ,
    "change_log_horizon": READ,  # moved by `sinergi feed compact`, as the owner
    "change_log_id_seq": "",
    "change_pending": "",
    "change_pending_transactions": "",
    "change_pending_pending_id_seq": "",
}
"""Table or sequence -> the privileges of the service role on it ("" for none)."""


MAKE_FIRST_KEY = "make_first_signing_key(text,jsonb,jsonb)"
"""The owner's function (migration 0036) through which `serve` makes the first signing key:
one only when none signs (auth/keys.py `ensure_signing_key`)."""
RECORD_AUDIT_KEY = "record_audit_key_fingerprint(text)"
"""The owner's function (migration 0044) through which `serve` records its audit key's
fingerprint: one only when none is recorded (sinergi/audit_key.py)."""
CALLABLE_DEFINERS = (releases.MAKE, MAKE_FIRST_KEY, RECORD_AUDIT_KEY)
"""The owner's SECURITY DEFINER functions the service may call: each does one bounded thing (a
release at most hourly; a signing key only when none signs; an audit key's fingerprint only when
none is recorded), whatever it is passed."""


def quoted(identifier: str) -> str:
    """`identifier` (a role's, a database's, a table's name) as SQL names it, whatever it holds:
    names go into statements that take no bind parameters for them (GRANT, CREATE ROLE)."""
    return '"' + identifier.replace('"', '""') + '"'


# The owner's SECURITY DEFINER functions run with its rights: called by the service (or anyone,
# through PUBLIC, which holds EXECUTE on a new function), they would lend it those. The feed's and
# the rollups' are trigger functions, which fire without their caller's EXECUTE.
_DEFINERS_FROM_PUBLIC = """
DO $$
DECLARE
    definer regprocedure;
BEGIN
    FOR definer IN SELECT oid FROM pg_proc
                    WHERE prosecdef AND pronamespace = 'public'::regnamespace LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', definer);
    END LOOP;
END $$
"""


# The copies a release makes are the function owner's tables: readable by the service whoever
# called the function (the owner by hand, a superuser), or figures would fail until the next.
_COPIES_READABLE = f"""
DO $$
BEGIN
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES FOR ROLE %I IN SCHEMA {", ".join(releases.SCHEMAS)}'
        ' GRANT SELECT ON TABLES TO %I',
        (SELECT pg_get_userbyid(proowner) FROM pg_proc
          WHERE oid = 'public.{releases.MAKE}'::regprocedure),
        '{{role}}');
END $$
"""  # noqa: S608  # the names are db/releases.py's


# CREATE on the database makes schemas: one named like the owner comes first on the owner's
# default search_path ("$user", public), so a view or function named like `audit_log` there would
# run as the owner in its psql. `GRANT ALL PRIVILEGES ON DATABASE` includes it. CONNECT and
# TEMPORARY stay: the service connects, and any role may make temporary tables (README,
# "Database roles"). Revoked as the database's owner; anyone else's REVOKE only warns, and
# `serve` refuses a service that still holds it (sinergi/database.py).
_DATABASE_CREATE = """
DO $$
BEGIN
    EXECUTE format('REVOKE CREATE ON DATABASE %I FROM PUBLIC, %I', current_database(), '{role}');
END $$
"""


def grant_statements(role: str) -> list[str]:
    """Take back everything in `public` from the service (whatever was granted by hand: CREATE on
    the schema, a function, a table not declared), and CREATE on the database, then GRANT what
    is declared: applying twice, or after a declaration shrank, converges. Functions it runs
    with its own rights it may call through PUBLIC; the owner's SECURITY DEFINER functions
    nobody may."""
    grantee = quoted(role)
    statements = [
        _DATABASE_CREATE.format(role=role.replace("'", "''")),
        f"REVOKE ALL ON SCHEMA public FROM {grantee}",
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA public TO {grantee}",
        f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM PUBLIC, {grantee}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, {grantee}",
        f"REVOKE ALL ON ALL ROUTINES IN SCHEMA public FROM {grantee}",
        _DEFINERS_FROM_PUBLIC,
    ]
    for function in CALLABLE_DEFINERS:
        statements.append(f"GRANT EXECUTE ON FUNCTION public.{function} TO {grantee}")
    for schema in releases.SCHEMAS:
        statements += [
            f"REVOKE ALL ON SCHEMA {schema} FROM PUBLIC, {grantee}",
            f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM PUBLIC, {grantee}",
            f"GRANT USAGE ON SCHEMA {schema} TO {grantee}",
            f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {grantee}",
        ]
    statements.append(_COPIES_READABLE.format(role=role.replace("'", "''")))
    for name, privileges in SERVICE_GRANTS.items():
        kind = "SEQUENCE" if privileges == "USAGE" or name.endswith("_seq") else "TABLE"
        if privileges:
            statements.append(f"GRANT {privileges} ON {kind} public.{quoted(name)} TO {grantee}")
    return statements


MEMBERSHIPS = """
WITH RECURSIVE service AS (SELECT oid FROM pg_roles WHERE rolname = $1),
held(roleid, member, grantor) AS (
    SELECT m.roleid, m.member, m.grantor FROM pg_auth_members m, service s WHERE m.member = s.oid
    UNION
    SELECT m.roleid, m.member, m.grantor FROM pg_auth_members m JOIN held h ON m.member = h.roleid
)
SELECT pg_get_userbyid(h.roleid) AS role,
       CASE WHEN h.member = s.oid
            THEN format('REVOKE %I FROM %I', pg_get_userbyid(h.roleid), pg_get_userbyid(h.member))
                 -- From PostgreSQL 16 a membership is one per grantor, revoked as its grantor.
                 || coalesce(' GRANTED BY ' || quote_ident(pg_get_userbyid(h.grantor)), '')
       END AS revoke
  FROM held h, service s ORDER BY 1, 2
"""
"""Every role the role `$1` belongs to, directly or through another, one row per membership:
with the REVOKE that ends it when it is direct (an indirect one ends with the direct one it
comes through). The one statement of the rule that the service is a member of no role."""


async def memberships(connection: AsyncConnection, role: str) -> list[Row[tuple[str, str | None]]]:
    """`MEMBERSHIPS` of `role`."""
    return list((await connection.exec_driver_sql(MEMBERSHIPS, (role,))).all())


class UnsafeServiceRole(RuntimeError):
    """The role named as the service's could rewrite the audit trail: refuse to grant to it."""


async def apply(connection: AsyncConnection, role: str) -> None:
    """Grant the service role its privileges, as the owner (or a superuser), in one transaction.

    Refused when `role` is the connection's own or a superuser: revoking from the owner would
    strip it, and a superuser's privileges cannot be narrowed at all. Refused too while `role`
    is a member of any role after its memberships are revoked (the owner holds no ADMIN OPTION
    to revoke one, as a rule): `serve` would refuse it anyway, so say now what to run.
    """
    found = (
        await connection.execute(
            text(
                "SELECT rolsuper, rolname = current_user AS is_self,"
                " pg_has_role(rolname, (SELECT relowner FROM pg_class"
                "   WHERE oid = 'public.audit_log'::regclass), 'MEMBER') AS owns_audit"
                " FROM pg_roles WHERE rolname = :role"
            ),
            {"role": role},
        )
    ).first()
    if found is None:
        raise UnsafeServiceRole(f"no role {role!r}: create the service role first (README)")
    if found.rolsuper or found.is_self or found.owns_audit:
        raise UnsafeServiceRole(
            f"role {role!r} owns the audit trail or is a superuser; the service needs a role of "
            "its own (README, 'Database roles')"
        )
    for statement in grant_statements(role):
        await connection.execute(text(statement))
    for revoke in sorted({row.revoke for row in await memberships(connection, role) if row.revoke}):
        # Not the connection's to revoke, as a rule (it takes ADMIN OPTION): the administrator's.
        with contextlib.suppress(ProgrammingError):
            async with connection.begin_nested():
                await connection.execute(text(revoke))
    left = await memberships(connection, role)
    if left:
        named = ", ".join(sorted({row.role for row in left}))
        statements = "; ".join(sorted({row.revoke for row in left if row.revoke}))
        raise UnsafeServiceRole(
            f"role {role!r} is a member of {named}, whose privileges it holds beyond what "
            f"db/roles.py grants it; as a superuser, run: {statements}; then migrate again "
            "(README, 'Database roles')"
        )


async def reset_own_defaults(connection: AsyncConnection) -> None:
    """As the service role itself: drop every default it has set for its own sessions, in every
    database and in this one (`ALTER ROLE … SET`, which a role may do for itself; only it, a
    superuser or a role with CREATEROLE may undo it, and the owner is neither of the others).
    The engine pins the settings that matter anyway (db/engine.py, `SESSION_SETTINGS`); this
    leaves no default behind for a connection that does not."""
    database = (await connection.execute(text("SELECT current_database()"))).scalar_one()
    await connection.execute(text("ALTER ROLE CURRENT_USER RESET ALL"))
    await connection.execute(
        text(f"ALTER ROLE CURRENT_USER IN DATABASE {quoted(database)} RESET ALL")
    )
