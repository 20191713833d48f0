"""The programmes, listed or looked up by id, compiled into one statement with each programme's
jurisdiction and first participants, each participant with its MSME or cooperative.

Programmes are public reference: every caller reads them all and none is audited. Their
participants are records: only those whose MSME or cooperative lies inside the caller's
jurisdiction, the first `first` of those, each audited as handed out, exactly as the executor's
resolvers list and audit them. The demo data lists participants of one programme across
provinces, so a province's client must not see them all."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.demo_data import load_demo
from tests.support.executor import assert_the_executor_agrees, compiled, latest_entry
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
REGENCY = "demo-regency-6271"
MINISTRY = "demo-ministry"
SCOPES = {PROVINCE: ("province_code", "62"), REGENCY: ("regency_code", "62.71")}
"""Each client's jurisdiction, as the column of MSMEs and cooperatives that holds it."""

AT = "<at>"
PARTICIPANT = """id role status programme { id } msme { nib name } cooperative { legalEntityNo
  name }"""
PROGRAMMES = f"""query Programmes {{ programmes {{ id{AT} name kind legalBasis startsOn
  jurisdiction {{ code name }} participants(first: 3) {{ {PARTICIPANT} }} }} }}"""
PROGRAMME = f"""query Programme($id: ID!, $first: Int) {{ programme(id: $id) {{ id{AT} name
  participants(first: $first) {{ {PARTICIPANT} }} }} }}"""
BUSIEST = "PR-MBG"
"""The programme with participants in several provinces."""


@pytest.fixture(scope="module")
def programmes_url(module_reference_url: str) -> str:
    load_demo(module_reference_url, msmes=300, seed=31)
    return module_reference_url


@pytest.fixture(scope="module")
def programmes_api(programmes_url: str) -> Iterator[Api]:
    with served(programmes_url) as api:
        yield api


def _participants(url: str, client: str) -> dict[str, list[dict[str, Any]]]:
    """By programme, the participations whose MSME or cooperative lies inside `client`'s
    jurisdiction, in id order, as PARTICIPANT shows them: worked out with joins, not as the
    server scopes them."""
    column, code = SCOPES[client]
    rows = run(
        url,
        f"""SELECT p.id, p.programme_id, p.role, p.status, m.nib, m.name AS msme,
                   c.legal_entity_no, c.name AS cooperative
              FROM participations p
              LEFT JOIN msmes m ON m.id = p.msme_id AND m.{column} = $1
              LEFT JOIN cooperatives c ON c.id = p.cooperative_id AND c.{column} = $1
             WHERE m.id IS NOT NULL OR c.id IS NOT NULL
             ORDER BY p.id""",  # noqa: S608  # a column named here
        code,
    )
    found: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["programme_id"], []).append(
            {
                "id": str(row["id"]),
                "role": row["role"],
                "status": row["status"].upper(),  # as the ParticipationStatus enum names it
                "programme": {"id": row["programme_id"]},
                "msme": None if row["nib"] is None else {"nib": row["nib"], "name": row["msme"]},
                "cooperative": None
                if row["legal_entity_no"] is None
                else {"legalEntityNo": row["legal_entity_no"], "name": row["cooperative"]},
            }
        )
    return found


def _programmes(url: str, client: str, first: int) -> list[dict[str, Any]]:
    """Every programme as PROGRAMMES shows it to `client`."""
    participants = _participants(url, client)
    rows = run(
        url,
        """SELECT g.id, g.name, g.kind, g.legal_basis, g.starts_on, g.jurisdiction,
                  r.name AS region
             FROM programmes g JOIN regions r ON r.code = g.jurisdiction ORDER BY g.id""",
    )
    return [
        {
            "id": row["id"],
            "name": row["name"],
            "kind": row["kind"],
            "legalBasis": row["legal_basis"],
            "startsOn": None if row["starts_on"] is None else row["starts_on"].isoformat(),
            "jurisdiction": {"code": row["jurisdiction"], "name": row["region"]},
            "participants": participants.get(row["id"], [])[:first],
        }
        for row in rows
    ]


