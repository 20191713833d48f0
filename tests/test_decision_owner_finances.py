"""A decision about a sole proprietor's business tells of the owner's finances: R02 weighs the
scale the figures band (annual sales, else capital), and the decision's verdict and rule results
say whether that band is one the product guarantees. Its audit entry named the owner as the data
subject but itemised no personal field, where the same band read as `Msme.scale` is itemised.
A decision or a guarantee handed out, whatever of it is selected, now itemises the figures its
rules weigh; a guarantee in `guaranteeChanges` too, pulled over HTTP or pushed over a WebSocket,
whose entries named the owner and itemised nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from itertools import count
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sinergi.demo_mode import DEMO_SECRET
from tests.support.clients import second_guarantor
from tests.support.clock import Clock
from tests.support.decisions import GUARANTOR, check_request, decided, registered_msme
from tests.support.graphql import run
from tests.support.http import Api, served

CHECKED = count(931)
"""Each test's business and owner its own: the number ending its NIB and its owner's NIK."""
WEIGHED = {"Msme.annualTurnover", "Msme.capital", "Msme.scale"}
"""The owner's finances R02 weighs: the scale, banded from the annual sales or the capital."""
CHECK = """
mutation FinancesCheck($request: EligibilityRequest!) {
  checkEligibility(request: $request) { id results { ruleId messageEn } }
}
"""
READ = """
query FinancesRead($id: ID!) { eligibilityDecision(id: $id) { id verdict } }
"""
REVIEW = """
mutation FinancesReview($id: ID!) {
  resolveEligibilityReview(decisionId: $id, verdict: ELIGIBLE, reviewer: "Ir. Analis",
    reason: "checked") { id }
}
"""
RECORD = """
mutation FinancesRecord($g: GuaranteeInput!) { recordGuarantee(guarantee: $g) { id } }
"""
FEED = "query FinancesFeed { guaranteeChanges(first: 10) { entries { id change record } } }"
LIVE = "subscription FinancesLive { guaranteeChanges { entries { id change record } } }"


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, date(2026, 12, 6))


@pytest.fixture
async def checked(engine: AsyncEngine, clock: Clock) -> tuple[str, str, str]:
    """A new business's NIB, its owner's NIK, and the ELIGIBLE decision about it, checked with
    `{ id }` (`DecisionCheck`)."""
    number = next(CHECKED)
    nib, nik = f"7749900000{number}", f"627199520488{number:04}"
    _, decision = await decided(engine, nib, nik)
    return nib, nik, decision


@pytest.fixture(scope="module")
def http(reference_url: str) -> Iterator[Api]:
    """The app over `engine`'s database, for the change feed as a client pulls it over HTTP
    and has it pushed over a WebSocket."""
    with served(reference_url) as api:
        yield api


@pytest.fixture
async def guaranteed(engine: AsyncEngine, reference_url: str, http: Api) -> tuple[str, str, str]:
    """A guarantor of the test's own, registered with the demo secret, that checked a new
    business and recorded a guarantee on the decision, over HTTP: the guarantor's id, the
    owner's NIK and the guarantee's id. Its feed holds that guarantee alone."""
    number = next(CHECKED)
    nib, nik = f"7749900000{number}", f"627199520488{number:04}"
    client = f"test-feed-guarantor-{number}"
    await asyncio.to_thread(second_guarantor, reference_url, client)
    await registered_msme(engine, nib, nik)
    checked = await asyncio.to_thread(http.graphql, CHECK, client, {"request": check_request(nib)})
    assert "errors" not in checked, checked
    guarantee = {
        "decisionId": checked["data"]["checkEligibility"]["id"],
        "bank": "Bank Kalteng",
        "startsOn": "2026-12-06",
        "endsOn": "2027-12-06",
    }
    recorded = await asyncio.to_thread(http.graphql, RECORD, client, {"g": guarantee})
    assert "errors" not in recorded, recorded
    return client, nik, recorded["data"]["recordGuarantee"]["id"]


async def _audited(
    engine: AsyncEngine, operation: str, client: str | None = None
) -> tuple[list[str], list[str]]:
    """The subjects and personal fields of the latest audit entry of `operation` (by `client`,
    if given)."""
    statement = text(
        "SELECT subjects, entry->'personalFields' AS personal FROM audit_log"
        " WHERE entry->>'operation' = :operation AND client_id = coalesce(:client, client_id)"
        " ORDER BY seq DESC LIMIT 1"
    )
    async with engine.connect() as connection:
        found = await connection.execute(statement, {"operation": operation, "client": client})
        row = found.one()
    return sorted(row.subjects), list(row.personal)


async def test_a_check_handing_out_its_results_itemises_the_figures_they_weigh(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    nib, nik, _ = checked
    again = await run(engine, GUARANTOR, CHECK, {"request": check_request(nib)})
    assert again.errors is None, again.errors
    subjects, personal = await _audited(engine, "FinancesCheck")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_check_handing_out_its_id_alone_itemises_them_too(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    """Over-recorded rather than worked out per field: the decision's own fields tell of the
    figures one way or another, and one rule is simpler to prove than a list of fields."""
    _, nik, _ = checked
    subjects, personal = await _audited(engine, "DecisionCheck")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_decision_read_itemises_the_figures_its_rules_weigh(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    _, nik, decision = checked
    read = await run(engine, GUARANTOR, READ, {"id": decision})
    assert read.errors is None, read.errors
    subjects, personal = await _audited(engine, "FinancesRead")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_a_review_refused_for_the_verdict_it_names_itemises_the_figures(
    engine: AsyncEngine, checked: tuple[str, str, str]
) -> None:
    """The refusal says the decision is ELIGIBLE, whatever the document selects."""
    _, nik, decision = checked
    refused = await run(engine, GUARANTOR, REVIEW, {"id": decision})
    assert refused.errors is not None
    assert "ELIGIBLE" in refused.errors[0].message
    subjects, personal = await _audited(engine, "FinancesReview")
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


async def test_the_guarantee_feed_pulled_over_http_itemises_the_figures(
    engine: AsyncEngine, http: Api, guaranteed: tuple[str, str, str]
) -> None:
    client, nik, guarantee = guaranteed
    feed = await asyncio.to_thread(http.graphql, FEED, client)
    assert "errors" not in feed, feed
    assert [entry["id"] for entry in feed["data"]["guaranteeChanges"]["entries"]] == [guarantee]
    subjects, personal = await _audited(engine, "FinancesFeed", client)
    assert subjects == [nik]
    assert set(personal) >= WEIGHED


def _pushed(http: Api, client: str) -> dict[str, Any]:
    """The first page the guarantee feed's subscription pushes to `client`."""
    with http.socket((client, DEMO_SECRET)) as socket:
        socket.send_json({"id": "1", "type": "subscribe", "payload": {"query": LIVE}})
        message: dict[str, Any] = socket.receive_json()
        socket.send_json({"id": "1", "type": "complete"})
    assert message["type"] == "next", message
    return message


async def test_the_guarantee_feed_pushed_over_a_websocket_itemises_the_figures(
    engine: AsyncEngine, http: Api, guaranteed: tuple[str, str, str]
) -> None:
    client, nik, guarantee = guaranteed
    pushed = await asyncio.to_thread(_pushed, http, client)
    assert "errors" not in pushed["payload"], pushed
    entries = pushed["payload"]["data"]["guaranteeChanges"]["entries"]
    assert [entry["id"] for entry in entries] == [guarantee]
    subjects, personal = await _audited(engine, "FinancesLive", client)
    assert subjects == [nik]
    assert set(personal) >= WEIGHED
