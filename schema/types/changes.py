"""The change history of a record."""

from __future__ import annotations

from datetime import datetime

import strawberry
from strawberry import Parent
from strawberry.utils.str_converters import to_camel_case

from resolvers import Node
from resolvers.history import field_changes


@strawberry.type(description="One field's value before and after a change, written as text.")
class FieldChange:
    field: str = strawberry.field(description='The field as the API names it, e.g. "capital".')
    before: str | None
    after: str | None


def _fields(root: Parent[Node]) -> list[FieldChange]:
    return [
        FieldChange(field=to_camel_case(name), before=before, after=after)
        for name, before, after in field_changes(root)
        if before != after
    ]


def _personal(root: Parent[Node]) -> list[str]:
    return [
        ".".join(to_camel_case(part) for part in name.split(".")) for name in root.personal_fields
    ]


@strawberry.type(description="Who changed a record, when, and what changed.")
class RecordChange:
    at: datetime
    client_id: str = strawberry.field(description="The client that made the change.")
    organisation: str = strawberry.field(description='Its organisation, or "cli:<user>".')
    operation: str = strawberry.field(
        description=(
            "create, update (a reactivation too: isActive, or a cooperative's status, back to "
            "active), deactivate, scale (a reported scale change) or import."
        )
    )
    version: int = strawberry.field(description="The record's version after the change.")
    fields: list[FieldChange] = strawberry.field(resolver=_fields)
    personal_data_changed: list[str] = strawberry.field(
        resolver=_personal,
        description="Personal fields (owner.…) that changed; their values are never shown here.",
    )
