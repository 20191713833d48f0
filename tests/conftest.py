"""Real PostgreSQL for every test: the server at `SINERGI_TEST_DATABASE_URL` when set, otherwise an
embedded server in a temporary directory. Each test session gets a fresh, migrated database.

As in production, each database is owned by an owner role that migrated it, and the app under
test connects as the service role (`tests.support.databases.as_service`), which holds only what
db/roles.py grants. The database fixtures yield the owner's URL, for setting up and inspecting.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from db import embedded, provision
from db.engine import create_engine
from db.migrate import upgrade
from tests.support.databases import (
    TEST_OWNER,
    TEST_PASSWORD,
    TEST_SERVICE,
    as_service,
    create_database,
    drop_database,
    with_database,
)
from tests.support.demo_data import release_figures
from tests.support.http import Api, served

# Settings() defaults SINERGI_HOME (the audit key, the checkpoint file) under XDG_DATA_HOME:
# never the home of whoever runs the tests.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="sinergi-test-home-")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--reversed",
        action="store_true",
        help="run the tests last to first, modules and the tests within each (CI's second "
        "pass): a test that leans on what an earlier one left behind, in its module or "
        "another, passes in file order and fails here",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--reversed"):
        items.reverse()


def _server_url() -> str:
    configured = os.environ.get("SINERGI_TEST_DATABASE_URL")
    if configured:
        return configured
    home = Path(tempfile.mkdtemp(prefix="sinergi-test-"))
    return embedded.start(home, temporary=True)


@pytest.fixture(scope="session", autouse=True)
def _tests_audit_key() -> None:
    """The key under the tests' SINERGI_HOME, which every app they serve holds, in this process
    and the servers they start (tests/support/served.py): made up front, as `sinergi serve`
    makes it before its workers, since an app never makes one (sinergi/audit_key.py)."""
    from sinergi import audit_key
    from sinergi.settings import Settings

    path = Settings().audit_key_path
    if not path.exists():
        audit_key.make(path)


@pytest.fixture(scope="session", autouse=True)
def _demo_secret_accepted() -> Iterator[None]:
    """The suite's apps in this process serve in production mode to demo clients, which hold the
    published demo secret that production refuses (sinergi.app.refused_secret): here they
    accept it. tests/test_demo_secret_refused.py serves the refusal itself; the servers tests
    start in a process of their own accept it as `serve --dev` does (tests/support/served.py)."""
    from sinergi import app

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "refused_secret", lambda settings: None)
        yield


@pytest.fixture(scope="session")
def server_url() -> str:
    """A superuser URL of the server the tests run against."""
    return _server_url()


@pytest.fixture(scope="session")
def migrated_template(server_url: str) -> Iterator[str]:
    """The name of a database migrated to head once per session, never connected to again: each
    test database is a copy of it (`CREATE DATABASE … TEMPLATE`, a fraction of a second where
    running the migrations takes over one, and some 250 tests each want a database of their
    own). Migrations themselves are tested from an empty database (tests/test_migrations.py)."""
    name = f"sinergi_template_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(
            provision.ensure_database(
                server_url, name, owner=TEST_OWNER, service=TEST_SERVICE, password=TEST_PASSWORD
            )
        )
        upgrade(
            provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD),
            service_role=TEST_SERVICE,
        )
        yield name
    finally:
        asyncio.run(drop_database(server_url, name))


async def _copy(server_url: str, template: str, name: str) -> None:
    """Database `name`, a copy of `template` owned by the owner role, with an audit trail id of
    its own: migration 0041 draws one at random, and a copy carries its template's, so two test
    databases would pass for one trail cut in two (their checkpoints would apply to each other)."""
    await create_database(server_url, name, template=template, owner=TEST_OWNER)
    connection = await asyncpg.connect(with_database(server_url, name))
    try:
        # The trail's id is written once (a trigger refuses any change): this superuser session
        # skips the trigger, as a fresh migration would never need to.
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("UPDATE audit_trail SET id = gen_random_uuid()")
    finally:
        await connection.close()


@contextmanager
def _migrated_database(server_url: str, template: str, prefix: str) -> Iterator[str]:
    """A new database on the test server, migrated to head (a copy of `template`), owned by the
    owner role, its service role granted; dropped afterwards. Yields the owner's URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_copy(server_url, template, name))
        yield provision.with_role(server_url, TEST_OWNER, name, TEST_PASSWORD)
    finally:
        asyncio.run(drop_database(server_url, name))


