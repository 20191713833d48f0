"""The committed SDL is the schema: a code change not in schema.graphql fails here."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import asyncpg
import graphql

from domain.cooperative_records import SAVINGS_AND_LOAN_KBLI
from schema.build import sdl
from schema.visible import ClientSchemas
from tests.support.cli import sinergi

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


def test_the_health_rating_names_the_savings_and_loan_kbli_the_domain_holds() -> None:
    """Written once, in domain/cooperative_records.py: the inputs' descriptions follow it."""
    described = [line for line in sdl().splitlines() if "Health rating of the savings" in line]
    assert len(described) == 2
    for line in described:
        assert re.findall(r"\b\d{5}\b", line) == list(SAVINGS_AND_LOAN_KBLI)


def _cli(url: str, argv: list[str]) -> tuple[int, str]:
    code, out, _ = sinergi(url, *argv)
    return code, out


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


def test_sinergi_schema_as_a_client_leaves_out_a_write_it_cannot_hold(migrated_url: str) -> None:
    """A client registered before records:write needed records:read, with records:write alone,
    holds no write in its tokens: its printed schema shows none, as its introspection does."""
    create = ["clients", "create", "--name", f"Dinas {uuid.uuid4().hex[:6]}"]
    create += ["--org-kind", "province", "--jurisdiction", "62", "--purpose", "legacy writer"]
    create += ["--scopes", "records:read records:write aggregates:read", "--json"]
    code, out = _cli(migrated_url, create)
    assert code == 0, out
    client_id = json.loads(out)["client_id"]

    async def legacy() -> None:
        connection = await asyncpg.connect(migrated_url)
        try:
            await connection.execute(
                "UPDATE oauth_clients SET scopes = '{records:write,aggregates:read}'"
                " WHERE client_id = $1",
                client_id,
            )
        finally:
            await connection.close()

    asyncio.run(legacy())  # as registered before the rule: `clients create` refuses it now
    code, printed = _cli(migrated_url, ["schema", "--as", client_id])
    assert code == 0
    assert printed == ClientSchemas(sdl).for_scopes({"aggregates:read"}).sdl
    assert graphql.build_schema(printed).mutation_type is None
