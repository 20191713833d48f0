"""The context resolvers receive, made from what the app's lifespan started (sinergi.app): the
one maker for HTTP requests and WebSocket connections alike."""

from __future__ import annotations

import math

from starlette.requests import HTTPConnection

from auth.principal import Principal
from resolvers.context import Context, Limits


def context_for(
    connection: HTTPConnection,
    principal: Principal,
    limits: Limits,
    *,
    wrote_recently: bool = False,
    write_noted: bool = False,
    noted_at: float = -math.inf,
    window_seconds: float = math.inf,
) -> Context:
    """`wrote_recently` and `write_noted`: what the client's last write still means for this
    request (sinergi.graphql_app), `noted_at` when it was noted and `window_seconds` how long
    its reads keep off what lags (a slow write renews the note); a WebSocket's subscriptions
    only read, so none of them."""
    state = connection.scope["state"]  # the lifespan's: a dictionary, read without a wrapper
    return Context(
        principal=principal,
        engine=state["engine"],
        autocommit_view=state["primary"],
        replica=state["replica"],
        wrote_recently=wrote_recently,
        write_noted=write_noted,
        noted_at=noted_at,
        window_seconds=window_seconds,
        region_directory=state["regions"],
        audit=state["audit"],
        limits=limits,
        cursor_seal=state["cursor_seal"],
        request=connection,
        connections=state.get("connections"),
    )
