"""Deactivation and reactivation over HTTP with the demo clients' real tokens: a deactivation can
be undone by whoever may write the record, and the record's history and the change feed say so;
a dissolved cooperative's status is not the API's to change, nor does it take new members."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

KALTENG = "demo-province-62"
KALBAR = "demo-province-61"
PALANGKA_RAYA = "demo-regency-6271"


@pytest.fixture(scope="module")
def url(module_reference_url: str) -> str:
    """A database of this module's own (a cooperative is dissolved behind the API's back), with
    the demo clients: the owner's URL."""
    demo_clients(module_reference_url)
    return module_reference_url


@pytest.fixture(scope="module")
def api(url: str) -> Iterator[Api]:
    with served(url) as served_api:
        yield served_api


def sql(url: str, statement: str, *args: Any) -> None:
    """Run `statement` as the owner: what an operator does in the database, not the API."""

    async def execute() -> None:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute(statement, *args)
        finally:
            await connection.close()

    asyncio.run(execute())


CREATE_COOPERATIVE = """
mutation($input: CreateCooperativeInput!) {
  createCooperative(input: $input) { id version legalEntityNo }
}
"""
DEACTIVATE_COOPERATIVE = """
mutation($id: ID!, $version: Int!) {
  deactivateCooperative(id: $id, version: $version) { id status isActive version }
}
"""
REACTIVATE_COOPERATIVE = """
mutation($id: ID!, $version: Int!) {
  reactivateCooperative(id: $id, version: $version) { id status isActive version }
}
"""
CREATE_MSME = """
mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id version nib } }
"""
DEACTIVATE_MSME = """
mutation($id: ID!, $version: Int!) {
  deactivateMsme(id: $id, version: $version) { id isActive version }
}
"""
REACTIVATE_MSME = """
mutation($id: ID!, $version: Int!) {
  reactivateMsme(id: $id, version: $version) { id isActive version }
}
"""
MSME = """
query($nib: String!) {
  msme(nib: $nib) {
    isActive version changes { clientId operation version fields { field before after } }
  }
}
"""
FEED = """
query($after: String) {
  %s(after: $after, first: 1000) { entries { id change record } endCursor hasMore }
}
"""
COOPERATIVE = """
query($number: String!) {
  cooperative(legalEntityNo: $number) {
    status isActive version changes { clientId operation version fields { field before after } }
  }
}
"""


def error_of(answer: dict[str, Any]) -> dict[str, Any]:
    assert "errors" in answer, answer
    [error] = answer["errors"]
    return error  # type: ignore[no-any-return]


def create_cooperative(api: Api, number: int) -> dict[str, Any]:
    given = {
        "legalEntityNo": f"AHU-778{number:04d}.AH.01.26.TAHUN 2021",
        "name": "Koperasi Produsen Uji",
        "type": "PRODUSEN",
        "region": "62.71",
        "membersMale": 30,
        "membersFemale": 25,
    }
    answer = api.graphql(CREATE_COOPERATIVE, KALTENG, {"input": given})
    assert "errors" not in answer, answer
    return answer["data"]["createCooperative"]  # type: ignore[no-any-return]


def read_cooperative(api: Api, created: dict[str, Any]) -> dict[str, Any]:
    answer = api.graphql(COOPERATIVE, KALTENG, {"number": created["legalEntityNo"]})
    assert "errors" not in answer, answer
    return answer["data"]["cooperative"]  # type: ignore[no-any-return]


def test_a_dissolved_cooperative_is_not_deactivated(api: Api, url: str) -> None:
    """Made inactive, a dissolved cooperative could then be reactivated: revived."""
    created = create_cooperative(api, 1)
    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(created["id"]))
    answer = api.graphql(DEACTIVATE_COOPERATIVE, KALTENG, {"id": created["id"], "version": 1})
    error = error_of(answer)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert error["message"].startswith("id: ")
    assert answer["data"] == {"deactivateCooperative": None}
    read = read_cooperative(api, created)
    assert (read["status"], read["version"]) == ("DISSOLVED", 1)
    assert [change["operation"] for change in read["changes"]] == ["create"]


def create_msme(api: Api, nib: str) -> dict[str, Any]:
    given = {
        "nib": nib,
        "name": "Usaha Uji Aktif",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
    }
    answer = api.graphql(CREATE_MSME, KALTENG, {"input": given})
    assert "errors" not in answer, answer
    return answer["data"]["createMsme"]  # type: ignore[no-any-return]


def read_msme(api: Api, created: dict[str, Any]) -> dict[str, Any]:
    answer = api.graphql(MSME, KALTENG, {"nib": created["nib"]})
    assert "errors" not in answer, answer
    return answer["data"]["msme"]  # type: ignore[no-any-return]


