"""Loading the reference data shipped in the package (sinergi/seed_data) again rewrites only what
changed, and a programme of a kind no rule knows is not loaded."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text

from db.engine import create_engine
from db.seed import load_reference
from domain.errors import InvalidValue
from sinergi.demo import SEED_DATA
from tests.support.databases import run


async def _load_and_read(url: str, directory: Path) -> dict[str, tuple[str, str]]:
    """Load the reference data from `directory`; each region's (name, row version)."""
    engine = create_engine(url, statement_timeout_ms=60_000, pool_size=1)
    try:
        async with engine.begin() as connection:
            await load_reference(connection, directory, targets=False)
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT code, name, xmin::text FROM regions"))
            return {code: (name, version) for code, name, version in rows}
    finally:
        await engine.dispose()


def test_loading_the_reference_data_again_rewrites_only_what_changed(
    fresh_url: str, tmp_path: Path
) -> None:
    """Every command loads it: rewriting identical rows left a dead copy of each one behind."""
    first = asyncio.run(_load_and_read(fresh_url, SEED_DATA))
    assert asyncio.run(_load_and_read(fresh_url, SEED_DATA)) == first

    renamed = tmp_path / "seed-data"
    shutil.copytree(SEED_DATA, renamed)
    regions = renamed / "regions.csv"
    regions.write_text(
        regions.read_text(encoding="utf-8").replace("Kota Palangkaraya", "Kota Palangka Raya"),
        encoding="utf-8",
    )
    after = asyncio.run(_load_and_read(fresh_url, renamed))
    changed = {code for code in first if after[code] != first[code]}
    assert changed == {"62.71"}
    assert after["62.71"][0] == "Kota Palangka Raya"


KINDS = (
    "production, supply, credit_guarantee, subsidised_credit, certification, grant, training,"
    " institution_building"
)


@pytest.mark.parametrize("kind", ["kur", "Subsidised_Credit"])
def test_a_programme_of_a_kind_r12_cannot_read_is_not_loaded(
    fresh_url: str, tmp_path: Path, kind: str
) -> None:
    """R12 counts a programme of kind `subsidised_credit` alone: a KUR programme loaded as "kur"
    or "Subsidised_Credit" was one it never counted, and a business taking its credit passed.
    Loading it stops, naming the programme and the kinds there are, and stores nothing; nor
    does the database take such a kind from whoever writes it directly."""
    directory = tmp_path / "seed-data"
    shutil.copytree(SEED_DATA, directory)
    with (directory / "programmes.csv").open("a", encoding="utf-8") as programmes:
        programmes.write(f"PR-UJI-KUR,Kredit Usaha Rakyat,{kind},,,62,2024\n")
    with pytest.raises(InvalidValue) as refused:
        asyncio.run(_load_and_read(fresh_url, directory))
    assert str(refused.value) == (
        f"programmes.csv: PR-UJI-KUR: kind: must be one of {KINDS}, not {kind!r}"
    )
    assert run(fresh_url, "SELECT id FROM programmes WHERE id = 'PR-UJI-KUR'") == []

    with pytest.raises(asyncpg.CheckViolationError):
        run(
            fresh_url,
            "INSERT INTO programmes (id, name, kind, jurisdiction)"
            " VALUES ('PR-UJI-KUR', 'Kredit Usaha Rakyat', $1, '62')",
            kind,
        )


FROZEN = {
    "jamkrida-kalteng-productive@2026-01-01.json",
    "jamkrida-kalteng-productive@2026-12-04.json",
}
"""Stored rule-set versions never change (db/queries/eligibility.sync_rulesets refuses a file that
differs from its stored version, and domain/ruleset.PUBLISHED_BEFORE_WITHHOLDING pins these two
by the digest of their content, notes included), so the `notes` these shipped versions were
published with keep their citation of the design notes they were written from."""

OUTSIDE_CITATION = re.compile(
    r"\.\./shared|shared/domain\.md|shared/seed-data"
    # a section or source number of the design notes ("domain.md §13", "see domain.md S18"):
    # docs/domain.md has neither, so such a reference points at notes a clone does not hold
    r"|domain\.md\W{0,3}(?:§|S\d)"
    # a file of those notes' seeds ("003_8c398c738aaf69b3.txt")
    r"|\b\d{3}_[0-9a-f]{16}\.txt\b"
)


def test_code_docs_and_bundled_data_cite_no_file_outside_the_repository() -> None:
    """Bundled data reaches clients (a seeded realisation's `source`), and the docs stand alone:
    neither may send a reader to notes that are not in the repository."""
    root = Path(__file__).resolve().parents[1]
    citing = [
        f"{path.relative_to(root)}: {found.group()}"
        for folder in ("auth", "db", "docs", "domain", "resolvers", "schema", "sinergi", "tests")
        for path in (root / folder).rglob("*")
        if path.suffix in {".py", ".md", ".json", ".csv"}
        and path.name not in FROZEN
        and path != Path(__file__).resolve()
        and (found := OUTSIDE_CITATION.search(path.read_text(encoding="utf-8")))
    ]
    assert citing == []
