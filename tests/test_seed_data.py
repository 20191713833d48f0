"""The reference data shipped in the package is the shared seed data, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

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
