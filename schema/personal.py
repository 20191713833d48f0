"""The GraphQL fields of the owner's personal data, one per field its declaration lists
(domain.records.OwnerDraft), so `Owner` and `OwnerInput` never list them by hand."""

from __future__ import annotations

from typing import Any, TypeVar

import strawberry

from domain.personal import OWNER_FIELDS

T = TypeVar("T")


def personal_fields(cls: type[T]) -> type[T]:
    """Give a class about to become a Strawberry type one field per personal field, in
    declaration order; an optional one defaults to null."""
    return _declared(cls, omitted=None)


def personal_inputs(cls: type[T]) -> type[T]:
    """As `personal_fields`, for an input: an optional field it omits is UNSET, so that an
    import row leaving it out (the stored value kept) is told from one sending null (cleared)."""
    return _declared(cls, omitted=strawberry.UNSET)


def _declared(cls: type[T], *, omitted: Any) -> type[T]:
    annotations: dict[str, Any] = {}
    for field in OWNER_FIELDS:
        annotations[field.column] = field.kind if field.required else field.kind | None
        options: dict[str, Any] = {"description": field.description}
        if not field.required:
            options["default"] = omitted
        setattr(cls, field.column, strawberry.field(**options))
    cls.__annotations__ = annotations
    return cls
