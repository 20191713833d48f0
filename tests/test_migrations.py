"""The migrations build exactly the tables the models declare, so neither drifts unnoticed, and
those that change stored data change it as they say."""

from __future__ import annotations

import asyncio
import difflib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from db import provision
from db.engine import create_engine
from db.migrate import alembic_config, upgrade
from db.migrations.earlier import migration, swapped
from db.models import METADATA, MSMES
from db.queries.aggregates import graduation_source
from db.seed import load_reference
from domain.scale import CORRECTIONS, Scale, registered_scale
from sinergi.demo import SEED_DATA
from tests.support.audit_trail import Trail, verify, written_for_tampering
from tests.support.databases import (
    TEST_PASSWORD,
    TEST_SERVICE,
    as_service,
    create_database,
    drop_database,
    fetched,
)

# Made in raw SQL and deliberately not modelled: UNLOGGED tables that only the rate limiter
# touches (0002, 0008), the token endpoint's failure counts (0011), GIN indexes on an array
# column and on an expression (0017, 0053), and the change feed's tables (0014, 0022, 0027),
# written only by triggers and compaction; two have an xid8 column SQLAlchemy has no type for
# (db/queries/change_feed.py names the columns it reads).
UNMODELLED = {
    ("remove_table", "change_log"),
    ("remove_table", "change_pending"),
    ("remove_table", "change_pending_transactions"),
    ("remove_table", "change_log_horizon"),
    ("remove_index", "ix_change_pending_xid"),
    ("remove_table", "rate_limit_windows"),
    ("remove_table", "client_writes"),
    ("remove_table", "auth_failures"),
    ("remove_index", "ix_audit_log_subjects"),
    ("remove_index", "ix_audit_log_positions"),
}


def _name(difference: tuple[Any, ...]) -> tuple[str, str]:
    return difference[0], str(difference[1].name)


async def _differences(connection: AsyncConnection) -> list[tuple[Any, ...]]:
    return await connection.run_sync(
        lambda sync: compare_metadata(MigrationContext.configure(sync), METADATA)
    )


async def _unexpected_differences(url: str) -> list[tuple[Any, ...]]:
    """How the database at `url` differs from the models, beyond what is deliberately not
    modelled."""
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    try:
        async with engine.connect() as connection:
            differences = await _differences(connection)
    finally:
        await engine.dispose()
    return [d for d in differences if not isinstance(d, tuple) or _name(d) not in UNMODELLED]


async def test_migrated_database_matches_the_models(migrated_url: str) -> None:
    assert await _unexpected_differences(migrated_url) == []


# What the owner owns in its database: each migration's tables, views, functions and schemas.
OWNED = (
    "SELECT array_agg(owned ORDER BY owned) FROM"
    " (SELECT pg_describe_object(classid, objid, objsubid) AS owned FROM pg_shdepend"
    "   WHERE deptype = 'o' AND refobjid = current_user::regrole"
    "     AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS o"
)

# Each ACL below is the owner's default when NULL (`acldefault`), its entries in order: a
# downgrade that grants back exactly the default, or the same entries in another order, leaves
# the same privileges as before.
CATALOG: dict[str, str] = {
    # Tables, views, sequences and indexes, and who may do what with each: a downgrade that
    # leaves a relation behind, or grants back other privileges than it took.
    "relations": """
        SELECT n.nspname || '.' || c.relname,
               c.relkind::text || ' ' || (
                   SELECT string_agg(entry::text, ',' ORDER BY entry::text)
                     FROM unnest(coalesce(c.relacl, acldefault(
                              CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                              c.relowner))) AS entry)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND c.relkind <> 't'""",
    # Each column's type, NOT NULL, default, identity and generation: what ALTER COLUMN changes.
    "columns": """
        SELECT n.nspname || '.' || c.relname || '.' || a.attname,
               concat_ws(' ', format_type(a.atttypid, a.atttypmod),
                         CASE WHEN a.attnotnull THEN 'NOT NULL' END,
                         pg_get_expr(d.adbin, d.adrelid), nullif(a.attidentity::text, ''),
                         nullif(a.attgenerated::text, ''))
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')""",
    # A table's columns in order: a column dropped and added back comes last, which an INSERT
    # without column names or a `SELECT *` sees.
    "column order": """
        SELECT n.nspname || '.' || c.relname, string_agg(a.attname, ', ' ORDER BY a.attnum)
          FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p')
         GROUP BY n.nspname, c.relname""",
    # Checks, keys and foreign keys, as PostgreSQL spells them.
    "constraints": """
        SELECT n.nspname || '.' || conname || ' on ' || conrelid::regclass::text,
               pg_get_constraintdef(k.oid)
          FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')""",
    # Indexes, with their columns, expressions and predicates.
    "indexes": """
        SELECT n.nspname || '.' || c.relname, pg_get_indexdef(i.indexrelid)
          FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')""",
    # What each view selects: a downgrade that makes an older view again from the wrong text.
    "views": """
        SELECT n.nspname || '.' || c.relname, pg_get_viewdef(c.oid)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND c.relkind IN ('v', 'm')""",
    # Each function's whole definition (body, SECURITY DEFINER, search_path) and who may call
    # it: a downgrade that puts back another body than the one its upgrade replaced.
    "functions": """
        SELECT p.oid::regprocedure::text,
               pg_get_functiondef(p.oid) || (
                   SELECT string_agg(entry::text, ',' ORDER BY entry::text)
                     FROM unnest(coalesce(p.proacl, acldefault('f', p.proowner))) AS entry)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND p.prokind IN ('f', 'p')""",
    # Triggers, with their events and the functions they call.
    "triggers": """
        SELECT tgname || ' on ' || tgrelid::regclass::text, pg_get_triggerdef(oid)
          FROM pg_trigger WHERE NOT tgisinternal""",
    # Schemas (the figure releases' among them) and who may use them.
    "schemas": """
        SELECT nspname, (
                   SELECT string_agg(entry::text, ',' ORDER BY entry::text)
                     FROM unnest(coalesce(nspacl, acldefault('n', nspowner))) AS entry)
          FROM pg_namespace
         WHERE left(nspname, 3) <> 'pg_' AND nspname <> 'information_schema'""",
    # Privileges granted in advance on what the owner makes later.
    "default privileges": """
        SELECT defaclrole::regrole::text || ' ' || defaclnamespace::regnamespace::text
               || ' ' || defaclobjtype::text, defaclacl::text
          FROM pg_default_acl""",
    # Each sequence's type, step and start.
    "sequences": """
        SELECT seqrelid::regclass::text,
               concat_ws(' ', seqtypid::regtype::text, seqincrement, seqstart)
          FROM pg_sequence""",
    # Enums, domains and free-standing composite types.
    "types": """
        SELECT n.nspname || '.' || t.typname, t.typtype::text
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
           AND t.typtype IN ('e', 'd', 'c')
           AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')""",
}
"""What a migration may make, change or drop, each query naming an object and describing it."""

Catalog = dict[str, dict[str, str]]

# (revision, part of the catalog, object): (as noted before the upgrade, as its downgrade makes
# it again). PostgreSQL spells out a view's `*` when it makes the view: 0015's record_history,
# made again by 0037's downgrade, lists too the two columns msme_import_batches gained in 0016,
# which no text of 0015's view can leave out while they exist.
RESPELLED: dict[tuple[str, str, str], tuple[str, str]] = {
    ("0037", "views", "public.record_history"): (
        "b_1.last_id\n",
        "b_1.last_id,\n            b_1.effective_from,\n            b_1.rule_version\n",
    ),
}


async def _catalog(url: str) -> Catalog:
    connection = await asyncpg.connect(url)
    try:
        return {
            part: {name: description for name, description in await connection.fetch(query)}
            for part, query in CATALOG.items()
        }
    finally:
        await connection.close()


def _respelled(revision: str, part: str, noted: dict[str, str]) -> dict[str, str]:
    """`noted` as `revision`'s downgrade may rightly make it again (`RESPELLED`)."""
    expected = dict(noted)
    for (known, known_part, name), (old, new) in RESPELLED.items():
        if (known, known_part) == (revision, part):
            assert expected[name].count(old) == 1, f"{name} no longer reads {old!r}"
            expected[name] = expected[name].replace(old, new)
    return expected


def _comparable(part: str, description: str | None) -> str | None:
    """A function's definition without comments and with its whitespace collapsed: PostgreSQL
    keeps a body as written, and downgrades make older bodies again from texts laid out and
    commented otherwise than the upgrades that first made them (0010's `audit_log_chain`, 0027's
    `cooperatives_change_log_members`). A `--` inside a string is cut alike on both sides."""
    if part != "functions" or description is None:
        return description
    return " ".join(re.sub(r"--[^\n]*", "", description).split())


