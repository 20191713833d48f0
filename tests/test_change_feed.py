"""The change feed as its clients use it: `sinergi.sync` keeps a local copy through the real app
over HTTP, and after creates, updates, deactivations, moves across jurisdictions and a bulk
import every copy is exactly what a fresh page-through shows that client."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import graphql
import pytest

from db.queries.change_feed import SCAN
from domain.cursor_seal import CursorSeal
from resolvers.change_feed import FINANCES_IN_RECORD
from schema.build import sdl
from sinergi.sync import LocalCopy, sync
from tests.support.clients import second_guarantor
from tests.support.clock import Clock
from tests.support.databases import run
from tests.support.demo_data import load_demo
from tests.support.executor import AuditRow, latest_entry
from tests.support.feed_cursors import cursor_seal, in_clear, sealed
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_eligibility_api import (
    CHECK,
    CHECKED_ON,
    FULL_ATTESTATION,
    ISSUED_BY,
    JAMKRIDA,
    RECORD,
    STATUS,
    _guarantee,
    _request,
)

RECORDS = ("msme", "cooperative", "participation")
RIVAL = "uji-penjamin-lain"
"""A second guarantor of Kalimantan Tengah beside the demo's, whose guarantees are not its."""
MSME_FIELDS = """
  id nib skuNumber skuIssuer name kbliCode kbliSection scale declaredScale establishedOn
  capital annualTurnover turnoverYear
  employees isActive version province { code } regency { code } district { code }
  cooperative { id }
"""
OWNER_FIELDS = "owner { nik fullName sex birthDate phone address }"
COOPERATIVE_FIELDS = """
  id legalEntityNo odsNo name type tier status isActive kbliCode membersMale membersFemale
  memberCount businessVolume assets surplus bookYear establishedOn lastRatDate lastRatBookYear
  kspHealth kspHealthBookYear version province { code } regency { code } district { code }
"""
PARTICIPATION_FIELDS = """
  id programme { id } msme { id } cooperative { id } role status detail startedOn version
"""


@pytest.fixture(scope="module")
def feed_url(module_reference_url: str) -> str:
    """A database of this module's own, with a small demo population and the demo clients: the
    owner's URL, the operator's."""
    load_demo(module_reference_url, msmes=300, seed=23)
    return module_reference_url


@pytest.fixture(scope="module")
def feed_api(feed_url: str) -> Iterator[Api]:
    """The app as the service role."""
    with served(feed_url) as api:
        yield api


