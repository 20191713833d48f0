"""Programme participation writes, scoped as they are read (db/queries/programmes.visible): a
participation is writable when its MSME or cooperative lies in the writer's jurisdiction, or,
once the business has left the programme's region, when that region does.

A business takes part only in a programme of a region it lies in (`_lies_in`): checked when it
joins, when it moves (a bulk import's move too), and when a participation it ended is taken up
again. It takes part only in a programme for its kind of subject, and an MSME only while it is
one (a large enterprise is outside the MSME programmes): checked when it joins and whenever its
participation enters a status of taking part (`_fit`). It starts no earlier than the programme."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Literal, NamedTuple

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Join,
    Row,
    Select,
    Table,
    Text,
    bindparam,
    column,
    false,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import (
    COOPERATIVES,
    MSMES,
    PARTICIPATION_ROLE,
    PARTICIPATIONS,
    PROGRAMMES,
    RECORD_CHANGES,
)
from db.queries import Record, programmes
from db.queries.scoping import RowScope
from db.writes import Duplicate, NotPermitted, msmes
from db.writes.history import Actor, record
from db.writes.versioned import locked, write
from domain.errors import InvalidValue
from domain.participations import ParticipationPatch, ParticipationStatus
from domain.programmes import ProgrammeSubjects
from domain.scale import MSME_SCALES

Kind = Literal["msme", "cooperative"]
ENDED = (ParticipationStatus.WITHDRAWN, ParticipationStatus.COMPLETED)
"""A participation in any other status is taking part (or about to), which ties the business
to the programme's region."""


def _subject(kind: Kind) -> tuple[Table, ColumnElement[Any]]:
    """The table of a participation's subject and the participations' column naming it."""
    if kind == "msme":
        return MSMES, PARTICIPATIONS.c.msme_id
    return COOPERATIVES, PARTICIPATIONS.c.cooperative_id


def _lies_in(table: FromClause) -> ColumnElement[bool]:
    """Whether the row of `table` (MSMEs, cooperatives, or the places an import would give MSMEs:
    `refused_moves`) lies in the region of the programme beside it (programmes.lies_in)."""
    return programmes.lies_in(table, PROGRAMMES.c.jurisdiction)


def _one_beside_the_other(table: Table) -> Join:
    """Programmes and `table` side by side, each statement narrowing both to one row: a
    programme is compared with a business it has no key to."""
    return PROGRAMMES.join(table, true())


def _fit(
    table: Table, kind: Kind, programme_id: str, subject_id: int, owned: ColumnElement[bool]
) -> Select[Any]:
    """The programme beside the business of `table` (of `kind`): its region and start, whether
    the business lies in that region (`_lies_in`), whether the programme takes in its kind of
    subject, whether it is of an MSME scale (a cooperative always is: the scale is an MSME's),
    whether the writer owns the programme (`owned`, the policy's `owns_programmes`), and
    whether the business is a dissolved cooperative.
    One statement, read as the business stands in this transaction; no row: no such programme."""
    is_msme = table.c.scale.in_(sorted(MSME_SCALES)) if kind == "msme" else true()
    dissolved = table.c.status == "dissolved" if kind == "cooperative" else false()
    return (
        select(
            PROGRAMMES.c.jurisdiction,
            PROGRAMMES.c.starts_on,
            PROGRAMMES.c.subjects,
            _lies_in(table).label("lies_in"),
            PROGRAMMES.c.subjects.in_((kind, ProgrammeSubjects.BOTH.value)).label("takes_kind"),
            is_msme.label("is_msme"),
            owned.label("owned"),
            dissolved.label("dissolved"),
        )
        .select_from(_one_beside_the_other(table))
        .where(PROGRAMMES.c.id == programme_id, table.c.id == subject_id)
    )


def _not_taken_in(programme_id: str, fit: Row[Any], kind: Kind) -> str | None:
    """Why the programme does not take in the business `fit` (`_fit`'s row) describes."""
    if not fit.takes_kind:
        whom = "MSMEs" if fit.subjects == ProgrammeSubjects.MSME else "cooperatives"
        return f"{programme_id} is a programme for {whom} only, not for a {kind}"
    if not fit.is_msme:
        return (
            "the business is a large enterprise (PP 7/2021 Pasal 35), outside the MSME programmes"
        )
    return None


