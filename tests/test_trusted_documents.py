"""Trusted documents through the CLI and HTTP: a client held to its registered operations runs
those (by text or by hash) and nothing else; other clients may use hashes but are not held."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.testclient import TestClient

from db.engine import async_url
from db.queries import trusted_documents
from sinergi import subscriptions
from sinergi.app import create_app
from sinergi.demo_mode import DEMO_SECRET
from sinergi.settings import Settings, SettingsError
from sinergi.trusted_documents import operations
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import demo_clients
from tests.support.http import Api
from tests.support.sso import serving_realm, user_claims

HELD = "demo-regency-6271"  # held to its trusted documents
FREE = "demo-province-62"  # not held
OPERATIONS = """
query Palangkaraya($nib: String!) { msme(nib: $nib) { ...Basics } }
query Me { viewer { clientId jurisdiction } }
fragment Basics on Msme { name regency { code } }
"""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _cli(url: str, argv: list[str]) -> tuple[int, str]:
    code, out, _ = sinergi(url, *argv)
    return code, out


@pytest.fixture(scope="module")
def trusted(demo_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The operations of OPERATIONS, registered for HELD through the CLI."""
    file = tmp_path_factory.mktemp("trusted") / "operations.graphql"
    file.write_text(OPERATIONS)

    demo_clients(demo_url)
    code, out = _cli(demo_url, ["clients", "trust", HELD, str(file), "--json"])
    assert code == 0, out
    return {entry["name"]: entry for entry in json.loads(out)}


@pytest.fixture(scope="module")
def held_api(demo_url: str, trusted: dict[str, Any]) -> Iterator[Api]:
    settings = Settings(rate_limit=1_000_000, trusted_documents=HELD)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        yield Api(client)


def test_the_cli_registers_each_operation_with_the_fragments_it_uses(
    trusted: dict[str, Any],
) -> None:
    assert set(trusted) == {"Palangkaraya", "Me"}
    for entry in trusted.values():
        assert entry["sha256"] == _sha256(entry["document"])
    assert "fragment Basics" in trusted["Palangkaraya"]["document"]
    assert "fragment" not in trusted["Me"]["document"]


def test_a_held_client_runs_registered_operations_by_text_or_hash(
    held_api: Api, trusted: dict[str, Any]
) -> None:
    token = held_api.token(HELD)
    variables = {"nib": "9990000000001"}
    expected = {"msme": {"name": "Keripik Kelakai Contoh", "regency": {"code": "62.71"}}}
    by_hash = {
        "variables": variables,
        "extensions": {
            "persistedQuery": {"version": 1, "sha256Hash": trusted["Palangkaraya"]["sha256"]}
        },
    }
    as_printed = {"query": trusted["Palangkaraya"]["document"], "variables": variables}
    as_in_the_file = {"query": OPERATIONS, "operationName": "Palangkaraya", "variables": variables}
    for body in (by_hash, as_printed, as_in_the_file):
        response = held_api.post(body, token)
        assert response.status_code == 200, response.text
        assert response.json() == {"data": expected}
    batch = [by_hash, {"extensions": {"persistedQuery": {"sha256Hash": trusted["Me"]["sha256"]}}}]
    answers = held_api.post(batch, token).json()
    assert answers[1]["data"]["viewer"]["clientId"] == HELD


def test_an_operation_sent_by_hash_is_counted_under_its_registered_name(
    held_api: Api, trusted: dict[str, Any]
) -> None:
    """Its name is known once the registered document is filled in, not before."""
    counted = {"operation": "Me", "client_id": HELD, "status": "200"}
    before = REGISTRY.get_sample_value("sinergi_graphql_requests_total", counted) or 0.0
    by_hash = {"extensions": {"persistedQuery": {"sha256Hash": trusted["Me"]["sha256"]}}}
    for body in (by_hash, {**by_hash, "operationName": "Me"}):
        assert held_api.post(body, held_api.token(HELD)).status_code == 200
    assert REGISTRY.get_sample_value("sinergi_graphql_requests_total", counted) == before + 2


