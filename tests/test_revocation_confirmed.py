"""`sinergi clients revoke` returns once every server process has forgotten the client, so a
request made after it returns is refused everywhere; a process that does not confirm in time is
named as a shortfall, with exit code 3 (sinergi/cli_auth.py, db/notifications.py `confirm`).

Two real server processes over the module's own database, as the service role; the command runs
as the owner, which sees the service's listeners in pg_stat_activity."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import httpx
import pytest

from auth import registry
from db.notifications import CONFIRM, LISTENER_NAME, Confirmation
from sinergi.cli_auth import NOT_CONFIRMED
from tests.support.cli import sinergi
from tests.support.clients import listeners
from tests.support.databases import as_service
from tests.support.served import served_process

SERVERS = 2


def _cli(url: str, *argv: str, timeout: int = 10) -> tuple[int, str, str]:
    return sinergi(url, *argv, env={"SINERGI_REVOKE_TIMEOUT": str(timeout)})


def _listeners(url: str) -> int:
    return asyncio.run(listeners(url))


@pytest.fixture(scope="module")
def servers(module_reference_url: str) -> Iterator[list[tuple[str, subprocess.Popen[bytes]]]]:
    """Two uvicorn processes, each listening (a server answers before its listener listens)."""
    service = as_service(module_reference_url)
    with (
        served_process(service, "production") as first,  # makes the signing key
        served_process(service, "production") as second,
    ):
        deadline = time.monotonic() + 30
        while _listeners(module_reference_url) < SERVERS:
            assert time.monotonic() < deadline, "the servers' listeners never listened"
            time.sleep(0.1)
        yield [first, second]


def _client(url: str, servers: list[tuple[str, subprocess.Popen[bytes]]]) -> tuple[str, str]:
    """A new client, held by every process (each answered it once); its id and secret."""
    code, out, _ = _cli(
        url, "clients", "create", "--name", "Dinas Uji", "--org-kind", "ministry",
        "--jurisdiction", "ID", "--purpose", "testing revocation", "--json",
    )  # fmt: skip
    assert code == 0
    created = json.loads(out)
    for base, _ in servers:
        assert _ask(base, _token(base, created["client_id"], created["client_secret"])) == 200
    return created["client_id"], created["client_secret"]


def _token(base: str, client_id: str, secret: str) -> str:
    issued = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, secret)
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def _ask(base: str, token: str) -> int:
    answer = httpx.post(
        f"{base}/graphql",
        json={"query": "{ viewer { clientId } }"},
        headers={"Authorization": f"Bearer {token}"},
    )
    return answer.status_code


def _revoked(url: str, client_id: str) -> bool:
    code, out, _ = _cli(url, "clients", "show", client_id, "--json")
    assert code == 0
    return bool(json.loads(out)["revoked"])


def test_revoke_returns_once_every_process_confirmed_it(
    servers: list[tuple[str, subprocess.Popen[bytes]]], module_reference_url: str
) -> None:
    client_id, secret = _client(module_reference_url, servers)
    token = _token(servers[0][0], client_id, secret)
    code, out, err = _cli(module_reference_url, "clients", "revoke", client_id)
    assert (code, err) == (0, "")
    assert out == f"revoked {client_id}: all 2 server processes confirmed they refuse its tokens\n"
    assert [_ask(base, token) for base, _ in servers] == [401, 401]


def test_revoke_waits_for_a_stopped_process_to_apply_it(
    servers: list[tuple[str, subprocess.Popen[bytes]]], module_reference_url: str
) -> None:
    """A process stopped (SIGSTOP) holds the registration it read and cannot apply the
    revocation: the command does not return until it has."""
    client_id, secret = _client(module_reference_url, servers)
    token = _token(servers[0][0], client_id, secret)
    stopped = servers[1][1]
    env = {**os.environ, "DATABASE_URL": module_reference_url, "SINERGI_REVOKE_TIMEOUT": "60"}
    os.kill(stopped.pid, signal.SIGSTOP)
    try:
        revoking = subprocess.Popen(
            [sys.executable, "-m", "sinergi.cli", "clients", "revoke", client_id, "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        while not _revoked(module_reference_url, client_id):  # committed: now it only waits
            assert time.monotonic() < deadline, "the revocation never committed"
            time.sleep(0.1)
        time.sleep(1)
        assert revoking.poll() is None, "returned while a process had not applied it"
    finally:
        os.kill(stopped.pid, signal.SIGCONT)
    out, err = revoking.communicate(timeout=30)
    assert (revoking.returncode, err) == (0, "")
    assert json.loads(out) == {
        "client_id": client_id,
        "revoked": True,
        "listening": 2,
        "confirmed": 2,
    }
    assert [_ask(base, token) for base, _ in servers] == [401, 401]


@contextlib.asynccontextmanager
async def _deaf_listener(url: str) -> AsyncIterator[None]:
    """A session named as a listener, hearing confirmation requests, that never acknowledges:
    a process stuck while its connection stays open."""
    connection = await asyncpg.connect(url, server_settings={"application_name": LISTENER_NAME})
    try:
        await connection.execute(f"LISTEN {CONFIRM}")
        yield
    finally:
        await connection.close()
        for _ in range(100):  # its session ends a moment later: gone before the next test
            if await listeners(url) <= SERVERS:
                break
            await asyncio.sleep(0.05)


def test_a_process_that_does_not_confirm_is_reported_and_fails_the_command(
    servers: list[tuple[str, subprocess.Popen[bytes]]], module_reference_url: str
) -> None:
    client_id, secret = _client(module_reference_url, servers)
    token = _token(servers[0][0], client_id, secret)

    async def revoke() -> tuple[int, str, str, float]:
        async with _deaf_listener(as_service(module_reference_url)):
            started = time.monotonic()
            revoking = asyncio.to_thread(
                _cli, module_reference_url, "clients", "revoke", client_id, timeout=1
            )
            code, out, err = await revoking
            return code, out, err, time.monotonic() - started

    code, out, err, seconds = asyncio.run(revoke())
    assert (code, out) == (3, "")
    assert err.startswith(
        f"sinergi: revoked {client_id}, but only 2 of 3 server processes confirmed within 1 s"
    )
    assert 1 <= seconds < 10
    assert [_ask(base, token) for base, _ in servers] == [401, 401]  # the real ones did apply it


def test_with_no_server_running_revoke_returns_at_once(fresh_url: str) -> None:
    code, out, _ = _cli(
        fresh_url, "clients", "create", "--name", "Dinas Uji", "--org-kind", "ministry",
        "--jurisdiction", "ID", "--purpose", "testing revocation", "--json",
    )  # fmt: skip
    client_id = json.loads(out)["client_id"]
    started = time.monotonic()
    code, out, err = _cli(fresh_url, "clients", "revoke", client_id, timeout=60)
    assert (code, err) == (0, "")
    assert out == f"revoked {client_id}: no server process is listening, so none holds it\n"
    assert time.monotonic() - started < 30


def test_a_rotated_secret_is_refused_by_every_process_when_rotate_returns(
    servers: list[tuple[str, subprocess.Popen[bytes]]], module_reference_url: str
) -> None:
    """No process holds a secret or what it proved: the token endpoint reads the secret's
    hash for each request, so `rotate` needs no confirmation to stop the old secret at once."""
    client_id, old = _client(module_reference_url, servers)
    code, out, _ = _cli(module_reference_url, "clients", "rotate", client_id, "--json")
    assert code == 0
    new = json.loads(out)["client_secret"]
    for base, _ in servers:
        refused = httpx.post(
            f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=(client_id, old)
        )
        assert refused.status_code == 401
        assert _ask(base, _token(base, client_id, new)) == 200


def test_revoke_that_cannot_ask_for_confirmation_says_so_and_fails(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL gone between the commit and the question: the revocation stands, and the
    operator learns that no process confirmed it, not a traceback."""
    code, out, _ = _cli(
        fresh_url, "clients", "create", "--name", "Dinas Uji", "--org-kind", "ministry",
        "--jurisdiction", "ID", "--purpose", "testing revocation", "--json",
    )  # fmt: skip
    client_id = json.loads(out)["client_id"]

    async def unreachable(*_: object, **__: object) -> None:
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(registry, "forgotten", unreachable)
    code, out, err = _cli(fresh_url, "clients", "revoke", client_id)
    assert (code, out) == (NOT_CONFIRMED, "")
    assert f"revoked {client_id}, but could not ask the server processes" in err
    assert "connection refused" in err
    assert _revoked(fresh_url, client_id)


