"""The owner's SECURITY DEFINER functions (the change feed's and the rollups' triggers, the
figure releases' functions) cannot be steered by the service role: an insider holding its
credentials, who may create temporary tables.

PostgreSQL searches the session's temporary schema for relations first unless `search_path` names
`pg_temp`; a definer function whose path left it out wrote its feed entries into a temporary
`change_pending` of the caller's, so a trigger the service put on that table ran as the owner,
and a forged row in it was numbered into the real `change_log`. Migration 0028 pins every
definer function's path with `pg_temp` last, and db/roles.py leaves the service no schema to
create in ahead of it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from db import roles
from tests.support.databases import TEST_OWNER, TEST_SERVICE, as_service

PENDING_COLUMNS = (
    " record_kind varchar(15) NOT NULL, record_id text NOT NULL, operation varchar(6) NOT NULL,"
    " deactivated boolean NOT NULL, personal boolean NOT NULL,"
    " old_province varchar(13), old_regency varchar(13), old_district varchar(13),"
    " new_province varchar(13), new_regency varchar(13), new_district varchar(13),"
    " owner_client_id text"
)
# What the service makes in its own session: the feed's working tables, as 0014 declares them,
# open to everyone, and a trigger on each that notes who ran it.
SHADOWS = [
    "CREATE TEMPORARY TABLE change_pending (pending_id bigserial,"
    f" xid xid8 NOT NULL DEFAULT pg_current_xact_id(), {PENDING_COLUMNS})",
    "CREATE TEMPORARY TABLE change_pending_transactions (xid xid8 PRIMARY KEY)",
    "CREATE TEMPORARY TABLE ran_as (who name, on_table name)",
    "GRANT ALL ON pg_temp.change_pending, pg_temp.change_pending_transactions, pg_temp.ran_as"
    " TO PUBLIC",
    "GRANT ALL ON SEQUENCE pg_temp.change_pending_pending_id_seq TO PUBLIC",
    "CREATE FUNCTION pg_temp.note() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN INSERT INTO pg_temp.ran_as VALUES (current_user, TG_TABLE_NAME); RETURN NULL; END $$",
    "CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON pg_temp.change_pending"
    " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note()",
    "CREATE TRIGGER note AFTER INSERT OR UPDATE OR DELETE ON pg_temp.change_pending_transactions"
    " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.note()",
]
NIB_PREFIX = "99927010"  # this module's records
ROLLUPS = (
    "msme_rollup_regency",
    "msme_rollup_province_kbli",
    "msme_rollup_province_year",
    "msme_rollup_regency_kbli",
    "cooperative_rollup_province",
    "cooperative_rollup_regency",
)
ROLLUP_TRIGGERS = [
    (base, operation)
    for base in ("msmes", "cooperatives")
    for operation in ("insert", "update", "delete", "truncate")
]
ROLLUP_WRITES = {
    "raise a cell": "UPDATE {} SET n = n + 1000, cell_key_sum = 0",
    "add a cell": "INSERT INTO {0} SELECT * FROM {0} LIMIT 1",
    "empty a cell": "DELETE FROM {}",
}


@pytest.fixture(scope="module")
async def owner(module_reference_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(module_reference_url)
    yield connection
    await connection.close()


@pytest.fixture
async def service(module_reference_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A session of the service role's own, its temporary tables made."""
    connection = await asyncpg.connect(as_service(module_reference_url))
    for statement in SHADOWS:
        await connection.execute(statement)
    yield connection
    await connection.close()


async def _new_msme(owner: asyncpg.Connection, number: int) -> int:
    created: int = await owner.fetchval(
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) VALUES ($1, 'Uji pencarian', '10794', 'C', 'micro', '62', '62.71')"
        " RETURNING id",
        f"{NIB_PREFIX}{number:05d}",
    )
    return created


async def _logged(owner: asyncpg.Connection, record: int) -> list[str]:
    rows = await owner.fetch(
        "SELECT operation FROM change_log WHERE record_kind = 'msme' AND record_id = $1"
        " ORDER BY id",
        str(record),
    )
    return [row["operation"] for row in rows]


async def test_every_definer_function_pins_its_search_path_with_pg_temp_last(
    owner: asyncpg.Connection,
) -> None:
    """Future migrations included: a definer function whose path leaves `pg_temp` out (searched
    first), or names a schema the service may create in, or that the service may call (but the
    ones db/roles.py names), fails."""
    functions = await owner.fetch(
        "SELECT p.oid::regprocedure::text AS name, pg_get_userbyid(p.proowner) AS owner,"
        " (SELECT substr(setting, length('search_path=') + 1) FROM unnest(p.proconfig) setting"
        "   WHERE setting LIKE 'search\\_path=%') AS path,"
        " has_function_privilege($1, p.oid, 'EXECUTE') AS callable"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
        TEST_SERVICE,
    )
    # The change feed's (0014, 0021, 0025), the figure releases' (0031, 0033), and the rollups'
    # (0033: a rollup the service could write, it could forge a released figure with).
    assert len(functions) >= 32
    names = {function["name"] for function in functions}
    assert {f"{base}_rollups_{operation}()" for base, operation in ROLLUP_TRIGGERS} <= names
    for function in functions:
        assert function["owner"] == TEST_OWNER, function
        # The ones the service calls: one takes a number, no name or statement (migration 0031);
        # the other makes a signing key only when none signs (0036).
        assert function["callable"] == (function["name"] in roles.CALLABLE_DEFINERS), function
        assert function["path"] is not None, function
        schemas = [schema.strip() for schema in function["path"].split(",")]
        assert schemas[-1] == "pg_temp", function
        for schema in schemas[:-1]:
            creates = await owner.fetchval(
                "SELECT has_schema_privilege($1, $2, 'CREATE')", TEST_SERVICE, schema
            )
            assert creates is False, (function, schema)