def test_a_held_client_is_refused_anything_else_naming_the_mode(held_api: Api) -> None:
    token = held_api.token(HELD)
    for body in (
        {"query": "{ viewer { clientId } }"},
        {"query": OPERATIONS + " query Other { viewer { scopes } }", "operationName": "Other"},
        [{"query": "query Me { viewer { clientId jurisdiction } }"}, {"query": "{ __typename }"}],
    ):
        response = held_api.post(body, token)
        assert response.status_code == 403, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "trusted documents" in error["message"]


def test_hashes_are_per_client_and_unknown_ones_name_the_field(
    held_api: Api, trusted: dict[str, Any]
) -> None:
    for client in (FREE, HELD):
        unknown = {"extensions": {"persistedQuery": {"sha256Hash": _sha256("{ nope }")}}}
        answers = [held_api.post(unknown, held_api.token(client))]
        if client == FREE:  # registered for HELD only
            others = {"persistedQuery": {"sha256Hash": trusted["Me"]["sha256"]}}
            answers.append(held_api.post({"extensions": others}, held_api.token(client)))
        for response in answers:
            assert response.status_code == 400, response.text
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert error["extensions"]["field"] == "extensions.persistedQuery.sha256Hash"


def test_a_client_not_held_runs_any_operation(held_api: Api) -> None:
    answer = held_api.graphql("{ viewer { clientId } }", FREE)
    assert answer == {"data": {"viewer": {"clientId": FREE}}}


@pytest.mark.parametrize(
    "extensions",
    [
        {"persistedQuery": {"sha256Hash": "not-a-hash"}},
        {"persistedQuery": "x"},
        {"persistedQuery": {"sha256Hash": _sha256("{ viewer { scopes } }")}},
    ],
)
def test_malformed_or_mismatched_hashes_are_bad_input(
    held_api: Api, extensions: dict[str, Any]
) -> None:
    body = {"query": "{ viewer { clientId } }", "extensions": extensions}
    response = held_api.post(body, held_api.token(FREE))
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ("query Broken { nothingHere }", "nothingHere"),
        ("query Broken { viewer { ", "not a GraphQL document"),
        ("fragment F on Viewer { clientId }", "no operation"),
        ("{ " + " ".join(f"a{i}: __typename" for i in range(40)) + " }", "aliases"),
    ],
)
def test_the_cli_refuses_documents_that_could_not_run(
    demo_url: str, tmp_path: Path, trusted: dict[str, Any], document: str, complaint: str
) -> None:
    file = tmp_path / "bad.graphql"
    file.write_text(document)
    code, out, err = sinergi(demo_url, "clients", "trust", HELD, str(file))
    assert (code, out) == (2, "")
    assert complaint in err


def test_the_cli_refuses_an_unknown_client(demo_url: str, tmp_path: Path) -> None:
    file = tmp_path / "ok.graphql"
    file.write_text("query Me { viewer { clientId } }")
    code, out, err = sinergi(demo_url, "clients", "trust", "no-such-client", str(file))
    assert (code, out) == (2, "")
    assert "no-such-client" in err


MEMBERS = "nodes { name nib regency { name province { name } } }"
HEAVY = f"""query Heavy($a: Int, $b: Int) {{ cooperatives(first: $a) {{ nodes {{
    m1: memberMsmes(first: $b) {{ {MEMBERS} }} m2: memberMsmes(first: $b) {{ {MEMBERS} }}
    m3: memberMsmes(first: $b) {{ {MEMBERS} }} }} }} }}"""


