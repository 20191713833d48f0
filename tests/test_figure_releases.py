"""Perturbed figures come from figure releases (db/releases.py), so that another writer's
everyday changes are no fresh readings of a hidden part of a cell.

The attack: a ministry reads the national cell and every province's, and the nation less the
provinces shown is the hidden province's part, plus noise. Each time another province creates
or changes a business in the cell, the national cell and that province's get new records, so
new noise, and the difference is a new reading; averaging about a hundred gave a lone
business's turnover within a quarter of a percent. From a release, no such change moves a
perturbed figure until the next release.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import select

from auth.principal import Principal
from auth.scopes import OrgKind
from db import driver, releases
from db.driver import DriverStatement
from db.engine import autocommit, create_engine
from db.models import MSMES
from db.releases import SCHEMAS
from sinergi.database import privileges_beyond_service
from sinergi.figure_releaser import FigureReleaser
from sinergi.settings import MIN_RELEASE_SECONDS, Settings, SettingsError
from tests.support.cli import sinergi
from tests.support.databases import TEST_OWNER, TEST_SERVICE, as_service
from tests.support.databases import run as sql
from tests.support.demo_data import demo_clients, release_figures
from tests.support.graphql import principal, run
from tests.support.http import Api, served

CREATE = "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
UPDATE = """mutation($id: ID!, $changes: MsmeChanges!) {
  updateMsme(id: $id, changes: $changes, version: 1) { id } }"""
# Construction (section F), medium: the demo population holds none, so the cells are this
# module's own.
NATION_AND_PROVINCES = """{ msmeFigures(groupBy: [PROVINCE], filter: {kbliSection: "F"}) {
  key { value } suppressed count turnoverSum capitalSum } }"""
KALTENG, KALBAR, MINISTRY = "demo-province-62", "demo-province-61", "demo-ministry"


def _business(n: int, region: str, millions: int, kbli: str = "41011") -> dict[str, str]:
    return {
        "nib": f"{region[:2]}{kbli}{n:06d}",
        "name": f"Kontraktor Uji {n}",
        "kbliCode": kbli,
        "region": region,
        "annualTurnover": str(millions * 1_000_000 + n * 1_000),
        "capital": str(millions * 400_000),
    }


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    demo_clients(module_reference_url)
    # No figure cache: every table is computed afresh, as often as the attacker asks.
    settings = Settings(rate_limit=1_000_000, figures_cache_seconds=0)
    with served(module_reference_url, settings) as served_api:
        yield served_api


def _create(api: Api, client: str, n: int, region: str, millions: int, kbli: str = "41011") -> str:
    answer = api.graphql(CREATE, client, {"input": _business(n, region, millions, kbli)})
    assert "errors" not in answer, answer
    return str(answer["data"]["createMsme"]["id"])


def _table(api: Api, client: str) -> list[dict[str, Any]]:
    answer = api.graphql(NATION_AND_PROVINCES, client)
    assert "errors" not in answer, answer
    return list(answer["data"]["msmeFigures"])


def test_another_writers_changes_give_no_new_reading_until_the_next_release(
    api: Api, module_reference_url: str
) -> None:
    """A lone contractor in Kalteng; Kalbar's contractors, created and edited one at a time in
    the same national cell. The ministry's table, asked after every change, is the same table:
    one reading for the whole release, however many changes were made in it."""
    _create(api, KALTENG, 1, "62.71", 90_000)  # the target: alone in its province's cell
    kalbar = [_create(api, KALBAR, n, "61.71", 20_000) for n in range(10, 22)]
    release_figures(module_reference_url)
    first = _table(api, MINISTRY)
    hidden = next(cell for cell in first if cell["key"][0]["value"] == "62")
    assert hidden["suppressed"]
    for n in range(22, 30):
        _create(api, KALBAR, n, "61.71", 20_000)
        assert _table(api, MINISTRY) == first
    for n, id in enumerate(kalbar):
        edit = {"annualTurnover": str(25_000_000_000 + n), "capital": "9000000000"}
        answer = api.graphql(UPDATE, KALBAR, {"id": id, "changes": edit})
        assert "errors" not in answer, answer
        assert _table(api, MINISTRY) == first
    release_figures(module_reference_url)
    changed = _table(api, MINISTRY)
    assert changed != first  # the changes, at the next release: one more reading
    assert _table(api, MINISTRY) == changed


def test_a_table_the_caller_sees_exact_is_read_live(api: Api, module_reference_url: str) -> None:
    """Exact figures give nothing away: a province's table of its own province shows its own
    new business at once, while the national table, whose other provinces' cells are
    perturbed, shows it at the next release (its own cell with it)."""
    # Retail (section G): Kalteng's construction cell is the lone contractor's of the first test.
    national_query = NATION_AND_PROVINCES.replace('"F"', '"G"')
    own = national_query.replace('{kbliSection: "G"}', '{kbliSection: "G", region: "62"}')

    def counts(query: str) -> dict[str | None, int]:
        answer = api.graphql(query, KALTENG)
        assert "errors" not in answer, answer
        return {c["key"][0]["value"]: c["count"] for c in answer["data"]["msmeFigures"]}

    _create(api, KALTENG, 39, "62.71", 1_000, "47112")  # a cell to read, whatever ran before
    release_figures(module_reference_url)
    live, national = counts(own), counts(national_query)
    _create(api, KALTENG, 40, "62.71", 1_000, "47112")
    assert counts(own)["62"] == live["62"] + 1
    assert counts(national_query) == national
    release_figures(module_reference_url)
    assert counts(national_query)["62"] == national["62"] + 1


def test_a_computed_indicator_follows_the_release_too(api: Api, module_reference_url: str) -> None:
    """An indicator worked out from the records is a figure cell like any other: the ministry's
    is the release's, unmoved by another writer's changes."""
    query = '{ indicator(code: "UMKM_JUMLAH") { targets { jurisdiction { code } computedValue } } }'

    def computed() -> list[dict[str, Any]]:
        answer = api.graphql(query, MINISTRY)
        assert "errors" not in answer, answer
        assert answer["data"]["indicator"]["targets"], "no UMKM_JUMLAH target to compute"
        return list(answer["data"]["indicator"]["targets"])

    sql(
        module_reference_url,
        "INSERT INTO targets (indicator_code, jurisdiction, year, kind, value, source)"
        " VALUES ('UMKM_JUMLAH', '61', 2026, 'target', 1000, 'test')",
    )
    for n in range(50, 60):  # enough for a count no noise hides
        _create(api, KALBAR, n, "61.71", 1_000)
    release_figures(module_reference_url)
    seen = computed()
    assert seen[0]["computedValue"] is not None
    for n in range(60, 75):  # more than twice the noise's reach: the next release's differs
        _create(api, KALBAR, n, "61.71", 1_000)
        assert computed() == seen
    release_figures(module_reference_url)
    assert computed() != seen


def test_before_the_first_release_perturbed_figures_are_refused_and_exact_ones_answered(
    module_reference_url: str,
) -> None:
    """A database no `serve` has started on yet: what a ministry asks is refused, coded, and
    nothing is read live in its place; a province's own figures are exact, and answered."""

    async def ask(url: str) -> tuple[Any, Any]:
        engine = create_engine(as_service(url), statement_timeout_ms=10_000)
        try:
            query = "{ msmeFigures(groupBy: [SCALE]) { count } }"
            national = await run(engine, principal(OrgKind.MINISTRY, "ID"), query)
            own = query.replace("groupBy: [SCALE]", 'groupBy: [SCALE], filter: {region: "62"}')
            province: Principal = principal(OrgKind.PROVINCE, "62")
            return national, await run(engine, province, own)
        finally:
            await engine.dispose()

    _unreleased(module_reference_url)
    national, province = asyncio.run(ask(module_reference_url))
    (error,) = national.errors
    assert error.extensions == {"code": "SERVICE_UNAVAILABLE"}
    assert error.message == "no figures have been released yet; retry shortly"
    assert province.errors is None
    assert province.data["msmeFigures"]
    release_figures(module_reference_url)


