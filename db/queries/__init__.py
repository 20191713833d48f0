"""The SQL behind every read: plain functions from (connection, plain arguments) to rows."""

from typing import Any

from sqlalchemy import Row

Record = Row[*tuple[Any, ...]]
"""A result row of any width, read by column name."""