def feed_end(api: Api, field: str) -> str:
    """Where the client's copy stands once it has read every change so far."""
    after = None
    while True:
        page = api.graphql(FEED % field, KALTENG, {"after": after})["data"][field]
        after = page["endCursor"]
        if not page["hasMore"]:
            return after  # type: ignore[no-any-return]


def feed_after(api: Api, field: str, after: str, record_id: str) -> list[dict[str, Any]]:
    """The record's entries after `after`, as its client reads them."""
    page = api.graphql(FEED % field, KALTENG, {"after": after})["data"][field]
    assert not page["hasMore"]
    return [entry for entry in page["entries"] if entry["id"] == record_id]


def test_a_deactivated_msme_is_reactivated_with_its_history_and_feed(api: Api) -> None:
    """A regency's deactivation, undone by the province: the history names both, and a feed
    client that saw DEACTIVATED learns the record is active again."""
    created = create_msme(api, "7780000000001")
    cursor = feed_end(api, "msmeChanges")
    ids = {"id": created["id"]}
    off = api.graphql(DEACTIVATE_MSME, PALANGKA_RAYA, {**ids, "version": 1})
    assert off["data"]["deactivateMsme"] == {**ids, "isActive": False, "version": 2}
    on = api.graphql(REACTIVATE_MSME, KALTENG, {**ids, "version": 2})
    assert "errors" not in on, on
    assert on["data"]["reactivateMsme"] == {**ids, "isActive": True, "version": 3}
    again = api.graphql(REACTIVATE_MSME, KALTENG, {**ids, "version": 3})
    assert again["data"]["reactivateMsme"] == {**ids, "isActive": True, "version": 3}

    read = read_msme(api, created)
    assert (read["isActive"], read["version"]) == (True, 3)
    assert [(c["operation"], c["clientId"], c["version"]) for c in read["changes"]] == [
        ("create", KALTENG, 1),
        ("deactivate", PALANGKA_RAYA, 2),
        ("update", KALTENG, 3),
    ]
    assert read["changes"][-1]["fields"] == [
        {"field": "isActive", "before": "false", "after": "true"}
    ]
    entries = feed_after(api, "msmeChanges", cursor, created["id"])
    assert [entry["change"] for entry in entries] == ["DEACTIVATED", "UPDATED"]
    assert entries[-1]["record"]["isActive"] is True
    assert entries[-1]["record"]["version"] == 3


def test_a_deactivated_cooperative_is_reactivated_with_its_history_and_feed(api: Api) -> None:
    created = create_cooperative(api, 2)
    cursor = feed_end(api, "cooperativeChanges")
    ids = {"id": created["id"]}
    off = api.graphql(DEACTIVATE_COOPERATIVE, PALANGKA_RAYA, {**ids, "version": 1})
    assert off["data"]["deactivateCooperative"]["status"] == "INACTIVE"
    on = api.graphql(REACTIVATE_COOPERATIVE, KALTENG, {**ids, "version": 2})
    assert "errors" not in on, on
    expected = {**ids, "status": "ACTIVE", "isActive": True, "version": 3}
    assert on["data"]["reactivateCooperative"] == expected
    again = api.graphql(REACTIVATE_COOPERATIVE, KALTENG, {**ids, "version": 3})
    assert again["data"]["reactivateCooperative"] == expected

    read = read_cooperative(api, created)
    assert [(c["operation"], c["clientId"]) for c in read["changes"]] == [
        ("create", KALTENG),
        ("deactivate", PALANGKA_RAYA),
        ("update", KALTENG),
    ]
    assert read["changes"][-1]["fields"] == [
        {"field": "status", "before": "inactive", "after": "active"}
    ]
    entries = feed_after(api, "cooperativeChanges", cursor, created["id"])
    assert [entry["change"] for entry in entries] == ["DEACTIVATED", "UPDATED"]
    assert (entries[-1]["record"]["status"], entries[-1]["record"]["isActive"]) == ("ACTIVE", True)


def test_another_provinces_record_is_not_found_and_stays_inactive(api: Api) -> None:
    msme = create_msme(api, "7780000000002")
    cooperative = create_cooperative(api, 3)
    for deactivate, reactivate, record in (
        (DEACTIVATE_MSME, REACTIVATE_MSME, msme),
        (DEACTIVATE_COOPERATIVE, REACTIVATE_COOPERATIVE, cooperative),
    ):
        assert "errors" not in api.graphql(deactivate, KALTENG, {"id": record["id"], "version": 1})
        kalbar = api.graphql(reactivate, KALBAR, {"id": record["id"], "version": 2})
        assert error_of(kalbar)["extensions"]["code"] == "NOT_FOUND"
        missing = api.graphql(reactivate, KALBAR, {"id": "987654321", "version": 2})
        assert error_of(kalbar)["message"] == error_of(missing)["message"]
    assert (read_msme(api, msme)["isActive"], read_msme(api, msme)["version"]) == (False, 2)
    read = read_cooperative(api, cooperative)
    assert (read["status"], read["version"]) == ("INACTIVE", 2)


