"""Jurisdiction as a WHERE clause, so a row outside it is never read, counted or joined.

A jurisdiction (or a region filter) is a Kemendagri code: "ID" is national, two digits a province,
"PP.KK" a regency or city, "PP.KK.CC" a district. Each maps to equality on one indexed column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, FromClause, or_, true

from db.models import PROGRAMMES, REGIONS
from domain.identifiers import is_within

NATIONAL = "ID"
PUBLIC = (REGIONS, PROGRAMMES)
"""Reference tables: public planning data, every row readable by every caller."""


def within(table: FromClause, code: str) -> ColumnElement[bool]:
    """Rows of `table` located inside the region `code` (a table without districts, such as
    guarantees', cannot be asked about a district)."""
    columns = table.c
    return within_place(
        columns.province_code, columns.regency_code, columns.get("district_code"), code
    )


def within_place(
    province: ColumnElement[Any],
    regency: ColumnElement[Any],
    district: ColumnElement[Any] | None,
    code: str,
) -> ColumnElement[bool]:
    """A place given by its region columns lies inside the region `code` (the change feed asks
    this of where a record was and where it went, which are not a table's own columns)."""
    if code == NATIONAL:
        return true()
    if len(code) == 2:
        return province == code
    if len(code) == 5:
        return regency == code
    if district is None:
        raise ValueError(f"no district column to place {code!r} in")
    return district == code


@dataclass(frozen=True, slots=True)
class RowScope:
    """The records a caller may read or write: those located inside `code`. The request's access
    policy (resolvers/policy.py) makes it from the token; every statement builder that reads or
    writes records takes it and asks it for the rows of each table, so no builder decides who
    sees what. Equal scopes are equal values, so a statement built for one serves the next."""

    code: str

    def rows(self, table: FromClause) -> ColumnElement[bool]:
        """The WHERE clause admitting the rows of `table` inside the scope: every row of a
        public reference table."""
        if table in PUBLIC:
            return true()
        return within(table, self.code)

    def holds(self, region: ColumnElement[str]) -> ColumnElement[bool]:
        """The WHERE clause admitting a row whose place is the region code in the column
        `region` rather than a record's region columns (a programme's jurisdiction, where a
        participation lies once its business has left it: db/queries/programmes.visible): the
        scope's own code or one nested in it."""
        if self.code == NATIONAL:
            return true()
        return or_(region == self.code, region.startswith(f"{self.code}."))

    def covers(self, region: str) -> bool:
        """Whether a record located in `region` lies inside the scope."""
        return is_within(region, self.code)


EVERYWHERE = RowScope(NATIONAL)
"""Every row: figures, which disclosure control protects instead."""
