"""Several mutations in one document, over HTTP: each one's answer shows the record as stored
once its write committed, never as an earlier mutation's answer loaded it. The request's
DataLoaders cached the first answer's owner, history and participations, so a later mutation
that erased or replaced the owner answered with the person's old data (which a client mirroring
answers kept), and its history stopped at the first write's version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.databases import run
from tests.support.demo_data import load_demo
from tests.support.executor import audit_head, entries_after
from tests.support.http import Api, served

PROVINCE = "demo-province-62"
"""A client of province 62 with records:write and pii:read."""
ANSWER = """version owner { nik fullName } changes(first: 3) { version }
  participations { programme { id } }"""
NEW_OWNER = {"nik": "6271995204880007", "fullName": "Rina Uji Baru", "sex": "F"}


@pytest.fixture(scope="module")
def url(module_reference_url: str) -> str:
    load_demo(module_reference_url, msmes=80, seed=11)
    return module_reference_url


@pytest.fixture(scope="module")
def api(url: str) -> Iterator[Api]:
    with served(url) as served_api:
        yield served_api


def _owned(url: str, skip: int) -> tuple[str, int, str]:
    """An MSME of province 62 with an owner and in no programme: its id, version and owner's
    NIK. The demo data loads it without history, so its changes start at the next version."""
    (row,) = run(
        url,
        """SELECT m.id, m.version, o.nik FROM msmes m JOIN msme_owners o ON o.msme_id = m.id
            WHERE m.province_code = '62' AND m.is_active AND NOT EXISTS (
                  SELECT FROM participations p WHERE p.msme_id = m.id)
            ORDER BY m.id OFFSET $1 LIMIT 1""",
        skip,
    )
    return str(row["id"]), int(row["version"]), str(row["nik"])


def _stored_owner(url: str, msme_id: str) -> list[Any]:
    return [
        dict(row)
        for row in run(
            url,
            "SELECT nik, full_name FROM msme_owners WHERE msme_id = $1",
            int(msme_id),
        )
    ]


def test_a_later_mutation_answers_the_owner_it_erased(api: Api, url: str) -> None:
    msme_id, version, nik = _owned(url, 0)
    since = audit_head(url)
    document = f"""mutation($id: ID!, $v: Int!, $w: Int!) {{
      a: updateMsme(id: $id, version: $v, changes: {{name: "Satu Uji"}}) {{ {ANSWER} }}
      b: updateMsme(id: $id, version: $w, changes: {{owner: null}}) {{ {ANSWER} }}
    }}"""
    answer = api.graphql(document, PROVINCE, {"id": msme_id, "v": version, "w": version + 1})
    assert "errors" not in answer, answer
    a, b = answer["data"]["a"], answer["data"]["b"]
    assert a["owner"]["nik"] == nik
    assert [change["version"] for change in a["changes"]] == [version + 1]
    assert b["version"] == version + 2
    assert b["owner"] is None
    assert _stored_owner(url, msme_id) == []
    assert [change["version"] for change in b["changes"]] == [version + 1, version + 2]
    entries = entries_after(url, PROVINCE, since)
    assert len(entries) == 2  # one per write, committed with it; answers read between them
    assert {subject for entry in entries for subject in entry.subjects} == {nik}


def test_three_mutations_answer_the_owner_replaced_then_erased(api: Api, url: str) -> None:
    msme_id, version, nik = _owned(url, 1)
    since = audit_head(url)
    document = f"""mutation($id: ID!, $v: Int!, $w: Int!, $x: Int!, $owner: OwnerInput!) {{
      a: updateMsme(id: $id, version: $v, changes: {{name: "Satu Uji"}}) {{ {ANSWER} }}
      b: updateMsme(id: $id, version: $w, changes: {{owner: $owner}}) {{ {ANSWER} }}
      c: updateMsme(id: $id, version: $x, changes: {{owner: null}}) {{ {ANSWER} }}
    }}"""
    variables = {
        "id": msme_id,
        "v": version,
        "w": version + 1,
        "x": version + 2,
        "owner": NEW_OWNER,
    }
    answer = api.graphql(document, PROVINCE, variables)
    assert "errors" not in answer, answer
    a, b, c = (answer["data"][key] for key in "abc")
    assert a["owner"]["nik"] == nik
    assert b["owner"] == {"nik": NEW_OWNER["nik"], "fullName": NEW_OWNER["fullName"]}
    assert [change["version"] for change in b["changes"]] == [version + 1, version + 2]
    assert c["owner"] is None
    assert [change["version"] for change in c["changes"]] == [
        version + 1,
        version + 2,
        version + 3,
    ]
    entries = entries_after(url, PROVINCE, since)
    assert len(entries) == 3  # one per write, committed with it; answers read between them
    assert {subject for entry in entries for subject in entry.subjects} == {nik, NEW_OWNER["nik"]}


def test_a_later_mutation_answers_the_participation_added_before_it(api: Api, url: str) -> None:
    msme_id, version, _ = _owned(url, 2)
    document = f"""mutation($id: ID!, $v: Int!, $w: Int!, $input: ParticipationInput!) {{
      a: updateMsme(id: $id, version: $v, changes: {{name: "Satu Uji"}}) {{ {ANSWER} }}
      enrol: addParticipation(input: $input) {{ programme {{ id }} }}
      c: updateMsme(id: $id, version: $w, changes: {{name: "Dua Uji"}}) {{ {ANSWER} }}
    }}"""
    enrolment = {
        "programmeId": "PR-JAMKRIDA-62",
        "msmeId": msme_id,
        "role": "recipient",
        "status": "COMPLETED",
        "detail": "uji",
    }
    variables = {"id": msme_id, "v": version, "w": version + 1, "input": enrolment}
    answer = api.graphql(document, PROVINCE, variables)
    assert "errors" not in answer, answer
    assert answer["data"]["a"]["participations"] == []
    assert answer["data"]["c"]["participations"] == [{"programme": {"id": "PR-JAMKRIDA-62"}}]
    assert answer["data"]["c"]["version"] == version + 2
