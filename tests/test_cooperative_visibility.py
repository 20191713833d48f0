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

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import async_url
from db.queries import change_feed_compaction
from tests.support.databases import run
from tests.support.demo_data import demo_clients
from tests.support.executor import latest_entry
from tests.support.http import Api, served

KALTENG, KALBAR, PALANGKA_RAYA = "demo-province-62", "demo-province-61", "demo-regency-6271"


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


VERSIONS = """
query($nib: String!, $first: Int) {
  msme(nib: $nib) { changes(first: $first) { version personalDataChanged } }
}
"""


def versions_read(api: Api, client_id: str, nib: str, first: int) -> list[tuple[int, bool]]:
    """The latest `first` changes of the MSME that the client reads: each one's version, and
    whether it names personal data changed."""
    answer = api.graphql(VERSIONS, client_id, {"nib": nib, "first": first})
    assert "errors" not in answer, answer
    changes = answer["data"]["msme"]["changes"]
    return [(change["version"], bool(change["personalDataChanged"])) for change in changes]


def test_a_change_of_nothing_but_a_cooperative_the_reader_cannot_see_is_not_in_its_history(
    api: Api, url: str
) -> None:
    """Kalteng moves a Palangka Raya business from one cooperative of another regency to
    another, and changes nothing else, then back with a new owner: Palangka Raya, which sees
    neither cooperative, gets no entry for the move alone (an entry with no field would still
    tell it who changed the business's cooperative, and when), so its latest two changes are
    the ones around it, and its audit entry names no cooperative; it still gets the one that
    changed personal data, whose names the history shows every reader. Kalteng, which sees both
    cooperatives, reads every change."""
    first, second = cooperative(url, 50, "62.01"), cooperative(url, 51, "62.01")
    member, nib = msme(url, 50, "62.71")
    owner = {"nik": "6271995204880001", "fullName": "Sri Uji Rahayu", "sex": "F"}
    for version, changes in enumerate(
        (
            {"cooperativeId": first, "capital": "940000000"},
            {"cooperativeId": second},
            {"cooperativeId": first, "owner": owner},
        ),
        start=1,
    ):
        answer = api.graphql(
            UPDATE_MSME, KALTENG, {"id": member, "version": version, "changes": changes}
        )
        assert "errors" not in answer, answer

    assert history(api, KALTENG, nib) == (
        {"id": first},
        [[(None, first)], [(first, second)], [(second, first)]],
    )
    assert history(api, PALANGKA_RAYA, nib) == (None, [[], []])
    assert versions_read(api, PALANGKA_RAYA, nib, 2) == [(2, False), (4, True)]
    entry = latest_entry(url, PALANGKA_RAYA).entry
    assert entry["records"] == {"msme": 1}
    assert not [name for name in entry["touched"] if "ooperative" in name]
    assert versions_read(api, KALTENG, nib, 2) == [(3, False), (4, True)]


FEED = """
query($after: String) {
  msmeChanges(after: $after, first: 1000) { entries { id change record } endCursor hasMore }
}
"""
MOVE_COOPERATIVE = """
mutation($id: ID!, $version: Int!, $changes: CooperativeChanges!) {
  updateCooperative(id: $id, version: $version, changes: $changes) { version }
}
"""


def changes_after(
    api: Api, client_id: str, after: str | None
) -> tuple[list[tuple[str, str, Any]], str]:
    """Every MSME entry the client gets after `after`, as (id, change, cooperativeId), and
    where it then stands."""
    entries = []
    while True:
        answer = api.graphql(FEED, client_id, {"after": after})
        assert "errors" not in answer, answer
        page = answer["data"]["msmeChanges"]
        entries += [
            (entry["id"], entry["change"], (entry["record"] or {}).get("cooperativeId"))
            for entry in page["entries"]
        ]
        after = page["endCursor"]
        if not page["hasMore"]:
            return entries, str(after)


