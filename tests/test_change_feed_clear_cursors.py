"""Cursors in clear, kept from before the feed sealed them (migration 0029), against a client who
makes them up: the feed takes one at any position up to where the log reached then, so nothing
a page from one says (entries, `hasMore`, where it ends, which refusal) may depend on where the
feed stands now, or a binary search over made-up positions finds the head: the count of every
change in the country since the upgrade."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from db.queries.change_feed import SCAN
from tests.support.demo_data import load_demo
from tests.support.feed_cursors import cursor_seal, in_clear
from tests.support.http import Api, served
from tests.test_change_feed import run

READER = "demo-province-62"


@pytest.fixture(scope="module")
def owner_url(module_reference_url: str) -> str:
    load_demo(module_reference_url, msmes=60, seed=41)
    return module_reference_url


@pytest.fixture(scope="module")
def api(owner_url: str) -> Iterator[Api]:
    with served(owner_url) as served_api:
        yield served_api


def _document(first: int, directive: str) -> str:
    return (
        f"query($after: String) {{ msmeChanges(after: $after, first: {first}) "
        f"{{ entries{directive} {{ id change }} endCursor hasMore }} }}"
    )


def _others_write(url: str, entries: int) -> None:
    """`entries` changes of another province's businesses, none of them the reader's: as a
    busy country writes after the upgrade (written straight into the log, as the owner, for
    the numbers' sake)."""
    run(
        url,
        "INSERT INTO change_log (record_kind, record_id, operation, deactivated, personal,"
        " new_province, new_regency)"
        " SELECT 'msme', g::text, 'update', false, false, '61', '61.71'"
        " FROM generate_series(1, $1) g",
        entries,
    )


@pytest.mark.parametrize("directive", ["", " @include(if: true)"], ids=["compiled", "by-entry"])
def test_a_page_from_a_cursor_in_clear_says_nothing_of_the_log_past_the_upgrade(
    api: Api, owner_url: str, directive: str
) -> None:
    """A page looks at 20,000 entries, so `hasMore` from a made-up cursor in clear said whether
    the head lay that far beyond it: fifteen made-up cursors found the head. A page from one
    reads the log up to where it reached at the upgrade and no further, and says more is
    waiting whatever follows; so the same cursors answer alike, entries, `hasMore` and where
    they end, however much the country writes after the upgrade. The sealed endCursor goes on
    from there as any other."""
    ((until,),) = run(owner_url, "SELECT max(id) FROM change_log")
    run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = $1", until)  # as 0029
    positions = (0, until // 2, until - 3, until)
    try:

        def answers() -> list[tuple[Any, ...]]:
            found = []
            for first in (1, 1000):
                for position in positions:
                    after = in_clear("msme", position)
                    answer = api.graphql(_document(first, directive), READER, {"after": after})
                    assert "errors" not in answer, answer
                    page = answer["data"]["msmeChanges"]
                    end = cursor_seal().open("msme-feed", page["endCursor"])
                    assert end is not None
                    found.append((first, position, page["entries"], page["hasMore"], end))
            return found

        before = answers()
        assert all(has_more for *_, has_more, _ in before)  # even at `until`, with none after
        _others_write(owner_url, 5)
        assert answers() == before
        _others_write(owner_url, 20_001)  # past a page's stretch from every cursor above
        assert answers() == before
        # The page from a cursor at `until` hands out a sealed one that goes on as any other.
        page = api.graphql(_document(1000, directive), READER, {"after": in_clear("msme", until)})
        after = page["data"]["msmeChanges"]["endCursor"]
        sealed_pages = []
        while True:
            answer = api.graphql(_document(1000, directive), READER, {"after": after})
            sealed_page = answer["data"]["msmeChanges"]
            sealed_pages.append((sealed_page["entries"], sealed_page["hasMore"]))
            after = sealed_page["endCursor"]
            if not sealed_page["hasMore"]:
                break
        assert sealed_pages == [([], True), ([], False)]  # two stretches of others' changes
    finally:
        run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = 0")


def test_every_refusal_of_a_cursor_in_clear_reads_alike(api: Api, owner_url: str) -> None:
    """A cursor in clear short of a compaction, naming a fold further than the feed's, or past
    the upgrade was refused each in its own words, so made-up ones told apart where the fold
    stands and where the upgrade found the log. Each is refused as a forged cursor is,
    `BAD_USER_INPUT` on `after`; `sinergi sync` starts its copy again on any of them. A cursor
    in clear resumes from the start of its stretch under no fold, so one whose stretch starts
    short of the fold is short of it."""
    ((until,),) = run(owner_url, "SELECT max(id) FROM change_log")
    if until < SCAN + 10:  # a stretch before the fold, and some of the next after it
        _others_write(owner_url, SCAN + 10 - until)
        ((until,),) = run(owner_url, "SELECT max(id) FROM change_log")
    horizon = SCAN
    run(
        owner_url,
        "UPDATE change_log_horizon SET clear_cursors_until = $1, horizon = $2",
        until,
        horizon,
    )
    document = _document(10, "")
    try:
        refused = [
            api.graphql(document, READER, {"after": after})
            for after in (
                in_clear("msme", 1, 0),  # short of the fold
                in_clear("msme", horizon - 1, horizon + 1),  # its stretch is short of the fold
                in_clear("msme", until - until % SCAN + SCAN, horizon),  # past the upgrade
                "not a cursor",
            )
        ]
        for answer in refused:
            assert answer["data"] == {"msmeChanges": None}, answer
            (error,) = answer["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", error
            assert error["extensions"]["field"] == "after", error
            assert error["message"] == "after: is not a cursor of this feed", error
        for taken in (in_clear("msme", horizon, 0), in_clear("msme", until, until)):
            answer = api.graphql(document, READER, {"after": taken})
            assert "errors" not in answer, answer
    finally:
        run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = 0, horizon = 0")


def test_cursors_in_clear_within_one_stretch_answer_alike(api: Api, owner_url: str) -> None:
    """Taken exactly, made-up cursors in clear were an oracle: a binary search over positions
    found where the log ended at the upgrade, and the exact position of each of the reader's
    own entries from before it (so how many changes others made between them), and one over
    the fold they name found where compaction stood. A cursor in clear now resumes from the
    start of its stretch of the log (a multiple of a page's stretch, `SCAN`), under no fold:
    every one in a stretch, whatever fold it names, answers as the first of it does, and a
    copy that kept one reads again at most a stretch of entries it holds (each carries the
    record as it is now, so applying it again changes nothing)."""
    # One of the reader's own entries last in the log at the upgrade, not first in a stretch.
    ((until,),) = run(owner_url, "SELECT max(id) FROM change_log")
    for _ in range(2 if (until + 1) % SCAN == 0 else 1):
        run(
            owner_url,
            "UPDATE msmes SET employees = coalesce(employees, 0) + 1, version = version + 1"
            " WHERE id = (SELECT min(id) FROM msmes WHERE province_code = '62')",
        )
    ((until,),) = run(owner_url, "SELECT max(id) FROM change_log")
    stretch = until - until % SCAN
    run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = $1", until)  # as 0029
    document = _document(1000, "")

    def answer(position: int, horizon: int) -> Any:
        found = api.graphql(document, READER, {"after": in_clear("msme", position, horizon)})
        page = found.get("data", {}).get("msmeChanges")
        if page is not None:
            page["endCursor"] = cursor_seal().open("msme-feed", page["endCursor"])
        return found

    try:
        first = answer(stretch, 0)
        assert first["data"]["msmeChanges"]["entries"], first
        for position, horizon in (
            (stretch + 1, 0),
            (until - 1, until // 3),
            (until, until),
            (until + 1, 0),
            (stretch + SCAN - 1, stretch + SCAN - 1),
        ):
            assert answer(position, horizon) == first, (position, horizon)
        beyond = answer(stretch + SCAN, 0)  # the next stretch: past the upgrade, made up
        assert beyond["errors"][0]["message"] == "after: is not a cursor of this feed"
    finally:
        run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = 0")