def _unreleased(url: str) -> None:
    """The database as no `serve` has started on yet: no release to read."""
    sql(url, "UPDATE figure_releases SET schema_name = NULL, released_at = NULL")


def _pointer(url: str) -> Any:
    (row,) = sql(url, "SELECT number, schema_name FROM figure_releases")
    return row


def _number(url: str) -> int:
    return int(_pointer(url)["number"])


def test_serve_makes_the_first_release_and_the_cli_the_next(module_reference_url: str) -> None:
    _unreleased(module_reference_url)
    before = _number(module_reference_url)
    with served(module_reference_url) as started:
        answer = started.graphql("{ msmeFigures(groupBy: []) { count } }", MINISTRY)
        assert "errors" not in answer, answer
    assert _number(module_reference_url) == before + 1
    env = {"DATABASE_OWNER_URL": module_reference_url}
    code, out, err = sinergi(as_service(module_reference_url), "figures", "release", env=env)
    assert (code, err) == (0, "")
    assert out.startswith(f"figure release {before + 2} made at ")
    code, out, err = sinergi(
        as_service(module_reference_url), "demo-data", "--msmes", "20", "--seed", "3", env=env
    )
    assert code == 0, err
    assert _number(module_reference_url) == before + 3  # the population, released with it


COPIED = {
    "msmes": {
        "id",
        "kbli_section",
        "scale",
        "province_code",
        "regency_code",
        "district_code",
        "established_on",
        "capital",
        "annual_turnover",
        "employees",
        "cooperative_id",
        "is_active",
        "cell_key",
    },
    "cooperatives": {
        "id",
        "type",
        "province_code",
        "regency_code",
        "district_code",
        "members_male",
        "members_female",
        "business_volume",
        "assets",
        "book_year",
        "status",
        "cell_key",
    },
    "participations": {"id", "programme_id", "msme_id", "cooperative_id", "status"},
    "programmes": {"id", "jurisdiction"},
    "msme_scale_history": {"msme_id", "scale", "effective_from", "rule_version", "turnover_year"},
    "guarantees": {
        "guarantor_client_id",
        "msme_id",
        "cooperative_id",
        "province_code",
        "regency_code",
        "amount",
        "coverage_amount",
        "starts_on",
        "status",
        "cell_key",
    },
}
"""Every column of the records a release may copy (rollups, all counts and sums, aside)."""


