"""The owner's personal fields, in the form every layer asks for them, read from their one
declaration (`domain.records.OwnerDraft`), so that no module lists them again."""

from __future__ import annotations

import types
from collections.abc import Iterable
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


OWNER_FINANCES: dict[str, frozenset[str]] = {
    "Msme": frozenset({"capital", "annual_turnover", "scale", "declared_scale"}),
    "ScaleChange": frozenset({"capital", "annual_sales", "scale"}),
}
"""The business's figures that are its owner's personal financial data (UU 27/2022 Pasal 4:
*spesifik*), by the type carrying them, as columns: an MSME is a sole proprietor's business (the
register keeps its owner as a person, R08), so its capital, its annual sales and the scale
banding them (declared, computed, and their history) are the owner's finances. Whoever reads
them (`records:read` suffices: who may read them is unchanged) hands out the owner's data, so
the audit entry names the owner on record, by the NIK read with the figures and returned
nowhere, and itemises them as personal; their changes in a record's history and an MSME's
record in the change feed alike. A cooperative is a legal entity, its figures no one's."""


def owner_finances(type_name: str, columns: Iterable[str]) -> frozenset[str]:
    """`Type.field` of each of `columns` that is its owner's finances (`OWNER_FINANCES`), as the
    audit itemises it."""
    declared = OWNER_FINANCES.get(type_name, frozenset())
    return frozenset(f"{type_name}.{api_name(column)}" for column in declared.intersection(columns))
