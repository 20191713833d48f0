"""Whether a database is prepared for this code already: migrated, its service role granted, its
reference data loaded, exactly as this code's `sinergi.database.prepared` would leave it.

Preparing is idempotent but not free: every command paid a tenth of a second for it, and the
import of Alembic, where the database was already as those steps leave it. So preparing ends by
recording a fingerprint of what the steps apply (the migration files, the grants db/roles.py
declares to the service role, the reference files and rule sets, and db/seed.py), with the Alembic
revisions the database then stands at, in `preparation` (migration 0018). A command whose code
has the same fingerprint, on a database still at those revisions, skips the steps: a new or
changed migration, grant or reference file changes the fingerprint, and a downgrade the
revisions, and the steps run again. Only the owner writes the record; the service role holds no
privilege on it (db/roles.py). Changes made by hand behind the steps' back (a grant revoked, a
region edited in SQL) are not noticed: `sinergi migrate` always runs the steps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection

from db import roles

MIGRATIONS = Path(__file__).parent / "migrations"
_LOADER = Path(__file__).with_name("seed.py")
"""db/seed.py: how the reference files become rows is part of what the steps apply."""

_REVISIONS = "ARRAY(SELECT version_num::text FROM alembic_version ORDER BY version_num)"
_IS_PREPARED = text(
    f"SELECT fingerprint = :fingerprint AND revisions = {_REVISIONS} FROM preparation"  # noqa: S608  # fixed text
)
_RECORD = text(
    "INSERT INTO preparation (fingerprint, revisions)"  # noqa: S608  # fixed text
    f" VALUES (:fingerprint, {_REVISIONS})"
    " ON CONFLICT (singleton) DO UPDATE SET fingerprint = EXCLUDED.fingerprint,"
    " revisions = EXCLUDED.revisions, prepared_at = now()"
)


def fingerprint(reference: Sequence[Path], service_role: str | None) -> str:
    """What preparing applies, as one hash: the migrations, the grants to `service_role` (none
    when the owner serves), and the reference data in the directories `reference`."""
    digest = hashlib.sha256()
    for statement in roles.grant_statements(service_role) if service_role is not None else []:
        digest.update(statement.encode() + b"\n")
    for path in [
        *_files(MIGRATIONS),
        _LOADER,
        *(file for directory in reference for file in _files(directory)),
    ]:
        content = path.read_bytes()
        digest.update(f"{path.name} {len(content)}\n".encode() + content)
    return digest.hexdigest()


def _files(directory: Path) -> list[Path]:
    return sorted(
        path for path in directory.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


async def is_prepared(connection: AsyncConnection, expected: str) -> bool:
    """True when the database records `expected` and still stands at the revisions it recorded.
    False on a database from before migration 0018, or never prepared."""
    try:
        return bool((await connection.execute(_IS_PREPARED, {"fingerprint": expected})).scalar())
    except ProgrammingError:  # no `preparation` table (or version table) yet
        return False


async def record(connection: AsyncConnection, prepared_for: str) -> None:
    """Note, as the owner, that the database is prepared for `prepared_for` at its current
    revisions: in the transaction of the last step, so a failed step leaves no record."""
    await connection.execute(_RECORD, {"fingerprint": prepared_for})