def test_a_release_copies_no_personal_data_and_is_the_owners(
    module_reference_url: str,
) -> None:
    """An insider reading the copies finds nothing the registers' figures do not need: no name,
    NIB or owner. PUBLIC may not even look into the schemas; the owner owns the copies."""

    release_figures(module_reference_url)
    release_figures(module_reference_url)  # both schemas hold a copy
    url, schemas = module_reference_url, list(SCHEMAS)
    columns = {
        (row["relname"], row["attname"])
        for row in sql(
            url,
            "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c"
            " ON c.oid = a.attrelid WHERE c.relkind = 'r' AND a.attnum > 0"
            " AND NOT a.attisdropped AND c.relnamespace = ANY(SELECT oid FROM pg_namespace"
            " WHERE nspname = ANY($1::text[]))",
            schemas,
        )
    }
    owners = {
        row["owner"]
        for row in sql(
            url,
            "SELECT DISTINCT pg_get_userbyid(relowner) AS owner FROM pg_class"
            " WHERE relnamespace = ANY(SELECT oid FROM pg_namespace"
            " WHERE nspname = ANY($1::text[]))",
            schemas,
        )
    }
    public = sql(
        url,
        "SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])"
        " AND has_schema_privilege('public', oid, 'USAGE')",
        schemas,
    )
    tables = {table for table, _ in columns}
    assert {"msmes", "cooperatives", "guarantees", "msme_rollup_regency"} <= tables
    records = {table: {c for t, c in columns if t == table} for table in COPIED}
    assert records == COPIED
    rollups = {table for table in tables if "_rollup_" in table}
    assert tables == set(COPIED) | rollups
    assert len(rollups) == 6
    assert owners == {TEST_OWNER}
    assert public == []


def test_releases_cannot_be_set_more_often_than_hourly() -> None:
    with pytest.raises(SettingsError, match="SINERGI_FIGURES_RELEASE_SECONDS"):
        Settings.from_env({"SINERGI_FIGURES_RELEASE_SECONDS": "60"})
    settings = Settings.from_env({"SINERGI_FIGURES_RELEASE_SECONDS": "3600"})
    assert settings.figures_release_seconds == 3600


