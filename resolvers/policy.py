"""What one request may do, decided once from its token and asked everywhere.

Sinergi is worth adopting for the rules it keeps: a record outside the caller's jurisdiction
answers as one that does not exist, personal data needs `pii:read`, small figure cells stay
hidden unless the caller may read the records behind them anyway, and whatever a request hands
out is in the audit log. Each of these is answered here, from the principal alone, and every
statement builder, guard and resolver asks this object rather than derive the rule again:

- `records`, the row scope each statement builder asks for a table's WHERE clause
  (db/queries/scoping.py);
- `may`, whether a field guarded by scopes answers or is nulled with FORBIDDEN
  (schema/permissions.py);
- `reads_personal_data`, whether an owner's personal data is read, written or shown at all;
- `owner_columns`, which of the owner's personal columns a statement may select;
- `places`, whether a record may be put in a region;
- `owns_programmes`, which programmes are the caller's own, whose participations it alone may
  mark verified;
- `own` (with `own_decisions` and `own_guarantees`), which eligibility decisions and
  guarantees are the caller's to read, review, guarantee and change, whose defaults R13
  counts, whose cover its gearing limit weighs and which its guarantee feed carries;
- `own_figure_records` (with `own_region`), `reads_own_figures` and `sees_small_cells`, which
  records behind figures are the caller's own, read apart from the others, and which of them it
  may read anyway, so that they are exempt from disclosure control; `reads_own_figures_apart`,
  whether that own part is also published apart, the whole cell then held to k on the others'
  part even where they are none;
- `figure_audience`, which callers may be handed the same figure table;
- `audit_entry`, what the audit log records of the request.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import ColumnElement

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from db.queries.aggregates import Figures, inside_region
from db.queries.ownership import Ownership
from db.queries.programmes import owned_by
from db.queries.scoping import NATIONAL, RowScope
from domain.personal import OWNER_COLUMNS, OWNER_FIELDS
from resolvers.access import Touched

FigureRecords = Literal["registers", "guarantees"]
"""What a figure table counts: the registers' records (MSMEs, cooperatives, their graduations
and indicators) or guarantees."""

OWNER_TYPE = "Owner"
"""The GraphQL type of the owner's personal fields (schema/types/records.py): the audit names
each `Owner.<field>`, however it went out, so one name means one kind of data in the trail."""


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    principal: Principal
    records: RowScope = field(init=False)
    """The records the caller may read and write: those inside its jurisdiction."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", RowScope(self.principal.jurisdiction))

    def may(self, *scopes: Scope) -> bool:
        """Whether the token carries every one of `scopes`."""
        return self.principal.has(*scopes)

    @property
    def reads_personal_data(self) -> bool:
        """Owners' personal data is selected, written or shown only with `pii:read`."""
        return self.principal.has(Scope.PII_READ)

    def owner_columns(self, asked: Collection[str]) -> frozenset[str]:
        """Of the personal columns (domain.personal) `asked` for, those a statement may select:
        none without `pii:read`, so personal data is not even read; with it, those asked and the
        NIK, which names the data subject in the audit entry."""
        if not self.reads_personal_data:
            return frozenset()
        return frozenset(OWNER_COLUMNS).intersection(asked) | {"nik"}

    def places(self, region: str) -> bool:
        """Whether a record may be put (or moved) in `region`."""
        return self.records.covers(region)

    @property
    def owns_programmes(self) -> ColumnElement[bool]:
        """The programmes the caller owns (`db.queries.programmes.owned_by`): those whose owning
        agency is of its `org_kind` and jurisdiction. VERIFIED means checked by the programme's
        owner, so only the owner marks a participation so: a province enrolling its business in
        a guarantor's programme cannot vouch for it in the guarantor's name."""
        principal = self.principal
        return owned_by(principal.org_kind.value, principal.jurisdiction)

    @property
    def own(self) -> Ownership:
        """Which decisions and guarantees are the caller's (db/queries/ownership.py): those its
        client asked for and issued, about businesses inside its jurisdiction. A check finds
        only businesses inside it, so that is every decision the client asked for, and every
        guarantee it issued (a guarantee keeps its decision's place); the jurisdiction holds a
        caller to its own should a client id ever be shared across jurisdictions, as an SSO's
        was. An external principal's rows under its id of the older form `ISSUER#CLIENT`, which
        every jurisdiction's users of one SSO app shared, are its own inside its jurisdiction:
        their guarantees can still be claimed, count towards its gearing limit and in R13, and
        are in its feed, while those of another jurisdiction remain another principal's."""
        principal = self.principal
        legacy = () if principal.legacy_client_id is None else (principal.legacy_client_id,)
        return Ownership((principal.client_id, *legacy), self.records)

    @property
    def own_decisions(self) -> ColumnElement[bool]:
        """The eligibility decisions the caller may read, review and guarantee (`own`)."""
        return self.own.decisions

    @property
    def own_guarantees(self) -> ColumnElement[bool]:
        """The guarantees the caller may change and is shown exactly (`own_figure_records`)."""
        return self.own.guarantees

    @property
    def own_region(self) -> str | None:
        """The region whose registers' records are the caller's own (`own_figure_records`): its
        jurisdiction, unless national. An indicator of a wider region reads them apart too."""
        jurisdiction = self.principal.jurisdiction
        return None if jurisdiction == NATIONAL else jurisdiction

    def own_figure_records(
        self, records: FigureRecords, figures: Figures
    ) -> ColumnElement[bool] | None:
        """Which rows of `figures` (a table of `records`) are the caller's own, read apart from
        the others in every cell so that the others' noise is keyed on the others alone: those
        it can move between cells at will, under any token its client is issued (narrowed ones
        included). A key it can move can be drawn again and its noise averaged away.

        - Registers: the records of its jurisdiction (`own_region`; `figures` must have that
          region's dimension), which it may create, edit and move with `records:write`.
        - Guarantees: those its client issued (`own_guarantees`), whose status it changes and
          to which it adds new ones. Not the guarantees of its jurisdiction: they hold every
          guarantor's of the province, so each move of its own drew new noise on a part that
          holds a rival's, and readings less its own known amounts gave the rival's single
          guarantee (a reviewer did it in 15 readings). Keyed apart, another guarantor's
          guarantees are held to k alone.
        """
        if records == "guarantees":
            return self.own_guarantees
        region = self.own_region
        return None if region is None else inside_region(figures, region)

    def reads_own_figures(self, records: FigureRecords) -> bool:
        """Whether the caller's own records (`own_figure_records`) are published exactly: the
        registers' with `records:read`; the guarantees it issued with `guarantees:write`, which
        recorded them and whose mutations hand them back. Otherwise they are perturbed on a key
        of their own."""
        if records == "guarantees":
            return self.principal.has(Scope.GUARANTEES_WRITE)
        return self.principal.has(Scope.RECORDS_READ)

    def reads_own_figures_apart(self, records: FigureRecords) -> bool:
        """Whether the caller's own part of each cell is published in fields of its own, the
        whole cell held to k on the others' part even where that is empty, and a hidden cell
        with none of its own left out: a guarantor's guarantee figures. Shown whole where no
        rival had a guarantee and hidden where one had one or two, a cell told a guarantor of
        its rivals' activity there, as a hidden cell did where it had none; apart, its own need
        not show in the whole. Any other caller (a ministry) has no own part to set apart.
        (The registers' whole cells still show a jurisdiction's own records exact.)"""
        return records == "guarantees" and self.principal.org_kind is OrgKind.BUMD

    def sees_small_cells(self, region: str, records: FigureRecords = "registers") -> bool:
        """A figure cell about `region` is exempt from disclosure control when the caller may
        read every record of that region anyway: registers' records, with `records:read`,
        inside its jurisdiction. Never guarantees: a guarantee cell holds other guarantors'
        guarantees, whatever its region."""
        return (
            records == "registers"
            and self.reads_own_figures(records)
            and self.records.covers(region)
        )

    def reads_released_figures(self, region: str, records: FigureRecords = "registers") -> bool:
        """Whether figures about `region` are computed from the current release (db/releases.py)
        rather than the live records: unless the caller sees every cell of them exact. A
        perturbed cell read live is drawn again at each change another writer makes to it, and
        readings averaged give its hidden parts away; an exact one gives nothing away."""
        return not self.sees_small_cells(region, records)

    @property
    def figure_audience(self) -> tuple[frozenset[Scope], str | None, str]:
        """What decides a figure table the caller is shown: every scope its token carries (a
        field it does not cover answers FORBIDDEN; `records:read` and `guarantees:write` make
        its own records exact), its own region and its client (`own_figure_records`: which
        records each cell reads apart, the guarantees its client issued among them). Tokens
        alike in it may be handed the same table (schema/figure_cache.py); any other may not,
        so no client is handed a guarantee table made for another guarantor."""
        return self.principal.scopes, self.own_region, self.principal.client_id

    def audit_entry(
        self,
        *,
        operation: str | None,
        document_hash: str,
        fields: Mapping[str, list[str]],
        records: Mapping[str, int],
        touched: Touched,
        owner_columns: Collection[str] = (),
        owner_finances: Collection[str] = (),
        positions: Collection[int] | None = None,
    ) -> dict[str, Any]:
        """The audit log's entry for a request that handed out records or personal data: who,
        why, which operation, the guarded fields it used with their scopes, every field it
        handed out and the personal ones itemised, and how many records of each kind.

        `owner_columns`: those of an owner that went out inside a record's JSON (the change
        feed's `record`) as the statement selected them (`AccessPolicy.owner_columns`: none
        without `pii:read`), or that a write changed (an owner written, replaced or erased),
        which the document's selection does not name; itemised as the `Owner` fields they are,
        among the fields touched and the personal ones, so a field reads the same in the trail
        whether it went out or was overwritten. `owner_finances`: an MSME's figures that are its
        owner's finances (domain.personal.OWNER_FINANCES), as `Type.field`, that went out
        inside JSON the selection does not name (a feed's record, a record's history), itemised
        likewise; those the document selects are among `touched.personal` already
        (schema/touched.py). `positions`: of the audit entries a read of the trail handed out,
        in order (`AccessNotes.entries_returned`), which stand for the NIKs they name."""
        principal = self.principal
        in_records = {
            f"{OWNER_TYPE}.{field.name}" for field in OWNER_FIELDS if field.column in owner_columns
        } | set(owner_finances)
        return {
            "organisation": principal.organisation,
            "orgKind": principal.org_kind.value,
            "jurisdiction": principal.jurisdiction,
            "purpose": principal.purpose,
            "operation": operation,
            "documentHash": document_hash,
            "fields": dict(fields),
            "touched": sorted({*touched.fields, *in_records}),
            "personalFields": sorted({*touched.personal, *in_records}),
            "records": dict(records),
        } | ({} if positions is None else {"positions": sorted(positions)})
