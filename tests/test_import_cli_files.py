"""`sinergi import msmes` and the file it is given: how it says the file cannot be used, and
what its audit entry says was read."""

from __future__ import annotations

import os
from pathlib import Path

from tests.test_import_cli import HEADER, sinergi


def test_a_file_that_cannot_be_used_is_named_on_stderr_in_one_line_as_it_is_spelled(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: the message went to stdout, wrapped at 80 columns when not on a terminal, and
    the path was read as rich markup: `UMKM [final].csv` was named `UMKM .csv`, and a path
    holding `[/x]` ended in a MarkupError traceback, as did its rejected rows' table."""
    deep = tmp_path / ("arsip-dinas-koperasi-kalimantan-tengah-" * 6)
    for name in ("UMKM [final].csv", "laporan [/x] lama.csv"):
        missing = deep / name
        result = sinergi(reference_url, str(missing))
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
    result = sinergi(reference_url, str(unreadable))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(f"sinergi import: {unreadable}: cannot be read (")
    assert result.stderr.count("\n") == 1, result.stderr
