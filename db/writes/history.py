"""The change history: who changed which record, when, from what to what.

`changes` maps each changed column to {"before": …, "after": …}, the shape the bulk import writes
with `field_change` in SQL. Personal data never enters it; only the names of personal fields that
changed are kept, because the history is readable with `records:read` alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True, slots=True)
class Actor:
    """Who writes: an API client, or "cli:<user>" for an operator's import."""

    client_id: str
    organisation: str


_RECORD = text(
    "INSERT INTO record_changes"
    " (client_id, organisation, record_kind, record_id, operation, version, changes,"
    "  personal_fields, owner_niks)"
    " VALUES (:client_id, :organisation, :kind, :record_id, :operation, :version,"
    "  CAST(:changes AS jsonb), :personal_fields, CAST(:owner_niks AS varchar(16)[]))"
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date | datetime) else value


def changes_json(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> str:
    """The columns whose values differ, as JSON; dates as ISO strings, as `to_jsonb` writes them."""
    old = before or {}
    return json.dumps(
        {
            key: {"before": _plain(old.get(key)), "after": _plain(value)}
            for key, value in after.items()
            if old.get(key) != value
        }
    )


async def record(
    connection: AsyncConnection,
    actor: Actor,
    *,
    kind: str,
    record_id: int,
    operation: str,
    version: int,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any],
    personal_fields: Iterable[str] = (),
    owner_niks: Sequence[str] | None = None,
) -> None:
    """`owner_niks`: an MSME's owners whose figures the change holds, where the write knows
    more than the database's trigger would take (the owner on record at the insert, migration
    0062): a write replacing or erasing the owner gives the one before too."""
    await connection.execute(
        _RECORD,
        {
            "client_id": actor.client_id,
            "organisation": actor.organisation,
            "kind": kind,
            "record_id": record_id,
            "operation": operation,
            "version": version,
            "changes": changes_json(before, after),
            "personal_fields": sorted(personal_fields),
            "owner_niks": None if owner_niks is None else list(owner_niks),
        },
    )
