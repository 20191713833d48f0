"""A request held up by another transaction's lock is answered as an outage is: 503
SERVICE_UNAVAILABLE with Retry-After, nothing of it applied, so that the client sends it again;
not INTERNAL (a write) or QUERY_TOO_COMPLEX (a read) once the statement timeout has run out. A
write that committed before its answer's read was held up says it was applied instead.
The server's connections wait for a lock half the statement timeout (Settings'
`lock_timeout_ms`), so a lock wait is told apart from a statement slow on its own work."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import asyncpg
import pytest

from sinergi.settings import Settings
from tests.support.http import Api, served

CLIENT = "demo-province-62"
NIB = "9990000000001"
LOOKUP = f'{{ msme(nib: "{NIB}") {{ id version name }} }}'
UPDATE = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { id version }
}
"""
STATEMENT_TIMEOUT_MS = 2_000
T = TypeVar("T")


@pytest.fixture(scope="module")
def quick(api: Api, demo_url: str) -> Iterator[Api]:
    """The app over the demo database (its clients registered by `api`) with a statement timeout
    of two seconds, so a lock wait gives up after one."""
    settings = Settings(rate_limit=1_000_000, statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    assert settings.lock_timeout_ms < STATEMENT_TIMEOUT_MS
    with served(demo_url, settings) as quick:
        yield quick


def _held_up(response: object, waited: float) -> None:
    import httpx

    assert isinstance(response, httpx.Response)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}, error
    assert "held up" in error["message"]
    assert waited < STATEMENT_TIMEOUT_MS / 1000, "answered at the lock timeout"


async def _while_locked(url: str, lock: str, send: Callable[[], T]) -> tuple[T, float]:
    """What `send` answers while another transaction holds what the statement `lock` takes,
    and how long it took, in seconds."""
    holder = await asyncpg.connect(url)
    try:
        async with holder.transaction():
            await holder.execute(lock)
            started = time.monotonic()
            answered = send()
            return answered, time.monotonic() - started
    finally:
        await holder.close()


async def test_a_write_held_up_by_a_row_lock_is_told_to_send_it_again(
    quick: Api, demo_url: str
) -> None:
    """Another transaction holds the record's row: the update waits for it until the lock
    timeout, then is 503 with Retry-After, and nothing of it is stored."""
    record = quick.graphql(LOOKUP, CLIENT)["data"]["msme"]
    variables = {"id": record["id"], "version": record["version"], "changes": {"name": "Antre"}}
    token = quick.token(CLIENT)
    response, waited = await _while_locked(
        demo_url,
        f"SELECT FROM msmes WHERE nib = '{NIB}' FOR UPDATE",
        lambda: quick.post({"query": UPDATE, "variables": variables}, token),
    )
    _held_up(response, waited)
    assert quick.graphql(LOOKUP, CLIENT)["data"]["msme"] == record


async def test_a_read_held_up_by_a_migration_s_lock_is_told_to_send_it_again(
    quick: Api, demo_url: str
) -> None:
    """A migration holds the table ACCESS EXCLUSIVE: a read of it waits until the lock timeout,
    then is 503 with Retry-After, not QUERY_TOO_COMPLEX "ask for less", which asking for less
    would not change."""
    token = quick.token(CLIENT)
    response, waited = await _while_locked(
        demo_url,
        "LOCK TABLE msmes IN ACCESS EXCLUSIVE MODE",
        lambda: quick.post({"query": LOOKUP}, token),
    )
    _held_up(response, waited)
    assert quick.graphql(LOOKUP, CLIENT)["data"]["msme"]["id"]


