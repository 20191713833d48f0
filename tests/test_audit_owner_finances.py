"""A sole proprietor's figures are their personal financial data (UU 27/2022 Pasal 4): an MSME's
capital, annual sales and scale, their history and the change feed's record of them, read by a
client without `pii:read`, name the owner's NIK as a data subject of the audit entry and are
itemised as personal, in the compiled statement and row by row alike, with no statement more;
a read without them, a business without an owner and a cooperative's figures name no one, and
who may read the figures is unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from itertools import count
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from resolvers import calendar
from resolvers.paging import encode_cursor
from tests.support.databases import as_service
from tests.support.databases import run as sql
from tests.support.executor import latest_entry
from tests.support.graphql import principal, run
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_cooperative_and_participation_writes import CREATE as CREATE_COOPERATIVE
from tests.test_cooperative_and_participation_writes import cooperative
from tests.test_record_mutations import CREATE, msme_input

WRITER = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
READER = principal(OrgKind.PROVINCE, "62")
"""Reads the records (records:read), not owners' personal data."""
OWNED, UNOWNED = "8819300000001", "8819300000002"
NIK = "6271011503900931"
LEGAL_ENTITY_NO = "AHU-7770931.AH.01.26.TAHUN 2021"
KALBAR = "demo-province-61"
"""A demo client reading Kalbar's records without pii:read."""
UPDATE = """mutation U($id: ID!, $version: Int!) {
  updateMsme(id: $id, version: $version, changes: {capital: "175000000"}) { version } }"""
ROWS = " @include(if: true)"
"""A directive the compiler leaves to the executor: the same document resolved row by row."""


@pytest.fixture(scope="module")
async def engine(module_reference_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(module_reference_url), statement_timeout_ms=30_000)
    made = await run(
        engine,
        WRITER,
        CREATE_COOPERATIVE,
        {"input": cooperative(931, legalEntityNo=LEGAL_ENTITY_NO, region="62.71")},
    )
    assert made.errors is None, made.errors
    member = made.data["createCooperative"]["id"]
    owner = {"nik": NIK, "fullName": "Siti Aminah"}
    for nib, extra in ((OWNED, {"owner": owner}), (UNOWNED, {})):
        created = await run(
            engine, WRITER, CREATE, {"input": msme_input(nib, cooperativeId=member, **extra)}
        )
        assert created.errors is None, created.errors
    owned = await run(engine, READER, f'{{ msme(nib: "{OWNED}") {{ id version }} }}')
    updated = await run(engine, WRITER, UPDATE, dict(owned.data["msme"]))
    assert updated.errors is None, updated.errors
    yield engine
    await engine.dispose()


async def audited(engine: AsyncEngine, operation: str) -> tuple[list[str], dict[str, Any]]:
    """The subjects and entry of the latest audit entry of `operation`."""
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT subjects, entry FROM audit_log WHERE entry->>'operation' = :operation"
                " ORDER BY seq DESC LIMIT 1"
            ),
            {"operation": operation},
        )
        row = found.one()
    return sorted(row.subjects), row.entry


