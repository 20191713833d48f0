"""`/readyz` is unauthenticated: a flood of probes must not take the pool from real queries."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import asyncpg
import httpx
import pytest

from sinergi import app as sinergi_app
from sinergi.settings import Settings
from tests.support.http import served

PROBES = 64


def test_a_flood_of_readiness_probes_asks_the_database_about_once_a_second(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = 0
    check = sinergi_app.is_current

    async def counted(*arguments: object) -> bool:
        nonlocal checks
        checks += 1
        await asyncio.sleep(0.2)  # a slow database: the probes overlap the check
        return await check(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(sinergi_app, "is_current", counted)
    with served(migrated_url) as api:

        def probe(_: int) -> httpx.Response:
            return api.client.get("/readyz")

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(probe, range(PROBES)))
        elapsed = time.monotonic() - started
        assert {(a.status_code, a.text) for a in answers} == {(200, '{"status":"ready"}')}
        # One check, and another for each time the answer went stale while the probes ran.
        assert 1 <= checks <= 1 + int(elapsed / sinergi_app.READINESS_SECONDS) + 1, checks

        before = checks
        time.sleep(sinergi_app.READINESS_SECONDS + 0.1)
        assert probe(0).status_code == 200
        assert checks == before + 1, "a stale answer is checked again"


@contextmanager
def _locked(url: str, table: str) -> Iterator[None]:
    """`table` held ACCESS EXCLUSIVE by another connection (as a migration holds it) until the
    block ends."""
    locked, release = threading.Event(), threading.Event()

    async def hold() -> None:
        connection = await asyncpg.connect(url)
        try:
            async with connection.transaction():
                await connection.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
                locked.set()
                await asyncio.get_running_loop().run_in_executor(None, release.wait)
        finally:
            await connection.close()

    holder = threading.Thread(target=asyncio.run, args=(hold(),))
    holder.start()
    try:
        assert locked.wait(30)
        yield
    finally:
        release.set()
        holder.join()


def test_a_readiness_check_held_up_is_answered_not_ready_within_its_bound(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With SINERGI_STATEMENT_TIMEOUT_MS=0 nothing bounded the check's query: held up by a lock
    on alembic_version it kept `/readyz`, and every probe after it, waiting for as long as the
    lock was held. The check has READINESS_TIMEOUT_SECONDS of its own (shortened here), then
    answers not ready; once the lock goes the next check finds the database ready again."""
    monkeypatch.setattr(sinergi_app, "READINESS_TIMEOUT_SECONDS", 0.5)
    settings = Settings(rate_limit=1_000_000, statement_timeout_ms=0)
    with served(migrated_url, settings) as api, ThreadPoolExecutor(1) as pool:
        with _locked(migrated_url, "alembic_version"):
            started = time.monotonic()
            answer = pool.submit(api.client.get, "/readyz").result(timeout=10)
            assert time.monotonic() - started < 5
            assert answer.status_code == 503
            assert answer.json() == {"status": "unavailable", "database": "no answer within 0.5 s"}
        time.sleep(sinergi_app.READINESS_SECONDS + 0.1)
        assert api.client.get("/readyz").json() == {"status": "ready"}
