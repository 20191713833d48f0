"""`importMsmes`: a batch from an agency's app through the same import as the CLI's files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, assert_never

from strawberry.types import Info

from db.imports import Drafted, Mode, Problem, Report, RowError, import_msmes
from domain.records import MsmeDraft
from resolvers import calendar
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input
from resolvers.import_notes import OwnerRow, note, owners_noted
from resolvers.writing import actor_of, needs_personal_data_scope, writing

MAX_ROWS = 5_000
"""A request is a batch, not a file: larger loads go through `sinergi import msmes`."""
MAX_REPORTED_ERRORS = 1_000
"""Row errors an import answers with, the first by row: a bad file of 5,000 rows with owners
has some 70,000 (14 a row), over 5 MB of answer, which the response size bound withholds. The
first thousand show what is wrong with the file; `rejected` still counts every bad row."""


async def run(
    info: Info[Context, Any], drafts: Sequence[tuple[MsmeDraft, frozenset[str]]], mode: Mode
) -> Report:
    """Rows are numbered from 1 in the order given; errors name the row's input field. Each
    draft comes with the fields its row omits: a record it updates keeps them as stored, as a
    file without their columns keeps them (db.imports `absent`)."""
    if not drafts:
        raise bad_input("rows", "must hold at least one row")
    if len(drafts) > MAX_ROWS:
        raise bad_input("rows", f"at most {MAX_ROWS} rows per request; use the CLI for files")
    principal = info.context.principal
    if any(draft.owner is not None for draft, _ in drafts):
        needs_personal_data_scope(info.context.policy, "rows.owner")
    rows: list[Drafted] = [(number, draft, ()) for number, (draft, _) in enumerate(drafts, 1)]
    omitted = {number: fields for number, (_, fields) in enumerate(drafts, 1) if fields}
    owners: list[OwnerRow] = []
    async with writing(info) as connection:
        report = await import_msmes(
            connection,
            owners_noted(rows, owners),
            total=len(rows),
            scope=info.context.policy.records,
            actor=actor_of(principal),
            mode=mode,
            today=calendar.today(),
            absent=omitted,
        )
        if not (report.created or report.updated):  # refused, or every row as on record
            await connection.rollback()  # nothing to commit: the import changed nothing
        note(info.context.accesses, owners, report)  # its entry commits with it
    return report


def row_code(error: RowError) -> ErrorCode:
    """The contract's code for a row error: the one a single write (`createMsme`, `updateMsme`)
    refused for the same problem answers with (resolvers/writing.py), so a client handles a bad
    row as it handles that refusal. The mutation and the CLI both report it."""
    match error.problem:
        case Problem.INVALID:
            return ErrorCode.BAD_USER_INPUT
        case Problem.TAKEN:
            return ErrorCode.CONFLICT
        case Problem.OUTSIDE:
            return ErrorCode.FORBIDDEN
        case _:
            assert_never(error.problem)