@pytest.fixture(scope="module")
def heavy(
    demo_url: str, trusted: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """HEAVY registered for FREE: within the limits with no variables (its default pages), far
    over them with pages of 100 passed as variables."""
    file = tmp_path_factory.mktemp("heavy") / "heavy.graphql"
    file.write_text(HEAVY)
    code, out = _cli(demo_url, ["clients", "trust", FREE, str(file), "--json"])
    assert code == 0, out
    (entry,) = json.loads(out)
    return {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": entry["sha256"]}}}


def test_a_registered_document_sent_by_hash_is_costed_with_the_requests_variables(
    held_api: Api, heavy: dict[str, Any]
) -> None:
    """The attack: registration costed the document without variables, so its page sizes,
    passed as variables with the hash alone, would run unmeasured."""
    token = held_api.token(FREE)
    pages = {"a": 100, "b": 100}
    for body in ({"query": HEAVY, "variables": pages}, {**heavy, "variables": pages}):
        response = held_api.post(body, token)
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert error["extensions"]["limit"] == "cost"
    small = held_api.post({**heavy, "variables": {"a": 1, "b": 1}}, token)
    assert small.status_code == 200, small.text
    assert len(small.json()["data"]["cooperatives"]["nodes"]) == 1


def test_page_sizes_sent_as_integral_floats_are_costed_as_the_ints_they_run_as(
    held_api: Api, heavy: dict[str, Any]
) -> None:
    """The attack: JSON's `100.0` runs as Int 100, but was costed as the default page; by text
    and by hash, whether its int was costed before (100) or not (60)."""
    token = held_api.token(FREE)
    for pages in ({"a": 100, "b": 100}, {"a": 100.0, "b": 100.0}, {"a": 60.0, "b": 60.0}):
        for body in ({"query": HEAVY, "variables": pages}, {**heavy, "variables": pages}):
            response = held_api.post(body, token)
            assert response.status_code == 400, (pages, response.text)
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert error["extensions"]["limit"] == "cost"
    small = held_api.post({**heavy, "variables": {"a": 1.0, "b": 1.0}}, token)
    assert small.status_code == 200, small.text
    assert len(small.json()["data"]["cooperatives"]["nodes"]) == 1


HEAVY_DEFAULTS = HEAVY.replace(
    "Heavy($a: Int, $b: Int)", "HeavyDefaults($a: Int = 100, $b: Int = 100)"
)


def test_variables_omitted_are_costed_with_their_defaults_and_nulls_as_null(
    held_api: Api,
) -> None:
    """The attack: `$a: Int = 100` sent with no variables runs pages of 100, but was costed at the
    default page. Sent as null, a variable runs as null (the default page): the estimate kept for
    it is not the one for the omitted variable."""
    token = held_api.token(FREE)
    for pages, status in (({"a": None, "b": None}, 200), ({}, 400), ({"b": 100}, 400)):
        response = held_api.post({"query": HEAVY_DEFAULTS, "variables": pages}, token)
        assert response.status_code == status, (pages, response.text)
        if status == 400:
            (error,) = response.json()["errors"]
            assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert error["extensions"]["limit"] == "cost"
    small = held_api.post({"query": HEAVY_DEFAULTS, "variables": {"a": 1, "b": 1}}, token)
    assert small.status_code == 200, small.text
    assert len(small.json()["data"]["cooperatives"]["nodes"]) == 1


def test_the_cli_refuses_a_document_whose_variables_default_over_the_cost(
    demo_url: str, tmp_path: Path, trusted: dict[str, Any]
) -> None:
    file = tmp_path / "defaults.graphql"
    file.write_text(HEAVY_DEFAULTS)
    code, out, err = sinergi(demo_url, "clients", "trust", FREE, str(file))
    assert (code, out) == (2, "")
    assert "HeavyDefaults" in err
    assert "cost" in err


def test_a_document_registered_with_defaults_over_the_cost_is_refused_by_hash(
    demo_url: str, held_api: Api
) -> None:
    """Registered before `clients trust` costed defaults (written here as that registration did),
    the document sent by hash alone is costed with them."""
    (operation,) = operations(HEAVY_DEFAULTS)

    async def register() -> None:
        engine = create_async_engine(async_url(demo_url))
        async with engine.begin() as connection:
            await trusted_documents.register(
                connection, FREE, [(operation.sha256, operation.name, operation.document)]
            )
        await engine.dispose()

    asyncio.run(register())
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": operation.sha256}}
    response = held_api.post({"extensions": persisted}, held_api.token(FREE))
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"


def test_a_registered_document_sent_by_hash_is_held_to_its_operation_name(
    held_api: Api, trusted: dict[str, Any]
) -> None:
    """As a document sent as text is: an operation the document lacks is a coded 400, by POST,
    in a batch and by GET."""
    token = held_api.token(HELD)
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": trusted["Me"]["sha256"]}}
    nope = {"extensions": persisted, "operationName": "Nope"}
    params = {"extensions": json.dumps(persisted), "operationName": "Nope"}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    for response in (
        held_api.post(nope, token),
        held_api.post([{"extensions": persisted}, nope], token),
        held_api.client.get("/graphql", params=params, headers=headers),
    ):
        assert response.status_code == 400, response.text
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "operationName"}


# ---- over the WebSocket ---------------------------------------------------------------------

WATCH = "subscription Watch { msmeChanges { entries { id record } } }"


def _held_client(url: str, name: str) -> tuple[str, str]:
    """A new client that sees Central Kalimantan's records: (client_id, secret)."""
    argv = ["clients", "create", "--name", name, "--org-kind", "province", "--jurisdiction"]
    argv += ["62", "--purpose", "trusted documents over a WebSocket", "--scopes", "records:read"]
    code, out = _cli(url, [*argv, "--json"])
    assert code == 0, out
    created = json.loads(out)
    return created["client_id"], created["client_secret"]


@pytest.fixture(scope="module")
def watchers(demo_url: str) -> dict[str, tuple[str, str]]:
    """Two new clients, each held to its documents (none registered yet)."""
    return {
        "unregistered": _held_client(demo_url, "Tanpa dokumen"),
        "watching": _held_client(demo_url, "Dengan langganan"),
    }


@pytest.fixture(scope="module")
def ws_api(demo_url: str, watchers: dict[str, tuple[str, str]]) -> Iterator[Api]:
    held = ",".join(client_id for client_id, _ in watchers.values())
    settings = Settings(rate_limit=1_000_000, trusted_documents=held)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        yield Api(client)


def _trust(url: str, tmp_path: Path, client_id: str, document: str) -> str:
    """Registers the document for the client through the CLI; its sha256."""
    file = tmp_path / f"{client_id}.graphql"
    file.write_text(document)
    code, out = _cli(url, ["clients", "trust", client_id, str(file), "--json"])
    assert code == 0, out
    return str(json.loads(out)[0]["sha256"])


def _message(socket: Any) -> dict[str, Any]:
    message: dict[str, Any] = socket.receive_json()
    return message


def _subscribe(socket: Any, id: str, payload: dict[str, Any]) -> dict[str, Any]:
    socket.send_json({"id": id, "type": "subscribe", "payload": payload})
    return _message(socket)


def _refused(socket: Any, message: dict[str, Any], code: str) -> dict[str, Any]:
    """The refusal's one error; a ping answered next shows no page followed it."""
    assert message["type"] == "error", message
    (error,) = message["payload"]
    assert error["extensions"]["code"] == code
    socket.send_json({"type": "ping"})
    assert _message(socket) == {"type": "pong"}
    return dict(error)


def test_a_held_client_subscribes_over_a_websocket_only_once_the_document_is_registered(
    ws_api: Api, watchers: dict[str, tuple[str, str]], demo_url: str, tmp_path: Path
) -> None:
    """The attack: a leaked token of a client held to its documents, none of them this feed."""
    client = watchers["unregistered"]
    with ws_api.socket(client) as socket:
        error = _refused(socket, _subscribe(socket, "1", {"query": WATCH}), "FORBIDDEN")
        assert error["extensions"]["mode"] == "trusted documents"
        assert "trusted documents" in error["message"]
        _trust(demo_url, tmp_path, client[0], WATCH)
        answer = _subscribe(socket, "2", {"query": WATCH})
        assert answer["type"] == "next", answer
        assert answer["id"] == "2"
        assert answer["payload"]["data"]["msmeChanges"]["entries"]


def test_over_a_websocket_a_held_client_may_subscribe_by_hash_but_not_by_an_unknown_one(
    ws_api: Api, watchers: dict[str, tuple[str, str]], demo_url: str, tmp_path: Path
) -> None:
    client = watchers["watching"]
    registered = _trust(demo_url, tmp_path, client[0], WATCH)
    with ws_api.socket(client) as socket:
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": registered}}}
        answer = _subscribe(socket, "1", by_hash)
        assert answer["type"] == "next", answer
        assert answer["payload"]["data"]["msmeChanges"]["entries"]
        socket.send_json({"id": "1", "type": "complete"})
        unknown = {"extensions": {"persistedQuery": {"sha256Hash": _sha256(WATCH + " ")}}}
        error = _refused(socket, _subscribe(socket, "2", unknown), "BAD_USER_INPUT")
        assert error["extensions"]["field"] == "extensions.persistedQuery.sha256Hash"
        # Another document beside the registered hash would run under it: refused as over HTTP.
        other = "subscription { msmeChanges { entries { id } } }"
        smuggled = {"query": other, "extensions": by_hash["extensions"]}
        _refused(socket, _subscribe(socket, "3", smuggled), "BAD_USER_INPUT")


def test_the_legacy_graphql_ws_protocol_whose_messages_go_unchecked_is_not_spoken(
    ws_api: Api,
) -> None:
    with ws_api.client.websocket_connect("/graphql", subprotocols=["graphql-ws"]) as socket:
        socket.send_json({"type": "connection_init", "payload": {}})  # answered, were it spoken
        closed = socket.receive()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4406)


