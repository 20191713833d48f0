"""Subscriptions over a WebSocket (graphql-transport-ws) against a live server: a change reaches
a subscribed client as it commits, a client resumes from its cursor after a disconnect, the
token is required, and a revoked client's subscription ends."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import httpx
import pytest
import websockets
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from auth import keys, tokens
from db.engine import async_url
from resolvers.change_feed import FINANCES_IN_RECORD
from resolvers.context import Context
from schema.query_limits import QueryLimits
from sinergi.app import create_app
from sinergi.cli import main
from sinergi.settings import Settings
from tests.support.clients import registered
from tests.support.databases import as_service
from tests.support.minted import minted
from tests.support.served import served

SUBSCRIBE = """
subscription($after: String) {
  msmeChanges(after: $after) { entries { id change record } endCursor }
}
"""
PROTOCOL = websockets.Subprotocol("graphql-transport-ws")


def _client(url: str, name: str) -> tuple[str, str]:
    return registered(url, name, purpose="change feed test", scopes="records:read pii:read")


@pytest.fixture(scope="module")
def live(module_reference_url: str) -> Iterator[str]:
    with served(module_reference_url, "production") as base:
        yield base


def _token(base: str, client: tuple[str, str]) -> str:
    issued = httpx.post(
        f"{base}/oauth/token", data={"grant_type": "client_credentials"}, auth=client
    )
    assert issued.status_code == 200, issued.text
    return str(issued.json()["access_token"])


def _head(base: str, token: str) -> str:
    after = None
    while True:
        answer = httpx.post(
            f"{base}/graphql",
            json={
                "query": "query($after: String) { msmeChanges(after: $after, first: 1000)"
                " { endCursor hasMore } }",
                "variables": {"after": after},
            },
            headers={"Authorization": f"Bearer {token}"},
        ).json()
        page = answer["data"]["msmeChanges"]
        after = page["endCursor"]
        if not page["hasMore"]:
            return str(after)


async def _sql(url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(statement, *args)
    finally:
        await connection.close()


def _delivery_audited(url: str, client: tuple[str, str]) -> dict[str, Any]:
    """The audit entry of the client's one delivery, and the data subjects it names."""
    found = asyncio.run(
        _sql(
            url,
            "SELECT json_build_object('entry', entry, 'subjects', subjects) FROM audit_log"
            " WHERE client_id = $1 AND entry -> 'fields' ? 'Subscription.msmeChanges'",
            client[0],
        )
    )
    return dict(json.loads(found))


async def _enter_owner(url: str, msme_id: int, nik: str) -> None:
    await _sql(
        url,
        "INSERT INTO msme_owners (msme_id, nik, full_name) VALUES ($1, $2, 'Sri Uji')",
        msme_id,
        nik,
    )


