"""Publishing bounds a rule set's thresholds (a business age of at most ten years, amounts of at
most Rp1 quadrillion); a version stored before the bounds stays stored and is read as stored,
since refusing it when read would fail every check of its product, and every replay of a
decision made under it. `sinergi migrate` warns of it, naming the version and the key."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from db.engine import create_engine
from domain.ruleset import (
    BUNDLED_RULESETS,
    RECORD_VALUES_WITHHELD_FROM,
    load_rulesets,
    select_ruleset,
)
from resolvers.eligibility import ruleset
from tests.support.cli import sinergi
from tests.support.databases import run

PRODUCT = "UJI_BATAS_USIA"


def _aged(months: int, version: str, effective_from: str) -> dict[str, Any]:
    """The shipped rule set, as a version of PRODUCT asking `months` of business age."""
    shipped = select_ruleset(
        load_rulesets(BUNDLED_RULESETS), "JAMKRIDA_KTG_PRODUKTIF", RECORD_VALUES_WITHHELD_FROM
    )
    document: dict[str, Any] = json.loads(json.dumps(shipped.to_dict()))
    document.update(
        product=PRODUCT,
        version=version,
        effective_from=effective_from,
        min_business_age_months=months,
    )
    return document


@pytest.fixture(scope="module")
def stored_url(module_reference_url: str) -> str:
    """A database holding a version asking 180 months, as stored before the bound."""
    document = _aged(180, "2025.1", "2025-01-01")
    run(
        module_reference_url,
        "INSERT INTO eligibility_rulesets (product, version, effective_from, document)"
        " VALUES ($1, $2, $3::text::date, $4::jsonb) ON CONFLICT DO NOTHING",
        PRODUCT,
        document["version"],
        document["effective_from"],
        json.dumps(document),
    )
    return module_reference_url


async def test_a_stored_rule_set_past_the_bounds_is_still_read(stored_url: str) -> None:
    engine = create_engine(stored_url, statement_timeout_ms=10_000)
    try:
        async with engine.connect() as connection:
            rules = await ruleset(connection, PRODUCT, "2025.1")
    finally:
        await engine.dispose()
    assert rules.min_business_age_months == 180


def test_migrate_warns_of_a_stored_rule_set_past_the_bounds(
    stored_url: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "migrate"],
        env={"DATABASE_URL": stored_url, "SINERGI_HOME": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    assert warnings == [
        f"WARNING sinergi.rulesets: rule set {PRODUCT} 2025.1, in force from 2025-01-01, would"
        " now be refused: min_business_age_months: must be in 0..120; publish a version within"
        " the bounds (`sinergi rulesets load`) to supersede it"
    ], result.stderr


def test_publishing_a_rule_set_past_the_bounds_is_refused(
    module_reference_url: str, tmp_path: Path
) -> None:
    aged = _aged(100_000, "2027.1", "2027-01-01")
    (tmp_path / "aged.json").write_text(json.dumps(aged), encoding="utf-8")
    code, out, err = sinergi(module_reference_url, "rulesets", "load", str(tmp_path))
    assert (code, out) == (2, "")
    assert "min_business_age_months: aged.json: must be in 0..120" in err
    stored = "SELECT count(*) FROM eligibility_rulesets WHERE product = $1 AND version = '2027.1'"
    assert run(module_reference_url, stored, PRODUCT) == [(0,)]


def test_a_rule_set_text_no_column_can_store_is_refused_naming_its_key(
    module_reference_url: str, tmp_path: Path
) -> None:
    """The bug: only an empty product or version was refused, so one longer than its column, a
    NUL in a text, or a version of a lone surrogate (JSON's "\\ud800") ended the load in a
    database or encoding error's traceback. (Run in this process: each load stops at its
    first refusal, and a subprocess per case would cost more than the cases.)"""
    unstorable = "holds a NUL character or a lone surrogate, which no text field can store"
    shipped = _aged(12, "2027.2", "2027-02-01")
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"version": "9" * 41}, "version", "must be at most 40 characters"),
        ({"product": "P" * 61}, "product", "must be at most 60 characters"),
        ({"product": "UJI\x00"}, "product", unstorable),
        ({"notes": "catatan\x00"}, "notes", unstorable),
        ({"version": "\ud800"}, "version", unstorable),
        ({"allowed_scales": ["mikro\x00"]}, "allowed_scales", unstorable),
        (
            {"rules": {"R01": {**shipped["rules"]["R01"], "legal_basis": "\udcff"}}},
            "rules.R01.legal_basis",
            unstorable,
        ),
    ]
    for number, (change, key, expected) in enumerate(cases):
        folder = tmp_path / str(number)
        folder.mkdir()
        (folder / "r.json").write_text(json.dumps({**shipped, **change}), encoding="utf-8")
        code, out, err = sinergi(module_reference_url, "rulesets", "load", str(folder))
        assert (code, out, err) == (2, "", f"sinergi: {key}: r.json: {expected}\n"), change
    stored = "SELECT count(*) FROM eligibility_rulesets WHERE version = '2027.2'"
    assert run(module_reference_url, stored) == [(0,)]
