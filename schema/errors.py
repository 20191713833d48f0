"""Every error leaves with a contract code; anything unexpected is masked and logged.

Coded errors (FORBIDDEN, BAD_USER_INPUT, …) pass unchanged. Errors the GraphQL engine raises for
a malformed document or bad variables are the caller's input errors. Everything else becomes
INTERNAL with a correlation id: the detail goes to the log only, never to the client.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from resolvers.errors import ErrorCode

logger = logging.getLogger("sinergi.errors")


def _coded(error: GraphQLError) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    original = error.original_error
    if original is None or isinstance(original, GraphQLError):
        return GraphQLError(
            error.message,
            nodes=error.nodes,
            path=error.path,
            extensions={**(error.extensions or {}), "code": ErrorCode.BAD_USER_INPUT.value},
        )
    if isinstance(original, ValueError) and error.path is None:
        # Scalars reject bad variable values with ValueError before execution starts.
        return GraphQLError(
            error.message, nodes=error.nodes, extensions={"code": ErrorCode.BAD_USER_INPUT.value}
        )
    correlation_id = uuid.uuid4().hex
    logger.error("internal error %s at %s", correlation_id, error.path, exc_info=original)
    return GraphQLError(
        f"Internal error; quote {correlation_id} when reporting it.",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": ErrorCode.INTERNAL.value, "correlationId": correlation_id},
    )


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_coded(error) for error in result.errors]
