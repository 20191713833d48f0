"""`sinergi feed compact` folds the change feed's old entries into one creation per record that
still exists (db/queries/change_feed_compaction.py). Copies kept through the real app by
`sinergi.sync`, as in tests/test_change_feed.py, stay exactly what a fresh page-through shows:
one whose cursor is past the fold goes on; one whose cursor is short of it is refused, empties
and starts again; a new one starts from the folded log. Only the owner can fold."""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import asyncpg
import pytest

from sinergi.cli import main
from sinergi.sync import LocalCopy, sync
from tests.support.cli import sinergi
from tests.support.databases import as_service
from tests.support.demo_data import load_demo
from tests.support.feed_cursors import in_clear, sealed
from tests.support.http import Api, served
from tests.test_change_feed import CLIENTS, RECORDS, Writer, head, page_through, poster, run

FEED = "query($after: String) { msmeChanges(after: $after, first: 10) { endCursor } }"


@pytest.fixture(scope="module")
def owner_url(module_reference_url: str) -> str:
    load_demo(module_reference_url, msmes=200, seed=31)
    return module_reference_url


@pytest.fixture(scope="module")
def api(owner_url: str) -> Iterator[Api]:
    with served(owner_url) as served_api:
        yield served_api


def _compact(url: str, *argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        code = main(["feed", "compact", *argv])
    return code, out.getvalue()


FOLDED = """SELECT count(*) AS entries, count(DISTINCT (record_kind, record_id)) AS records,
  count(*) FILTER (WHERE operation <> 'insert' OR personal OR deactivated
                   OR old_province IS NOT NULL OR cooperative_old_province IS NOT NULL)
  AS not_creations
FROM change_log WHERE id <= $1"""


def _of_records_gone(url: str, upto: int) -> int:
    """Entries up to `upto` of businesses and participations that no longer exist."""
    return int(
        run(
            url,
            "SELECT count(*) FROM change_log c WHERE c.id <= $1 AND ("
            " c.record_kind = 'msme' AND c.record_id NOT IN (SELECT id::text FROM msmes) OR"
            " c.record_kind = 'participation'"
            "  AND c.record_id NOT IN (SELECT id::text FROM participations))",
            upto,
        )[0][0]
    )


def _age_every_entry(url: str, days: int) -> None:
    run(url, "UPDATE change_log SET noted_at = noted_at - make_interval(days => $1)", days)


def _delete_outright(url: str, writer: Writer) -> None:
    """As an operator may: a participation, and a business nothing else refers to."""
    participations = run(url, "SELECT id FROM participations ORDER BY id")
    run(url, "DELETE FROM participations WHERE id = $1", writer.rng.choice(participations)["id"])
    unreferenced = run(
        url,
        "SELECT id FROM msmes m WHERE NOT EXISTS (SELECT FROM eligibility_decisions d"
        " WHERE d.msme_id = m.id) AND NOT EXISTS (SELECT FROM guarantees g"
        " WHERE g.msme_id = m.id) ORDER BY id",
    )
    run(url, "DELETE FROM msmes WHERE id = $1", writer.rng.choice(unreferenced)["id"])


def _exact(api: Api, copy: LocalCopy, client: str, personal: bool) -> None:
    expected = page_through(api, client, personal)
    assert expected["msme"], client  # the comparison compares something
    for kind in RECORDS:
        assert copy.records(kind) == expected[kind], (client, kind)


def test_every_copy_stays_exact_across_a_compaction(
    api: Api, owner_url: str, tmp_path: Path
) -> None:
    behind = {client: LocalCopy(tmp_path / f"behind-{client}.sqlite") for client, _ in CLIENTS}
    current = {client: LocalCopy(tmp_path / f"current-{client}.sqlite") for client, _ in CLIENTS}
    writer = Writer(api, owner_url, seed=31)
    for client, _ in CLIENTS:
        sync(poster(api, client), behind[client], RECORDS)
    for _ in range(25):
        writer.any()
    _delete_outright(owner_url, writer)
    for client, _ in CLIENTS:
        sync(poster(api, client), current[client], RECORDS)
    logged = run(owner_url, "SELECT count(*) FROM change_log")[0][0]

    assert _of_records_gone(owner_url, 2**62) > 0

    _age_every_entry(owner_url, 30)
    code, out = _compact(owner_url, "--older-than", "7")
    assert code == 0, out
    assert "compacted the change feed through entry" in out
    assert run(owner_url, "SELECT count(*) FROM change_log")[0][0] < logged
    # Up to the horizon: one creation per record that still exists.
    (horizon,) = run(owner_url, "SELECT horizon FROM change_log_horizon")[0]
    folded = run(owner_url, FOLDED, horizon)[0]
    assert folded["entries"] == folded["records"]
    assert folded["not_creations"] == 0
    assert _of_records_gone(owner_url, horizon) == 0

    for _ in range(25):
        writer.any()
    _delete_outright(owner_url, writer)
    for client, personal in CLIENTS:
        went_on = sync(poster(api, client), current[client], RECORDS)
        assert not any(done.started_again for done in went_on.values())
        _exact(api, current[client], client, personal)

        started_again = sync(poster(api, client), behind[client], RECORDS)
        assert all(done.started_again for done in started_again.values())
        _exact(api, behind[client], client, personal)

        new = LocalCopy(tmp_path / f"new-{client}.sqlite")
        sync(poster(api, client), new, RECORDS)
        _exact(api, new, client, personal)


def test_a_cursor_short_of_the_fold_is_refused_naming_after(api: Api, owner_url: str) -> None:
    post = poster(api, "demo-province-62")
    short = post(FEED, {"after": None})["data"]["msmeChanges"]["endCursor"]
    run(
        owner_url,
        "UPDATE msmes SET employees = employees + 1 WHERE id = (SELECT min(id) FROM msmes)",
    )
    _age_every_entry(owner_url, 30)
    assert _compact(owner_url, "--older-than", "7")[0] == 0

    refused = post(FEED, {"after": short})
    assert refused["data"] == {"msmeChanges": None}
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "after"
    assert "start again without `after`" in error["message"]
    assert post(FEED, {"after": head(api, "demo-province-62")})["data"]["msmeChanges"]


def test_nothing_older_than_asked_is_folded(owner_url: str) -> None:
    run(owner_url, "UPDATE change_log SET noted_at = now()")
    horizon = "SELECT horizon FROM change_log_horizon"
    before = run(owner_url, horizon)[0][0]
    code, out = _compact(owner_url, "--older-than", "7")
    assert code == 0
    assert out.startswith("nothing to compact")
    assert run(owner_url, horizon)[0][0] == before


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM change_log WHERE id = (SELECT max(id) FROM change_log)",
        "UPDATE change_log SET operation = 'insert'",
        "UPDATE change_log_horizon SET horizon = horizon + 1",
    ],
)
def test_the_service_can_neither_fold_the_feed_nor_move_its_horizon(
    owner_url: str, statement: str
) -> None:
    """An insider with the service's credentials cannot erase what the feed said, nor force
    every copy to start again."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        asyncio.run(_as_service(owner_url, statement))


async def _as_service(url: str, statement: str) -> None:
    connection = await asyncpg.connect(as_service(url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


SPARSE = """query($after: String) {
  msmeChanges(after: $after, first: 2) { endCursor hasMore entries { id } } }"""


def test_a_compacted_feed_is_read_in_full_pages_however_far_apart_its_ids(
    fresh_url: str,
) -> None:
    """Compaction keeps a record's newest entry alone, so a record changed fifty times leaves
    its entry fifty ids after the last one kept. A page looks at a bounded number of entries,
    not of ids: read from the start, every page but the last is full. Each page resumes from a
    cursor short of the horizon, which the compacted feed itself handed out: it is not refused
    as a cursor from before the compaction is."""
    load_demo(fresh_url, msmes=40, seed=7)
    run(fresh_url, "DELETE FROM change_log")  # the demo's creations: only the changes below
    run(
        fresh_url,
        """DO $$ DECLARE business bigint; BEGIN
             FOR business IN SELECT id FROM msmes WHERE province_code = '62' ORDER BY id LIMIT 10
             LOOP FOR n IN 1..50 LOOP
               UPDATE msmes SET employees = employees + 1 WHERE id = business;
             END LOOP; END LOOP; END $$""",
    )
    _age_every_entry(fresh_url, 30)
    assert _compact(fresh_url, "--older-than", "7")[0] == 0
    kept = [row["id"] for row in run(fresh_url, "SELECT id FROM change_log ORDER BY id")]
    assert len(kept) == 10
    assert min(later - earlier for earlier, later in itertools.pairwise(kept)) >= 50

    with served(fresh_url) as api:
        post = poster(api, "demo-province-62")
        pages, after = [], None
        while True:
            answer = post(SPARSE, {"after": after})
            assert "errors" not in answer, answer
            page = answer["data"]["msmeChanges"]
            pages.append(len(page["entries"]))
            after = page["endCursor"]
            if not page["hasMore"]:
                break
    assert pages[:5] == [2, 2, 2, 2, 2]
    assert sum(pages) == 10


def test_a_cursor_the_compacted_feed_did_not_hand_out_is_refused(api: Api, owner_url: str) -> None:
    """Cursors name the horizon they were read under. One read before the fold is refused, and
    so is one naming a horizon this feed has not reached (a database restored from a backup).
    A cursor in clear, kept from before cursors were sealed (migration 0029), is held to the
    fold as one from the start of its stretch of the log, read before any compaction, whatever
    fold it names (resolvers/change_feed.py `_clear_place`): here, short of it. Refused, it
    reads as a forged one does, so a made-up one does not tell this refusal from the
    others."""
    _age_every_entry(owner_url, 30)
    _compact(owner_url, "--older-than", "7")
    (horizon,) = run(owner_url, "SELECT horizon FROM change_log_horizon")[0]
    post = poster(api, "demo-province-62")
    run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = horizon")
    try:
        again = "start again without `after`"
        for after, reason in (
            (sealed("msme", 1), again),
            (sealed("msme", 1, horizon + 1), again),
            (in_clear("msme", 1, None), "is not a cursor of this feed"),
            (in_clear("msme", 1, horizon), "is not a cursor of this feed"),
        ):
            refused = post(FEED, {"after": after})
            assert refused["data"] == {"msmeChanges": None}, after
            (error,) = refused["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT"
            assert error["extensions"]["field"] == "after"
            assert reason in error["message"]
        assert post(FEED, {"after": sealed("msme", 1, horizon)})["data"]["msmeChanges"]
    finally:
        run(owner_url, "UPDATE change_log_horizon SET clear_cursors_until = 0")


def test_a_cursor_at_a_head_compaction_dropped_is_still_taken(api: Api, owner_url: str) -> None:
    """The newest entries are of a business deleted outright; compaction drops them, so the
    newest entry left is short of a cursor the feed handed out. The fold still reaches it: the
    cursor is not taken for one ahead of the feed."""
    post = poster(api, "demo-province-62")
    (gone,) = run(
        owner_url,
        "SELECT id FROM msmes m WHERE NOT EXISTS (SELECT FROM eligibility_decisions d"
        " WHERE d.msme_id = m.id) AND NOT EXISTS (SELECT FROM guarantees g"
        " WHERE g.msme_id = m.id) ORDER BY id LIMIT 1",
    )
    run(owner_url, "DELETE FROM msmes WHERE id = $1", gone["id"])
    cursor = head(api, "demo-province-62")
    _age_every_entry(owner_url, 30)
    assert _compact(owner_url, "--older-than", "7")[0] == 0
    ((newest, horizon),) = run(
        owner_url, "SELECT (SELECT max(id) FROM change_log), horizon FROM change_log_horizon"
    )
    assert newest is None or newest < horizon
    answer = post(FEED, {"after": cursor})
    assert "errors" not in answer, answer


@contextlib.contextmanager
def _held(url: str, statement: str) -> Iterator[None]:
    """`statement` run in a transaction of another session, held open until the block ends
    (its loop is not running meanwhile, so the command under test may run its own)."""
    loop = asyncio.new_event_loop()
    connection = loop.run_until_complete(asyncpg.connect(url))
    try:
        loop.run_until_complete(connection.execute(f"BEGIN; {statement}"))
        yield
    finally:
        loop.run_until_complete(connection.close())
        loop.close()


def test_a_compaction_behind_another_is_one_line_at_once(owner_url: str) -> None:
    """One compaction waiting for another's horizon was cancelled by the CLI's 30 s statement
    timeout, a traceback of 118 lines; it now says another runs, at once, and folds nothing."""
    horizon = "SELECT horizon FROM change_log_horizon"
    before = run(owner_url, horizon)[0][0]
    started = time.monotonic()
    with _held(owner_url, f"{horizon} FOR UPDATE"):
        code, out, err = sinergi(owner_url, "feed", "compact", "--older-than", "1")
    assert time.monotonic() - started < 10
    assert (code, out) == (1, "")
    assert err == (
        "sinergi feed compact: another compaction is running; run it again once that one has"
        " finished\n"
    )
    assert run(owner_url, horizon)[0][0] == before
