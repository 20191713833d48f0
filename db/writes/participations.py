"""Programme participation writes, scoped by the subject: a participation is writable when its
MSME or cooperative lies in the writer's jurisdiction."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import COOPERATIVES, MSMES, PARTICIPATIONS, PROGRAMMES
from db.queries import Record
from db.queries.scoping import RowScope
from db.writes import Duplicate, msmes
from db.writes.history import Actor, record
from db.writes.versioned import locked, write
from domain.errors import InvalidValue
from domain.identifiers import is_within
from domain.participations import ParticipationStatus


async def create(
    connection: AsyncConnection,
    *,
    programme_id: str,
    subject: tuple[str, int],
    role: str,
    status: ParticipationStatus,
    detail: str | None,
    started_on: date | None,
    scope: RowScope,
    actor: Actor,
) -> Record:
    """`subject` is ("msme" | "cooperative", id); one subject holds a role in a programme once,
    and only in a programme whose jurisdiction it lies in: a province's programme is its own to
    enrol in, and another province could neither see nor remove what it enrolled there. A
    dissolved cooperative no longer exists in law, so it takes up no new role (an inactive one
    may revive, so it may)."""
    kind, subject_id = subject
    if kind == "msme":
        await msmes.after_imports(connection)  # an import holds the records it writes locked
    table = MSMES if kind == "msme" else COOPERATIVES
    subject_field = "input.msmeId" if kind == "msme" else "input.cooperativeId"
    located = await locked(connection, table, subject_id, scope.rows(table), field=subject_field)
    if kind == "cooperative" and located.status == "dissolved":
        raise InvalidValue("input.cooperativeId", "the cooperative is dissolved; it joins nothing")
    programme = (
        await connection.execute(
            select(PROGRAMMES.c.jurisdiction).where(PROGRAMMES.c.id == programme_id)
        )
    ).first()
    if programme is None:
        raise InvalidValue("input.programmeId", "no such programme")
    if not is_within(located.district_code or located.regency_code, programme.jurisdiction):
        raise InvalidValue(
            "input.programmeId",
            f"{programme_id} is a programme of region {programme.jurisdiction}, "
            "which this business does not lie in",
        )
    column = PARTICIPATIONS.c.msme_id if kind == "msme" else PARTICIPATIONS.c.cooperative_id
    taken = await connection.execute(
        select(PARTICIPATIONS.c.id).where(
            PARTICIPATIONS.c.programme_id == programme_id,
            column == subject_id,
            PARTICIPATIONS.c.role == role,
        )
    )
    if taken.first() is not None:
        raise Duplicate("input.role", "this business already has this role in the programme")
    values: dict[str, Any] = {
        "programme_id": programme_id,
        "msme_id": subject_id if kind == "msme" else None,
        "cooperative_id": subject_id if kind == "cooperative" else None,
        "role": role,
        "status": status,
        "detail": detail,
        "started_on": started_on,
    }
    statement = PARTICIPATIONS.insert().values(values).returning(*PARTICIPATIONS.c)
    created = (await connection.execute(statement)).one()
    await record(
        connection,
        actor,
        kind="participation",
        record_id=created.id,
        operation="create",
        version=created.version,
        before=None,
        after=values,
    )
    return created


def _visible(scope: RowScope) -> Any:
    return or_(
        and_(MSMES.c.id.is_not(None), scope.rows(MSMES)),
        and_(COOPERATIVES.c.id.is_not(None), scope.rows(COOPERATIVES)),
    )


async def lock(connection: AsyncConnection, participation_id: int, scope: RowScope) -> Record:
    """The participation a mutation's `id` names."""
    joined = PARTICIPATIONS.outerjoin(MSMES, MSMES.c.id == PARTICIPATIONS.c.msme_id).outerjoin(
        COOPERATIVES, COOPERATIVES.c.id == PARTICIPATIONS.c.cooperative_id
    )
    return await locked(
        connection, PARTICIPATIONS, participation_id, _visible(scope), field="id", joined=joined
    )


async def update(
    connection: AsyncConnection,
    current: Record,
    *,
    expected_version: int,
    values: dict[str, Any],
    actor: Actor,
) -> Record:
    return await write(
        connection,
        PARTICIPATIONS,
        current,
        expected_version=expected_version,
        values=values,
        actor=actor,
        kind="participation",
        operation="update",
    )