ALIASED = " ".join(f"a{n}: record" for n in range(4_000))


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        # A page's entries each handed out four thousand times over: past the cost and tokens.
        (
            {"query": f"subscription {{ msmeChanges {{ entries {{ {ALIASED} }} }} }}"},
            "QUERY_TOO_COMPLEX",
        ),
        ({"query": WATCH, "variables": []}, "BAD_USER_INPUT"),
        # Names a delivery's audit entry would hold: at most 128 characters of a GraphQL Name.
        ({"query": WATCH, "operationName": "W" * 1_000}, "BAD_USER_INPUT"),
        ({"query": WATCH.replace("Watch", "W" * 129)}, "BAD_USER_INPUT"),
    ],
)
def test_a_subscribe_message_meets_the_limits_a_post_meets(
    ws_api: Api, payload: dict[str, Any], code: str
) -> None:
    """Any client's, not only one held to its documents: the WebSocket is no way around the
    request guard. The refusal is counted, as one over HTTP is."""
    counted = {"code": code, "status": "ws"}
    before = REGISTRY.get_sample_value("sinergi_errors_total", counted) or 0.0
    with ws_api.socket(("demo-province-62", DEMO_SECRET)) as socket:
        _refused(socket, _subscribe(socket, "1", payload), code)
    assert REGISTRY.get_sample_value("sinergi_errors_total", counted) == before + 1