def _changes(
    revision: str, noted: Catalog, upgraded: Catalog, downgraded_from: Catalog, found: Catalog
) -> list[str]:
    """How the catalog `found` after `revision`'s downgrade differs from the one `noted` before
    its upgrade, each difference a readable paragraph. An object that neither the upgrade (from
    `noted` to `upgraded`) nor the downgrade (from `downgraded_from`) touched keeps a difference
    a later downgrade made; that one alone is named for it."""
    changes = []
    for part in CATALOG:
        expected = _respelled(revision, part, noted[part])
        for name in sorted(expected.keys() | found[part].keys()):
            was, now = expected.get(name), found[part].get(name)
            if _comparable(part, was) == _comparable(part, now):
                continue
            untouched = noted[part].get(name) == upgraded[part].get(name)
            if untouched and downgraded_from[part].get(name) == now:
                continue
            if now is None:
                changes.append(f"{part}: {name} is gone")
            elif was is None:
                changes.append(f"{part}: {name} is left behind")
            else:
                diff = difflib.unified_diff(
                    was.splitlines(), now.splitlines(), "before", "after", lineterm=""
                )
                changes.append(f"{part}: {name} differs\n" + "\n".join(diff))
    return [f"downgrade of {revision}: {change}" for change in changes]


def test_each_downgrade_puts_back_what_its_upgrade_found(fresh_url: str) -> None:
    """Down to base the owner keeps nothing but Alembic's own table. Up again one revision at a
    time, the catalog is noted before each upgrade, and the database ends matching the models;
    then each downgrade in turn must leave the catalog as it was noted before its upgrade, so
    that a downgrade putting back the wrong thing is caught even when an older one drops it."""
    config = alembic_config(fresh_url)
    command.downgrade(config, "base")
    assert asyncio.run(_value(fresh_url, OWNED)) == ["table alembic_version"]
    scripts = ScriptDirectory.from_config(config)
    revisions = [script.revision for script in reversed(list(scripts.walk_revisions()))]
    noted = [asyncio.run(_catalog(fresh_url))]  # before each upgrade, and at head
    for revision in revisions:
        command.upgrade(config, revision)
        noted.append(asyncio.run(_catalog(fresh_url)))
    assert asyncio.run(_unexpected_differences(fresh_url)) == []
    changes, found = [], noted[-1]
    for at, revision in reversed(list(enumerate(revisions))):
        command.downgrade(config, "-1")
        downgraded_from, found = found, asyncio.run(_catalog(fresh_url))
        changes += _changes(revision, noted[at], noted[at + 1], downgraded_from, found)
    assert not changes, "\n\n".join(changes)


# (stored before 0026, stored after): trimmed, lower-cased, the Indonesian words mapped.
ODD_STATUSES = [
    (" Active ", "active"),
    ("AKTIF", "active"),
    ("Selesai", "completed"),
    ("diusulkan", "proposed"),
    ("Terverifikasi\t", "verified"),
    ("mundur", "withdrawn"),
    ("KELUAR", "withdrawn"),
    ("withdrawn", "withdrawn"),
]
HOMOGLYPH = "activ\u0435"  # a Cyrillic е: not turned into active, which R12 counts


def test_0026_normalises_statuses_and_refuses_what_it_cannot_place(server_url: str) -> None:
    """Upgraded from 0025 with odd statuses and a duplicate stored: it stops, changing nothing,
    naming the status it cannot place and the duplicate; once the owner fixes those, it
    normalises the rest (a new version for each row it changes), holds both constraints, and
    goes down and up again."""
    name = f"sinergi_0026_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(url, "0025")
        asyncio.run(_load_reference(url))
        odd, homoglyph, duplicate = asyncio.run(_store_legacy_participations(url))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert f"participation {homoglyph}: {HOMOGLYPH!r}" in message
        assert f"participations {duplicate[0]}, {duplicate[1]}" in message
        assert "then migrate again" in message
        assert asyncio.run(_statuses(url)) == {
            row: (stored, 1) for row, (stored, _) in zip(odd, ODD_STATUSES, strict=True)
        } | {homoglyph: (HOMOGLYPH, 1), duplicate[0]: ("active", 1), duplicate[1]: ("active", 1)}

        fix = "UPDATE participations SET status = 'withdrawn' WHERE id = $1"
        asyncio.run(_execute(url, fix, homoglyph))
        asyncio.run(_execute(url, "DELETE FROM participations WHERE id = $1", duplicate[1]))
        upgrade(url)
        statuses = asyncio.run(_statuses(url))
        for row, (stored, normal) in zip(odd, ODD_STATUSES, strict=True):
            assert statuses[row] == (normal, 1 if stored == normal else 2), stored
        with pytest.raises(asyncpg.CheckViolationError):
            asyncio.run(_execute(url, "UPDATE participations SET status = 'Active'"))
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(
                _execute(
                    url,
                    "INSERT INTO participations (programme_id, cooperative_id, role, status)"
                    " SELECT programme_id, cooperative_id, role, 'active' FROM participations"
                    " WHERE id = $1",
                    duplicate[0],
                )
            )
        command.downgrade(alembic_config(url), "0025")
        upgrade(url)
    finally:
        asyncio.run(drop_database(server_url, name))


async def _load_reference(url: str) -> None:
    """Today's reference data into a database at an older revision. The loader writes today's
    columns: before migration 0047 a programme has no `subjects`, so the column is there only
    while the data loads (and the programmes keep none, as they had none then)."""
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    try:
        async with engine.begin() as connection:
            had_subjects = await connection.scalar(
                text(
                    "SELECT EXISTS (SELECT FROM information_schema.columns"
                    " WHERE table_name = 'programmes' AND column_name = 'subjects')"
                )
            )
            if not had_subjects:
                await connection.execute(text("ALTER TABLE programmes ADD COLUMN subjects text"))
            await load_reference(connection, SEED_DATA, targets=False)
            if not had_subjects:
                await connection.execute(text("ALTER TABLE programmes DROP COLUMN subjects"))
    finally:
        await engine.dispose()


async def _store_legacy_participations(url: str) -> tuple[list[int], int, tuple[int, int]]:
    """One cooperative per odd status, one with the homoglyph, one holding a role twice."""
    connection = await asyncpg.connect(url)
    try:
        ids = []
        for number, status in enumerate([s for s, _ in ODD_STATUSES] + [HOMOGLYPH, "active"]):
            cooperative = await connection.fetchval(
                "INSERT INTO cooperatives (legal_entity_no, name, type, province_code,"
                " regency_code) VALUES ($1, 'Koperasi Lama', 'produsen', '62', '62.71')"
                " RETURNING id",
                f"AHU-88{number:05d}.AH.01.26.TAHUN 2020",
            )
            ids.append(
                await connection.fetchval(
                    "INSERT INTO participations (programme_id, cooperative_id, role, status)"
                    " VALUES ('PR-MMM', $1, 'producer', $2) RETURNING id",
                    cooperative,
                    status,
                )
            )
        again = await connection.fetchval(
            "INSERT INTO participations (programme_id, cooperative_id, role, status)"
            " SELECT programme_id, cooperative_id, role, status FROM participations"
            " WHERE id = $1 RETURNING id",
            ids[-1],
        )
    finally:
        await connection.close()
    return ids[: len(ODD_STATUSES)], ids[len(ODD_STATUSES)], (ids[-1], again)


async def _statuses(url: str) -> dict[int, tuple[str, int]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT id, status, version FROM participations")
    finally:
        await connection.close()
    return {row["id"]: (row["status"], row["version"]) for row in rows}


async def _execute(url: str, statement: str, *arguments: Any) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement, *arguments)
    finally:
        await connection.close()


MEMBER_ENTRIES = (
    "SELECT record_id FROM change_log WHERE record_kind = 'msme' AND operation = 'update'"
    " ORDER BY id"
)
MEMBER_ENTRY_PLACES = (
    "SELECT cooperative_old_regency, cooperative_new_regency FROM change_log"
    " WHERE record_kind = 'msme' AND operation = 'update' ORDER BY id"
)
MOVE = "UPDATE cooperatives SET regency_code = $2, version = version + 1 WHERE id = $1"


