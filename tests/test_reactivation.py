"""Deactivation and reactivation over HTTP with the demo clients' real tokens: a deactivation can
be undone by whoever may write the record, and the record's history and the change feed say so;
a dissolved cooperative's status is not the API's to change."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import async_url
from sinergi.demo_mode import register_demo_clients
from tests.support.http import Api, served

KALTENG = "demo-province-62"
KALBAR = "demo-province-61"
PALANGKA_RAYA = "demo-regency-6271"


@pytest.fixture(scope="module")
def url(module_reference_url: str) -> str:
    """A database of this module's own (a cooperative is dissolved behind the API's back), with
    the demo clients: the owner's URL."""

    async def register() -> None:
        engine = create_async_engine(async_url(module_reference_url))
        try:
            await register_demo_clients(engine)
        finally:
            await engine.dispose()

    asyncio.run(register())
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
COOPERATIVE = """
query($number: String!) {
  cooperative(legalEntityNo: $number) { status version changes { operation version } }
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
