"""The reference data shipped in the package is the shared seed data, byte for byte, and loading
it again rewrites only what changed."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import create_engine
from db.seed import load_reference
from sinergi.demo import SEED_DATA

SHARED = Path(__file__).resolve().parents[2] / "shared" / "seed-data"


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="no ../shared beside this checkout to compare the copy with"
)
def test_packaged_seed_data_matches_shared_seed_data() -> None:
    shared = {path.name: path.read_bytes() for path in SHARED.glob("*.csv")}
    packaged = {path.name: path.read_bytes() for path in SEED_DATA.glob("*.csv")}
    assert shared, f"expected the shared seed data beside the repository at {SHARED}"
    assert packaged == shared, "copy ../shared/seed-data/*.csv into sinergi/seed_data/"


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
