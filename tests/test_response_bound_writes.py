"""Writes answered past the response size bound. A mutation's answer over the bound is withheld,
but what it changed is committed: it is answered 200 with `extensions.applied`, never with a 400,
which tells a client that nothing ran and to send it again (a second report, a second import).
A read past the bound is still refused with 400: nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncTransaction

from db.writes import msmes
from schema.query_limits import QueryLimits
from sinergi.settings import Settings
from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

BOUND = 1_000
CLIENT = "demo-province-62"
LONG_NAME = "Usaha Makmur Sentosa Jaya Abadi Sejahtera Bersama Nusantara"
CREATE = (
    "mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id "
    + " ".join(f"n{i}: name" for i in range(25))
    + " } }"
)
"""A creation whose answer alone is over BOUND: the name, 25 times."""
IMPORT = """mutation($rows: [MsmeImportRow!]!, $mode: ImportMode! = VALID_ROWS) {
  importMsmes(rows: $rows, mode: $mode) {
    created rejected a: errors { row field reason } b: errors { row field reason } } }"""
TREE = "{ indonesia { children { code name } } }"
"""Every province's code and name: over BOUND."""
SMALL = '{ region(code: "62") { name } }'


@pytest.fixture(scope="module")
def bounded(module_reference_url: str) -> Iterator[Api]:
    """The app over a database of this module's own (it writes), its answers bounded small."""
    demo_clients(module_reference_url)
    settings = Settings(rate_limit=1_000_000, query_limits=QueryLimits(max_response_bytes=BOUND))
    with served(module_reference_url, settings) as api:
        yield api


def _business(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": LONG_NAME,
        "kbliCode": "47112",
        "region": "62.71",
        "capital": "100000000",
        "annualTurnover": "300000000",
        **overrides,
    }


def _stored(api: Api, nib: str) -> Any:
    answer = api.graphql(f'{{ msme(nib: "{nib}") {{ nib }} }}', CLIENT)
    assert "errors" not in answer, answer
    return answer["data"]["msme"]


def _over_bound(error: dict[str, Any]) -> dict[str, Any]:
    """The error's extensions, checked to be the response size bound's."""
    extensions: dict[str, Any] = error["extensions"]
    assert extensions["code"] == "QUERY_TOO_COMPLEX"
    assert extensions["limit"] == "response size"
    assert extensions["maximum"] == BOUND
    assert extensions["actual"] > BOUND
    return extensions


@pytest.mark.parametrize(
    ("accept", "nib"),
    [("application/json", "7142000000001"), ("application/graphql-response+json", "7142000000002")],
)
def test_a_mutation_answered_past_the_bound_says_its_change_was_applied(
    bounded: Api, accept: str, nib: str
) -> None:
    """The attack: a creation whose answer passed the bound was answered 400 and no data, as a
    request that never ran; the business existed, and a client sending it again met CONFLICT
    (a report, sent again, is a second report)."""
    response = bounded.client.post(
        "/graphql",
        json={"query": CREATE, "variables": {"input": _business(nib)}},
        headers={"Authorization": f"Bearer {bounded.token(CLIENT)}", "Accept": accept},
    )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["data"] is None
    (error,) = answer["errors"]
    assert _over_bound(error)["applied"] is True
    assert "applied" in error["message"]
    assert _stored(bounded, nib) == {"nib": nib}


def test_an_import_answered_past_the_bound_says_its_good_rows_were_written(bounded: Api) -> None:
    """The attack: one good row and many bad ones, the errors selected twice, answered 400;
    the good row was written."""
    rows = [_business("7142000000101")] + [
        _business(f"71420000002{index:02d}", kbliCode="4") for index in range(20)
    ]
    response = bounded.post({"query": IMPORT, "variables": {"rows": rows}}, bounded.token(CLIENT))
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    assert _over_bound(error)["applied"] is True
    assert _stored(bounded, "7142000000101") == {"nib": "7142000000101"}
    assert _stored(bounded, "7142000000200") is None


@pytest.mark.parametrize(
    ("mode", "prefix"), [("ALL_OR_NOTHING", "71420000004"), ("VALID_ROWS", "71420000005")]
)
def test_an_import_that_wrote_nothing_answered_past_the_bound_says_so(
    bounded: Api, mode: str, prefix: str
) -> None:
    """The attack: an import of bad rows only, its answer past the bound, was answered
    `applied: true` (a root field answered without an error of its own was taken for a write
    committed), though nothing was written: the client read back for a change never made."""
    rows = [_business(f"{prefix}{index:02d}", kbliCode="4") for index in range(20)]
    variables = {"rows": rows, "mode": mode}
    response = bounded.post({"query": IMPORT, "variables": variables}, bounded.token(CLIENT))
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    assert _over_bound(error)["applied"] is False
    assert "not applied" in error["message"]
    assert _stored(bounded, f"{prefix}00") is None