async def test_a_rate_count_held_up_by_a_lock_is_a_coded_503(api: Api, demo_url: str) -> None:
    """The rate limiter's own write, held up behind another transaction's lock on the shared
    counts, is answered as the outage it is to the client (503 SERVICE_UNAVAILABLE with
    Retry-After, in the JSON errors every other refusal has), never a bare 500."""
    settings = Settings(rate_limit=1_000_000, statement_timeout_ms=STATEMENT_TIMEOUT_MS)
    with served(demo_url, settings) as fresh:  # its first request sends the count at once
        token = fresh.token(CLIENT)
        response, waited = await _while_locked(
            demo_url,
            "LOCK TABLE rate_limit_windows IN ACCESS EXCLUSIVE MODE",
            lambda: fresh.post({"query": LOOKUP}, token),
        )
        _held_up(response, waited)
        assert response.headers.get("X-Request-Id")
        assert fresh.graphql(LOOKUP, CLIENT)["data"]["msme"]["id"]


ADD = """
mutation($input: ParticipationInput!) {
  addParticipation(input: $input) { id role programme { id name } }
}
"""
PROBE = "held-up-probe"
PROBES = "SELECT count(*) FROM participations WHERE role = $1"


async def test_a_committed_write_whose_answer_is_held_up_says_it_was_applied(
    quick: Api, demo_url: str
) -> None:
    """The participation commits, then reading its programme for the answer is held up by a
    migration's lock on programmes: the client is told the change was applied and not to send
    it again (it would add a second participation), never "nothing of this was applied"."""
    import asyncio

    token = quick.token(CLIENT)
    variables = {
        "input": {"programmeId": "PR-MBG", "msmeId": "1", "role": PROBE, "status": "ACTIVE"}
    }
    auditing = await asyncpg.connect(demo_url)
    migrating = await asyncpg.connect(demo_url)
    try:
        before = await auditing.fetchval(PROBES, PROBE)
        audit = auditing.transaction()
        await audit.start()  # the write waits at its audit entry, before its commit
        await auditing.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.audit_log'))")
        body = {"query": ADD, "variables": variables}
        posted = asyncio.create_task(asyncio.to_thread(quick.post, body, token))
        await asyncio.sleep(0.4)
        migration = migrating.transaction()
        await migration.start()
        locking = asyncio.create_task(
            migrating.execute("LOCK TABLE programmes IN ACCESS EXCLUSIVE MODE")
        )
        await asyncio.sleep(0.2)
        await audit.commit()  # the write commits; the migration's lock is granted after it
        await locking
        response = await posted
        await migration.commit()
        assert await auditing.fetchval(PROBES, PROBE) == before + 1
    finally:
        await auditing.execute("DELETE FROM participations WHERE role = $1", PROBE)
        await auditing.close()
        await migrating.close()
    assert response.status_code == 200, response.text
    answer = response.json()
    (error,) = answer["errors"]
    assert error["path"] == ["addParticipation", "programme"], error
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}, error
    assert "nothing" not in error["message"], error
    assert "the change was applied" in error["message"], error
    assert "do not send it again" in error["message"], error


async def test_a_token_request_held_up_is_temporarily_unavailable(
    quick: Api, demo_url: str
) -> None:
    """The client's registration is held up by a migration's lock: RFC 6749's
    `temporarily_unavailable`, 503 with Retry-After, as in an outage, not a bare 500."""
    response, waited = await _while_locked(
        demo_url,
        "LOCK TABLE oauth_clients IN ACCESS EXCLUSIVE MODE",
        lambda: quick.token_response(CLIENT),
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    assert response.json()["error"] == "temporarily_unavailable"
    assert waited < STATEMENT_TIMEOUT_MS / 1000, "answered at the lock timeout"
    assert quick.token(CLIENT)


async def test_a_persisted_query_held_up_is_a_coded_503(quick: Api, demo_url: str) -> None:
    """Looking a document up by its hash is held up by a migration's lock on the registered
    documents: 503 SERVICE_UNAVAILABLE with Retry-After, not a bare 500."""
    token = quick.token(CLIENT)
    body = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "a" * 64}}}
    response, waited = await _while_locked(
        demo_url,
        "LOCK TABLE trusted_documents IN ACCESS EXCLUSIVE MODE",
        lambda: quick.post(body, token),
    )
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"]
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE", error
    assert waited < STATEMENT_TIMEOUT_MS / 1000, "answered at the lock timeout"