def test_a_subscribe_message_by_hash_meets_the_limits_with_its_variables(
    ws_api: Api, heavy: dict[str, Any]
) -> None:
    """The WebSocket's subscribe messages go through the same checks once the hash is filled
    in: over the cost with its variables, and an operation the document lacks."""
    with ws_api.socket(("demo-province-62", DEMO_SECRET)) as socket:
        costly = _subscribe(socket, "1", {**heavy, "variables": {"a": 100, "b": 100}})
        assert _refused(socket, costly, "QUERY_TOO_COMPLEX")["extensions"]["limit"] == "cost"
        unnamed = _subscribe(socket, "2", {**heavy, "operationName": "Nope"})
        assert _refused(socket, unnamed, "BAD_USER_INPUT")["extensions"]["field"] == (
            "operationName"
        )


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_frames_nested_too_deeply_to_decode_close_the_socket_with_4400(
    ws_api: Api, trusted: dict[str, Any]
) -> None:
    """The attack: nested arrays in a frame made its decoding raise RecursionError, which
    dropped the socket without a close frame and logged a traceback with no correlation id.
    Such a frame is malformed JSON, closed with 4400 as other malformed frames are; nesting
    the decoder does read is searched for unstorable strings without recursing, and runs.
    (`trusted` registers the demo clients.) Before the token is checked, no frame longer than
    ADMISSION_FRAME_CHARS is decoded at all: this one is within it."""
    init = '{"type": "connection_init", "payload": {"a": ' + _nested(5_000) + "}}"
    assert len(init) <= subscriptions.ADMISSION_FRAME_CHARS
    try:  # Python 3.13's decoder reads this deep (then the frame merely lacks a token)
        json.loads(init)
        undecodable_or_tokenless = 4403
    except RecursionError:
        undecodable_or_tokenless = 4400
    with ws_api.client.websocket_connect("/graphql", subprotocols=["graphql-transport-ws"]) as ws:
        ws.send_text(init)
        closed = ws.receive()
    assert (closed["type"], closed["code"]) == ("websocket.close", undecodable_or_tokenless)
    client = ("demo-province-62", DEMO_SECRET)
    with ws_api.socket(client) as socket:
        deep = {"query": WATCH, "variables": {"a": json.loads(_nested(450))}}
        assert _subscribe(socket, "1", deep)["type"] == "next"
        query = json.dumps(WATCH)
        socket.send_text(
            '{"id": "2", "type": "subscribe", "payload": {"query": ' + query + ', "variables": '
            '{"a": ' + _nested(100_000) + "}}}"
        )
        closed = socket.receive()
    assert (closed["type"], closed["code"]) == ("websocket.close", 4400)