def poster(api: Api, client_id: str, scope: str | None = None) -> Any:
    def post(document: str, variables: dict[str, Any]) -> dict[str, Any]:
        response = api.post(
            {"query": document, "variables": variables}, api.token(client_id, scope)
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    return post


def _code(region: dict[str, str] | None) -> str | None:
    return None if region is None else region["code"]


def _msme(node: dict[str, Any]) -> dict[str, Any]:
    record = {key: value for key, value in node.items() if key not in _RELATIONS}
    record["provinceCode"] = _code(node["province"])
    record["regencyCode"] = _code(node["regency"])
    record["districtCode"] = _code(node["district"])
    record["cooperativeId"] = _code(
        {"code": node["cooperative"]["id"]} if node["cooperative"] else None
    )
    return record


def _cooperative(node: dict[str, Any]) -> dict[str, Any]:
    record = {key: value for key, value in node.items() if key not in _RELATIONS}
    record["provinceCode"] = _code(node["province"])
    record["regencyCode"] = _code(node["regency"])
    record["districtCode"] = _code(node["district"])
    return record


def _participation(node: dict[str, Any]) -> dict[str, Any]:
    record = {key: value for key, value in node.items() if key not in _RELATIONS}
    record["programmeId"] = node["programme"]["id"]
    record["msmeId"] = node["msme"]["id"] if node["msme"] else None
    record["cooperativeId"] = node["cooperative"]["id"] if node["cooperative"] else None
    return record


_RELATIONS = {"province", "regency", "district", "cooperative", "programme", "msme"}


def page_through(api: Api, client_id: str, personal: bool) -> dict[str, dict[str, Any]]:
    """Every record the client can read now, page by page, as the feed shapes it."""
    msme_fields = MSME_FIELDS + (OWNER_FIELDS if personal else "")
    found: dict[str, dict[str, Any]] = {kind: {} for kind in RECORDS}
    for kind, field, fields, shape in (
        ("msme", "msmes", msme_fields, _msme),
        ("cooperative", "cooperatives", COOPERATIVE_FIELDS, _cooperative),
    ):
        after = None
        while True:
            document = (
                f"query($after: String) {{ {field}(first: 100, after: $after) "
                f"{{ nodes {{ {fields} participations {{ {PARTICIPATION_FIELDS} }} }} "
                "pageInfo { hasNextPage endCursor } } }"
            )
            answer = api.graphql(document, client_id, {"after": after})
            assert "errors" not in answer, answer
            page = answer["data"][field]
            for node in page["nodes"]:
                for participation in node.pop("participations"):
                    found["participation"][participation["id"]] = _participation(participation)
                found[kind][node["id"]] = shape(node)
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
    # A participation whose business left the programme's region is that region's, though the
    # business is not: listed among the programme's participants alone.
    document = f"{{ programmes {{ participants(first: 50) {{ {PARTICIPATION_FIELDS} }} }} }}"
    answer = api.graphql(document, client_id, {})
    assert "errors" not in answer, answer
    for programme in answer["data"]["programmes"]:
        assert len(programme["participants"]) < 50, "a programme's participants were cut short"
        for participation in programme["participants"]:
            found["participation"][participation["id"]] = _participation(participation)
    return found


CREATE = """
mutation($input: CreateMsmeInput!) { createMsme(input: $input) { id version } }
"""
UPDATE = """
mutation($id: ID!, $version: Int!, $changes: MsmeChanges!) {
  updateMsme(id: $id, version: $version, changes: $changes) { id version }
}
"""
DEACTIVATE = """
mutation($id: ID!, $version: Int!) { deactivateMsme(id: $id, version: $version) { id } }
"""


class Writer:
    """Random changes to the register, through the API where a client may make them, and as
    the operator (SQL, the import CLI) where none may: moves between provinces."""

    def __init__(self, api: Api, url: str, seed: int) -> None:
        self.api = api
        self.url = url
        self.rng = random.Random(seed)
        rows = run(url, "SELECT code, parent_code FROM regions WHERE level IN ('regency', 'city')")
        self.regencies = {
            province: sorted(row["code"] for row in rows if row["parent_code"] == province)
            for province in ("61", "62", "64")
        }
        self.created = 0

    def _record(self, province: str) -> asyncpg.Record:
        rows = run(
            self.url,
            "SELECT id, version, nib FROM msmes WHERE province_code = $1 ORDER BY id",
            province,
        )
        return self.rng.choice(rows)

    def _nib(self) -> str:
        self.created += 1
        return f"99923{self.rng.randrange(10**7):07d}{self.created % 10}"[:13]

    def nik(self, regency: str) -> str:
        """A NIK of the shape the rules check: region, birth date, sequence."""
        day, month, year = (
            self.rng.randrange(1, 29),
            self.rng.randrange(1, 13),
            self.rng.randrange(100),
        )
        sequence = self.rng.randrange(10**4)
        return f"{regency.replace('.', '')}01{day:02d}{month:02d}{year:02d}{sequence:04d}"

    def _client(self, province: str) -> str:
        return f"demo-province-{province}"

    def create(self) -> None:
        province = self.rng.choice(["61", "62"])
        region = self.rng.choice(
            [*self.regencies[province], "62.71"] if province == "62" else self.regencies[province]
        )
        owner = None
        if province == "62" and self.rng.random() < 0.5:
            owner = {"nik": self.nik(region), "fullName": "Pemilik Uji"}
        answer = self.api.graphql(
            CREATE,
            self._client(province),
            {
                "input": {
                    "nib": self._nib(),
                    "name": f"Usaha Uji {self.created}",
                    "kbliCode": "10794",
                    "region": region,
                    "employees": self.rng.randrange(1, 20),
                    "annualTurnover": str(self.rng.randrange(10**7, 10**9)),
                    "owner": owner,
                }
            },
        )
        assert (
            "errors" not in answer or answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        ), answer

    def update(self) -> None:
        province = self.rng.choice(["61", "62"])
        record = self._record(province)
        changes: dict[str, Any] = self.rng.choice(
            [
                {"name": f"Diubah {self.rng.randrange(10**6)}"},
                {"employees": self.rng.randrange(1, 40)},
                {"region": self.rng.choice(self.regencies[province]), "district": None},
            ]
        )
        if province == "62" and self.rng.random() < 0.3:
            changes = {"owner": {"nik": self.nik("62.71"), "fullName": "Pemilik Baru"}}
        answer = self.api.graphql(
            UPDATE,
            self._client(province),
            {"id": str(record["id"]), "version": record["version"], "changes": changes},
        )
        assert "errors" not in answer, answer

    def deactivate(self) -> None:
        province = self.rng.choice(["61", "62"])
        record = self._record(province)
        answer = self.api.graphql(
            DEACTIVATE,
            self._client(province),
            {"id": str(record["id"]), "version": record["version"]},
        )
        assert "errors" not in answer, answer

    def move_across(self) -> None:
        """The operator moves a business to another province (no client may)."""
        source, target = self.rng.sample(["61", "62", "64"], 2)
        record = self._record(source)
        regency = self.rng.choice(self.regencies[target])
        run(
            self.url,
            "UPDATE msmes SET province_code = $2, regency_code = $3, district_code = NULL,"
            " version = version + 1 WHERE id = $1",
            record["id"],
            target,
            regency,
        )

    def bulk_import(self, directory: Path) -> None:
        """`sinergi import msmes` of new businesses and of existing ones into other regions."""
        lines = ["nib,name,kbli,region,employees,turnover,owner_nik,owner_name"]
        for _ in range(40):
            province = self.rng.choice(["61", "62", "64"])
            regency = self.rng.choice(self.regencies[province])
            nib = (
                self._nib()
                if self.rng.random() < 0.6
                else self._record(self.rng.choice(["61", "62"]))["nib"]
            )
            owner = f"{self.nik(regency)},Pemilik Impor" if self.rng.random() < 0.5 else ","
            employees, turnover = self.rng.randrange(1, 9), self.rng.randrange(10**7, 10**9)
            lines.append(f"{nib},Impor {nib},10794,{regency},{employees},{turnover},{owner}")
        path = directory / f"import-{self.rng.randrange(10**6)}.csv"
        path.write_text("\n".join(lines) + "\n")
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sinergi.cli",
                "import",
                "msmes",
                str(path),
                "--jurisdiction=ID",
            ],
            env={**os.environ, "DATABASE_URL": self.url, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode in (0, 1), done.stdout + done.stderr

    def any(self) -> None:
        self.rng.choice(
            [self.create, self.create, self.update, self.update, self.deactivate, self.move_across]
        )()


CLIENTS = (("demo-province-62", True), ("demo-province-61", False), ("demo-regency-6271", False))


def test_copies_kept_from_the_feed_are_exactly_what_a_page_through_shows(
    feed_api: Api, feed_url: str, tmp_path: Path
) -> None:
    copies = {client: LocalCopy(tmp_path / f"{client}.sqlite") for client, _ in CLIENTS}
    writer = Writer(feed_api, feed_url, seed=23)
    for round_ in range(4):
        for client, _ in CLIENTS:
            sync(poster(feed_api, client), copies[client], RECORDS)
        for _ in range(15):
            writer.any()
        if round_ == 1:
            writer.bulk_import(tmp_path)
    for client, personal in CLIENTS:
        sync(poster(feed_api, client), copies[client], RECORDS)
        expected = page_through(feed_api, client, personal)
        for kind in RECORDS:
            assert copies[client].records(kind) == expected[kind], (client, kind)
        assert expected["msme"], client  # the comparison compared something


MOVE_COOPERATIVE = """
mutation($id: ID!, $version: Int!, $changes: CooperativeChanges!) {
  updateCooperative(id: $id, version: $version, changes: $changes) { id version }
}
"""


def test_a_cooperative_that_moves_changes_its_members_in_the_copies(
    feed_api: Api, feed_url: str, tmp_path: Path
) -> None:
    """A member's record names its cooperative only to a reader who may see the cooperative:
    when the cooperative leaves a regency, a member that stayed stops naming it there, and names
    it again when the cooperative comes back, though no MSME row changed."""
    cooperative = str(
        run(
            feed_url,
            "SELECT id FROM cooperatives WHERE regency_code = '62.71'"
            " AND status <> 'dissolved' ORDER BY id LIMIT 1",
        )[0]["id"]
    )
    member = run(
        feed_url, "SELECT id, version FROM msmes WHERE regency_code = '62.71' ORDER BY id LIMIT 1"
    )[0]
    member_id = str(member["id"])
    joined = feed_api.graphql(
        UPDATE,
        "demo-province-62",
        {"id": member_id, "version": member["version"], "changes": {"cooperativeId": cooperative}},
    )
    assert "errors" not in joined, joined
    copy = LocalCopy(tmp_path / "regency.sqlite")
    regency = poster(feed_api, "demo-regency-6271")
    sync(regency, copy, RECORDS)
    assert copy.records("msme")[member_id]["cooperativeId"] == cooperative
    for region, named in (("62.01", None), ("62.71", cooperative)):
        version = run(feed_url, "SELECT version FROM cooperatives WHERE id = $1", int(cooperative))[
            0
        ]["version"]
        moved = feed_api.graphql(
            MOVE_COOPERATIVE,
            "demo-province-62",
            {
                "id": cooperative,
                "version": version,
                "changes": {"region": region, "district": None},
            },
        )
        assert "errors" not in moved, moved
        sync(regency, copy, RECORDS)
        assert copy.records("msme")[member_id]["cooperativeId"] == named
        assert copy.records("msme") == page_through(feed_api, "demo-regency-6271", False)["msme"]


def test_a_copy_started_late_from_no_cursor_holds_the_whole_register(
    feed_api: Api, tmp_path: Path
) -> None:
    copy = LocalCopy(tmp_path / "late.sqlite")
    sync(poster(feed_api, "demo-province-62"), copy, RECORDS)
    expected = page_through(feed_api, "demo-province-62", True)
    assert {kind: copy.records(kind) for kind in RECORDS} == expected


FEED = """
query($after: String) {
  msmeChanges(after: $after, first: 1000) { entries { id change record } endCursor hasMore }
}
"""


def pull(api: Api, client_id: str, after: str | None, scope: str | None = None) -> dict[str, Any]:
    answer = api.post({"query": FEED, "variables": {"after": after}}, api.token(client_id, scope))
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    assert "errors" not in body, body
    page: dict[str, Any] = body["data"]["msmeChanges"]
    return page


def head(api: Api, client_id: str, scope: str | None = None) -> str:
    after = None
    while True:
        page = pull(api, client_id, after, scope)
        after = page["endCursor"]
        if not page["hasMore"]:
            return str(after)


def audit_entries(url: str, client_id: str) -> list[dict[str, Any]]:
    query = "SELECT entry, subjects FROM audit_log WHERE client_id = $1 ORDER BY seq"
    rows = run(url, query, client_id)
    return [{"entry": json.loads(row["entry"]), "subjects": row["subjects"]} for row in rows]


WITHOUT_PII = "records:read aggregates:read"
FINANCES = FINANCES_IN_RECORD["msme"]
"""An MSME record's figures, its owner's finances, itemised with or without pii:read."""


def test_another_jurisdiction_never_sees_a_change_nor_personal_data_without_pii_read(
    feed_api: Api, feed_url: str
) -> None:
    kalteng = run(
        feed_url,
        "SELECT m.id FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        " WHERE m.province_code = '62' ORDER BY m.id LIMIT 1",
    )[0]["id"]
    cursors = {
        ("demo-province-62", None): head(feed_api, "demo-province-62"),
        ("demo-province-62", WITHOUT_PII): head(feed_api, "demo-province-62", WITHOUT_PII),
        ("demo-province-61", None): head(feed_api, "demo-province-61"),
    }
    # The owner alone changes, then the business itself.
    run(feed_url, "UPDATE msme_owners SET phone = '081200000023' WHERE msme_id = $1", kalteng)
    personal = {
        who: pull(feed_api, who[0], cursor, who[1])["entries"] for who, cursor in cursors.items()
    }
    assert [entry["id"] for entry in personal[("demo-province-62", None)]] == [str(kalteng)]
    assert personal[("demo-province-62", None)][0]["record"]["owner"]["phone"] == "081200000023"
    assert personal[("demo-province-62", WITHOUT_PII)] == []  # nothing it may see changed
    assert personal[("demo-province-61", None)] == []

    run(feed_url, "UPDATE msmes SET employees = 77, version = version + 1 WHERE id = $1", kalteng)
    seen = {
        who: pull(feed_api, who[0], cursor, who[1])["entries"] for who, cursor in cursors.items()
    }
    without = seen[("demo-province-62", WITHOUT_PII)]
    assert [(entry["id"], entry["change"]) for entry in without] == [(str(kalteng), "UPDATED")]
    assert without[0]["record"]["employees"] == 77
    assert "owner" not in without[0]["record"]
    assert seen[("demo-province-61", None)] == []
    everything = pull(feed_api, "demo-province-61", None)
    assert str(kalteng) not in {entry["id"] for entry in everything["entries"]}
    assert {
        entry["record"]["provinceCode"] for entry in everything["entries"] if entry["record"]
    } == {"61"}
    assert all("owner" not in entry["record"] for entry in everything["entries"] if entry["record"])


def test_each_delivery_is_audited_and_names_only_the_personal_data_it_released(
    feed_api: Api, feed_url: str
) -> None:
    kalteng = run(
        feed_url,
        "SELECT m.id, o.nik FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        " WHERE m.province_code = '62' ORDER BY m.id DESC LIMIT 1",
    )[0]
    with_pii = head(feed_api, "demo-province-62")
    without_pii = head(feed_api, "demo-province-62", WITHOUT_PII)
    before = len(audit_entries(feed_url, "demo-province-62"))
    run(
        feed_url,
        "UPDATE msmes SET employees = 78, version = version + 1 WHERE id = $1",
        kalteng["id"],
    )

    delivered = pull(feed_api, "demo-province-62", with_pii)
    assert len(delivered["entries"]) == 1
    assert len(pull(feed_api, "demo-province-62", without_pii, WITHOUT_PII)["entries"]) == 1
    first, second = audit_entries(feed_url, "demo-province-62")[before:]
    assert first["entry"]["records"] == {"msme": 1}
    assert "Query.msmeChanges" in first["entry"]["fields"]
    assert first["subjects"] == [kalteng["nik"]]
    assert second["entry"]["records"] == {"msme": 1}
    assert second["subjects"] == [kalteng["nik"]]  # its figures are the owner's finances

    # A page with nothing in it hands nothing out, and is not an entry of the trail.
    assert pull(feed_api, "demo-province-62", delivered["endCursor"])["entries"] == []
    assert len(audit_entries(feed_url, "demo-province-62")) == before + 2


def _owned_kalteng_msme(url: str) -> asyncpg.Record:
    """A Kalimantan Tengah MSME with an owner, one no other test of the module changes."""
    return run(
        url,
        "SELECT m.id, m.nib, o.nik FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        " WHERE m.province_code = '62' ORDER BY m.id LIMIT 1 OFFSET 1",
    )[0]


@pytest.mark.parametrize("directive", ["", " @include(if: true)"])  # compiled, entry by entry
def test_a_page_handing_out_an_owner_itemises_the_owners_personal_fields(
    feed_api: Api, feed_url: str, directive: str
) -> None:
    """The owner travels inside `record`, a JSON field no `pii:read` guard sits above: the
    entry still itemises each personal field that went out, named as a read of `owner` names
    it, and the owner as the data subject."""
    msme = _owned_kalteng_msme(feed_url)
    after = head(feed_api, "demo-province-62")
    run(
        feed_url, "UPDATE msmes SET employees = 79, version = version + 1 WHERE id = $1", msme["id"]
    )
    document = (
        "query Feed($after: String) { msmeChanges(after: $after, first: 1) "
        f"{{ entries{directive} {{ id record }} }} }}"
    )
    answer = feed_api.graphql(document, "demo-province-62", {"after": after})
    (entry,) = answer["data"]["msmeChanges"]["entries"]
    assert entry["id"] == str(msme["id"])
    owner = entry["record"]["owner"]
    assert owner["nik"] == msme["nik"]
    fed = latest_entry(feed_url, "demo-province-62")
    assert fed.subjects == [msme["nik"]]

    read = f'query Owner {{ msme(nib: "{msme["nib"]}") {{ owner {{ {" ".join(owner)} }} }} }}'
    assert feed_api.graphql(read, "demo-province-62")["data"]["msme"]["owner"] == owner
    ordinary = latest_entry(feed_url, "demo-province-62").entry
    assert ordinary["operation"] == "Owner"
    assert ordinary["personalFields"] == sorted(f"Owner.{name}" for name in owner)
    assert fed.entry["personalFields"] == sorted({*ordinary["personalFields"], *FINANCES})
    assert set(ordinary["personalFields"]) <= set(fed.entry["touched"])
    assert "ChangeEntry.record" in fed.entry["touched"]


@pytest.mark.parametrize("directive", ["", " @include(if: true)"])  # compiled, entry by entry
def test_a_page_without_record_names_no_data_subject_and_no_personal_field(
    feed_api: Api, feed_url: str, directive: str
) -> None:
    """A page of ids hands out no owner's data, though the client holds pii:read: its audit
    entry names no data subject and no personal field (it once named every owner on the page,
    and each `Owner.*` field, so `personalDataAccess` said they had gone to the client). The
    same page with `record` names them. Which entries a page holds does not depend on what it
    selects: a change of an owner alone is an entry for both."""
    msme = _owned_kalteng_msme(feed_url)
    after = head(feed_api, "demo-province-62")
    phone = f"08120000003{len(directive)}"  # a change in each run
    run(feed_url, "UPDATE msme_owners SET phone = $2 WHERE msme_id = $1", msme["id"], phone)

    def pull_selecting(selection: str) -> tuple[dict[str, Any], AuditRow]:
        document = (
            "query Feed($after: String) { msmeChanges(after: $after, first: 50) "
            f"{{ entries{directive} {{ {selection} }} }} }}"
        )
        with recorded_statements() as statements:
            answer = feed_api.graphql(document, "demo-province-62", {"after": after})
        (entry,) = answer["data"]["msmeChanges"]["entries"]
        (read,) = [sql for sql in statements if "change_log" in sql]
        assert ("msme_owners" in read) == ("record" in selection)  # no owner read for ids
        return entry, latest_entry(feed_url, "demo-province-62")

    ids, fed = pull_selecting("id change")
    assert ids == {"id": str(msme["id"]), "change": "UPDATED"}
    assert fed.entry["records"] == {"msme": 1}
    assert fed.subjects == []
    assert fed.entry["personalFields"] == []
    assert not any(field.startswith("Owner.") for field in fed.entry["touched"])

    whole, fed = pull_selecting("id record")
    owner = whole["record"]["owner"]
    assert owner["phone"] == phone
    assert fed.subjects == [msme["nik"]]
    assert fed.entry["personalFields"] == sorted({*(f"Owner.{name}" for name in owner), *FINANCES})


def test_a_page_without_pii_read_hands_out_no_owner_yet_names_them_for_the_figures(
    feed_api: Api, feed_url: str
) -> None:
    """No field of the owner goes out, but the record's figures are the owner's finances
    (domain.personal.OWNER_FINANCES): the entry names the owner and itemises the figures."""
    msme = _owned_kalteng_msme(feed_url)
    after = head(feed_api, "demo-province-62", WITHOUT_PII)
    run(
        feed_url, "UPDATE msmes SET employees = 80, version = version + 1 WHERE id = $1", msme["id"]
    )
    (entry,) = pull(feed_api, "demo-province-62", after, WITHOUT_PII)["entries"]
    assert entry["id"] == str(msme["id"])
    assert "owner" not in entry["record"]
    fed = latest_entry(feed_url, "demo-province-62")
    assert fed.entry["records"] == {"msme": 1}
    assert fed.entry["personalFields"] == sorted(FINANCES)
    assert not any(field.startswith("Owner.") for field in fed.entry["touched"])
    assert fed.subjects == [msme["nik"]]


QUIET = "query($after: String) {{ {feed}(after: $after) {{ entries {{ id }} endCursor hasMore }} }}"
QUIET_READERS = (
    (JAMKRIDA, None, "guaranteeChanges", "guarantee-feed"),
    ("demo-province-62", WITHOUT_PII, "msmeChanges", "msme-feed"),
)
"""A guarantor, and a province without pii:read: whose feeds hold nothing of what is written
below (another province's business, an owner's phone alone)."""


def _quiet_page(
    api: Api, client: str, scope: str | None, field: str, after: str | None
) -> dict[str, Any]:
    document = QUIET.format(feed=field)
    answer = api.post({"query": document, "variables": {"after": after}}, api.token(client, scope))
    page: dict[str, Any] = answer.json()["data"][field]
    return page


def _quiet_start(api: Api, client: str, scope: str | None, field: str) -> str:
    """The reader's cursor once nothing is left for it."""
    after = None
    while True:
        page = _quiet_page(api, client, scope, field, after)
        after = page["endCursor"]
        if not (page["entries"] or page["hasMore"]):
            return str(after)


@pytest.mark.parametrize("reader", QUIET_READERS, ids=["guarantor", "without-pii"])
def test_a_quiet_feeds_cursor_tells_nothing_of_what_others_write(
    feed_api: Api, feed_url: str, reader: tuple[str, str | None, str, str]
) -> None:
    """A reader with nothing waiting stands at the newest entry of a log that numbers every
    change in the country. Its endCursor in clear was that number: read again after a quiet
    page, it told a guarantor how much the register changed (another province's businesses,
    another guarantor's guarantees), and a province without pii:read how often owners' personal
    data changed, which its feed withholds. Sealed, each endCursor is new, of one length, and
    holds neither the feed's name nor the position: a page after nothing happened and one after
    others wrote look alike, though the position behind them moved."""
    client, scope, field, feed = reader

    def page(after: str | None) -> dict[str, Any]:
        return _quiet_page(feed_api, client, scope, field, after)

    start = _quiet_start(feed_api, client, scope, field)

    def quiet_end() -> str:
        found = page(start)
        assert (found["entries"], found["hasMore"]) == ([], False), found
        return str(found["endCursor"])

    quiet = [quiet_end() for _ in range(3)]
    run(
        feed_url,
        "UPDATE msmes SET employees = employees + 1, version = version + 1"
        " WHERE id = (SELECT min(id) FROM msmes WHERE province_code = '61')",
    )
    run(
        feed_url,
        "UPDATE msme_owners SET phone = CASE phone WHEN '081200000061' THEN '081200000062'"
        " ELSE '081200000061' END WHERE msme_id ="
        " (SELECT min(m.id) FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        "  WHERE m.province_code = '62')",
    )
    ((newest,),) = run(feed_url, "SELECT max(id) FROM change_log")
    written = [quiet_end() for _ in range(3)]

    cursors = [start, *quiet, *written]
    assert len(set(cursors)) == len(cursors), cursors
    assert {len(cursor) for cursor in cursors} == {len(start)}
    for cursor in cursors:
        raw = base64.urlsafe_b64decode(cursor + "==")
        assert feed.encode() not in raw
        assert str(newest).encode() not in raw
        assert newest.to_bytes(8, "big") not in raw
    # What the server sealed did move, unseen by the client.
    before, after = (cursor_seal().open(feed, cursor) for cursor in (quiet[0], written[0]))
    assert before is not None
    assert after is not None
    assert after[0] == newest > before[0]


