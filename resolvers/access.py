"""What a request handed out, noted by the resolvers as they go, for the audit log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Touched:
    """`Type.field` of every field a request hands out, and of the personal ones among them."""

    fields: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()


@dataclass
class AccessNotes:
    fields: dict[str, list[str]] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)
    subjects: set[str] = field(default_factory=set)
    touched: Touched = field(default_factory=Touched)
    owner_columns: frozenset[str] = frozenset()
    """Owners' columns handed out inside a record's JSON (the change feed's `record`), or written
    by a mutation (from its input), where no field of the document's selection names them: the
    policy itemises them in the audit entry."""

    def field_used(self, name: str, scopes: Iterable[str]) -> None:
        self.fields.setdefault(name, sorted(scopes))

    def records_returned(self, kind: str, count: int) -> None:
        if count:
            self.records[kind] += count

    def personal_data_of(self, subject: str) -> None:
        self.subjects.add(subject)

    def owner_columns_touched(self, columns: Iterable[str]) -> None:
        """An owner's `columns` went out inside a record, as the statement selected them, or a
        write changed them (wrote or erased them)."""
        self.owner_columns |= frozenset(columns)

    @property
    def worth_recording(self) -> bool:
        """Responses with records or personal data are audited; figures and reference are not."""
        return bool(self.records or self.subjects)
