"""A bundled rule set changed under a version already stored (a release that edited a published
rule set instead of publishing a new one) stops every command with one line and exit 2, naming
the version and what to do, never a traceback: stored rule sets never change, since a decision's
replay reads the one it was made under. A new version taking effect on a stored one's day is
refused the same way: which of the two was in force would be left to the order of a scan."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.databases import run


def test_a_rule_set_changed_under_its_stored_version_is_one_line(
    module_reference_url: str, tmp_path: Path
) -> None:
    run(
        module_reference_url,
        "UPDATE eligibility_rulesets SET document = jsonb_set(document, '{notes}', '\"edited\"')"
        " WHERE version = '2026.4'",
    )
    result = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "clients", "list"],
        env={"DATABASE_URL": module_reference_url, "SINERGI_HOME": str(tmp_path), "PATH": ""},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == (
        "sinergi: version: JAMKRIDA_KTG_PRODUKTIF 2026.4 differs from the stored version of that"
        " name; publish the change under a new version\n"
    )


def test_a_new_version_on_a_stored_versions_day_is_refused_in_one_line(
    reference_url: str, tmp_path: Path
) -> None:
    bundled = Path("domain/rulesets/jamkrida-kalteng-productive@2026-12-06.json")
    document = json.loads(bundled.read_text(encoding="utf-8"))
    same_day = {**document, "version": "2099.1", "effective_from": "2026-12-05"}
    published = tmp_path / "published"
    published.mkdir()
    (published / "same-day.json").write_text(json.dumps(same_day), encoding="utf-8")
    stored = "SELECT count(*) FROM eligibility_rulesets WHERE version = '2099.1'"
    try:
        result = subprocess.run(
            [sys.executable, "-m", "sinergi.cli", "rulesets", "load", str(published)],
            env={"DATABASE_URL": reference_url, "SINERGI_HOME": str(tmp_path), "PATH": ""},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run(reference_url, stored) == [(0,)]
    finally:  # were it stored, the session's other modules would check under it
        run(reference_url, "DELETE FROM eligibility_rulesets WHERE version = '2099.1'")
    assert (result.returncode, result.stdout) == (2, ""), result.stderr
    assert result.stderr == (
        "sinergi: effective_from: JAMKRIDA_KTG_PRODUKTIF 2099.1 would take effect on 2026-12-05,"
        " as the stored 2026.4 does; one version takes effect on a day, so give it another date\n"
    )


def test_a_pair_stored_on_one_day_does_not_stop_preparation(
    reference_url: str, tmp_path: Path
) -> None:
    """Such a pair was accepted before publishing refused it, and stored versions never change:
    checking the bundled versions' days at every preparation stopped every `migrate` for good."""
    stored = json.loads(
        Path("domain/rulesets/jamkrida-kalteng-productive@2026-12-06.json").read_text()
    )
    pair = {**stored, "version": "2026.5-ktg"}
    try:
        run(
            reference_url,
            "INSERT INTO eligibility_rulesets (product, version, effective_from, document)"
            " VALUES ('JAMKRIDA_KTG_PRODUKTIF', '2026.5-ktg', '2026-12-06', $1::jsonb)",
            json.dumps(pair),
        )
        result = subprocess.run(
            [sys.executable, "-m", "sinergi.cli", "migrate"],
            env={"DATABASE_URL": reference_url, "SINERGI_HOME": str(tmp_path), "PATH": ""},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        run(reference_url, "DELETE FROM eligibility_rulesets WHERE version = '2026.5-ktg'")
    assert result.returncode == 0, result.stdout + result.stderr