async def read(
    engine: AsyncEngine, document: str, who: Any = READER, variables: dict[str, Any] | None = None
) -> Any:
    result = await run(engine, who, document, variables)
    assert result.errors is None, result.errors
    return result.data


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
async def test_a_lookup_of_the_figures_names_the_owner(engine: AsyncEngine, rows: str) -> None:
    data = await read(
        engine, f'query Lookup {{ msme(nib: "{OWNED}") {{ annualTurnover{rows} capital }} }}'
    )
    assert data == {"msme": {"annualTurnover": "240000000", "capital": "175000000"}}
    subjects, entry = await audited(engine, "Lookup")
    assert subjects == [NIK]
    assert {"Msme.annualTurnover", "Msme.capital"} <= set(entry["personalFields"])
    assert not [field for field in entry["personalFields"] if field.startswith("Owner.")]


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
async def test_a_page_names_the_owners_of_the_businesses_it_shows(
    engine: AsyncEngine, rows: str
) -> None:
    data = await read(
        engine, f"query Page {{ msmes(first: 100) {{ nodes {{ nib scale{rows} }} }} }}"
    )
    assert {node["nib"] for node in data["msmes"]["nodes"]} == {OWNED, UNOWNED}
    subjects, entry = await audited(engine, "Page")
    assert subjects == [NIK]  # the business without an owner names no one
    assert "Msme.scale" in entry["personalFields"]
    assert entry["records"] == {"msme": 2}


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
async def test_a_cooperative_s_members_name_their_owners(engine: AsyncEngine, rows: str) -> None:
    document = f"""query Members {{ cooperative(legalEntityNo: "{LEGAL_ENTITY_NO}") {{
      businessVolume memberMsmes {{ nodes {{ nib declaredScale capital{rows} }} }} }} }}"""
    data = await read(engine, document)
    assert len(data["cooperative"]["memberMsmes"]["nodes"]) == 2
    subjects, entry = await audited(engine, "Members")
    assert subjects == [NIK]
    assert "Cooperative.businessVolume" not in entry["personalFields"]


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
async def test_the_scale_history_names_the_owner(engine: AsyncEngine, rows: str) -> None:
    document = f"""query Scales {{ msme(nib: "{OWNED}") {{ nib{rows}
      scaleHistory {{ effectiveFrom annualSales }} }} }}"""
    data = await read(engine, document)
    assert data["msme"]["scaleHistory"]
    subjects, entry = await audited(engine, "Scales")
    assert subjects == [NIK]
    assert "ScaleChange.annualSales" in entry["personalFields"]


async def test_the_history_of_the_figures_names_the_owner(engine: AsyncEngine) -> None:
    document = f"""query History {{ msme(nib: "{OWNED}") {{ nib
      changes {{ operation fields {{ field before after }} }} }} }}"""
    data = await read(engine, document)
    changed = [field for change in data["msme"]["changes"] for field in change["fields"]]
    assert {"field": "capital", "before": "150000000", "after": "175000000"} in changed
    subjects, entry = await audited(engine, "History")
    assert subjects == [NIK]
    assert "Msme.capital" in entry["personalFields"]
    assert "Msme.capital" in entry["touched"]


async def test_a_history_without_its_fields_names_no_one(engine: AsyncEngine) -> None:
    await read(engine, f'query Who {{ msme(nib: "{OWNED}") {{ nib changes {{ operation }} }} }}')
    assert (await audited(engine, "Who"))[0] == []


async def test_the_change_feed_s_records_name_the_owner(engine: AsyncEngine) -> None:
    data = await read(engine, "query Feed { msmeChanges(first: 100) { entries { record } } }")
    assert {entry["record"]["nib"] for entry in data["msmeChanges"]["entries"]} == {
        OWNED,
        UNOWNED,
    }
    assert not [entry for entry in data["msmeChanges"]["entries"] if "owner" in entry["record"]]
    subjects, entry = await audited(engine, "Feed")
    assert subjects == [NIK]
    assert {"Msme.annualTurnover", "Msme.capital", "Msme.scale"} <= set(entry["personalFields"])
    await read(engine, "query FeedIds { msmeChanges(first: 100) { entries { id change } } }")
    assert (await audited(engine, "FeedIds"))[0] == []


async def test_a_read_without_the_figures_names_no_one_and_reads_no_owner(
    engine: AsyncEngine,
) -> None:
    """The bench's lookup: no owner probed, no statement more."""
    document = f'query Plain {{ msme(nib: "{OWNED}") {{ nib name regency {{ name }} }} }}'
    with recorded_statements(engine) as plain:
        await read(engine, document)
    assert not [sql for sql in plain if "msme_owners" in sql]
    subjects, entry = await audited(engine, "Plain")
    assert (subjects, entry["personalFields"]) == ([], [])
    figures = f'query Figures {{ msme(nib: "{OWNED}") {{ nib name capital regency {{ name }} }} }}'
    with recorded_statements(engine) as with_figures:
        await read(engine, figures)
    assert len(with_figures) == len(plain)


async def test_a_cooperative_s_figures_name_no_one(engine: AsyncEngine) -> None:
    document = f"""query Cooperative {{ cooperative(legalEntityNo: "{LEGAL_ENTITY_NO}") {{
      businessVolume assets surplus }} }}"""
    await read(engine, document)
    subjects, entry = await audited(engine, "Cooperative")
    assert (subjects, entry["personalFields"]) == ([], [])


