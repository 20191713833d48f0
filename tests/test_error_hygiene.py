"""Unexpected failures reach the client as INTERNAL with a correlation id and nothing else; the
detail (exception, SQL, stack) goes to the log under the same id."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from starlette.testclient import TestClient

from db.engine import async_url
from db.errors import loggable
from db.queries import auth_failures, indicators
from db.queries.audit import AuditWriter
from db.seed import load_reference
from db.writes import msmes
from resolvers import aggregates
from sinergi.app import create_app
from sinergi.demo import SEED_DATA
from sinergi.demo_mode import register_demo_clients
from sinergi.logs import exception_text, log_config
from sinergi.settings import Settings
from tests.support.databases import as_service, run
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

CLIENT = "demo-province-62"
MARKER = "secret_marker_column"


def _internal_error(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "INTERNAL", error
    correlation_id = error["extensions"]["correlationId"]
    assert correlation_id in error["message"]
    for leak in (MARKER, "SELECT", "Traceback", "File ", "pg_sleep", "asyncpg", "sqlalchemy"):
        assert leak not in response.text
    return {"body": body, "id": correlation_id}


def _logged(caplog: pytest.LogCaptureFixture, correlation_id: str) -> str:
    """The log record(s) for this correlation id, with their tracebacks."""
    records = [record for record in caplog.records if correlation_id in record.getMessage()]
    assert records, "the correlation id is in the log"
    return "\n".join(
        record.getMessage() + (caplog.text if record.exc_info else "") for record in records
    )


def test_a_read_past_the_statement_timeout_is_query_too_complex(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A read the request made too costly is the request's doing: QUERY_TOO_COMPLEX naming the
    statement timeout, not INTERNAL (a fault of ours) nor SERVICE_UNAVAILABLE (retry)."""

    async def timing_out(connection: AsyncConnection) -> list[Any]:
        await connection.execute(text("SET LOCAL statement_timeout = '20ms'"))
        await connection.execute(text(f"SELECT pg_sleep(5) AS {MARKER}"))
        raise AssertionError("unreachable: the statement times out")

    monkeypatch.setattr(indicators, "all_indicators", timing_out)
    with caplog.at_level(logging.WARNING, logger="sinergi.errors"):
        response = api.post({"query": "{ indicators { code } }"}, api.token(CLIENT))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] == {"indicators": None}
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "QUERY_TOO_COMPLEX", "limit": "statement timeout"}
    for leak in (MARKER, "SELECT", "Traceback", "pg_sleep", "asyncpg", "sqlalchemy"):
        assert leak not in response.text
    assert "statement timeout" in caplog.text
    faults = [
        r for r in caplog.records if r.name == "sinergi.errors" and r.levelno >= logging.ERROR
    ]
    assert not faults, "not logged as a fault of ours"


@pytest.mark.parametrize("failure", [RuntimeError, ValueError])
def test_a_failing_audit_write_withholds_the_records(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: type[Exception],
) -> None:
    """An extension failing after execution is outside the resolvers: still masked and logged.
    A ValueError too (a UnicodeError, a JSONDecodeError are ones): only a scalar's refusal of a
    value in the document is the caller's input, and it names that place."""

    async def failing(writer: AuditWriter, **entry: Any) -> None:
        raise failure(f"INSERT INTO audit_log ({MARKER}) failed")

    monkeypatch.setattr(AuditWriter, "append", failing)
    with caplog.at_level(logging.ERROR, logger="sinergi.errors"):
        response = api.post(
            {"query": '{ msme(nib: "9990000000001") { name owner { nik } } }'}, api.token(CLIENT)
        )
    found = _internal_error(response)
    assert found["body"].get("data") is None
    assert MARKER in _logged(caplog, found["id"])