def test_a_small_page_does_not_count_others_changes_in_its_stretch(
    feed_api: Api, feed_url: str
) -> None:
    """An empty page with `hasMore` says the stretch it looked at held nothing for its reader.
    A stretch in proportion to the page (20 entries for each it may hold) let a reader asking
    for one entry at a time count everyone's changes in twenties; the stretch is one length
    whatever the page's size, so a burst of others' changes short of it leaves a small page
    as it leaves a large one: empty, with nothing more waiting."""
    start = _quiet_start(feed_api, JAMKRIDA, None, "guaranteeChanges")
    run(
        feed_url,
        "UPDATE msmes SET employees = coalesce(employees, 0) + 1, version = version + 1"
        " WHERE id IN (SELECT id FROM msmes WHERE province_code = '61' ORDER BY id LIMIT 25)",
    )
    document = QUIET.format(feed="guaranteeChanges").replace(
        "(after: $after)", "(after: $after, first: 1)"
    )
    page = feed_api.graphql(document, JAMKRIDA, {"after": start})["data"]["guaranteeChanges"]
    assert (page["entries"], page["hasMore"]) == ([], False)


def _refused_as_no_cursor(answer: dict[str, Any]) -> None:
    assert answer["data"] == {"msmeChanges": None}, answer
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "after"
    assert error["message"] == "after: is not a cursor of this feed"


