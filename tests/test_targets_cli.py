"""`sinergi targets load FILE.csv`: how a production database gets its planning targets (it
loads none with the reference data), read back as every client reads them, and a file with a
bad row refused whole, naming the row and column."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from db.engine import async_url
from sinergi import targets_cli
from sinergi.cli import main
from tests.support.cli import sinergi
from tests.support.demo_data import demo_clients
from tests.support.http import served

HEADER = "indicator,jurisdiction,year,kind,value,qualifier,year_inferred,source\n"
RPJMD = (
    HEADER
    + "KOP_JUMLAH,62,2025,baseline,3782,,false,RPJMD Kalteng 2025-2029\n"
    + "KOP_JUMLAH,62,2029,target,4200,at_least,false,RPJMD Kalteng 2025-2029\n"
    + "UKM_PROPORSI,62.71,2029,target,4.5,,true,RPJMD Kota Palangka Raya 2025-2029\n"
)
TARGETS = """{
  kop: indicator(code: "KOP_JUMLAH") {
    targets { jurisdiction { code } year kind value qualifier }
  }
  ukm: indicator(code: "UKM_PROPORSI") {
    targets { jurisdiction { code } year kind value yearInferred }
  }
}"""


def _read_back(url: str) -> dict[str, Any]:

    demo_clients(url)
    with served(url) as api:
        answer = api.graphql(TARGETS, "demo-ministry")
    assert "errors" not in answer, answer
    data: dict[str, Any] = answer["data"]
    return data


def test_a_file_of_targets_is_loaded_and_read_back(fresh_url: str, tmp_path: Path) -> None:
    path = tmp_path / "rpjmd.csv"
    path.write_text(RPJMD, encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert "target KOP_JUMLAH 62 2029: 4200 (new)" in out
    assert out.endswith(f"{path}: 3 rows: 3 new, 0 changed, 0 unchanged\n")
    assert _read_back(fresh_url) == {
        "kop": {
            "targets": [
                {"jurisdiction": {"code": "62"}, "year": 2025, "kind": "baseline",
                 "value": "3782", "qualifier": None},
                {"jurisdiction": {"code": "62"}, "year": 2029, "kind": "target",
                 "value": "4200", "qualifier": "at_least"},
            ]
        },
        "ukm": {
            "targets": [
                {"jurisdiction": {"code": "62.71"}, "year": 2029, "kind": "target",
                 "value": "4.5", "yearInferred": True},
            ]
        },
    }  # fmt: skip

    # A revised document: loaded again, its rows replace the values they key, and no more.
    path.write_text(RPJMD.replace(",4200,", ",4300,"), encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    # What it replaced, so an operator sees the load changed the right figures.
    assert (
        "target KOP_JUMLAH 62 2029: 4300 (changed value from 4200 to 4300 "
        "(RPJMD Kalteng 2025-2029))\n" in out
    )
    assert out.endswith("3 rows: 0 new, 1 changed, 2 unchanged\n")
    values = [row["value"] for row in _read_back(fresh_url)["kop"]["targets"]]
    assert values == ["3782", "4300"]


BAD_ROWS = [
    ("NO_SUCH,62,2029,target,1,,false,x", "row 3: indicator: unknown indicator 'NO_SUCH'"),
    ("KOP_JUMLAH,10,2029,target,1,,false,x", "row 3: jurisdiction: unknown region code '10'"),
    ("KOP_JUMLAH,6202,2029,target,1,,false,x", "row 3: jurisdiction: must be"),
    ("KOP_JUMLAH,62.71.01,2029,target,1,,false,x", "row 3: jurisdiction: must be the nation"),
    ("KOP_JUMLAH,62,20299,target,1,,false,x", "row 3: year: must be between 2000 and 2100"),
    ("KOP_JUMLAH,62,2029.5,target,1,,false,x", "row 3: year: must be a year"),
    ("KOP_JUMLAH,62,2029,goal,1,,false,x", "row 3: kind: must be one of baseline, target"),
    ("KOP_JUMLAH,62,2029,realisation,1,,false,x", "row 3: kind: a realisation is not loaded"),
    ("KOP_JUMLAH,62,2029,target,1.5,,false,x", "row 3: value: must be a whole number"),
    ("KOP_JUMLAH,62,2029,target,1_000,,false,x", "row 3: value: must be digits"),
    ("KOP_AKTIF_PERSEN,62,2029,target,250,,false,x", "row 3: value: must be between 0 and 100"),
    ("KOP_JUMLAH,62,2029,target,1,about,false,x", "row 3: qualifier: must be one of"),
    ("KOP_JUMLAH,62,2029,target,1,,yes,x", "row 3: year_inferred: must be true"),
    ("KOP_JUMLAH,62,2029,target,1,,false,", "row 3: source: must not be empty"),
    ("KOP_JUMLAH,62,2025,baseline,1,,false,x", "row 3: sets the baseline of KOP_JUMLAH"),
    ("KOP_JUMLAH,62,2029,target,1,,false", "row 3: fewer fields than the header"),
]


@pytest.mark.parametrize(("row", "refusal"), BAD_ROWS, ids=[r for _, r in BAD_ROWS])
def test_a_bad_row_refuses_the_file_naming_it(
    migrated_url: str, tmp_path: Path, row: str, refusal: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER + "KOP_JUMLAH,62,2025,baseline,3782,,false,RPJMD\n" + row + "\n", encoding="utf-8"
    )
    before = _stored_targets(migrated_url)
    code, out, err = sinergi(migrated_url, "targets", "load", str(path))
    assert (code, out) == (2, "")
    assert err.startswith(f"sinergi: {path}: {refusal}"), err
    assert err.count("\n") == 1
    assert _stored_targets(migrated_url) == before  # nor the good row before it


def test_a_file_without_a_column_or_not_there_is_refused(migrated_url: str, tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("indicator,jurisdiction,year,value\nKOP_JUMLAH,62,2029,1\n", encoding="utf-8")
    code, out, err = sinergi(migrated_url, "targets", "load", str(path))
    assert (code, out, err) == (2, "", f"sinergi: {path}: missing column(s) kind, source\n")
    code, out, err = sinergi(migrated_url, "targets", "load", str(tmp_path / "none.csv"))
    assert (code, out, err) == (2, "", f"sinergi: {tmp_path / 'none.csv'}: no such file\n")


def test_a_file_separated_by_semicolons_is_named_as_such(migrated_url: str, tmp_path: Path) -> None:
    """Excel in a locale whose decimal mark is the comma (Indonesian) saves ';'-separated CSV:
    `import msmes` names the separator, where `targets load` listed every column as missing."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(RPJMD.replace(",", ";"), encoding="utf-8")
    code, out, err = sinergi(migrated_url, "targets", "load", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"sinergi: {path}: the file seems to use ';' as separator; save it as comma-separated"
        " CSV (CSV UTF-8) and retry\n"
    )


