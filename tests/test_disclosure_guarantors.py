"""A credit guarantor attacks another guarantor's guarantee in its own province, as a province
attacks other provinces' businesses in tests/test_disclosure_churn.py: it knows its own
guarantees exactly, and it can move them between cells at will (a status change, a new
guarantee). Were its own part of a cell the province's guarantees, that part would hold the
rival's too, each move would draw its noise afresh, and the readings less its own amounts would
give the rival's loan (a reviewer did it to 0.1 % in 15 readings). Its own part is the
guarantees its client issued, and every other guarantee is held to the threshold on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from sinergi.settings import Settings
from tests.support.clients import second_guarantor
from tests.support.clock import Clock
from tests.support.demo_data import load_demo, release_figures
from tests.support.http import Api, served
from tests.test_eligibility_api import (
    CHECK,
    CHECKED_ON,
    FULL_ATTESTATION,
    JAMKRIDA,
    RECORD,
    _decision,
    _guarantee,
    _request,
)

RIVAL = "uji-jamkrida-lain"
"""A second guarantor of Kalimantan Tengah, the attacker; PT Jamkrida Kalteng is its victim."""
FIGURES = """{ guaranteeFigures(groupBy: [STATUS], region: "62") {
  key { value } suppressed count amountSum coverageSum } }"""
OWN_FIGURES = """{ guaranteeFigures(groupBy: [STATUS], region: "62") {
  key { value } suppressed count amountSum ownCount ownAmountSum } }"""
"""With its own part, which only a token with `guarantees:write` may ask for."""
STATUS = """mutation($id: ID!, $status: GuaranteeStatus!) {
  changeGuaranteeStatus(guaranteeId: $id, status: $status, effectiveOn: "2026-10-01") { status }
}"""
SECRET_LOAN = 47_300_000


def _battleground(url: str) -> str:
    """Demo businesses and clients, and the rival guarantor with its equity registered."""
    load_demo(url, msmes=200, seed=7)
    second_guarantor(url, RIVAL)
    return url


@pytest.fixture(scope="module")
def database(module_reference_url: str) -> str:
    """The module's battleground, which its tests share (each asks only of its own cells)."""
    return _battleground(module_reference_url)


@pytest.fixture
def own_database(own_reference_url: str) -> str:
    """A battleground of the test's own, for a test whose premise is a cell no other test wrote."""
    return _battleground(own_reference_url)


def _uncached(url: str) -> Iterator[Api]:
    """No figure cache: each table is computed afresh from the guarantees as they are."""
    with served(url, Settings(rate_limit=1_000_000, figures_cache_seconds=0)) as served_api:
        yield served_api


@pytest.fixture(scope="module")
def api(database: str) -> Iterator[Api]:
    """The module's shared battleground, served without a figure cache."""
    yield from _uncached(database)


@pytest.fixture
def own_api(own_database: str) -> Iterator[Api]:
    """The test's own battleground, served without a figure cache."""
    yield from _uncached(own_database)


def _candidate_regencies(url: str) -> list[tuple[str, str]]:
    """Kalteng demo MSMEs that pass the registry's rules, as tests/test_eligibility_api.py
    finds them, with their regencies: (NIB, regency)."""

    async def find() -> list[tuple[str, str]]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT m.nib, m.regency_code FROM msmes m "
                "JOIN msme_owners o ON o.msme_id = m.id "
                "WHERE m.province_code = '62' AND m.established_on < '2025-01-01' "
                "AND m.scale <> 'large' AND NOT EXISTS "
                "(SELECT 1 FROM guarantees g WHERE g.msme_id = m.id) ORDER BY m.id"
            )
            return [(str(row["nib"]), str(row["regency_code"])) for row in rows]
        finally:
            await connection.close()

    return asyncio.run(find())


def _not_the_attackers(url: str) -> list[str]:
    """The ids of the guarantees of Kalimantan Tengah, of any status, not the attacker's."""

    async def find() -> list[str]:
        connection = await asyncpg.connect(url)
        try:
            rows = await connection.fetch(
                "SELECT id FROM guarantees "
                "WHERE province_code = '62' AND guarantor_client_id <> $1",
                RIVAL,
            )
            return [str(row["id"]) for row in rows]
        finally:
            await connection.close()

    return asyncio.run(find())


def _candidates(url: str, regency: str | None = None) -> list[str]:
    """The candidates' NIBs, of `regency` only when given."""
    return [nib for nib, at in _candidate_regencies(url) if regency in (None, at)]


