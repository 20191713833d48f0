"""A rule set an operator stored before rule set 2026.5's rule (no reason names a value of the
record from 6 December 2026) stays stored and is read as stored, since refusing it at request
time would fail every check of its product from its effective date; `sinergi migrate` warns of
it, naming the version and the message. Loading a new version quoting the record is refused,
whatever its effective date; loading one identical to a stored version adds nothing, and is not."""

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
from sinergi.ruleset_review import refused_when_published
from tests.support.cli import sinergi
from tests.support.databases import run

PRODUCT = "UJI_PRODUK_TERSIMPAN"
MESSAGE = "rules.R02.messages.pass.en"


def _quoting(
    product: str = PRODUCT, version: str = "2027.1", effective_from: str = "2027-01-01"
) -> dict[str, Any]:
    """A version (by default in force from 2027) whose R02 reason names the business's scale."""
    shipped = select_ruleset(
        load_rulesets(BUNDLED_RULESETS), "JAMKRIDA_KTG_PRODUKTIF", RECORD_VALUES_WITHHELD_FROM
    )
    document: dict[str, Any] = json.loads(json.dumps(shipped.to_dict()))
    document.update(product=product, version=version, effective_from=effective_from)
    document["rules"]["R02"]["messages"]["pass"]["en"] = "Scale {scale} is allowed."
    return document


@pytest.fixture(scope="module")
def stored_url(module_reference_url: str) -> str:
    """A database holding the quoting version, as an operator stored it before the upgrade."""
    document = _quoting()
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


async def test_a_stored_rule_set_quoting_the_record_is_still_read(stored_url: str) -> None:
    engine = create_engine(stored_url, statement_timeout_ms=10_000)
    try:
        async with engine.connect() as connection:
            rules = await ruleset(connection, PRODUCT, "2027.1")
    finally:
        await engine.dispose()
    assert rules.rules["R02"].messages["pass"].en == "Scale {scale} is allowed."


def test_migrate_warns_of_a_stored_rule_set_publishing_would_refuse(
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
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith(
        f"WARNING sinergi.rulesets: rule set {PRODUCT} 2027.1, in force from 2027-01-01, would"
        f" now be refused: {MESSAGE}: {{scale}} is a value of the record"
    )


def test_loading_a_rule_set_quoting_the_record_is_refused_naming_the_message(
    module_reference_url: str, tmp_path: Path
) -> None:
    quoting = _quoting(version="2027.2", effective_from="2027-02-01")
    (tmp_path / "quoting.json").write_text(json.dumps(quoting), encoding="utf-8")
    code, out, err = sinergi(module_reference_url, "rulesets", "load", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"sinergi: {MESSAGE}: quoting.json: {{scale}} is a value of the record")


def test_a_new_rule_set_quoting_the_record_is_refused_whatever_its_effective_date(
    module_reference_url: str, tmp_path: Path
) -> None:
    """Dated before 2026.5's day, a version published today escaped the rule: the first of a
    product is in force from its date on, quoting the record to every guarantor asking."""
    backdated = _quoting("UJI_PRODUK_MUNDUR", "2026.1", "2026-01-15")
    (tmp_path / "backdated.json").write_text(json.dumps(backdated), encoding="utf-8")
    code, out, err = sinergi(module_reference_url, "rulesets", "load", str(tmp_path))
    assert (code, out) == (2, "")
    assert err.startswith(f"sinergi: {MESSAGE}: backdated.json: {{scale}} is a value of the record")
    stored = "SELECT count(*) FROM eligibility_rulesets WHERE product = 'UJI_PRODUK_MUNDUR'"
    assert run(module_reference_url, stored) == [(0,)]


def test_loading_again_a_stored_rule_set_quoting_the_record_publishes_nothing(
    stored_url: str, tmp_path: Path
) -> None:
    """A directory of every version loads again as before: one identical to a stored version
    adds nothing, so it is not refused for what it was stored with."""
    (tmp_path / "stored.json").write_text(json.dumps(_quoting()), encoding="utf-8")
    code, out, err = sinergi(stored_url, "rulesets", "load", str(tmp_path))
    assert (code, out) == (0, "no new rule-set versions\n"), err


def test_a_stored_rule_set_that_no_longer_reads_is_named_not_fatal() -> None:
    """Start-up names it and goes on: a check under it fails, which the operator must hear of."""
    assert refused_when_published([(PRODUCT, "2020.1", {"product": PRODUCT})]) == [
        f"rule set {PRODUCT} 2020.1 no longer reads: version: is missing"
    ]