def test_a_stale_version_gets_conflict_and_changes_nothing(api: Api) -> None:
    msme = create_msme(api, "7780000000003")
    cooperative = create_cooperative(api, 4)
    for deactivate, reactivate, record in (
        (DEACTIVATE_MSME, REACTIVATE_MSME, msme),
        (DEACTIVATE_COOPERATIVE, REACTIVATE_COOPERATIVE, cooperative),
    ):
        assert "errors" not in api.graphql(deactivate, KALTENG, {"id": record["id"], "version": 1})
        stale = api.graphql(reactivate, KALTENG, {"id": record["id"], "version": 1})
        assert error_of(stale)["extensions"] == {
            "code": "CONFLICT",
            "field": "version",
            "currentVersion": 2,
        }
    assert (read_msme(api, msme)["isActive"], read_msme(api, msme)["version"]) == (False, 2)
    read = read_cooperative(api, cooperative)
    assert (read["status"], read["version"]) == ("INACTIVE", 2)


def test_a_dissolved_cooperative_is_not_reactivated(api: Api, url: str) -> None:
    created = create_cooperative(api, 5)
    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(created["id"]))
    answer = api.graphql(REACTIVATE_COOPERATIVE, KALTENG, {"id": created["id"], "version": 1})
    error = error_of(answer)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}
    assert error["message"].startswith("id: ")
    assert answer["data"] == {"reactivateCooperative": None}
    read = read_cooperative(api, created)
    assert (read["status"], read["version"]) == ("DISSOLVED", 1)
    assert [change["operation"] for change in read["changes"]] == ["create"]


