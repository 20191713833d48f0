"""The answer to a bulk import: counts, and each bad row with the field and the reason."""

from __future__ import annotations

from enum import Enum

import strawberry

from resolvers.imports import MAX_REPORTED_ERRORS


@strawberry.enum(description="What a bulk import does when some rows are bad.")
class ImportMode(Enum):
    ALL_OR_NOTHING = strawberry.enum_value(
        "all_or_nothing", description="Any bad row: nothing is written, every problem reported."
    )
    VALID_ROWS = strawberry.enum_value(
        "valid_rows", description="The good rows are written; the bad ones are reported."
    )


@strawberry.type(description="A problem with one row of an import.")
class ImportRowError:
    row: int = strawberry.field(description="The row's position in `rows`, from 1.")
    field: str = strawberry.field(description='The input field, e.g. "nib" or "owner.nik".')
    reason: str
    code: str = strawberry.field(
        description="The error code a single write (createMsme, updateMsme) refused for the same "
        "problem carries: BAD_USER_INPUT for a value breaking a rule, CONFLICT for a NIB "
        "registered to a record outside your jurisdiction, FORBIDDEN for a region outside it."
    )


@strawberry.type(description="What an import did. Importing the same rows again changes nothing.")
class ImportReport:
    received: int
    created: int
    updated: int
    unchanged: int
    rejected: int = strawberry.field(description="Rows with at least one error.")
    applied: bool = strawberry.field(
        description="False when nothing was written (all-or-nothing with bad rows)."
    )
    errors: list[ImportRowError] = strawberry.field(
        description=f"The first {MAX_REPORTED_ERRORS:,} problems, by row; `rejected` counts "
        "every bad row."
    )