@pytest.fixture(scope="session")
def migrated_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A URL of a fresh database, migrated to head, dropped when the session ends."""
    with _migrated_database(server_url, migrated_template, "sinergi_test") as url:
        yield url


@pytest.fixture
def fresh_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A migrated database of the test's own, for tests that need what no other test has
    touched (no signing key yet, reference data to rename)."""
    with _migrated_database(server_url, migrated_template, "sinergi_fresh") as url:
        yield url


@pytest.fixture
def other_fresh_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """Another such database: a second deployment's, beside `fresh_url`'s."""
    with _migrated_database(server_url, migrated_template, "sinergi_fresh") as url:
        yield url


@pytest.fixture(scope="session")
def demo_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A separate database holding the demo data set (small population), shared read-only."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.engine import async_url
    from sinergi import demo

    async def load(url: str) -> None:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as connection:
            await demo.load(connection, msmes=600, seed=7)
        await engine.dispose()

    with _migrated_database(server_url, migrated_template, "sinergi_demo") as url:
        asyncio.run(load(url))
        release_figures(url)
        yield url


@pytest.fixture(scope="session")
def api(demo_url: str) -> Iterator[Api]:
    """The app in production mode over the demo database, as the service role, with the demo
    clients registered."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.engine import async_url
    from sinergi.demo_mode import register_demo_clients

    async def register() -> None:
        engine = create_async_engine(async_url(demo_url))
        await register_demo_clients(engine)
        await engine.dispose()

    asyncio.run(register())
    with served(demo_url) as served_api:
        yield served_api


def _load_reference(url: str) -> None:
    """The reference data, and the tests' audit key recorded as the first `serve` records it:
    `sinergi import` signs with the servers' key and refuses before one was recorded."""
    from sqlalchemy.ext.asyncio import create_async_engine

    from db.engine import async_url
    from db.seed import load_reference
    from sinergi import audit_key
    from sinergi.demo import SEED_DATA
    from sinergi.settings import Settings
    from tests.support.databases import as_service

    async def load() -> None:
        engine = create_async_engine(async_url(url))
        async with engine.begin() as connection:
            await load_reference(connection, SEED_DATA, targets=False)
        await engine.dispose()
        await audit_key.for_database(Settings(), as_service(url), check=True)

    asyncio.run(load())


@pytest.fixture(scope="session")
def reference_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """A fresh database holding only the reference data (regions, KBLI, programmes), for tests
    that write records and must not disturb the shared demo data."""
    with _migrated_database(server_url, migrated_template, "sinergi_ref") as url:
        _load_reference(url)
        yield url


@pytest.fixture(scope="module")
async def engine(reference_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on `reference_url` as the service role, as the app connects (a module that
    wants another statement timeout, or database, defines its own)."""
    engine = create_engine(as_service(reference_url), statement_timeout_ms=30_000)
    yield engine
    await engine.dispose()


@pytest.fixture
def own_reference_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """As `module_reference_url`, but the test's own: for a test whose premise is what no other
    test has written (a cell that holds one record), whatever ran before it in its module."""
    with _migrated_database(server_url, migrated_template, "sinergi_own") as url:
        _load_reference(url)
        yield url


@pytest.fixture(scope="module")
def module_reference_url(server_url: str, migrated_template: str) -> Iterator[str]:
    """As `reference_url`, but the test module's own: for tests that write records behind the
    API's back (raw SQL, without their history), which other modules' tests must not meet."""
    with _migrated_database(server_url, migrated_template, "sinergi_mod") as url:
        _load_reference(url)
        yield url
