"""A TRUNCATE reaches every copy kept from the change feed: an operator who empties the owners'
personal data, the participations or the register itself, as the owner may, leaves no copy
holding what no longer exists (migration 0021). Copies are kept by `sinergi.sync` through the
real app, as in tests/test_change_feed.py, and compared with a fresh page-through after each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sinergi.sync import LocalCopy, sync
from tests.support.demo_data import load_demo
from tests.support.http import Api, served
from tests.test_change_feed import (
    CLIENTS,
    RECORDS,
    WITHOUT_PII,
    head,
    page_through,
    poster,
    pull,
    run,
)


@pytest.fixture(scope="module")
def owner_url(module_reference_url: str) -> str:
    load_demo(module_reference_url, msmes=200, seed=29)
    return module_reference_url


@pytest.fixture(scope="module")
def api(owner_url: str) -> Iterator[Api]:
    with served(owner_url) as served_api:
        yield served_api


def test_an_emptied_table_is_emptied_in_every_copy(
    api: Api, owner_url: str, tmp_path: Path
) -> None:
    copies = {client: LocalCopy(tmp_path / f"{client}.sqlite") for client, _ in CLIENTS}

    def synced(step: str) -> dict[str, dict[str, dict[str, object]]]:
        shown = {}
        for client, personal in CLIENTS:
            sync(poster(api, client), copies[client], RECORDS)
            shown[client] = page_through(api, client, personal)
            for kind in RECORDS:
                assert copies[client].records(kind) == shown[client][kind], (step, client, kind)
        return shown

    before = synced("before")
    owners = [m for m in before["demo-province-62"]["msme"].values() if m.get("owner")]
    assert owners  # there is something to lose
    assert before["demo-province-62"]["participation"]

    without_pii = head(api, "demo-province-62", WITHOUT_PII)
    run(owner_url, "TRUNCATE msme_owners")
    after_owners = synced("owners emptied")
    assert not any(m["owner"] for m in after_owners["demo-province-62"]["msme"].values())
    assert pull(api, "demo-province-62", without_pii, WITHOUT_PII)["entries"] == []

    run(owner_url, "TRUNCATE participations")
    kalbar = synced("participations emptied")["demo-province-61"]
    assert not kalbar["participation"]
    assert kalbar["msme"]

    kalbar_cursor = head(api, "demo-province-61")
    run(owner_url, "TRUNCATE msmes, cooperatives CASCADE")
    removals = pull(api, "demo-province-61", kalbar_cursor)
    assert not removals["hasMore"]
    # Its own records' removals, and not a word of another province's.
    assert sorted((entry["id"], entry["change"]) for entry in removals["entries"]) == sorted(
        (id_, "REMOVED") for id_ in kalbar["msme"]
    )
    emptied = synced("register emptied")
    assert all(not records for shown in emptied.values() for records in shown.values())
