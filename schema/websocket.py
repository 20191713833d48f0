"""Over a WebSocket only subscriptions run.

graphql-transport-ws carries queries and mutations too, but the WebSocket is admitted once and
its messages do not count against the rate limit (sinergi/graphql_app.py holds each subscribe
message to the request guard's checks and the trusted documents). Those operations are refused
here; they belong on POST /graphql. The refusal is BAD_USER_INPUT on `query`, as a subscription
sent over POST is: the client sent the operation the wrong way, which no scope would change.
"""

from __future__ import annotations

from collections.abc import Iterator

from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from resolvers.context import Context
from resolvers.errors import bad_input


class SubscriptionsOnlyOverWebSocket(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        context = self.execution_context.context
        over_websocket = isinstance(context, Context) and context.live is not None
        if over_websocket and self.execution_context.operation_type != OperationType.SUBSCRIPTION:
            raise bad_input(
                "query",
                "only subscriptions run over a WebSocket: send queries and mutations to "
                "POST /graphql",
            )
        yield
