"""The entitlement matrix through HTTP: every org kind × every guarded field × in and out of
jurisdiction. Expectations are written out from the contract's bundles, not derived from code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest

from tests.support.http import Api

IN_62_71 = "9990000000001"  # Keripik Kelakai Contoh, Palangka Raya (62.71)
IN_62_01 = "9990000000002"  # Boga Contoh Lada, Kotawaringin Barat (62.01)
IN_61_71 = "9990000000003"  # Warung Sembako Contoh Khatulistiwa, Pontianak (61.71)
UNKNOWN_NIB = "9990000009999"
COOP_62_01 = "AHU-9990001.AH.01.26.TAHUN 2019"

# client → (jurisdiction, scopes it holds, an MSME inside, an MSME outside its jurisdiction)
CLIENTS: dict[str, tuple[str, set[str], str | None, str]] = {
    "demo-ministry": ("ID", {"aggregates:read", "targets:read"}, None, IN_62_71),
    "demo-province-62": (
        "62",
        {"aggregates:read", "records:read", "records:write", "targets:read", "targets:write"}
        | {"pii:read"},
        IN_62_71,
        IN_61_71,
    ),
    "demo-province-61": (
        "61",
        {"aggregates:read", "records:read", "records:write", "targets:read", "targets:write"},
        IN_61_71,
        IN_62_71,
    ),
    "demo-regency-6271": (
        "62.71",
        {"aggregates:read", "records:read", "records:write", "targets:read", "targets:write"},
        IN_62_71,
        IN_62_01,
    ),
    "demo-jamkrida-62": (
        "62",
        {"eligibility:check", "guarantees:write", "aggregates:read"},
        None,
        IN_61_71,
    ),
    "demo-walidata": ("ID", {"audit:read", "aggregates:read"}, None, IN_62_71),
}

# guarded root field → (document, the scopes it requires)
AGGREGATES = {
    "msmeFigures": "{ msmeFigures(groupBy: [PROVINCE]) { count } }",
    "cooperativeFigures": "{ cooperativeFigures(groupBy: [TYPE]) { count } }",
    "graduations": "{ graduations(groupBy: [PROVINCE], year: 2025) { count } }",
}
PLANNING = {
    "indicators": "{ indicators { code } }",
    "indicator": '{ indicator(code: "KOP_PRODUSEN_JUMLAH") { code } }',
}
AUDIT = {
    "auditEntries": "{ auditEntries(first: 1) { seq } }",
    "personalDataAccess": '{ personalDataAccess(nik: "6271995204880001") { clientId } }',
}


def _forbidden(answer: dict[str, Any], field: str, scopes: list[str]) -> None:
    assert answer["data"] is None or answer["data"][field] is None, answer
    (error,) = answer["errors"]
    assert error["path"] == [field]
    assert error["extensions"] == {"code": "FORBIDDEN", "requiredScopes": scopes}


@pytest.mark.parametrize("client_id", list(CLIENTS))
@pytest.mark.parametrize(
    ("field", "document", "scope"),
    [(f, d, "aggregates:read") for f, d in AGGREGATES.items()]
    + [(f, d, "targets:read") for f, d in PLANNING.items()]
    + [(f, d, "audit:read") for f, d in AUDIT.items()],
)
def test_root_fields_answer_exactly_those_holding_their_scope(
    api: Api, client_id: str, field: str, document: str, scope: str
) -> None:
    answer = api.graphql(document, client_id)
    if scope in CLIENTS[client_id][1]:
        assert "errors" not in answer, answer
        assert answer["data"][field] is not None
    else:
        _forbidden(answer, field, [scope])


MSME = "query($nib: String!) { msme(nib: $nib) { nib regency { code } } }"


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_msme_lookup_inside_and_outside_the_jurisdiction(api: Api, client_id: str) -> None:
    _, scopes, inside, outside = CLIENTS[client_id]
    answers = {
        nib: api.graphql(MSME, client_id, {"nib": nib})
        for nib in {outside, UNKNOWN_NIB} | ({inside} if inside else set())
    }
    if "records:read" not in scopes:
        for answer in answers.values():
            _forbidden(answer, "msme", ["records:read"])
        return
    assert inside is not None
    assert "errors" not in answers[inside]
    assert answers[inside]["data"]["msme"]["nib"] == inside
    # outside the jurisdiction answers byte for byte like a key that does not exist
    assert answers[outside] == answers[UNKNOWN_NIB] == {"data": {"msme": None}}


def _count_in(url: str, table: str, jurisdiction: str) -> int:
    column = "province_code" if len(jurisdiction) == 2 else "regency_code"

    async def count() -> int:
        connection = await asyncpg.connect(url)
        try:
            return int(
                await connection.fetchval(
                    f"SELECT count(*) FROM {table} WHERE {column} = $1",  # noqa: S608 (fixed names)
                    jurisdiction,
                )
            )
        finally:
            await connection.close()

    return asyncio.run(count())


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_lists_and_counts_hold_only_the_jurisdiction(
    api: Api, demo_url: str, client_id: str
) -> None:
    jurisdiction, scopes, _, outside = CLIENTS[client_id]
    answer = api.graphql(
        "{ msmes(first: 100) { totalCount nodes { nib regency { code } } } "
        "cooperatives(first: 100) { totalCount nodes { regency { code } } } }",
        client_id,
    )
    if "records:read" not in scopes:
        assert answer["data"] is None or answer["data"]["msmes"] is None
        assert {error["path"][0] for error in answer["errors"]} == {"msmes", "cooperatives"}
        assert {error["extensions"]["code"] for error in answer["errors"]} == {"FORBIDDEN"}
        return
    assert "errors" not in answer
    msmes, cooperatives = answer["data"]["msmes"], answer["data"]["cooperatives"]
    assert msmes["totalCount"] == _count_in(demo_url, "msmes", jurisdiction)
    assert cooperatives["totalCount"] == _count_in(demo_url, "cooperatives", jurisdiction)
    regencies = {node["regency"]["code"] for node in msmes["nodes"] + cooperatives["nodes"]}
    assert all(code.startswith(jurisdiction) for code in regencies)
    assert outside not in {node["nib"] for node in msmes["nodes"]}


PARTICIPANTS = (
    '{ programme(id: "PR-MBG") { id participants { msme { nib regency { code } } '
    "cooperative { legalEntityNo regency { code } } } } }"
)


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_nested_participants_hold_only_the_jurisdiction(api: Api, client_id: str) -> None:
    jurisdiction, scopes, _, _ = CLIENTS[client_id]
    answer = api.graphql(PARTICIPANTS, client_id)
    if "records:read" not in scopes:
        assert answer["data"]["programme"] == {"id": "PR-MBG", "participants": None}
        (error,) = answer["errors"]
        assert error["path"] == ["programme", "participants"]
        assert error["extensions"] == {"code": "FORBIDDEN", "requiredScopes": ["records:read"]}
        return
    participants = answer["data"]["programme"]["participants"]
    subjects = [p["msme"] or p["cooperative"] for p in participants]
    assert all(subject["regency"]["code"].startswith(jurisdiction) for subject in subjects)
    nibs = {p["msme"]["nib"] for p in participants if p["msme"]}
    named_inside, named_outside = {
        "62": ({IN_62_01}, {IN_61_71}),
        "61": ({IN_61_71}, {IN_62_01}),
        "62.71": (set(), {IN_62_01, IN_61_71}),
    }[jurisdiction]
    assert named_inside <= nibs
    assert not named_outside & nibs


OWNER = "query($nib: String!) { msme(nib: $nib) { nib owner { nik fullName } } }"


@pytest.mark.parametrize("client_id", list(CLIENTS))
def test_owner_data_needs_pii_read_on_top_of_records(api: Api, client_id: str) -> None:
    _, scopes, inside, outside = CLIENTS[client_id]
    answer = api.graphql(OWNER, client_id, {"nib": inside or IN_62_71})
    if "records:read" not in scopes:
        _forbidden(answer, "msme", ["records:read"])
    elif "pii:read" not in scopes:
        assert answer["data"]["msme"] == {"nib": inside, "owner": None}
        (error,) = answer["errors"]
        assert error["path"] == ["msme", "owner"]
        assert error["extensions"] == {"code": "FORBIDDEN", "requiredScopes": ["pii:read"]}
    else:
        assert "errors" not in answer
        assert answer["data"]["msme"]["owner"]["nik"] == "6271995204880001"
        elsewhere = api.graphql(OWNER, client_id, {"nib": outside})
        assert elsewhere == {"data": {"msme": None}}


def test_a_province_learns_nothing_of_another_provinces_records(api: Api) -> None:
    """Not in lookups, lists, nested relations, counts, nor any error message."""
    documents = [
        (MSME, {"nib": IN_61_71}),
        (OWNER, {"nib": IN_61_71}),
        ('{ msmes(first: 100, filter: {region: "61"}) { totalCount nodes { nib } } }', None),
        (PARTICIPANTS, None),
        ('{ cooperative(legalEntityNo: "AHU-9990003.AH.01.26.TAHUN 2021") { name } }', None),
    ]
    for document, variables in documents:
        text = json.dumps(api.graphql(document, "demo-province-62", variables))
        assert IN_61_71 not in text
        assert "Khatulistiwa" not in text
        assert "6171996107950001" not in text


def test_a_query_without_pii_read_never_touches_the_owner_table(api: Api) -> None:
    from tests.support.statements import recorded_statements

    with recorded_statements() as statements:
        answer = api.graphql(OWNER, "demo-province-61", {"nib": IN_61_71})
    assert answer["data"]["msme"]["owner"] is None
    assert statements, "the query ran no SQL at all; the recorder is not listening"
    assert not [statement for statement in statements if "msme_owners" in statement]

    with recorded_statements() as statements:
        api.graphql(OWNER, "demo-province-62", {"nib": IN_62_71})
    assert [statement for statement in statements if "msme_owners" in statement]


def test_the_viewer_sees_its_own_grant(api: Api) -> None:
    answer = api.graphql("{ viewer { clientId orgKind jurisdiction scopes } }", "demo-jamkrida-62")
    assert answer["data"]["viewer"] == {
        "clientId": "demo-jamkrida-62",
        "orgKind": "bumd",
        "jurisdiction": "62",
        "scopes": ["aggregates:read", "eligibility:check", "guarantees:write"],
    }


def test_a_narrower_token_gets_only_what_it_asked_for(api: Api) -> None:
    token = api.token("demo-province-62", scope="aggregates:read")
    response = api.post({"query": MSME, "variables": {"nib": IN_62_71}}, token)
    _forbidden(response.json(), "msme", ["records:read"])


@pytest.mark.parametrize("asked", ["records:write", "records:write pii:read aggregates:read"])
def test_a_token_asking_to_write_records_without_reading_them_is_refused(
    api: Api, asked: str
) -> None:
    """A record mutation answers with the whole record it wrote, and ids run in sequence: a
    token that could write without reading would read the jurisdiction through writes. Such a
    request was answered 200 with records:write left out (with `scope` "" for records:write
    alone: a token that could do nothing); it is now refused, naming what is missing."""
    response = api.token_response("demo-province-62", scope=asked)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error"] == "invalid_scope"
    assert "records:write needs records:read" in body["error_description"]


def test_a_token_asking_to_write_records_and_read_them_holds_both(api: Api) -> None:
    response = api.token_response("demo-province-62", scope="records:write records:read")
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "records:read records:write"
    viewer = api.post({"query": "{ viewer { scopes } }"}, response.json()["access_token"])
    assert viewer.json()["data"]["viewer"]["scopes"] == ["records:read", "records:write"]


def test_a_client_registered_to_write_without_reading_is_issued_no_write(
    api: Api, demo_url: str
) -> None:
    """Registered before the rule (`clients create` refuses it now): asked for nothing in
    particular, its token's `scope` says what it holds, without records:write."""
    client_id, secret = "legacy-writer-62", "legacy-writer-secret"

    async def register() -> None:
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        from auth import clients
        from db.engine import async_url

        engine = create_async_engine(async_url(demo_url))
        async with engine.begin() as connection:
            await clients.create(
                connection,
                client_id=client_id,
                secret=secret,
                name="Dinas lama",
                org_kind="province",
                jurisdiction="62",
                purpose="legacy",
                scopes=["aggregates:read"],
            )
            await connection.execute(
                text("UPDATE oauth_clients SET scopes = :scopes WHERE client_id = :client_id"),
                {"scopes": ["aggregates:read", "records:write"], "client_id": client_id},
            )
        await engine.dispose()

    asyncio.run(register())
    response = api.token_response(client_id, secret)
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "aggregates:read"
