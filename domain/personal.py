"""The owner's personal fields, in the form every layer asks for them, read from their one
declaration (`domain.records.OwnerDraft`), so that no module lists them again."""

from __future__ import annotations

import types
from dataclasses import MISSING, dataclass, fields
from typing import get_args, get_type_hints

from domain.records import OwnerDraft, api_name


@dataclass(frozen=True, slots=True)
class PersonalField:
    column: str
    """The `msme_owners` column, and the attribute of drafts and rows."""
    name: str
    """As the API names it: the `Owner` field, the input field, `owner.<name>` in errors."""
    kind: type
    """The value's type (`str`, `date`); None is allowed unless `required`."""
    required: bool
    csv: str
    """The import's CSV column."""
    description: str | None


def _declared() -> tuple[PersonalField, ...]:
    hints = get_type_hints(OwnerDraft)
    declared = []
    for field in fields(OwnerDraft):
        hint = hints[field.name]
        if isinstance(hint, types.UnionType):
            hint = next(part for part in get_args(hint) if part is not types.NoneType)
        declared.append(
            PersonalField(
                column=field.name,
                name=api_name(field.name),
                kind=hint,
                required=field.default is MISSING,
                csv=field.metadata["csv"],
                description=field.metadata["description"],
            )
        )
    return tuple(declared)


OWNER_FIELDS = _declared()
"""In declaration order, which is the order of the `Owner` type's fields."""
OWNER_COLUMNS = tuple(field.column for field in OWNER_FIELDS)