async def test_an_owner_read_with_the_figures_is_named_once(engine: AsyncEngine) -> None:
    document = f'query Both {{ msme(nib: "{OWNED}") {{ capital owner {{ nik }} }} }}'
    data = await read(engine, document, WRITER)
    assert data == {"msme": {"capital": "175000000", "owner": {"nik": NIK}}}
    subjects, entry = await audited(engine, "Both")
    assert subjects == [NIK]
    assert {"Msme.capital", "Owner.nik"} <= set(entry["personalFields"])


@pytest.mark.parametrize("rows", ["", ROWS], ids=["planned", "row by row"])
def test_over_http_a_client_without_pii_read_is_listed_for_the_owner(
    api: Api, demo_url: str, rows: str
) -> None:
    """The request's plan (schema/engine.py) as the executor: the owner asked about in
    `personalDataAccess` finds the client that read the business's figures."""
    (msme,) = sql(
        demo_url,
        "SELECT m.nib, o.nik FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        " WHERE m.province_code = '61' AND m.nib IS NOT NULL ORDER BY m.id LIMIT 1",
    )
    document = f'query Http {{ msme(nib: "{msme["nib"]}") {{ nib annualTurnover{rows} }} }}'
    answer = api.graphql(document, KALBAR)
    assert "errors" not in answer, answer
    audited = latest_entry(demo_url, KALBAR)
    assert audited.subjects == [msme["nik"]]
    assert "Msme.annualTurnover" in audited.entry["personalFields"]
    query = "query($nik: String!) { personalDataAccess(nik: $nik) { clientId } }"
    found = api.graphql(query, "demo-walidata", {"nik": msme["nik"]})
    assert KALBAR in {row["clientId"] for row in found["data"]["personalDataAccess"]}


KALBAR_WRITER = principal(OrgKind.PROVINCE, "61", extra=frozenset({Scope.PII_READ}))
KALBAR_READER = principal(OrgKind.PROVINCE, "61")
"""Writes Kalbar's records (records:write), not owners' personal data; its businesses are kept
apart from the Kalteng ones the reads above list."""
WRITTEN_NIK = "6171011503900932"


async def owned_in_kalbar(engine: AsyncEngine, nib: str) -> dict[str, Any]:
    owner = {"nik": WRITTEN_NIK, "fullName": "Rudi Hartono"}
    made = await run(
        engine,
        KALBAR_WRITER,
        CREATE,
        {"input": msme_input(nib, region="61.71", district="61.71.01", owner=owner)},
    )
    assert made.errors is None, made.errors
    return {"id": made.data["createMsme"]["id"], "version": made.data["createMsme"]["version"]}


async def written(engine: AsyncEngine, document: str, variables: dict[str, Any]) -> Any:
    result = await run(engine, KALBAR_READER, document, variables)
    assert result.errors is None, result.errors
    return result.data


async def test_a_mutation_answering_with_the_figures_names_the_owner(engine: AsyncEngine) -> None:
    """The write reads the owner's NIK in its own statements (its lock, its UPDATE's RETURNING),
    as a read of the figures does, whatever it changed."""
    key = await owned_in_kalbar(engine, "8819310000001")
    document = """mutation Answer($id: ID!, $version: Int!) { updateMsme(id: $id,
      version: $version, changes: {employees: 7}) { capital annualTurnover scale version } }"""
    data = await written(engine, document, key)
    assert data["updateMsme"]["capital"] == "150000000"
    subjects, entry = await audited(engine, "Answer")
    assert subjects == [WRITTEN_NIK]
    assert {"Msme.annualTurnover", "Msme.capital", "Msme.scale"} <= set(entry["personalFields"])
    deactivate = """mutation Off($id: ID!, $version: Int!) {
      deactivateMsme(id: $id, version: $version) { scale } }"""
    await written(engine, deactivate, {**key, "version": data["updateMsme"]["version"]})
    assert (await audited(engine, "Off"))[0] == [WRITTEN_NIK]
    quiet = """mutation Quiet($id: ID!, $version: Int!) {
      reactivateMsme(id: $id, version: $version) { version } }"""
    await written(engine, quiet, {**key, "version": data["updateMsme"]["version"] + 1})
    assert (await audited(engine, "Quiet"))[0] == []  # neither handed out nor changed


