"""Cooperative mutations (see resolvers/msme_writes.py for the pattern)."""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from db.writes import cooperatives, participations
from domain.cooperative_records import (
    SECONDARY,
    CooperativeDraft,
    CooperativePatch,
    check_cooperative,
)
from domain.records import draft_values, unchanged
from resolvers import Node
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.writing import actor_of, at_version, checked_record, record_key, writing


def _noted(info: Info[Context, Any], row: Node) -> Node:
    info.context.accesses.records_returned("cooperative", 1)
    return row


async def create(info: Info[Context, Any], draft: CooperativeDraft) -> Node:
    principal = info.context.principal
    async with writing(info) as connection:
        checked = await checked_record(
            connection, info.context.policy, draft, "input", check_cooperative
        )
        created = await cooperatives.create(connection, checked, actor_of(principal))
        return _noted(info, created)


async def update(
    info: Info[Context, Any], raw_id: str, version: int, patch: CooperativePatch
) -> Node:
    """`patch` holds the fields the client sent, by draft field name."""
    principal = info.context.principal
    key = record_key(raw_id, "id")
    async with writing(info) as connection:
        current = at_version(
            await cooperatives.lock(connection, key, info.context.policy.records), version
        )
        stored = CooperativeDraft(
            legal_entity_no=current.legal_entity_no,
            name=current.name,
            type=current.type,
            region=current.regency_code,
            district=current.district_code,
            tier=current.tier,
            ods_no=current.ods_no,
            kbli_code=current.kbli_code,
            members_male=current.members_male,
            members_female=current.members_female,
            business_volume=current.business_volume,
            assets=current.assets,
            surplus=current.surplus,
            book_year=current.book_year,
            established_on=current.established_on,
            last_rat_date=current.last_rat_date,
            last_rat_book_year=current.last_rat_book_year,
            ksp_health=current.ksp_health,
            ksp_health_book_year=current.ksp_health_book_year,
        )
        merged = replace(stored, **patch)
        checked = await checked_record(
            connection,
            info.context.policy,
            merged,
            "changes",
            partial(
                check_cooperative,
                stored_number=current.legal_entity_no,
                kept=unchanged(draft_values(merged), draft_values(stored)),
            ),
        )
        if checked.tier == SECONDARY != current.tier:
            await _without_msme_members(connection, current.id)
        written = await cooperatives.update(
            connection,
            current,
            expected_version=version,
            values=cooperatives.record_values(checked),
            actor=actor_of(principal),
        )
        await participations.check_move(
            connection,
            "cooperative",
            current,
            written,
            fields=("changes.region", "changes.district"),
        )
        return _noted(info, written)


async def _without_msme_members(connection: AsyncConnection, cooperative_id: int) -> None:
    """A cooperative made secondary has cooperatives for members, no MSME (UU 25/1992 Pasal
    15), as an MSME joins no secondary cooperative (resolvers/msme_writes.py): while any MSME
    names it, wherever it lies, it stays primary. The refusal states that rule, in the same
    words whoever asks: the members may all lie outside the writer's jurisdiction, where it is
    shown none of them, and are neither named nor counted."""
    if await cooperatives.has_msme_members(connection, cooperative_id):
        raise bad_input(
            "changes.tier",
            "a cooperative with MSME members, in any region, stays primary: a secondary "
            "cooperative's members are cooperatives (UU 25/1992 Pasal 15), so each member MSME "
            "must leave it first; where you are shown none, ask the province whose jurisdiction "
            "holds them",
        )


async def deactivate(info: Info[Context, Any], raw_id: str, version: int) -> Node:
    return await _set_status(info, raw_id, version, "inactive", operation="deactivate")


async def reactivate(info: Info[Context, Any], raw_id: str, version: int) -> Node:
    """Undo a deactivation: an update of the status (inactive to active) in the history, which
    the change feed shows as UPDATED; an active cooperative is left as it is, as deactivating an
    inactive one is."""
    return await _set_status(info, raw_id, version, "active", operation="update")


async def _set_status(
    info: Info[Context, Any], raw_id: str, version: int, status: str, *, operation: str
) -> Node:
    """A dissolved cooperative stays dissolved (a legal act, not an agency's to undo): making it
    inactive would let a later reactivation revive it, so its status is refused here."""
    principal = info.context.principal
    key = record_key(raw_id, "id")
    async with writing(info) as connection:
        current = at_version(
            await cooperatives.lock(connection, key, info.context.policy.records), version
        )
        if current.status == "dissolved":
            raise bad_input("id", "the cooperative is dissolved; its status cannot be changed")
        written = await cooperatives.update(
            connection,
            current,
            expected_version=version,
            values={"status": status},
            actor=actor_of(principal),
            operation=operation,
        )
        return _noted(info, written)