def _guarantees(
    api: Api, url: str, client_id: str, amounts: list[int], regency: str | None = None
) -> list[dict[str, Any]]:
    """One guarantee of `client_id` per amount, each on a business no guarantee covers yet (in
    `regency`, when given)."""
    recorded: list[dict[str, Any]] = []
    for nib in _candidates(url, regency):
        if len(recorded) == len(amounts):
            break
        request = _request({"nib": nib}, amounts[len(recorded)], 24, **FULL_ATTESTATION)
        with pytest.MonkeyPatch.context() as patch:
            Clock(patch, CHECKED_ON)
            decision = _decision(api.graphql(CHECK, client_id, {"request": request}))
            if decision["verdict"] != "ELIGIBLE":
                continue
            answer = api.graphql(RECORD, client_id, _guarantee(decision["id"]))
        assert "errors" not in answer, answer
        recorded.append(answer["data"]["recordGuarantee"])
    assert len(recorded) == len(amounts), "not enough eligible demo businesses"
    release_figures(url)  # guarantee figures are read from the release
    return recorded


def _table(api: Api, token: str, query: str = FIGURES) -> dict[str | None, dict[str, Any]]:
    answer = api.post({"query": query}, token).json()
    assert "errors" not in answer, answer
    return {cell["key"][0]["value"]: cell for cell in answer["data"]["guaranteeFigures"]}


def test_moving_its_own_guarantees_never_shows_a_rivals_lone_guarantee(
    own_api: Api, own_database: str
) -> None:
    """The victim's one ACTIVE guarantee; the attacker's six, flipped between ACTIVE and CLAIMED
    one at a time. Every cell holding the victim's guarantee stays hidden, under the attacker's
    full token and a narrowed one, however many of its own guarantees share the cell; its own
    part of each cell is published apart, exact, with `guarantees:write`, so what it would
    subtract is exactly what it knows, and nothing is left over to learn. Its battleground is
    its own: the premise is that the victim's guarantee is the only one the attacker does not
    know in the province (another's would leave it something to learn, or publish the cell)."""
    api, database = own_api, own_database
    (secret,) = _guarantees(api, database, JAMKRIDA, [SECRET_LOAN])
    amounts = [10_000_000 + n * 1_000_000 for n in range(6)]
    mine = _guarantees(api, database, RIVAL, amounts)
    assert _not_the_attackers(database) == [secret["id"]]
    status = {guarantee["id"]: "ACTIVE" for guarantee in mine}
    amount = {guarantee["id"]: int(guarantee["amount"]) for guarantee in mine}
    full, narrowed = api.token(RIVAL), api.token(RIVAL, scope="aggregates:read")
    assert secret["status"] == "ACTIVE"
    for move in range(12):
        for token in (full, narrowed):
            table = _table(api, token)
            for key in ("active", None):  # the victim's guarantee's cell, and the total
                if key not in table:  # hidden with none of its own: left out
                    assert key == "active", (move, table)
                    assert "ACTIVE" not in status.values(), (move, table)
                    continue
                cell = table[key]
                assert cell["suppressed"], (move, token == full, cell)
                assert (cell["count"], cell["amountSum"], cell["coverageSum"]) == (None,) * 3
        claimed = [id for id, now in status.items() if now == "CLAIMED"]
        if claimed:  # the attacker's own alone: hidden whole, its part exact, as its
            # mutations handed them back
            own = _table(api, full, OWN_FIGURES)["claimed"]
            assert (own["suppressed"], own["ownCount"]) == (True, len(claimed))
            assert int(own["ownAmountSum"]) == sum(amount[id] for id in claimed)
            # Without guarantees:write, perturbed on their own key (a sum's noise is never 0).
            own = _table(api, narrowed)["claimed"]
            assert own["suppressed"] or int(own["amountSum"]) != sum(amount[i] for i in claimed)
        flipped = mine[move % len(mine)]["id"]
        status[flipped] = "CLAIMED" if status[flipped] == "ACTIVE" else "ACTIVE"
        answer = api.graphql(STATUS, RIVAL, {"id": flipped, "status": status[flipped]})
        assert "errors" not in answer, answer
        release_figures(database)


def test_two_guarantors_are_never_handed_each_others_cached_table(database: str) -> None:
    """A table is cached for the victim, whose lone PAID_OFF guarantee it sees exactly (its
    own part of the cell); the attacker asking for the same document at once gets its own
    table, where it has no part and so no such cell: the victim's table would hand it the
    rival's loan."""
    settings = Settings(rate_limit=1_000_000, figures_cache_seconds=60, read_your_writes_seconds=0)
    with served(database, settings) as cached:
        (paid,) = _guarantees(cached, database, JAMKRIDA, [SECRET_LOAN + 1_000_000])
        answer = cached.graphql(STATUS, JAMKRIDA, {"id": paid["id"], "status": "PAID_OFF"})
        assert "errors" not in answer, answer
        release_figures(database)
        victims = _table(cached, cached.token(JAMKRIDA), OWN_FIGURES)["paid_off"]
        assert (victims["suppressed"], victims["ownCount"]) == (True, 1)
        assert int(victims["ownAmountSum"]) == SECRET_LOAN + 1_000_000
        # None of the attacker's own there: the hidden cell is left out of its table.
        assert "paid_off" not in _table(cached, cached.token(RIVAL), OWN_FIGURES)