async def test_a_mutation_changing_the_figures_names_the_owner(engine: AsyncEngine) -> None:
    """Their processing: named and itemised though the answer holds none of them."""
    key = await owned_in_kalbar(engine, "8819310000002")
    document = """mutation Change($id: ID!, $version: Int!) { updateMsme(id: $id,
      version: $version, changes: {capital: "160000000"}) { version } }"""
    data = await written(engine, document, key)
    subjects, entry = await audited(engine, "Change")
    assert subjects == [WRITTEN_NIK]
    assert "Msme.capital" in entry["personalFields"]
    assert "Msme.annualTurnover" not in entry["personalFields"]
    report = """mutation Report($id: ID!, $version: Int!, $report: ScaleReport!) {
      reportScaleChange(id: $id, version: $version, report: $report) { version } }"""
    today = calendar.today().isoformat()
    figures = {"annualSales": "250000000", "turnoverYear": 2025, "effectiveFrom": today}
    await written(
        engine, report, {**key, "version": data["updateMsme"]["version"], "report": figures}
    )
    subjects, entry = await audited(engine, "Report")
    assert subjects == [WRITTEN_NIK]
    assert "Msme.annualTurnover" in entry["personalFields"]


async def test_a_mutation_erasing_the_owner_names_them_for_the_figures_it_overwrote(
    engine: AsyncEngine,
) -> None:
    """The owner is gone once the write is done: the figures it overwrote were the owner's on
    record when the write locked the row."""
    key = await owned_in_kalbar(engine, "8819310000004")
    document = """mutation Erase($id: ID!, $version: Int!) { updateMsme(id: $id,
      version: $version, changes: {owner: null, capital: "188000000"}) { version } }"""
    erased = await run(engine, KALBAR_WRITER, document, key)
    assert erased.errors is None, erased.errors
    subjects, entry = await audited(engine, "Erase")
    assert subjects == [WRITTEN_NIK]
    assert "Msme.capital" in entry["personalFields"]


IMPORT = """mutation Import($rows: [MsmeImportRow!]!) {
  importMsmes(rows: $rows, mode: VALID_ROWS) { created updated unchanged applied } }"""


async def test_an_import_comparing_or_overwriting_the_figures_names_the_owner(
    engine: AsyncEngine,
) -> None:
    """`unchanged` confirms a guessed capital, `updated` overwrote it: either way the owner's
    finances were processed, and the owner on record, read with the record the import locks,
    is named (the row gives no owner: the client has no pii:read)."""
    nib = "8819310000003"
    await owned_in_kalbar(engine, nib)
    kalbar = {"region": "61.71", "district": "61.71.01"}
    same = await written(engine, IMPORT, {"rows": [msme_input(nib, **kalbar)]})
    assert same["importMsmes"]["unchanged"] == 1, same
    subjects, entry = await audited(engine, "Import")
    assert subjects == [WRITTEN_NIK]
    assert "Msme.capital" in entry["personalFields"]
    other = msme_input(nib, capital="170000000", **kalbar)
    changed = await written(engine, IMPORT, {"rows": [other]})
    assert changed["importMsmes"]["updated"] == 1, changed
    assert (await audited(engine, "Import"))[0] == [WRITTEN_NIK]
    owned = await read(engine, f'{{ msme(nib: "{nib}") {{ owner {{ nik }} }} }}', KALBAR_WRITER)
    assert owned == {"msme": {"owner": {"nik": WRITTEN_NIK}}}  # the rows left it on record


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
@pytest.mark.parametrize(
    "listed",
    [
        "nodes {{ nib{} }}",
        "edges {{ node {{ nib{} }} }}",
        "edges {{ cursor{} }}",
        "totalCount pageInfo {{ endCursor{} }}",
    ],
    ids=["nodes", "edges", "cursors", "end cursor"],
)
async def test_a_page_filtered_by_scale_names_the_owners_it_lists(
    engine: AsyncEngine, rows: str, listed: str
) -> None:
    """Each business listed is MICRO though no figure is selected: its owner's finances. A
    cursor is the record's id, so a page of cursors, or its end cursor, lists them too."""
    selection = listed.format(rows)
    document = f"query Micro {{ msmes(first: 100, filter: {{scale: MICRO}}) {{ {selection} }} }}"
    data = await read(engine, document)
    assert data["msmes"]
    subjects, entry = await audited(engine, "Micro")
    assert subjects == [NIK]
    assert "Msme.scale" in entry["personalFields"]