class Readers:
    """Kalteng's, Palangka Raya's and Kalbar's feeds, each read from where it last stood."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.cursors = {client: changes_after(api, client, None)[1] for client in READERS}

    def read(self) -> dict[str, list[tuple[str, str, Any]]]:
        found = {}
        for client in READERS:
            found[client], self.cursors[client] = changes_after(
                self.api, client, self.cursors[client]
            )
        return found


READERS = (KALTENG, PALANGKA_RAYA, KALBAR)


def move_cooperative(api: Api, url: str, client_id: str, cooperative: str, **to: Any) -> None:
    (version,) = run(url, "SELECT version FROM cooperatives WHERE id = $1", int(cooperative))[0]
    answer = api.graphql(
        MOVE_COOPERATIVE, client_id, {"id": cooperative, "version": version, "changes": to}
    )
    assert "errors" not in answer, answer


def test_a_cooperative_no_reader_of_its_members_sees_moves_unnoticed_by_them(
    api: Api, url: str
) -> None:
    """Kalbar moves its cooperative between two districts of Pontianak: Kalteng and Palangka
    Raya, which hold its members, get no entry for them, though the log holds one each: nothing
    they may see changed, and an entry would tell them that the businesses share a cooperative
    they cannot see, and when it moved."""
    kalbar = cooperative(url, 10, "61.71")
    here, _ = msme(url, 10, "62.71", member_of=kalbar)
    there, _ = msme(url, 11, "62.01", member_of=kalbar)
    readers = Readers(api)
    (logged,) = run(url, "SELECT max(id) FROM change_log")[0]

    move_cooperative(api, url, KALBAR, kalbar, district=district_of(url, "61.71"))

    assert readers.read() == {KALTENG: [], PALANGKA_RAYA: [], KALBAR: []}
    members = run(
        url,
        "SELECT record_id FROM change_log WHERE id > $1 AND record_kind = 'msme' ORDER BY id",
        logged,
    )
    assert [row["record_id"] for row in members] == [here, there]  # logged, not handed out


def test_a_member_entry_reaches_each_reader_who_sees_the_cooperative_before_or_after(
    api: Api, url: str
) -> None:
    """The same cooperative's members, as it moves: into Palangka Raya (the operator: no client
    may move it across provinces), Kalteng and Palangka Raya get an entry naming it for the
    member each holds; to another regency of Kalteng, Palangka Raya's member no longer names
    it, and Kalteng, which sees it at both places, still gets both entries; within that
    regency, Palangka Raya, which sees it at neither, gets none."""
    kalbar = cooperative(url, 20, "61.71")
    here, _ = msme(url, 20, "62.71", member_of=kalbar)
    there, _ = msme(url, 21, "62.01", member_of=kalbar)
    readers = Readers(api)

    run(
        url,
        "UPDATE cooperatives SET province_code = '62', regency_code = '62.71',"
        " district_code = NULL, version = version + 1 WHERE id = $1",
        int(kalbar),
    )
    assert readers.read() == {
        KALTENG: [(here, "UPDATED", kalbar), (there, "UPDATED", kalbar)],
        PALANGKA_RAYA: [(here, "UPDATED", kalbar)],
        KALBAR: [],
    }

    move_cooperative(api, url, KALTENG, kalbar, region="62.01", district=None)
    assert readers.read() == {
        KALTENG: [(here, "UPDATED", kalbar), (there, "UPDATED", kalbar)],
        PALANGKA_RAYA: [(here, "UPDATED", None)],
        KALBAR: [],
    }

    move_cooperative(api, url, KALTENG, kalbar, district=district_of(url, "62.01"))
    assert readers.read() == {
        KALTENG: [(here, "UPDATED", kalbar), (there, "UPDATED", kalbar)],
        PALANGKA_RAYA: [],
        KALBAR: [],
    }


def test_a_member_entry_logged_before_it_named_the_cooperative_s_places_reaches_every_reader(
    api: Api, url: str
) -> None:
    """An entry as migration 0025 logged it, with no place of the cooperative: it reaches the
    readers of the member as it always did."""
    kalbar = cooperative(url, 30, "61.71")
    here, _ = msme(url, 30, "62.71", member_of=kalbar)
    readers = Readers(api)
    run(
        url,
        "INSERT INTO change_log (record_kind, record_id, operation, deactivated, personal,"
        " old_province, old_regency, new_province, new_regency)"
        " VALUES ('msme', $1, 'update', false, false, '62', '62.71', '62', '62.71')",
        here,
    )
    assert readers.read() == {
        KALTENG: [(here, "UPDATED", None)],
        PALANGKA_RAYA: [(here, "UPDATED", None)],
        KALBAR: [],
    }


def test_a_member_entry_folded_by_compaction_reaches_every_reader_of_the_member(
    api: Api, url: str
) -> None:
    """Compaction folds a member's newest entry, if it is one for its cooperative's move, into
    the member's creation, which a reader starting from no cursor must get whoever sees the
    cooperative: the fold forgets the cooperative's places."""
    kalbar = cooperative(url, 40, "61.71")
    here, _ = msme(url, 40, "62.71", member_of=kalbar)
    move_cooperative(api, url, KALBAR, kalbar, district=district_of(url, "61.71"))
    run(url, "UPDATE change_log SET noted_at = noted_at - interval '30 days'")
    entries = "SELECT count(*) FROM change_log WHERE record_kind = 'msme' AND record_id = $1"
    assert run(url, entries, here)[0][0] == 2  # its creation, then its cooperative's move

    async def compact() -> None:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.begin() as connection:
                assert await change_feed_compaction.compact(connection, 7) is not None
        finally:
            await engine.dispose()

    asyncio.run(compact())
    assert run(url, entries, here)[0][0] == 1
    from_the_start, _ = changes_after(api, PALANGKA_RAYA, None)
    assert (here, "CREATED", None) in from_the_start


