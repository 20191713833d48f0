"""Programme participation mutations: a business inside the jurisdiction joins a programme of a
region it lies in, and its participation's status and detail are kept current."""

from __future__ import annotations

from datetime import date
from typing import Any

from strawberry.types import Info

from db.writes import participations
from domain.errors import InvalidValue
from domain.participations import ParticipationPatch, ParticipationStatus
from domain.records import validate_past_date, validate_text
from resolvers import Node, calendar
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.reference import checked_programme_id
from resolvers.writing import actor_of, at_version, record_key, writing

_ROLE_MAX = 20


def _checked_text(value: str | None, field: str, max_length: int = 200) -> str | None:
    if value is None:
        return None
    try:
        return validate_text(value, field=field, max_length=max_length)
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


def _checked_date(value: date | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return validate_past_date(value, field=field, today=calendar.today())
    except InvalidValue as error:
        raise bad_input(error.field, error.reason) from None


async def create(
    info: Info[Context, Any],
    *,
    programme_id: str,
    msme_id: str | None,
    cooperative_id: str | None,
    role: str,
    status: ParticipationStatus,
    detail: str | None,
    started_on: date | None,
) -> Node:
    if (msme_id is None) == (cooperative_id is None):
        raise bad_input("input.msmeId", "give exactly one of msmeId and cooperativeId")
    subject = (
        ("msme", record_key(msme_id, "input.msmeId"))
        if msme_id is not None
        else ("cooperative", record_key(cooperative_id or "", "input.cooperativeId"))
    )
    programme_id = checked_programme_id(programme_id, "input.programmeId")
    principal = info.context.principal
    checked_role = _checked_text(role, "input.role", _ROLE_MAX) or ""
    async with writing(info) as connection:
        created = await participations.create(
            connection,
            programme_id=programme_id,
            subject=subject,
            role=checked_role,
            status=status,
            detail=_checked_text(detail, "input.detail"),
            started_on=_checked_date(started_on, "input.startedOn"),
            scope=info.context.policy.records,
            owned=info.context.policy.owns_programmes,
            actor=actor_of(principal),
        )
        info.context.accesses.records_returned("participation", 1)
        return created


async def update(
    info: Info[Context, Any], raw_id: str, version: int, patch: ParticipationPatch
) -> Node:
    principal = info.context.principal
    key = record_key(raw_id, "id")
    values: ParticipationPatch = {}
    if "status" in patch:
        values["status"] = patch["status"]
    if "detail" in patch:
        values["detail"] = _checked_text(patch["detail"], "changes.detail")
    if "started_on" in patch:
        values["started_on"] = _checked_date(patch["started_on"], "changes.startedOn")
    async with writing(info) as connection:
        current = at_version(
            await participations.lock(connection, key, info.context.policy.records), version
        )
        await participations.check_change(
            connection, current, values, info.context.policy.owns_programmes
        )
        written = await participations.update(
            connection,
            current,
            expected_version=version,
            values=values,
            actor=actor_of(principal),
        )
        info.context.accesses.records_returned("participation", 1)
        return written