def test_a_decimal_comma_is_refused_not_shifted_into_the_source(
    migrated_url: str, tmp_path: Path
) -> None:
    """An unquoted Indonesian decimal comma (3,84) makes one more field: it was read as a value
    of 3 and a source of '84', the document's name dropped, and the load said nothing."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(
        "indicator,jurisdiction,year,kind,value,source\n"
        "UKM_PROPORSI,62,2029,target,3,84,RPJMD Kalteng 2025-2029\n",
        encoding="utf-8",
    )
    before = _stored_targets(migrated_url)
    code, out, err = sinergi(migrated_url, "targets", "load", str(path))
    assert (code, out) == (2, "")
    assert err == (
        f"sinergi: {path}: row 2: more fields than the header (a decimal comma? write 3.84, not "
        '3,84; a comma in the source? quote it: "RPJMD Kalteng, 2025-2029")\n'
    )
    assert _stored_targets(migrated_url) == before


BAD_HEADERS = [
    (
        "indicator,jurisdiction,year,kind,value,qualifer,source",
        "unknown column(s) 'qualifer'; the columns are indicator, jurisdiction, year, kind, value, "
        "qualifier, year_inferred, source",
    ),
    (
        "indicator,jurisdiction,year,kind,value,value,source",
        "column(s) value named more than once",
    ),
    (
        "indicator,jurisdiction,year,kind,value,source,",
        "unknown column(s) one without a name (a ',' ending the header?); the columns are "
        "indicator, jurisdiction, year, kind, value, qualifier, year_inferred, source",
    ),
]


@pytest.mark.parametrize(("header", "refusal"), BAD_HEADERS, ids=["misspelt", "twice", "unnamed"])
def test_a_header_with_an_unknown_or_repeated_column_is_refused(
    migrated_url: str, tmp_path: Path, header: str, refusal: str
) -> None:
    """A misspelt optional column was read as left out, its cells ignored; of two `value`
    columns the last was loaded. Either way the file loaded without a word."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(f"{header}\nKOP_JUMLAH,62,2029,target,4200,at_least,RPJMD\n", encoding="utf-8")
    code, out, err = sinergi(migrated_url, "targets", "load", str(path))
    assert (code, out, err) == (2, "", f"sinergi: {path}: {refusal}\n")