BY_REGENCY = """{ guaranteeFigures(groupBy: [REGENCY, STATUS], region: "62") {
  key { value } suppressed count amountSum ownCount ownAmountSum ownCoverageSum } }"""


def test_a_cell_hides_alike_whether_a_rival_had_one_guarantee_in_it_or_none(
    api: Api, database: str
) -> None:
    """The attacker has one DEFAULTED guarantee in each of two regencies; the victim has one
    more in the first only. Were its own guarantees exempt from the threshold inside the whole
    cell, the second (its own alone) would be shown exact and the first hidden, and hidden would
    mean: a rival defaulted here. Both are hidden alike, and its own part of each is published
    apart, exactly."""
    by_regency: dict[str, int] = {}
    for _, regency in _candidate_regencies(database):
        by_regency[regency] = by_regency.get(regency, 0) + 1
    crowded, other = sorted(by_regency, key=by_regency.__getitem__, reverse=True)[:2]
    (victims,) = _guarantees(api, database, JAMKRIDA, [SECRET_LOAN + 2_000_000], crowded)
    mine = [
        *_guarantees(api, database, RIVAL, [21_000_000], crowded),
        *_guarantees(api, database, RIVAL, [22_000_000], other),
    ]
    for guarantee in (victims, *mine):
        client = JAMKRIDA if guarantee is victims else RIVAL
        answer = api.graphql(STATUS, client, {"id": guarantee["id"], "status": "DEFAULTED"})
        assert "errors" not in answer, answer
    release_figures(database)
    table = {
        (cell["key"][0]["value"], cell["key"][1]["value"]): cell
        for cell in api.graphql(BY_REGENCY, RIVAL)["data"]["guaranteeFigures"]
    }
    for guarantee, regency in zip(mine, (crowded, other), strict=True):
        cell = table[(regency, "defaulted")]
        assert cell["suppressed"], (regency, cell)
        assert (cell["count"], cell["amountSum"]) == (None, None)
        assert (cell["ownCount"], cell["ownAmountSum"]) == (1, guarantee["amount"])
        assert int(cell["ownCoverageSum"]) == int(guarantee["coverageAmount"])
    # The victim's view: the other regency holds only the attacker's default, none of its own;
    # a hidden cell there would tell it that a rival defaulted in that regency.
    seen_by_victim = {
        (cell["key"][0]["value"], cell["key"][1]["value"]): cell
        for cell in api.graphql(BY_REGENCY, JAMKRIDA)["data"]["guaranteeFigures"]
    }
    assert (other, "defaulted") not in seen_by_victim
    assert seen_by_victim[(crowded, "defaulted")]["ownCount"] == 1


COVERAGE = """{ guaranteeFigures(groupBy: [REGENCY, STATUS], region: "62") {
  suppressed amountSum coverageSum } }"""


def test_coverage_is_no_second_reading_of_the_amount(api: Api, database: str) -> None:
    """Every guarantee of this module covers exactly 70 % of its loan (the product's rate, each
    loan a multiple of 10 rupiah). Were coverage perturbed on a draw of its own, coverage / 0.7
    would be a second, independent reading of each cell's amount, and averaging the two would
    narrow it (a reviewer's 2.49 % error fell to 1.66 % over 31 cells). It takes the amount's
    noise instead, scaled: each part of a cell publishes 0.7 times its amount to the rupiah, so
    a cell of two parts (the caller's own and the others') is within a rupiah of it."""
    _guarantees(api, database, JAMKRIDA, [12_000_000 + n * 3_170_000 for n in range(10)])
    shown = 0
    for client, scope in [("demo-ministry", None), (RIVAL, None), (RIVAL, "aggregates:read")]:
        answer = api.post({"query": COVERAGE}, api.token(client, scope=scope)).json()
        assert "errors" not in answer, answer
        for cell in answer["data"]["guaranteeFigures"]:
            if cell["suppressed"]:
                continue
            amount, coverage = int(cell["amountSum"]), int(cell["coverageSum"])
            assert abs(10 * coverage - 7 * amount) <= 10, (client, scope, cell)
            shown += amount > 0
    assert shown >= 2  # at least the ministry's totals of all guarantees and active ones
