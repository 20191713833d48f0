"""`sinergi import msmes` with businesses registered by Surat Keterangan Usaha: a row is keyed
by its NIB, else by its SKU, under the rules `createMsme` and `updateMsme` apply to an SKU."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.test_import_cli import fetch, sinergi, table_lines

HEADER = "nib,sku_number,sku_issuer,name,kbli,region,district,capital,turnover,turnover_year\n"
PAHANDUT = "62.71.01"  # a kecamatan of Palangka Raya (62.71)
FIGURES = "50000000,240000000,2025"


def row(nib: str, number: str, issuer: str, name: str = "Warung SKU", **place: str) -> str:
    region, district = place.get("region", "62.71"), place.get("district", PAHANDUT)
    return f"{nib},{number},{issuer},{name},10794,{region},{district},{FIGURES}\n"


def run(
    url: str,
    tmp_path: Path,
    *lines: str,
    header: str = HEADER,
    all_or_nothing: bool = False,
    **options: str,
) -> Any:
    path = tmp_path / "register.csv"
    path.write_text(header + "".join(lines), encoding="utf-8")
    jurisdiction = options.get("jurisdiction", "62")
    mode = ["--all-or-nothing"] if all_or_nothing else []
    return sinergi(url, str(path), "--jurisdiction", jurisdiction, *mode)


def rejected(result: Any) -> list[tuple[int, str, str]]:
    """(row, column, code) of each rejected row the command printed."""
    found = []
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0].isdigit():
            found.append((int(cells[0]), cells[1], cells[3]))
    return found


def records(url: str, issuer_prefix: str) -> list[tuple[Any, ...]]:
    return fetch(
        url,
        "SELECT nib, sku_number, sku_issuer, name, version FROM msmes"
        " WHERE sku_issuer LIKE $1 OR nib IN (SELECT nib FROM msmes WHERE sku_issuer LIKE $1)"
        " ORDER BY id",
        f"{issuer_prefix}%",
    )


def history(url: str, sku_number: str) -> list[dict[str, Any]]:
    """The record's history entries' changes, oldest first."""
    return [
        json.loads(changes) if isinstance(changes, str) else changes
        for (changes,) in fetch(
            url,
            "SELECT c.changes FROM record_history c JOIN msmes m ON m.id = c.record_id"
            " WHERE c.record_kind = 'msme' AND m.sku_number = $1 ORDER BY c.version",
            sku_number,
        )
    ]


def test_a_business_registered_by_sku_alone_is_imported_in_the_skus_one_spelling(
    reference_url: str, tmp_path: Path
) -> None:
    created = run(reference_url, tmp_path, row("", " imp/ 1 /2025 ", "62.71.01.1101"))
    assert created.returncode == 0, created.stdout + created.stderr
    assert "1 rows: 1 created" in created.stdout
    assert records(reference_url, "62.71.01.1101") == [
        (None, "IMP/ 1 /2025", "62.71.01.1101", "Warung SKU", 1)
    ]
    (creation,) = history(reference_url, "IMP/ 1 /2025")
    assert creation["sku_number"] == {"before": None, "after": "IMP/ 1 /2025"}
    assert creation["sku_issuer"] == {"before": None, "after": "62.71.01.1101"}
    again = run(reference_url, tmp_path, row("", "IMP/ 1 /2025", "62.71.01.1101"))
    assert "1 rows: 0 created, 0 updated, 1 unchanged" in again.stdout, again.stdout


def test_a_file_carrying_the_new_nib_of_a_business_registered_by_sku_gives_it_that_nib(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: the row created a second record of the business, whose SKU the first holds.
    The business is registered as `createMsme` registers it (a test of its own before imports
    took SKUs)."""
    fetch(
        reference_url,
        "INSERT INTO msmes (sku_number, sku_issuer, name, kbli_code, kbli_section, scale,"
        " province_code, regency_code, district_code, capital, annual_turnover, turnover_year)"
        " VALUES ('IMP/2/2025', '62.71.01.1102', 'Warung SKU', '10794', 'C', 'micro', '62',"
        " '62.71', '62.71.01', 50000000, 240000000, 2025)",
    )
    given = run(reference_url, tmp_path, row("7777000000002", "imp/2/2025", "62.71.01.1102"))
    assert given.returncode == 0, given.stdout + given.stderr
    assert "1 rows: 0 created, 1 updated" in given.stdout, given.stdout
    assert records(reference_url, "62.71.01.1102") == [
        ("7777000000002", "IMP/2/2025", "62.71.01.1102", "Warung SKU", 2)
    ]
    assert history(reference_url, "IMP/2/2025")[-1] == {
        "nib": {"before": None, "after": "7777000000002"}
    }
    feed = fetch(
        reference_url,
        "SELECT l.operation FROM change_log l JOIN msmes m ON l.record_id = m.id::text"
        " WHERE l.record_kind = 'msme' AND m.nib = '7777000000002' ORDER BY l.id",
    )
    assert feed == [("insert",), ("update",)]
    # Keyed by its SKU, a row without the NIB leaves the NIB as stored.
    renamed = run(reference_url, tmp_path, row("", "IMP/2/2025", "62.71.01.1102", "Warung Baru"))
    assert "1 rows: 0 created, 1 updated" in renamed.stdout, renamed.stdout
    assert records(reference_url, "62.71.01.1102")[0][:4] == (
        "7777000000002",
        "IMP/2/2025",
        "62.71.01.1102",
        "Warung Baru",
    )


