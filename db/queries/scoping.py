"""Jurisdiction as a WHERE clause, so a row outside it is never read, counted or joined.

A jurisdiction (or a region filter) is a Kemendagri code: "ID" is national, two digits a province,
"PP.KK" a regency or city, "PP.KK.CC" a district. Each maps to equality on one indexed column.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, FromClause, true

NATIONAL = "ID"


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
