"""Cooperative writes: create, update, deactivate (callers validate with check_cooperative)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, LEGAL_ENTITY_NO_FOLDED, MSMES
from db.queries import Record
from db.queries.scoping import RowScope
from db.writes.history import Actor, record
from db.writes.versioned import inserted, locked, write
from domain.cooperative_records import CheckedCooperative


def record_values(checked: CheckedCooperative) -> dict[str, Any]:
    return asdict(checked)


async def create(connection: AsyncConnection, checked: CheckedCooperative, actor: Actor) -> Record:
    values = record_values(checked)
    created = await inserted(
        connection,
        COOPERATIVES,
        values,
        keys={
            "uq_cooperatives_legal_entity_no": "input.legalEntityNo",
            LEGAL_ENTITY_NO_FOLDED: "input.legalEntityNo",
        },
    )
    await record(
        connection,
        actor,
        kind="cooperative",
        record_id=created.id,
        operation="create",
        version=created.version,
        before=None,
        after=values,
    )
    return created


async def has_msme_members(connection: AsyncConnection, cooperative_id: int) -> bool:
    """Whether any MSME, in any region and active or not, names the cooperative as its own.
    Read under the cooperative's lock (`lock`), which an MSME joining it takes too
    (resolvers/msme_writes.py), so none joins between this answer and the write it decides."""
    named = select(MSMES.c.id).where(MSMES.c.cooperative_id == cooperative_id).exists()
    return bool(await connection.scalar(select(named)))


async def lock(connection: AsyncConnection, cooperative_id: int, scope: RowScope) -> Record:
    """The cooperative a mutation's `id` names."""
    return await locked(
        connection, COOPERATIVES, cooperative_id, scope.rows(COOPERATIVES), field="id"
    )


async def update(
    connection: AsyncConnection,
    current: Record,
    *,
    expected_version: int,
    values: dict[str, Any],
    actor: Actor,
    operation: str = "update",
) -> Record:
    return await write(
        connection,
        COOPERATIVES,
        current,
        expected_version=expected_version,
        values=values,
        actor=actor,
        kind="cooperative",
        operation=operation,
    )