def test_0027_names_where_a_members_cooperative_was_and_went_and_goes_down_again(
    server_url: str,
) -> None:
    """A member's entry for its cooperative's move, logged at 0026, names no place of the
    cooperative after the upgrade, and reaches readers as it did; one logged at 0027 names both;
    downgraded, the entries are logged as 0025 logs them, and 0027 applies again."""
    name = f"sinergi_0027_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(url, "0026")
        asyncio.run(_load_reference(url))
        cooperative = asyncio.run(
            fetched(
                url,
                "INSERT INTO cooperatives (legal_entity_no, name, type, province_code,"
                " regency_code) VALUES ('AHU-9265000.AH.01.26.TAHUN 2020', 'Koperasi Anggota',"
                " 'produsen', '61', '61.71') RETURNING id",
            )
        )[0]["id"]
        # With figures that give its scale: 0037 leaves it as it is (no entry of its own).
        member = asyncio.run(
            fetched(
                url,
                "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
                " regency_code, cooperative_id, annual_turnover) VALUES ('9926500000001',"
                " 'Usaha Anggota', '10794', 'C', 'micro', '62', '62.71', $1, 240000000)"
                " RETURNING id",
                cooperative,
            )
        )[0]["id"]
        asyncio.run(_execute(url, MOVE, cooperative, "61.72"))
        upgrade(url)
        asyncio.run(_execute(url, MOVE, cooperative, "61.71"))
        places = asyncio.run(fetched(url, MEMBER_ENTRY_PLACES))
        assert [tuple(row) for row in places] == [(None, None), ("61.72", "61.71")]

        command.downgrade(alembic_config(url), "0026")
        asyncio.run(_execute(url, MOVE, cooperative, "61.72"))
        logged = asyncio.run(fetched(url, MEMBER_ENTRIES))
        assert [row["record_id"] for row in logged] == [str(member)] * 3
        upgrade(url)
        asyncio.run(_execute(url, MOVE, cooperative, "61.71"))
        places = asyncio.run(fetched(url, MEMBER_ENTRY_PLACES))
        assert [tuple(row) for row in places][-1] == ("61.72", "61.71")
    finally:
        asyncio.run(drop_database(server_url, name))


@contextmanager
def _database_at(server_url: str, revision: str) -> Iterator[str]:
    """A database of the test's own, migrated to `revision` by the server's superuser."""
    name = f"sinergi_down_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(url, revision)
        yield url
    finally:
        asyncio.run(drop_database(server_url, name))


def _refused_downgrade(url: str, revision: str) -> str:
    """Why the downgrade to `revision` was refused; the database stays where it was."""
    before = asyncio.run(_value(url, "SELECT version_num FROM alembic_version"))
    with pytest.raises(Exception, match="cannot downgrade") as refused:
        command.downgrade(alembic_config(url), revision)
    assert asyncio.run(_value(url, "SELECT version_num FROM alembic_version")) == before
    return str(refused.value)


async def _value(url: str, query: str) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


def test_0028_pins_the_definer_functions_and_goes_down_again(server_url: str) -> None:
    """Down to 0027 each definer function has its old path back (without `pg_temp`, which
    tests/test_definer_functions.py shows is searched first); up again, `pg_temp` is last."""
    name = f"sinergi_0028_{uuid.uuid4().hex[:10]}"
    url = make_url(server_url).set(database=name).render_as_string(False)
    asyncio.run(create_database(server_url, name))
    try:
        upgrade(url)
        pinned = {"search_path=pg_catalog, public, pg_temp"}
        assert asyncio.run(_definer_paths(url)) == pinned
        command.downgrade(alembic_config(url), "0027")
        assert asyncio.run(_definer_paths(url)) == {"search_path=pg_catalog, public"}
        upgrade(url)
        assert asyncio.run(_definer_paths(url)) == pinned
    finally:
        asyncio.run(drop_database(server_url, name))


async def _definer_paths(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT unnest(proconfig) AS setting FROM pg_proc"
            " WHERE prosecdef AND pronamespace = 'public'::regnamespace"
        )
    finally:
        await connection.close()
    return {row["setting"] for row in rows}


def test_0029_notes_how_far_cursors_in_clear_reach(server_url: str) -> None:
    """Cursors in clear are taken up to the newest entry logged before cursors were sealed (or
    what compaction had folded, if further); on a log still empty, none is. Down and up again,
    it notes the log as it then stands."""
    until = "SELECT clear_cursors_until FROM change_log_horizon"
    newest = "SELECT max(id) FROM change_log"
    with _database_at(server_url, "0013") as url:
        asyncio.run(_execute(url, COOPERATIVE))
        upgrade(url, "0028")
        asyncio.run(_execute(url, "UPDATE cooperatives SET name = 'Koperasi Naik'"))
        upgrade(url, "0029")
        assert asyncio.run(_value(url, until)) == asyncio.run(_value(url, newest)) == 2
        command.downgrade(alembic_config(url), "0028")
        asyncio.run(
            _execute(url, "DELETE FROM change_log; UPDATE change_log_horizon SET horizon = 5")
        )
        upgrade(url, "0029")
        assert asyncio.run(_value(url, until)) == 5
    with _database_at(server_url, "0029") as url:
        assert asyncio.run(_value(url, until)) == 0


COOPERATIVE = (
    "INSERT INTO regions (code, level, name, parent_code) VALUES ('62', 'province', 'P', NULL),"
    " ('62.71', 'regency', 'R', '62');"
    " INSERT INTO cooperatives (legal_entity_no, name, type, province_code, regency_code)"
    " VALUES ('AHU-5500001.AH.01.26.TAHUN 2020', 'Koperasi Turun', 'produsen', '62', '62.71')"
)


def test_0010_keeps_its_seals_and_leaves_the_schema_closed_to_public(server_url: str) -> None:
    """A seal cannot be made again as it was, so 0010 refuses to drop one; once there is none
    it goes down, without giving CREATE on `public` to PUBLIC (which would open it to the
    service)."""
    with _database_at(server_url, "0010") as url:
        asyncio.run(_execute(url, "INSERT INTO audit_seals (seq, mac) VALUES (1, 'mac')"))
        assert "audit_seals holds 1 seal(s)" in _refused_downgrade(url, "0009")
        asyncio.run(
            _execute(
                url,
                "ALTER TABLE audit_seals DISABLE TRIGGER USER; DELETE FROM audit_seals;"
                " ALTER TABLE audit_seals ENABLE TRIGGER USER",
            )
        )
        command.downgrade(alembic_config(url), "0009")
        public_create = (
            "SELECT count(*) FROM pg_namespace, aclexplode(nspacl) a WHERE nspname = 'public'"
            " AND a.grantee = 0 AND a.privilege_type = 'CREATE'"
        )
        assert asyncio.run(_value(url, public_create)) == 0
        upgrade(url, "0010")


def test_0012_keeps_the_cell_keys_of_records(server_url: str) -> None:
    """Redrawn keys would change every published perturbed figure."""
    with _database_at(server_url, "0012") as url:
        asyncio.run(_execute(url, COOPERATIVE))
        message = _refused_downgrade(url, "0011")
        assert "1 record(s) in msmes, cooperatives and guarantees hold cell keys" in message
        assert asyncio.run(_value(url, "SELECT count(cell_key) FROM cooperatives")) == 1
        asyncio.run(_execute(url, "DELETE FROM cooperatives"))
        command.downgrade(alembic_config(url), "0011")
        upgrade(url, "0012")


def test_0014_keeps_the_change_feed_it_numbered(server_url: str) -> None:
    """Renumbered from 1, the feed would let old cursors skip or repeat changes."""
    with _database_at(server_url, "0013") as url:
        asyncio.run(_execute(url, COOPERATIVE))
        upgrade(url, "0014")  # the register enters the feed as a creation
        message = _refused_downgrade(url, "0013")
        assert "the change feed holds 1 entries" in message
        assert "skip or repeat" in message
        asyncio.run(_execute(url, "DELETE FROM change_log"))
        command.downgrade(alembic_config(url), "0013")
        upgrade(url, "0014")


def test_0022_keeps_the_fold_and_the_times_entries_were_noted(server_url: str) -> None:
    with _database_at(server_url, "0013") as url:
        asyncio.run(_execute(url, COOPERATIVE))
        upgrade(url, "0022")
        assert "the change feed holds 1 entries noted" in _refused_downgrade(url, "0021")
        asyncio.run(_execute(url, "UPDATE change_log_horizon SET horizon = 1"))
        assert "compacted through entry 1" in _refused_downgrade(url, "0021")
        asyncio.run(
            _execute(url, "DELETE FROM change_log; UPDATE change_log_horizon SET horizon = 0")
        )
        command.downgrade(alembic_config(url), "0021")
        upgrade(url, "0022")


