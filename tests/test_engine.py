"""The one execution path over HTTP: compiled reads answer as GraphQL says, are audited under
the operation's name, and an unexpected failure is a coded INTERNAL error, never a bare 500."""

from __future__ import annotations

from typing import Any

import pytest

from schema import compiled
from tests.support.executor import latest_entry
from tests.support.http import Api
from tests.support.statements import recorded_statements

PROVINCE = "demo-province-62"
NIB = "9990000000001"


@pytest.mark.parametrize("operation_name", [None, "Lookup"])
def test_a_compiled_lookup_is_audited_under_its_operations_name(
    api: Api, demo_url: str, operation_name: str | None
) -> None:
    body = {
        "query": f'query Lookup {{ msme(nib: "{NIB}") {{ nib name regency {{ name }} }} }}',
        "operationName": operation_name,
    }
    response = api.post(body, api.token(PROVINCE))
    assert response.status_code == 200, response.text
    assert response.json()["data"]["msme"]["regency"]["name"] == "Kota Palangkaraya"
    entry = latest_entry(demo_url, PROVINCE).entry
    assert entry["operation"] == "Lookup"
    assert entry["records"] == {"msme": 1}
    assert entry["fields"] == {"Query.msme": ["records:read"]}


def test_compiled_pages_name_every_type_as_graphql_does(api: Api) -> None:
    answer = api.graphql(
        """{ msmes(first: 2) { __typename totalCount
               edges { __typename cursor node { __typename nib } }
               nodes { __typename regency { __typename } cooperative { __typename } }
               pageInfo { __typename hasNextPage endCursor } } }""",
        PROVINCE,
    )
    page = answer["data"]["msmes"]
    assert page["__typename"] == "MsmeConnection"
    assert {edge["__typename"] for edge in page["edges"]} == {"MsmeEdge"}
    assert {edge["node"]["__typename"] for edge in page["edges"]} == {"Msme"}
    assert {node["regency"]["__typename"] for node in page["nodes"]} == {"Region"}
    assert page["pageInfo"]["__typename"] == "PageInfo"
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]


def test_an_unexpected_failure_is_a_coded_internal_error(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(compiled, "fetch_json_record", broken)
    response = api.post({"query": f'{{ msme(nib: "{NIB}") {{ nib }} }}'}, api.token(PROVINCE))
    assert response.status_code == 200
    answer = response.json()
    assert answer["data"] == {"msme": None}
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert error["extensions"]["correlationId"]
    assert "a bug" not in response.text


OWNER_PAGE = """query Owners { msmes(first: 3) { nodes { nib name
  owner { nik fullName phone } } } }"""


@pytest.mark.parametrize(
    ("client_id", "personal"),
    [
        ("demo-province-62", ["Owner.fullName", "Owner.nik", "Owner.phone"]),
        ("demo-province-61", []),  # no pii:read: owner is FORBIDDEN
    ],
)
def test_the_audit_entry_names_every_field_handed_out_and_itemises_personal_data(
    api: Api, demo_url: str, client_id: str, personal: list[str]
) -> None:
    with recorded_statements() as statements:
        response = api.post({"query": OWNER_PAGE}, api.token(client_id))
    assert response.status_code == 200, response.text
    nodes = response.json()["data"]["msmes"]["nodes"]
    assert len(nodes) == 3
    entry = latest_entry(demo_url, client_id).entry
    assert entry["operation"] == "Owners"
    assert entry["personalFields"] == personal
    base = ["Msme.name", "Msme.nib", "MsmeConnection.nodes", "Query.msmes"]
    assert entry["touched"] == sorted(base + (["Msme.owner", *personal] if personal else []))
    reads_owners = any("msme_owners" in statement for statement in statements)
    assert reads_owners == bool(personal)  # without pii:read the table is not even read


def test_a_root_field_selected_twice_is_merged_as_graphql_says(api: Api) -> None:
    answer = api.graphql(
        f'{{ msme(nib: "{NIB}") {{ nib }} msme(nib: "{NIB}") {{ name regency {{ name }} }} }}',
        PROVINCE,
    )
    assert "errors" not in answer
    assert answer["data"]["msme"] == {
        "nib": NIB,
        "name": answer["data"]["msme"]["name"],
        "regency": {"name": "Kota Palangkaraya"},
    }
