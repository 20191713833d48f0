"""What a provincial or regency agency does: keep its register current, inside its jurisdiction.

Every mutation needs records:write; owner data needs pii:read as well. A record outside the
caller's jurisdiction answers NOT_FOUND, exactly like a missing one. Updates, deactivations and
reactivations carry the version the client last read: a stale one gets CONFLICT instead of
overwriting another agency's change.
"""

from __future__ import annotations

from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.imports import Mode
from resolvers import cooperative_writes, imports, msme_writes, participation_writes
from resolvers.context import Context
from schema.inputs import stored_value
from schema.permissions import requires
from schema.record_inputs import (
    CooperativeChanges,
    CreateCooperativeInput,
    CreateMsmeInput,
    MsmeChanges,
    MsmeImportRow,
    ParticipationChanges,
    ParticipationInput,
    ScaleReport,
    cooperative_draft,
    cooperative_patch,
    import_row,
    msme_draft,
    msme_patch,
    participation_patch,
    participation_status,
)
from schema.types.imports import ImportMode, ImportReport, ImportRowError
from schema.types.records import Cooperative, Msme, Participation

Version = Annotated[
    int, strawberry.argument(description="The version you last read; a stale one gets CONFLICT.")
]


def _writes(description: str) -> Any:
    return requires(Scope.RECORDS_WRITE, description=description)


@strawberry.type
class RecordMutation:
    @_writes("Register an MSME in your jurisdiction (owner data needs pii:read as well).")
    async def create_msme(self, info: Info[Context, Any], input: CreateMsmeInput) -> Msme | None:
        return await msme_writes.create(info, msme_draft(input), input.cooperative_id)  # type: ignore[no-any-return]

    @_writes("Change an MSME's fields; the scale is recomputed when its figures change.")
    async def update_msme(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        changes: MsmeChanges,
        version: Version,
    ) -> Msme | None:
        return await msme_writes.update(info, id, version, msme_patch(changes))  # type: ignore[no-any-return]

    @_writes("Mark an MSME inactive (it is kept, with its history).")
    async def deactivate_msme(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        version: Version,
    ) -> Msme | None:
        return await msme_writes.deactivate(info, id, version)  # type: ignore[no-any-return]

    @_writes("Undo a deactivation: the MSME is active again (an update of isActive).")
    async def reactivate_msme(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        version: Version,
    ) -> Msme | None:
        return await msme_writes.reactivate(info, id, version)  # type: ignore[no-any-return]

    @_writes(
        "Report new annual figures; a change of scale enters the scale history. A declared"
        " scale neither figure supports any longer is cleared."
    )
    async def report_scale_change(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        report: ScaleReport,
        version: Version,
    ) -> Msme | None:
        return await msme_writes.report_scale(  # type: ignore[no-any-return]
            info,
            id,
            version,
            annual_sales=report.annual_sales,
            capital=report.capital,
            turnover_year=report.turnover_year,
            effective_from=report.effective_from,
        )

    @_writes(
        "Create or update many MSMEs by NIB, or by SKU without one, at once (at most 5,000;"
        " files: the CLI). A row without an SKU leaves a stored one."
    )
    async def import_msmes(
        self, info: Info[Context, Any], rows: list[MsmeImportRow], mode: ImportMode
    ) -> ImportReport | None:
        report = await imports.run(
            info, [import_row(row) for row in rows], Mode(stored_value(mode) or Mode.ALL_OR_NOTHING)
        )
        return ImportReport(
            received=report.received,
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            rejected=report.rejected,
            applied=report.applied,
            errors=[
                ImportRowError(
                    row=e.row, field=e.field, reason=e.reason, code=imports.row_code(e).value
                )
                for e in report.errors[: imports.MAX_REPORTED_ERRORS]
            ],
        )

    @_writes("Register a cooperative in your jurisdiction.")
    async def create_cooperative(
        self, info: Info[Context, Any], input: CreateCooperativeInput
    ) -> Cooperative | None:
        return await cooperative_writes.create(info, cooperative_draft(input))  # type: ignore[no-any-return]

    @_writes("Change a cooperative's fields.")
    async def update_cooperative(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        changes: CooperativeChanges,
        version: Version,
    ) -> Cooperative | None:
        return await cooperative_writes.update(info, id, version, cooperative_patch(changes))  # type: ignore[no-any-return]

    @_writes("Mark a cooperative inactive; a dissolved one is refused (BAD_USER_INPUT on id).")
    async def deactivate_cooperative(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        version: Version,
    ) -> Cooperative | None:
        return await cooperative_writes.deactivate(info, id, version)  # type: ignore[no-any-return]

    @_writes(
        "Undo a deactivation: the cooperative is active again (an update of status); a dissolved "
        "one is refused (BAD_USER_INPUT on id)."
    )
    async def reactivate_cooperative(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        version: Version,
    ) -> Cooperative | None:
        return await cooperative_writes.reactivate(info, id, version)  # type: ignore[no-any-return]

    @_writes(
        "Record that a business in your jurisdiction takes part in a programme of a region it "
        "lies in (a national programme: any)."
    )
    async def add_participation(
        self, info: Info[Context, Any], input: ParticipationInput
    ) -> Participation | None:
        return await participation_writes.create(  # type: ignore[no-any-return]
            info,
            programme_id=input.programme_id,
            msme_id=input.msme_id,
            cooperative_id=input.cooperative_id,
            role=input.role,
            status=participation_status(input.status),
            detail=input.detail,
            started_on=input.started_on,
        )

    @_writes("Change a participation's status, detail or start date.")
    async def update_participation(
        self,
        info: Info[Context, Any],
        id: strawberry.ID,
        changes: ParticipationChanges,
        version: Version,
    ) -> Participation | None:
        return await participation_writes.update(info, id, version, participation_patch(changes))  # type: ignore[no-any-return]
