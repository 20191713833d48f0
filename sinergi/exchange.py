"""The request in flight, as far as logs and metrics care: its id, operation, client and codes.

A context variable, set by `sinergi.observe` for each HTTP request, so the guard, the GraphQL
endpoint and any log record can reach it without it being passed along. Kept apart from the
metrics so logging can use it without loading `prometheus_client` (see `sinergi serve`).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass, field


@dataclass(slots=True)
class Exchange:
    """What is known about the request in flight, filled in by whoever learns it."""

    request_id: str
    operation: str | None = None
    client_id: str | None = None
    codes: list[str] = field(default_factory=list)


_current: ContextVar[Exchange | None] = ContextVar("sinergi_exchange", default=None)


def current() -> Exchange | None:
    return _current.get()


def begin(exchange: Exchange) -> Token[Exchange | None]:
    return _current.set(exchange)


def end(token: Token[Exchange | None]) -> None:
    _current.reset(token)