def test_a_subscription_past_the_connections_limit_is_refused_with_a_code(
    ws_api: Api, trusted: dict[str, Any]
) -> None:
    """Strawberry refused a fifth subscription with a bare message and no contract code. It is
    QUERY_TOO_COMPLEX naming the limit, as a batch past its limit is, and counted."""
    counted = {"code": "QUERY_TOO_COMPLEX", "status": "ws"}
    before = REGISTRY.get_sample_value("sinergi_errors_total", counted) or 0.0
    with ws_api.socket(("demo-province-62", DEMO_SECRET)) as socket:
        for id in "1234":
            socket.send_json({"id": id, "type": "subscribe", "payload": {"query": WATCH}})
        socket.send_json({"id": "5", "type": "subscribe", "payload": {"query": WATCH}})
        message = _message(socket)
        while message.get("id") != "5":  # the four subscriptions' pages
            assert message["type"] == "next", message
            message = _message(socket)
    assert message["type"] == "error", message
    (error,) = message["payload"]
    assert error["extensions"] == {
        "code": "QUERY_TOO_COMPLEX",
        "limit": "subscriptions per connection",
        "maximum": 4,
        "actual": 5,
    }
    assert REGISTRY.get_sample_value("sinergi_errors_total", counted) == before + 1


@pytest.mark.parametrize(("word", "held"), [("true", True), ("YES", True), ("0", False)])
def test_the_setting_reads_the_words_every_flag_reads(
    demo_url: str, trusted: dict[str, Any], word: str, held: bool
) -> None:
    """`true` (or yes, 1, ON) holds every client, as `on` does; read as a client id it held none."""
    home = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}  # the tests' audit key, not the user's
    settings = Settings.from_env(
        {**home, "SINERGI_TRUSTED_DOCUMENTS": word, "SINERGI_RATE_LIMIT": "1000000"}
    )
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        api = Api(client)
        answer = api.post({"query": "{ viewer { clientId } }"}, api.token(FREE))
    assert answer.status_code == (403 if held else 200), answer.text


@pytest.mark.parametrize("value", ["enforce please", "on,demo-ministry", "demo-ministry,yes", ","])
def test_a_value_neither_on_off_nor_client_ids_is_refused(value: str) -> None:
    with pytest.raises(SettingsError, match="SINERGI_TRUSTED_DOCUMENTS must be on or off"):
        Settings.from_env({"SINERGI_TRUSTED_DOCUMENTS": value})
    assert Settings.from_env({"SINERGI_TRUSTED_DOCUMENTS": " ON "}).trusted_documents == "on"
    held = Settings.from_env({"SINERGI_TRUSTED_DOCUMENTS": f" {HELD} , {FREE}"})
    assert held.trusted_documents == f"{HELD},{FREE}"


SSO = "https://sso.example.go.id/realms/trusted-documents"
SSO_PRINCIPAL = f"{SSO}#portal@bumd:62"
"""An SSO user's principal (auth.external.external_client_id): its app, org kind, jurisdiction."""
ME = "query Me { viewer { clientId } }"