def test_the_service_cannot_have_releases_made_more_often_than_hourly(
    module_reference_url: str,
) -> None:
    """The attack: an insider holding the service's credentials calls `make_figure_release(0)`
    a hundred times, and a ministry averages a hundred readings of a lone business's turnover
    to within half a percent. Whatever minimum it asks, the database makes no release while the
    current one is younger than the settings' least interval; the owner's function that
    releases at once (`sinergi figures release`) the service may not call."""
    service_url = as_service(module_reference_url)
    release_figures(module_reference_url)
    before = _number(module_reference_url)
    for asked in ("0", "-1", "NULL"):
        assert sql(service_url, f"SELECT * FROM make_figure_release({asked})") == []  # noqa: S608
    assert _number(module_reference_url) == before
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        sql(service_url, "SELECT * FROM copy_figure_release(0)")

    def aged(seconds: int) -> None:
        sql(
            module_reference_url,
            "UPDATE figure_releases SET released_at = now() - make_interval(secs => $1)",
            seconds,
        )

    aged(MIN_RELEASE_SECONDS - 5)  # the database's floor is the settings' minimum
    assert sql(service_url, "SELECT * FROM make_figure_release(0)") == []
    aged(MIN_RELEASE_SECONDS + 5)
    assert [row["number"] for row in sql(service_url, "SELECT * FROM make_figure_release(0)")] == [
        before + 1
    ]


def test_the_service_can_plant_nothing_in_a_release(module_reference_url: str) -> None:
    """An insider holding the service's credentials: were the copies its own, it could put a
    view over the live tables in a release's place (perturbed figures read live again, each
    change a new reading) or code that runs in other clients' requests, and either would
    outlive its credentials. The owner makes and owns the copies; the service may only read
    them, so `serve` still finds it owns nothing."""
    service_url = as_service(module_reference_url)
    release_figures(module_reference_url)
    schema = _pointer(module_reference_url)["schema_name"]
    attempts = [
        f"CREATE VIEW {schema}.live AS SELECT * FROM public.msmes",  # noqa: S608
        f"ALTER TABLE {schema}.msmes RENAME TO frozen",
        f"DROP TABLE {schema}.msmes",
        f"INSERT INTO {schema}.msmes (id, kbli_section, scale, province_code, regency_code,"  # noqa: S608
        " is_active, cell_key) VALUES (-1, 'F', 'medium', '62', '62.71', true, 1)",
        f"CREATE FUNCTION {schema}.lend() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "UPDATE figure_releases SET released_at = now() + interval '1 year'",
    ]

    for statement in attempts:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            sql(service_url, statement)
    assert asyncio.run(privileges_beyond_service(service_url)) is None


