"""The committed SDL is the schema: a code change not in schema.graphql fails here."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from unittest import mock

import graphql

from schema.build import sdl
from schema.visible import ClientSchemas
from sinergi.cli import main

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


def _cli(url: str, argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        code = main(argv)
    return code, out.getvalue()


def test_sinergi_schema_as_a_client_prints_only_what_its_scopes_allow(migrated_url: str) -> None:
    name = f"Bappenas {uuid.uuid4().hex[:6]}"
    create = ["clients", "create", "--name", name, "--org-kind", "ministry"]
    create += ["--jurisdiction", "ID", "--purpose", "planning figures", "--json"]
    code, out = _cli(migrated_url, create)
    assert code == 0, out
    client_id = json.loads(out)["client_id"]
    code, printed = _cli(migrated_url, ["schema", "--as", client_id])
    assert code == 0
    assert printed == ClientSchemas(sdl).for_scopes({"aggregates:read", "targets:read"}).sdl
    schema = graphql.build_schema(printed)
    assert schema.mutation_type is None
    assert schema.get_type("Msme") is None
    assert "msmeFigures" in schema.query_type.fields  # type: ignore[union-attr]
    assert '@requiresScopes(scopes: ["aggregates:read"])' in printed
    assert _cli(migrated_url, ["schema", "--as", "no-such-client"])[0] == 2
