"""Sealing stopped by an insider holding the sealing lock does not go unnoticed.

A `serve` process only tries the sealing lock, and leaves sealing to whoever holds it. Any role
may take that advisory lock, the service's own too, and hold it: nothing was sealed, nothing said
so, and `sinergi audit verify` passed, reporting the entries written meanwhile as "written since
the last seal", which the owner could then delete unnoticed. Here the service's role holds the
lock on a connection of its own: the sealer logs and counts the stall, and `audit verify` fails
naming the oldest entry left unsealed, until whoever holds the lock lets go.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from unittest import mock

import asyncpg
import pytest
from prometheus_client import REGISTRY

from db.engine import create_engine
from sinergi.audit_sealer import AuditSealer
from sinergi.cli import main
from tests.support.audit_trail import written
from tests.support.databases import TEST_SERVICE, as_service, run

KEY = secrets.token_bytes(32)
STALLS = "sinergi_audit_seal_stalls_total"
SEALED = 3
WAITING = 2


@contextlib.asynccontextmanager
async def _lock_held_by_the_service(url: str) -> AsyncIterator[None]:
    """The sealing lock, held by the service's role on a connection of its own, as any holder
    of its credentials may."""
    connection = await asyncpg.connect(as_service(url))
    try:
        await connection.execute("SELECT pg_advisory_lock(hashtext('sinergi.audit_seals'))")
        yield
    finally:
        await connection.close()


async def _seal_round(url: str, checkpoints: Path) -> None:
    """One sealing round of a `serve` process sealing every second, that calls sealing stalled
    once an entry has waited a second."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        await AuditSealer(engine, KEY, checkpoints, 1, unsealed_intervals=1).publish()
    finally:
        await engine.dispose()


def _verify(url: str, checkpoints: Path, *options: str) -> tuple[int, str]:
    """`sinergi audit verify` as an operator runs it beside a server sealing every second (in
    a thread of its own when the test's event loop runs: the command runs one)."""
    out = io.StringIO()
    env = {
        "DATABASE_URL": as_service(url),
        "SINERGI_AUDIT_KEY": KEY.hex(),
        "SINERGI_AUDIT_CHECKPOINTS": str(checkpoints),
        "SINERGI_AUDIT_SEAL_SECONDS": "1",
        "SINERGI_AUDIT_UNSEALED_INTERVALS": "1",
    }
    with mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out):
        returncode = main(["audit", "verify", *options])
    return returncode, out.getvalue()