def test_a_value_past_its_type_is_a_coded_internal_error_without_the_value(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """215 records of one province at the 10,000,000 employees a record may hold sum past
    GraphQL's 32-bit Int: the engine refuses the value it was handed. That is ours to fix, not
    the caller's input (it was BAD_USER_INPUT on field `query`, for every client of a national
    table), and the message must not carry the value."""
    too_many = 2_171_378_519
    published = aggregates.figures

    def past_int(*arguments: Any, **keywords: Any) -> list[Any]:
        cells = published(*arguments, **keywords)
        for cell in cells:
            cell.employees_sum = too_many
        return cells

    monkeypatch.setattr(aggregates, "figures", past_int)
    with caplog.at_level(logging.ERROR, logger="sinergi.errors"):
        response = api.post(
            {"query": "{ msmeFigures(groupBy: [SCALE]) { count employeesSum } }"},
            api.token(CLIENT),
        )
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert errors
    for error in errors:
        assert error["extensions"]["code"] == "INTERNAL", error
        assert error["extensions"]["correlationId"] in error["message"]
    assert str(too_many) not in response.text
    assert "32-bit" in _logged(caplog, errors[0]["extensions"]["correlationId"])


def test_syntax_errors_carry_a_code(api: Api) -> None:
    response = api.post({"query": "{ viewer { "}, api.token(CLIENT))
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["locations"] == [{"line": 1, "column": 12}]


def test_a_failure_outside_graphql_is_a_coded_internal_error_too(
    fresh_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An unexpected exception before any GraphQL runs (here: the token check meets a table
    that is gone, which is no outage) is answered as INTERNAL with a correlation id, never a
    bare 500 page; the detail is logged under that id."""

    async def prepare(sql: str | None) -> None:
        engine = create_async_engine(async_url(fresh_url))
        try:
            if sql is None:
                async with engine.begin() as connection:
                    await load_reference(connection, SEED_DATA, targets=False)
                await register_demo_clients(engine)
            else:
                async with engine.begin() as connection:
                    await connection.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(prepare(None))
    with TestClient(create_app(Settings(), database_url=as_service(fresh_url))) as client:
        api = Api(client)
        token = api.token(CLIENT)
        asyncio.run(prepare(f"ALTER TABLE client_writes RENAME TO {MARKER}"))
        with caplog.at_level(logging.ERROR, logger="sinergi.errors"):
            response = api.post({"query": "{ __typename }"}, token)
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["x-request-id"]
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "INTERNAL", error
    correlation_id = error["extensions"]["correlationId"]
    assert correlation_id in error["message"]
    for leak in ("client_writes", "Traceback", "asyncpg", "sqlalchemy"):
        assert leak not in response.text
    assert "client_writes" in _logged(caplog, correlation_id)


def test_a_failure_at_the_token_endpoint_is_an_oauth_server_error(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A token client reads RFC 6749's `error`, not GraphQL's `errors`: an unexpected failure
    at /oauth/token was answered in GraphQL's shape. It is `server_error` now, with the
    contract's code and the correlation id it is logged under, and is not cached."""

    async def failing(*_: object) -> None:
        raise RuntimeError(MARKER)

    monkeypatch.setattr(auth_failures, "reserve", failing)
    with caplog.at_level(logging.ERROR, logger="sinergi.errors"):
        response = api.token_response(CLIENT)
    assert response.status_code == 500
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"  # as every token endpoint answer has
    assert response.headers["x-request-id"]
    body = response.json()
    assert set(body) == {"error", "error_description", "code", "correlationId"}
    assert (body["error"], body["code"]) == ("server_error", "INTERNAL")
    assert body["correlationId"] in body["error_description"]
    assert MARKER not in response.text
    assert MARKER in _logged(caplog, body["correlationId"])


def test_a_refused_input_and_a_forbidden_field_log_no_error_and_no_personal_data(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused variable's message, as graphql-core writes it, echoes the whole input, the
    owner's NIK and name included; a FORBIDDEN field is the caller's answer. Neither is a fault
    to log, least of all with the input."""
    nik, name = "6271995204889999", "Siti Rahmawati Uji"
    create = "mutation Create($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
    new = {"nib": "7790000000099", "name": "X", "kbliCode": "47112", "region": "62.71"}
    refused = {"input": {**new, "bogus": 1, "owner": {"nik": nik, "fullName": name}}}
    forbidden = [{"query": "{ msmes(first: 1) { nodes { owner { nik } } } }"}]  # a batch
    with caplog.at_level(logging.DEBUG):
        first = api.post({"query": create, "variables": refused}, api.token(CLIENT))
        second = api.post(forbidden, api.token(CLIENT, "records:read"))
    assert first.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert second.json()[0]["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert [record for record in caplog.records if record.levelno >= logging.ERROR] == []
    assert nik not in caplog.text
    assert name not in caplog.text


NIK = re.compile(r"\b\d{16}\b")


def test_a_subscription_whose_audit_write_is_held_up_gets_a_coded_error(
    demo_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery's audit write held up (an insider holding the audit log's lock) withholds the
    page, as over HTTP, and the client learns only that it was held up (SERVICE_UNAVAILABLE, at
    the lock timeout): once it got the exception's text, the audit statement with its entry and
    the data subjects' NIKs as parameters. The log names neither the NIKs nor the entry."""
    subscribe = "subscription { msmeChanges { entries { id record } endCursor } }"
    loop = asyncio.new_event_loop()
    engine = create_async_engine(async_url(demo_url))
    loop.run_until_complete(register_demo_clients(engine))
    loop.run_until_complete(engine.dispose())
    holder = loop.run_until_complete(asyncpg.connect(demo_url))
    try:
        with served(demo_url, Settings(rate_limit=1_000_000, statement_timeout_ms=1_000)) as api:
            auth = {"Authorization": f"Bearer {api.token(CLIENT)}"}
            loop.run_until_complete(
                holder.execute("BEGIN; SELECT pg_advisory_xact_lock(hashtext('sinergi.audit_log'))")
            )
            with (
                caplog.at_level(logging.WARNING),
                api.client.websocket_connect("/graphql", ["graphql-transport-ws"]) as socket,
            ):
                socket.send_json({"type": "connection_init", "payload": auth})
                assert socket.receive_json()["type"] == "connection_ack"
                payload = {"query": subscribe}
                socket.send_json({"id": "1", "type": "subscribe", "payload": payload})
                frame = socket.receive_text()
    finally:
        loop.run_until_complete(holder.close())
        loop.close()
    message = json.loads(frame)
    assert message["type"] == "error", message  # as a page meeting an outage: it ends there
    (error,) = message["payload"]
    assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE"}, error
    assert "held up" in error["message"]
    for leak in ("audit_log", "INSERT", "SELECT", "sqlalchemy", "asyncpg", "lock timeout"):
        assert leak not in frame.replace("the lock timeout", "")
    assert NIK.search(frame) is None
    assert "held up past the lock timeout" in caplog.text
    assert NIK.search(caplog.text) is None


def test_a_failing_row_s_personal_data_stays_out_of_the_error_log(
    module_reference_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL's DETAIL of a failed write spells out the row (`Failing row contains (…)`),
    the owner's NIK, name, birth date, phone and address among it, and asyncpg's and
    SQLAlchemy's exception texts repeat it: `hide_parameters` hides none of it. The serving
    log's lines, JSON or text, name the constraint and the correlation id, not the values."""
    owner = {
        "nik": "6271014101900088",
        "fullName": "Forced Failure Rahasia",
        "sex": "F",
        "birthDate": "1990-01-01",
        "phone": "081255556666",
        "address": "Jl. Rahasia 11",
    }
    business = {
        "nib": "7745000000001",
        "name": "Usaha Uji Log",
        "kbliCode": "47112",
        "scale": "MICRO",
    }
    create = "mutation Create($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"

    demo_clients(module_reference_url)
    # A rule the API's validation does not know, as a hand-made constraint would be.
    run(
        module_reference_url,
        "ALTER TABLE msme_owners ADD CONSTRAINT forced_owner_check"
        " CHECK (full_name NOT LIKE '%Rahasia%') NOT VALID",
    )
    try:
        with served(module_reference_url) as api, caplog.at_level(logging.ERROR):
            variables = {"input": {**business, "region": "62.71", "owner": owner}}
            found = _internal_error(
                api.post({"query": create, "variables": variables}, api.token(CLIENT))
            )
    finally:
        run(module_reference_url, "ALTER TABLE msme_owners DROP CONSTRAINT forced_owner_check")
    (record,) = [r for r in caplog.records if found["id"] in r.getMessage()]
    assert record.exc_info is not None
    # A warning given the error as an argument (`log.warning("could not …: %s", error)`).
    warning = logging.LogRecord(
        "sinergi.x", logging.WARNING, __file__, 1, "could not: %s", (record.exc_info[1],), None
    )
    personal = [value for name, value in owner.items() if name != "sex"]
    for log_format in ("json", "text"):
        formatter = log_config(Settings(log_format=log_format))["formatters"]["default"]
        format_line = formatter["()"](formatter.get("format")).format
        line, warned = format_line(record), format_line(warning)
        for value in [*personal, "1990", "Failing row"]:
            assert value not in line, (value, line)
            assert value not in warned, (value, warned)
        assert found["id"] in line
        for located in ("forced_owner_check", "23514", "msme_owners"):
            assert located in line
            assert located in warned
        assert "Traceback" in line  # where it failed stays
        assert "File " in line


def _postgres_error(error: BaseException) -> BaseException:
    """PostgreSQL's error inside SQLAlchemy's, whose text carries its DETAIL."""
    while not isinstance(error, asyncpg.PostgresError):
        error = error.orig if isinstance(error, DBAPIError) and error.orig else error.__cause__
    return error


async def _quoting(wrapped: Callable[..., Awaitable[Any]], *arguments: Any) -> Any:
    """`wrapped`, its database error raised again as another exception quoting its text."""
    try:
        return await wrapped(*arguments)
    except DBAPIError as error:
        raise RuntimeError(f"could not store the owner: {_postgres_error(error)}") from error


async def _quoting_while_handling(wrapped: Callable[..., Awaitable[Any]], *arguments: Any) -> Any:
    """As `_quoting`, but raised while handling it (its context, not its cause), and hiding it."""
    try:
        return await wrapped(*arguments)
    except DBAPIError as error:
        raise RuntimeError(f"could not store the owner ({_postgres_error(error)})") from None


@pytest.mark.parametrize(
    "wrapping",
    [None, _quoting, _quoting_while_handling],
    ids=["as-raised", "quoted-by-its-consequence", "quoted-while-handling"],
)
def test_a_unique_violation_s_nik_stays_out_of_every_log_line(
    module_reference_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    wrapping: Callable[..., Awaitable[Any]] | None,
) -> None:
    """A unique violation's DETAIL names the key (`Key (nik)=(…) already exists`): the INTERNAL
    line tells the database error without it, and now an exception raised from it (or while
    handling it) whose message quotes its text as well: that message reached the log whole, the
    NIK in it, in the traceback and wherever a line was given the exception."""
    case = [None, _quoting, _quoting_while_handling].index(wrapping)
    nik = f"627101410190007{case}"
    owner = {"nik": nik, "fullName": "Pemilik Unik", "sex": "F", "birthDate": "1990-01-01"}
    create = "mutation Create($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
    if wrapping is not None:
        monkeypatch.setattr(msmes, "set_owner", functools.partial(wrapping, msmes.set_owner))

    demo_clients(module_reference_url)
    # A rule the API does not know, as a hand-made index would be: one business per owner.
    run(module_reference_url, "CREATE UNIQUE INDEX forced_one_business ON msme_owners (nik)")
    try:
        with served(module_reference_url) as api, caplog.at_level(logging.ERROR):
            token = api.token(CLIENT)
            for number in (f"77870000{case}0001", f"77870000{case}0002"):
                business = {"nib": number, "name": "Usaha Unik", "kbliCode": "47112"}
                variables = {"input": {**business, "scale": "MICRO", "region": "62.71"}}
                variables["input"]["owner"] = owner
                response = api.post({"query": create, "variables": variables}, token)
    finally:
        run(module_reference_url, "DROP INDEX forced_one_business")
    found = _internal_error(response)
    assert nik not in response.text
    (record,) = [r for r in caplog.records if found["id"] in r.getMessage()]
    assert record.exc_info is not None
    # Lines given the exception itself: as the argument and as the message.
    given = [
        logging.LogRecord(
            "sinergi.x", logging.WARNING, __file__, 1, "could not: %s", (error,), None
        )
        for error in (record.exc_info[1],)
    ] + [logging.LogRecord("sinergi.x", logging.ERROR, __file__, 1, record.exc_info[1], (), None)]
    lines = []
    for log_format in ("json", "text"):
        formatter = log_config(Settings(log_format=log_format))["formatters"]["default"]
        format_line = formatter["()"](formatter.get("format")).format
        lines.extend(format_line(each) for each in [*caplog.records, *given])
    assert any(found["id"] in line and "forced_one_business" in line for line in lines)
    for line in lines:
        assert nik not in line, line
        assert "forced_one_business" in line or found["id"] not in line


def test_a_bound_value_the_driver_could_not_encode_stays_out_of_the_log() -> None:
    """asyncpg refuses a value it cannot encode for its parameter's type before sending it, as
    SQLSTATE 22000, quoting the value (a NIK bound where a date belongs) unquoted by `"`."""
    nik = "6271015505900001"
    message = (
        f"invalid input for query argument $1: '{nik}' ('str' object has no attribute 'toordinal')"
    )
    cause = asyncpg.exceptions.DataError(message)
    wrapped = DBAPIError("SELECT $1::date", [nik], cause, hide_parameters=True)
    wrapped.__cause__ = cause

    assert loggable(cause) == "[SQLSTATE 22000] invalid input for query argument $1: …"
    assert loggable(wrapped) == loggable(cause)
    text = exception_text(wrapped)
    assert nik not in text, text
    assert "query argument $1" in text
