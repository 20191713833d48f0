"""A personal field is declared once (domain.records.OwnerDraft) and everything that handles
personal data follows it. The last tests add a field, `email`, exactly as a developer would (a
field in the declaration, a migration adding its column) in a copy of the source tree, and check
over HTTP that without `pii:read` it is neither selected, nor in a record's change history, nor
in the change feed, nor in an audit entry, and that with `pii:read` it is all of these."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType

from db.imports import STAGING
from db.models import MSME_OWNERS
from domain.personal import OWNER_COLUMNS, OWNER_FIELDS
from domain.register_csv import COLUMN_OF, OPTIONAL
from schema.build import build_schema
from schema.errors import graphql_schema
from tests.support.added_personal_field import OWNER
from tests.support.databases import empty_database

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("auth", "db", "domain", "resolvers", "schema", "sinergi", "tests")
DECLARATION_END = "\n\n@dataclass(frozen=True, slots=True)\nclass MsmeDraft"
EMAIL = """
    email: str | None = field(
        default=None,
        metadata=personal(
            csv="owner_email", check=lambda value, name, rules: validate_text(value, field=name)
        ),
    )
"""
MIGRATION = '''"""The owner's e-mail address, a personal field.

Revision ID: {revision}
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "{revision}"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("msme_owners", sa.Column("email", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("msme_owners", "email")
'''
EMAILS = ("sri@contoh.id", "sri.rahayu@contoh.id", "budi@contoh.id")


def test_the_owner_type_input_table_and_import_columns_are_the_declared_fields() -> None:
    schema = graphql_schema(build_schema())
    owner, owner_input = schema.get_type("Owner"), schema.get_type("OwnerInput")
    assert isinstance(owner, GraphQLObjectType)
    assert isinstance(owner_input, GraphQLInputObjectType)
    names = [field.name for field in OWNER_FIELDS]
    assert names == ["nik", "fullName", "sex", "birthDate", "phone", "address"]
    assert sorted(owner.fields) == sorted(owner_input.fields) == sorted(names)
    assert [column.name for column in MSME_OWNERS.c] == ["msme_id", *OWNER_COLUMNS]
    assert {f"owner_{column}" for column in OWNER_COLUMNS} <= set(STAGING.c.keys())
    assert all(COLUMN_OF[f"owner.{field.name}"] == field.csv for field in OWNER_FIELDS)
    assert {field.csv for field in OWNER_FIELDS} <= set(OPTIONAL)


def _head(versions: Path) -> str:
    """The newest migration's revision: the numbered files chain one after another."""
    newest = max(versions.glob("[0-9][0-9][0-9][0-9]_*.py"))
    found = re.search(r'^revision = "([^"]+)"', newest.read_text(encoding="utf-8"), re.M)
    assert found is not None
    return found.group(1)


def _tree_with_email(target: Path) -> None:
    """The sources, with the edits a developer makes to add a personal field and no other."""
    for package in SOURCES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    declaration = target / "domain" / "records.py"
    source = declaration.read_text(encoding="utf-8")
    assert source.count(DECLARATION_END) == 1
    declaration.write_text(source.replace(DECLARATION_END, EMAIL + DECLARATION_END), "utf-8")
    versions = target / "db" / "migrations" / "versions"
    head = _head(versions)
    revision = f"{int(head) + 1:04d}"  # the next number, as a developer would take it
    migration = MIGRATION.format(head=head, revision=revision)
    (versions / f"{revision}_owner_email.py").write_text(migration, encoding="utf-8")


@pytest.fixture(scope="module")
def database(server_url: str) -> Iterator[str]:
    """An empty database of this module's own (the copied tree migrates it), as its owner."""
    with empty_database(server_url, "sinergi_email") as url:
        yield url


@pytest.fixture(scope="module")
def seen(database: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tree = tmp_path_factory.mktemp("with-email")
    _tree_with_email(tree)
    out = tree / "seen.json"
    command = [sys.executable, "-m", "tests.support.added_personal_field", database, str(out)]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    seen: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return seen


def _rows(url: str, query: str) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        connection = await asyncpg.connect(url)
        try:
            return list(await connection.fetch(query))
        finally:
            await connection.close()

    return asyncio.run(fetch())


def _reads_owner_fields(sql: str) -> bool:
    """Whether a statement reads an owner's fields beyond the NIK, which one without `pii:read`
    reads for the audit entry alone (an MSME's figures are its owner's finances)."""
    return "msme_owners" in sql and "full_name" in sql


def _mentions_email(value: object) -> bool:
    text = json.dumps(value)
    return "email" in text.lower() or any(email in text for email in EMAILS)


def test_an_added_field_is_written_by_create_update_and_import(seen: dict[str, Any]) -> None:
    assert seen["csv_email"] == "x@contoh.id"  # the import's CSV column owner_email
    assert seen["created"]["data"]["createMsme"]["owner"] == {"email": "sri@contoh.id"}
    assert "errors" not in seen["updated"]
    assert seen["imported"]["data"]["importMsmes"] == {"created": 1, "errors": []}, seen["imported"]
    imported = seen["imported_with"]["answer"]["data"]["msme"]["owner"]
    assert imported["email"] == "budi@contoh.id"


def test_without_pii_read_the_added_field_is_not_even_selected(seen: dict[str, Any]) -> None:
    without = seen["without"]
    answer = without["answer"]
    assert answer["data"]["msme"]["owner"] is None
    [error] = answer["errors"]
    assert error["path"] == ["msme", "owner"]
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert without["statements"], "the record itself was read"
    assert not any("email" in sql for sql in without["statements"])
    assert not any(_reads_owner_fields(sql) for sql in without["statements"])


def test_with_pii_read_the_added_field_is_selected_and_answered(seen: dict[str, Any]) -> None:
    answer = seen["with"]["answer"]
    assert "errors" not in answer
    assert answer["data"]["msme"]["owner"] == {
        "nik": "6271995204880001",
        "fullName": "Sri Rahayu",
        "email": "sri.rahayu@contoh.id",
    }
    owners = [sql for sql in seen["with"]["statements"] if _reads_owner_fields(sql)]
    assert owners
    assert all("email" in sql for sql in owners)


def test_the_change_history_names_the_added_field_but_never_holds_its_value(
    seen: dict[str, Any], database: str
) -> None:
    for read in ("without", "with"):
        changes = seen[read]["answer"]["data"]["msme"]["changes"]
        assert [change["operation"] for change in changes] == ["create", "update"]
        assert "owner.email" in changes[0]["personalDataChanged"]
        assert changes[1]["personalDataChanged"] == ["owner.email"]
        assert not any(_mentions_email(change["fields"]) for change in changes)
    stored = _rows(database, "SELECT changes::text AS changes FROM record_changes")
    assert stored
    assert not any(_mentions_email(row["changes"]) for row in stored)


def test_the_change_feed_carries_the_added_field_only_with_pii_read(
    seen: dict[str, Any],
) -> None:
    plain = seen["feed_without"]
    entries = plain["answer"]["data"]["msmeChanges"]["entries"]
    assert {entry["record"]["nib"] for entry in entries} == {"7770000000001", "7770000000002"}
    assert all("owner" not in entry["record"] for entry in entries)
    assert not _mentions_email(plain["answer"])
    assert not any("email" in sql or _reads_owner_fields(sql) for sql in plain["statements"])
    with_pii = seen["feed_with"]["answer"]["data"]["msmeChanges"]["entries"]
    emails = {entry["record"]["owner"]["email"] for entry in with_pii}
    assert emails == {"sri.rahayu@contoh.id", "budi@contoh.id"}


def test_an_audit_entry_itemises_the_added_field_only_with_pii_read(
    seen: dict[str, Any], database: str
) -> None:
    rows = _rows(database, "SELECT entry::text AS entry, subjects FROM audit_log ORDER BY seq")
    entries = {json.loads(row["entry"])["operation"]: row for row in rows}
    without = json.loads(entries["WithoutPii"]["entry"])
    assert not _mentions_email(without)
    assert not any(field.startswith("Owner.") for field in without["touched"])
    # the history's figures are the owner's finances: the owner is named, no field of theirs
    assert not any(field.startswith("Owner.") for field in without["personalFields"])
    assert entries["WithoutPii"]["subjects"] == [OWNER["nik"]]
    assert not _mentions_email(json.loads(entries["FeedWithoutPii"]["entry"]))
    with_pii = json.loads(entries["WithPii"]["entry"])
    owner_fields = [field for field in with_pii["personalFields"] if field.startswith("Owner.")]
    assert owner_fields == ["Owner.email", "Owner.fullName", "Owner.nik"]
    assert "Owner.email" in with_pii["touched"]
    assert entries["WithPii"]["subjects"] == ["6271995204880001"]