async def test_a_temporary_change_pending_runs_nothing_as_the_owner(
    owner: asyncpg.Connection, service: asyncpg.Connection
) -> None:
    """The service's triggers on its own shadow tables never fire from the feed's triggers: no
    statement of the owner's lands in them, whether the write changes a row or none, and the
    real change is logged."""
    record = await _new_msme(owner, 1)
    await service.execute("UPDATE public.msmes SET name = name WHERE false")
    await service.execute("UPDATE public.msmes SET employees = 7 WHERE id = $1", record)
    assert await service.fetch("SELECT who, on_table FROM pg_temp.ran_as") == []
    assert await service.fetchval("SELECT count(*) FROM pg_temp.change_pending") == 0
    assert await _logged(owner, record) == ["insert", "update"]


async def test_a_forged_temporary_entry_does_not_reach_the_change_log(
    owner: asyncpg.Connection, service: asyncpg.Connection
) -> None:
    """A removal the service noted in its own `change_pending`, in the transaction of a real
    change, is not numbered into the feed: clients would drop a record that exists. (Without a
    shadow `change_pending_transactions`, so that the real one calls the commit trigger.)"""
    await service.execute("DROP TABLE pg_temp.change_pending_transactions")
    victim, written = await _new_msme(owner, 2), await _new_msme(owner, 3)
    async with service.transaction():
        await service.execute(
            "INSERT INTO pg_temp.change_pending (record_kind, record_id, operation, deactivated,"
            " personal, old_province, old_regency) VALUES ('msme', $1, 'delete', false, false,"
            " '62', '62.71')",
            str(victim),
        )
        await service.execute("UPDATE public.msmes SET employees = 3 WHERE id = $1", written)
    assert await _logged(owner, victim) == ["insert"]
    assert await _logged(owner, written) == ["insert", "update"]


@pytest.mark.parametrize("rollup", ROLLUPS)
@pytest.mark.parametrize("write", ROLLUP_WRITES.values(), ids=ROLLUP_WRITES.keys())
async def test_the_service_cannot_write_a_figure_into_a_release(
    owner: asyncpg.Connection, service: asyncpg.Connection, rollup: str, write: str
) -> None:
    """The attack: raise a rollup cell, have a release made, put the cell back, commit; the
    ministries read the forged figure until the next release, and the change log holds
    nothing. The rollups are their triggers' alone, which run as the owner."""

    async def forge() -> None:
        async with service.transaction():
            await service.execute(write.format(rollup))
            await service.execute("SELECT * FROM make_figure_release(0)")
            await service.execute(f"UPDATE {rollup} SET n = n")  # noqa: S608

    before = await owner.fetch(f"SELECT * FROM {rollup} ORDER BY 1, 2, 3")  # noqa: S608
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await forge()
    assert await owner.fetch(f"SELECT * FROM {rollup} ORDER BY 1, 2, 3") == before  # noqa: S608


async def test_the_services_writes_still_keep_the_rollups(
    owner: asyncpg.Connection, service: asyncpg.Connection
) -> None:
    """Its triggers write the rollups for the service: a record it creates, moves and deletes
    moves its cells, and a temporary rollup of its own takes none of it."""
    await service.execute(
        "CREATE TEMPORARY TABLE msme_rollup_regency (LIKE public.msme_rollup_regency)"
    )
    cell = (
        "SELECT coalesce(sum(n), 0) FROM public.msme_rollup_regency"
        " WHERE regency_code = $1 AND scale = 'micro' AND is_active"
    )
    kapuas, palangka = await owner.fetchval(cell, "62.03"), await owner.fetchval(cell, "62.71")
    created = await service.fetchval(
        "INSERT INTO public.msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) VALUES ($1, 'Uji rollup', '10794', 'C', 'micro', '62', '62.71')"
        " RETURNING id",
        f"{NIB_PREFIX}00020",
    )
    assert await owner.fetchval(cell, "62.71") == palangka + 1
    await service.execute("UPDATE public.msmes SET regency_code = '62.03' WHERE id = $1", created)
    assert (await owner.fetchval(cell, "62.71"), await owner.fetchval(cell, "62.03")) == (
        palangka,
        kapuas + 1,
    )
    await owner.execute("DELETE FROM msmes WHERE id = $1", created)
    assert await owner.fetchval(cell, "62.03") == kapuas
    assert await service.fetchval("SELECT count(*) FROM pg_temp.msme_rollup_regency") == 0
