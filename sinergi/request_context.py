"""The context resolvers receive, made from what the app's lifespan started (sinergi.app): the
one maker for HTTP requests and WebSocket connections alike."""

from __future__ import annotations

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
) -> Context:
    """`wrote_recently` and `write_noted`: what the client's last write still means for this
    request (sinergi.graphql_app); a WebSocket's subscriptions only read, so neither."""
    state = connection.scope["state"]  # the lifespan's: a dictionary, read without a wrapper
    return Context(
        principal=principal,
        engine=state["engine"],
        autocommit_view=state["primary"],
        replica=state["replica"],
        wrote_recently=wrote_recently,
        write_noted=write_noted,
        region_directory=state["regions"],
        audit_writer=state["audit"],
        limits=limits,
        cursor_seal=state["cursor_seal"],
        request=connection,
        connections=state.get("connections"),
    )
