"""Reads from a replica, writes and the writer's own reads from the primary.

The "replica" here is a read-only copy of the primary taken after one record was made, then
changed behind the primary's back: what a client reads tells which server answered it. Being
read-only (as a hot standby is), it also proves that nothing a request writes (the audit trail,
the rate-limit counters) goes there.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import threading
import time
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from auth.scopes import OrgKind
from db.engine import async_url, create_engine
from db.errors import ReplicaConflict, is_unavailable
from db.reads import CHECK_TIMEOUT_SECONDS, Reads, Replica, replica_lag
from sinergi import metrics
from sinergi.app import create_app
from sinergi.demo_mode import register_demo_clients
from sinergi.metrics import observe_replica_lag
from sinergi.settings import Settings, SettingsError
from tests.support.cli import sinergi
from tests.support.databases import (
    as_service,
    create_database,
    drop_database,
    empty_database,
    with_database,
)
from tests.support.databases import run as run_sql
from tests.support.feed_cursors import sealed
from tests.support.graphql import principal, run
from tests.support.http import Api
from tests.support.served import free_port

NIB = "7790000000001"
READ = '{ msme(nib: "7790000000001") { name version } }'
PAGE = "{ msmes(first: 5) { nodes { name } } }"  # compiled into one statement (schema/compiled.py)
RENAME = """
mutation($id: ID!, $version: Int!) {
  updateMsme(id: $id, version: $version, changes: {name: "Warung Baru"}) {
    name version changes { operation }
  }
}
"""
WINDOW_SECONDS = 2


async def _prepare(server_url: str, primary_url: str, replica: str) -> str:
    """The primary (reference data only) with the demo clients and one record, made as the app
    makes it, as the service role; the replica a read-only copy of it, renamed there. Returns
    the record's id."""
    owner = create_async_engine(async_url(primary_url))
    await register_demo_clients(owner)  # the service may only read the clients
    await owner.dispose()
    service = create_engine(as_service(primary_url), statement_timeout_ms=10_000)
    create = (
        'mutation { createMsme(input: {nib: "7790000000001", name: "Warung Asli",'
        ' kbliCode: "47112", region: "62.71", capital: "50000000",'
        ' annualTurnover: "90000000"}) { id } }'
    )
    created = await run(service, principal(OrgKind.PROVINCE, "62"), create)
    await service.dispose()
    await create_database(server_url, replica, template=make_url(primary_url).database)
    copy = await asyncpg.connect(with_database(server_url, replica))
    try:
        await copy.execute("UPDATE msmes SET name = 'Warung Replika' WHERE nib = $1", NIB)
    finally:
        await copy.close()
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'ALTER DATABASE "{replica}" SET default_transaction_read_only = on')
    finally:
        await admin.close()
    return str(created.data["createMsme"]["id"])


@pytest.fixture(scope="module")
def replica() -> str:
    """The replica's database name."""
    return f"sinergi_replica_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def replicated(
    server_url: str, module_reference_url: str, replica: str
) -> Iterator[tuple[Api, str]]:
    """The app as the service role, on the primary and the replica."""
    try:
        msme_id = asyncio.run(_prepare(server_url, module_reference_url, replica))
        settings = Settings(
            rate_limit=1_000_000,
            metrics_open=True,  # scraped below
            replica_url=as_service(with_database(server_url, replica)),
            read_your_writes_seconds=WINDOW_SECONDS,
            # A lock timeout (half of it) past the row lock a test holds for 2.2 windows.
            statement_timeout_ms=10_000,
        )
        app = create_app(settings, database_url=as_service(module_reference_url))
        with TestClient(app) as client:
            yield Api(client), msme_id
    finally:
        asyncio.run(drop_database(server_url, replica))


def _name(api: Api, client_id: str) -> str:
    answer = api.graphql(READ, client_id)
    assert "errors" not in answer, answer
    return str(answer["data"]["msme"]["name"])


def _page_names(api: Api, client_id: str) -> list[str]:
    answer = api.graphql(PAGE, client_id)
    assert "errors" not in answer, answer
    return [node["name"] for node in answer["data"]["msmes"]["nodes"]]


