"""Jurisdiction as a WHERE clause, so a row outside it is never read, counted or joined.

A jurisdiction (or a region filter) is a Kemendagri code: "ID" is national, two digits a province,
"PP.KK" a regency or city, "PP.KK.CC" a district. Each maps to equality on one indexed column.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, FromClause, true

NATIONAL = "ID"


def within(table: FromClause, code: str) -> ColumnElement[bool]:
    """Rows of `table` located inside the region `code`."""
    if code == NATIONAL:
        return true()
    if len(code) == 2:
        return table.c.province_code == code
    if len(code) == 5:
        return table.c.regency_code == code
    return table.c.district_code == code