def _sso_settings(issuers: str, held: str) -> Settings:
    home = {"XDG_DATA_HOME": os.environ["XDG_DATA_HOME"]}  # the tests' audit key, not the user's
    env = {"SINERGI_EXTERNAL_ISSUERS": issuers, "SINERGI_RATE_LIMIT": "1000000"}
    return Settings.from_env({**home, **env, "SINERGI_TRUSTED_DOCUMENTS": held})


@pytest.mark.parametrize("held", ["on", f"{FREE},{SSO_PRINCIPAL}"])
def test_an_sso_principal_is_held_to_the_documents_trusted_for_it(
    demo_url: str, tmp_path: Path, held: str
) -> None:
    """With trusted documents on, every SSO user was refused every request: `clients trust`
    took only registered clients' ids, and the setting's list none of an SSO principal's
    (`#`, `@` and `:` in it). Both now take one, checked as a token's would be made."""
    file = tmp_path / "me.graphql"
    file.write_text(ME)
    with serving_realm() as realm:
        issuer = {"issuer": SSO, "jwks_url": realm.jwks_url, "audience": "sinergi"}
        issuers = json.dumps([{**issuer, "scope_claim": "realm_access.roles"}])
        trust = ["clients", "trust", SSO_PRINCIPAL, str(file), "--json"]
        code, out, err = sinergi(demo_url, *trust, env={"SINERGI_EXTERNAL_ISSUERS": issuers})
        assert code == 0, err
        (entry,) = json.loads(out)
        claims = user_claims(
            SSO, sub="u-td", azp="portal", org_kind="bumd", jurisdiction="62",
            roles=["aggregates:read"],
        )  # fmt: skip
        settings = _sso_settings(issuers, held)
        with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
            api, token = Api(client), realm.token(claims)
            by_text = api.post({"query": ME}, token)
            by_hash = api.post(
                {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": entry["sha256"]}}},
                token,
            )
            other = api.post({"query": "{ viewer { jurisdiction } }"}, token)
    for answer in (by_text, by_hash):
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["viewer"]["clientId"] == SSO_PRINCIPAL
    assert other.status_code == 403, other.text
    assert other.json()["errors"][0]["extensions"]["mode"] == "trusted documents"


@pytest.mark.parametrize(
    ("client_id", "reason"),
    [
        (f"{SSO}#portal@bumd:ID", "not a jurisdiction of a bumd"),
        (f"{SSO}#portal", f"not {SSO}#CLIENT@ORG_KIND:JURISDICTION"),
        ("https://elsewhere.example#portal@bumd:62", "no client"),
    ],
)
def test_an_id_no_sso_token_could_carry_is_refused(
    demo_url: str, tmp_path: Path, client_id: str, reason: str
) -> None:
    """Documents trusted for an id no token carries would hold nobody, and the setting
    naming one would hold nobody either: both refuse it, saying why."""
    issuers = json.dumps(
        [{"issuer": SSO, "jwks_url": "https://sso.example.go.id/jwks", "audience": "sinergi"}]
    )
    file = tmp_path / "me.graphql"
    file.write_text(ME)
    env = {"SINERGI_EXTERNAL_ISSUERS": issuers}
    code, out, err = sinergi(demo_url, "clients", "trust", client_id, str(file), env=env)
    assert (code, out) == (2, "")
    assert reason in err, err
    with pytest.raises(SettingsError, match="SINERGI_TRUSTED_DOCUMENTS"):
        _sso_settings(issuers, client_id)


def test_a_space_stops_start_in_a_registered_clients_id_only() -> None:
    """A token's client id claim may hold a space (an app named "bumd portal"), and an SSO
    principal's id with it: the setting takes that one, as `clients trust` does, and refuses
    a space only in the id of a client registered here, which never holds one."""
    issuers = json.dumps(
        [{"issuer": SSO, "jwks_url": "https://sso.example.go.id/jwks", "audience": "sinergi"}]
    )
    spaced = f"{SSO}#bumd portal@bumd:62"
    assert _sso_settings(issuers, spaced).trusted_documents == spaced
    with pytest.raises(SettingsError, match="SINERGI_TRUSTED_DOCUMENTS"):
        _sso_settings(issuers, "demo ministry")
