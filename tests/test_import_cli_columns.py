"""`sinergi import msmes` and the columns a file's header names: each known column once, and a
column the file leaves out is a value it does not give."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_import_cli import fetch, sinergi, state


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


FULL = (
    "nib,name,kbli,region,district,established,capital,turnover,turnover_year,employees,scale,"
    "owner_nik,owner_name,owner_sex,owner_phone\n"
    "7787000000001,Keripik Utuh,10794,62.71,62.71.03,2021-03-01,150000000,240000000,2025,3,,"
    "6271995204880001,Sri Utuh,F,+6281200000101\n"
)


def test_a_column_the_file_leaves_out_keeps_the_stored_value_and_an_empty_cell_clears_it(
    reference_url: str, tmp_path: Path
) -> None:
    """The bug: a file with only the required columns, the scale and the owner's NIK and name
    cleared capital, turnover, employees, district, the founding date and the owner's sex and
    phone of every record it named, though the README says an empty cell clears a value."""
    full = tmp_path / "full.csv"
    full.write_text(FULL, encoding="utf-8")
    assert sinergi(reference_url, str(full), "--jurisdiction", "62").returncode == 0
    before = state(reference_url, "7787000000001")

    narrow = tmp_path / "narrow.csv"
    narrow.write_text(
        "nib,name,kbli,region,scale,owner_nik,owner_name\n"
        "7787000000001,Keripik Utuh,10794,62.71,,6271995204880001,Sri Utuh\n"
        "7787000000002,Keripik Baru,10794,62.71,micro,,\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(narrow), "--jurisdiction", "62")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rows: 1 created, 0 updated, 1 unchanged, 0 rejected" in result.stdout
    assert state(reference_url, "7787000000001") == before

    # A cell left empty clears; the owner columns left out stay as stored for the same owner.
    cleared = tmp_path / "cleared.csv"
    cleared.write_text(
        "nib,name,kbli,region,capital,turnover,owner_nik,owner_name,owner_phone\n"
        "7787000000001,Keripik Utuh,10794,62.71,,240000000,6271995204880001,Sri Utuh,\n",
        encoding="utf-8",
    )
    result = sinergi(reference_url, str(cleared), "--jurisdiction", "62")
    assert "1 rows: 0 created, 1 updated" in result.stdout, result.stdout + result.stderr
    (record,) = fetch(
        reference_url,
        "SELECT m.capital, m.annual_turnover, m.employees, m.district_code, o.sex, o.phone"
        " FROM msmes m JOIN msme_owners o ON o.msme_id = m.id WHERE m.nib = '7787000000001'",
    )
    assert record == (None, 240000000, 3, "62.71.03", "F", None)
    (changes,) = fetch(
        reference_url,
        "SELECT c.changes, c.personal_fields FROM record_changes c JOIN msmes m"
        " ON m.id = c.record_id WHERE m.nib = '7787000000001' ORDER BY c.id DESC LIMIT 1",
    )
    assert sorted(json.loads(changes[0])) == ["capital"]
    assert changes[1] == ["owner.phone"]

    # Another owner takes nothing of the one before: a column left out is empty for them.
    other = tmp_path / "other.csv"
    other.write_text(
        "nib,name,kbli,region,owner_nik,owner_name\n"
        "7787000000001,Keripik Utuh,10794,62.71,6271995204880002,Budi Lain\n",
        encoding="utf-8",
    )
    assert sinergi(reference_url, str(other), "--jurisdiction", "62").returncode == 0
    owner = fetch(
        reference_url,
        "SELECT o.nik, o.sex FROM msmes m JOIN msme_owners o ON o.msme_id = m.id"
        " WHERE m.nib = '7787000000001'",
    )
    assert owner == [("6271995204880002", None)]


def test_a_file_without_a_scale_column_keeps_the_declaration_as_an_update_does(
    reference_url: str, tmp_path: Path
) -> None:
    """The stored declaration a row without a `scale` column keeps is read as `updateMsme` reads
    it (domain/scale.py `kept_declaration`): it stands while the figures do, a file giving
    other figures drops it, and a record without figures and without a declaration kept apart (as
    migration 0037 left some) has its scale as the declaration."""

    def imported(name: str, text: str) -> list[tuple[object, ...]]:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        result = sinergi(reference_url, str(path), "--jurisdiction", "62")
        assert result.returncode == 0, result.stdout + result.stderr
        return fetch(
            reference_url,
            "SELECT nib, scale, declared_scale FROM msmes WHERE nib LIKE '779700000030%'"
            " ORDER BY nib",
        )

    assert imported(
        "declared.csv",
        "nib,name,kbli,region,capital,turnover,scale\n"
        "7797000000301,Toko Deklarasi,47112,62.71,900000000,20000000000,micro\n"
        "7797000000302,Toko Lama,47112,62.71,,,small\n",
    ) == [("7797000000301", "medium", "micro"), ("7797000000302", "small", "small")]
    fetch(reference_url, "UPDATE msmes SET declared_scale = NULL WHERE nib = '7797000000302'")
    assert imported(
        "names.csv",
        "nib,name,kbli,region\n"
        "7797000000301,Toko Deklarasi,47112,62.71\n"
        "7797000000302,Toko Lama,47112,62.71\n",
    ) == [("7797000000301", "medium", "micro"), ("7797000000302", "small", "small")]
    assert imported(
        "figures.csv",
        "nib,name,kbli,region,turnover\n7797000000301,Toko Deklarasi,47112,62.71,25000000000\n",
    ) == [("7797000000301", "medium", None), ("7797000000302", "small", "small")]