def _check_start(started_on: date | None, fit: Row[Any], field: str) -> None:
    """A business takes part in a programme from its start, not before it existed."""
    if started_on is not None and fit.starts_on is not None and started_on < fit.starts_on:
        raise InvalidValue(
            field,
            f"{started_on.isoformat()} is before the programme started "
            f"({fit.starts_on.isoformat()})",
        )


def _ever_verified(participation_id: int) -> Select[Any]:
    """Whether the participation's history shows it VERIFIED: an entry that made it so, or one
    that moved it on from it (a participation stored VERIFIED by migration 0026's normalising
    or the demo loader has no entry of its own). One statement on the history's index by
    record."""
    status = RECORD_CHANGES.c.changes["status"]

    def verified(side: str) -> ColumnElement[bool]:
        """Before migration 0026, statuses were free text ("Terverifikasi", " Verified"): it
        normalised the stored ones, not their history, so the history is read as it did."""
        word = func.lower(func.btrim(status[side].astext, " \t\r\n"))
        return word.in_((ParticipationStatus.VERIFIED.value, "terverifikasi"))

    return select(
        select(RECORD_CHANGES.c.id)
        .where(
            RECORD_CHANGES.c.record_kind == "participation",
            RECORD_CHANGES.c.record_id == participation_id,
            or_(verified("after"), verified("before")),
        )
        .exists()
    )


