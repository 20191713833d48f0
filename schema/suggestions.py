"""Error suggestions ("Did you mean 'msmes'?") drawn only from what the client may see.

Documents are validated, and variables coerced, against the full schema, which is what runs
them; graphql-core then suggests names from all of it. Each error with a suggestion is looked up
again among the errors the same document and variables give against the client's own schema
(schema.visible): the same error at the same place takes that message, whose suggestions come
from the client's schema alone; one with no counterpart there loses its suggestion.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    get_operation_ast,
    get_variable_values,
    validate,
)

SUGGESTION = " Did you mean "
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


def _unsuggested(message: str) -> str:
    return _SUGGESTION.sub("", message)


def _place(error: GraphQLError) -> tuple[str, tuple[tuple[int, int], ...]]:
    where = tuple((location.line, location.column) for location in error.locations or ())
    return _unsuggested(error.message), where


def _client_errors(
    client: GraphQLSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> list[GraphQLError]:
    errors = validate(client, document)
    operation = get_operation_ast(document, operation_name)
    if operation is not None and operation.variable_definitions:
        coerced = get_variable_values(client, operation.variable_definitions, variables or {})
        if isinstance(coerced, list):
            errors.extend(coerced)
    return errors


def _with_message(error: GraphQLError, message: str) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=error.original_error,
        extensions=error.extensions,
    )


def visible_suggestions(
    errors: Sequence[GraphQLError],
    client: Callable[[], GraphQLSchema],
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> list[GraphQLError]:
    """`errors` with every suggestion recomputed against the client's schema, which `client`
    gives (asked for only when an error suggests something)."""
    if not any(SUGGESTION in error.message for error in errors):
        return list(errors)
    recomputed = {
        _place(error): error.message
        for error in _client_errors(client(), document, variables, operation_name)
    }
    return [
        _with_message(error, recomputed.get(_place(error), _unsuggested(error.message)))
        if SUGGESTION in error.message
        else error
        for error in errors
    ]
