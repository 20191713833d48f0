"""`sinergi import msmes` as an operator runs it: a real process against real PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import getpass
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "docs" / "import-sample.csv"
HEADER = "nib,name,kbli,region,district,established,capital,turnover,turnover_year,employees\n"


def sinergi(url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "import", "msmes", *args],
        env={**os.environ, "DATABASE_URL": url, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def table_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What the command printed, each line's padding collapsed, so that a test finds a row's
    problem whatever widths the table's columns took."""
    return [" ".join(line.split()) for line in result.stdout.splitlines()]


def assert_reported(result: subprocess.CompletedProcess[str], *problems: str) -> None:
    """Each problem ("row │ column │ reason …") is on a line of the printed table."""
    lines = table_lines(result)
    for problem in problems:
        assert any(problem in line for line in lines), result.stdout


def fetch(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    async def query() -> list[tuple[Any, ...]]:
        connection = await asyncpg.connect(url)
        try:
            return [tuple(row) for row in await connection.fetch(sql, *args)]
        finally:
            await connection.close()

    return asyncio.run(query())


def state(url: str, prefix: str) -> list[Any]:
    return [
        fetch(url, "SELECT * FROM msmes WHERE nib LIKE $1 ORDER BY nib", f"{prefix}%"),
        fetch(
            url,
            "SELECT o.* FROM msme_owners o JOIN msmes m ON m.id = o.msme_id"
            " WHERE m.nib LIKE $1 ORDER BY o.msme_id",
            f"{prefix}%",
        ),
        fetch(
            url,
            "SELECT c.record_id, c.version, c.changes FROM record_history c"
            " JOIN msmes m ON m.id = c.record_id"
            " WHERE c.record_kind = 'msme' AND m.nib LIKE $1 ORDER BY c.id",
            f"{prefix}%",
        ),
    ]


def test_the_sample_file_imports_and_importing_it_again_changes_nothing(
    reference_url: str,
) -> None:
    first = sinergi(reference_url, str(SAMPLE), "--jurisdiction", "62")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 rows: 3 created, 0 updated, 0 unchanged, 0 rejected" in first.stdout
    once = state(reference_url, "9997")
    assert len(once[0]) == 3
    assert len(once[1]) == 2  # the third row has no owner
    history = fetch(
        reference_url,
        "SELECT DISTINCT client_id FROM record_history c JOIN msmes m ON m.id = c.record_id"
        " WHERE c.record_kind = 'msme' AND m.nib LIKE '9997%'",
    )
    assert [client for (client,) in history] == [f"cli:{getpass.getuser()}"]

    second = sinergi(reference_url, str(SAMPLE), "--jurisdiction", "62")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "3 rows: 0 created, 0 updated, 3 unchanged, 0 rejected; nothing written" in second.stdout
    assert state(reference_url, "9997") == once


def test_the_sample_file_gives_no_demo_owner_s_nik_another_name() -> None:
    """Imported into the demo, the sample made one NIK two people: Sri Contoh Rahayu of
    9990000000001 and Sri Sampel Rahayu of the sample's first row."""

    def owners(path: Path) -> dict[str, str]:
        with path.open(encoding="utf-8", newline="") as handle:
            return {
                r["owner_nik"]: r["owner_name"] for r in csv.DictReader(handle) if r["owner_nik"]
            }

    demo = owners(ROOT / "sinergi" / "seed_data" / "demo-msmes.csv")
    sample = owners(SAMPLE)
    assert sample
    assert {
        nik: (name, demo[nik]) for nik, name in sample.items() if demo.get(nik, name) != name
    } == {}


def test_an_import_before_the_first_serve_makes_no_key_and_is_refused(
    fresh_url: str, tmp_path: Path
) -> None:
    """It made a key in the operator's SINERGI_HOME and recorded its fingerprint, after which
    `serve` with the service's own key was refused for good (WrongAuditKey)."""
    home = tmp_path / "operator"
    refused = sinergi(fresh_url, str(SAMPLE), "--jurisdiction", "62", SINERGI_HOME=str(home))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "start `sinergi serve` once first" in refused.stderr
    assert "SINERGI_AUDIT_KEY_FILE" not in refused.stderr  # giving the key cannot help here
    assert not home.exists()
    assert fetch(fresh_url, "SELECT count(*) FROM audit_key_fingerprint") == [(0,)]


def test_an_import_with_another_key_than_the_servers_is_refused(
    reference_url: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.key"
    other.write_text("ab" * 32 + "\n")
    other.chmod(0o600)
    refused = sinergi(
        reference_url, str(SAMPLE), "--jurisdiction", "62", SINERGI_AUDIT_KEY_FILE=str(other)
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "the audit key is not this database's" in refused.stderr


def test_a_file_with_bad_rows_reports_each_and_all_or_nothing_writes_nothing(
    reference_url: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "7767000000001,Toko Baik,47112,62.71,62.71.03,2020-01-01,10000000,90000000,2025,1\n"
        + "7767000000002,Toko Modal,47112,62.71,,2020-01-01,sepuluh juta,90000000,2025,1\n"
        + "7767000000003,Toko Jauh,47112,61.71,,2020-01-01,10000000,90000000,2025,1\n"
        + "7767000000004,Toko Tanggal,47112,62.71,,01/02/2020,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    refused = sinergi(reference_url, str(bad), "--jurisdiction", "62", "--all-or-nothing")
    assert refused.returncode == 1
    assert_reported(
        refused,
        "3 │ capital │ must be a whole number in digits (thousands may be grouped by . or ,)",
        "4 │ region │ is outside your jurisdiction (62)",
        "5 │ established │ must be a date written YYYY-MM-DD",
    )
    assert "nothing written (all-or-nothing)" in refused.stdout
    assert state(reference_url, "7767") == [[], [], []]

    partial = sinergi(reference_url, str(bad), "--jurisdiction", "62")
    assert partial.returncode == 1
    assert "4 rows: 1 created, 0 updated, 0 unchanged, 3 rejected; written" in partial.stdout
    assert [row[1] for row in state(reference_url, "7767")[0]] == ["7767000000001"]


def test_each_rejected_row_is_reported_with_the_code_the_mutation_gives_it(
    reference_url: str, tmp_path: Path
) -> None:
    """As `importMsmes` answers each row error with its code, so does the command."""
    taken = tmp_path / "kalbar.csv"
    taken.write_text(
        HEADER + "7797000000101,Toko Kalbar,47112,61.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    assert sinergi(reference_url, str(taken), "--jurisdiction", "61").returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + "779700000010,Toko Pendek,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n"
        + "7797000000101,Toko Sama,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n"
        + "7797000000102,Toko Jauh,47112,61.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    refused = sinergi(reference_url, str(bad), "--jurisdiction", "62")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert_reported(
        refused,
        "2 │ nib │ must be exactly 13 digits │ BAD_USER_INPUT │",
        "3 │ nib │ is registered to a record outside your jurisdiction │ CONFLICT │",
        "4 │ region │ is outside your jurisdiction (62) │ FORBIDDEN │",
    )


def test_a_cell_that_does_not_parse_is_reported_with_the_rows_other_problems(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: an unreadable cell hid every other problem of its row, so the operator fixed
    a row one error per run (the mutation reports them all at once)."""
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER + "776700000009,Toko Dua Salah,47112,62.71,,2020-01-01,sepuluh juta,,2025,1\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(bad), "--jurisdiction", "62")
    assert result.returncode == 1
    assert_reported(
        result,
        "2 │ capital │ must be a whole number in digits (thousands may be grouped by . or ,)",
        "2 │ nib │ must be exactly 13 digits",
    )
    # A run that wrote nothing says so, though not in all-or-nothing mode.
    assert "1 rows: 0 created, 0 updated, 0 unchanged, 1 rejected; nothing written" in result.stdout


def test_a_number_that_is_not_read_is_reported_saying_what_is_wrong_with_it(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: each was "must be a whole number (digits only)", though separators are taken;
    and a year of "2.025" was read as 2025."""
    bad = tmp_path / "bad.csv"
    bad.write_text(
        HEADER
        + '7752000000001,Toko Koma,47112,62.71,,,"1.234.567,89",90000000,2025,1\n'
        + "7752000000002,Toko Minus,47112,62.71,,,10000000,90000000,2025,-5\n"
        + "7752000000003,Toko Tahun,47112,62.71,,,10000000,90000000,2.025,1.500\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(bad), "--jurisdiction", "62")
    assert result.returncode == 1, result.stdout + result.stderr
    assert_reported(
        result,
        "2 │ capital │ must be whole rupiah, without a decimal part │ BAD_USER_INPUT │",
        "3 │ employees │ must not be negative │ BAD_USER_INPUT │",
        "4 │ turnover_year │ must be digits only, without a thousands separator │",
    )
    assert "3 rows: 0 created, 0 updated, 0 unchanged, 3 rejected" in result.stdout


def test_a_nib_no_column_can_store_is_its_row_s_error_and_an_undecodable_client_is_none(
    own_reference_url: str, tmp_path: Path
) -> None:
    """The bug: a NIB holding a NUL was looked up, before its row was checked, to merge the
    record it names, and the import ended in a database error's traceback with the file's
    valid rows unwritten; an `--as` id of bytes that are not UTF-8 (a lone surrogate to
    Python) ended the same way, where an unknown client is a one-line refusal."""
    rows = tmp_path / "rows.csv"
    rows.write_text(
        HEADER
        + "7749000000001,Toko Baik,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n"
        + "77\x0049000000002,Toko Nul,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    result = sinergi(own_reference_url, str(rows), "--jurisdiction", "62")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert_reported(result, "3 │ nib │ must be exactly 13 digits │ BAD_USER_INPUT │")
    assert [row[1] for row in state(own_reference_url, "7749")[0]] == ["7749000000001"]

    undecodable = sinergi(own_reference_url, str(rows), "--as", os.fsdecode(b"demo-\xff"))
    assert undecodable.returncode == 2, undecodable.stdout + undecodable.stderr
    assert undecodable.stderr.count("\n") == 1, undecodable.stderr
    assert "--as: no active client 'demo-\\udcff'" in undecodable.stderr


def test_a_file_without_the_required_columns_is_refused_whole(
    reference_url: str, tmp_path: Path
) -> None:
    odd = tmp_path / "odd.csv"
    odd.write_text("nib,nama\n7768000000001,Toko\n", encoding="utf-8")
    result = sinergi(reference_url, str(odd), "--jurisdiction", "62")
    assert result.returncode == 2
    assert "missing column(s) name, kbli, region" in result.stderr
    unknown = sinergi(reference_url, str(SAMPLE), "--as", "no-such-client")
    assert unknown.returncode == 2


def test_a_file_separated_by_semicolons_is_refused_saying_so(
    reference_url: str, tmp_path: Path
) -> None:
    """Excel in an Indonesian locale saves "CSV" with ';': the operator was told the required
    columns were missing, though every one of them was there."""
    semicolons = tmp_path / "excel.csv"
    semicolons.write_text(
        HEADER.replace(",", ";") + "7776000000001;Toko;47112;62.71;;;10000000;;;\n", "utf-8"
    )
    result = sinergi(reference_url, str(semicolons), "--jurisdiction", "62")
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr
    assert "the file seems to use ';' as separator; save it as comma-separated CSV" in message
    assert "missing column" not in message
    assert state(reference_url, "7776") == [[], [], []]


def test_the_help_names_the_columns_the_exit_statuses_and_the_file() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "import", "msmes", "--help"],
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    shown = " ".join(shown.split())
    assert (
        "Columns: nib, name, kbli, region (required; nib may be left out, or empty, where "
        "sku_number and sku_issuer give the business's Surat Keterangan Usaha); sku_number, "
        "sku_issuer, district, established," in shown
    )
    assert 'section "Bulk import"' in shown
    assert "Exit status: 0 when every row was imported; 1 when rows were rejected" in shown
    assert "FILE the CSV file: a spreadsheet saved as CSV UTF-8" in shown
    assert "this or --as is required" in shown
    assert "the terminal shows the first 200" in shown
    assert shown.startswith(
        "usage: sinergi import msmes [-h] [--all-or-nothing] [--problems OUT.csv] (--as"
        " CLIENT_ID | --jurisdiction CODE) FILE "
    )


def test_the_operators_jurisdiction_is_the_nation_a_province_or_a_regency_that_exists(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: any well-shaped code was taken. A record is placed by its regency, so with a
    kecamatan (62.71.03) every row, those in 62.71.03 too, was refused as outside; a code
    naming no region refused every row the same way."""
    rows = tmp_path / "rows.csv"
    rows.write_text(
        HEADER + "7775000000001,Toko Kecamatan,47112,62.71,62.71.03,,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    for given, reason in (
        ("62.71.03", '62.71.03 is a district; give "ID", a province (62) or a regency or city'),
        ("62.99", "62.99 is not a known region code"),
        ("99", "99 is not a known region code"),
        (
            "6271",
            'must be "ID" or a code shaped PP, PP.KK, PP.KK.CC or PP.KK.CC.DDDD; did you'
            " mean 62.71?",
        ),
    ):
        refused = sinergi(reference_url, str(rows), "--jurisdiction", given)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert f"--jurisdiction: {reason}" in refused.stderr
    assert state(reference_url, "7775") == [[], [], []]
    accepted = sinergi(reference_url, str(rows), "--jurisdiction", "62.71")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert [row[1] for row in state(reference_url, "7775")[0]] == ["7775000000001"]


def test_an_import_names_its_scope_or_is_refused_before_it_moves_another_provinces_record(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: without flags the operator imported nationally, so a regency office's file
    moved another province's record (same NIB) into the file's regency, counted as "updated"."""
    kalbar = tmp_path / "kalbar.csv"
    kalbar.write_text(
        HEADER + "7779000000001,Toko Barat,47112,61.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    assert sinergi(reference_url, str(kalbar), "--jurisdiction", "61").returncode == 0
    regency = tmp_path / "palangka-raya.csv"
    regency.write_text(
        HEADER + "7779000000001,Toko Kota,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    before = state(reference_url, "7779")
    refused = sinergi(reference_url, str(regency))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert refused.stderr == (
        "sinergi import: say where the rows may lie: --jurisdiction CODE (a province, 62, or a "
        "regency or city, 62.71; --jurisdiction ID for a national import) or --as CLIENT_ID\n"
    )
    assert state(reference_url, "7779") == before
    scoped = sinergi(reference_url, str(regency), "--jurisdiction", "62.71")
    assert scoped.returncode == 1, scoped.stdout + scoped.stderr
    assert fetch(
        reference_url, "SELECT name, regency_code FROM msmes WHERE nib = '7779000000001'"
    ) == [("Toko Barat", "61.71")]


def test_importing_as_a_client_needs_records_write_as_its_token_would_hold_it(
    reference_url: str, tmp_path: Path
) -> None:
    """The attack: a client registered before records:write needed records:read, with
    records:write alone, holds no write in any token, but could still be imported as."""
    argv = [sys.executable, "-m", "sinergi.cli", "clients", "create", "--name", "Dinas lama"]
    argv += ["--org-kind", "province", "--jurisdiction", "62", "--purpose", "legacy writer"]
    argv += ["--scopes", "records:read records:write", "--json"]
    env = {**os.environ, "DATABASE_URL": reference_url}
    created = subprocess.run(argv, env=env, capture_output=True, text=True, check=True, timeout=60)
    client_id = json.loads(created.stdout)["client_id"]
    fetch(
        reference_url,
        "UPDATE oauth_clients SET scopes = '{records:write}' WHERE client_id = $1",
        client_id,
    )  # as registered before the rule: `clients create` refuses it now
    rows = tmp_path / "rows.csv"
    rows.write_text(
        HEADER + "7766000000001,Toko Lama,47112,62.71,,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    refused = sinergi(reference_url, str(rows), "--as", client_id)
    assert refused.returncode == 2, refused.stdout
    assert f"--as: {client_id} does not hold records:write" in refused.stderr
    assert state(reference_url, "7766") == [[], [], []]
    fetch(
        reference_url,
        "UPDATE oauth_clients SET scopes = '{records:read,records:write}' WHERE client_id = $1",
        client_id,
    )
    accepted = sinergi(reference_url, str(rows), "--as", client_id)
    assert accepted.returncode == 0, accepted.stdout
    assert [row[1] for row in state(reference_url, "7766")[0]] == ["7766000000001"]


@pytest.mark.parametrize(("encoding", "line"), [("latin-1", 5), ("utf-16", 1)])
def test_a_file_that_is_not_utf8_is_refused_whole_naming_the_first_bad_line(
    reference_url: str, tmp_path: Path, encoding: str, line: int
) -> None:
    """Latin-1 fails where its first accented letter is ("Kafé", line 5), UTF-16 at once."""
    other = tmp_path / f"{encoding}.csv"
    rows = "".join(f"77690000000{index:02d},Toko {index},47112,62.71,,,,,,\n" for index in range(3))
    other.write_text(HEADER + rows + "7769000000099,Kafé Sederhana,47112,62.71,,,,,,\n", encoding)
    before = state(reference_url, "7769")
    result = sinergi(reference_url, str(other), "--jurisdiction", "62")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"line {line} is not UTF-8" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert state(reference_url, "7769") == before


def test_a_line_that_is_not_valid_csv_is_refused_whole_naming_the_line(
    reference_url: str, tmp_path: Path
) -> None:
    """A good row, then one whose ignored `notes` cell is over csv's field limit: exit 1 would
    say the good row was written, so the file is refused whole (2) and the good row rolled back."""
    big = tmp_path / "big.csv"
    big.write_text(
        HEADER.rstrip("\n")
        + ",notes\n"
        + "7772000000001,Toko Baik,47112,62.71,,,,,,,ok\n"
        + "7772000000002,Toko Catatan,47112,62.71,,,,,,,"
        + "x" * 200_000
        + "\n",
        encoding="utf-8",
    )
    for mode in ((), ("--all-or-nothing",)):
        result = sinergi(reference_url, str(big), "--jurisdiction", "62", *mode)
        assert result.returncode == 2, result.stdout + result.stderr
        message = result.stderr
        assert "line 3 is not readable as CSV (field larger than field limit" in message
        assert "Traceback" not in result.stdout + result.stderr
        assert state(reference_url, "7772") == [[], [], []]


def test_a_row_whose_cells_do_not_line_up_with_the_header_is_refused_naming_the_row(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: cells were paired with columns as far as they went. An unquoted amount with
    thousands separators shifted the columns after it (turnover "2,600,000,000" stored as 2);
    a line cut short cleared the stored values of the columns it lacked."""
    full = "7774000000001,Toko Utuh,47112,62.71,62.71.03,2020-01-01,10000000,90000000,2025,3"
    first = tmp_path / "first.csv"
    first.write_text(HEADER + full + "\n", encoding="utf-8")
    assert sinergi(reference_url, str(first), "--jurisdiction", "62").returncode == 0
    stored = state(reference_url, "7774")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text(
        HEADER
        + "7774000000001,Toko Utuh,47112,62.71,62.71.03,2020-01-01\n"
        + "7774000000002,Toko Geser,47112,62.71,,2020-01-01,10000000,2,600,000,000,2025,3\n"
        + "7774000000003,Toko Baik,47112,62.71,,2020-01-01,10000000,90000000,2025,3\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(ragged), "--jurisdiction", "62")
    assert result.returncode == 1, result.stdout + result.stderr
    assert_reported(
        result,
        "2 │ (whole row) │ has 6 cells where the header has 10 columns",
        "3 │ (whole row) │ has 13 cells where the header has 10 columns: quote an amount",
    )
    assert "3 rows: 1 created, 0 updated, 0 unchanged, 2 rejected" in result.stdout
    after = state(reference_url, "7774")
    assert after[0][0] == stored[0][0]  # the record the short line named is as it was
    assert [row[1] for row in after[0]] == ["7774000000001", "7774000000003"]


def test_a_quote_never_closed_is_refused_whole_naming_the_line_it_opened_on(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: a lenient reader took the unclosed quote's cell to the end of the file, so the
    rows after it were neither imported nor reported, and the run said "written"."""
    rows = [f"77730000000{index:02d},Toko {index},10794,62.71,,,100000000,,," for index in range(5)]
    rows[2] = '7773000000002,"Toko Dua,10794,62.71,100000000'
    unclosed = tmp_path / "unclosed.csv"
    unclosed.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    for mode in ((), ("--all-or-nothing",)):
        result = sinergi(reference_url, str(unclosed), "--jurisdiction", "62", *mode)
        assert result.returncode == 2, result.stdout + result.stderr
        message = result.stderr
        assert 'the record starting on line 4 opens a quote (") that is never closed' in message
        assert state(reference_url, "7773") == [[], [], []]
    text_after_quote = tmp_path / "after.csv"
    text_after_quote.write_text(
        HEADER + rows[0] + "\n" + '7773000000009,"Toko" Sembilan,10794,62.71,,,1,,,\n', "utf-8"
    )
    result = sinergi(reference_url, str(text_after_quote), "--jurisdiction", "62")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "line 3 is not readable as CSV" in result.stderr
    assert state(reference_url, "7773") == [[], [], []]


def _generated(path: Path, prefix: str, rows: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for index in range(rows):
            handle.write(
                f"{prefix}{index:08d},Usaha Massal {index},47112,62.71,62.71.03,2020-01-01,"
                f"{10_000_000 + index},{90_000_000 + index},2025,2\n"
            )


# Statements the import runs once its rows are in the database (staged or written), uncommitted.
_WRITING = (
    'COPY "msmes"',
    "msme_import_batches",
    "INSERT INTO msmes",
    "msme_import_owners",
    "INSERT INTO record_changes",
)


def _import_is_writing(url: str) -> bool:
    """The import's open transaction is writing the records (its later statements are running)."""
    found = fetch(
        url,
        "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL",
    )
    return any(marker in query for (query,) in found for marker in _WRITING)


def _open_transactions(url: str) -> int:
    found = fetch(
        url,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL",
    )
    return int(found[0][0])


@pytest.mark.parametrize("rows", [50_000])
def test_a_killed_import_leaves_the_database_as_before_or_after(
    reference_url: str, tmp_path: Path, rows: int
) -> None:
    """SIGKILL in the middle of the write: PostgreSQL rolls the open transaction back."""
    prefix = "77690"
    big = tmp_path / "big.csv"
    _generated(big, prefix, rows)
    process = subprocess.Popen(
        [sys.executable, "-m", "sinergi.cli", "import", "msmes", str(big), "--jurisdiction", "62"],
        env={**os.environ, "DATABASE_URL": reference_url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    seen_open = False
    while process.poll() is None and time.monotonic() < deadline:
        if _import_is_writing(reference_url):
            seen_open = True
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert seen_open, "the import ended before it could be killed while writing"
    assert process.returncode == -signal.SIGKILL

    deadline = time.monotonic() + 30
    while _open_transactions(reference_url) and time.monotonic() < deadline:
        time.sleep(0.05)  # the server notices the dead client and rolls back
    stored = fetch(reference_url, "SELECT count(*) FROM msmes WHERE nib LIKE $1", f"{prefix}%")
    assert stored[0][0] in (0, rows)
    history = fetch(
        reference_url,
        "SELECT count(*) FROM record_history c JOIN msmes m ON m.id = c.record_id"
        " WHERE c.record_kind = 'msme' AND m.nib LIKE $1",
        f"{prefix}%",
    )
    assert history[0][0] == stored[0][0]


def test_an_import_holds_the_audit_chain_for_its_commit_alone(
    reference_url: str, tmp_path: Path
) -> None:
    """Every request's audit entry waits for the chain's lock, which the import's own entry
    holds until the import commits: by then the work the commit would do (numbering the change
    feed's entries, one per record created: seconds for a register) is done, so requests wait
    for no more than the commit, never past their statement timeout. Waiting for the chain, the
    import already holds the feed's numbering lock, which that work takes (migration 0014)."""
    path = tmp_path / "feed.csv"
    _generated(path, "77590", 2_000)
    # pg_locks, not pg_stat_activity: the import connects as another role, whose waits the
    # owner is not shown. An advisory lock on a bigint key shows its low 32 bits as `objid`.
    held = (
        "SELECT bool_or(NOT granted) AS waiting, bool_or(granted AND objid::bigint ="
        " (hashtext('sinergi.change_feed')::bigint & 4294967295)) AS numbering"
        " FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )

    async def while_waiting_for_the_chain() -> tuple[bool, int]:
        holder = await asyncpg.connect(reference_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT pg_advisory_xact_lock(hashtext('sinergi.audit_log'))")
                process = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "sinergi.cli", "import", "msmes", str(path)),
                    *("--jurisdiction", "62"),
                    env={**os.environ, "DATABASE_URL": reference_url},
                    stdout=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + 120
                while not (locks := await holder.fetchrow(held))["waiting"]:
                    assert process.returncode is None, "the import ended without the chain"
                    assert time.monotonic() < deadline, "the import never reached the chain"
                    await asyncio.sleep(0.01)
            return bool(locks["numbering"]), await asyncio.wait_for(process.wait(), 120)
        finally:
            await holder.close()

    numbering, returncode = asyncio.run(while_waiting_for_the_chain())
    assert returncode == 0
    assert numbering, "the import waited for the chain with its feed entries still to number"
    stored = fetch(reference_url, "SELECT count(*) FROM msmes WHERE nib LIKE '77590%'")
    assert stored[0][0] == 2_000


def test_a_database_error_the_import_meets_is_told_without_the_row_s_values(
    module_reference_url: str, tmp_path: Path
) -> None:
    """A statement PostgreSQL refuses (here a unique index the import does not know) ended the
    command in Python's traceback, whose every link quoted the server's DETAIL: `Key (nik)=(…)
    already exists`, an owner's NIK on the operator's terminal and in whatever collects it.
    The traceback names the SQLSTATE and the index now, not the values."""
    nik = "6271995204887701"
    header = HEADER.rstrip("\n") + ",owner_nik,owner_name,owner_sex\n"
    rows = "".join(
        f"778700000000{n},Toko Kembar {n},47112,62.71,,2020-01-01,10000000,90000000,2025,1,"
        f"{nik},Pemilik Kembar,F\n"
        for n in (1, 2)
    )
    twice = tmp_path / "twice.csv"
    twice.write_text(header + rows, encoding="utf-8")
    fetch(module_reference_url, "CREATE UNIQUE INDEX forced_one_nik ON msme_owners (nik)")
    try:
        failed = sinergi(module_reference_url, str(twice), "--jurisdiction", "62")
    finally:
        fetch(module_reference_url, "DROP INDEX forced_one_nik")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Traceback" in failed.stderr
    assert '[SQLSTATE 23505] duplicate key value violates unique constraint "forced_one_nik"' in (
        failed.stderr
    )
    assert nik not in failed.stdout + failed.stderr
    assert "DETAIL" not in failed.stderr