CREATE_MEMBER = """
mutation($input: CreateMsmeInput!) {
  createMsme(input: $input) { id version nib cooperative { id } }
}
"""
UPDATE_MSME = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) {
    name version cooperative { id }
  }
}
"""
MEMBERSHIP = """
query($nib: String!) { msme(nib: $nib) { name version cooperative { id } } }
"""


def member(nib: str, cooperative_id: str) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": "Usaha Anggota",
        "kbliCode": "10794",
        "region": "62.71",
        "capital": "150000000",
        "cooperativeId": cooperative_id,
    }


def membership(api: Api, nib: str) -> dict[str, Any] | None:
    answer = api.graphql(MEMBERSHIP, KALTENG, {"nib": nib})
    assert "errors" not in answer, answer
    return answer["data"]["msme"]  # type: ignore[no-any-return]


def test_a_dissolved_cooperative_takes_no_new_member_created_or_moved_in(
    api: Api, url: str
) -> None:
    dissolved = create_cooperative(api, 6)
    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(dissolved["id"]))

    nib = "7780000000006"
    answer = api.graphql(CREATE_MEMBER, KALTENG, {"input": member(nib, dissolved["id"])})
    error = error_of(answer)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.cooperativeId"}
    assert "dissolved" in error["message"]
    assert answer["data"] == {"createMsme": None}
    assert membership(api, nib) is None

    outside = create_msme(api, "7780000000007")
    changes = {"name": "Usaha Pindah", "cooperativeId": dissolved["id"]}
    answer = api.graphql(
        UPDATE_MSME, KALTENG, {"id": outside["id"], "version": 1, "changes": changes}
    )
    error = error_of(answer)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "changes.cooperativeId"}
    assert answer["data"] == {"updateMsme": None}
    assert membership(api, "7780000000007") == {
        "name": "Usaha Uji Aktif",
        "version": 1,
        "cooperative": None,
    }


def test_an_inactive_cooperative_takes_members_and_a_dissolved_one_keeps_its_own(
    api: Api, url: str
) -> None:
    """Inactive may revive, so it may take members. A member whose cooperative is dissolved later
    stays one: resending its cooperativeId with other changes joins nothing, so is not refused."""
    cooperative = create_cooperative(api, 7)
    off = api.graphql(DEACTIVATE_COOPERATIVE, KALTENG, {"id": cooperative["id"], "version": 1})
    assert off["data"]["deactivateCooperative"]["status"] == "INACTIVE", off
    answer = api.graphql(
        CREATE_MEMBER, KALTENG, {"input": member("7780000000008", cooperative["id"])}
    )
    assert "errors" not in answer, answer
    created = answer["data"]["createMsme"]
    assert created["cooperative"] == {"id": cooperative["id"]}

    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(cooperative["id"]))
    changes = {"name": "Usaha Anggota Lama", "cooperativeId": cooperative["id"]}
    kept = api.graphql(
        UPDATE_MSME, KALTENG, {"id": created["id"], "version": 1, "changes": changes}
    )
    assert "errors" not in kept, kept
    assert kept["data"]["updateMsme"] == {
        "name": "Usaha Anggota Lama",
        "version": 2,
        "cooperative": {"id": cooperative["id"]},
    }
    left = api.graphql(
        UPDATE_MSME,
        KALTENG,
        {"id": created["id"], "version": 2, "changes": {"cooperativeId": None}},
    )
    assert "errors" not in left, left
    assert left["data"]["updateMsme"]["cooperative"] is None
    back = api.graphql(
        UPDATE_MSME,
        KALTENG,
        {"id": created["id"], "version": 3, "changes": {"cooperativeId": cooperative["id"]}},
    )
    assert error_of(back)["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "changes.cooperativeId",
    }


ADD_PARTICIPATION = """
mutation($input: ParticipationInput!) { addParticipation(input: $input) { id } }
"""
PARTICIPATIONS = """
query($number: String!) { cooperative(legalEntityNo: $number) { participations { id } } }
"""


def test_a_dissolved_cooperative_joins_no_programme_and_an_inactive_one_does(
    api: Api, url: str
) -> None:
    dissolved = create_cooperative(api, 9)
    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(dissolved["id"]))
    given = {"programmeId": "PR-MMM", "cooperativeId": dissolved["id"], "role": "producer"}
    answer = api.graphql(ADD_PARTICIPATION, KALTENG, {"input": given})
    error = error_of(answer)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input.cooperativeId"}
    assert "dissolved" in error["message"]
    assert answer["data"] == {"addParticipation": None}
    read = api.graphql(PARTICIPATIONS, KALTENG, {"number": dissolved["legalEntityNo"]})
    assert read["data"]["cooperative"]["participations"] == []

    inactive = create_cooperative(api, 10)
    off = api.graphql(DEACTIVATE_COOPERATIVE, KALTENG, {"id": inactive["id"], "version": 1})
    assert off["data"]["deactivateCooperative"]["status"] == "INACTIVE", off
    joined = api.graphql(
        ADD_PARTICIPATION, KALTENG, {"input": {**given, "cooperativeId": inactive["id"]}}
    )
    assert "errors" not in joined, joined


UPDATE_PARTICIPATION = """
mutation($id: ID!, $version: Int!, $changes: ParticipationChanges!) {
  updateParticipation(id: $id, version: $version, changes: $changes) { status version } }
"""


def test_a_dissolved_cooperative_s_participation_is_not_taken_up_again(api: Api, url: str) -> None:
    """A dissolved cooperative joins nothing, so its ended participation is not made ACTIVE
    again, nor a proposed one verified or active, behind the check `addParticipation` makes;
    ending one is still taken."""
    record = create_cooperative(api, 11)
    ids = []
    for role, status in (("producer", "ACTIVE"), ("supplier", "PROPOSED")):
        given = {"programmeId": "PR-MMM", "cooperativeId": record["id"], "role": role}
        joined = api.graphql(ADD_PARTICIPATION, KALTENG, {"input": {**given, "status": status}})
        assert "errors" not in joined, joined
        ids.append(joined["data"]["addParticipation"]["id"])
    done = {"id": ids[0], "version": 1, "changes": {"status": "COMPLETED"}}
    assert "errors" not in api.graphql(UPDATE_PARTICIPATION, KALTENG, done)
    sql(url, "UPDATE cooperatives SET status = 'dissolved' WHERE id = $1", int(record["id"]))
    for participation, version in ((ids[0], 2), (ids[1], 1)):
        again = {"id": participation, "version": version, "changes": {"status": "ACTIVE"}}
        answer = api.graphql(UPDATE_PARTICIPATION, KALTENG, again)
        error = error_of(answer)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "changes.status"}
        assert "dissolved" in error["message"]
        assert answer["data"] == {"updateParticipation": None}
    ended = {"id": ids[1], "version": 1, "changes": {"status": "WITHDRAWN"}}
    withdrawn = api.graphql(UPDATE_PARTICIPATION, KALTENG, ended)
    assert withdrawn["data"]["updateParticipation"] == {"status": "WITHDRAWN", "version": 2}
