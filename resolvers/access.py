"""What a request handed out, noted by the resolvers as they go, for the audit log."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from db.queries import Record


@dataclass(frozen=True, slots=True)
class Touched:
    """`Type.field` of every field a request hands out, and of the personal ones among them."""

    fields: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Audited:
    """A request as its audit entries name it, whatever each records: named by the GraphQL
    layer before the request runs (schema/audit.py, schema/engine.py), so that a write can
    append its entry within its own transaction (`resolvers.context.Context.transaction`)
    as well as the request its entry once it is done."""

    document: str
    """As the client sent it (a registered document in place of its hash): its sha256 is the
    entries' `documentHash`, worked out only for a request that writes one."""
    operation: str | None
    touched: Callable[[], Touched]
    """Every field the document hands out: worked out from the document, likewise, the same
    for each of the request's entries."""


@dataclass
class AccessNotes:
    fields: dict[str, list[str]] = field(default_factory=dict)
    records: Counter[str] = field(default_factory=Counter)
    subjects: set[str] = field(default_factory=set)
    owner_columns: frozenset[str] = frozenset()
    """Owners' columns handed out inside a record's JSON (the change feed's `record`), or written
    by a mutation (from its input), where no field of the document's selection names them: the
    policy itemises them in the audit entry."""
    owner_finances: frozenset[str] = frozenset()
    """An MSME's figures that are its owner's finances (domain.personal.OWNER_FINANCES), as
    `Type.field`, handed out inside JSON that no field of the document names (the change feed's
    `record`, a record's history) for a business whose owner the entry names: the policy
    itemises them in the audit entry."""
    trail_read: bool = False
    """The request read the audit trail: recorded whatever it found (`trail_was_read`)."""
    positions: set[int] | None = None
    """The positions of the audit entries it handed out (`entries_returned`); None when it
    returned none, as a request that did not page the trail."""

    def field_used(self, name: str, scopes: Iterable[str]) -> None:
        self.fields.setdefault(name, sorted(scopes))

    def records_returned(self, kind: str, count: int) -> None:
        if count:
            self.records[kind] += count

    def rows_returned(
        self, kind: str, rows: Iterable[Record], revealed: Iterable[str] = ()
    ) -> None:
        """Records of `kind` went out as rows: counted, and the owner of each MSME whose figures
        went with it named, by the NIK its statement read with them (`owner_nik`,
        db.queries.paging.columns_of; absent from any other row), with `revealed`, its figures
        (`Type.field`) the page told of each record though the document selected none (a
        filter on them, MsmeFilter.revealed)."""
        revealed = frozenset(revealed)
        for row in rows:
            self.records[kind] += 1
            self.owner_told_of(row, revealed)

    def owner_told_of(self, row: Record, revealed: Iterable[str]) -> None:
        """The owner of the MSME `row` named, by the NIK its statement read with it, with
        `revealed`, its figures that went out (`rows_returned`); alone, for a row that is no
        record handed out but whose figures went out all the same (the row read past a page,
        which its `hasNextPage` tells of: Page.peeked)."""
        nik = row._mapping.get("owner_nik")
        if nik is not None:
            self.owner_finances_of(nik, revealed)

    def personal_data_of(self, subject: str) -> None:
        self.subjects.add(subject)

    def owner_columns_touched(self, columns: Iterable[str]) -> None:
        """An owner's `columns` went out inside a record, as the statement selected them, or a
        write changed them (wrote or erased them)."""
        self.owner_columns |= frozenset(columns)

    def owner_finances_of(self, subject: str, fields: Iterable[str]) -> None:
        """The owner `subject`'s finances, `fields` (`Type.field`), went out: named and
        itemised, though no personal field of the document was selected."""
        self.subjects.add(subject)
        self.owner_finances |= frozenset(fields)

    def trail_was_read(self) -> None:
        """A read of the audit trail is recorded even when it found nothing: that nobody
        received a person's data is as much the trail's to tell as who did, and a custodian
        could otherwise ask it of anyone without a trace."""
        self.trail_read = True

    def entries_returned(self, positions: Iterable[int]) -> None:
        """Audit entries went out: their positions are named, not their subjects. Whose data they
        handed out is theirs to say (`personalDataAccess` follows the positions, one level);
        copied into this entry, each read of the newest entries copied the last read's subjects
        again, and a polling custodian's entries grew without end."""
        self.positions = (self.positions or set()) | set(positions)

    @property
    def worth_recording(self) -> bool:
        """Responses with records or personal data are audited, and every read of the trail;
        figures and reference are not."""
        return bool(self.records or self.subjects or self.trail_read)
