"""What an import's audit entry notes, for `importMsmes` and `sinergi import msmes` alike.

Apart from the mutation's module, which needs strawberry: the command would load it (a third of
a second) before reading its first row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from db.imports import Drafted, Report
from domain.personal import OWNER_FINANCES, owner_finances
from resolvers.access import AccessNotes

FIGURES = owner_finances("Msme", OWNER_FINANCES["Msme"])
"""What of an owner's finances an import row compares or writes: every figure."""

OwnerRow = tuple[int, str]
"""A row's number and the NIK of the owner it gives."""


def owners_noted(rows: Iterable[Drafted], owners: list[OwnerRow]) -> Iterator[Drafted]:
    """`rows` on their way to the import, the owner each gives noted in `owners` as it passes
    (a file is read once, as a stream): the import's data subjects, once its report tells which
    rows it refused (`note`)."""
    for drafted in rows:
        number, draft, _ = drafted
        if draft is not None and draft.owner is not None:
            owners.append((number, draft.owner.nik.strip()))
        yield drafted


def note(notes: AccessNotes, owners: Iterable[OwnerRow], report: Report) -> None:
    """An applied import's audit notes, for `importMsmes` and `sinergi import msmes` alike: the
    records it wrote; the owners it wrote or compared, as `createMsme`'s and `updateMsme`'s are
    (a row's `unchanged` tells the caller that the owner it sent is the one on record, so a
    guessed NIK or phone is confirmed, and that is personal data handed out); the owners on
    record it replaced, whose data it destroyed; and the owner fields it changed. The figures
    are the owner's finances (domain.personal.OWNER_FINANCES): a row compares or writes them
    all, so each owner it gives and each owner on record of a business it compared
    (`Report.figures_of`) is named with them, as a write of them names the owner. Rows refused
    are not noted: nothing of them was compared."""
    if not report.applied:
        return
    notes.records_returned("msme", report.created + report.updated)
    refused = {error.row for error in report.errors}
    for number, nik in owners:
        if number not in refused:
            notes.owner_finances_of(nik, FIGURES)
    for nik in report.figures_of:
        notes.owner_finances_of(nik, FIGURES)
    for nik in report.former_owners:
        notes.personal_data_of(nik)
    notes.owner_columns_touched(report.owner_columns)