def test_sealing_held_off_by_the_service_role_is_logged_counted_and_fails_verify(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    asyncio.run(written(fresh_url, KEY, SEALED))
    asyncio.run(_seal_round(fresh_url, checkpoints))
    stalls = REGISTRY.get_sample_value(STALLS) or 0.0

    async def held_off() -> None:
        async with _lock_held_by_the_service(fresh_url):
            await written(fresh_url, KEY, WAITING)
            # Just written: the lock's holder may be sealing them as we speak.
            await _seal_round(fresh_url, checkpoints)
            assert REGISTRY.get_sample_value(STALLS) == stalls
            assert (await asyncio.to_thread(_verify, fresh_url, checkpoints))[0] == 0
            await asyncio.sleep(1.5)  # longer than sealing ever takes
            with caplog.at_level("ERROR", logger="sinergi.audit"):
                await _seal_round(fresh_url, checkpoints)
            assert REGISTRY.get_sample_value(STALLS) == stalls + 1
            assert f"audit entry {SEALED + 1} has waited" in caplog.text
            assert "holds the sealing lock without sealing" in caplog.text

            returncode, printed = await asyncio.to_thread(_verify, fresh_url, checkpoints)
            assert returncode == 1, printed
            assert f"audit trail not being sealed: entry {SEALED + 1}, the oldest" in printed
            assert "past the bound of 1 s" in printed
            # A system no server runs is verified as it stands: nothing seals it.
            returncode, printed = await asyncio.to_thread(
                _verify, fresh_url, checkpoints, "--stopped"
            )
            assert returncode == 0, printed
            assert f"{SEALED} sealed ({WAITING} written since the last seal)" in printed

    asyncio.run(held_off())
    # The lock let go, the next round seals what waited.
    asyncio.run(_seal_round(fresh_url, checkpoints))
    returncode, printed = _verify(fresh_url, checkpoints)
    assert returncode == 0, printed
    assert f"{SEALED + WAITING} sealed (0 written since" in printed


FAILURES = "sinergi_audit_seal_failures_total"


def test_sealing_that_fails_with_the_database_there_is_an_error_counted_and_a_stall(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A round that fails for any reason but the database being away (here the service's
    role cannot write seals, as a grant taken back by hand leaves it; once, a MAC beyond
    ASCII) will fail every round: it is an error, counted, and once an entry has waited past
    the bound, a stall. It was logged as a warning, the database unavailable, and nothing else
    showed it."""
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    asyncio.run(written(fresh_url, KEY, SEALED))
    asyncio.run(_seal_round(fresh_url, checkpoints))
    run(fresh_url, f"REVOKE INSERT ON audit_seals FROM {TEST_SERVICE}")
    asyncio.run(written(fresh_url, KEY, WAITING))
    failures = REGISTRY.get_sample_value(FAILURES) or 0.0
    stalls = REGISTRY.get_sample_value(STALLS) or 0.0
    with caplog.at_level("WARNING", logger="sinergi.audit"):
        asyncio.run(_seal_round(fresh_url, checkpoints))
    assert REGISTRY.get_sample_value(FAILURES) == failures + 1
    assert REGISTRY.get_sample_value(STALLS) == stalls  # just written: not stalled yet
    (failed,) = [record for record in caplog.records if "sealing" in record.getMessage()]
    assert failed.levelname == "ERROR"
    assert "sealing the audit trail failed: [SQLSTATE 42501]" in failed.getMessage()
    assert "could not seal the audit trail" not in caplog.text

    caplog.clear()
    time.sleep(1.5)  # longer than sealing ever takes
    with caplog.at_level("ERROR", logger="sinergi.audit"):
        asyncio.run(_seal_round(fresh_url, checkpoints))
    assert REGISTRY.get_sample_value(FAILURES) == failures + 2
    assert REGISTRY.get_sample_value(STALLS) == stalls + 1
    assert f"audit entry {SEALED + 1} has waited" in caplog.text
    assert "while sealing fails" in caplog.text

    run(fresh_url, f"GRANT INSERT ON audit_seals TO {TEST_SERVICE}")
    asyncio.run(_seal_round(fresh_url, checkpoints))
    returncode, printed = _verify(fresh_url, checkpoints)
    assert returncode == 0, printed
    assert f"{SEALED + WAITING} sealed (0 written since" in printed


_TERMINATE_THE_SEALER = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
    " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
"""The sealer's connection, among this database's: another database's sessions on the same
server (another test run's) are not this attack's, and belong to roles it may not signal."""


def test_sealing_whose_connection_the_service_role_ends_is_an_error_counted_and_a_stall(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever holds the service role's credentials may end the sealer's connection (the one
    holding the advisory sealing lock) with `pg_terminate_backend`, every round: each round then
    failed with "terminating connection due to administrator command", as in an outage, and was
    only the warning, no failure counted and no stall ever, while the entries waited unsealed.
    The database still answers: each such round is an error, counted, and past the bound a
    stall."""
    asyncio.run(written(fresh_url, KEY, SEALED))
    asyncio.run(_seal_round(fresh_url, tmp_path / "audit-checkpoints.jsonl"))
    failures = REGISTRY.get_sample_value(FAILURES) or 0.0
    stalls = REGISTRY.get_sample_value(STALLS) or 0.0

    async def sealing_under_attack() -> int:
        await written(fresh_url, KEY, WAITING)
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000, pool_size=1)
        sealer = AuditSealer(  # a round every 0.2 s; an entry stalls after 1 s
            engine, KEY, tmp_path / "audit-checkpoints.jsonl", 0.2
        )
        attacker = await asyncpg.connect(as_service(fresh_url))
        stop = asyncio.Event()
        killed = 0

        async def attack() -> None:
            nonlocal killed
            while not stop.is_set():
                killed += await attacker.fetchval(_TERMINATE_THE_SEALER)

        attacking = asyncio.create_task(attack())
        try:
            started = time.monotonic()
            while time.monotonic() - started < 2.5:
                await sealer.publish()
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await attacking
            await attacker.close()
            await engine.dispose()
        return killed

    with caplog.at_level("WARNING", logger="sinergi.audit"):
        killed = asyncio.run(sealing_under_attack())
    assert killed > 0
    assert REGISTRY.get_sample_value(FAILURES) > failures  # type: ignore[operator]
    assert REGISTRY.get_sample_value(STALLS) > stalls  # type: ignore[operator]
    assert "sealing the audit trail failed" in caplog.text
    assert f"audit entry {SEALED + 1} has waited" in caplog.text
    assert "could not seal the audit trail" not in caplog.text


def test_sealing_while_the_database_does_not_answer_is_a_warning_only(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An outage is waited out: the round says so, and counts no failure and no stall."""
    failures = REGISTRY.get_sample_value(FAILURES) or 0.0
    stalls = REGISTRY.get_sample_value(STALLS) or 0.0

    async def round_with_no_database() -> None:  # nothing listens on port 1
        engine = create_engine(
            "postgresql://nobody@127.0.0.1:1/none", statement_timeout_ms=1_000, pool_size=1
        )
        try:
            await AuditSealer(engine, KEY, tmp_path / "audit-checkpoints.jsonl", 0.2).publish()
        finally:
            await engine.dispose()

    with caplog.at_level("WARNING", logger="sinergi.audit"):
        asyncio.run(round_with_no_database())
    assert (REGISTRY.get_sample_value(FAILURES) or 0.0) == failures
    assert (REGISTRY.get_sample_value(STALLS) or 0.0) == stalls
    assert [record.levelname for record in caplog.records] == ["WARNING"]
    assert "could not seal the audit trail" in caplog.text


def test_rounds_that_all_read_as_the_database_away_are_a_stall_past_the_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outage check runs on a connection of its own, which whoever holds the service's
    credentials can end as well, so that every round reads as the database being away: a
    warning each, and nothing counted, for good. Past the bound an entry may wait, rounds that
    never finish are a stall whatever their errors say (here, nothing listens at all)."""
    stalls = REGISTRY.get_sample_value(STALLS) or 0.0

    async def rounds_with_no_database() -> None:
        engine = create_engine(
            "postgresql://nobody@127.0.0.1:1/none", statement_timeout_ms=1_000, pool_size=1
        )
        sealer = AuditSealer(
            engine, KEY, tmp_path / "audit-checkpoints.jsonl", 0.1, unsealed_intervals=2
        )
        try:
            await sealer.publish()
            assert (REGISTRY.get_sample_value(STALLS) or 0.0) == stalls  # within the bound
            await asyncio.sleep(0.3)
            await sealer.publish()
        finally:
            await engine.dispose()

    with caplog.at_level("WARNING", logger="sinergi.audit"):
        asyncio.run(rounds_with_no_database())
    assert (REGISTRY.get_sample_value(STALLS) or 0.0) == stalls + 1
    assert "no sealing round has finished for" in caplog.text
