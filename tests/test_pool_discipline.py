"""No request holds one pooled connection while waiting for another.

The pool does not overflow (db/engine.py), so a request that did would, under load, wait for
itself: every connection held by a request waiting for a second one, until the pool timeout.
On a pool of ONE connection any such path times out, so each kind of request runs here on one:
reads compiled into one statement (schema/compiled.py) and resolved row by row, figures, an
eligibility decision and writes.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool
from starlette.requests import HTTPConnection

from auth.http import AuthUnavailable, bearer_user, unauthorized
from auth.principal import Principal
from auth.scopes import OrgKind
from auth.service import AuthService
from db.engine import create_engine
from schema.engine import Engine
from sinergi.demo_mode import DEMO_SECRET
from sinergi.settings import Settings
from tests.support.databases import as_service
from tests.support.graphql import SCHEMA, principal, request_context, run
from tests.support.http import Api, served
from tests.support.minted import seal_key

PROVINCE = principal(OrgKind.PROVINCE, "62")
MINISTRY = principal(OrgKind.MINISTRY, "ID")
JAMKRIDA = principal(OrgKind.BUMD, "62")
ENGINE = Engine(SCHEMA)

COMPILED_READS = [
    (
        PROVINCE,
        '{ msmes(first: 5, filter: {region: "62.71"}) { totalCount nodes { nib'
        " regency { name province { name } } cooperative { name regency { name } } } } }",
    ),
    (PROVINCE, '{ cooperatives(first: 3, filter: {region: "62"}) { nodes { name } } }'),
    (MINISTRY, '{ msmeFigures(filter: {region: "62"}, groupBy: [REGENCY, SCALE]) { count } }'),
    (MINISTRY, "{ cooperativeFigures(groupBy: [PROVINCE, TYPE]) { count } }"),
]
ROW_BY_ROW_READS = [
    '{ cooperatives(first: 3, filter: {region: "62"}) { nodes { name'
    " memberMsmes(first: 2) { nodes { nib regency { name } } } changes { operation } } } }",
    '{ programme(id: "PR-MBG") { participants { msme { nib regency { code } } } } }',
    '{ indicator(code: "KOP_PRODUSEN_JUMLAH") { code targets { year } } }',
]
CHECK = """
mutation { checkEligibility(request: {nib: "9990000000001", product: "JAMKRIDA_KTG_PRODUKTIF",
  loanAmount: "50000000", tenorMonths: 24, attestation: {maxCollectibility: 1,
  hasOtherProductiveCredit: false, feasibilityApproved: true, onNationalBlacklist: false,
  hasNpwp: true}}) { verdict } }
"""


def _one_connection(url: str) -> AsyncEngine:
    return create_engine(url, statement_timeout_ms=10_000, pool_size=1, pool_timeout_seconds=2)


@pytest.fixture(scope="module")
async def demo(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = _one_connection(as_service(demo_url))
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def reference(reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = _one_connection(as_service(reference_url))
    yield engine
    await engine.dispose()


@pytest.mark.parametrize(("who", "document"), COMPILED_READS)
async def test_compiled_reads_need_one_connection_at_a_time(
    demo: AsyncEngine, who: Principal, document: str
) -> None:
    context = request_context(demo, who)
    answer = await ENGINE.answer(context, {"query": document})
    assert answer is not None
    assert "errors" not in answer, answer


@pytest.mark.parametrize("document", ROW_BY_ROW_READS)
async def test_reads_resolved_row_by_row_need_one_connection_at_a_time(
    demo: AsyncEngine, document: str
) -> None:
    result = await run(demo, PROVINCE, document)
    assert result.errors is None, result.errors


async def test_an_eligibility_decision_needs_one_connection_at_a_time(demo: AsyncEngine) -> None:
    result = await run(demo, JAMKRIDA, CHECK)
    assert result.errors is None, result.errors
    assert result.data["checkEligibility"]["verdict"]


async def test_writes_need_one_connection_at_a_time(reference: AsyncEngine) -> None:
    create = """
    mutation { createMsme(input: {nib: "7795000000001", name: "Warung Satu", kbliCode: "47112",
      region: "62.71", capital: "50000000", annualTurnover: "90000000"})
      { id version regency { name province { name } } changes { operation } } }
    """
    created: Any = await run(reference, PROVINCE, create)
    assert created.errors is None, created.errors
    update = """
    mutation($id: ID!) { updateMsme(id: $id, version: 1, changes: {employees: 4})
      { version changes { operation } } }
    """
    updated: Any = await run(reference, PROVINCE, update, {"id": created.data["createMsme"]["id"]})
    assert updated.errors is None, updated.errors
    assert updated.data["updateMsme"]["version"] == 2


async def test_a_token_check_that_finds_the_pool_exhausted_is_an_outage_not_a_bug(
    demo_url: str, api: Api
) -> None:
    """Every connection busy past the pool timeout: 503 SERVICE_UNAVAILABLE, never a 500."""
    engine = create_engine(
        as_service(demo_url), statement_timeout_ms=10_000, pool_size=1, pool_timeout_seconds=1
    )
    auth = AuthService(
        engine,
        token_seal_key=seal_key(),
        issuer="http://localhost:8000",
        audience="sinergi",
        token_lifetime_seconds=60,
        failure_limits=Settings().failure_limits,
    )
    try:
        await auth.startup()
        token = await auth.mint_for_client("demo-province-62", DEMO_SECRET, address="127.0.0.1")
        scope = {
            "type": "http",
            "headers": [(b"authorization", f"Bearer {token}".encode())],
            "state": {"auth": auth},
        }
        async with engine.connect():  # the only connection, held
            with pytest.raises(AuthUnavailable):
                await bearer_user(HTTPConnection(scope))
        assert unauthorized(HTTPConnection(scope), AuthUnavailable("x")).status_code == 503
    finally:
        await engine.dispose()


def test_one_request_holds_at_most_half_the_pool(api: Api, demo_url: str) -> None:
    """The attack: one request of 24 figure tables took all ten pooled connections, and other
    clients got 503 after the pool timeout. A request's reads now share half the pool, and its
    figure tables are read one after another (resolvers.aggregates)."""
    # Counted per thread: each served app runs in its own event loop's thread (TestClient's
    # portal), and the session's `api` app, over the same database, does its background work
    # meanwhile, which is no part of this request's.
    held: Counter[int] = Counter()
    most = [0]

    def checked_out(*_: Any) -> None:
        held[threading.get_ident()] += 1
        most[0] = max(most[0], held[threading.get_ident()])

    def checked_in(*_: Any) -> None:
        held[threading.get_ident()] -= 1

    tables = " ".join(
        f'f{i}: msmeFigures(filter: {{region: "62"}}, groupBy: [REGENCY, SCALE]) {{ count }}'
        for i in range(12)
    )
    settings = Settings(rate_limit=1_000_000, db_pool_size=6, figures_cache_seconds=0)
    with served(demo_url, settings) as bounded:
        token = bounded.token("demo-ministry")
        assert bounded.post({"query": "{ __typename }"}, token).status_code == 200
        event.listen(Pool, "checkout", checked_out)
        event.listen(Pool, "checkin", checked_in)
        try:
            response = bounded.post({"query": "{ " + tables + " }"}, token)
        finally:
            event.remove(Pool, "checkout", checked_out)
            event.remove(Pool, "checkin", checked_in)
    assert response.status_code == 200, response.text
    assert "errors" not in response.json()
    # One for the request's tables; one more at most for the app's own background work.
    assert 1 <= most[0] <= 2