def _compiled(api: Api, document: str, client: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be one statement's: no programme or participation read apart."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), client, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "programmes" in sql or "participations" in sql]
    assert len(reads) == 1, reads
    assert "json_agg" in reads[0]
    return answer["data"]


@pytest.mark.parametrize("client", [PROVINCE, REGENCY])
def test_programmes_show_only_the_participants_inside_the_jurisdiction(
    programmes_api: Api, programmes_url: str, client: str
) -> None:
    answer = _compiled(programmes_api, PROGRAMMES, client)
    assert answer == {"programmes": _programmes(programmes_url, client, 3)}
    (stored,) = run(
        programmes_url, "SELECT count(*) FROM participations WHERE programme_id = $1", BUSIEST
    )
    visible = _participants(programmes_url, client).get(BUSIEST, [])
    assert 0 < len(visible) < stored["count"]  # the data holds participants it may not see
    assert_the_executor_agrees(programmes_api, programmes_url, client, PROGRAMMES, None, answer)


@pytest.mark.parametrize("first", [1, 2, None])
def test_a_programme_by_id_holds_as_many_participants_as_its_variable_asks(
    programmes_api: Api, programmes_url: str, first: int | None
) -> None:
    variables = {"id": BUSIEST, "first": first}
    answer = _compiled(programmes_api, PROGRAMME, PROVINCE, variables)
    (expected,) = [
        item for item in _programmes(programmes_url, PROVINCE, 100) if item["id"] == BUSIEST
    ]
    shown = expected["participants"][: first or 100]
    assert answer == {"programme": {"id": BUSIEST, "name": expected["name"], "participants": shown}}
    assert len(shown) == (first or len(expected["participants"]))
    assert_the_executor_agrees(
        programmes_api, programmes_url, PROVINCE, PROGRAMME, variables, answer
    )


def test_participants_under_a_participations_programme_are_compiled_too(
    programmes_api: Api, programmes_url: str
) -> None:
    """Inside a page, a participation's programme lists its own first participants: still the
    page's one statement, scoped and audited as the executor's loaders do it."""
    document = f"""query Page {{ msmes(first: 50, filter: {{region: "62"}}) {{ nodes {{ nib{AT}
      participations {{ programme {{ id participants(first: 2) {{ {PARTICIPANT} }} }} }} }} }} }}"""
    answer = _compiled(programmes_api, document, PROVINCE)
    visible = _participants(programmes_url, PROVINCE)
    shown = [
        item["programme"] for node in answer["msmes"]["nodes"] for item in node["participations"]
    ]
    assert BUSIEST in [programme["id"] for programme in shown]
    for programme in shown:
        assert programme["participants"] == visible.get(programme["id"], [])[:2]
    assert_the_executor_agrees(programmes_api, programmes_url, PROVINCE, document, None, answer)


def test_an_unknown_programme_is_null(programmes_api: Api) -> None:
    answer = _compiled(programmes_api, PROGRAMME, PROVINCE, {"id": "PR-NONE"})
    assert answer == {"programme": None}


def test_the_audit_entry_counts_the_participants_and_businesses_shown(
    programmes_api: Api, programmes_url: str
) -> None:
    """Each participant is a record handed out, and so is the MSME or cooperative it shows;
    the programmes themselves are not."""
    listed = [
        item
        for programme in _compiled(programmes_api, PROGRAMMES, PROVINCE)["programmes"]
        for item in programme["participants"]
    ]
    records = latest_entry(programmes_url, PROVINCE).entry["records"]
    assert records == {
        "participation": len(listed),
        "msme": sum(item["msme"] is not None for item in listed),
        "cooperative": sum(item["cooperative"] is not None for item in listed),
    }


def test_the_owners_of_participants_are_compiled_and_audited_only_inside_the_jurisdiction(
    programmes_api: Api, programmes_url: str
) -> None:
    """A province client with pii:read: each participant's owner in the one statement, its NIK
    among the entry's data subjects; no owner of a participant outside the province is read
    into the response or the entry."""
    document = f"""query Owners {{ programmes {{ id{AT} participants(first: 100) {{ id
      msme {{ nib owner {{ nik fullName }} }} }} }} }}"""
    answer = _compiled(programmes_api, document, PROVINCE)
    shown = [
        item["msme"]["owner"]["nik"]
        for programme in answer["programmes"]
        for item in programme["participants"]
        if item["msme"] is not None and item["msme"]["owner"] is not None
    ]
    assert shown
    audited = latest_entry(programmes_url, PROVINCE)
    assert audited.subjects == sorted(set(shown))
    outside = {
        row["nik"]
        for row in run(
            programmes_url,
            """SELECT o.nik FROM participations p JOIN msmes m ON m.id = p.msme_id
                 JOIN msme_owners o ON o.msme_id = m.id WHERE m.province_code <> '62'""",
        )
    }
    assert outside
    assert not outside & set(audited.subjects)
    assert not any(nik in repr(answer) for nik in outside)
    assert_the_executor_agrees(programmes_api, programmes_url, PROVINCE, document, None, answer)


def test_programmes_without_participants_are_compiled_and_hand_out_nothing(
    programmes_api: Api, programmes_url: str
) -> None:
    """Public reference, read by a client without records:read: one statement, and no audit
    entry, for nothing is handed out."""
    (before,) = run(programmes_url, "SELECT count(*) FROM audit_log")
    document = "{ programmes { id name jurisdiction { name } } }"
    answer = _compiled(programmes_api, document, MINISTRY)
    assert [item["id"] for item in answer["programmes"]] == [
        row["id"] for row in run(programmes_url, "SELECT id FROM programmes ORDER BY id")
    ]
    (after,) = run(programmes_url, "SELECT count(*) FROM audit_log")
    assert after["count"] == before["count"]


def test_a_client_without_records_read_never_has_participants_read(
    programmes_api: Api,
) -> None:
    """The ministry lists programmes; their participants are FORBIDDEN, and no statement reads
    a participation, though the same document has been compiled for a province's client."""
    document = f"{{ programmes {{ id participants(first: 5) {{ {PARTICIPANT} }} }} }}"
    _compiled(programmes_api, document, PROVINCE)
    with recorded_statements() as statements:
        answer = programmes_api.graphql(document, MINISTRY)
    assert not [sql for sql in statements if "participations" in sql]
    assert answer["data"]["programmes"]
    assert all(item["participants"] is None for item in answer["data"]["programmes"])
    assert {error["extensions"]["code"] for error in answer["errors"]} == {"FORBIDDEN"}


@pytest.mark.parametrize("first", [0, 101])
def test_a_size_the_limits_refuse_is_reported_naming_first(programmes_api: Api, first: int) -> None:
    for document, variables in (
        (f'{{ programme(id: "{BUSIEST}") {{ id participants(first: {first}) {{ id }} }} }}', None),
        (compiled(PROGRAMME), {"id": BUSIEST, "first": first}),
    ):
        answer = programmes_api.graphql(document, PROVINCE, variables)
        (error,) = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("first:")
        assert error["path"] == ["programme", "participants"]
        assert answer["data"]["programme"]["participants"] is None