# (stored before 0034, stored after): one spelling per Kemenkumham number; dinas numbers kept.
SPELLINGS = [
    ("AHU-000032.AH.01.26.TAHUN 2019", "AHU-0000032.AH.01.26.TAHUN 2019"),
    ("ahu-12345.ah.01.26.Tahun  2020", "AHU-0012345.AH.01.26.TAHUN 2020"),
    ("AHU-00123456789.AH.01.26.TAHUN 2021", "AHU-123456789.AH.01.26.TAHUN 2021"),
    ("AHU-0000777.AH.01.26.TAHUN 2020", "AHU-0000777.AH.01.26.TAHUN 2020"),
    ("518.08/096/BH/XIV.10/VIII/2008", "518.08/096/BH/XIV.10/VIII/2008"),
]
SECOND_SPELLING = (
    "AHU-0000032.AH.01.26.TAHUN 2019"  # the first one's number, spelled as the register does
)
RULESET = (
    "INSERT INTO eligibility_rulesets (product, version, effective_from, document)"
    " VALUES ('KUR', 'v0034', '2020-01-01', '{}')"
)
DECISION = (
    "INSERT INTO eligibility_decisions (client_id, organisation, cooperative_id, subject_key,"
    " province_code, regency_code, loan_amount, tenor_months, product, ruleset_version,"
    " check_date, facts, verdict, results, coverage_amount)"
    " SELECT 'bank', 'Bank', id, legal_entity_no, province_code, regency_code, 1, 12, 'KUR',"
    " 'v0034', '2024-01-01', '{}', 'ELIGIBLE', '[]', 1 FROM cooperatives WHERE id = $1"
)


def test_0034_respells_legal_entity_numbers_and_refuses_to_merge_cooperatives(
    server_url: str,
) -> None:
    """Upgraded from 0033 with one number held by two cooperatives in two spellings, it stops,
    changing nothing, naming both; once the owner keeps one, it respells every Kemenkumham number
    (a new version for each it changes) and the decisions that name one, leaves a dinas number
    as it is, refuses a second spelling from then on, and goes down and up again."""
    with _database_at(server_url, "0033") as url:
        asyncio.run(_load_reference(url))
        ids = [asyncio.run(_cooperative(url, stored)) for stored, _ in SPELLINGS]
        second = asyncio.run(_cooperative(url, SECOND_SPELLING))
        asyncio.run(_execute(url, RULESET))
        asyncio.run(_execute(url, DECISION, ids[1]))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert (
            f"AHU-0000032.AH.01.26.TAHUN 2019: cooperatives {ids[0]} ({SPELLINGS[0][0]!r}),"
            f" {second} ({SECOND_SPELLING!r})"
        ) in message
        assert "then migrate again" in message
        stored = {row["id"]: row["legal_entity_no"] for row in asyncio.run(fetched(url, NUMBERS))}
        assert stored == dict(zip(ids, [s for s, _ in SPELLINGS], strict=True)) | {
            second: SECOND_SPELLING
        }

        asyncio.run(_execute(url, "DELETE FROM cooperatives WHERE id = $1", second))
        upgrade(url)
        after = {row["id"]: tuple(row) for row in asyncio.run(fetched(url, NUMBERS))}
        for id_, (before, canonical) in zip(ids, SPELLINGS, strict=True):
            assert after[id_] == (id_, canonical, 1 if before == canonical else 2), before
        key = "SELECT subject_key FROM eligibility_decisions"
        assert asyncio.run(_value(url, key)) == SPELLINGS[1][1]
        with pytest.raises(asyncpg.CheckViolationError):
            asyncio.run(_cooperative(url, "AHU-00000777.AH.01.26.TAHUN 2020"))


SCALE_REGIONS = (
    "INSERT INTO regions (code, level, name, parent_code) VALUES ('62', 'province', 'P', NULL),"
    " ('62.71', 'regency', 'R', '62');"
    " INSERT INTO kbli_sections (section, title, first_division, last_division)"
    " VALUES ('C', 'Industri Pengolahan', 10, 33)"
)
LEGACY_MSME = (
    "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,"
    " capital, annual_turnover) VALUES ($1, 'Usaha Lama', '10794', 'C', $2, '62', '62.71', $3, $4)"
    " RETURNING id"
)
LEGACY_ENTRY = (
    "INSERT INTO msme_scale_history (msme_id, scale, effective_from, annual_sales, capital,"
    " rule_version) VALUES ($1, $2, $3, $4, $5, 'PP7_2021')"
)
# (NIB, scale stored before 0037, capital, annual sales) -> (scale, declared_scale, version).
LEGACY_SCALES = {
    ("7780600000001", "micro", 900_000_000, 20_000_000_000): ("medium", "micro", 2),
    ("7780600000002", "micro", 150_000_000, 240_000_000): ("micro", None, 1),
    ("7780600000003", "small", None, None): ("small", None, 1),
    ("7780600000004", "small", 3_000_000_000, 3_000_000_000): ("small", None, 1),
    ("7780600000005", "small", 3_000_000_000, 240_000_000): ("micro", "small", 2),
}