def test_a_release_is_the_owners_to_write_whatever_the_default_privileges(
    fresh_url: str,
) -> None:
    """`ALTER DEFAULT PRIVILEGES FOR ROLE <owner> GRANT ALL ON TABLES TO <service>`, a common
    habit, would make every copy a release makes writable by the service (and PUBLIC): it could
    forge a released figure, or undo a suppression, until the next release. The copies are
    read-only to everyone but the owner however they were made, and `serve` refuses a service
    role that may write one."""
    service_url = as_service(fresh_url)
    for grantee in ("PUBLIC", f"{TEST_SERVICE} WITH GRANT OPTION"):
        sql(
            fresh_url,
            f"ALTER DEFAULT PRIVILEGES FOR ROLE {TEST_OWNER} GRANT ALL ON TABLES TO {grantee}",
        )
    for _ in SCHEMAS:  # each schema made a release
        schema = release_figures(fresh_url).schema
        for statement in (
            f"INSERT INTO {schema}.msmes (id, kbli_section, scale, province_code, regency_code,"  # noqa: S608
            " is_active, cell_key) VALUES (-1, 'F', 'medium', '62', '62.71', true, 1)",
            f"UPDATE {schema}.msme_rollup_regency SET n = n + 1",  # noqa: S608
            f"DELETE FROM {schema}.msmes",  # noqa: S608
            f"TRUNCATE {schema}.guarantees",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                sql(service_url, statement)
        assert sql(service_url, f"SELECT count(*) AS n FROM {schema}.msmes")  # noqa: S608
        beyond_reading = sql(
            fresh_url,
            "SELECT c.relname, a.grantee, a.privilege_type FROM pg_class c, aclexplode(c.relacl) a"
            " WHERE c.relnamespace = $1::regnamespace AND a.grantee <> c.relowner"
            " AND (a.grantee = 0 OR a.privilege_type <> 'SELECT' OR a.is_grantable)",
            schema,
        )
        assert beyond_reading == []  # PUBLIC reads nothing, the service grants nothing on
    assert asyncio.run(privileges_beyond_service(service_url)) is None
    sql(fresh_url, f"GRANT UPDATE ON {schema}.msmes TO {TEST_SERVICE}")
    reason = asyncio.run(privileges_beyond_service(service_url))
    assert reason is not None
    assert f"{schema}.msmes" in reason


def test_a_release_is_due_once_older_than_the_interval_or_when_there_is_none(
    module_reference_url: str,
) -> None:
    async def due(seconds: float) -> bool:
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
        try:
            return await releases.due(engine, seconds)
        finally:
            await engine.dispose()

    release_figures(module_reference_url)
    assert not asyncio.run(due(3600))
    assert asyncio.run(due(0))
    _unreleased(module_reference_url)
    assert asyncio.run(due(3600))
    release_figures(module_reference_url)


def test_a_due_release_is_made_once_and_one_held_up_is_reported(
    module_reference_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Two processes finding a release due make one; a release held up (here by the owner
    holding the pointer row, as only a role that may update it can) is logged once overdue."""

    async def scenario() -> tuple[int, int, int]:
        owner = await asyncpg.connect(module_reference_url)
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=10_000)
        releaser = FigureReleaser(engine, interval_seconds=3600)
        aged = "UPDATE figure_releases SET released_at = now() - interval '2 hours'"
        try:
            await owner.execute(aged)
            before = int(await owner.fetchval("SELECT number FROM figure_releases"))
            await releaser.look()
            await releaser.look()  # the second process: the release is no longer due
            # One that found it due before the first made it: the function finds it made.
            assert await releases.release(engine, min_seconds=3600) is None
            made = int(await owner.fetchval("SELECT number FROM figure_releases"))
            await owner.execute(aged)
            async with owner.transaction():
                await owner.execute("SELECT * FROM figure_releases FOR UPDATE")
                await releaser.look()
            held = int(await owner.fetchval("SELECT number FROM figure_releases"))
            return before, made, held
        finally:
            await owner.close()
            await engine.dispose()

    release_figures(module_reference_url)
    with caplog.at_level(logging.WARNING, logger="sinergi.figures"):
        before, made, held = asyncio.run(scenario())
    assert (made, held) == (before + 1, before + 1)
    assert [record.getMessage() for record in caplog.records] == [
        "a figure release is overdue and could not be made: another is being made, or holds the"
        " release's lock; perturbed figures grow stale"
    ]
    release_figures(module_reference_url)


def test_a_release_made_by_the_owner_is_read_by_the_service(module_reference_url: str) -> None:
    """The owner (or a superuser) may make a release by hand; its copies are the owner's
    tables either way, and the service reads them."""
    sql(module_reference_url, "SELECT * FROM copy_figure_release(0)")
    with served(module_reference_url) as api:
        demo_clients(module_reference_url)
        answer = api.graphql(NATION_AND_PROVINCES, MINISTRY)
    assert "errors" not in answer, answer


def test_processes_starting_together_on_no_release_all_wait_for_the_one_made(
    module_reference_url: str,
) -> None:
    """Each process serves only once a release is there, whichever made it, and one is made."""

    async def start() -> list[int | None]:
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=0)

        async def started() -> int | None:
            await FigureReleaser(engine, interval_seconds=3600).first()
            async with engine.connect() as connection:
                found = await releases.current(connection)
            return None if found is None else found.number

        try:
            return list(await asyncio.gather(*(started() for _ in range(3))))
        finally:
            await engine.dispose()

    _unreleased(module_reference_url)
    before = _number(module_reference_url)
    assert asyncio.run(start()) == [before + 1] * 3


def test_the_driver_refuses_a_statement_meant_for_a_release(module_reference_url: str) -> None:
    """db.driver sends statements as compiled, tables named as they are: one meant for a
    release would read the live tables."""

    async def attempt() -> None:
        engine = autocommit(create_engine(as_service(module_reference_url), statement_timeout_ms=0))
        try:
            async with engine.connect() as connection:
                made = await releases.current(connection)
                assert made is not None
                await releases.enter(connection, made)
                await driver.fetch(connection, DriverStatement(select(MSMES.c.id)), {})
        finally:
            await engine.dispose()

    release_figures(module_reference_url)
    with pytest.raises(RuntimeError, match="figure release"):
        asyncio.run(attempt())
