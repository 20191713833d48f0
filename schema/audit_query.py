"""Audit queries for the data custodian (walidata): who received what, and whose data."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from auth.scopes import Scope
from resolvers import audit
from resolvers.context import Context
from schema.permissions import requires
from schema.scalars import AuditSeq

SEQ_DEPRECATED = (
    "Use `position`: an Int holds only the first 2,147,483,647 entries, and a page holding a"
    " later one fails."
)


@strawberry.type(description="One response that handed out records or personal data.")
class AuditEntry:
    position: AuditSeq = strawberry.field(
        description="Position in the hash chain, as `sinergi audit verify` numbers entries."
    )
    seq: int = strawberry.field(
        description="Position in the hash chain.", deprecation_reason=SEQ_DEPRECATED
    )
    at: datetime
    client_id: str
    entry: JSON = strawberry.field(
        description="Organisation, purpose, operation, document hash, fields and record counts;"
        " for a read of the trail, the `positions` of the entries it returned, whose subjects"
        " it handed out."
        " An entry stored in a form that cannot be read (written around the trail's checks;"
        ' `sinergi audit verify` names it) reads as {"unreadable": why}.'
    )
    subjects: list[str] = strawberry.field(
        description="NIKs of the persons whose data was sent (for a read of the trail, the one"
        " it asked about; those of the entries it returned are theirs)."
    )
    hash: str


@strawberry.type(description="A client that received a person's data.")
class PersonalDataAccess:
    client_id: str
    organisation: str | None
    times: int
    first_at: datetime
    last_at: datetime


@strawberry.type
class AuditQuery:
    @requires(Scope.AUDIT_READ, description="Audit entries, newest first.")
    async def audit_entries(
        self,
        info: Info[Context, Any],
        first: int | None = None,
        before_position: Annotated[
            AuditSeq | None,
            strawberry.argument(description="Entries before this position (a page's last)."),
        ] = None,
        before_seq: Annotated[
            int | None, strawberry.argument(deprecation_reason="Use `beforePosition`.")
        ] = None,
        nik: str | None = None,
        client_id: str | None = None,
    ) -> list[AuditEntry] | None:
        return await audit.entries(
            info,
            nik=nik,
            client_id=client_id,
            first=first,
            before_position=before_position,
            before_seq=before_seq,
        )

    @requires(Scope.AUDIT_READ, description="Which agencies received this person's data.")
    async def personal_data_access(
        self, info: Info[Context, Any], nik: str
    ) -> list[PersonalDataAccess] | None:
        return await audit.accessors(info, nik)