def test_a_nib_and_an_sku_held_by_two_businesses_are_refused_and_nothing_is_merged(
    reference_url: str, tmp_path: Path
) -> None:
    both = run(
        reference_url,
        tmp_path,
        row("7777000000003", "IMP/3A/2025", "62.71.01.1103"),
        row("", "IMP/3B/2025", "62.71.01.1103"),
        row("7777000000004", "IMP/3C/2025", "62.71.01.1103"),
    )
    assert both.returncode == 0, both.stdout + both.stderr
    before = records(reference_url, "62.71.01.1103")
    crossed = run(
        reference_url,
        tmp_path,
        row("7777000000003", "IMP/3B/2025", "62.71.01.1103"),  # two records
        row("7777000000005", "IMP/3C/2025", "62.71.01.1103"),  # its SKU's has another NIB
    )
    assert crossed.returncode == 1, crossed.stdout + crossed.stderr
    assert rejected(crossed) == [(2, "sku_number", "CONFLICT"), (3, "nib", "CONFLICT")]
    assert records(reference_url, "62.71.01.1103") == before
    twice = run(
        reference_url,
        tmp_path,
        row("7777000000003", "", ""),
        row("", "IMP/3A/2025", "62.71.01.1103"),  # row 2's record, named by its other key
    )
    assert rejected(twice) == [(3, "sku_number", "BAD_USER_INPUT")]
    assert "is the SKU of the business row 2 changes" in twice.stdout
    assert [record[:3] for record in records(reference_url, "62.71.01.1103")] == [
        (None, "IMP/3B/2025", "62.71.01.1103"),
        ("7777000000004", "IMP/3C/2025", "62.71.01.1103"),
    ]  # row 2 cleared the first record's SKU, which keeps its NIB
    assert fetch(reference_url, "SELECT sku_number FROM msmes WHERE nib = '7777000000003'") == [
        (None,)
    ]


