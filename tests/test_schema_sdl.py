"""The committed SDL is the schema: a code change not in schema.graphql fails here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from schema.build import sdl

COMMITTED = Path(__file__).resolve().parents[1] / "schema.graphql"


def test_committed_sdl_matches_the_code() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == sdl(), (
        "schema.graphql is out of date: run `.venv/bin/sinergi schema > schema.graphql`"
    )


def test_sinergi_schema_prints_the_sdl() -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "schema"],
        capture_output=True,
        text=True,
        check=True,
        env={"SINERGI_HOME": "/nonexistent", "PATH": ""},
    )
    assert printed.stdout == sdl()


def test_every_guarded_field_publishes_its_scopes() -> None:
    text = sdl()
    assert 'owner: Owner @requiresScopes(scopes: ["pii:read"])' in text
    assert '@requiresScopes(scopes: ["records:read"])' in text