def test_a_column_left_out_keeps_what_is_stored(fresh_url: str, tmp_path: Path) -> None:
    """A file without `qualifier` or `year_inferred` leaves them as stored, as `import msmes`
    leaves a column its file lacks (an empty cell clears); the printout names every field a row
    changed, where it named the value and source only."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(RPJMD, encoding="utf-8")
    assert sinergi(fresh_url, "targets", "load", str(path))[0] == 0

    path.write_text(
        "indicator,jurisdiction,year,kind,value,source\n"
        "KOP_JUMLAH,62,2029,target,4200,RPJMD Kalteng 2025-2029\n"
        "UKM_PROPORSI,62.71,2029,target,4.5,RPJMD Kota Palangka Raya 2025-2029\n",
        encoding="utf-8",
    )
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert out.endswith("2 rows: 0 new, 0 changed, 2 unchanged\n")
    read = _read_back(fresh_url)
    assert read["kop"]["targets"][1]["qualifier"] == "at_least"
    assert read["ukm"]["targets"][0]["yearInferred"] is True

    # A present column's empty cell clears; each field changed is named, with what it was.
    path.write_text(
        "indicator,jurisdiction,year,kind,value,qualifier,source\n"
        "KOP_JUMLAH,62,2029,target,4200,,RPJMD Kalteng 2025-2029\n"
        "UKM_PROPORSI,62.71,2029,target,4.6,,RPJMD Kota Palangka Raya 2026-2030\n",
        encoding="utf-8",
    )
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert (
        "target KOP_JUMLAH 62 2029: 4200 (changed qualifier from at_least to none "
        "(RPJMD Kalteng 2025-2029))\n" in out
    )
    assert (
        "target UKM_PROPORSI 62.71 2029: 4.6 (changed value from 4.5 to 4.6, source from "
        "RPJMD Kota Palangka Raya 2025-2029 to RPJMD Kota Palangka Raya 2026-2030)\n" in out
    )
    assert out.endswith("2 rows: 0 new, 2 changed, 0 unchanged\n")
    read = _read_back(fresh_url)
    assert read["kop"]["targets"][1]["qualifier"] is None
    assert read["ukm"]["targets"][0]["yearInferred"] is True


def _stored_targets(url: str) -> int:
    from sqlalchemy import func, select

    from db.models import TARGETS

    async def count() -> int:
        engine = create_async_engine(async_url(url))
        async with engine.connect() as connection:
            found = await connection.scalar(select(func.count()).select_from(TARGETS))
        await engine.dispose()
        return int(found or 0)

    return asyncio.run(count())


def test_a_ministrys_file_of_twenty_thousand_rows_loads(fresh_url: str, tmp_path: Path) -> None:
    """An RPJMN's targets per province and regency run to tens of thousands of rows: the load
    compared them with the stored ones in one condition naming each row's key, and PostgreSQL
    refused it ("stack depth limit exceeded") from about 7,500."""
    seed = Path(__file__).parent.parent / "sinergi" / "seed_data"
    with (seed / "indicators.csv").open(encoding="utf-8") as handle:
        indicators = [row["code"] for row in csv.DictReader(handle)]
    with (seed / "regions.csv").open(encoding="utf-8") as handle:
        regions = [row["code"] for row in csv.DictReader(handle)]
    rows = [
        f"{indicator},{region},{year},target,1,,false,RPJMN 2025-2029\n"
        for indicator in indicators
        for region in regions
        for year in (2027, 2028, 2029)
    ]
    assert len(rows) > 19_000
    path = tmp_path / "rpjmn.csv"
    path.write_text(HEADER + "".join(rows), encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert out.endswith(f"{path}: {len(rows)} rows: {len(rows)} new, 0 changed, 0 unchanged\n")
    assert _stored_targets(fresh_url) >= len(rows)


def test_two_loads_at_once_each_report_what_they_did(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bug: two loads of the same rows at once both read nothing stored, both reported
    "new", and the second replaced the first's values unsaid. The first load here waits
    (for a while) between reading what is stored and storing, for the second to read."""
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    first.write_text(HEADER + "KOP_JUMLAH,62,2029,target,4200,,false,doc 1\n", encoding="utf-8")
    second.write_text(HEADER + "KOP_JUMLAH,62,2029,target,4300,,false,doc 2\n", encoding="utf-8")
    second_has_read = threading.Event()
    readings = 0
    reading, storing = targets_cli._stored, targets_cli.store_targets

    async def stored(*args: Any) -> Any:
        nonlocal readings
        readings += 1
        if readings == 2:
            second_has_read.set()
        return await reading(*args)

    async def store(*args: Any) -> None:
        if not second_has_read.is_set():
            await asyncio.to_thread(second_has_read.wait, 3)
        await storing(*args)

    monkeypatch.setattr(targets_cli, "_stored", stored)
    monkeypatch.setattr(targets_cli, "store_targets", store)
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": fresh_url}), redirect_stdout(out):
        loads = [
            threading.Thread(target=main, args=(["targets", "load", str(path)],))
            for path in (first, second)
        ]
        loads[0].start()
        time.sleep(0.5)  # the first has read and waits in store
        loads[1].start()
        for load in loads:
            load.join()
    assert f"{first}: 1 rows: 1 new, 0 changed, 0 unchanged" in out.getvalue()
    assert f"{second}: 1 rows: 0 new, 1 changed, 0 unchanged" in out.getvalue()
    assert "4300 (changed value from 4200 to 4300, source from doc 1 to doc 2)" in out.getvalue()