@pytest.mark.parametrize("between", [0, 1_100], ids=["one chunk", "two chunks"])
def test_an_sku_an_earlier_row_changes_is_refused_however_far_apart_the_rows_are(
    reference_url: str, tmp_path: Path, between: int
) -> None:
    issuer = "62.71.01.1121" if between else "62.71.01.1120"
    skus = [f"IMP/{between}/{label}" for label in ("A", "B", "A2")]
    nibs = [f"77980{between:04d}000{index}" for index in range(3)]
    setup = run(
        reference_url,
        tmp_path,
        row(nibs[0], skus[0], issuer),
        row(nibs[1], skus[1], issuer),
        row(nibs[2], "", ""),
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    filler = [row(f"77940{between:04d}{index:04d}", "", "") for index in range(between)]
    later = 4 + between  # the rows after the header, the two changes and the filler
    result = run(
        reference_url,
        tmp_path,
        row(nibs[0], skus[2], issuer),  # row 2 gives the first business another SKU
        row(nibs[1], "", ""),  # row 3 clears the second's
        *filler,
        row("", skus[0], issuer),  # would be a new business, or the first one
        row(nibs[2], skus[1], issuer),  # would give the third business the second's old SKU
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert rejected(result) == [
        (later, "sku_number", "BAD_USER_INPUT"),
        (later + 1, "sku_number", "BAD_USER_INPUT"),
    ]
    printed = " ".join(result.stdout.split())
    assert "is the SKU of the business row 2 changes" in printed
    assert "is the SKU of the business row 3 changes" in printed
    assert fetch(
        reference_url,
        "SELECT nib, sku_number FROM msmes WHERE sku_issuer = $1 OR nib = ANY($2) ORDER BY nib",
        issuer,
        nibs,
    ) == [(nibs[0], skus[2]), (nibs[1], None), (nibs[2], None)]


@pytest.mark.parametrize("between", [0, 1_100], ids=["one chunk", "two chunks"])
def test_an_sku_a_refused_row_would_have_changed_is_not_said_to_be_changed(
    reference_url: str, tmp_path: Path, between: int
) -> None:
    """Row 2 clears its business's SKU, and is refused later in its chunk (a kecamatan that
    does not exist), so the SKU stays the business's. A later row carrying that SKU was still
    refused as "the SKU of the business row 2 changes", a change never written: it names the
    business row 2 names, and is told so, one chunk apart or two."""
    issuer = "62.71.01.1131" if between else "62.71.01.1130"
    nib, sku = f"77991{between:04d}0000", f"IMP/{between}/KEPT"
    setup = run(reference_url, tmp_path, row(nib, sku, issuer))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    filler = [row(f"77992{between:04d}{index:04d}", "", "") for index in range(between)]
    later = 3 + between  # the rows after the header, the refused change and the filler
    result = run(
        reference_url,
        tmp_path,
        row(nib, "", "", district="62.71.99"),  # clears the SKU, in no kecamatan there is
        *filler,
        row("", sku, issuer, "Warung Lain"),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert rejected(result) == [
        (2, "district", "BAD_USER_INPUT"),
        (later, "sku_number", "BAD_USER_INPUT"),
    ]
    printed = " ".join(result.stdout.split())
    assert "names the business row 2 names" in printed, printed
    assert "changes" not in printed, printed
    assert records(reference_url, issuer) == [(nib, sku, issuer, "Warung SKU", 1)]


@pytest.mark.parametrize("between", [0, 1_100], ids=["one chunk", "two chunks"])
def test_all_or_nothing_refuses_an_sku_an_earlier_row_changes_after_a_refused_row(
    reference_url: str, tmp_path: Path, between: int
) -> None:
    """With --all-or-nothing, once a row is refused the later chunks are only checked; they
    still know which SKUs the rows that would have been written take from their businesses:
    a row carrying one is refused as it is in one chunk, not as a conflict on its NIB."""
    issuer = "62.71.01.1141" if between else "62.71.01.1140"
    nib, new_nib = f"77993{between:04d}0000", f"77993{between:04d}0001"
    sku = f"IMP/{between}/MOVED"
    setup = run(reference_url, tmp_path, row(nib, sku, issuer))
    assert setup.returncode == 0, setup.stdout + setup.stderr
    filler = [row(f"77994{between:04d}{index:04d}", "", "") for index in range(between)]
    later = 4 + between  # the rows after the header, the refused row, the change and the filler
    result = run(
        reference_url,
        tmp_path,
        row(f"77995{between:04d}0000", "", "", district="62.71.99"),  # refused: no kecamatan
        row(nib, f"IMP/{between}/NEW", issuer),  # row 3 gives the business another SKU
        *filler,
        row(new_nib, sku, issuer, "Warung Lain"),  # carries the SKU row 3 takes
        all_or_nothing=True,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert rejected(result) == [
        (2, "district", "BAD_USER_INPUT"),
        (later, "sku_number", "BAD_USER_INPUT"),
    ]
    assert "is the SKU of the business row 3 changes" in " ".join(result.stdout.split())
    assert records(reference_url, issuer) == [(nib, sku, issuer, "Warung SKU", 1)]


def test_a_row_needs_a_nib_or_a_whole_sku_each_named_once_in_the_file(
    reference_url: str, tmp_path: Path
) -> None:
    result = run(
        reference_url,
        tmp_path,
        row("", "", ""),
        row("", "IMP/4/2025", ""),
        row("", "", "62.71.01.1104"),
        row("", "IMP/5/2025", "62.71.01.1104"),
        row("7777000000006", " imp/5/2025", "62.71.01.1104"),
        row("", "IMP/6/2025", "62.71.99.1001", district=""),  # a kecamatan no one knows
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert rejected(result) == [
        (2, "nib", "BAD_USER_INPUT"),
        (3, "sku_issuer", "BAD_USER_INPUT"),
        (4, "sku_number", "BAD_USER_INPUT"),
        (6, "sku_number", "BAD_USER_INPUT"),
        (7, "sku_issuer", "BAD_USER_INPUT"),
    ]
    assert "repeats the SKU of row 5" in " ".join(result.stdout.split())
    assert [record[:3] for record in records(reference_url, "62.71.01.1104")] == [
        (None, "IMP/5/2025", "62.71.01.1104")
    ]


def test_a_file_without_the_sku_columns_keeps_stored_skus_and_empty_cells_clear_one(
    reference_url: str, tmp_path: Path
) -> None:
    run(reference_url, tmp_path, row("7777000000007", "IMP/7/2025", "62.71.01.1107"))
    plain = "nib,name,kbli,region,district,capital,turnover,turnover_year\n"
    kept = run(
        reference_url,
        tmp_path,
        f"7777000000007,Warung Lama,10794,62.71,{PAHANDUT},{FIGURES}\n",
        header=plain,
    )
    assert "1 rows: 0 created, 1 updated" in kept.stdout, kept.stdout
    assert records(reference_url, "62.71.01.1107")[0][:4] == (
        "7777000000007",
        "IMP/7/2025",
        "62.71.01.1107",
        "Warung Lama",
    )
    cleared = run(reference_url, tmp_path, row("7777000000007", "", "", "Warung Lama"))
    assert "1 rows: 0 created, 1 updated" in cleared.stdout, cleared.stdout
    assert fetch(reference_url, "SELECT sku_number FROM msmes WHERE nib = '7777000000007'") == [
        (None,)
    ]
    (change,) = fetch(
        reference_url,
        "SELECT c.changes FROM record_history c JOIN msmes m ON m.id = c.record_id"
        " WHERE c.record_kind = 'msme' AND m.nib = '7777000000007' ORDER BY c.version DESC"
        " LIMIT 1",
    )
    assert json.loads(change[0]) == {
        "sku_number": {"before": "IMP/7/2025", "after": None},
        "sku_issuer": {"before": "62.71.01.1107", "after": None},
    }


def test_a_header_with_half_an_sku_or_neither_a_nib_nor_an_sku_is_refused_whole(
    reference_url: str, tmp_path: Path
) -> None:
    half = run(reference_url, tmp_path, header="sku_number,name,kbli,region\n")
    assert half.returncode == 2
    assert "missing column(s) nib, sku_issuer" in half.stderr
    neither = run(reference_url, tmp_path, header="name,kbli,region\n")
    assert "missing column(s) nib" in neither.stderr


def test_a_regency_cannot_import_an_sku_of_another_regencys_village_nor_claim_one_held_there(
    reference_url: str, tmp_path: Path
) -> None:
    """Palangka Raya's operator: an SKU of Kotawaringin Barat's village (62.01) on a business of
    its own is refused as createMsme refuses it, and so is one of another province's village,
    held by a record there or not: the answer is the same, and the record is left alone."""
    kalbar = "61.71.01.1108"
    held = run(
        reference_url,
        tmp_path,
        row("", "IMP/8/2025", kalbar, "Toko Kalbar", region="61.71", district="61.71.01"),
        jurisdiction="61",
    )
    assert held.returncode == 0, held.stdout + held.stderr
    before = records(reference_url, kalbar)
    attack = run(
        reference_url,
        tmp_path,
        row("", "IMP/8/2025", "62.01.05.2001"),
        row("", "IMP/8/2025", kalbar),  # held in Kalimantan Barat
        row("", "IMP/8/2025", "61.71.01.1109"),  # held by no one
        row("7777000000008", "IMP/8/2025", kalbar),
        row("", "IMP/8/2025", kalbar, region="61.71", district="61.71.01"),
        jurisdiction="62.71",
    )
    assert attack.returncode == 1, attack.stdout + attack.stderr
    assert rejected(attack) == [
        (2, "sku_issuer", "BAD_USER_INPUT"),
        (3, "sku_issuer", "BAD_USER_INPUT"),
        (4, "sku_issuer", "BAD_USER_INPUT"),
        (5, "sku_issuer", "BAD_USER_INPUT"),
        (6, "region", "FORBIDDEN"),
    ]
    lines = table_lines(attack)
    reasons = {line.split("│")[3].strip() for line in lines if line.startswith(("│ 3", "│ 4"))}
    assert reasons == {"is not a desa/kelurahan of 62.71.01"}
    assert records(reference_url, kalbar) == before
    assert fetch(reference_url, "SELECT count(*) FROM msmes WHERE sku_number = 'IMP/8/2025'") == [
        (1,)
    ]


def test_a_nib_another_province_holds_is_a_conflict_and_its_sku_is_not_written(
    reference_url: str, tmp_path: Path
) -> None:
    kalbar = run(
        reference_url,
        tmp_path,
        row("7777000000009", "", "", "Toko Kalbar", region="61.71", district="61.71.01"),
        jurisdiction="61",
    )
    assert kalbar.returncode == 0, kalbar.stdout + kalbar.stderr
    claimed = run(reference_url, tmp_path, row("7777000000009", "IMP/9/2025", "62.71.01.1110"))
    assert rejected(claimed) == [(2, "nib", "CONFLICT")]
    assert fetch(
        reference_url, "SELECT sku_number, regency_code FROM msmes WHERE nib = '7777000000009'"
    ) == [(None, "61.71")]
    assert fetch(reference_url, "SELECT id FROM msmes WHERE sku_number = 'IMP/9/2025'") == []
