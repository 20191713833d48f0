"""What a guarantor's decisions and guarantees rest on besides its own request, through the real
schema: R13 counts the guarantor's own defaulted guarantees, never a rival's; and a guarantee
rests on a recent decision that the register has not overturned since.

A rival guarantor of the same province attacks PT Jamkrida Kalteng's business with it: it checks
the business (the lender's facts are whatever the caller attests), records a guarantee of Rp1 of
cover on its decision and marks it defaulted the same day (a default is final). Counted against
every guarantor, that default made each of Jamkrida's checks of the business NOT_ELIGIBLE and
voided its earlier ELIGIBLE decisions at recordGuarantee, and told it of the rival's default.

And a guarantee was recorded on an ELIGIBLE decision however old, about a business that had
since closed, left the province or taken up subsidised programme credit.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from tests.support.clients import second_guarantor
from tests.support.clock import Clock
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served
from tests.test_eligibility_api import (
    CHECK,
    FULL_ATTESTATION,
    JAMKRIDA,
    RECORD,
    STATUS,
    _decision,
    _guarantee,
    _request,
)
from tests.test_eligibility_registry import DEACTIVATE_MSME, _register
from tests.test_participation_status import ADD

RIVAL = "uji-jamkrida-saingan"
"""A second guarantor of Kalimantan Tengah, the attacker; PT Jamkrida Kalteng is its victim."""
TODAY = date(2026, 12, 7)
"""Under rule set 2026.5, which words R13 as 2026.4 does: the guarantor's own guarantees."""
ISSUED = {"startsOn": TODAY.isoformat(), "endsOn": "2028-12-07"}
"""A guarantee issued on the day of the checks, for the loan's 24 months."""


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch, TODAY)


KUR = "PR-UJI-KUR-62"
"""A subsidised-credit programme of this module's own (the shipped programmes have none)."""


def _as_owner(url: str, statement: str, *arguments: object) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(statement, *arguments)
        finally:
            await connection.close()

    asyncio.run(run())