def test_a_replaced_value_is_printed_as_a_targets_file_writes_it(
    fresh_url: str, tmp_path: Path
) -> None:
    """The value replaced came back from the database as 2.220E+11, which the loader itself
    refuses: the operator putting it back would copy a figure no file may hold."""
    path = tmp_path / "rpjmn.csv"
    row = "KOP_PRODUKSI_VOLUME,62,2029,target,{},,false,RPJMN 2025-2029\n"
    for value in ("222000000000", "100"):
        path.write_text(HEADER + row.format(value), encoding="utf-8")
        assert sinergi(fresh_url, "targets", "load", str(path))[0] == 0
    path.write_text(HEADER + row.format("300"), encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert "300 (changed value from 100 to 300 (RPJMN 2025-2029))" in out
    path.write_text(HEADER + row.format("222000000000"), encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    assert "222000000000 (changed value from 300 to 222000000000 (RPJMN 2025-2029))" in out
    path.write_text(HEADER + row.format("100"), encoding="utf-8")
    code, out, err = sinergi(fresh_url, "targets", "load", str(path))
    assert (code, err) == (0, "")
    shown = "100 (changed value from 222000000000 to 100 (RPJMN 2025-2029))"
    assert f"target KOP_PRODUKSI_VOLUME 62 2029: {shown}" in out


def test_a_load_behind_another_is_one_line(fresh_url: str, tmp_path: Path) -> None:
    """A load waiting for another's lock on the targets was cancelled by the CLI's 30 s
    statement timeout, a traceback; it now gives up after a few seconds, saying why, and
    loads nothing."""
    path = tmp_path / "rpjmd.csv"
    path.write_text(RPJMD, encoding="utf-8")
    loop = asyncio.new_event_loop()
    holder = loop.run_until_complete(asyncpg.connect(fresh_url))
    try:
        loop.run_until_complete(
            holder.execute("BEGIN; LOCK TABLE targets IN SHARE ROW EXCLUSIVE MODE")
        )
        started = time.monotonic()
        code, out, err = sinergi(fresh_url, "targets", "load", str(path))
        assert time.monotonic() - started < 20
    finally:
        loop.run_until_complete(holder.close())
        loop.close()
    assert (code, out) == (1, "")
    assert err == (
        "sinergi targets load: another load of targets is running; run it again once that one"
        " has finished\n"
    )
    assert _stored_targets(fresh_url) == 0