async def _store_legacy_scales(url: str) -> list[int]:
    """The records above, the last an import's (its first scale entry read from its batch);
    the first with a history entry as stored, the fourth with one whose figures give micro
    (its declaration kept across a later update of the sales)."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(SCALE_REGIONS)
        ids = [await connection.fetchval(LEGACY_MSME, *legacy) for legacy in LEGACY_SCALES]
        day = date(2025, 1, 2)
        await connection.execute(LEGACY_ENTRY, ids[0], "micro", day, 20_000_000_000, 900_000_000)
        await connection.execute(LEGACY_ENTRY, ids[3], "small", day, 240_000_000, 3_000_000_000)
        await connection.execute(
            "INSERT INTO msme_import_batches (id, client_id, organisation, first_id, last_id,"
            " effective_from, rule_version) VALUES (nextval('record_changes_id_seq'),"
            " 'demo-province-62', 'Dinas', $1, $1, $2, 'PP7_2021')",
            ids[4],
            day,
        )
    finally:
        await connection.close()
    return ids


def test_0037_stores_the_scale_the_figures_give_and_keeps_the_declared_one(
    server_url: str,
) -> None:
    """Each record whose figures give another scale gets that scale, its former one as the
    declaration, a new version, a history entry and a change feed entry, the rollups following;
    one whose scale stands (the figures agree, or there are none) is left as it was, declaration
    null, with no new version nor entries; the scale history follows the same rule; an import's
    creation entry still says what it was created with. Down and up again, it holds."""
    with _database_at(server_url, "0033") as url:
        ids = asyncio.run(_store_legacy_scales(url))
        upgrade(url)
        stored = asyncio.run(
            fetched(url, "SELECT id, scale, declared_scale, version FROM msmes ORDER BY id")
        )
        assert [tuple(row)[1:] for row in stored] == list(LEGACY_SCALES.values())
        changed = [ids[0], ids[4]]
        entries = asyncio.run(
            fetched(
                url,
                "SELECT record_id, client_id, operation, version, changes FROM record_changes"
                " ORDER BY record_id",
            )
        )
        assert [(row["record_id"], row["client_id"], row["version"]) for row in entries] == [
            (record, "migration:0037", 2) for record in changed
        ]
        assert orjson.loads(entries[0]["changes"]) == {
            "scale": {"before": "micro", "after": "medium"},
            "declared_scale": {"before": None, "after": "micro"},
        }
        (created,) = asyncio.run(
            fetched(
                url,
                "SELECT changes FROM record_history WHERE record_id = $1 AND operation = 'import'",
                ids[4],
            )
        )
        assert orjson.loads(created["changes"])["scale"] == {"before": None, "after": "small"}
        feed = asyncio.run(
            fetched(url, "SELECT record_id FROM change_log WHERE operation = 'update' ORDER BY id")
        )
        assert sorted(int(row["record_id"]) for row in feed) == changed
        history = asyncio.run(
            fetched(
                url,
                "SELECT msme_id, scale, rule_version FROM scale_history"
                " ORDER BY msme_id, effective_from",
            )
        )
        by_record: dict[int, list[tuple[str, str]]] = {}
        for row in history:
            by_record.setdefault(row["msme_id"], []).append((row["scale"], row["rule_version"]))
        assert by_record == {
            ids[0]: [("medium", "PP7_2021")],
            ids[3]: [("micro", "PP7_2021"), ("small", "PP7_2021/0037")],
            ids[4]: [("micro", "PP7_2021")],
        }
        for rollup in ("msme_rollup_regency", "msme_rollup_province_kbli"):
            cells = asyncio.run(
                fetched(url, f"SELECT scale, sum(n) AS n FROM {rollup} GROUP BY scale")  # noqa: S608
            )
            assert {row["scale"]: row["n"] for row in cells} == {
                "micro": 2,
                "small": 2,
                "medium": 1,
            }
        command.downgrade(alembic_config(url), "0033")
        upgrade(url)


HELD_DECLARATION = "UPDATE msmes SET annual_turnover = $2, turnover_year = 2025 WHERE id = $1"


async def _graduations(
    url: str, year: int, release: str | None = None
) -> list[tuple[int, str, str]]:
    """(record, scale left, scale reached) of each graduation `graduation_source` counts, from
    the live tables or the copies of the schema `release`, as a ministry reads them."""
    engine = create_engine(url, statement_timeout_ms=30_000, pool_size=1)
    try:
        source, dimensions = graduation_source(year)
        query = select(MSMES.c.id, dimensions["from_scale"], dimensions["to_scale"])
        async with engine.connect() as connection:
            if release is not None:
                await connection.execution_options(schema_translate_map={None: release})
            rows = await connection.execute(query.select_from(source).order_by(MSMES.c.id))
            return [(row[0], row[1], row[2]) for row in rows]
    finally:
        await engine.dispose()


def test_0037_corrects_a_held_declaration_without_counting_a_graduation(
    server_url: str,
) -> None:
    """Declared micro on Rp120 juta of capital in 2024, then Rp20 miliar (and Rp3 miliar) of
    sales under the kept declaration, which wrote no history entry: the migration ends each
    history at the computed scale with a correction dated today, which no graduation count takes
    for a business growing that day; the next real step is counted from it."""
    assert migration("0037_registered_scale.py").CORRECTION in CORRECTIONS
    with _database_at(server_url, "0036") as url:
        asyncio.run(_execute(url, SCALE_REGIONS))
        ids = [
            asyncio.run(fetched(url, LEGACY_MSME, nib, "micro", 120_000_000, None))[0]["id"]
            for nib in ("7780600000011", "7780600000012")
        ]
        for id_, sales in zip(ids, (20_000_000_000, 3_000_000_000), strict=True):
            asyncio.run(
                _execute(url, LEGACY_ENTRY, id_, "micro", date(2024, 1, 1), None, 120_000_000)
            )
            asyncio.run(_execute(url, HELD_DECLARATION, id_, sales))
        asyncio.run(_execute(url, "SELECT * FROM copy_figure_release(0)"))  # a ministry's
        upgrade(url)
        today: date = asyncio.run(_value(url, "SELECT current_date"))
        assert asyncio.run(_released_rule_versions(url)) == [
            (ids[0], "PP7_2021"),
            (ids[1], "PP7_2021"),
        ]
        asyncio.run(_execute(url, "SELECT * FROM copy_figure_release(0)"))
        assert asyncio.run(_released_rule_versions(url)) == [
            (ids[0], "PP7_2021"),
            (ids[0], "PP7_2021/0037"),
            (ids[1], "PP7_2021"),
            (ids[1], "PP7_2021/0037"),
        ]
        history = asyncio.run(
            fetched(
                url,
                "SELECT msme_id, scale, effective_from, rule_version FROM msme_scale_history"
                " ORDER BY msme_id, effective_from",
            )
        )
        assert [tuple(row) for row in history] == [
            (ids[0], "micro", date(2024, 1, 1), "PP7_2021"),
            (ids[0], "medium", today, "PP7_2021/0037"),
            (ids[1], "micro", date(2024, 1, 1), "PP7_2021"),
            (ids[1], "small", today, "PP7_2021/0037"),
        ]
        assert asyncio.run(_graduations(url, today.year)) == []
        later = date(today.year + 1, 1, 1)
        asyncio.run(_execute(url, LEGACY_ENTRY, ids[1], "medium", later, 20_000_000_000, None))
        assert asyncio.run(_graduations(url, later.year)) == [(ids[1], "small", "medium")]


SALES_YEAR_ENTRY = (
    "INSERT INTO msme_scale_history (msme_id, scale, effective_from, annual_sales, capital,"
    " rule_version, turnover_year) VALUES ($1, 'small', '2026-02-10', 3000000000, NULL,"
    " 'PP7_2021', 2025)"
)


SERVICE_READS_SCALE_HISTORY = (
    f"SELECT has_table_privilege('{TEST_SERVICE}', 'scale_history', 'SELECT')"
)


async def _service_role(server_url: str) -> None:
    """The tests' service role, made on a server no fixture has made it on yet."""
    admin = await asyncpg.connect(server_url)
    try:
        await provision.ensure_role(admin, TEST_SERVICE, TEST_PASSWORD)
    finally:
        await admin.close()


def test_0055_counts_a_graduation_in_its_sales_year_and_old_entries_as_before(
    server_url: str,
) -> None:
    """Two businesses micro from 2025: one small from February 2026 by an entry from before
    0055 (no sales year: it counts in 2026, as it did), the other small from the same month on
    its 2025 sales, written after (it counts in 2025). A ministry's release made before 0055
    gains the column empty and counts as the live tables do, and so does the next. Down and up
    again, it holds, and the service role keeps reading `scale_history`."""
    asyncio.run(_service_role(server_url))
    with _database_at(server_url, "0054") as url:
        asyncio.run(_execute(url, SCALE_REGIONS))
        ids = [
            asyncio.run(fetched(url, LEGACY_MSME, nib, "small", None, 3_000_000_000))[0]["id"]
            for nib in ("7799000000011", "7799000000012")
        ]
        for id_ in ids:
            entry = (id_, "micro", date(2025, 1, 2), 240_000_000, None)
            asyncio.run(_execute(url, LEGACY_ENTRY, *entry))
        asyncio.run(
            _execute(url, LEGACY_ENTRY, ids[0], "small", date(2026, 2, 3), 3_000_000_000, None)
        )
        asyncio.run(_execute(url, "SELECT * FROM copy_figure_release(0)"))
        before = asyncio.run(_value(url, "SELECT schema_name FROM figure_releases"))
        upgrade(url, service_role=TEST_SERVICE)
        asyncio.run(_execute(url, SALES_YEAR_ENTRY, ids[1]))
        counted = {2025: [(ids[1], "micro", "small")], 2026: [(ids[0], "micro", "small")]}
        assert {year: asyncio.run(_graduations(url, year)) for year in counted} == counted
        assert asyncio.run(_graduations(url, 2026, before)) == counted[2026]
        asyncio.run(_execute(url, "SELECT * FROM copy_figure_release(0)"))
        after = asyncio.run(_value(url, "SELECT schema_name FROM figure_releases"))
        assert after != before
        assert {year: asyncio.run(_graduations(url, year, after)) for year in counted} == counted
        command.downgrade(alembic_config(url), "0054")
        # Going down makes the view again: the service still reads it before any grant is made
        # again, and after going up without one (db/roles.py grants only when asked to).
        assert asyncio.run(_value(url, SERVICE_READS_SCALE_HISTORY)) is True
        upgrade(url)
        assert asyncio.run(_value(url, SERVICE_READS_SCALE_HISTORY)) is True
        assert {year: asyncio.run(_graduations(url, year)) for year in counted} == {
            2025: [],
            2026: [(ids[0], "micro", "small"), (ids[1], "micro", "small")],
        }


async def _released_rule_versions(url: str) -> list[tuple[int, str]]:
    """The scale history's rule versions in the release a ministry reads its graduations from."""
    schema = await _value(url, "SELECT schema_name FROM figure_releases")
    assert schema in {"figures_a", "figures_b"}
    rows = await fetched(
        url,
        f"SELECT msme_id, rule_version FROM {schema}.msme_scale_history"  # noqa: S608 (checked)
        " ORDER BY msme_id, effective_from",
    )
    return [(row["msme_id"], row["rule_version"]) for row in rows]


NUMBERS = "SELECT id, legal_entity_no, version FROM cooperatives ORDER BY id"


