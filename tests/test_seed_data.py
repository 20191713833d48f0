"""The reference data shipped in the package is the shared seed data, byte for byte, and loading
it again rewrites only what changed."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from db import embedded
from db.engine import create_engine
from db.migrate import upgrade
from db.seed import load_reference
from sinergi.demo import SEED_DATA
from tests.support.databases import create_database, drop_database

SHARED = Path(__file__).resolve().parents[2] / "shared" / "seed-data"


@pytest.mark.skipif(
    not SHARED.is_dir(), reason="no ../shared beside this checkout to compare the copy with"
)
def test_packaged_seed_data_matches_shared_seed_data() -> None:
    shared = {path.name: path.read_bytes() for path in SHARED.glob("*.csv")}
    packaged = {path.name: path.read_bytes() for path in SEED_DATA.glob("*.csv")}
    assert shared, f"expected the shared seed data beside the repository at {SHARED}"
    assert packaged == shared, "copy ../shared/seed-data/*.csv into sinergi/seed_data/"


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    name = f"sinergi_seed_{uuid.uuid4().hex[:10]}"
    asyncio.run(create_database(server_url, name))
    url = embedded.with_database(server_url, name)
    upgrade(url)
    yield url
    asyncio.run(drop_database(server_url, name))


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
    scratch_url: str, tmp_path: Path
) -> None:
    """Every command loads it: rewriting identical rows left a dead copy of each one behind."""
    first = asyncio.run(_load_and_read(scratch_url, SEED_DATA))
    assert asyncio.run(_load_and_read(scratch_url, SEED_DATA)) == first

    renamed = tmp_path / "seed-data"
    shutil.copytree(SEED_DATA, renamed)
    regions = renamed / "regions.csv"
    regions.write_text(
        regions.read_text(encoding="utf-8").replace("Kota Palangkaraya", "Kota Palangka Raya"),
        encoding="utf-8",
    )
    after = asyncio.run(_load_and_read(scratch_url, renamed))
    changed = {code for code in first if after[code] != first[code]}
    assert changed == {"62.71"}
    assert after["62.71"][0] == "Kota Palangka Raya"