async def test_a_count_filtered_by_scale_names_no_one(engine: AsyncEngine) -> None:
    document = "query Count { msmes(filter: {scale: MICRO}) { totalCount } }"
    assert (await read(engine, document))["msmes"]["totalCount"] >= 2
    subjects, entry = await audited(engine, "Count")
    assert (subjects, entry["personalFields"]) == ([], [])
    await read(engine, "query Unfiltered { msmes(first: 100) { nodes { nib } } }")
    assert (await audited(engine, "Unfiltered"))[0] == []


PEEKED_NIK = "6171011503900935"
PEEKED = count(1)
"""Numbers the Kalbar businesses of each run of the test below."""


@pytest.mark.parametrize("rows", ["", ROWS], ids=["compiled", "row by row"])
@pytest.mark.parametrize(
    "listed",
    ["pageInfo {{ hasNextPage{} }}", "nodes {{ nib{} }} pageInfo {{ hasNextPage }}"],
    ids=["next page", "nodes and next page"],
)
async def test_a_next_page_filtered_by_scale_names_the_owner_of_the_row_past_the_page(
    engine: AsyncEngine, rows: str, listed: str
) -> None:
    """After a made-up cursor, `hasNextPage` tells whether `first` + 1 MICRO businesses follow
    any id, so walking the ids finds each: it names the owners of the page's rows and of the
    row read past it."""
    run_number = next(PEEKED)
    unowned = await run(
        engine,
        KALBAR_WRITER,
        CREATE,
        {"input": msme_input(f"88193300000{run_number}1", region="61.71", district="61.71.01")},
    )
    assert unowned.errors is None, unowned.errors
    owner = {"nik": PEEKED_NIK, "fullName": "Dewi Lestari"}
    owned = await run(
        engine,
        KALBAR_WRITER,
        CREATE,
        {
            "input": msme_input(
                f"88193300000{run_number}2", region="61.71", district="61.71.01", owner=owner
            )
        },
    )
    assert owned.errors is None, owned.errors
    before = encode_cursor("msme", int(unowned.data["createMsme"]["id"]) - 1)
    selection = listed.format(rows)
    document = (
        f'query Next {{ msmes(first: 1, after: "{before}", filter: {{scale: MICRO}})'
        f" {{ {selection} }} }}"
    )
    assert (await read(engine, document, KALBAR_READER))["msmes"]["pageInfo"]["hasNextPage"]
    subjects, entry = await audited(engine, "Next")
    assert subjects == [PEEKED_NIK]  # the page's one business has no owner: the next one's
    assert "Msme.scale" in entry["personalFields"]


async def test_histories_without_the_figures_read_no_owner(engine: AsyncEngine) -> None:
    """Row by row, as the compiled statement does: the owner is probed only beside what may
    show the figures (a change's `fields`, a scale change's figures)."""
    document = f"""query Bare {{ msme(nib: "{OWNED}") {{ nib{ROWS}
      changes {{ operation }} scaleHistory {{ effectiveFrom }} }} }}"""
    with recorded_statements(engine) as statements:
        data = await read(engine, document)
    assert data["msme"]["changes"]
    assert data["msme"]["scaleHistory"]
    assert not [sql for sql in statements if "msme_owners" in sql]
    assert (await audited(engine, "Bare"))[0] == []


async def test_an_owner_a_variable_leaves_out_is_not_itemised(engine: AsyncEngine) -> None:
    """Executed by the schema alone (as over the WebSocket), the entry itemises the owner's
    fields only when the request's variables select them, one request after the other."""
    document = f"""query Maybe($c: Boolean!) {{ msme(nib: "{OWNED}")
      {{ nib ... on Msme @include(if: $c) {{ owner {{ nik }} }} }} }}"""
    for shown in (True, False, True):
        result = await run(engine, WRITER, document, {"c": shown})
        assert result.errors is None, result.errors
        assert ("owner" in result.data["msme"]) is shown
        subjects, entry = await audited(engine, "Maybe")
        assert ("Owner.nik" in entry["personalFields"]) is shown
        assert (subjects == [NIK]) is shown
