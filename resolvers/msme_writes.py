"""MSME mutations: validate with the domain rules, then write inside the caller's jurisdiction.

Updates take the changed fields as a patch over the stored record, and the merged record is
checked whole, so a change to the figures cannot leave a scale they contradict.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from db.models import COOPERATIVES
from db.queries import cooperatives
from db.writes import NotFound, msmes, participations, vocabulary
from db.writes.versioned import locked
from domain.cooperative_records import SECONDARY
from domain.personal import OWNER_FINANCES, owner_finances
from domain.records import (
    CheckedMsme,
    MsmeDraft,
    MsmePatch,
    check_registered_msme,
    check_report_over,
    check_scale_report,
    draft_values,
    owner_as_stored,
    unchanged,
)
from domain.scale import kept_declaration
from resolvers import Node, calendar
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.lookahead import selected_columns
from resolvers.writing import (
    actor_of,
    at_version,
    checked_record,
    invalid,
    needs_personal_data_scope,
    record_key,
    writing,
)


class MsmeUpdate(MsmePatch, total=False):
    """An `updateMsme`'s changes: the record's fields, and the cooperative it is a member of,
    by its id as the client sent it (None: none), checked against the writer's jurisdiction
    here rather than merged into the draft."""

    cooperative_id: str | None


async def _checked(
    connection: AsyncConnection,
    info: Info[Context, Any],
    draft: MsmeDraft,
    argument: str,
    kept: frozenset[str] = frozenset(),
) -> CheckedMsme:
    """`kept`: the fields an update leaves as stored (domain/records.py `unchanged`)."""
    checked = await checked_record(
        connection,
        info.context.policy,
        draft,
        argument,
        partial(check_registered_msme, kept=kept),
    )
    await _check_issuer(connection, checked, f"{argument}.skuIssuer")
    return checked


async def _check_issuer(connection: AsyncConnection, checked: CheckedMsme, field: str) -> None:
    """An SKU's village lies in a kecamatan the regions know. The record's own kecamatan is
    known already (`check_place`), and the village is checked to lie in it; the regions stop at
    kecamatan, so the village itself is known by its shape only."""
    issuer = checked.sku_issuer
    if issuer is None or checked.district_code is not None:
        return
    district = issuer[:8]
    if district not in await vocabulary.existing_regions(connection, {district}):
        raise bad_input(field, f"{district}, its kecamatan, is not a known kecamatan code")


async def _cooperative(
    connection: AsyncConnection,
    info: Info[Context, Any],
    raw: str | None,
    field: str,
    *,
    member_of: int | None = None,
) -> int | None:
    """A member MSME's cooperative must be one the writer can see, and not dissolved: a dissolved
    cooperative has ceased to exist in law and takes no members (an inactive one may revive, so
    it still may); nor secondary, whose members are cooperatives. `member_of`, the cooperative
    the MSME is in already, stays given even once dissolved (or recorded before the secondary
    rule): a client resending it with other changes joins nothing."""
    if raw is None:
        return None
    key = record_key(raw, field)
    scope = info.context.policy.records
    try:
        cooperative = await locked(
            connection, COOPERATIVES, key, scope.rows(COOPERATIVES), field=field
        )
    except NotFound:
        raise bad_input(field, "no such cooperative in your jurisdiction") from None
    if cooperative.status == "dissolved" and key != member_of:
        raise bad_input(field, "the cooperative is dissolved; it takes no members")
    if cooperative.tier == SECONDARY and key != member_of:
        raise bad_input(
            field,
            "the cooperative is secondary; its members are cooperatives, not MSMEs "
            "(UU 25/1992 Pasal 15)",
        )
    return key


async def _hidden_membership(
    connection: AsyncConnection, info: Info[Context, Any], cooperative_id: int | None
) -> bool:
    """Whether the MSME is a member of a cooperative the writer cannot see (by the scope
    `Msme.cooperative` reads it with, so the writer read null for it)."""
    if cooperative_id is None:
        return False
    seen = await cooperatives.LISTING.by_ids(
        connection, (cooperative_id,), scope=info.context.policy.records, columns=("id",)
    )
    return not seen


def _noted(
    info: Info[Context, Any],
    row: Node,
    before: Node | None,
    checked: CheckedMsme | None = None,
    owner: msmes.OwnerChange | None = None,
) -> Node:
    """The write's audit notes: the record, the owner it was given (written or compared), and,
    when it changed the owner, the fields changed and the owner replaced or erased: whose data
    it destroyed is a data subject of the write as much as whose it wrote. The figures that are
    the owner's finances (domain.personal.OWNER_FINANCES) name the owner on record, by the NIK
    the write's statement read (`msmes.OWNER_NIK`), when the answer hands them out, as a read
    of them does, and when the write changed them (`before`: the row before, as locked; None,
    created)."""
    notes = info.context.accesses
    if owner_finances("Msme", selected_columns(info)):
        notes.rows_returned("msme", (row,))
    else:
        notes.records_returned("msme", 1)
    given = None if checked is None or checked.owner is None else checked.owner.nik
    if given is not None:
        notes.personal_data_of(given)
    # An owner the write erased is gone from its RETURNING: the figures it overwrote were
    # theirs, the owner on record when the lock read the row.
    on_record = None if before is None else before._mapping.get("owner_nik")
    subject = given or row._mapping.get("owner_nik") or on_record
    changed = _figures_written(row, before)
    if subject is not None and changed:
        notes.owner_finances_of(subject, changed)
    if owner is not None:
        if owner.former_nik is not None:
            notes.personal_data_of(owner.former_nik)
        notes.owner_columns_touched(owner.columns)
    return row


def _figures_written(row: Node, before: Node | None) -> frozenset[str]:
    """`Msme.field` of each figure that is the owner's finances the write changed (created:
    each it wrote)."""
    after = row._mapping
    if before is None:
        changed = [column for column in OWNER_FINANCES["Msme"] if after[column] is not None]
    else:
        changed = [c for c in OWNER_FINANCES["Msme"] if after[c] != before._mapping[c]]
    return owner_finances("Msme", changed)


async def create(info: Info[Context, Any], draft: MsmeDraft, cooperative_id: str | None) -> Node:
    principal = info.context.principal
    if draft.owner is not None:
        needs_personal_data_scope(info.context.policy, "input.owner")
    async with writing(info) as connection:
        checked = await _checked(connection, info, draft, "input")
        cooperative = await _cooperative(connection, info, cooperative_id, "input.cooperativeId")
        created, owner = await msmes.create(
            connection,
            checked,
            actor_of(principal),
            cooperative_id=cooperative,
            today=calendar.today(),
        )
        return _noted(info, created, None, checked, owner)


async def update(info: Info[Context, Any], raw_id: str, version: int, patch: MsmeUpdate) -> Node:
    """`patch` holds only the fields the client sent, by draft field name (None clears one)."""
    principal = info.context.principal
    owner_given = "owner" in patch
    if owner_given:
        needs_personal_data_scope(info.context.policy, "changes.owner")
    key = record_key(raw_id, "id")
    async with writing(info) as connection:
        current = at_version(
            await msmes.lock(connection, key, info.context.policy.records), version
        )
        stored = _stored(current, patch)
        merged = replace(stored, **_fields(patch))
        kept = unchanged(draft_values(merged), await _values(connection, key, stored, merged))
        checked = await _checked(connection, info, merged, "changes", kept)
        cooperative = current.cooperative_id
        if "cooperative_id" in patch and await _hidden_membership(
            connection, info, current.cooperative_id
        ):
            # The writer read null for it and may send null back, with a form's other fields:
            # that is no change. A cooperative it cannot join (unknown to it, the hidden one's
            # own id too) is refused as for a business of none, or the answer would tell which
            # businesses belong to a hidden cooperative. One it could join would take the
            # business out of one the writer can neither see nor put it back in.
            if patch["cooperative_id"] is not None:
                await _cooperative(
                    connection, info, patch["cooperative_id"], "changes.cooperativeId"
                )
                raise coded_error(
                    ErrorCode.FORBIDDEN,
                    "changes.cooperativeId: the business is a member of a cooperative outside"
                    " your jurisdiction; only a client that can see that cooperative may change"
                    " its membership",
                    field="changes.cooperativeId",
                )
        elif "cooperative_id" in patch:
            cooperative = await _cooperative(
                connection,
                info,
                patch["cooperative_id"],
                "changes.cooperativeId",
                member_of=current.cooperative_id,
            )
        written, owner = await msmes.update(
            connection,
            current,
            expected_version=version,
            values=msmes.record_values(checked, cooperative),
            actor=actor_of(principal),
            owner=checked.owner,
            owner_given=owner_given,
            today=calendar.today(),
        )
        await participations.check_move(
            connection, "msme", current, written, fields=("changes.region", "changes.district")
        )
        return _noted(info, written, current, checked, owner)


def _fields(patch: MsmeUpdate) -> MsmePatch:
    """The patch's fields of the record (its cooperative is checked apart)."""
    update = patch.copy()
    update.pop("cooperative_id", None)
    return update


