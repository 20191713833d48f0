"""The SQL behind every read: plain functions from (connection, plain arguments) to rows."""

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, Row, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY

Record = Row[*tuple[Any, ...]]
"""A result row of any width, read by column name."""


def any_of(column: ColumnElement[Any], values: Iterable[Any]) -> ColumnElement[bool]:
    """`column = ANY($1)`, the values one array parameter.

    `IN ($1, $2, …)` renders a new statement text for every number of values, so PostgreSQL and
    asyncpg prepare each page size anew; this is one text for any batch a DataLoader sends.
    """
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
