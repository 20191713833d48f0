"""`importMsmes`: a batch from an agency's app through the same import as the CLI's files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strawberry.types import Info

from db.imports import Drafted, Mode, Report, import_msmes
from domain.records import MsmeDraft
from resolvers import calendar
from resolvers.context import Context
from resolvers.errors import bad_input
from resolvers.writing import actor_of, needs_personal_data_scope

MAX_ROWS = 5_000
"""A request is a batch, not a file: larger loads go through `sinergi import msmes`."""


async def run(info: Info[Context, Any], drafts: Sequence[MsmeDraft], mode: Mode) -> Report:
    """Rows are numbered from 1 in the order given; errors name the row's input field."""
    if not drafts:
        raise bad_input("rows", "must hold at least one row")
    if len(drafts) > MAX_ROWS:
        raise bad_input("rows", f"at most {MAX_ROWS} rows per request; use the CLI for files")
    principal = info.context.principal
    if any(draft.owner is not None for draft in drafts):
        needs_personal_data_scope(info.context.policy, "rows.owner")
    rows: list[Drafted] = [(number, draft) for number, draft in enumerate(drafts, start=1)]
    async with info.context.transaction() as connection:
        return await import_msmes(
            connection,
            rows,
            total=len(rows),
            scope=info.context.policy.records,
            actor=actor_of(principal),
            mode=mode,
            today=calendar.today(),
        )