async def _first_entry(live: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The one entry of the first page a subscription sent with `payload` delivers."""
    async with _connected(live, token) as socket:
        await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        message = await _receive(socket)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        (entry,) = message["payload"]["data"]["msmeChanges"]["entries"]
        return dict(entry)


async def _new_msme(url: str, nib: str) -> int:
    created: int = await _sql(
        url,
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) VALUES ($1, 'Uji langganan', '10794', 'C', 'micro', '62', '62.71')"
        " RETURNING id",
        nib,
    )
    return created


async def _receive(socket: Any, seconds: float = 10) -> dict[str, Any]:
    """The next message, which must come as a text frame: a browser's graphql-ws client parses
    only those (a binary frame reaches it as a Blob, and it closes the connection)."""
    frame = await asyncio.wait_for(socket.recv(), seconds)
    assert isinstance(frame, str), f"a binary frame: {frame!r}"
    message: dict[str, Any] = json.loads(frame)
    return message


def _subscribe(message_id: str, after: str | None) -> str:
    payload = {"query": SUBSCRIBE, "variables": {"after": after}}
    return json.dumps({"id": message_id, "type": "subscribe", "payload": payload})


@contextlib.asynccontextmanager
async def _connected(base: str, token: str | None) -> Any:
    """An acknowledged connection, with no subscription yet."""
    uri = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(uri, subprotocols=[PROTOCOL]) as socket:
        payload = {} if token is None else {"Authorization": f"Bearer {token}"}
        await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
        assert (await _receive(socket))["type"] == "connection_ack"
        yield socket


@contextlib.asynccontextmanager
async def _subscribed(base: str, token: str | None, after: str | None) -> Any:
    async with _connected(base, token) as socket:
        await socket.send(_subscribe("1", after))
        yield socket


def test_a_change_reaches_a_subscriber_and_a_resumed_one_gets_what_it_missed(
    live: str, module_reference_url: str
) -> None:
    client = _client(module_reference_url, "Langganan")
    token = _token(live, client)
    start = _head(live, token)

    async def scenario() -> None:
        async with _subscribed(live, token, start) as socket:
            created = await _new_msme(module_reference_url, "9992300000001")
            message = await _receive(socket)
            assert message["type"] == "next", message
            page = message["payload"]["data"]["msmeChanges"]
            assert [(entry["id"], entry["change"]) for entry in page["entries"]] == [
                (str(created), "CREATED")
            ]
            assert page["entries"][0]["record"]["owner"] is None
            cursor = page["endCursor"]
        # Disconnected: a change commits; the client comes back with its cursor.
        await _sql(module_reference_url, "UPDATE msmes SET employees = 5 WHERE id = $1", created)
        async with _subscribed(live, token, cursor) as socket:
            message = await _receive(socket)
            page = message["payload"]["data"]["msmeChanges"]
            assert [(entry["id"], entry["change"]) for entry in page["entries"]] == [
                (str(created), "UPDATED")
            ]
            assert page["entries"][0]["record"]["employees"] == 5

    asyncio.run(scenario())
    # Each delivery is audited as a read of the records it carried.
    entries = asyncio.run(
        _sql(
            module_reference_url,
            "SELECT json_agg(entry ORDER BY seq) FROM audit_log WHERE client_id = $1"
            " AND entry -> 'fields' ? 'Subscription.msmeChanges'",
            client[0],
        )
    )
    assert [entry["records"] for entry in json.loads(entries)] == [{"msme": 1}, {"msme": 1}]


def test_a_delivery_handing_out_an_owner_itemises_the_owners_personal_fields(
    live: str, module_reference_url: str
) -> None:
    """The owner travels inside `record`, which no `pii:read` guard sits above: each delivery's
    audit entry still itemises the owner's personal fields it carried, and names the owner."""
    client = _client(module_reference_url, "Langganan pemilik")
    token = _token(live, client)
    created = asyncio.run(_new_msme(module_reference_url, "9992300000007"))
    start = _head(live, token)
    nik = "6271015204880007"

    async def scenario() -> dict[str, Any]:
        async with _subscribed(live, token, start) as socket:
            await _enter_owner(module_reference_url, created, nik)
            message = await _receive(socket)
            assert message["type"] == "next", message
            (entry,) = message["payload"]["data"]["msmeChanges"]["entries"]
            owner: dict[str, Any] = entry["record"]["owner"]
            return owner

    owner = asyncio.run(scenario())
    assert owner["nik"] == nik
    delivery = _delivery_audited(module_reference_url, client)
    assert delivery["subjects"] == [nik]
    personal = sorted({*(f"Owner.{name}" for name in owner), *FINANCES_IN_RECORD["msme"]})
    assert delivery["entry"]["personalFields"] == personal
    touched = {"Subscription.msmeChanges", "ChangeEntry.record", *personal}
    assert touched <= set(delivery["entry"]["touched"])


def test_a_delivery_without_record_names_no_data_subject_and_no_personal_field(
    live: str, module_reference_url: str
) -> None:
    """Two subscribers with pii:read get the same change, an owner entered: the one selecting
    only ids hands out no one's personal data, and its delivery's audit entry names no data
    subject and no personal field; the one selecting `record` names the owner and each field."""
    ids_only = _client(module_reference_url, "Langganan id saja")
    whole = _client(module_reference_url, "Langganan lengkap")
    created = asyncio.run(_new_msme(module_reference_url, "9992300000031"))
    start = _head(live, _token(live, ids_only))
    nik = "6271015204880031"
    documents = {
        ids_only: "subscription($after: String) { msmeChanges(after: $after) { entries { id } } }",
        whole: SUBSCRIBE,
    }

    def delivered(client: tuple[str, str]) -> dict[str, Any]:
        payload = {"query": documents[client], "variables": {"after": start}}
        return asyncio.run(_first_entry(live, _token(live, client), payload))

    asyncio.run(_enter_owner(module_reference_url, created, nik))
    assert delivered(ids_only) == {"id": str(created)}
    owner = delivered(whole)["record"]["owner"]
    assert owner["nik"] == nik

    ids_entry = _delivery_audited(module_reference_url, ids_only)
    whole_entry = _delivery_audited(module_reference_url, whole)
    assert ids_entry["entry"]["records"] == {"msme": 1}
    assert ids_entry["subjects"] == []
    assert ids_entry["entry"]["personalFields"] == []
    assert whole_entry["subjects"] == [nik]
    personal = {*(f"Owner.{name}" for name in owner), *FINANCES_IN_RECORD["msme"]}
    assert whole_entry["entry"]["personalFields"] == sorted(personal)


def test_a_subscription_sent_without_variables_is_delivered(
    live: str, module_reference_url: str
) -> None:
    """GraphiQL sends a subscription declaring no variables with variables null: it is
    delivered."""
    client = _client(module_reference_url, "Langganan tanpa variabel")
    created = asyncio.run(_new_msme(module_reference_url, "9992300000059"))
    token = _token(live, client)

    async def delivered() -> dict[str, Any]:
        async with _connected(live, token) as socket:
            payload = {
                "query": "subscription { msmeChanges { entries { id } } }",
                "variables": None,
            }
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            message = await _receive(socket)
            assert message["type"] == "next", message
            assert "errors" not in message["payload"], message
            return dict(message["payload"]["data"]["msmeChanges"])

    assert created
    assert asyncio.run(delivered())["entries"]


def test_a_subscription_leaving_out_its_record_by_a_variable_is_delivered_and_audited_as_sent(
    live: str, module_reference_url: str
) -> None:
    """Whether a delivery hands out `record` may rest on a variable (@include): it is delivered
    as the variable says, and audited (the entry still itemises the record's personal fields
    and names its owner: the feed reads the record whatever the variable, erring on naming). A
    subscription's variables reach its resolver coerced already, not as a query's do."""
    client = _client(module_reference_url, "Langganan bersyarat")
    created = asyncio.run(_new_msme(module_reference_url, "9992300000053"))
    start = _head(live, _token(live, client))
    document = (
        "subscription($after: String, $whole: Boolean!) { msmeChanges(after: $after)"
        " { entries { id record @include(if: $whole) } } }"
    )

    asyncio.run(_enter_owner(module_reference_url, created, "6271015204880053"))
    payload = {"query": document, "variables": {"after": start, "whole": False}}
    delivered = asyncio.run(_first_entry(live, _token(live, client), payload))
    assert delivered == {"id": str(created)}
    audited = _delivery_audited(module_reference_url, client)
    assert audited["entry"]["records"] == {"msme": 1}
    assert "ChangeEntry.record" not in audited["entry"]["touched"]


def test_a_revoked_clients_subscription_ends(live: str, module_reference_url: str) -> None:
    client = _client(module_reference_url, "Dicabut")
    token = _token(live, client)

    async def scenario() -> None:
        async with _subscribed(live, token, _head(live, token)) as socket:
            await _sql(
                module_reference_url,
                "UPDATE oauth_clients SET revoked_at = now() WHERE client_id = $1",
                client[0],
            )
            await _new_msme(module_reference_url, "9992300000002")
            message = await _receive(socket)
            while message["type"] == "next":  # at most what committed before it was noticed
                message = await _receive(socket)
            assert message == {"id": "1", "type": "complete"}

    asyncio.run(scenario())


def _revoke(url: str, client_id: str) -> None:
    """`sinergi clients revoke`, which returns once every server process has forgotten the
    client."""
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        assert main(["clients", "revoke", client_id]) == 0, out.getvalue()


async def _until_closed(socket: Any) -> tuple[list[dict[str, Any]], int | None]:
    """Every message until the server closes the connection, and its close code."""
    messages = []
    with contextlib.suppress(websockets.ConnectionClosed):
        while True:
            messages.append(await _receive(socket))
    return messages, socket.close_code


def test_a_revoked_client_gets_nothing_more_on_its_open_websocket(
    live: str, module_reference_url: str
) -> None:
    """Once `sinergi clients revoke` returns, neither a subscribe message sent on the socket the
    client already holds (from the start: a full page was waiting) nor the live subscription
    (a change committed after the revocation) hands out anything: the subscription completes
    and the connection closes with 4403, as for a bad token."""
    client = _client(module_reference_url, "Dicabut di soket")
    token = _token(live, client)

    async def live_subscription() -> None:
        async with _subscribed(live, token, _head(live, token)) as socket:
            await asyncio.to_thread(_revoke, module_reference_url, client[0])
            await _new_msme(module_reference_url, "9992300000011")
            messages, code = await _until_closed(socket)
            assert messages == [{"id": "1", "type": "complete"}]
            assert code == 4403

    async def new_subscription() -> None:
        async with _connected(live, token) as socket:
            await asyncio.to_thread(_revoke, module_reference_url, client[0])
            # Refused before it runs, unless the connection's own watch closed it first.
            with contextlib.suppress(websockets.ConnectionClosed):
                await socket.send(_subscribe("1", None))
            assert await _until_closed(socket) == ([], 4403)

    asyncio.run(live_subscription())
    client = _client(module_reference_url, "Dicabut di soket lagi")
    token = _token(live, client)
    asyncio.run(new_subscription())


def test_a_page_audited_while_its_client_is_revoked_is_not_sent(
    module_reference_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window between a page's last authorisation check and its sending once held the audit
    write: `sinergi clients revoke` could return while the page was audited, and the page went
    out after it. Here the revocation runs, and returns, inside the audit write of the first
    page (in process, wrapping the audit, so the timing is not left to chance): the page is
    not sent, the subscription completes and the connection closes with 4403."""
    client = _client(module_reference_url, "Dicabut saat diaudit")
    asyncio.run(_new_msme(module_reference_url, "9992300000021"))  # a page waits at once
    audits = 0

    record = Context.record

    async def revoked_while_audited(context: Context, *args: Any, **kwargs: Any) -> None:
        nonlocal audits
        if not audits:
            await asyncio.to_thread(_revoke, module_reference_url, client[0])
        audits += 1
        await record(context, *args, **kwargs)

    monkeypatch.setattr(Context, "record", revoked_while_audited)
    app = create_app(Settings(rate_limit=1_000_000), database_url=as_service(module_reference_url))
    with TestClient(app) as http:
        issued = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)
        auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        with http.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket:
            socket.send_json({"type": "connection_init", "payload": auth})
            assert socket.receive_json()["type"] == "connection_ack"
            socket.send_text(_subscribe("1", None))
            assert socket.receive_json() == {"id": "1", "type": "complete"}
            assert socket.receive()["code"] == 4403
    assert audits == 1  # audited: the trail over-states what went out, never under-states it


def test_a_page_over_the_response_size_bound_ends_its_subscription_unsent(
    module_reference_url: str,
) -> None:
    """Over HTTP an answer over max_response_bytes is refused QUERY_TOO_COMPLEX; a
    subscription's page had no bound (14 MB at once, held for a client that never read it).
    Now the page is not sent: its subscription ends with the error HTTP gives, and reads no
    further page, while the connection stays open for others."""
    client = _client(module_reference_url, "Halaman terlalu besar")
    asyncio.run(_new_msme(module_reference_url, "9992300000041"))  # a page waits at once
    bound = 200
    limits = QueryLimits(max_response_bytes=bound)
    app = create_app(
        Settings(rate_limit=1_000_000, query_limits=limits),
        database_url=as_service(module_reference_url),
    )
    with TestClient(app) as http:
        issued = http.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=client)
        auth = {"Authorization": f"Bearer {issued.json()['access_token']}"}
        with http.websocket_connect("/graphql", subprotocols=[PROTOCOL]) as socket:
            socket.send_json({"type": "connection_init", "payload": auth})
            assert socket.receive_json()["type"] == "connection_ack"
            socket.send_text(_subscribe("1", None))
            refused = socket.receive_json()
            assert refused["type"] == "error", str(refused)[:300]
            (error,) = refused["payload"]
            assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert error["extensions"]["limit"] == "response size"
            assert error["extensions"]["maximum"] == bound
            assert error["extensions"]["actual"] > bound
            socket.send_json({"type": "ping"})
            assert socket.receive_json() == {"type": "pong"}  # no page, no `complete` before


def test_an_expired_token_gets_nothing_more_on_its_open_websocket(
    live: str, module_reference_url: str
) -> None:
    """A token that expires while its connection is open is refused at the next subscribe
    message, as it is over HTTP, if the connection's own watch has not closed it already
    (tests/test_websocket_edge.py): the connection closes with 4403 and no page is sent."""
    client = _client(module_reference_url, "Kedaluwarsa")
    claims = tokens.decode_segment(_token(live, client).split(".")[1])

    async def expiring() -> str:
        """A token of the client's own, valid for 4 s more (past `exp`, with the leeway)."""
        engine = create_async_engine(async_url(module_reference_url))
        try:
            async with engine.connect() as connection:
                key = await keys.signing_key(connection)
        finally:
            await engine.dispose()
        lifetime = 600
        return minted(
            key,
            issuer=claims["iss"],
            audience=claims["aud"],
            client_id=claims["client_id"],
            scopes=frozenset(claims["scope"].split()),
            jurisdiction=claims["jurisdiction"],
            org_kind=claims["org_kind"],
            lifetime=lifetime,
            now=time.time() - lifetime - tokens.LEEWAY_SECONDS + 4,
        )

    async def scenario(token: str) -> None:
        async with _connected(live, token) as socket:
            await asyncio.sleep(5)
            headers = {"Authorization": f"Bearer {token}"}
            query = {"query": "{ __typename }"}
            async with httpx.AsyncClient() as http:
                refused = await http.post(f"{live}/graphql", json=query, headers=headers)
            assert refused.status_code == 401
            with contextlib.suppress(websockets.ConnectionClosed):
                await socket.send(_subscribe("1", None))
            assert await _until_closed(socket) == ([], 4403)  # refused before it runs

    asyncio.run(scenario(asyncio.run(expiring())))


def test_a_websocket_without_a_valid_token_is_refused(live: str) -> None:
    async def scenario(token: str | None) -> None:
        uri = live.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(uri, subprotocols=[PROTOCOL]) as socket:
            payload = {} if token is None else {"Authorization": f"Bearer {token}"}
            await socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _receive(socket)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 4403

    asyncio.run(scenario(None))
    asyncio.run(scenario("not.a.token"))


async def _refusal(base: str, token: str) -> int | None:
    """The close code of a new connection refused at `connection_init`; None if it is
    acknowledged (it is then closed)."""
    uri = base.replace("http://", "ws://") + "/graphql"
    async with websockets.connect(uri, subprotocols=[PROTOCOL]) as socket:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(json.dumps(init))
        with contextlib.suppress(websockets.ConnectionClosed):
            message = await _receive(socket)
            assert message["type"] == "connection_ack", message
            return None
        return socket.close_code


def test_a_client_holds_at_most_four_websockets_open(live: str, module_reference_url: str) -> None:
    """Each subscription reads on its own for as long as it runs, counted against the rate limit
    only once: a client holds at most SINERGI_MAX_SOCKETS_PER_CLIENT (4) connections open in a
    process, a fifth is closed with 1013 ("Try Again Later") and counted as RATE_LIMITED. A
    place comes back when its connection ends, closed or dropped, and another client's
    connections are its own."""
    crowded = _client(module_reference_url, "Banyak soket")
    token = _token(live, crowded)
    other = _token(live, _client(module_reference_url, "Soket lain"))

    async def admitted_soon() -> None:
        """A connection is admitted once the server has noticed one of the client's ended."""
        deadline = time.monotonic() + 10
        while (code := await _refusal(live, token)) is not None:
            assert code == 1013
            assert time.monotonic() < deadline, "the ended connection's place never came back"
            await asyncio.sleep(0.1)

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as held:
            sockets = [await held.enter_async_context(_connected(live, token)) for _ in range(4)]
            assert await _refusal(live, token) == 1013
            async with _subscribed(live, other, _head(live, other)) as socket:  # its own
                await _new_msme(module_reference_url, "9992300000012")
                assert (await _receive(socket))["type"] == "next"
            await sockets[0].close()
            await admitted_soon()
            sockets[1].transport.abort()  # dropped without a close handshake
            await admitted_soon()

    asyncio.run(scenario())
    metrics = httpx.get(f"{live}/metrics").text
    assert f'sinergi_rate_limit_rejections_total{{client_id="{crowded[0]}"}}' in metrics


def test_sinergi_sync_keeps_a_sqlite_copy_over_http(
    live: str, module_reference_url: str, tmp_path: Path
) -> None:
    client_id, secret = _client(module_reference_url, "Salinan")
    asyncio.run(_new_msme(module_reference_url, "9992300000003"))
    (tmp_path / "secret").write_text(secret + "\n")
    command = [sys.executable, "-m", "sinergi.cli", "sync", str(tmp_path / "copy.sqlite")]
    command += ["--url", live, "--client-id", client_id, "--secret-file", str(tmp_path / "secret")]
    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 0, first.stdout + first.stderr
    with sqlite3.connect(tmp_path / "copy.sqlite") as copy:
        (msmes,) = copy.execute("SELECT count(*) FROM records WHERE kind = 'msme'").fetchone()
    expected = asyncio.run(
        _sql(module_reference_url, "SELECT count(*) FROM msmes WHERE province_code = '62'")
    )
    assert msmes == expected > 0
    again = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0
    assert "msme: 0 changes applied" in again.stdout
    wrong = subprocess.run(
        [*command[:-2], "--secret-file", str(tmp_path / "copy.sqlite")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert wrong.returncode == 1


def test_over_a_websocket_only_subscriptions_run(live: str, module_reference_url: str) -> None:
    """Queries and mutations over the WebSocket would pass neither the request guard's limits nor
    the rate limit."""
    token = _token(live, _client(module_reference_url, "Hanya langganan"))

    async def scenario() -> None:
        uri = live.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(uri, subprotocols=[PROTOCOL]) as socket:
            init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            await socket.send(json.dumps(init))
            assert (await _receive(socket))["type"] == "connection_ack"
            query = {"query": "{ msmes(first: 1) { nodes { nib } } }"}
            await socket.send(json.dumps({"id": "q", "type": "subscribe", "payload": query}))
            answer = await _receive(socket)
            assert answer["type"] in ("error", "next"), answer
            errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
            assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
            assert "data" not in answer["payload"] or answer["payload"]["data"] is None

    asyncio.run(scenario())


def test_a_subscriber_behind_a_compaction_is_told_to_start_again(
    live: str, module_reference_url: str
) -> None:
    token = _token(live, _client(module_reference_url, "Tertinggal"))
    for nib in ("9992300000005", "9992300000006"):
        asyncio.run(_new_msme(module_reference_url, nib))
    first = httpx.post(
        f"{live}/graphql",
        json={"query": "{ msmeChanges(first: 1) { endCursor } }"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    short = first["data"]["msmeChanges"]["endCursor"]
    asyncio.run(
        _sql(module_reference_url, "UPDATE change_log SET noted_at = now() - interval '30 days'")
    )
    with mock.patch.dict(os.environ, {"DATABASE_URL": module_reference_url}):
        assert main(["feed", "compact", "--older-than", "7"]) == 0

    async def scenario() -> None:
        async with _subscribed(live, token, short) as socket:
            answer = await _receive(socket)
            assert answer["type"] in ("error", "next"), answer
            errors = answer["payload"] if answer["type"] == "error" else answer["payload"]["errors"]
            assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert errors[0]["extensions"]["field"] == "after"

    asyncio.run(scenario())


def test_a_subscription_from_an_altered_cursor_or_another_feeds_is_refused(
    live: str, module_reference_url: str
) -> None:
    """Pushed pages read their cursors as pulled ones do: only one sealed for the feed opens,
    and any other is refused naming `after` before anything is sent. A cursor of the feed,
    handed out again at the same position, is sealed afresh."""
    token = _token(live, _client(module_reference_url, "Segel"))
    start = _head(live, token)
    assert _head(live, token) != start
    altered = start[:10] + ("B" if start[10] == "A" else "A") + start[11:]
    cooperative = httpx.post(
        f"{live}/graphql",
        json={"query": "{ cooperativeChanges(first: 1) { endCursor } }"},
        headers={"Authorization": f"Bearer {token}"},
    ).json()["data"]["cooperativeChanges"]["endCursor"]

    async def scenario() -> None:
        for bad in (altered, cooperative):
            async with _subscribed(live, token, bad) as socket:
                answer = await _receive(socket)
                assert answer["type"] in ("error", "next"), answer
                payload = answer["payload"]
                errors = payload if answer["type"] == "error" else payload["errors"]
                assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT"
                assert errors[0]["extensions"]["field"] == "after"
                assert errors[0]["message"] == "after: is not a cursor of this feed"
        async with _subscribed(live, token, start) as socket:
            created = await _new_msme(module_reference_url, "9992300000009")
            message = await _receive(socket)
            page = message["payload"]["data"]["msmeChanges"]
            assert [entry["id"] for entry in page["entries"]] == [str(created)]

    asyncio.run(scenario())
