"""`sinergi import msmes` and the columns a file's header names: each known column once, and a
column the file leaves out is a value it does not give."""

from __future__ import annotations

from pathlib import Path

from tests.test_import_cli import sinergi, state


def test_a_header_naming_a_column_twice_is_refused_whole(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: the last of two same-named columns won, the key too: `nib,…,NIB` wrote the
    record of the second NIB, which the person checking the file's first column never saw."""
    twice = tmp_path / "twice.csv"
    twice.write_text(
        "nib,name,kbli,region,scale,note,note, NIB \n"
        "7788000000001,Toko Dua Kunci,47112,62.71,micro,a,b,7788000000002\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(twice), "--jurisdiction", "62")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"sinergi import: {twice}: column(s) nib named more than once\n"
    assert state(reference_url, "7788") == [[], [], []]
