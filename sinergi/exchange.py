"""The request in flight, as far as logs and metrics care: its id, operation, client and codes.

A context variable, set by `sinergi.observe` for each HTTP request, so the guard, the GraphQL
endpoint and any log record can reach it without it being passed along. Kept apart from the
metrics so logging can use it without loading `prometheus_client` (see `sinergi serve`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

MAX_OPERATION_NAME = 128
OPERATION_NAME = re.compile(rf"[_A-Za-z][_0-9A-Za-z]{{0,{MAX_OPERATION_NAME - 1}}}")
"""A GraphQL Name of at most MAX_OPERATION_NAME characters: the only operation name the guard
lets a request send or its document declare, as metrics labels, access-log lines and audit
entries carry it; a caller's invented name then costs them no more than that."""
BATCH = "(batch)"
UNKNOWN = "(other)"
"""The operation of a request whose `operationName` no document has been found to hold (yet):
a hash no trusted document answers, say. A caller's unchecked name is recorded only for a
request the rate limit refused before its document was parsed, and only a name OPERATION_NAME
matches (sinergi.guard)."""


@dataclass(slots=True)
class Exchange:
    """What is known about the request in flight, filled in by whoever learns it."""

    request_id: str
    operation: str | None = None
    """An operation name of the request's document (OPERATION_NAME), BATCH, UNKNOWN, or None
    while unnamed or not yet known."""
    client_id: str | None = None
    codes: list[str] = field(default_factory=list)
    graphiql: bool = False
    """Whether the answer was GraphiQL's page (a browser's GET in development), no GraphQL
    request: it is not counted as one."""
    applied: Callable[[], bool] | None = None
    """Set for a request holding a mutation: whether it has committed a change so far, as its
    writes recorded it. What the answer to one the server stopped before it finished says it
    applied (sinergi.observe)."""


_current: ContextVar[Exchange | None] = ContextVar("sinergi_exchange", default=None)


def current() -> Exchange | None:
    return _current.get()


def begin(exchange: Exchange) -> Token[Exchange | None]:
    return _current.set(exchange)


def end(token: Token[Exchange | None]) -> None:
    _current.reset(token)
