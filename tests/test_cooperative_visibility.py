"""A cooperative outside a reader's jurisdiction stays unnamed through the MSMEs it can read:
`Msme.cooperative` answers null for it, and so must the record's history and the change feed,
rather than say which cooperative it is, that it exists, or when it moved.

The module's own database: the demo clients, and records put where each case needs them by
the owner, as an operator would (no client may place a member in another province's
cooperative)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest

from tests.support.demo_data import demo_clients
from tests.support.http import Api, served

KALTENG, KALBAR, PALANGKA_RAYA = "demo-province-62", "demo-province-61", "demo-regency-6271"


def run(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    async def query() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(sql, *args))
        finally:
            await connection.close()

    return asyncio.run(query())


@pytest.fixture(scope="module")
def url(module_reference_url: str) -> str:
    demo_clients(module_reference_url)
    return module_reference_url


@pytest.fixture(scope="module")
def api(url: str) -> Iterator[Api]:
    with served(url) as served_api:
        yield served_api


def district_of(url: str, regency: str) -> str:
    rows = run(
        url,
        "SELECT code FROM regions WHERE parent_code = $1 AND level = 'district' ORDER BY code",
        regency,
    )
    return str(rows[0]["code"])


def cooperative(url: str, number: int, regency: str) -> str:
    """A cooperative in `regency` (numbered apart from every other module's)."""
    rows = run(
        url,
        "INSERT INTO cooperatives (legal_entity_no, name, type, province_code, regency_code)"
        " VALUES ($1, 'Koperasi Uji Cakupan', 'produsen', left($2, 2), $2) RETURNING id",
        f"AHU-9264{number:03d}.AH.01.26.TAHUN 2020",
        regency,
    )
    return str(rows[0]["id"])


def msme(url: str, number: int, regency: str, member_of: str | None = None) -> tuple[str, str]:
    """An MSME in `regency`, a member of `member_of`: its id and NIB."""
    nib = f"99264{number:08d}"
    rows = run(
        url,
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code, cooperative_id)"
        " VALUES ($1, 'Usaha Uji Cakupan', '10794', 'C', 'micro', left($2, 2), $2, $3)"
        " RETURNING id",
        nib,
        regency,
        None if member_of is None else int(member_of),
    )
    return str(rows[0]["id"]), nib


UPDATE_MSME = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { version }
}
"""
HISTORY = """
query($nib: String!) {
  msme(nib: $nib) { cooperative { id } changes { version fields { field before after } } }
}
"""


def history(api: Api, client_id: str, nib: str) -> tuple[Any, list[list[tuple[Any, ...]]]]:
    """The MSME's cooperative as the client reads it, and each change's cooperative fields."""
    answer = api.graphql(HISTORY, client_id, {"nib": nib})
    assert "errors" not in answer, answer
    found = answer["data"]["msme"]
    changes = [
        [
            (field["before"], field["after"])
            for field in change["fields"]
            if field["field"] == "cooperativeId"
        ]
        for change in found["changes"]
    ]
    return found["cooperative"], changes


def test_the_history_names_no_cooperative_the_reader_cannot_see(api: Api, url: str) -> None:
    """Kalteng moves a Palangka Raya business into a cooperative of another regency, to one of
    Palangka Raya and back: Palangka Raya reads each change with the other regency's
    cooperative as null (where both sides are null, no change of it at all), as
    `Msme.cooperative` answers it; Kalteng, which sees both, reads every id."""
    elsewhere = cooperative(url, 1, "62.01")
    here = cooperative(url, 2, "62.71")
    member, nib = msme(url, 1, "62.71")
    for version, (joins, capital) in enumerate(
        ((elsewhere, "910000000"), (here, "920000000"), (elsewhere, "930000000")), start=1
    ):
        changes = {"cooperativeId": joins, "capital": capital}
        answer = api.graphql(
            UPDATE_MSME, KALTENG, {"id": member, "version": version, "changes": changes}
        )
        assert "errors" not in answer, answer

    assert history(api, KALTENG, nib) == (
        {"id": elsewhere},
        [[(None, elsewhere)], [(elsewhere, here)], [(here, elsewhere)]],
    )
    assert history(api, PALANGKA_RAYA, nib) == (None, [[], [(None, here)], [(here, None)]])