READ_MEMBER = "query($nib: String!) { msme(nib: $nib) { version employees cooperative { id } } }"


def test_a_cooperative_the_writer_cannot_see_is_not_the_writer_s_to_leave(
    api: Api, url: str
) -> None:
    """Kalteng puts a Palangka Raya business into a cooperative of another regency, which
    Palangka Raya reads as null: moving it to Palangka Raya's own cooperative is FORBIDDEN on
    `changes.cooperativeId` and writes nothing, and the hidden id itself is no cooperative of
    Palangka Raya's (`test_a_hidden_membership_answers_an_unknown_cooperative_as_none_does`);
    sending back the null it read (with another change, as a form does) or leaving the
    cooperative out is taken, and the business stays a member either way, answered as one with
    no cooperative."""
    elsewhere = cooperative(url, 60, "62.01")
    own = cooperative(url, 61, "62.71")
    member, nib = msme(url, 60, "62.71")
    joined = api.graphql(
        UPDATE_MSME, KALTENG, {"id": member, "version": 1, "changes": {"cooperativeId": elsewhere}}
    )
    assert "errors" not in joined, joined
    assert api.graphql(READ_MEMBER, PALANGKA_RAYA, {"nib": nib})["data"]["msme"] == {
        "version": 2,
        "employees": None,
        "cooperative": None,
    }

    for joins, code in ((elsewhere, "BAD_USER_INPUT"), (own, "FORBIDDEN")):
        changes = {"cooperativeId": joins, "employees": 7}
        refused = api.graphql(
            UPDATE_MSME, PALANGKA_RAYA, {"id": member, "version": 2, "changes": changes}
        )
        assert refused["data"] == {"updateMsme": None}, joins
        (error,) = refused["errors"]
        assert error["extensions"] == {"code": code, "field": "changes.cooperativeId"}
        assert error["message"].startswith("changes.cooperativeId: "), error
    stored = "SELECT version, employees, cooperative_id FROM msmes WHERE id = $1"
    assert tuple(run(url, stored, int(member))[0]) == (2, None, int(elsewhere))

    for version, changes in enumerate(
        ({"cooperativeId": None, "employees": 7}, {"employees": 8}), start=2
    ):
        kept = api.graphql(
            UPDATE_MSME, PALANGKA_RAYA, {"id": member, "version": version, "changes": changes}
        )
        assert "errors" not in kept, kept
        assert tuple(run(url, stored, int(member))[0]) == (
            version + 1,
            changes["employees"],
            int(elsewhere),
        )


def test_a_hidden_membership_answers_an_unknown_cooperative_as_none_does(
    api: Api, url: str
) -> None:
    """Sending a cooperative the writer does not know, no cooperative at all or the hidden one's
    own id, for a member of a cooperative it cannot see is answered word for word as for a
    business of no cooperative: a FORBIDDEN there told the writer which of its businesses
    belong to a hidden cooperative, without a write. Neither is written."""
    hidden = cooperative(url, 62, "62.01")
    member, _ = msme(url, 62, "62.71", member_of=hidden)
    loner, _ = msme(url, 63, "62.71")
    for unknown in ("999999", hidden):
        answers = [
            api.graphql(
                UPDATE_MSME,
                PALANGKA_RAYA,
                {"id": business, "version": 1, "changes": {"cooperativeId": unknown}},
            )
            for business in (member, loner)
        ]
        assert answers[0] == answers[1], unknown
        (error,) = answers[0]["errors"]
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "changes.cooperativeId"}
    stored = "SELECT version, cooperative_id FROM msmes WHERE id = $1"
    assert tuple(run(url, stored, int(member))[0]) == (1, int(hidden))
    assert tuple(run(url, stored, int(loner))[0]) == (1, None)
