"""A bundled rule set changed under a version already stored (a release that edited a published
rule set instead of publishing a new one) stops every command with one line and exit 2, naming
the version and what to do, never a traceback: stored rule sets never change, since a decision's
replay reads the one it was made under."""

from __future__ import annotations

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