def test_an_import_of_rows_already_on_record_past_the_bound_applied_nothing(bounded: Api) -> None:
    """Every row as the register holds it: nothing written, so nothing applied."""
    row = _business("7142000000601")
    first = bounded.post({"query": IMPORT, "variables": {"rows": [row]}}, bounded.token(CLIENT))
    assert first.json()["data"]["importMsmes"]["created"] == 1, first.text
    rows = [row] + [_business(f"71420000007{index:02d}", kbliCode="4") for index in range(20)]
    response = bounded.post({"query": IMPORT, "variables": {"rows": rows}}, bounded.token(CLIENT))
    assert response.status_code == 200, response.text
    (error,) = response.json()["errors"]
    assert _over_bound(error)["applied"] is False


def test_a_query_answered_past_the_bound_is_still_refused(bounded: Api) -> None:
    response = bounded.post({"query": TREE}, bounded.token(CLIENT))
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert "applied" not in _over_bound(error)
    assert "data" not in response.json()


def test_a_batch_past_the_bound_answers_each_write_it_ran(bounded: Api) -> None:
    """The attack: a creation sent in a batch with large queries was answered 400 and no data,
    and the business existed. The operations run in order, the batch holding a mutation: the
    answer made before the bound was passed is kept; a write answered later says it was
    applied, one that failed says nothing was and names its own error; a query after it is not
    answered."""
    batch = [
        {"query": SMALL},
        {"query": CREATE, "variables": {"input": _business("7142000000301")}},
        {"query": TREE},
        {"query": CREATE, "variables": {"input": _business("7142000000302", kbliCode="4")}},
    ]
    response = bounded.post(batch, bounded.token(CLIENT))
    assert response.status_code == 200, response.text
    small, created, tree, refused = response.json()

    assert small == {"data": {"region": {"name": "Kalimantan Tengah"}}}

    assert created["data"] is None
    (error,) = created["errors"]
    assert _over_bound(error)["applied"] is True
    assert _stored(bounded, "7142000000301") == {"nib": "7142000000301"}

    assert "data" not in tree
    (error,) = tree["errors"]
    assert "applied" not in _over_bound(error)

    assert refused["data"] is None
    assert _over_bound(refused["errors"][0])["applied"] is False
    codes = [error["extensions"]["code"] for error in refused["errors"]]
    assert "BAD_USER_INPUT" in codes
    assert _stored(bounded, "7142000000302") is None


def test_a_batch_write_past_the_bound_whose_commit_lost_its_connection_may_have_applied(
    bounded: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A creation after the bound was passed whose COMMIT lost its connection was answered
    `applied: false` (only a commit known to be stored counted): its client, told nothing was
    stored, sent it again. Whether it was is not known: it says it may have been applied."""
    create, ending, losing = msmes.create, AsyncTransaction.__aexit__, set()

    async def creating(connection: AsyncConnection, *args: Any, **kwargs: Any) -> Any:
        losing.add(connection)
        return await create(connection, *args, **kwargs)

    async def lost(self: AsyncTransaction, *raised: Any) -> None:
        await ending(self, *raised)
        if raised[0] is None and self.connection in losing:  # committed; its answer lost
            raise ConnectionResetError("connection lost while the COMMIT's answer was sent")

    monkeypatch.setattr(msmes, "create", creating)
    monkeypatch.setattr(AsyncTransaction, "__aexit__", lost)
    batch = [
        {"query": TREE},
        {"query": CREATE, "variables": {"input": _business("7142000000801")}},
    ]
    response = bounded.post(batch, bounded.token(CLIENT))
    assert response.status_code == 200, response.text
    _, created = response.json()
    assert created["data"] is None
    bound, outage = created["errors"]
    assert _over_bound(bound)["applied"] is True
    assert outage["extensions"] == {"code": "SERVICE_UNAVAILABLE", "applied": True}, outage
    assert _stored(bounded, "7142000000801") == {"nib": "7142000000801"}


def test_a_batch_of_reads_past_the_bound_is_refused_whole(bounded: Api) -> None:
    """Nothing changed: 400, as for one query, the client asking for less at a time."""
    response = bounded.post([{"query": SMALL}, {"query": TREE}], bounded.token(CLIENT))
    assert response.status_code == 400, response.text
    (error,) = response.json()["errors"]
    assert "applied" not in _over_bound(error)
