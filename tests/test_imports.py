"""`importMsmes`: idempotent upsert by NIB, a per-row report, all-or-nothing or valid rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from auth.scopes import OrgKind, Scope
from db import imports
from db.engine import create_engine
from db.queries.scoping import RowScope
from db.writes.history import Actor
from domain.records import MsmeDraft
from resolvers import calendar
from resolvers import imports as resolver_imports
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.test_record_mutations import CREATE, READ, UPDATE

KALTENG = principal(OrgKind.PROVINCE, "62")
KALTENG_PII = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
KALBAR = principal(OrgKind.PROVINCE, "61")

IMPORT = """
mutation($rows: [MsmeImportRow!]!, $mode: ImportMode!) {
  importMsmes(rows: $rows, mode: $mode) {
    received created updated unchanged rejected applied errors { row field reason }
  }
}
"""


def row(nib: str, **overrides: Any) -> dict[str, Any]:
    return {
        "nib": nib,
        "name": f"Usaha {nib[-3:]}",
        "kbliCode": "47112",
        "region": "62.71",
        "district": "62.71.03",
        "capital": "100000000",
        "annualTurnover": "300000000",
        "turnoverYear": 2025,
        "employees": 2,
        **overrides,
    }


async def snapshot(engine: AsyncEngine, prefix: str) -> dict[str, Any]:
    """Everything an import writes for NIBs starting with `prefix`."""
    queries = {
        "msmes": "SELECT m.* FROM msmes m WHERE nib LIKE :p ORDER BY nib",
        "owners": "SELECT o.* FROM msme_owners o JOIN msmes m ON m.id = o.msme_id"
        " WHERE m.nib LIKE :p ORDER BY o.msme_id",
        "history": "SELECT c.record_id, c.operation, c.version, c.changes, c.personal_fields"
        " FROM record_history c JOIN msmes m ON m.id = c.record_id"
        " WHERE c.record_kind = 'msme' AND m.nib LIKE :p ORDER BY c.id",
        "scales": "SELECT h.msme_id, h.scale, h.effective_from FROM scale_history h"
        " JOIN msmes m ON m.id = h.msme_id WHERE m.nib LIKE :p"
        " ORDER BY h.msme_id, h.effective_from",
    }
    async with engine.connect() as connection:
        return {
            name: [
                tuple(found) for found in await connection.execute(text(sql), {"p": f"{prefix}%"})
            ]
            for name, sql in queries.items()
        }


async def do_import(
    engine: AsyncEngine, rows: list[dict[str, Any]], mode: str, who: Any = KALTENG
) -> Any:
    return await run(engine, who, IMPORT, {"rows": rows, "mode": mode})


def draft(nib: str) -> MsmeDraft:
    return MsmeDraft(
        nib=nib,
        name="Toko",
        kbli_code="47112",
        region="62.71",
        capital=10_000_000,
        annual_turnover=90_000_000,
    )


async def import_directly(
    connection: AsyncConnection, rows: Iterable[imports.Drafted], total: int
) -> imports.Report:
    """Below the mutation, as the CLI calls it: rows may come from a generator."""
    return await imports.import_msmes(
        connection,
        rows,
        total=total,
        scope=RowScope("62"),
        actor=Actor("test", "test"),
        mode=imports.Mode.VALID_ROWS,
        today=calendar.today(),
    )


async def test_importing_the_same_rows_twice_leaves_what_importing_once_left(
    engine: AsyncEngine,
) -> None:
    rows = [row(f"776000000000{i}") for i in range(5)]
    first = await do_import(engine, rows, "ALL_OR_NOTHING")
    assert first.errors is None, first.errors
    assert first.data["importMsmes"] == {
        "received": 5,
        "created": 5,
        "updated": 0,
        "unchanged": 0,
        "rejected": 0,
        "applied": True,
        "errors": [],
    }
    once = await snapshot(engine, "7760")
    second = (await do_import(engine, rows, "ALL_OR_NOTHING")).data["importMsmes"]
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 5)
    assert await snapshot(engine, "7760") == once
    assert len(once["history"]) == 5
    assert len(once["scales"]) == 5


async def test_a_changed_row_updates_its_record_and_history_only(engine: AsyncEngine) -> None:
    rows = [row(f"776100000000{i}") for i in range(3)]
    await do_import(engine, rows, "VALID_ROWS")
    rows[1] = row("7761000000001", annualTurnover="2600000000", employees=6)
    report = (await do_import(engine, rows, "VALID_ROWS")).data["importMsmes"]
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 2)
    state = await snapshot(engine, "7761")
    async with engine.connect() as connection:
        found = await connection.execute(
            text("SELECT nib, version, scale FROM msmes WHERE nib LIKE '7761%' ORDER BY nib")
        )
        assert [tuple(record) for record in found] == [
            ("7761000000000", 1, "micro"),
            ("7761000000001", 2, "small"),
            ("7761000000002", 1, "micro"),
        ]
    last = state["history"][-1]
    assert last[1:3] == ("import", 2)
    assert set(last[3]) == {"annual_turnover", "employees", "scale"}
    assert last[3]["scale"] == {"before": "micro", "after": "small"}
    assert [scale[1] for scale in state["scales"]].count("small") == 1


async def test_a_created_record_history_is_what_field_change_gives_for_each_column(
    engine: AsyncEngine,
) -> None:
    """Created rows spell their diff as JSON text (cheaper); it must equal `field_change`'s."""
    rows = [
        row("7758000000000", name='Toko "Maju" \\ Jaya – Sentosa'),
        row(
            "7758000000001",
            district=None,
            capital=None,
            turnoverYear=None,
            employees=None,
            establishedOn="2019-02-03",
        ),
    ]
    report = (await do_import(engine, rows, "ALL_OR_NOTHING")).data["importMsmes"]
    assert report["created"] == 2
    expected = " || ".join(
        f"field_change('{c}', (NULL::msmes).{c}, m.{c})" for c in imports.RECORD_COLUMNS
    )
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                f"SELECT m.nib, c.changes = ({expected}), c.changes"  # noqa: S608 (fixed names)
                " FROM record_history c JOIN msmes m ON m.id = c.record_id"
                " WHERE c.record_kind = 'msme' AND m.nib LIKE '7758%' ORDER BY m.nib"
            )
        )
        agreed = [(nib, same) for nib, same, _ in found]
    assert agreed == [("7758000000000", True), ("7758000000001", True)]