def _stored(current: Node, patch: MsmeUpdate) -> MsmeDraft:
    """The stored record as a draft the patch is applied over; the scale is computed from the
    merged figures (domain/scale.py `registered_scale`). The declared scale stands unless the
    patch declares another, or changes the figures without declaring one (domain/scale.py
    `kept_declaration`)."""
    return MsmeDraft(
        nib=current.nib,
        sku_number=current.sku_number,
        sku_issuer=current.sku_issuer,
        name=current.name,
        kbli_code=current.kbli_code,
        region=current.regency_code,
        district=current.district_code,
        established_on=current.established_on,
        capital=current.capital,
        annual_turnover=current.annual_turnover,
        turnover_year=current.turnover_year,
        employees=current.employees,
        scale=kept_declaration(
            declared=current.declared_scale,
            scale=current.scale,
            capital=current.capital,
            annual_turnover=current.annual_turnover,
            given=_fields(patch),
        ),
    )


async def _values(
    connection: AsyncConnection, key: int, stored: MsmeDraft, merged: MsmeDraft
) -> dict[str, object]:
    """The stored record's values as `unchanged` compares them with the merged record's: the
    owner's too when the update gives one (it replaces the stored one whole), so an owner sent
    back as stored is not judged again."""
    values = draft_values(stored)
    if merged.owner is not None:
        values.update(owner_as_stored(merged.owner, await msmes.stored_owner(connection, key)))
    return values