def test_a_writer_reads_its_writes_and_others_read_the_replica(
    module_reference_url: str, replicated: tuple[Api, str]
) -> None:
    api, msme_id = replicated
    writer, reader = "demo-province-62", "demo-regency-6271"
    for client in (writer, reader):  # other tests of the module write as both: no window open
        asyncio.run(_forget_writes(module_reference_url, client))
    # Other tests of the module write the record too: at whatever version they left it.
    (version,) = run_sql(module_reference_url, "SELECT version FROM msmes WHERE nib = $1", NIB)
    before = int(version["version"])
    assert _name(api, writer) == "Warung Replika"  # reads go to the replica
    assert _page_names(api, writer) == ["Warung Replika"]

    renamed = api.graphql(RENAME, writer, {"id": msme_id, "version": before})
    assert "errors" not in renamed, renamed
    # The mutation's nested fields are read after the write, from the primary: every change,
    # this one last (the replica holds the creation alone).
    assert renamed["data"]["updateMsme"] == {
        "name": "Warung Baru",
        "version": before + 1,
        "changes": [{"operation": "create"}] + [{"operation": "update"}] * before,
    }

    assert _name(api, writer) == "Warung Baru"  # its own write, though the replica lags
    assert _name(api, reader) == "Warung Replika"  # other clients stay on the replica
    assert _page_names(api, writer) == ["Warung Baru"]
    assert _page_names(api, reader) == ["Warung Replika"]
    # At least the window, at most twice (a write within half of it renews no note).
    time.sleep(2 * WINDOW_SECONDS + 0.5)
    assert _name(api, writer) == "Warung Replika"  # the window closed: back to the replica


async def _feed_head(url: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval("SELECT max(id) FROM change_log"))
    finally:
        await connection.close()