async def _cooperative(url: str, number: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(
            await connection.fetchval(
                "INSERT INTO cooperatives (legal_entity_no, name, type, province_code,"
                " regency_code) VALUES ($1, 'Koperasi Eja', 'produsen', '62', '62.71')"
                " RETURNING id",
                number,
            )
        )
    finally:
        await connection.close()


@pytest.mark.parametrize("declared", [None, *Scale])
def test_0037_computes_the_scale_as_the_domain_does(
    server_url: str, declared: Scale | None
) -> None:
    """The migration's SQL holds PP 7/2021's thresholds as domain/scale.py does, at every
    boundary, whichever figures are known."""
    registered = migration("0037_registered_scale.py")
    amounts: list[int | None] = [None, 0]
    for limits in (registered.CAPITAL_LIMITS, registered.SALES_LIMITS):
        amounts += [bound + step for bound, _ in limits for step in (-1, 0, 1)]
    cases = [(capital, sales) for capital in amounts for sales in amounts]
    sql = registered.registered("c", "s", "d")
    found = asyncio.run(
        fetched(
            server_url,
            f"SELECT {sql} AS scale FROM unnest($1::bigint[], $2::bigint[]) WITH ORDINALITY"  # noqa: S608
            " AS f (c, s, n), (SELECT $3::text AS d) AS declared ORDER BY n",
            [capital for capital, _ in cases],
            [sales for _, sales in cases],
            None if declared is None else str(declared),
        )
    )
    expected = [
        registered_scale(declared, capital=capital, annual_sales=sales) for capital, sales in cases
    ]
    assert [row["scale"] for row in found] == [None if e is None else str(e) for e in expected]


ROLE = (
    "INSERT INTO participations (programme_id, cooperative_id, role, status)"
    " VALUES ('PR-MMM', $1, $2, 'active') RETURNING id"
)
ROLE_INDEX = "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_participations_role'"


def test_0042_holds_a_role_once_in_any_case_and_refuses_to_drop_a_duplicate(
    server_url: str,
) -> None:
    """Upgraded from 0041 with a cooperative holding "producer" and "Producer" in one programme,
    it stops, changing nothing, naming both; once the owner keeps one, it takes no third
    spelling, keeps the roles as they were spelled, and goes down and up again."""
    with _database_at(server_url, "0041") as url:
        asyncio.run(_load_reference(url))
        cooperative = asyncio.run(_cooperative(url, "AHU-0004401.AH.01.26.TAHUN 2020"))
        other = asyncio.run(_cooperative(url, "AHU-0004402.AH.01.26.TAHUN 2020"))
        first, second = (
            asyncio.run(_value_of(url, ROLE, cooperative, role))
            for role in ("producer", "Producer")
        )
        alone = asyncio.run(_value_of(url, ROLE, other, "Supplier"))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert (
            f"programme PR-MMM, cooperative {cooperative}: participation {first} 'producer',"
            f" participation {second} 'Producer'"
        ) in message
        assert f"cooperative {other}" not in message
        assert "then migrate again" in message
        assert asyncio.run(_value(url, ROLE_INDEX)) == 0

        asyncio.run(_execute(url, "DELETE FROM participations WHERE id = $1", second))
        upgrade(url)
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(_execute(url, ROLE, cooperative, "PRODUCER"))
        roles = "SELECT id, role FROM participations ORDER BY id"
        assert [tuple(row) for row in asyncio.run(fetched(url, roles))] == [
            (first, "producer"),
            (alone, "Supplier"),
        ]
        command.downgrade(alembic_config(url), "0041")
        assert asyncio.run(_value(url, ROLE_INDEX)) == 0
        upgrade(url)
        assert asyncio.run(_value(url, ROLE_INDEX)) == 1


async def _value_of(url: str, statement: str, *arguments: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(statement, *arguments)
    finally:
        await connection.close()


WITHOUT_NIB = (
    "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,"
    " district_code) VALUES ($1, 'Usaha Desa', '10794', 'C', 'micro', '62', '62.71', '62.71.01')"
    " RETURNING id"
)
SKU = "UPDATE msmes SET nib = $2, sku_number = $3, sku_issuer = $4 WHERE id = $1"


def test_0043_refuses_a_record_without_a_nib_and_holds_each_to_a_nib_or_an_sku(
    server_url: str,
) -> None:
    """Upgraded from 0042 with a record stored without a NIB, it stops, changing nothing, naming
    it and no other; once the owner gives it its NIB, every record needs a NIB or a whole SKU in
    its one spelling, issued in its kecamatan, unique per village; down while a record has only
    an SKU is refused, and without one it goes down and up again."""
    with _database_at(server_url, "0042") as url:
        asyncio.run(_load_reference(url))
        bare = asyncio.run(_value_of(url, WITHOUT_NIB, None))
        registered = asyncio.run(_value_of(url, WITHOUT_NIB, "7784300000001"))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert "1 MSME record(s) have no NIB" in message
        assert f"msmes {bare};" in message
        assert "then migrate again" in message
        assert asyncio.run(_value(url, "SELECT version_num FROM alembic_version")) == "0042"

        asyncio.run(_execute(url, "UPDATE msmes SET nib = '7784300000002' WHERE id = $1", bare))
        upgrade(url)
        asyncio.run(_execute(url, SKU, bare, None, "470/12/KEL/2024", "62.71.01.1001"))
        for nib, number, issuer in (
            (None, None, None),  # neither a NIB nor an SKU
            ("7784300000001", "470/13/KEL/2024", None),  # half an SKU
            ("7784300000001", "470/13/kel/2024", "62.71.01.1001"),  # not its one spelling
            ("7784300000001", "470/13/KEL/2024", "62.71.02.1001"),  # another kecamatan
            ("7784300000001", "470/13/KEL/2024", "62.71.01.4001"),  # no kind of village
        ):
            with pytest.raises(asyncpg.CheckViolationError):
                asyncio.run(_execute(url, SKU, registered, nib, number, issuer))
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(_execute(url, SKU, registered, None, "470/12/KEL/2024", "62.71.01.1001"))
        asyncio.run(_execute(url, SKU, registered, None, "470/12/KEL/2024", "62.71.01.2001"))

        refusal = _refused_downgrade(url, "0042")
        assert f"(msmes {bare}, {registered})" in refusal
        asyncio.run(_execute(url, "UPDATE msmes SET nib = '7784300000002' WHERE id = $1", bare))
        asyncio.run(_execute(url, "DELETE FROM msmes WHERE id = $1", registered))
        command.downgrade(alembic_config(url), "0042")
        upgrade(url)


BEFORE_0045 = migration("0045_programme_kind.py").down_revision
PROGRAMME = (
    "INSERT INTO programmes (id, name, kind, jurisdiction)"
    " VALUES ($1, 'Kredit Usaha Rakyat (uji)', $2, '62')"
)


def test_0045_holds_a_programmes_kind_to_the_vocabulary_and_guesses_none(
    server_url: str,
) -> None:
    """Upgraded with KUR programmes stored as "kur" and "Subsidised_Credit", which R12 never
    counted, it stops, changing nothing, naming both and no shipped programme; once the owner
    sets their kind, no other kind is stored, and it goes down and up again."""
    with _database_at(server_url, BEFORE_0045) as url:
        asyncio.run(_load_reference(url))
        asyncio.run(_execute(url, PROGRAMME, "PR-UJI-KUR-1", "kur"))
        asyncio.run(_execute(url, PROGRAMME, "PR-UJI-KUR-2", "Subsidised_Credit"))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert message.startswith("migration 0045 changed nothing: 2 programme(s) hold a kind")
        assert (
            "\n  programme PR-UJI-KUR-1: 'kur'\n  programme PR-UJI-KUR-2: 'Subsidised_Credit'\n"
        ) in message
        assert "PR-MMM" not in message
        assert message.endswith("then migrate again")
        version = "SELECT version_num FROM alembic_version"
        assert asyncio.run(_value(url, version)) == BEFORE_0045

        fix = "UPDATE programmes SET kind = 'subsidised_credit' WHERE id LIKE 'PR-UJI-KUR-%'"
        asyncio.run(_execute(url, fix))
        upgrade(url)
        for kind in ("kur", "Subsidised_Credit", "subsidised_credit "):
            with pytest.raises(asyncpg.CheckViolationError):
                asyncio.run(_execute(url, PROGRAMME, "PR-UJI-KUR-3", kind))
        asyncio.run(_execute(url, PROGRAMME, "PR-UJI-KUR-3", "subsidised_credit"))
        command.downgrade(alembic_config(url), BEFORE_0045)
        asyncio.run(_execute(url, PROGRAMME, "PR-UJI-KUR-4", "kur"))  # free text again
        asyncio.run(_execute(url, "DELETE FROM programmes WHERE id = 'PR-UJI-KUR-4'"))
        upgrade(url)


CREATED_BY = (
    "INSERT INTO record_changes (client_id, organisation, record_kind, record_id, operation,"
    " version, changes) VALUES ('demo-province-62', 'Dinas', $1, $2, 'create', 1, '{}')"
)
IMPORTED_BY = (
    "INSERT INTO msme_import_batches (id, client_id, organisation, first_id, last_id)"
    " VALUES (nextval('record_changes_id_seq'), 'demo-province-62', 'Dinas', $1, $1)"
)
UPDATED_BY = CREATED_BY.replace("'create'", "'update'")
IMPORTED_WITH_OWNER = CREATED_BY.replace("'create'", "'import'")
"""An import creating a record with an owner writes its own entry, at the record's version 1."""
UPDATED_BY_IMPORT = CREATED_BY.replace("'create', 1", "'import', 2")


def test_0046_lists_as_demo_only_records_in_the_range_that_no_client_created(
    server_url: str,
) -> None:
    """Upgraded from 0045, the records earlier demo runs loaded (in the demo's ranges, with no
    creation in their history, edited or not, by hand or by an import) are listed for
    `demo-data` to delete; a 999… record a client created or imported (in a batch, or with an
    owner) is not, nor one outside the range. Down and up again. A demo record an import had
    updated went unlisted, so every later `demo-data` stopped on its NIB."""
    with _database_at(server_url, "0045") as url:
        asyncio.run(_load_reference(url))
        loaded, edited, created, imported, owned, reimported, _outside = (
            asyncio.run(_value_of(url, WITHOUT_NIB, nib))
            for nib in (
                "9997781000011",
                "9997781000012",
                "9997781000013",
                "9997781000014",
                "9997781000015",
                "9997781000016",
                "7778000000011",
            )
        )
        asyncio.run(_execute(url, UPDATED_BY, "msme", edited))
        asyncio.run(_execute(url, CREATED_BY, "msme", created))
        asyncio.run(_execute(url, IMPORTED_BY, imported))
        asyncio.run(_execute(url, IMPORTED_WITH_OWNER, "msme", owned))
        asyncio.run(_execute(url, UPDATED_BY_IMPORT, "msme", reimported))
        loaded_cooperative, created_cooperative = (
            asyncio.run(_cooperative(url, f"AHU-999778{digit}.AH.01.26.TAHUN 2021"))
            for digit in "12"
        )
        asyncio.run(_execute(url, CREATED_BY, "cooperative", created_cooperative))
        listed = (
            "SELECT array_agg(msme_id ORDER BY msme_id) FROM demo_msmes",
            "SELECT array_agg(cooperative_id) FROM demo_cooperatives",
        )
        for _ in range(2):
            upgrade(url)
            assert asyncio.run(_value(url, listed[0])) == sorted([loaded, edited, reimported])
            assert asyncio.run(_value(url, listed[1])) == [loaded_cooperative]
            command.downgrade(alembic_config(url), "0045")
            assert asyncio.run(_value(url, "SELECT to_regclass('demo_msmes')")) is None


FOLDED_INDEX = (
    "SELECT count(*) FROM pg_indexes WHERE indexname = 'uq_cooperatives_legal_entity_no_folded'"
)


def test_0048_holds_an_older_number_once_in_any_case_and_refuses_to_pick_a_duplicate(
    server_url: str,
) -> None:
    """Upgraded from 0046 with one dinas number held by two cooperatives in different cases, it
    stops, changing nothing, naming both and no other; once the owner keeps one, it takes no
    other case of it, keeps the numbers as spelled, and goes down and up again."""
    with _database_at(server_url, "0046") as url:
        asyncio.run(_load_reference(url))
        first, second = (
            asyncio.run(_cooperative(url, number))
            for number in ("518/BH/XIV/1999", "518/bh/xiv/1999")
        )
        alone = asyncio.run(_cooperative(url, "519/BH/XIV/1999"))
        with pytest.raises(RuntimeError) as refused:
            upgrade(url)
        message = str(refused.value)
        assert message.startswith("migration 0048 changed nothing: 1 legal-entity number(s)")
        assert (
            f"\n  cooperative {first} '518/BH/XIV/1999', cooperative {second} '518/bh/xiv/1999'\n"
        ) in message
        assert f"cooperative {alone}" not in message
        assert message.endswith("then migrate again")
        assert asyncio.run(_value(url, FOLDED_INDEX)) == 0

        asyncio.run(_execute(url, "DELETE FROM cooperatives WHERE id = $1", second))
        upgrade(url)
        with pytest.raises(asyncpg.UniqueViolationError):
            asyncio.run(_cooperative(url, "518/Bh/XIV/1999"))
        numbers = "SELECT id, legal_entity_no FROM cooperatives ORDER BY id"
        assert [tuple(row) for row in asyncio.run(fetched(url, numbers))] == [
            (first, "518/BH/XIV/1999"),
            (alone, "519/BH/XIV/1999"),
        ]
        command.downgrade(alembic_config(url), "0046")
        assert asyncio.run(_value(url, FOLDED_INDEX)) == 0
        upgrade(url)
        assert asyncio.run(_value(url, FOLDED_INDEX)) == 1


DECIDED = (
    "INSERT INTO eligibility_decisions (client_id, organisation, msme_id, cooperative_id,"
    " subject_key, province_code, regency_code, loan_amount, tenor_months, product,"
    " ruleset_version, check_date, facts, verdict, results, coverage_amount)"
    " VALUES ('bumd', 'BUMD', $1, $2, 'key', '62', '62.71', 50000000, 24, 'P', '1',"
    " '2026-01-20', '{}', 'ELIGIBLE', '[]', 35000000) RETURNING id"
)
SUBJECTS = "SELECT id, subject_nik FROM eligibility_decisions"


async def _decided(url: str) -> dict[str, Any]:
    """At 0048: an MSME with an owner (`owned_msme`), one without, and a cooperative, each with a
    decision."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO eligibility_rulesets (product, version, effective_from, document)"
            " VALUES ('P', '1', '2026-01-01', '{}')"
        )
        owned, unowned = [
            await connection.fetchval(
                "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
                " regency_code) VALUES ($1, 'Usaha', '10794', 'C', 'micro', '62', '62.71')"
                " RETURNING id",
                nib,
            )
            for nib in ("7749900000091", "7749900000092")
        ]
        await connection.execute(
            "INSERT INTO msme_owners (msme_id, nik, full_name) VALUES ($1, $2, 'Siti')",
            owned,
            "6271995204889991",
        )
        cooperative = await _cooperative(url, "519/BH/XIV/2049")
        return {
            "owned_msme": owned,
            "owned": await connection.fetchval(DECIDED, owned, None),
            "unowned": await connection.fetchval(DECIDED, unowned, None),
            "cooperative": await connection.fetchval(DECIDED, None, cooperative),
        }
    finally:
        await connection.close()


def test_0049_names_each_stored_decisions_subject_by_its_owner_today(server_url: str) -> None:
    """Decisions stored before 0049 name their MSME's owner on the register at the upgrade; one
    without an owner and a cooperative's name no one, which the constraint holds to; one the
    previous release stores after it (no subject) names the owner at the insert; it goes down
    and up again."""
    with _database_at(server_url, "0048") as url:
        asyncio.run(_load_reference(url))
        decided = asyncio.run(_decided(url))
        upgrade(url)
        subjects = {row["id"]: row["subject_nik"] for row in asyncio.run(fetched(url, SUBJECTS))}
        assert subjects == {
            decided["owned"]: "6271995204889991",
            decided["unowned"]: None,
            decided["cooperative"]: None,
        }
        with pytest.raises(asyncpg.CheckViolationError):
            asyncio.run(
                _execute(
                    url,
                    "UPDATE eligibility_decisions SET subject_nik = '6271995204889991'"
                    " WHERE id = $1",
                    decided["cooperative"],
                )
            )
        later = asyncio.run(_value_of(url, DECIDED, decided["owned_msme"], None))
        subject = "SELECT subject_nik FROM eligibility_decisions WHERE id = $1"
        assert asyncio.run(_value_of(url, subject, later)) == "6271995204889991"
        command.downgrade(alembic_config(url), "0048")
        upgrade(url)
        assert len(asyncio.run(fetched(url, SUBJECTS))) == 4


KEYED_MSME = (
    "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code, regency_code,"
    " annual_turnover, employees) VALUES ($1, 'Usaha Kunci', '10794', 'C', 'micro', '62',"
    " '62.71', $2, $3)"
)
CONTRIBUTOR_KEYS = (
    "SELECT sum(cell_key) FILTER (WHERE employees <> 0),"
    " sum(cell_key) FILTER (WHERE employees IS NOT NULL),"
    " sum(cell_key) FILTER (WHERE annual_turnover <> 0) FROM msmes"
)


def _rollup_keys(schema: str) -> str:
    """The rollup's key sums in `schema` (public or a release's)."""
    sums = "sum(employees_key_sum), sum(employees_valued_key_sum), sum(turnover_key_sum)"
    return f"SELECT {sums} FROM {schema}.msme_rollup_regency"  # noqa: S608


def test_0050_keys_each_sum_on_its_contributors_in_the_rollups_and_the_release_made(
    server_url: str,
) -> None:
    """A release made before the revision is read until the next: its rollups gain the
    contributors' key sums from the records it copied, as the live ones do from theirs."""
    with _database_at(server_url, "0049") as url:
        asyncio.run(_execute(url, SCALE_REGIONS))
        for nib, turnover, employees in (
            ("5300530000001", 250_000_000, 4),
            ("5300530000002", None, None),
            ("5300530000003", 0, 0),
        ):
            asyncio.run(_execute(url, KEYED_MSME, nib, turnover, employees))
        asyncio.run(_execute(url, "SELECT * FROM copy_figure_release(0)"))
        schema = asyncio.run(_value(url, "SELECT schema_name FROM figure_releases"))
        assert schema in {"figures_a", "figures_b"}
        upgrade(url)
        expected = tuple(asyncio.run(fetched(url, CONTRIBUTOR_KEYS))[0])
        assert expected[0] != expected[1]  # the zero has a value, and adds nothing
        for tables in ("public", schema):
            assert tuple(asyncio.run(fetched(url, _rollup_keys(tables)))[0]) == expected
        asyncio.run(_execute(url, KEYED_MSME, "5300530000004", 10, 1))  # the triggers keep it
        expected = tuple(asyncio.run(fetched(url, CONTRIBUTOR_KEYS))[0])
        assert tuple(asyncio.run(fetched(url, _rollup_keys("public")))[0]) == expected
        command.downgrade(alembic_config(url), "0049")
        asyncio.run(_execute(url, KEYED_MSME, "5300530000005", 10, 1))
        assert asyncio.run(_value(url, "SELECT sum(n) FROM msme_rollup_regency")) == 5
        upgrade(url)


def test_0059_makes_the_copies_read_only_and_goes_down_to_0055s_function(fresh_url: str) -> None:
    """0059 replaces 0055's release function with one that takes back, from every role but the
    owner, whatever it holds on the copies beyond reading them; down, 0055's again."""
    from tests.support.databases import run as sql

    def source() -> str:
        (row,) = sql(fresh_url, "SELECT prosrc FROM pg_proc WHERE proname = 'copy_figure_release'")
        return str(row["prosrc"])

    assert "aclexplode" in source()
    command.downgrade(alembic_config(fresh_url), "0058")
    assert "aclexplode" not in source()
    assert "turnover_year" in source()  # 0055's copy of the scale history
    command.upgrade(alembic_config(fresh_url), "head")
    assert "aclexplode" in source()


INSERT_TRIGGERS = (
    "SELECT array_agg(tgname ORDER BY tgname) FROM pg_trigger"
    " WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
    " AND tgtype & 2 <> 0 AND tgtype & 4 <> 0"  # BEFORE, INSERT
)


def test_0061_checks_and_chains_an_entry_in_one_trigger_and_goes_down_again(
    fresh_url: str, tmp_path: Path
) -> None:
    """Entries written by the service and sealed at 0060, at 0061, and at 0060 again: `audit
    verify` (at head) finds the chain and the seals intact across all three, the hash being
    `audit_log_hash()`'s either way. At 0061 one trigger checks and chains an entry, and it
    refuses what the three did, with their messages, the size first."""
    trail = Trail(fresh_url, tmp_path / "audit-checkpoints.jsonl")

    def written() -> None:
        asyncio.run(written_for_tampering(fresh_url, trail.checkpoints, 3, seal=True))

    def verified() -> None:
        result = verify(trail)
        assert result.returncode == 0, result.stdout + result.stderr

    command.downgrade(alembic_config(fresh_url), "0060")
    separate = ["audit_log_bounded", "audit_log_chain", "audit_log_signed"]
    assert asyncio.run(_value(fresh_url, INSERT_TRIGGERS)) == separate
    written()
    upgrade(fresh_url)
    assert asyncio.run(_value(fresh_url, INSERT_TRIGGERS)) == ["audit_log_chain"]
    written()
    verified()
    refusals = {"carries no MAC": "{}", "more than 1048576 bytes": '"' + "a" * 1_048_576 + '"'}
    for message, entry in refusals.items():
        with pytest.raises(asyncpg.CheckViolationError, match=message):
            asyncio.run(
                _execute(
                    as_service(fresh_url),
                    "INSERT INTO audit_log (client_id, entry, subjects) VALUES ('x', $1, '{}')",
                    entry,
                )
            )
    command.downgrade(alembic_config(fresh_url), "0060")
    assert asyncio.run(_value(fresh_url, INSERT_TRIGGERS)) == separate
    written()
    upgrade(fresh_url)
    verified()


COUNT_CHECKS = (
    "SELECT array_agg(conname ORDER BY conname) FROM pg_constraint"
    " WHERE conrelid IN ('rate_limit_windows'::regclass, 'auth_failures'::regclass)"
    " AND contype = 'c'"
)


def test_0063_clamps_negative_counts_and_refuses_them_and_goes_down_again(
    fresh_url: str,
) -> None:
    """Counts the service's role planted below zero before 0063 (a client's limit lifted) are
    zero after it, and a new one is refused; down, the constraints go and such a count is
    taken again."""
    service = as_service(fresh_url)
    planted = {
        "rate_limit_windows": "INSERT INTO rate_limit_windows VALUES ($1, now(), -2000000000)",
        "auth_failures": "INSERT INTO auth_failures VALUES ($1, now(), -5)",
    }
    counts = {
        "rate_limit_windows": "SELECT hits FROM rate_limit_windows WHERE client_id = $1",
        "auth_failures": "SELECT failures FROM auth_failures WHERE subject = $1",
    }

    def plant(key: str) -> None:
        for table, statement in planted.items():
            asyncio.run(_execute(service, statement, f"{table}-{key}"))

    command.downgrade(alembic_config(fresh_url), "0062")
    assert asyncio.run(_value(fresh_url, COUNT_CHECKS)) is None
    plant("before")
    command.upgrade(alembic_config(fresh_url), "0063")
    checks = ["ck_auth_failures_failures", "ck_rate_limit_windows_hits"]
    assert asyncio.run(_value(fresh_url, COUNT_CHECKS)) == checks
    for table, count in counts.items():
        assert asyncio.run(_value_of(fresh_url, count, f"{table}-before")) == 0
        with pytest.raises(asyncpg.CheckViolationError):
            asyncio.run(_execute(service, planted[table], f"{table}-after"))
    command.downgrade(alembic_config(fresh_url), "0062")
    assert asyncio.run(_value(fresh_url, COUNT_CHECKS)) is None
    plant("after")
    upgrade(fresh_url)


PREVIOUS_RELEASE_ADD = """
    INSERT INTO rate_limit_windows AS w (client_id, window_start, hits)
    VALUES ($1, to_timestamp(0), 1)
    ON CONFLICT (client_id, window_start) DO UPDATE SET hits = w.hits + EXCLUDED.hits
"""
"""How the release before 0064 adds a count: its instances serve on while an upgrade rolls out."""


def test_0064_keeps_the_previous_releases_counts_working_and_goes_down_again(
    fresh_url: str,
) -> None:
    """Counts record their window's length from 0064 on, yet the previous release's statement,
    run by its instances during the roll, still finds its row and adds to it (its length left
    unknown); the owner's CHECK refuses a length under a second; down, the column goes."""
    service = as_service(fresh_url)
    length = "SELECT window_seconds FROM rate_limit_windows WHERE client_id = $1"
    command.downgrade(alembic_config(fresh_url), "0063")
    asyncio.run(_execute(service, PREVIOUS_RELEASE_ADD, "before"))
    upgrade(fresh_url)
    for _ in range(2):
        asyncio.run(_execute(service, PREVIOUS_RELEASE_ADD, "before"))
    counted = "SELECT hits FROM rate_limit_windows WHERE client_id = $1"
    assert asyncio.run(_value_of(fresh_url, counted, "before")) == 3
    assert asyncio.run(_value_of(fresh_url, length, "before")) is None
    with pytest.raises(asyncpg.CheckViolationError):
        asyncio.run(
            _execute(
                service,
                "INSERT INTO rate_limit_windows VALUES ($1, now(), 1, 0)",
                "no length",
            )
        )
    command.downgrade(alembic_config(fresh_url), "0063")
    with pytest.raises(asyncpg.UndefinedColumnError):
        asyncio.run(_value_of(fresh_url, length, "before"))
    upgrade(fresh_url)


def test_a_swap_of_a_name_the_earlier_revision_lacks_is_refused() -> None:
    """A migration building on an earlier one's SQL swaps names in it (`swapped`); a name the
    earlier one lacks (renamed since) would be read by no builder, and the old SQL made
    silently."""
    figures = migration("0033_insider_figures.py")
    with pytest.raises(AssertionError, match="_migration"):
        swapped(figures, _migration=lambda file: None)
    assert "_migration" not in vars(figures)
    releases = migration("0031_figure_releases.py")
    swapped(figures, migration=lambda file: releases)
    assert figures.migration("0031_figure_releases.py") is releases