async def deactivate(info: Info[Context, Any], raw_id: str, version: int) -> Node:
    return await _set_active(info, raw_id, version, active=False)


async def reactivate(info: Info[Context, Any], raw_id: str, version: int) -> Node:
    """Undo a deactivation; an active MSME is left as it is, as deactivating an inactive one is."""
    return await _set_active(info, raw_id, version, active=True)


async def _set_active(info: Info[Context, Any], raw_id: str, version: int, *, active: bool) -> Node:
    principal = info.context.principal
    key = record_key(raw_id, "id")
    async with writing(info) as connection:
        current = await msmes.lock(connection, key, info.context.policy.records)
        written = await msmes.set_active(
            connection,
            current,
            active=active,
            expected_version=version,
            actor=actor_of(principal),
        )
        return _noted(info, written, current)


async def report_scale(
    info: Info[Context, Any],
    raw_id: str,
    version: int,
    *,
    annual_sales: int,
    capital: int | None,
    turnover_year: int,
    effective_from: date,
) -> Node:
    """New annual figures; the scale is recomputed and, when it changes, enters the history."""
    principal = info.context.principal
    key = record_key(raw_id, "id")
    errors = check_scale_report(
        annual_sales=annual_sales,
        capital=capital,
        turnover_year=turnover_year,
        effective_from=effective_from,
        today=calendar.today(),
        name=lambda field: f"report.{field}",
    )
    if errors:
        raise invalid(errors)
    async with writing(info) as connection:
        current = at_version(
            await msmes.lock(connection, key, info.context.policy.records), version
        )
        errors = check_report_over(
            turnover_year=turnover_year,
            stored_year=current.turnover_year,
            established_on=current.established_on,
            name=lambda field: f"report.{field}",
        )
        if errors:
            raise invalid(errors)
        written = await msmes.report_scale(
            connection,
            current,
            expected_version=version,
            annual_sales=annual_sales,
            capital=capital,
            turnover_year=turnover_year,
            effective_from=effective_from,
            actor=actor_of(principal),
        )
        return _noted(info, written, current)
