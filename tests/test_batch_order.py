"""A batch (a JSON array of operations in one POST) that holds a mutation runs its operations one
after the other, in the array's order, as the root fields of one mutation document run: a client
chains writes to one record in it, each at the version the one before it leaves."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sinergi.settings import Settings
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

CLIENT = "demo-province-62"
CREATE = """
mutation($nib: String!) {
  createMsme(input: {nib: $nib, name: "Warung Berurut", kbliCode: "47112", region: "62.71",
                     capital: "50000000", annualTurnover: "90000000"}) { id version }
}
"""
UPDATE = """
mutation($id: ID!, $version: Int!, $name: String!) {
  updateMsme(id: $id, version: $version, changes: {name: $name}) { name version }
}
"""
READ = "query($nib: String!) { msme(nib: $nib) { name version } }"
CHAINED = 4


@pytest.fixture(scope="module")
def batches(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own (it writes)."""
    demo_clients(module_reference_url)
    with served(module_reference_url, Settings(rate_limit=1_000_000)) as api:
        yield api


@pytest.mark.parametrize("attempt", range(10))
def test_a_batch_of_chained_updates_applies_each_in_order(batches: Api, attempt: int) -> None:
    """The reviewer's batch: updates of one record at versions v, v+1, …, then a read. Run at
    once, a later update met its record at the version before and got CONFLICT, or the read
    answered the record as it stood before the writes."""
    nib = f"77420000000{attempt:02d}"
    created = batches.graphql(CREATE, CLIENT, {"nib": nib})["data"]["createMsme"]
    batch = [
        {
            "query": UPDATE,
            "variables": {"id": created["id"], "version": version, "name": f"Versi {version}"},
        }
        for version in range(created["version"], created["version"] + CHAINED)
    ]
    batch.append({"query": READ, "variables": {"nib": nib}})
    response = batches.post(batch, batches.token(CLIENT))
    assert response.status_code == 200, response.text
    *updated, read = response.json()
    assert updated == [
        {"data": {"updateMsme": {"name": f"Versi {version}", "version": version + 1}}}
        for version in range(created["version"], created["version"] + CHAINED)
    ]
    last = created["version"] + CHAINED
    assert read == {"data": {"msme": {"name": f"Versi {last - 1}", "version": last}}}