def test_one_server_process_is_counted_in_the_singular(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "all 1 server processes confirmed they refuse" read as a slip: one process is one."""

    def create() -> str:
        code, out, _ = _cli(
            fresh_url, "clients", "create", "--name", "Dinas Uji", "--org-kind", "ministry",
            "--jurisdiction", "ID", "--purpose", "testing revocation", "--json",
        )  # fmt: skip
        assert code == 0
        return str(json.loads(out)["client_id"])

    # A lone process that does not confirm: a real listener, deaf.
    client_id = create()

    async def revoke() -> tuple[int, str, str]:
        async with _deaf_listener(as_service(fresh_url)):
            return await asyncio.to_thread(
                _cli, fresh_url, "clients", "revoke", client_id, timeout=1
            )

    code, out, err = asyncio.run(revoke())
    assert (code, out) == (NOT_CONFIRMED, "")
    assert err.startswith(
        f"sinergi: revoked {client_id}, but only 0 of 1 server process confirmed within 1 s"
    )

    # A lone process that confirms.
    async def one_confirmed(*_: object, **__: object) -> Confirmation:
        return Confirmation(listening=1, confirmed=1)

    monkeypatch.setattr(registry, "forgotten", one_confirmed)
    client_id = create()
    code, out, err = _cli(fresh_url, "clients", "revoke", client_id)
    assert (code, err) == (0, "")
    assert out == (
        f"revoked {client_id}: the one server process listening confirmed it refuses its tokens\n"
    )
