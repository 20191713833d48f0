"""Count the SQL statements an engine runs, and which tables they touch."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine


@contextmanager
def recorded_statements(engine: AsyncEngine | None = None) -> Iterator[list[str]]:
    """Statements run on `engine`, or on every engine (the app's own, behind HTTP) when None.

    Left out: the app's background work that no request waits for: the rate limiter's counting
    (sinergi/rate_limit.py), which a process runs on its own schedule for all its requests, and
    audit sealing."""
    statements: list[str] = []
    target: Any = Engine if engine is None else engine.sync_engine

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "background" not in conn.get_execution_options() and (
            "rate_limit_windows" not in statement
        ):
            statements.append(statement)

    event.listen(target, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(target, "before_cursor_execute", record)
