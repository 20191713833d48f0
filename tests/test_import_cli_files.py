"""`sinergi import msmes` and the file it is given: how it says the file cannot be used, and
what its audit entry says was read."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.test_import_cli import HEADER, fetch, sinergi


def test_a_file_that_cannot_be_used_is_named_on_stderr_in_one_line_as_it_is_spelled(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: the message went to stdout, wrapped at 80 columns when not on a terminal, and
    the path was read as rich markup: `UMKM [final].csv` was named `UMKM .csv`, and a path
    holding `[/x]` ended in a MarkupError traceback, as did its rejected rows' table."""
    deep = tmp_path / ("arsip-dinas-koperasi-kalimantan-tengah-" * 6)
    for name in ("UMKM [final].csv", "laporan [/x] lama.csv"):
        missing = deep / name
        result = sinergi(reference_url, str(missing), "--jurisdiction", "62")
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr == f"sinergi import: {missing}: no such file\n"
        assert result.stdout == ""
    # Its rejected rows are reported under the file's name as it is spelled too.
    bad = tmp_path / "UMKM [final].csv"
    bad.write_text(HEADER + "7787000000001,Toko,47112,62.71,,,sepuluh,,,\n", encoding="utf-8")
    result = sinergi(reference_url, str(bad), "--jurisdiction", "62")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rejected rows in UMKM [final].csv" in result.stdout


def test_a_file_that_cannot_be_read_is_refused_in_one_line(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: a file the import may not read (PermissionError) ended in a traceback. Root
    reads any file whatever its mode, so there the file is one that opens but fails to read
    (EIO), which took the same unguarded path."""
    if os.geteuid() == 0:
        unreadable = Path("/proc/self/mem")
    else:
        unreadable = tmp_path / "rahasia.csv"
        unreadable.write_text(HEADER, encoding="utf-8")
        unreadable.chmod(0)
    result = sinergi(reference_url, str(unreadable), "--jurisdiction", "62")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"sinergi import: {unreadable}: cannot be read (")
    assert result.stderr.count("\n") == 1, result.stderr


def test_the_audit_entry_hashes_the_bytes_the_import_read(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: `documentHash` was the sha256 of whatever the path held once the import was
    done, reopened: a file replaced meanwhile was named in the trail instead of the one read.
    Here the file is replaced while the import, every row read, waits for a record's lock."""
    path = tmp_path / "register.csv"
    row = "7789000000001,Toko Terbaca,47112,62.71,,2020-01-01,10000000,90000000,2025,{}\n"
    path.write_text(HEADER + row.format(1), encoding="utf-8")
    assert sinergi(reference_url, str(path), "--jurisdiction", "62").returncode == 0
    read = (HEADER + row.format(2)).encode()
    path.write_bytes(read)

    async def replaced_while_importing() -> int:
        holder = await asyncpg.connect(reference_url)
        try:
            async with holder.transaction():
                await holder.execute("SELECT FROM msmes WHERE nib = '7789000000001' FOR UPDATE")
                process = await asyncio.create_subprocess_exec(
                    *(sys.executable, "-m", "sinergi.cli", "import", "msmes", str(path)),
                    *("--jurisdiction", "62"),
                    env={**os.environ, "DATABASE_URL": reference_url},
                    stdout=subprocess.DEVNULL,
                )
                deadline = time.monotonic() + 120
                # This database's waits only: the server's other databases are other tests'.
                while not await holder.fetchval(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE NOT l.granted AND a.datname = current_database()"
                ):
                    assert process.returncode is None, "the import ended without waiting"
                    assert time.monotonic() < deadline, "the import never waited for the record"
                    await asyncio.sleep(0.01)
                swapped = tmp_path / "swapped.csv"
                swapped.write_text(HEADER + row.format(3), encoding="utf-8")
                swapped.replace(path)
            return await asyncio.wait_for(process.wait(), 120)
        finally:
            await holder.close()

    assert asyncio.run(replaced_while_importing()) == 0
    (recorded,) = fetch(
        reference_url,
        "SELECT entry ->> 'documentHash' FROM audit_log"
        " WHERE entry ->> 'operation' = 'cli:import msmes' ORDER BY seq DESC LIMIT 1",
    )
    assert recorded == (hashlib.sha256(read).hexdigest(),)
    assert fetch(reference_url, "SELECT employees FROM msmes WHERE nib = '7789000000001'") == [(2,)]


def test_every_problem_goes_to_the_problems_file_without_the_cells_values(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: the terminal showed the first 200 problems and "… and N more problems",
    naming none of the rest; with the valid rows written, the operator had to bisect the file
    to find them."""
    path = tmp_path / "register.csv"
    bad = "".join(
        f"775100000{number:03},Toko {number},47112,62.71,,,sepuluh juta,,,\n"
        for number in range(203)
    )
    path.write_text(
        HEADER + "7751000000001,Toko Baik,47112,62.71,,,10000000,90000000,2025,1\n" + bad,
        encoding="utf-8",
    )
    problems = tmp_path / "problems.csv"
    result = sinergi(reference_url, str(path), "--jurisdiction", "62", "--problems", str(problems))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"… and 206 more problems, every one in {problems}" in " ".join(result.stdout.split())
    with problems.open(encoding="utf-8-sig", newline="") as handle:  # as a spreadsheet saves
        written = list(csv.reader(handle))
    assert written[0] == ["row", "column", "reason", "code"]
    assert len(written) == 1 + 2 * 203  # each bad row: its NIB's length and its capital
    assert sorted({int(row) for row, *_ in written[1:]}) == list(range(3, 206))
    assert [
        "205",
        "capital",
        "must be a whole number in digits (thousands may be grouped by . or ,)",
        "BAD_USER_INPUT",
    ] in written
    text = problems.read_text(encoding="utf-8-sig")
    assert "sepuluh" not in text  # no cell's value
    assert "775100000" not in text
    assert fetch(reference_url, "SELECT count(*) FROM msmes WHERE nib LIKE '7751%'") == [(1,)]

    without = sinergi(reference_url, str(path), "--jurisdiction", "62")
    assert "… and 206 more problems (--problems FILE.csv writes every one)" in " ".join(
        without.stdout.split()
    )


def test_a_problems_file_that_cannot_be_written_is_refused_before_anything_is_imported(
    reference_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "register.csv"
    path.write_text(
        HEADER + "7751200000001,Toko Baik,47112,62.71,,,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    for problems, reason in (
        (tmp_path / "no-such-folder" / "problems.csv", "cannot be written ("),
        (path, "is the file to import; name another"),
    ):
        result = sinergi(
            reference_url, str(path), "--jurisdiction", "62", "--problems", str(problems)
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert result.stderr.startswith(f"sinergi import: --problems: {problems}: {reason}")
        assert result.stderr.count("\n") == 1, result.stderr
    assert fetch(reference_url, "SELECT count(*) FROM msmes WHERE nib LIKE '77512%'") == [(0,)]
    assert path.read_text(encoding="utf-8").startswith(HEADER)
    # One that opens but fails when written (a full disk) takes the import back with it: its
    # valid rows were to be written only beside a record of the rest.
    full = sinergi(reference_url, str(path), "--jurisdiction", "62", "--problems", "/dev/full")
    assert full.returncode == 2, full.stdout + full.stderr
    assert full.stderr == (
        "sinergi import: --problems: /dev/full: cannot be written (No space left on device)\n"
    )
    assert fetch(reference_url, "SELECT count(*) FROM msmes WHERE nib LIKE '77512%'") == [(0,)]
