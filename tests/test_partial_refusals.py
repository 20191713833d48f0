"""A request refused SERVICE_UNAVAILABLE after it committed a change. A 503 tells the client that
nothing ran and to send the request again; when a mutation of the same document (or batch) had
committed first, sending it again applied that change twice. Such an answer is 200 and keeps what
was done, the refused fields carrying SERVICE_UNAVAILABLE. Refused here by a bulk import holding
the register (its lock, held as the import holds it), which MSME writes wait for at most 2 s."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from sinergi.settings import Settings
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

CLIENT = "demo-province-62"
NIB = "7143000000001"
LOOKUP = '{ msme(nib: "7143000000001") { id version name } }'
CREATE_MSME = "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id } }"
BOTH = """
mutation($coop: CreateCooperativeInput!, $id: ID!, $version: Int!) {
  createCooperative(input: $coop) { id }
  updateMsme(id: $id, version: $version, changes: {name: "Antre"}) { id version }
}
"""
CREATE_COOPERATIVE = (
    "mutation($coop: CreateCooperativeInput!) { createCooperative(input: $coop) { id } }"
)
UPDATE_MSME = """mutation($id: ID!, $version: Int!) {
  updateMsme(id: $id, version: $version, changes: {name: "Antre"}) { id version } }"""
COOPERATIVES = '{ cooperatives(filter: {region: "62.01"}, first: 100) { nodes { legalEntityNo } } }'


@pytest.fixture(scope="module")
def writable(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own: it writes."""
    demo_clients(module_reference_url)
    with served(module_reference_url, Settings(rate_limit=1_000_000)) as api:
        business = {
            "nib": NIB,
            "name": "Usaha Antre",
            "kbliCode": "47112",
            "region": "62.71",
            "capital": "100000000",
            "annualTurnover": "300000000",
        }
        created = api.graphql(CREATE_MSME, CLIENT, {"input": business})
        assert "errors" not in created, created
        yield api


@asynccontextmanager
async def importing(url: str) -> AsyncIterator[None]:
    connection = await asyncpg.connect(url)
    try:
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.import'))")
            yield
    finally:
        await connection.close()


def _cooperative(number: int) -> dict[str, Any]:
    return {
        "legalEntityNo": f"AHU-{number:07d}.AH.01.26.TAHUN 2021",
        "name": "Koperasi Antre",
        "type": "PRODUSEN",
        "region": "62.01",
        "membersMale": 30,
        "membersFemale": 25,
    }


def _registered(api: Api) -> set[str]:
    answer = api.graphql(COOPERATIVES, CLIENT)
    return {node["legalEntityNo"] for node in answer["data"]["cooperatives"]["nodes"]}


async def test_a_document_refused_after_its_first_mutation_committed_keeps_its_answer(
    writable: Api, module_reference_url: str
) -> None:
    record = writable.graphql(LOOKUP, CLIENT)["data"]["msme"]
    variables = {"coop": _cooperative(8801), "id": record["id"], "version": record["version"]}
    async with importing(module_reference_url):
        response = writable.post({"query": BOTH, "variables": variables}, writable.token(CLIENT))
    assert response.status_code == 200, response.text
    assert "retry-after" not in response.headers
    answer = response.json()
    assert answer["data"]["createCooperative"]["id"]
    assert answer["data"]["updateMsme"] is None
    [error] = answer["errors"]
    assert (error["extensions"]["code"], error["path"]) == ("SERVICE_UNAVAILABLE", ["updateMsme"])
    assert variables["coop"]["legalEntityNo"] in _registered(writable)
    assert writable.graphql(LOOKUP, CLIENT)["data"]["msme"] == record


async def test_a_batch_refused_after_an_operation_committed_keeps_every_answer(
    writable: Api, module_reference_url: str
) -> None:
    record = writable.graphql(LOOKUP, CLIENT)["data"]["msme"]
    coop = _cooperative(8802)
    batch = [
        {"query": CREATE_COOPERATIVE, "variables": {"coop": coop}},
        {"query": UPDATE_MSME, "variables": {"id": record["id"], "version": record["version"]}},
    ]
    async with importing(module_reference_url):
        response = writable.post(batch, writable.token(CLIENT))
    assert response.status_code == 200, response.text
    created, refused = response.json()
    assert created["data"]["createCooperative"]["id"]
    assert "data" not in refused  # that operation changed nothing: send it again
    assert [error["extensions"]["code"] for error in refused["errors"]] == ["SERVICE_UNAVAILABLE"]
    assert coop["legalEntityNo"] in _registered(writable)


async def test_a_refusal_before_any_change_is_still_503_without_data(
    writable: Api, module_reference_url: str
) -> None:
    record = writable.graphql(LOOKUP, CLIENT)["data"]["msme"]
    variables = {"id": record["id"], "version": record["version"]}
    async with importing(module_reference_url):
        response = writable.post(
            {"query": UPDATE_MSME, "variables": variables}, writable.token(CLIENT)
        )
    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert "data" not in response.json()