async def _check_verifier(
    connection: AsyncConnection,
    before: Record | None,
    values: ParticipationPatch,
    fit: Row[Any],
    prefix: str,
) -> None:
    """VERIFIED says the programme's owner checked the business for the part its detail names:
    no one else may say it (`values` entering it, on `before`, the participation as it stands,
    None when it is created), nor take it back to PROPOSED, nor rewrite the detail it vouched
    for while the mark stands. Moving on, to ACTIVE or an ended status (with a detail of its
    own), is the writer's of the business's jurisdiction; but a participation that was ever
    VERIFIED goes back to PROPOSED by the owner alone, so the mark is not taken back in two
    steps (through ACTIVE or an end), nor its detail rewritten on the way back: its history
    (`_ever_verified`, read in the write's transaction) says so. `prefix` is the argument,
    "input" or "changes"."""
    if fit.owned:
        return
    was = None if before is None else before.status
    status = values.get("status", was)
    if status == ParticipationStatus.VERIFIED and was != ParticipationStatus.VERIFIED:
        raise NotPermitted(
            f"{prefix}.status", "only the programme's owner marks a participation VERIFIED in it"
        )
    if before is None:
        return
    if (
        status == ParticipationStatus.PROPOSED
        and was != ParticipationStatus.PROPOSED
        and (
            was == ParticipationStatus.VERIFIED
            or await connection.scalar(_ever_verified(before.id))
        )
    ):
        raise NotPermitted(
            f"{prefix}.status",
            "only the programme's owner takes back its VERIFIED mark; the participation may "
            "become ACTIVE or end",
        )
    if was != ParticipationStatus.VERIFIED:
        return
    if (
        status == ParticipationStatus.VERIFIED
        and "detail" in values
        and values["detail"] != before.detail
    ):
        raise NotPermitted(
            f"{prefix}.detail",
            "the programme's owner verified the participation as its detail stands; only the "
            "owner changes it while it is VERIFIED",
        )


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
    owned: ColumnElement[bool],
    actor: Actor,
) -> Record:
    """`subject` is ("msme" | "cooperative", id); one subject holds a role in a programme once
    (in any case: `PARTICIPATION_ROLE`, as the database's unique index folds it),
    and only in a programme whose jurisdiction it lies in: a province's programme is its own to
    enrol in, and another province could neither see nor remove what it enrolled there. A
    dissolved cooperative no longer exists in law, so it takes up no new role (an inactive one
    may revive, so it may). The programme must take in the business (`_fit`), and the
    participation starts no earlier than the programme. Only its owner (`owned`) enrols a
    business as VERIFIED."""
    given, subject_id = subject
    kind: Kind = "msme" if given == "msme" else "cooperative"
    if kind == "msme":
        await msmes.after_imports(connection)  # an import holds the records it writes locked
    table, column = _subject(kind)
    subject_field = "input.msmeId" if kind == "msme" else "input.cooperativeId"
    located = await locked(connection, table, subject_id, scope.rows(table), field=subject_field)
    if kind == "cooperative" and located.status == "dissolved":
        raise InvalidValue("input.cooperativeId", "the cooperative is dissolved; it joins nothing")
    programme = (
        await connection.execute(_fit(table, kind, programme_id, located.id, owned))
    ).first()
    if programme is None:
        raise InvalidValue("input.programmeId", "no such programme")
    if not programme.lies_in:
        raise InvalidValue(
            "input.programmeId",
            f"{programme_id} is a programme of region {programme.jurisdiction}, "
            "which this business does not lie in",
        )
    reason = _not_taken_in(programme_id, programme, kind)
    if reason is not None:
        # The programme is not for this kind of business, or this MSME is no MSME any more.
        raise InvalidValue(
            "input.programmeId" if not programme.takes_kind else subject_field, reason
        )
    _check_start(started_on, programme, "input.startedOn")
    await _check_verifier(connection, None, {"status": status}, programme, "input")
    taken = await connection.execute(
        select(PARTICIPATIONS.c.id).where(
            PARTICIPATIONS.c.programme_id == programme_id,
            column == subject_id,
            func.lower(role) == PARTICIPATION_ROLE,
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


async def lock(connection: AsyncConnection, participation_id: int, scope: RowScope) -> Record:
    """The participation a mutation's `id` names, among those the writer may read
    (programmes.visible): one whose business moved out of the programme's region after it
    ended is the programme's region's to correct, not the new region's."""
    return await locked(
        connection,
        PARTICIPATIONS,
        participation_id,
        programmes.visible(scope, PARTICIPATIONS),
        field="id",
    )


async def update(
    connection: AsyncConnection,
    current: Record,
    *,
    expected_version: int,
    values: ParticipationPatch,
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


def _taking_part(place: FromClause, subject: ColumnElement[int], kind: Kind) -> Select[Any]:
    """Every participation of the businesses in `place` (`subject` is their id there), with its
    programme and whether `place` lies in that programme's region, by business and programme.

    Every one is locked before its status is read (an ended one too), so one taken up again
    meanwhile (`check_change`) is either seen here or waits for this transaction and then sees
    the move."""
    naming = _subject(kind)[1]
    return (
        select(
            subject.label("subject"),
            PARTICIPATIONS.c.programme_id,
            PARTICIPATIONS.c.status,
            PROGRAMMES.c.jurisdiction,
            _lies_in(place).label("lies_in"),
        )
        .select_from(
            PARTICIPATIONS.join(PROGRAMMES, PROGRAMMES.c.id == PARTICIPATIONS.c.programme_id).join(
                place, subject == naming
            )
        )
        .order_by(subject, PARTICIPATIONS.c.programme_id)
        .with_for_update(of=PARTICIPATIONS)
    )


def _refusal(taking_part: Iterable[Row[Any]]) -> str | None:
    """Why a business may not move where `taking_part` (`_taking_part`'s rows of it) places it:
    each programme it takes part in whose region it would no longer lie in."""
    held = [
        f"{row.programme_id} (region {row.jurisdiction}, {row.status})"
        for row in taking_part
        if row.status not in ENDED and not row.lies_in
    ]
    if not held:
        return None
    return (
        "the business takes part in a programme of a region it would no longer lie in: "
        f"{', '.join(held)}; withdraw or complete that participation first"
    )


async def check_move(
    connection: AsyncConnection,
    kind: Kind,
    before: Record,
    after: Record,
    *,
    fields: tuple[str, str],
) -> None:
    """A business just moved (`after`, written in this transaction) must still lie in the region
    of every programme it takes part in: else that programme's own region could no longer see
    or end its participation. InvalidValue naming each such programme, on `fields[0]` (the
    region) or, when only the kecamatan changed, `fields[1]`. Race-safe: see `_taking_part`."""
    if (before.regency_code, before.district_code) == (after.regency_code, after.district_code):
        return
    table = _subject(kind)[0]
    taking_part = await connection.execute(
        _taking_part(table, table.c.id, kind).where(table.c.id == after.id)
    )
    reason = _refusal(taking_part)
    if reason is not None:
        field = fields[0] if before.regency_code != after.regency_code else fields[1]
        raise InvalidValue(field, reason)


class Place(NamedTuple):
    """Where a bulk import would put an MSME it names: its region codes."""

    msme_id: int
    province_code: str
    regency_code: str
    district_code: str | None


async def refused_moves(connection: AsyncConnection, places: Sequence[Place]) -> dict[int, str]:
    """Of the MSMEs an import moves to `places`, those that would no longer lie in the region of
    a programme they take part in, with the reason, by id: `check_move` for a whole chunk at
    once, before it is written (the import holds the records locked). One statement, the places
    given as arrays (a parameter per value would soon pass the driver's 32,767). Race-safe: see
    `_taking_part`."""
    if not places:
        return {}
    text_array = ARRAY(Text)
    moved = (
        func.unnest(
            bindparam("ids", [place.msme_id for place in places], type_=ARRAY(BigInteger)),
            bindparam("provinces", [place.province_code for place in places], type_=text_array),
            bindparam("regencies", [place.regency_code for place in places], type_=text_array),
            bindparam("districts", [place.district_code for place in places], type_=text_array),
        )
        .table_valued(
            column("msme_id", BigInteger),
            column("province_code", Text),
            column("regency_code", Text),
            column("district_code", Text),
        )
        .render_derived(name="moved")
    )
    taking_part = await connection.execute(_taking_part(moved, moved.c.msme_id, "msme"))
    return {
        subject: reason
        for subject, rows in itertools.groupby(taking_part, key=lambda row: row.subject)
        if (reason := _refusal(rows)) is not None
    }


async def check_change(
    connection: AsyncConnection,
    current: Record,
    values: ParticipationPatch,
    owned: ColumnElement[bool],
) -> None:
    """An update's `values` to the participation `current` (locked), checked against its
    programme as the business stands now, in one statement of its own, so a move or new figures
    committed meanwhile are seen: a new start date no earlier than the programme's; a status of
    taking part it did not hold (a proposed participation made active, an ended one taken up
    again) only while the programme takes the business in (`_fit`: its kind of subject, an MSME
    scale, which it may have outgrown); and a participation ended (withdrawn or completed) taken
    up again only while the business still lies in the programme's region, as when it joined:
    it may have moved since. Only the programme's owner (`owned`) marks it VERIFIED, takes the
    mark back (to PROPOSED, directly or once it is ACTIVE or ended) or changes the detail it
    vouched for (`_check_verifier`). A dissolved
    cooperative no longer exists in law: as it joins nothing (`create`), its participation
    enters no status of taking part, and may only be ended. A business that has left the
    programme's region is refused for that first: the participation is then the programme's
    region's (programmes.visible), and no answer to it tells that region anything of a business
    outside its jurisdiction, as whether it is dissolved or has outgrown the programme."""
    status = values.get("status")
    entering = status is not None and status not in ENDED and status != current.status
    started_on = values.get("started_on")
    vouched = current.status == ParticipationStatus.VERIFIED and "detail" in values
    if not entering and started_on is None and not vouched:
        return
    kind: Kind = "msme" if current.msme_id is not None else "cooperative"
    table = _subject(kind)[0]
    subject_id = current.msme_id if kind == "msme" else current.cooperative_id
    fit = (
        await connection.execute(_fit(table, kind, current.programme_id, subject_id, owned))
    ).one()
    _check_start(started_on, fit, "changes.startedOn")
    await _check_verifier(connection, current, values, fit, "changes")
    if not entering:
        return
    if current.status in ENDED and not fit.lies_in:
        raise InvalidValue(
            "changes.status",
            f"the business no longer lies in the region of programme {current.programme_id}; "
            "it cannot take part in it again",
        )
    if fit.dissolved:
        raise InvalidValue(
            "changes.status",
            "the cooperative is dissolved; it takes part in nothing (its participation may only "
            "be ended)",
        )
    reason = _not_taken_in(current.programme_id, fit, kind)
    if reason is not None:
        raise InvalidValue("changes.status", f"{reason}; it cannot take part in it")