async def _execute(url: str, statement: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def test_a_cursor_the_replica_has_not_replayed_yet_is_read_on_the_primary(
    server_url: str, module_reference_url: str, replica: str, replicated: tuple[Api, str]
) -> None:
    """A cursor the primary handed out (to a client reading there after its own write, or while
    the replica was away) may be ahead of what the replica has replayed: the page is read on the
    primary then, not refused as one ahead of the feed. One ahead of the primary too is."""
    api, _ = replicated
    for _ in range(2):  # on the primary alone: changes the replica has not replayed
        asyncio.run(
            _execute(
                module_reference_url, "UPDATE msmes SET employees = coalesce(employees, 0) + 1"
            )
        )
    primary = asyncio.run(_feed_head(module_reference_url))
    assert asyncio.run(_feed_head(with_database(server_url, replica))) < primary
    reader = "demo-regency-6271"
    asyncio.run(_forget_writes(module_reference_url, reader))  # no window: reads the replica
    document = "query($after: String) { msmeChanges(after: $after) { endCursor entries { id } } }"
    taken = api.graphql(document, reader, {"after": sealed("msme", primary)})
    assert "errors" not in taken, taken
    assert taken["data"]["msmeChanges"]["entries"] == []
    refused = api.graphql(document, reader, {"after": sealed("msme", primary + 1)})
    assert "is ahead of the feed" in refused["errors"][0]["message"], refused


def test_metrics_show_both_pools(replicated: tuple[Api, str]) -> None:
    api, _ = replicated
    sizes = {
        sample.labels["database"]: sample.value
        for family in text_string_to_metric_families(api.client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "sinergi_db_pool_size"
    }
    assert sizes == {"primary": Settings().db_pool_size, "replica": Settings().db_pool_size}
    lags = [
        sample.value
        for family in text_string_to_metric_families(api.client.get("/metrics").text)
        for sample in family.samples
        if sample.name == "sinergi_db_replica_lag_seconds"
    ]
    assert lags == [0.0]  # a plain database: nothing to replay


def test_a_privileged_replica_is_refused_by_the_first_check_that_reaches_it(
    server_url: str,
    module_reference_url: str,
    replica: str,
    replicated: tuple[Api, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """`serve` refuses a superuser's DATABASE_REPLICA_URL only when it reaches the replica at
    start: one it could not reach then was read once it answered, whatever its role. The first
    check that reaches it now applies the same rule (here the app meets the superuser's URL
    without `serve`'s start-up check, as after an unreachable start): the error logged, its lag
    +Inf, every read on the primary. Accepted (SINERGI_UNSAFE_PRIVILEGED_ROLE), it is read."""
    lags: list[float | None] = []
    monkeypatch.setattr(metrics, "observe_replica_lag", lags.append)
    # A write of the reader's in an earlier test would send its reads to the primary.
    asyncio.run(_forget_writes(module_reference_url, "demo-regency-6271"))

    def read(accepted: bool) -> str:
        settings = Settings(
            rate_limit=1_000_000,
            replica_url=with_database(server_url, replica),  # the server's superuser
            unsafe_privileged_role=accepted,
        )
        app = create_app(settings, database_url=as_service(module_reference_url))
        with TestClient(app) as client:
            return _name(Api(client), "demo-regency-6271")  # never writes: on the replica

    assert read(accepted=False) != "Warung Replika"  # the primary's
    assert lags
    assert set(lags) == {math.inf}
    refusals = [
        r.getMessage()
        for r in caplog.records
        if r.name == "sinergi.replica" and r.levelname == "ERROR"
    ]
    assert len(refusals) == 1, refusals
    assert "DATABASE_REPLICA_URL: the database role" in refusals[0]
    assert "is a superuser" in refusals[0]
    assert read(accepted=True) == "Warung Replika"


def test_a_replica_needs_a_primary_url() -> None:
    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URL needs DATABASE_URL"):
        Settings.from_env({"DATABASE_REPLICA_URL": "postgresql://replica/sinergi"})
    with pytest.raises(SettingsError, match="DATABASE_REPLICA_URL must be a PostgreSQL URL"):
        Settings.from_env(
            {"DATABASE_URL": "postgresql://p/s", "DATABASE_REPLICA_URL": "mysql://r/s"}
        )


def test_serve_names_a_replica_url_it_cannot_connect_with(fresh_url: str) -> None:
    """A typo in DATABASE_REPLICA_URL (a database PostgreSQL does not know) is the replica's
    refusal: named as DATABASE_REPLICA_URL's address, not the primary's, which answers."""
    typo = make_url(as_service(fresh_url)).set(database="sinergi_no_such_replica")
    code, _, said = sinergi(
        fresh_url,
        "serve",
        "--port",
        str(free_port()),
        env={"DATABASE_REPLICA_URL": typo.render_as_string(hide_password=False)},
    )
    host = typo.host or typo.query["host"]  # the embedded server's socket directory
    place = f"{host}:{typo.port or 5432}/sinergi_no_such_replica"
    assert code == 2, said
    assert said.startswith(f"sinergi: cannot reach DATABASE_REPLICA_URL's PostgreSQL at {place}: ")
    assert "sinergi_no_such_replica" in said.splitlines()[-1]
    assert make_url(fresh_url).database not in said


async def _forget_writes(url: str, client_id: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("DELETE FROM client_writes WHERE client_id = $1", client_id)
    finally:
        await connection.close()


def test_reads_fall_back_to_the_primary_while_the_replica_is_unreachable(
    demo_url: str, api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # a port nothing listens on: connections are refused
    settings = Settings(
        rate_limit=1_000_000,
        replica_url=f"postgresql://postgres@127.0.0.1:{port}/sinergi",
        db_connect_timeout_seconds=1,
    )
    asyncio.run(_forget_writes(demo_url, "demo-province-62"))  # else its reads skip the replica
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        replicated = Api(client)
        for _ in range(2):  # the second read does not even try the replica
            answer = replicated.graphql("{ msmes(first: 2) { totalCount } }", "demo-province-62")
            assert "errors" not in answer, answer
            assert answer["data"]["msmes"]["totalCount"] > 0
    warnings = [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("reading from the primary for 5 s"), warnings


SLOW_RENAME = """
mutation($id: ID!, $version: Int!) {
  updateMsme(id: $id, version: $version, changes: {name: "Warung Lambat"}) { name }
}
"""


def _row_locked(url: str, seconds: float, locked: threading.Event) -> None:
    """The record's row locked for `seconds` by another transaction, as an operator's in psql."""

    async def hold() -> None:
        connection = await asyncpg.connect(url)
        try:
            async with connection.transaction():
                await connection.execute("SELECT FROM msmes WHERE nib = $1 FOR UPDATE", NIB)
                locked.set()
                await asyncio.sleep(seconds)
        finally:
            await connection.close()

    asyncio.run(hold())


def test_a_write_slowed_by_a_lock_is_read_back_for_the_window_after_it_commits(
    module_reference_url: str, replicated: tuple[Api, str]
) -> None:
    """The note a write makes comes before its transaction: a write kept waiting on a row lock
    for more than the window had the next read of its client go to the lagging replica."""
    api, msme_id = replicated
    writer = "demo-province-62"
    (version,) = run_sql(module_reference_url, "SELECT version FROM msmes WHERE nib = $1", NIB)
    locked = threading.Event()
    holder = threading.Thread(
        target=_row_locked, args=(module_reference_url, 2.2 * WINDOW_SECONDS, locked)
    )
    holder.start()
    try:
        assert locked.wait(10)
        renamed = api.graphql(SLOW_RENAME, writer, {"id": msme_id, "version": version["version"]})
    finally:
        holder.join()
    assert renamed == {"data": {"updateMsme": {"name": "Warung Lambat"}}}
    assert _name(api, writer) == "Warung Lambat"  # the primary, though the replica lags


def test_a_batch_reads_back_what_its_earlier_mutation_wrote(
    module_reference_url: str, replicated: tuple[Api, str]
) -> None:
    """A batch holding a mutation runs in order: a query after the write reads it, though its
    client had not written before the request, whose reads were then bound for the replica."""
    api, msme_id = replicated
    client = "demo-regency-6271"
    asyncio.run(_forget_writes(module_reference_url, client))  # not written before the request
    (version,) = run_sql(module_reference_url, "SELECT version FROM msmes WHERE nib = $1", NIB)
    rename = "mutation($id: ID!, $version: Int!) { updateMsme(id: $id, version: $version,"
    rename += ' changes: {name: "Warung Berurut"}) { name } }'
    batch = [
        {"query": rename, "variables": {"id": msme_id, "version": version["version"]}},
        {"query": READ},
    ]
    response = api.post(batch, api.token(client))
    assert response.status_code == 200, response.text
    renamed, read = response.json()
    assert renamed == {"data": {"updateMsme": {"name": "Warung Berurut"}}}
    assert read["data"]["msme"]["name"] == "Warung Berurut"


def test_the_replica_lags_by_the_age_of_the_newest_primary_position_it_has_replayed() -> None:
    samples = [(100.0, 10), (101.0, 20), (102.0, 20), (103.0, 35)]
    assert replica_lag(samples, 35, now=103.5) == 0.5  # everything
    assert replica_lag(samples, 20, now=103.5) == 1.5  # the newest at 20, not the oldest
    assert replica_lag(samples, 34, now=103.5) == 1.5
    assert replica_lag(samples, 9, now=103.5) is None  # behind every sample: unknown
    assert replica_lag([], 9, now=103.5) is None
    assert replica_lag(samples, None, now=103.5) == 0.0  # not in recovery: replays nothing


async def _replayed_at(url: str, position: str) -> None:
    """The database answers `pg_last_wal_replay_lsn()` with `position`, as a standby whose
    replay is paused there: its own function, found before pg_catalog's."""
    await _execute(
        url,
        "CREATE OR REPLACE FUNCTION standby.pg_last_wal_replay_lsn() RETURNS pg_lsn"
        f" LANGUAGE sql AS $$ SELECT '{position}'::pg_lsn $$",
    )


async def _advanced(server_url: str) -> str:
    """The primary's WAL position, then a commit past it."""
    connection = await asyncpg.connect(server_url)
    try:
        position = str(await connection.fetchval("SELECT pg_current_wal_lsn()::text"))
        await connection.execute("SELECT pg_current_xact_id()")  # a commit record
        return position
    finally:
        await connection.close()


@contextlib.contextmanager
def _standby(server_url: str) -> Iterator[str]:
    """A database standing for a standby: `_replayed_at` says how far it has replayed."""
    with empty_database(server_url, "sinergi_standby") as owner_url:
        name = make_url(owner_url).database
        standby_url = with_database(server_url, str(name))
        run_sql(standby_url, "CREATE SCHEMA standby")
        run_sql(standby_url, f'ALTER DATABASE "{name}" SET search_path = standby, pg_catalog')
        yield standby_url


def test_a_replica_is_told_lagging_only_once_its_lag_could_be_told(
    server_url: str, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """At start one sample of the primary's WAL is held, taken just now: a standby that has not
    replayed it yet was logged as lagging "by an unknown time" at every start. It is unread
    until a check tells, and logged when the second check cannot tell either."""

    async def watched(standby_url: str) -> list[tuple[bool, int]]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
        standby = create_async_engine(async_url(standby_url))  # its search_path the database's
        replica = Replica(standby, max_lag_seconds=3)
        seen = []
        try:
            await _replayed_at(standby_url, await _advanced(server_url))
            for _ in range(2):
                await replica.check(primary)
                said = [r for r in caplog.records if r.name == "sinergi.replica"]
                seen.append((replica.readable, len(said)))
        finally:
            await primary.dispose()
            await standby.dispose()
        return seen

    with _standby(server_url) as standby_url:
        assert asyncio.run(watched(standby_url)) == [(False, 0), (False, 1)]
    (said,) = [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"]
    assert said == "the replica lags more than 3 s (by an unknown time): reading from the primary"


def test_each_check_reports_the_lag_it_found_to_the_metric(demo_url: str) -> None:
    """The gauge was set only when a request came by: an idle worker's kept its first check's
    value (+Inf, unknown) while the replica had caught up long before, and the scrape's
    maximum over workers showed it. Each check sets it now; an unknown lag is +Inf, but not
    at the first check, which cannot tell."""

    async def observed() -> list[float | None]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
        lags: list[float | None] = []
        replica = Replica(
            create_engine(as_service(demo_url), statement_timeout_ms=10_000), 10, lags.append
        )
        try:
            await replica.check(primary)
            await replica.check(primary)
        finally:
            await primary.dispose()
            await replica.engine.dispose()
        return lags

    assert asyncio.run(observed()) == [0.0, 0.0]  # a plain database: nothing to replay
    observe_replica_lag(None)
    assert REGISTRY.get_sample_value("sinergi_db_replica_lag_seconds") == math.inf
    observe_replica_lag(0.25)
    assert REGISTRY.get_sample_value("sinergi_db_replica_lag_seconds") == 0.25


def test_a_check_that_cannot_tell_the_lag_reports_it_unknown_to_the_metric(
    server_url: str, demo_url: str
) -> None:
    """The gauge kept the last lag a check told while the replica could not be reached, or its
    check failed (or timed out: below): a replica that went away looked current on the scrape
    while every read went to the primary. Such a check reports +Inf, unknown."""

    async def observed(standby_url: str) -> list[float | None]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
        lags: list[float | None] = []
        away = f"postgresql://postgres@127.0.0.1:{free_port()}/sinergi"  # connections refused
        refused = create_engine(away, statement_timeout_ms=10_000, connect_timeout_seconds=1)
        failing = Replica(create_async_engine(async_url(standby_url)), 10, lags.append)
        try:
            await Replica(refused, 10, lags.append).watch(primary)
            await _replayed_at(standby_url, "FFFFFFFF/0")
            await failing.watch(primary)  # replayed everything: current
            await _execute(
                standby_url,  # the check's statement fails: division by zero
                "CREATE OR REPLACE FUNCTION standby.pg_last_wal_replay_lsn() RETURNS pg_lsn"
                " LANGUAGE sql AS $$ SELECT (1 / 0)::text::pg_lsn $$",
            )
            await failing.watch(primary)
        finally:
            await primary.dispose()
            await refused.dispose()
            await failing.engine.dispose()
        return lags

    with _standby(server_url) as standby_url:
        lags = asyncio.run(observed(standby_url))
    assert [lag is None for lag in lags] == [True, False, True], lags


def test_a_check_the_replica_does_not_answer_in_time_leaves_it_unread(
    demo_url: str, server_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A replica that accepts the check's connection but never answers held the check, and the
    replica was read on its last verdict for as long as it hung."""

    async def watched(standby_url: str) -> tuple[bool, bool, float, list[float | None]]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=60_000)
        standby = create_async_engine(async_url(standby_url))  # its search_path the database's
        lags: list[float | None] = []
        replica = Replica(standby, 10, lags.append)
        try:
            await replica.watch(primary)  # replayed everything, at once: current
            before = replica.readable
            await _execute(standby_url, "UPDATE standby.hang SET seconds = 30")
            started = time.monotonic()
            await replica.watch(primary)
            return before, replica.readable, time.monotonic() - started, lags
        finally:
            await primary.dispose()
            await standby.dispose()

    with _standby(server_url) as standby_url:
        run_sql(standby_url, "CREATE TABLE standby.hang AS SELECT 0.0 AS seconds")
        run_sql(
            standby_url,
            "CREATE FUNCTION standby.pg_last_wal_replay_lsn() RETURNS pg_lsn LANGUAGE sql"
            " AS $$ SELECT 'FFFFFFFF/0'::pg_lsn FROM standby.hang, pg_sleep(hang.seconds) $$",
        )
        before, after, took, lags = asyncio.run(watched(standby_url))
    assert (before, after) == (True, False)
    assert [lag is None for lag in lags] == [False, True], lags  # then +Inf: unknown
    assert took < CHECK_TIMEOUT_SECONDS + 1
    said = [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"]
    assert said == ["the replica did not answer its check in 2 s: reading from the primary"]


def test_a_check_kept_waiting_by_a_busy_primary_pool_leaves_the_replica_read(
    demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The check's time bound covered taking the primary's sample on the request pool too: a
    primary busy for the bound had the replica unread, every read moved onto that busy primary,
    and logged as a replica that did not answer. The sample it could not take is skipped."""

    async def watched() -> tuple[bool, bool, float]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000, pool_size=1)
        replica = Replica(create_engine(as_service(demo_url), statement_timeout_ms=10_000), 10)
        try:
            await replica.watch(primary)  # a plain database: current
            before = replica.readable
            async with primary.connect() as held:  # the primary's one pooled connection
                await held.execute(text("SELECT 1"))
                started = time.monotonic()
                await replica.watch(primary)
                took = time.monotonic() - started
            return before, replica.readable, took
        finally:
            await primary.dispose()
            await replica.engine.dispose()

    before, after, took = asyncio.run(watched())
    assert (before, after) == (True, True)
    assert took < 2 * CHECK_TIMEOUT_SECONDS + 1
    assert [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"] == []


def test_a_replica_lagging_past_the_bound_is_not_read_until_it_catches_up(
    server_url: str, demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A standby whose replay is paused kept serving an erased owner, or a record moved out of
    a jurisdiction, to every client whose own writes were not recent."""

    async def watched(standby_url: str) -> list[bool]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
        standby = create_async_engine(async_url(standby_url))  # its search_path the database's
        replica = Replica(standby, max_lag_seconds=3)
        readable = []
        try:
            for paused in (False, True, True, False):
                await _replayed_at(
                    standby_url, await _advanced(server_url) if paused else "FFFFFFFF/0"
                )
                if readable == [True, True]:
                    await asyncio.sleep(3.5)  # past the bound, replay still paused
                await replica.check(primary)
                readable.append(replica.readable)
        finally:
            await primary.dispose()
            await standby.dispose()
        return readable

    with _standby(server_url) as standby_url:
        assert asyncio.run(watched(standby_url)) == [True, True, False, True]
    messages = [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"]
    assert len(messages) == 2, messages
    assert re.fullmatch(
        r"the replica lags more than 3 s \([0-9.]+ s\): reading from the primary", messages[0]
    ), messages
    assert messages[1] == "the replica caught up: reading from it again"


CONFLICT = text(
    "DO $$ BEGIN RAISE EXCEPTION 'canceling statement due to conflict with recovery'"
    " USING ERRCODE = '40001'; END $$"
)


def test_a_read_the_replica_cancels_for_recovery_is_unavailable_and_leaves_it_briefly(
    demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A hot standby cancels a read whose rows replay is about to remove (40001, "conflict
    with recovery"): that was answered INTERNAL, and the next reads went back to it."""

    async def conflicted() -> tuple[BaseException, BaseException, bool]:
        primary = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
        replica = Replica(create_engine(as_service(demo_url), statement_timeout_ms=10_000), 10)
        try:
            await replica.check(primary)  # a plain database: current
            assert replica.readable
            errors = []
            for reads in (Reads(primary, replica), Reads(primary)):
                try:
                    async with reads.connect() as connection:
                        await connection.execute(CONFLICT)
                except Exception as error:
                    errors.append(error)
            return errors[0], errors[1], replica.readable
        finally:
            await primary.dispose()
            await replica.engine.dispose()

    on_replica, on_primary, readable = asyncio.run(conflicted())
    assert isinstance(on_replica, ReplicaConflict)
    assert is_unavailable(on_replica)  # SERVICE_UNAVAILABLE: retried, on the primary
    assert not readable
    assert not is_unavailable(on_primary)  # the primary's own 40001 is no outage
    warnings = [r.getMessage() for r in caplog.records if r.name == "sinergi.replica"]
    assert warnings == [
        "reading from the primary for 5 s: the replica cancelled a read to replay the primary's"
        " changes (conflict with recovery)"
    ]