@pytest.fixture(scope="module")
def api(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own: the province registers the businesses,
    PT Jamkrida Kalteng and its rival check and guarantee them."""
    demo_clients(module_reference_url)
    second_guarantor(module_reference_url, RIVAL)
    _as_owner(
        module_reference_url,
        "INSERT INTO programmes (id, name, kind, jurisdiction)"
        " VALUES ($1, 'Kredit Usaha Rakyat (uji)', 'subsidised_credit', '62')",
        KUR,
    )
    with served(module_reference_url) as served_api:
        yield served_api


def _business(api: Api, nib: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A micro business of Palangka Raya that passes every rule: the request to check it today,
    and the record the province registered (its id and version)."""
    record = _register(api, nib, capital="50000000", annualTurnover="240000000")
    return _request({"nib": nib}, 50_000_000, 24, **FULL_ATTESTATION, checkDate=None), record


def _checked(api: Api, request: dict[str, Any], client_id: str) -> dict[str, Any]:
    return _decision(api.graphql(CHECK, client_id, {"request": request}))


def _r13(decision: dict[str, Any]) -> tuple[str, str]:
    (r13,) = [r for r in decision["results"] if r["ruleId"] == "R13"]
    assert r13["messageEn"].endswith(
        "guarantee this guarantor issued for this business is in default."
    )
    return r13["outcome"], r13["reason"]


def _guaranteed(api: Api, client_id: str, decision_id: str, **terms: str) -> str:
    recorded = api.graphql(RECORD, client_id, _guarantee(decision_id, **{**ISSUED, **terms}))
    assert "errors" not in recorded, recorded
    guarantee_id: str = recorded["data"]["recordGuarantee"]["id"]
    return guarantee_id


def _defaulted(api: Api, client_id: str, guarantee_id: str) -> None:
    variables = {"id": guarantee_id, "status": "DEFAULTED", "on": ISSUED["startsOn"]}
    answer = api.graphql(STATUS, client_id, variables)
    assert answer["data"]["changeGuaranteeStatus"]["status"] == "DEFAULTED", answer


def test_a_rivals_default_of_rp1_changes_neither_the_guarantors_verdict_nor_its_guarantee(
    api: Api,
) -> None:
    request, _ = _business(api, "7791000000001")
    before = _checked(api, request, JAMKRIDA)
    kept = _checked(api, request, JAMKRIDA)  # to be guaranteed after the rival's default
    assert (before["verdict"], _r13(before)) == ("ELIGIBLE", ("PASS", "pass"))

    rivals = _checked(api, request, RIVAL)
    assert rivals["verdict"] == "ELIGIBLE"
    _defaulted(api, RIVAL, _guaranteed(api, RIVAL, rivals["id"], coverageAmount="1"))

    after = _checked(api, request, JAMKRIDA)
    assert (after["verdict"], _r13(after)) == ("ELIGIBLE", ("PASS", "pass"))
    assert after["results"] == before["results"]  # nothing tells Jamkrida of the rival's book
    _guaranteed(api, JAMKRIDA, kept["id"])
    # The rival's default is the rival's: its own next check fails R13.
    assert _r13(_checked(api, request, RIVAL)) == ("FAIL", "defaulted")


def test_the_guarantors_own_default_still_fails_r13_for_it_alone(api: Api) -> None:
    request, _ = _business(api, "7791000000002")
    first = _checked(api, request, JAMKRIDA)
    earlier = _checked(api, request, JAMKRIDA)  # made before the default
    _defaulted(api, JAMKRIDA, _guaranteed(api, JAMKRIDA, first["id"]))

    again = _checked(api, request, JAMKRIDA)
    assert (again["verdict"], _r13(again)) == ("NOT_ELIGIBLE", ("FAIL", "defaulted"))
    stale = api.graphql(RECORD, JAMKRIDA, _guarantee(earlier["id"], **ISSUED))
    (error,) = stale["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "guarantee.decisionId",
    )
    rivals = _checked(api, request, RIVAL)
    assert (rivals["verdict"], _r13(rivals)) == ("ELIGIBLE", ("PASS", "pass"))


def test_a_guarantee_rests_on_a_decision_checked_at_most_a_fortnight_before(
    api: Api, clock: Clock
) -> None:
    """As far back as a check may be dated: a decision months old rests on the lender's
    attestation and the register as they were then."""
    request, _ = _business(api, "7791000000003")
    last_day, too_late = _checked(api, request, JAMKRIDA), _checked(api, request, JAMKRIDA)

    clock.day = TODAY + timedelta(days=14)
    _guaranteed(api, JAMKRIDA, last_day["id"])
    clock.day = TODAY + timedelta(days=15)
    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(too_late["id"], **ISSUED))
    assert refused["data"] == {"recordGuarantee": None}
    (error,) = refused["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "guarantee.decisionId"}
    assert error["message"] == (
        "guarantee.decisionId: the decision is of 2026-12-07, more than 14 days ago "
        "(a guarantee rests on one of 2026-12-08 or later): check again"
    )


def _closed(api: Api, url: str, business: dict[str, Any]) -> None:
    variables = {"id": business["id"], "version": business["version"]}
    closed = api.graphql(DEACTIVATE_MSME, "demo-province-62", variables)
    assert closed["data"]["deactivateMsme"] == {"isActive": False}, closed


def _in_kur(api: Api, url: str, business: dict[str, Any]) -> None:
    joined = {"programmeId": KUR, "msmeId": business["id"], "role": "debitur", "status": "ACTIVE"}
    added = api.graphql(ADD, "demo-province-62", {"input": joined})
    assert "errors" not in added, added


def _moved_to_kalbar(api: Api, url: str, business: dict[str, Any]) -> None:
    """No client of the demo moves a record across provinces: an operator's correction does."""
    moved = "UPDATE msmes SET province_code = '61', regency_code = '61.71', district_code = NULL"
    _as_owner(url, moved + " WHERE id = $1", int(business["id"]))


CHANGED_SINCE: dict[str, tuple[Callable[[Api, str, dict[str, Any]], None], str]] = {
    # case -> (what the register came to say after the check, what the refusal says)
    "the business closed": (_closed, "fails R01 SUBJECT_REGISTERED (inactive): "),
    "it took up subsidised credit": (_in_kur, "fails R12 PROGRAM_CONFLICT (conflict): "),
    "it left the province": (_moved_to_kalbar, "no longer in the register of the guarantor's"),
}


@pytest.mark.parametrize("case", list(CHANGED_SINCE))
def test_a_guarantee_is_not_recorded_on_a_decision_the_register_has_overturned(
    api: Api, module_reference_url: str, case: str
) -> None:
    """The registry's rules are applied again when the guarantee is recorded, as a check would
    apply them today: the decision was ELIGIBLE, and is no longer."""
    change, said = CHANGED_SINCE[case]
    nib = f"77910001{list(CHANGED_SINCE).index(case):05d}"
    request, business = _business(api, nib)
    decision = _checked(api, request, JAMKRIDA)
    assert decision["verdict"] == "ELIGIBLE"
    change(api, module_reference_url, business)

    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], **ISSUED))
    assert refused["data"] == {"recordGuarantee": None}
    (error,) = refused["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "guarantee.decisionId"}
    assert said in error["message"]
    assert error["message"].endswith("the decision no longer holds; check again")


CREATE_COOPERATIVE = """
mutation($number: String!) { createCooperative(input: {legalEntityNo: $number,
  name: "Koperasi Produsen Uji", type: PRODUSEN, region: "62.71", establishedOn: "2019-06-01",
  lastRatBookYear: 2025}) { id version } }
"""
DEACTIVATE_COOPERATIVE = """
mutation($id: ID!, $version: Int!) { deactivateCooperative(id: $id, version: $version) { status } }
"""


def test_a_cooperative_deactivated_since_its_check_is_not_guaranteed(api: Api) -> None:
    """R11's status is a state of the register, as an MSME's closing (R01) is: a decision about
    a cooperative since deactivated no longer holds."""
    number = "AHU-7791200.AH.01.26.TAHUN 2019"
    created = api.graphql(CREATE_COOPERATIVE, "demo-province-62", {"number": number})
    assert "errors" not in created, created
    cooperative = created["data"]["createCooperative"]
    request = _request({"legalEntityNo": number}, 50_000_000, 24, **FULL_ATTESTATION)
    decision = _checked(api, {**request, "checkDate": None}, JAMKRIDA)
    assert decision["verdict"] == "ELIGIBLE", decision
    deactivated = api.graphql(DEACTIVATE_COOPERATIVE, "demo-province-62", cooperative)
    assert deactivated["data"]["deactivateCooperative"] == {"status": "INACTIVE"}, deactivated

    refused = api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"], **ISSUED))
    assert refused["data"] == {"recordGuarantee": None}
    (error,) = refused["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "guarantee.decisionId"}
    assert "fails R11 COOP_ACTIVE (not_active): " in error["message"], error
    assert error["message"].endswith("the decision no longer holds; check again")


MOVE_MSME = """
mutation($id: ID!, $version: Int!) {
  updateMsme(id: $id, version: $version, changes: {region: "62.03"}) { version }
}
"""


def test_a_guarantee_is_placed_where_the_business_is_when_it_is_recorded(
    api: Api, module_reference_url: str
) -> None:
    """Moved to Kapuas since its check in Palangka Raya, a business still in the guarantor's
    province is guaranteed, and the guarantee counted in Kapuas, where recording read it: not
    in the regency the decision stored."""
    request, business = _business(api, "7794700000101")
    decision = _checked(api, request, JAMKRIDA)
    assert decision["verdict"] == "ELIGIBLE"
    moved = api.graphql(MOVE_MSME, "demo-province-62", business)
    assert "errors" not in moved, moved
    guarantee = _guaranteed(api, JAMKRIDA, decision["id"])

    async def placed() -> tuple[str, str]:
        connection = await asyncpg.connect(module_reference_url)
        try:
            query = "SELECT province_code, regency_code FROM guarantees WHERE id = $1::uuid"
            row = await connection.fetchrow(query, guarantee)
        finally:
            await connection.close()
        return row["province_code"], row["regency_code"]

    assert asyncio.run(placed()) == ("62", "62.03")


def test_a_guarantees_history_runs_forward(api: Api, clock: Clock) -> None:
    """Claimed effective the 20th, a guarantee was made active again effective the 10th and paid
    off effective the 6th, a history that has it repaid before it was claimed. Each change now
    takes effect on or after the latest."""
    request, _ = _business(api, "7794700000102")
    guarantee = _guaranteed(api, JAMKRIDA, _checked(api, request, JAMKRIDA)["id"])
    clock.day = date(2026, 12, 25)

    def changed(status: str, on: str) -> dict[str, Any]:
        return api.graphql(STATUS, JAMKRIDA, {"id": guarantee, "status": status, "on": on})

    assert "errors" not in changed("CLAIMED", "2026-12-20")
    for status, on in (
        ("ACTIVE", "2026-12-10"),
        ("PAID_OFF", "2026-12-08"),
        ("ACTIVE", "2026-12-19"),
    ):
        refused = changed(status, on)
        assert refused["data"] == {"changeGuaranteeStatus": None}
        (error,) = refused["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "effectiveOn"}
        assert error["message"] == (
            "effectiveOn: must not be before the guarantee's latest status change,"
            " effective 2026-12-20: 2026-12-20 or later"
        )
    # The same day as the latest, or later, as the history reads.
    assert changed("ACTIVE", "2026-12-20")["data"]["changeGuaranteeStatus"]["status"] == "ACTIVE"
    paid = changed("PAID_OFF", "2026-12-24")["data"]["changeGuaranteeStatus"]
    assert paid["history"] == [
        {"toStatus": "ACTIVE"},
        {"toStatus": "CLAIMED"},
        {"toStatus": "ACTIVE"},
        {"toStatus": "PAID_OFF"},
    ]


def _stored(url: str, msme_id: str) -> tuple[int, int]:
    """The decisions and guarantees stored about the MSME."""

    async def count() -> tuple[int, int]:
        connection = await asyncpg.connect(url)
        try:
            decisions = "SELECT count(*) FROM eligibility_decisions WHERE msme_id = $1"
            guarantees = "SELECT count(*) FROM guarantees WHERE msme_id = $1"
            return (
                int(await connection.fetchval(decisions, int(msme_id))),
                int(await connection.fetchval(guarantees, int(msme_id))),
            )
        finally:
            await connection.close()

    return asyncio.run(count())


def test_a_check_and_a_guarantee_meeting_an_import_are_refused_promptly_and_sent_again_later(
    api: Api, module_reference_url: str
) -> None:
    """An import holds the import lock and the records it names until it commits. A check or a
    guarantee about one of them (their foreign key waits on the record's lock) waits a little
    as every MSME write does, then is refused with a code that says send it again, not INTERNAL
    at the statement timeout; nothing of it is stored, and the same requests succeed once the
    import has ended."""
    request, business = _business(api, "7791000000301")
    decision = _checked(api, request, JAMKRIDA)  # to be guaranteed
    guarantee = _guarantee(decision["id"], **ISSUED)
    before = _stored(module_reference_url, business["id"])
    token = api.token(JAMKRIDA)

    async def during_import() -> list[tuple[Any, float]]:
        connection = await asyncpg.connect(module_reference_url)
        try:
            async with connection.transaction():  # as db.imports holds them
                await connection.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.import'))")
                await connection.execute(
                    "SELECT 1 FROM msmes WHERE id = $1 FOR UPDATE", int(business["id"])
                )
                answers = []
                for document, variables in ((CHECK, {"request": request}), (RECORD, guarantee)):
                    started = asyncio.get_running_loop().time()
                    body = {"query": document, "variables": variables}
                    answer = await asyncio.to_thread(api.post, body, token)
                    answers.append((answer, asyncio.get_running_loop().time() - started))
                return answers
        finally:
            await connection.close()

    for answer, waited in asyncio.run(during_import()):
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"]
        (error,) = answer.json()["errors"]
        assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
        assert waited < 4, "refused well within the statement timeout"
    assert _stored(module_reference_url, business["id"]) == before

    _checked(api, request, JAMKRIDA)
    _guaranteed(api, JAMKRIDA, decision["id"])
    decisions, guarantees = before
    assert _stored(module_reference_url, business["id"]) == (decisions + 1, guarantees + 1)


OTHER_PRINCIPAL = "https://sso.example.go.id/realms/bumd#portal"
"""An external SSO's id of the older form, `ISSUER#CLIENT`, whose decisions are also those of
every principal whose jurisdiction contains them (README, Tokens)."""
GUARANTEED_MEANWHILE = """
INSERT INTO guarantees (decision_id, guarantor_client_id, msme_id, province_code, regency_code,
                        bank, amount, coverage_amount, starts_on, ends_on)
SELECT id, $2, msme_id, '62', '62.71', 'Bank Kalteng', loan_amount, coverage_amount, $3, $4
  FROM eligibility_decisions WHERE id = $1::uuid
RETURNING id
"""
ITS_HISTORY = """
INSERT INTO guarantee_status_changes (guarantee_id, to_status, effective_on, changed_by)
VALUES ($1, 'active', $2, $3)
"""
WAITING = """
SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)
 WHERE NOT l.granted AND a.datname = current_database()
"""


def test_a_decision_another_principal_guarantees_meanwhile_is_a_conflict(
    api: Api, module_reference_url: str
) -> None:
    """Two principals may hold one decision, and each locks only its own guarantor row: both
    found the decision unguaranteed, and the later one's insert met the unique key, INTERNAL
    where the contract says CONFLICT. A guarantee recorded on the decision while the request
    runs (here by the owner, in a transaction left open until the request waits on it) now
    makes the request wait for it, then refuse the decision as already guaranteed."""
    request, _ = _business(api, "7783000000001")
    decision = _checked(api, request, JAMKRIDA)
    assert decision["verdict"] == "ELIGIBLE"
    token = api.token(JAMKRIDA)
    body = {"query": RECORD, "variables": _guarantee(decision["id"], **ISSUED)}
    starts, ends = (date.fromisoformat(ISSUED[day]) for day in ("startsOn", "endsOn"))

    async def guaranteed_meanwhile() -> Any:
        connection = await asyncpg.connect(module_reference_url)
        try:
            async with connection.transaction():
                other = await connection.fetchval(
                    GUARANTEED_MEANWHILE, decision["id"], OTHER_PRINCIPAL, starts, ends
                )
                await connection.execute(ITS_HISTORY, other, starts, OTHER_PRINCIPAL)
                answer = asyncio.ensure_future(asyncio.to_thread(api.post, body, token))
                for _ in range(100):  # until the request waits on this transaction
                    await asyncio.sleep(0.1)
                    if answer.done() or await connection.fetchval(WAITING):
                        break
                assert not answer.done(), answer.result().text
            return await answer
        finally:
            await connection.close()

    answer = asyncio.run(guaranteed_meanwhile())
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"recordGuarantee": None}
    (error,) = answer.json()["errors"]
    assert error["extensions"] == {"code": "CONFLICT", "field": "guarantee.decisionId"}
    assert error["message"] == "guarantee.decisionId: already guaranteed"

    async def guarantors() -> list[str]:
        connection = await asyncpg.connect(module_reference_url)
        try:
            query = "SELECT guarantor_client_id FROM guarantees WHERE decision_id = $1::uuid"
            return [row[0] for row in await connection.fetch(query, decision["id"])]
        finally:
            await connection.close()

    assert asyncio.run(guarantors()) == [OTHER_PRINCIPAL]