def test_a_cursor_of_another_feed_altered_or_forged_is_refused_naming_after(
    feed_api: Api,
) -> None:
    """Only a cursor this server sealed for this feed opens: one of another feed, one altered
    in any character, one sealed under another key, one made up in clear (no cursor in clear
    is taken here: migration 0029 ran on an empty log), and anything else."""
    cooperative = feed_api.graphql(
        "{ cooperativeChanges(first: 1) { endCursor } }", "demo-province-62"
    )["data"]["cooperativeChanges"]["endCursor"]
    genuine = head(feed_api, "demo-province-62")
    altered = [
        genuine[:at] + ("B" if genuine[at] == "A" else "A") + genuine[at + 1 :]
        for at in (0, len(genuine) // 2, len(genuine) - 2)
    ]
    forged = CursorSeal(os.urandom(32)).seal("msme-feed", 1, 0)
    for bad in (
        cooperative,
        *altered,
        genuine[:-4],
        forged,
        in_clear("msme", 1),
        in_clear("msme", 1, None),
        "bXNtZS1mZWVkOi0x",
        "not a cursor",
    ):
        _refused_as_no_cursor(feed_api.graphql(FEED, "demo-province-62", {"after": bad}))
    assert "errors" not in feed_api.graphql(FEED, "demo-province-62", {"after": genuine})


def test_a_copy_kept_with_a_cursor_in_clear_goes_on_from_it(
    feed_api: Api, feed_url: str, tmp_path: Path
) -> None:
    """Copies kept before cursors were sealed hold one in clear. Migration 0029 noted how far
    the log reached then: a cursor in clear up to there is taken, resuming from the start of
    its stretch of the log (resolvers/change_feed.py `_clear_place`), so the copy reads again
    at most a stretch of entries it holds, not the whole register, and holds a sealed cursor
    from its next page on. One a stretch past there was made up, and is refused as a forged
    one is: taken, it would tell its maker where the feed stands now."""
    post = poster(feed_api, "demo-province-62")
    copy = LocalCopy(tmp_path / "kept-in-clear.sqlite")
    sync(post, copy, ["msme"])
    ((until,),) = run(feed_url, "SELECT max(id) FROM change_log")
    copy.apply("msme", [], in_clear("msme", until))  # as the copy held it before the upgrade
    run(feed_url, "UPDATE change_log_horizon SET clear_cursors_until = $1", until)  # as 0029
    try:
        run(
            feed_url,
            "UPDATE msmes SET employees = employees + 1, version = version + 1"
            " WHERE id = (SELECT min(id) FROM msmes WHERE province_code = '62')",
        )
        synced = sync(post, copy, ["msme"])
        assert synced["msme"].started_again is None
        # From the start of its stretch of the log: the entries up to the change again.
        assert synced["msme"].entries > 1
        kept = copy.cursor("msme")
        assert kept is not None
        assert cursor_seal().open("msme-feed", kept) is not None
        assert copy.records("msme") == page_through(feed_api, "demo-province-62", True)["msme"]
        # Cursors from before they named the horizon are taken alike.
        assert "errors" not in post(FEED, {"after": in_clear("msme", until, None)})
        made_up = in_clear("msme", until - until % SCAN + SCAN)  # a stretch past the upgrade
        _refused_as_no_cursor(post(FEED, {"after": made_up}))
    finally:
        run(feed_url, "UPDATE change_log_horizon SET clear_cursors_until = 0")


@pytest.mark.parametrize("directive", ["", " @include(if: true)"], ids=["compiled", "by-entry"])
def test_a_cursor_ahead_of_the_feed_is_refused_naming_after(
    feed_api: Api, feed_url: str, directive: str
) -> None:
    """As a client's cursor is once the server's database is restored from an older backup or
    rebuilt: taken, it would answer nothing until the feed caught up, then skip every entry up
    to it for ever. Refused whether PostgreSQL writes the page or the executor does; the
    head's own cursor is taken."""
    document = (
        "query($after: String) { msmeChanges(after: $after, first: 5) "
        f"{{ endCursor entries{directive} {{ id }} }} }}"
    )
    ((head_id,),) = run(feed_url, "SELECT max(id) FROM change_log")
    ahead = sealed("msme", head_id + 609)
    refused = feed_api.graphql(document, "demo-province-62", {"after": ahead})
    assert refused["data"] == {"msmeChanges": None}
    (error,) = refused["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "after"
    assert error["message"] == (
        "after: is ahead of the feed: the database was restored or rebuilt since; empty the "
        "copy and start again without `after`"
    )  # naming no position: sealing keeps them from the client
    taken = feed_api.graphql(document, "demo-province-62", {"after": sealed("msme", head_id)})
    assert taken["data"]["msmeChanges"]["entries"] == [], taken


def test_a_copy_whose_cursor_is_ahead_of_the_feed_starts_again_once(
    feed_api: Api, feed_url: str, tmp_path: Path
) -> None:
    """`sinergi sync` with a copy kept before the server's database went back: it says why the
    feed refused the cursor, empties that kind's copy and fills it again, once, exactly."""
    copy = LocalCopy(tmp_path / "ahead.sqlite")
    post = poster(feed_api, "demo-province-62")
    sync(post, copy, RECORDS)
    ((head_id,),) = run(feed_url, "SELECT max(id) FROM change_log")
    lost = [{"id": "0", "change": "CREATED", "record": {"name": "lost in the restore"}}]
    copy.apply("msme", lost, sealed("msme", head_id + 609))
    synced = sync(post, copy, RECORDS)
    assert "is ahead of the feed" in (synced["msme"].started_again or "")
    assert synced["cooperative"].started_again is None
    assert {kind: copy.records(kind) for kind in RECORDS} == page_through(
        feed_api, "demo-province-62", True
    )
    assert sync(post, copy, RECORDS)["msme"].started_again is None


ENTRIES = "__typename cursor id change record"


@pytest.mark.parametrize("feed", ["msmeChanges", "cooperativeChanges"])
@pytest.mark.parametrize("scope", [None, WITHOUT_PII])
def test_entries_postgresql_writes_are_the_entries_resolved_one_by_one(
    feed_api: Api, feed: str, scope: str | None
) -> None:
    """A directive keeps the executor resolving each entry (schema/compiled.py): both answer
    the same entries, their cursors sealed alike (each new, each opening to its entry's
    position), and each cursor resumes right after its entry."""
    document = (
        f"query($after: String) {{ {feed}(after: $after, first: 12) {{ "
        f"hasMore e: entries{{directive}} {{ {ENTRIES} }} endCursor }} }}"
    )
    compiled, by_entry = (
        document.replace("{directive}", directive) for directive in ("", " @include(if: true)")
    )

    def pull_with(query: str, after: str | None) -> dict[str, Any]:
        answer = feed_api.post({"query": query, "variables": {"after": after}}, token)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        assert "errors" not in body, body
        page: dict[str, Any] = body["data"][feed]
        return page

    def opened(page: dict[str, Any]) -> str:
        """The page as JSON, key order included, each cursor as the position it opens to."""
        sealed_for = f"{feed.removesuffix('Changes')}-feed"
        entries = [
            {**entry, "cursor": seal.open(sealed_for, entry["cursor"])} for entry in page["e"]
        ]
        end = seal.open(sealed_for, page["endCursor"])
        return json.dumps({**page, "e": entries, "endCursor": end})

    seal = cursor_seal()
    token = feed_api.token("demo-province-62", scope)
    page = pull_with(compiled, None)
    entries = page["e"]
    assert len(entries) >= 3, page  # the demo population's creations (some moved out since)
    again = pull_with(by_entry, None)
    assert opened(page) == opened(again)
    assert None not in (entry["cursor"] for entry in json.loads(opened(page))["e"])
    cursors = [entry["cursor"] for entry in (*entries, *again["e"])]
    assert len(set(cursors)) == len(cursors)
    middle = len(entries) // 2
    cursor = entries[middle]["cursor"]
    resumed = pull_with(compiled, cursor)
    resumed_entries = [{**entry, "cursor": None} for entry in resumed["e"]]
    later = [{**entry, "cursor": None} for entry in entries[middle + 1 :]]
    assert resumed_entries[: len(later)] == later
    assert opened(resumed) == opened(pull_with(by_entry, cursor))


def _guarantees_of(url: str, client_id: str) -> set[str]:
    """The ids of the guarantees `client_id` issued, as the database holds them."""

    async def find() -> set[str]:
        connection = await asyncpg.connect(url)
        try:
            query = "SELECT id FROM guarantees WHERE guarantor_client_id = $1"
            return {str(row["id"]) for row in await connection.fetch(query, client_id)}
        finally:
            await connection.close()

    return asyncio.run(find())


def test_feeds_answer_only_under_their_scope(
    feed_api: Api, feed_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guarantor's feed holds its own guarantees and none of another guarantor's: one of the
    other's is recorded here, so the feed has one to leave out whatever ran before."""
    ministry = feed_api.graphql("{ msmeChanges { endCursor } }", "demo-ministry")
    assert ministry["errors"][0]["extensions"]["requiredScopes"] == ["records:read"]
    jamkrida = feed_api.graphql("{ msmeChanges { endCursor } }", "demo-jamkrida-62")
    assert jamkrida["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    province = feed_api.graphql("{ guaranteeChanges { endCursor } }", "demo-province-62")
    assert province["errors"][0]["extensions"]["requiredScopes"] == ["guarantees:write"]
    second_guarantor(feed_url, RIVAL)
    Clock(monkeypatch, CHECKED_ON)
    request = _request({"nib": "9990000000002"}, 60_000_000, 24, **FULL_ATTESTATION)
    decision = feed_api.graphql(CHECK, RIVAL, {"request": request})["data"]["checkEligibility"]
    assert decision["verdict"] == "ELIGIBLE", decision
    recorded = feed_api.graphql(RECORD, RIVAL, _guarantee(decision["id"]))
    rivals = recorded["data"]["recordGuarantee"]["id"]
    feed = "{ guaranteeChanges(first: 1000) { entries { id } } }"
    seen_by_rival = feed_api.graphql(feed, RIVAL)["data"]["guaranteeChanges"]["entries"]
    assert rivals in {entry["id"] for entry in seen_by_rival}
    own = feed_api.graphql(feed, JAMKRIDA)["data"]["guaranteeChanges"]["entries"]
    assert rivals not in {entry["id"] for entry in own}
    assert {entry["id"] for entry in own} <= _guarantees_of(feed_url, JAMKRIDA)


def test_a_guarantor_follows_its_own_guarantees(
    feed_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    guarantees = "query($after: String) { guaranteeChanges(after: $after) "
    guarantees += "{ entries { id change record } endCursor } }"
    start = feed_api.graphql(guarantees, JAMKRIDA, {"after": None})["data"]["guaranteeChanges"]
    request = _request({"nib": "9990000000001"}, 50_000_000, 24, **FULL_ATTESTATION)
    clock = Clock(monkeypatch, CHECKED_ON)
    decision = feed_api.graphql(CHECK, JAMKRIDA, {"request": request})["data"]["checkEligibility"]
    assert decision["verdict"] == "ELIGIBLE"
    recorded = feed_api.graphql(RECORD, JAMKRIDA, _guarantee(decision["id"]))
    guarantee = recorded["data"]["recordGuarantee"]
    clock.day = ISSUED_BY
    variables = {"id": guarantee["id"], "status": "CLAIMED", "on": "2026-10-01"}
    assert "errors" not in feed_api.graphql(STATUS, JAMKRIDA, variables)

    page = feed_api.graphql(guarantees, JAMKRIDA, {"after": start["endCursor"]})
    entries = page["data"]["guaranteeChanges"]["entries"]
    assert [(entry["id"], entry["change"]) for entry in entries] == [
        (guarantee["id"], "CREATED"),
        (guarantee["id"], "UPDATED"),
    ]
    assert entries[-1]["record"]["status"] == "CLAIMED"
    assert entries[-1]["record"]["coverageAmount"] == guarantee["coverageAmount"]


def _first_record(api: Api, kind: str, client_id: str, scope: str | None) -> dict[str, Any]:
    """The record of the first entry of the feed of `kind` that carries one."""
    document = f"{{ {kind}Changes(first: 50) {{ entries {{ record }} }} }}"
    answer = api.post({"query": document}, api.token(client_id, scope)).json()
    assert "errors" not in answer, answer
    records = [e["record"] for e in answer["data"][f"{kind}Changes"]["entries"] if e["record"]]
    assert records, kind
    record: dict[str, Any] = records[0]
    return record


def _fields_the_feed_carries(type_name: str, personal: bool) -> set[str]:
    """A feed record carries the fields of its type the client may read (the contract): each
    scalar and enum field under its own name, a region as its code (`provinceCode`), another
    record as its id (`cooperativeId`), the owner only to a reader with pii:read. Lists and
    fields that take arguments (participations, members, history) are not the record's."""
    named = graphql.build_schema(sdl()).get_type(type_name)
    assert isinstance(named, graphql.GraphQLObjectType)
    carried = set()
    for name, field in named.fields.items():
        if field.args or isinstance(graphql.get_nullable_type(field.type), graphql.GraphQLList):
            continue
        target = graphql.get_named_type(field.type)
        if isinstance(target, graphql.GraphQLScalarType | graphql.GraphQLEnumType):
            carried.add(name)
        elif name == "owner":
            carried |= {name} if personal else set()
        else:
            carried.add(name + ("Code" if target.name == "Region" else "Id"))
    return carried


@pytest.mark.parametrize(("kind", "type_name"), [("msme", "Msme"), ("cooperative", "Cooperative")])
@pytest.mark.parametrize("scope", [None, WITHOUT_PII])
def test_a_feed_record_carries_every_field_of_its_type_the_client_may_read(
    feed_api: Api, kind: str, type_name: str, scope: str | None
) -> None:
    """A column added to the type and forgotten in the feed (a cooperative's deed date and
    health rating were) would never reach a `sinergi sync` copy."""
    record = _first_record(feed_api, kind, "demo-province-62", scope)
    assert set(record) == _fields_the_feed_carries(type_name, personal=scope is None)


RATE_COOPERATIVE = """
mutation($input: CreateCooperativeInput!) { createCooperative(input: $input) { id version } }
"""


def test_a_cooperatives_health_rating_reaches_the_copies(feed_api: Api, tmp_path: Path) -> None:
    copy = LocalCopy(tmp_path / "rated.sqlite")
    province = poster(feed_api, "demo-province-62")
    sync(province, copy, ("cooperative",))
    fields = {
        "legalEntityNo": "AHU-7739001.AH.01.26.TAHUN 2019",
        "name": "KSP Uji Umpan",
        "type": "SIMPAN_PINJAM",
        "region": "62.71",
        "kbliCode": "64141",
        "establishedOn": "2015-03-02",
    }
    created = feed_api.graphql(RATE_COOPERATIVE, "demo-province-62", {"input": fields})
    assert "errors" not in created, created
    cooperative = created["data"]["createCooperative"]
    changes = {"kspHealth": "TIDAK_SEHAT", "kspHealthBookYear": 2025}
    variables = {"id": cooperative["id"], "version": cooperative["version"], "changes": changes}
    rated = feed_api.graphql(MOVE_COOPERATIVE, "demo-province-62", variables)
    assert rated["data"]["updateCooperative"]["version"] == 2, rated
    sync(province, copy, ("cooperative",))
    record = copy.records("cooperative")[cooperative["id"]]
    assert (record["kspHealth"], record["kspHealthBookYear"]) == ("TIDAK_SEHAT", 2025)
    assert record["establishedOn"] == "2015-03-02"


PARTICIPATION_FEED = """
query($after: String) {
  participationChanges(after: $after, first: 1000) { entries { id change } endCursor hasMore }
}
"""


def participation_changes(api: Api, client_id: str, after: str | None) -> tuple[list[Any], str]:
    """The participation feed's entries for the client after `after`, and its cursor at the end."""
    entries: list[Any] = []
    while True:
        answer = api.graphql(PARTICIPATION_FEED, client_id, {"after": after})
        assert "errors" not in answer, answer
        page = answer["data"]["participationChanges"]
        entries += [(entry["id"], entry["change"]) for entry in page["entries"]]
        after = page["endCursor"]
        if not page["hasMore"]:
            return entries, str(after)


def _enrolled_business(url: str, number: int, regency: str) -> tuple[int, int, int]:
    """An MSME and a cooperative in `regency` (numbered apart from other modules'), each
    enrolled in PR-MBG: the MSME's id, its participation's and the cooperative's."""
    msme = run(
        url,
        "INSERT INTO msmes (nib, name, kbli_code, kbli_section, scale, province_code,"
        " regency_code) VALUES ($1, 'Usaha Uji Hapus', '10794', 'C', 'micro', left($2, 2), $2)"
        " RETURNING id",
        f"99958{number:08d}",
        regency,
    )[0]["id"]
    cooperative = run(
        url,
        "INSERT INTO cooperatives (legal_entity_no, name, type, province_code, regency_code)"
        " VALUES ($1, 'Koperasi Uji Hapus', 'produsen', left($2, 2), $2) RETURNING id",
        f"AHU-9958{number:03d}.AH.01.26.TAHUN 2020",
        regency,
    )[0]["id"]
    participation = run(
        url,
        "INSERT INTO participations (programme_id, msme_id, role, status)"
        " VALUES ('PR-MBG', $1, 'supplier', 'active') RETURNING id",
        msme,
    )[0]["id"]
    return msme, participation, cooperative


def test_a_participation_deleted_with_its_business_is_removed_from_the_feed(
    feed_api: Api, feed_url: str
) -> None:
    """An operator who deletes a business deletes its participation with it (ON DELETE
    CASCADE): the participation's REMOVED reaches the readers of where the business was,
    though by the time the participation goes the business row is gone."""
    msme, participation, cooperative = _enrolled_business(feed_url, 1, "62.71")
    member = run(
        feed_url,
        "INSERT INTO participations (programme_id, cooperative_id, role, status)"
        " VALUES ('PR-MBG', $1, 'producer', 'active') RETURNING id",
        cooperative,
    )[0]["id"]
    entries, cursor = participation_changes(feed_api, "demo-regency-6271", None)
    assert {(str(participation), "CREATED"), (str(member), "CREATED")} <= set(entries)
    run(feed_url, "DELETE FROM msmes WHERE id = $1", msme)
    run(feed_url, "DELETE FROM cooperatives WHERE id = $1", cooperative)
    entries, _ = participation_changes(feed_api, "demo-regency-6271", cursor)
    assert entries == [(str(participation), "REMOVED"), (str(member), "REMOVED")]


def test_a_participation_moved_to_another_business_leaves_the_old_ones_readers(
    feed_api: Api, feed_url: str
) -> None:
    """Merging a duplicate cooperative moves its participations to the one kept (README): a
    reader of where the duplicate lay, who cannot see the kept one, gets REMOVED; a reader of
    the kept one's place gets CREATED."""
    _, participation, duplicate = _enrolled_business(feed_url, 2, "62.71")
    _, _, kept = _enrolled_business(feed_url, 3, "61.71")
    run(
        feed_url,
        "UPDATE participations SET msme_id = NULL, cooperative_id = $2, role = 'producer'"
        " WHERE id = $1",
        participation,
        duplicate,
    )
    _, regency = participation_changes(feed_api, "demo-regency-6271", None)
    _, kalbar = participation_changes(feed_api, "demo-province-61", None)
    run(
        feed_url,
        "UPDATE participations SET cooperative_id = $2, version = version + 1 WHERE id = $1",
        participation,
        kept,
    )
    run(feed_url, "DELETE FROM cooperatives WHERE id = $1", duplicate)
    assert participation_changes(feed_api, "demo-regency-6271", regency)[0] == [
        (str(participation), "REMOVED")
    ]
    assert participation_changes(feed_api, "demo-province-61", kalbar)[0] == [
        (str(participation), "CREATED")
    ]


def test_a_left_behind_participation_deleted_with_its_business_leaves_the_programme_s_region(
    feed_api: Api, feed_url: str
) -> None:
    """A participation whose business has left the programme's region is that region's record
    (README): deleted with its business, its REMOVED reaches the programme's region too, not
    only the readers of where the business lies, which never held it."""
    msme, _, _ = _enrolled_business(feed_url, 4, "62.71")
    run(
        feed_url,
        "INSERT INTO programmes (id, name, kind, jurisdiction)"
        " VALUES ('PR-UJI-UMPAN-6271', 'Pendampingan Uji Umpan', 'training', '62.71')",
    )
    left_behind = run(
        feed_url,
        "INSERT INTO participations (programme_id, msme_id, role, status)"
        " VALUES ('PR-UJI-UMPAN-6271', $1, 'recipient', 'completed') RETURNING id",
        msme,
    )[0]["id"]
    run(feed_url, "UPDATE msmes SET regency_code = '62.01', version = 2 WHERE id = $1", msme)
    entries, cursor = participation_changes(feed_api, "demo-regency-6271", None)
    assert (str(left_behind), "CREATED") in entries
    run(feed_url, "DELETE FROM msmes WHERE id = $1", msme)
    entries, _ = participation_changes(feed_api, "demo-regency-6271", cursor)
    assert entries == [(str(left_behind), "REMOVED")]


def test_a_region_a_business_moves_to_is_sent_nothing_of_the_participation_it_left_behind(
    feed_api: Api, feed_url: str
) -> None:
    """A participation ended in Palangka Raya's programme stays the city's record when its
    business moves to Kalbar (README): Kalbar, which never saw it and does not now, is sent no
    entry for it, neither REMOVED at the move nor when the city corrects it later; the city,
    which keeps it, is sent both, neither a removal."""
    msme, _, _ = _enrolled_business(feed_url, 5, "62.71")
    run(
        feed_url,
        "INSERT INTO programmes (id, name, kind, jurisdiction)"
        " VALUES ('PR-UJI-PINDAH-6271', 'Pendampingan Uji Pindah', 'training', '62.71')",
    )
    left_behind = run(
        feed_url,
        "INSERT INTO participations (programme_id, msme_id, role, status)"
        " VALUES ('PR-UJI-PINDAH-6271', $1, 'recipient', 'completed') RETURNING id",
        msme,
    )[0]["id"]
    _, kalbar = participation_changes(feed_api, "demo-province-61", None)
    _, city = participation_changes(feed_api, "demo-regency-6271", None)
    run(
        feed_url,
        "UPDATE msmes SET province_code = '61', regency_code = '61.71', district_code = NULL,"
        " version = 2 WHERE id = $1",
        msme,
    )
    run(feed_url, "UPDATE participations SET detail = 'dikoreksi' WHERE id = $1", left_behind)
    entries, _ = participation_changes(feed_api, "demo-province-61", kalbar)
    assert [entry for entry in entries if entry[0] == str(left_behind)] == []
    entries, _ = participation_changes(feed_api, "demo-regency-6271", city)
    changes = [change for key, change in entries if key == str(left_behind)]
    assert len(changes) == 2, changes
    assert "REMOVED" not in changes, changes