async def test_a_created_record_history_reads_the_same_after_later_changes(
    engine: AsyncEngine,
) -> None:
    """A record created without an owner is noted once per batch and its first entry rebuilt
    from the record (migration 0015); changed later, it must still read as it was created,
    like the one created with an owner, whose entry is a row of its own."""
    owner = {"nik": "6271995204880002", "fullName": "Sri Batch"}
    rows = [row("7753000000000", district=None), row("7753000000001", owner=owner)]
    created = (await do_import(engine, rows, "ALL_OR_NOTHING", KALTENG_PII)).data["importMsmes"]
    assert created["created"] == 2

    async def history(nib: str) -> list[Any]:
        read = await run(engine, KALTENG_PII, READ, {"nib": nib})
        assert read.errors is None, read.errors
        return list(read.data["msme"]["changes"])

    first = {nib: await history(nib) for nib in ("7753000000000", "7753000000001")}
    assert [len(entries) for entries in first.values()] == [1, 1]
    assert first["7753000000001"][0]["personalDataChanged"] == ["owner.nik", "owner.fullName"]
    batch = first["7753000000000"][0]
    assert (batch["operation"], batch["version"], batch["personalDataChanged"]) == (
        "import",
        1,
        [],
    )
    assert {f["field"]: f["after"] for f in batch["fields"]} == {
        "nib": "7753000000000",
        "name": "Usaha 000",
        "kbliCode": "47112",
        "kbliSection": "G",
        "scale": "micro",
        "provinceCode": "62",
        "regencyCode": "62.71",
        "capital": "100000000",
        "annualTurnover": "300000000",
        "turnoverYear": "2025",
        "employees": "2",
    }
    assert all(f["before"] is None for f in batch["fields"])

    for nib in first:
        moved = [row(nib, district="62.71.03", annualTurnover="2600000000", employees=6)]
        if nib == "7753000000001":
            moved[0]["owner"] = owner
        again = (await do_import(engine, moved, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
        assert again["updated"] == 1
        record = (await run(engine, KALTENG, READ, {"nib": nib})).data["msme"]
        renamed = await run(
            engine,
            KALTENG,
            UPDATE,
            {"id": record["id"], "version": record["version"], "changes": {"name": "Baru"}},
        )
        assert renamed.errors is None, renamed.errors
        later = await history(nib)
        assert later[0] == first[nib][0], "the creation reads as it was"
        assert [entry["operation"] for entry in later] == ["import", "import", "update"]


async def test_an_imported_record_scale_history_reads_the_same_after_later_changes(
    engine: AsyncEngine,
) -> None:
    """A record created without an owner gets its first scale entry from its batch, read from
    the record (migration 0016); its figures changed later, the entry still reads as it was,
    and a later change of scale follows it, as a graduation from it."""
    nib = "7752000000000"
    async with engine.begin() as connection:
        created = await imports.import_msmes(
            connection,
            [(2, draft(nib), ())],
            total=1,
            scope=RowScope("62"),
            actor=Actor("test", "test"),
            mode=imports.Mode.VALID_ROWS,
            today=date(2025, 1, 2),
        )
    assert created.created == 1
    first = {"scale": "MICRO", "effectiveFrom": "2025-01-02", "annualSales": "90000000"}

    async def scale_history() -> tuple[dict[str, Any], list[Any]]:
        read = await run(engine, KALTENG, READ, {"nib": nib})
        assert read.errors is None, read.errors
        return read.data["msme"], list(read.data["msme"]["scaleHistory"])

    record, history = await scale_history()
    assert history == [first]
    same_scale = {"annualTurnover": "95000000", "capital": "20000000"}
    changed = await run(
        engine,
        KALTENG,
        UPDATE,
        {"id": record["id"], "version": record["version"], "changes": same_scale},
    )
    assert changed.errors is None, changed.errors
    record, history = await scale_history()
    assert (record["version"], history) == (2, [first])

    grown = [row(nib, district=None, annualTurnover="2600000000", capital="20000000")]
    again = (await do_import(engine, grown, "VALID_ROWS")).data["importMsmes"]
    assert again["updated"] == 1
    _, history = await scale_history()
    today = calendar.today().isoformat()
    assert history == [
        first,
        {"scale": "SMALL", "effectiveFrom": today, "annualSales": "2600000000"},
    ]
    async with engine.connect() as connection:
        steps = await connection.execute(
            text(
                "SELECT lag(h.scale) OVER (ORDER BY h.effective_from), h.scale"
                " FROM msme_scale_history h JOIN msmes m ON m.id = h.msme_id WHERE m.nib = :nib"
                " ORDER BY h.effective_from"
            ),
            {"nib": nib},
        )
        assert [tuple(step) for step in steps] == [(None, "micro"), ("micro", "small")]


BAD_ROWS = [
    row("7762000000000"),
    row("776200000001"),  # 12 digits
    row("7762000000002", kbliCode="04111", region="61.71", district=None),
    row("7762000000003"),
    row("7762000000000", name="Nama Lain"),  # repeats row 1's NIB
    row("7762000000005", region="62.98", district=None),  # no such regency
]
EXPECTED_ERRORS = [
    {"row": 2, "field": "nib", "reason": "must be exactly 13 digits"},
    {"row": 3, "field": "kbliCode", "reason": "division 04 of '04111' is in no KBLI 2020 section"},
    {"row": 5, "field": "nib", "reason": "repeats the NIB of row 1"},
    {"row": 6, "field": "region", "reason": "is not a known regency or city code"},
]


async def test_all_or_nothing_with_bad_rows_reports_each_and_changes_nothing(
    engine: AsyncEngine,
) -> None:
    before = await snapshot(engine, "7762")
    result = await do_import(engine, BAD_ROWS, "ALL_OR_NOTHING")
    report = result.data["importMsmes"]
    assert report["errors"] == EXPECTED_ERRORS
    assert (report["applied"], report["rejected"], report["created"]) == (False, 4, 0)
    assert (
        await snapshot(engine, "7762")
        == before
        == {
            "msmes": [],
            "owners": [],
            "history": [],
            "scales": [],
        }
    )


async def test_valid_rows_mode_writes_the_good_rows_and_reports_the_bad(
    engine: AsyncEngine,
) -> None:
    rows = [{**item, "nib": item["nib"].replace("7762", "7763", 1)} for item in BAD_ROWS]
    report = (await do_import(engine, rows, "VALID_ROWS")).data["importMsmes"]
    assert [(error["row"], error["field"]) for error in report["errors"]] == [
        (error["row"], error["field"]) for error in EXPECTED_ERRORS
    ]
    assert (report["applied"], report["created"], report["rejected"]) == (True, 2, 4)
    stored = await snapshot(engine, "7763")
    assert [record[1] for record in stored["msmes"]] == ["7763000000000", "7763000000003"]


async def test_a_chunk_mixing_new_changed_owned_and_unknown_places_keeps_every_check(
    engine: AsyncEngine,
) -> None:
    """New records without an owner go to the register by COPY, the others through staging: in
    one chunk, a kecamatan no region table knows is still a row error (not a failed COPY), a
    record outside the jurisdiction is still refused, and each written record gets its history
    and its change-feed entries, as before."""
    await do_import(engine, [row("7768000000001")], "VALID_ROWS")
    await do_import(
        engine, [row("7768000000009", region="61.71", district=None)], "VALID_ROWS", KALBAR
    )
    rows = [
        row("7768000000002"),  # new
        row("7768000000001", name="Nama Baru"),  # changed
        row("7768000000003", district="62.71.99"),  # no such kecamatan
        row("7768000000004", owner={"nik": "6271995204880002", "fullName": "Sri"}),
        row("7768000000009", region="62.71", district=None),  # Kalbar's record
        row("7768000000005"),  # new
    ]
    report = (await do_import(engine, rows, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert report["errors"] == [
        {"row": 3, "field": "district", "reason": "is not a known kecamatan code"},
        {"row": 5, "field": "nib", "reason": "is registered to a record outside your jurisdiction"},
    ]
    assert (report["created"], report["updated"], report["rejected"]) == (3, 1, 2)
    stored = await snapshot(engine, "7768")
    nibs = {record[0]: record[1] for record in stored["msmes"]}
    assert sorted(nibs.values()) == [
        "7768000000001",
        "7768000000002",
        "7768000000004",
        "7768000000005",
        "7768000000009",
    ]
    history = [
        (nibs[record_id], operation, version)
        for record_id, operation, version, *_ in stored["history"]
    ]
    assert sorted(history) == [
        ("7768000000001", "import", 1),
        ("7768000000001", "import", 2),
        ("7768000000002", "import", 1),
        ("7768000000004", "import", 1),
        ("7768000000005", "import", 1),
        ("7768000000009", "import", 1),
    ]
    async with engine.connect() as connection:
        entries = await connection.execute(
            text(
                "SELECT m.nib, l.operation, l.personal FROM change_log l"
                " JOIN msmes m ON m.id::text = l.record_id"
                " WHERE l.record_kind = 'msme' AND m.nib LIKE '7768%' ORDER BY l.id"
            )
        )
        assert [tuple(entry) for entry in entries][2:] == [
            ("7768000000001", "update", False),
            ("7768000000002", "insert", False),
            ("7768000000005", "insert", False),
            ("7768000000004", "insert", False),
            ("7768000000004", "update", True),
        ]


async def test_an_import_answers_with_the_first_row_errors_and_counts_every_bad_row(
    engine: AsyncEngine,
) -> None:
    """The attack: a bad batch of 5,000 rows with owners answered some 70,000 errors, over the
    response size bound; aliased, a few hundred bad rows were enough. The answer holds the first
    MAX_REPORTED_ERRORS by row; `rejected` still counts every bad row."""
    bad = 1_500  # two errors each: a 12-digit NIB and a KBLI code of one digit
    rows = [row("7143000000000")] + [row(f"7143{index:08d}", kbliCode="4") for index in range(bad)]
    report = (await do_import(engine, rows, "VALID_ROWS")).data["importMsmes"]
    assert (report["applied"], report["created"], report["rejected"]) == (True, 1, bad)
    cap = resolver_imports.MAX_REPORTED_ERRORS
    assert len(report["errors"]) == cap
    by_row = [(error["row"], error["field"]) for error in report["errors"]]
    assert by_row == sorted(by_row)
    assert {error_row for error_row, _ in by_row} == set(range(2, 2 + cap // 2))
    assert [record[1] for record in (await snapshot(engine, "7143"))["msmes"]] == ["7143000000000"]


@pytest.mark.parametrize(("mode", "prefix"), [("ALL_OR_NOTHING", "7755"), ("VALID_ROWS", "7756")])
async def test_bad_rows_after_chunks_were_written_are_handled_like_any_bad_row(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, mode: str, prefix: str
) -> None:
    """Chunks of two rows: the repeat and the unknown region come after two chunks were written;
    all-or-nothing must still leave nothing, and valid-rows must still skip exactly those two."""
    monkeypatch.setattr(imports, "CHUNK", 2)
    rows = [row(f"{prefix}00000000{i}") for i in range(5)]
    rows += [row(f"{prefix}000000000"), row(f"{prefix}000000009", region="62.98", district=None)]
    report = (await do_import(engine, rows, mode)).data["importMsmes"]
    assert report["errors"] == [
        {"row": 6, "field": "nib", "reason": "repeats the NIB of row 1"},
        {"row": 7, "field": "region", "reason": "is not a known regency or city code"},
    ]
    stored = await snapshot(engine, prefix)
    written = [len(stored[part]) for part in ("msmes", "history", "scales")]
    assert (report["applied"], report["created"], written) == (
        (False, 0, [0, 0, 0]) if mode == "ALL_OR_NOTHING" else (True, 5, [5, 5, 5])
    )


async def test_a_failure_while_reading_rows_leaves_nothing_written(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file breaks after chunks went to PostgreSQL: the import stops the chunk in flight so
    the caller's transaction can roll back, and nothing is left."""
    monkeypatch.setattr(imports, "CHUNK", 2)

    def rows() -> Iterator[imports.Drafted]:
        for i in range(7):
            yield i + 2, draft(f"775700000000{i}"), ()
        raise OSError("the file went away")

    with pytest.raises(OSError, match="went away"):
        async with engine.begin() as connection:
            await import_directly(connection, rows(), total=7)
    assert await snapshot(engine, "7757") == {
        "msmes": [],
        "owners": [],
        "history": [],
        "scales": [],
    }


async def test_a_single_write_waits_for_an_import_in_progress(
    engine: AsyncEngine, reference_url: str
) -> None:
    """An import holds the rollup rows of its chunks until it commits; a single write that ran
    between two chunks could deadlock with it, so single writes queue behind an import."""
    create = """
    mutation { createMsme(input: {nib: "7754000000000", name: "Warung Antre", kbliCode: "47112",
                                  region: "62.71", capital: "50000000",
                                  annualTurnover: "90000000"}) { id } }
    """
    msme_id = (await run(engine, KALTENG, create)).data["createMsme"]["id"]
    rename = """
    mutation($id: ID!) { updateMsme(id: $id, version: 1, changes: {name: "Baru"}) { version } }
    """
    writer = create_engine(as_service(reference_url), statement_timeout_ms=30_000)
    try:
        async with engine.begin() as connection:
            await import_directly(connection, [(2, draft("7754000000001"), ())], total=1)
            update = asyncio.create_task(run(writer, KALTENG, rename, {"id": msme_id}))
            await asyncio.sleep(0.5)
            assert not update.done()  # the import has not committed yet
        updated = await asyncio.wait_for(update, timeout=10)
    finally:
        await writer.dispose()
    assert updated.errors is None
    assert updated.data["updateMsme"]["version"] == 2


ENROL = """
mutation($input: ParticipationInput!) { addParticipation(input: $input) { id } }
"""
HELD = """
query($nib: String!) { msme(nib: $nib) { id name version participations { role } } }
"""


async def test_writes_meeting_an_import_in_progress_are_refused_promptly_and_sent_again_later(
    engine: AsyncEngine, reference_url: str
) -> None:
    """An operator's import of a whole register holds the import lock, and the records it names,
    for seconds. A write meeting it waits a little, then is refused with a code that says send it
    again (not INTERNAL at the statement timeout, holding its pooled connection until then);
    nothing of it was written, and the same request succeeds once the import has ended."""
    nib, fresh = "7793000000001", "7793000000002"
    async with engine.begin() as connection:
        await import_directly(connection, [(2, draft(nib), ())], total=1)
    msme_id = (await run(engine, KALTENG, HELD, {"nib": nib})).data["msme"]["id"]
    writes = [
        (UPDATE, {"id": msme_id, "version": 1, "changes": {"name": "Warung Sabar"}}),
        (IMPORT, {"rows": [row(fresh)], "mode": "VALID_ROWS"}),
        (ENROL, {"input": {"programmeId": "PR-MBG", "msmeId": msme_id, "role": "recipient"}}),
    ]
    writer = create_engine(as_service(reference_url), statement_timeout_ms=5_000)  # the app's
    try:
        async with engine.begin() as connection:
            # The import in progress, holding its lock and the record it names until it commits.
            await import_directly(connection, [(2, draft(nib), ())], total=1)
            started = asyncio.get_running_loop().time()
            refused = await asyncio.gather(
                *(run(writer, KALTENG, document, given) for document, given in writes)
            )
            waited = asyncio.get_running_loop().time() - started
        assert [answer.errors[0].extensions["code"] for answer in refused] == [
            "SERVICE_UNAVAILABLE"
        ] * 3
        assert waited < 4, "refused well within the statement timeout"
        held = (await run(engine, KALTENG, HELD, {"nib": nib})).data["msme"]
        assert (held["name"], held["version"], held["participations"]) == ("Toko", 1, [])
        assert (await snapshot(engine, fresh))["msmes"] == []

        again = [await run(writer, KALTENG, document, given) for document, given in writes]
    finally:
        await writer.dispose()
    assert [answer.errors for answer in again] == [None] * 3
    assert again[0].data["updateMsme"]["version"] == 2
    assert again[1].data["importMsmes"]["created"] == 1
    held = (await run(engine, KALTENG, HELD, {"nib": nib})).data["msme"]
    assert (held["name"], held["participations"]) == ("Warung Sabar", [{"role": "recipient"}])


async def test_an_import_cannot_reach_outside_the_jurisdiction(engine: AsyncEngine) -> None:
    await do_import(engine, [row("7764000000001")], "VALID_ROWS")
    report = (
        await do_import(
            engine,
            [
                row("7764000000001", region="61.71", district=None),  # Kalteng's record
                row("7764000000002", region="62.01", district=None),  # in Kalteng
            ],
            "VALID_ROWS",
            KALBAR,
        )
    ).data["importMsmes"]
    assert {(error["row"], error["field"]) for error in report["errors"]} == {
        (1, "nib"),
        (2, "region"),
    }
    assert report["created"] == 0
    async with engine.connect() as connection:
        region = await connection.execute(
            text("SELECT regency_code FROM msmes WHERE nib = '7764000000001'")
        )
        assert region.scalar_one() == "62.71"


CODED_IMPORT = IMPORT.replace("errors { row field reason }", "errors { row field reason code }")


async def test_each_row_error_carries_the_code_a_single_write_gets_for_the_same_problem(
    engine: AsyncEngine,
) -> None:
    """A client handles a bad row as it handles the refusal of the same record by `createMsme`:
    the same code on the same field. Rows 1 to 4 are each sent to `createMsme` as well."""
    taken = "7797000000001"
    await do_import(engine, [row(taken, region="61.71", district=None)], "VALID_ROWS", KALBAR)
    rows = [
        row("779700000000"),  # 12 digits
        row(taken),  # Kalbar's NIB
        row("7797000000002", region="61.71", district=None),  # Kalbar's region
        row("7797000000003", region="62.98", district=None),  # no such regency
        row("7797000000004"),
        row("7797000000004", name="Nama Lain"),  # repeats row 5's NIB
    ]
    result = await run(engine, KALTENG, CODED_IMPORT, {"rows": rows, "mode": "ALL_OR_NOTHING"})
    report = result.data["importMsmes"]
    assert [(error["row"], error["field"], error["code"]) for error in report["errors"]] == [
        (1, "nib", "BAD_USER_INPUT"),
        (2, "nib", "CONFLICT"),
        (3, "region", "FORBIDDEN"),
        (4, "region", "BAD_USER_INPUT"),
        (6, "nib", "BAD_USER_INPUT"),
    ]
    for error in report["errors"][:4]:
        single = await run(engine, KALTENG, CREATE, {"input": rows[error["row"] - 1]})
        refused = single.errors[0].extensions
        assert (refused["field"], refused["code"]) == (f"input.{error['field']}", error["code"])


async def test_owner_columns_need_pii_read_and_never_enter_the_history(
    engine: AsyncEngine,
) -> None:
    owner = {"nik": "6271995204880001", "fullName": "Sri Impor"}
    rows = [row("7765000000001", owner=owner)]
    refused = await do_import(engine, rows, "VALID_ROWS")
    assert refused.errors[0].extensions["code"] == "FORBIDDEN"
    assert await snapshot(engine, "7765") == {
        "msmes": [],
        "owners": [],
        "history": [],
        "scales": [],
    }
    done = (await do_import(engine, rows, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert done["created"] == 1
    renamed = [row("7765000000001", owner={**owner, "fullName": "Sri Impor Rahayu"})]
    again = (await do_import(engine, renamed, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (again["updated"], again["unchanged"]) == (1, 0)
    history = (await snapshot(engine, "7765"))["history"]
    assert [entry[4] for entry in history] == [
        ["owner.nik", "owner.full_name"],
        ["owner.full_name"],
    ]
    assert history[1][3] == {}
    assert "6271995204880001" not in str(history)


OWNED_VERSIONS = """
query($nib: String!) { msme(nib: $nib) { id version changes { version personalDataChanged } } }
"""


async def test_an_import_changing_only_the_owner_moves_the_version_as_an_update_does(
    engine: AsyncEngine,
) -> None:
    """A client holding the version before the import's owner change must get CONFLICT, not
    overwrite the owner the import wrote; each change is one version, in the history too."""
    nib = "7792000000001"
    owner = {"nik": "6271995204880005", "fullName": "Sri Versi", "phone": "+6281200000001"}
    await do_import(engine, [row(nib, owner=owner)], "VALID_ROWS", KALTENG_PII)
    phoned = [row(nib, owner={**owner, "phone": "+6281200000002"})]
    report = (await do_import(engine, phoned, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (report["updated"], report["unchanged"]) == (1, 0)
    record = (await run(engine, KALTENG_PII, OWNED_VERSIONS, {"nib": nib})).data["msme"]
    assert record["version"] == 2
    stale = await run(
        engine,
        KALTENG_PII,
        UPDATE,
        {"id": record["id"], "version": 1, "changes": {"owner": owner}},
    )
    assert stale.errors[0].extensions["code"] == "CONFLICT"
    assert stale.errors[0].extensions["currentVersion"] == 2

    # Whatever the row changes, its record moves on by exactly one version.
    both = [row(nib, employees=9, owner={**owner, "phone": "+6281200000003"})]
    await do_import(engine, both, "VALID_ROWS", KALTENG_PII)
    await do_import(
        engine,
        [row(nib, employees=10, owner={**owner, "phone": "+6281200000003"})],
        "VALID_ROWS",
        KALTENG_PII,
    )
    record = (await run(engine, KALTENG_PII, OWNED_VERSIONS, {"nib": nib})).data["msme"]
    assert record["version"] == 4
    assert [(change["version"], change["personalDataChanged"]) for change in record["changes"]] == [
        (1, ["owner.nik", "owner.fullName", "owner.phone"]),
        (2, ["owner.phone"]),
        (3, ["owner.phone"]),
        (4, []),
    ]


async def _subjects_of_latest_entry(engine: AsyncEngine, client_id: str) -> list[str]:
    async with engine.connect() as connection:
        found = await connection.execute(
            text(
                "SELECT subjects FROM audit_log WHERE client_id = :client ORDER BY seq DESC LIMIT 1"
            ),
            {"client": client_id},
        )
        return list(found.scalar_one())


async def test_an_import_that_compares_an_owner_names_the_owner_in_the_audit_log(
    engine: AsyncEngine,
) -> None:
    """A row reported `unchanged` confirms that the owner sent is the one on record: a guessed
    NIK or phone, confirmed without a trace, unless the owner is a subject of the entry."""
    owner = {"nik": "6271995204880003", "fullName": "Sri Tebakan", "phone": "+6281200000777"}
    rows = [row("7791000000001", owner=owner)]
    created = (await do_import(engine, rows, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert created["created"] == 1
    assert await _subjects_of_latest_entry(engine, KALTENG_PII.client_id) == [owner["nik"]]

    guessed = (await do_import(engine, rows, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (guessed["updated"], guessed["unchanged"]) == (0, 1)
    assert await _subjects_of_latest_entry(engine, KALTENG_PII.client_id) == [owner["nik"]]

    # A refused row compared nothing: beside a good row, its owner is no subject.
    refused_owner = {"nik": "6271995204880004", "fullName": "Sri Ditolak"}
    mixed = [
        row("7791000000002", owner=refused_owner, region="61.71", district=None),
        row("7791000000001", owner=owner),
    ]
    report = (await do_import(engine, mixed, "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (report["rejected"], report["unchanged"]) == (1, 1)
    assert await _subjects_of_latest_entry(engine, KALTENG_PII.client_id) == [owner["nik"]]


CODED = IMPORT.replace("errors { row field reason }", "errors { row field reason code }")


async def test_an_import_reads_no_owner_of_a_record_outside_the_jurisdiction(
    engine: AsyncEngine,
) -> None:
    """The stored values a row merges with (`stored_records`) are read inside the importer's
    jurisdiction only, and the records a chunk locks (`locked_records`) with the owner's NIK of
    those inside it only: another province's owner is personal data it may not read, so no
    statement may even select it. Its row is refused as before, on the NIB, from the record
    locked."""
    ours = {"nik": "6271995204880006", "fullName": "Sri Sini"}
    theirs = {"nik": "6171995204880007", "fullName": "Sri Sana", "phone": "+6281200000738"}
    kalbar_pii = principal(OrgKind.PROVINCE, "61", extra=frozenset({Scope.PII_READ}))
    kept = await do_import(engine, [row("7738000000001", owner=ours)], "VALID_ROWS", KALTENG_PII)
    elsewhere = row("7738000000002", owner=theirs, region="61.71", district=None)
    made = (await do_import(engine, [elsewhere], "VALID_ROWS", kalbar_pii)).data["importMsmes"]
    assert (kept.data["importMsmes"]["created"], made["created"]) == (1, 1)

    async with engine.connect() as connection:
        stored = await imports.stored_records(
            connection, RowScope("62"), ["7738000000001", "7738000000002"], [], owners=True
        )
    assert [(record["nib"], record["owner.nik"]) for record in stored] == [
        ("7738000000001", ours["nik"])
    ]
    async with engine.connect() as connection:
        locked = await imports.locked_records(
            connection, RowScope("62"), ["7738000000001", "7738000000002"], []
        )
    assert [(record["nib"], record["owner_nik"]) for record in locked] == [
        ("7738000000001", ours["nik"]),
        ("7738000000002", None),
    ]

    claimed = row("7738000000002", owner={"nik": "6271995204880008", "fullName": "Sri Klaim"})
    result = await run(engine, KALTENG_PII, CODED, {"rows": [claimed], "mode": "VALID_ROWS"})
    assert result.data["importMsmes"]["errors"] == [
        {
            "row": 1,
            "field": "nib",
            "reason": "is registered to a record outside your jurisdiction",
            "code": "CONFLICT",
        }
    ]


async def test_a_row_refused_for_its_values_is_told_its_nib_is_taken_too(
    engine: AsyncEngine,
) -> None:
    """Every problem of a row at once: a row that breaks a rule, or lies outside the
    jurisdiction, and carries a NIB registered elsewhere hears of the NIB now, not only once
    its values are mended."""
    elsewhere = row("7782000000009", region="61.71", district=None)
    assert (await do_import(engine, [elsewhere], "VALID_ROWS", KALBAR)).data["importMsmes"][
        "created"
    ] == 1
    figureless = row("7782000000009", capital=None, annualTurnover=None, turnoverYear=None)
    rows = [
        figureless,
        row("7782000000009", region="64.71", district=None),
        {**figureless, "nib": "7782000000001"},  # free: its one problem is its scale
    ]
    result = await run(engine, KALTENG, CODED, {"rows": rows, "mode": "VALID_ROWS"})
    taken = "is registered to a record outside your jurisdiction"
    assert result.data["importMsmes"]["errors"] == [
        {"row": 1, "field": "nib", "reason": taken, "code": "CONFLICT"},
        {
            "row": 1,
            "field": "scale",
            "reason": "is required when neither capital nor turnover is given",
            "code": "BAD_USER_INPUT",
        },
        {"row": 2, "field": "nib", "reason": taken, "code": "CONFLICT"},
        {
            "row": 2,
            "field": "region",
            "reason": "is outside your jurisdiction (62)",
            "code": "FORBIDDEN",
        },
        {
            "row": 3,
            "field": "scale",
            "reason": "is required when neither capital nor turnover is given",
            "code": "BAD_USER_INPUT",
        },
    ]


async def test_a_row_leaving_fields_out_keeps_them_and_an_explicit_null_clears(
    engine: AsyncEngine,
) -> None:
    """As a file without a column keeps it (and `updateMsme` a field it omits), a row omitting a
    field keeps the stored value, the owner's too; only a null the row sends clears."""
    nib = "7731000000001"
    owner = {
        "nik": "6271995204887731",
        "fullName": "Sri Lengkap",
        "sex": "F",
        "birthDate": "1980-04-12",
        "phone": "+6281277310001",
        "address": "Jl. Lengkap 1",
    }
    full = row(nib, establishedOn="2019-02-01", owner=owner)
    created = (await do_import(engine, [full], "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert created["created"] == 1
    before = await snapshot(engine, "7731")
    required = ("nib", "name", "kbliCode", "region")
    sparse = {key: full[key] for key in required} | {
        "owner": {"nik": owner["nik"], "fullName": owner["fullName"]}
    }
    kept = (await do_import(engine, [sparse], "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (kept["updated"], kept["unchanged"], kept["errors"]) == (0, 1, [])
    assert await snapshot(engine, "7731") == before

    cleared = sparse | {
        "district": None,
        "employees": None,
        "owner": sparse["owner"] | {"phone": None},
    }
    done = (await do_import(engine, [cleared], "VALID_ROWS", KALTENG_PII)).data["importMsmes"]
    assert (done["updated"], done["errors"]) == (1, [])
    history = (await snapshot(engine, "7731"))["history"]
    assert set(history[-1][3]) == {"district_code", "employees"}
    assert history[-1][4] == ["owner.phone"]
