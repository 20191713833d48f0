"""Introspection for every authenticated client, answered from that client's own schema.

An operation asking for `__schema` or `__type` gets the schema its token's scopes let it use
(schema.visible): fields, types, arguments and enum values it cannot use are absent. Such an
operation asks for nothing else (IntrospectionAlone): data fields run on the full schema, which
introspection must not show. graphql-core's own introspection resolvers answer it, counted as
they run against the same cost limit as any query (one resolved field, one unit): a document
that fans out over the schema (`fields { type { fields … } }`, many aliased copies) is stopped
at the limit and answered QUERY_TOO_COMPLEX. Unauthenticated requests never get here (401).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationRule,
    execute_sync,
    get_operation_ast,
)
from strawberry.extensions import SchemaExtension

from resolvers.context import Context
from resolvers.errors import ErrorCode
from schema.suggestions import visible_suggestions
from schema.visible import ClientSchema, ClientSchemas

INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
META_FIELDS = INTROSPECTION_FIELDS | {"__typename"}


def root_fields(
    selections: SelectionSetNode,
    fragment: Callable[[str], FragmentDefinitionNode | None],
    seen: frozenset[str] = frozenset(),
) -> set[str]:
    """The names of the fields an operation selects at its root, through its fragments."""
    names: set[str] = set()
    for node in selections.selections:
        if isinstance(node, FieldNode):
            names.add(node.name.value)
        elif isinstance(node, InlineFragmentNode):
            names |= root_fields(node.selection_set, fragment, seen)
        elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
            found = fragment(node.name.value)
            if found is not None:
                names |= root_fields(found.selection_set, fragment, seen | {node.name.value})
    return names


class IntrospectionAlone(ValidationRule):
    """`__schema` and `__type` only beside other meta fields, never beside data."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: object) -> None:
        names = root_fields(node.selection_set, self.context.get_fragment)
        if names & INTROSPECTION_FIELDS and names - META_FIELDS:
            self.report_error(
                GraphQLError(
                    "ask for __schema and __type in an operation of their own: introspection "
                    "answers from your client's schema, data fields from the whole one",
                    node,
                )
            )


def _introspects(document: DocumentNode, operation_name: str | None) -> bool:
    operation = get_operation_ast(document, operation_name)
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    return operation is not None and bool(
        root_fields(operation.selection_set, fragments.get) & INTROSPECTION_FIELDS
    )


class _Budget:
    """graphql-core middleware counting resolved fields; past the limit, each one fails."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def resolve(self, next_: Callable[..., Any], root: Any, info: Any, **arguments: Any) -> Any:
        self.spent += 1
        if self.spent > self.limit:
            raise GraphQLError("over the cost limit")
        return next_(root, info, **arguments)


def introspect(
    client: ClientSchema,
    document: DocumentNode,
    variables: dict[str, Any] | None,
    operation_name: str | None,
    max_cost: int,
) -> ExecutionResult:
    """Run an introspection operation on the client's schema, at most `max_cost` fields."""
    budget = _Budget(max_cost)
    result = execute_sync(
        client.schema,
        document,
        variable_values=variables,
        operation_name=operation_name,
        middleware=[budget],
    )
    if budget.spent <= max_cost:
        return result
    error = GraphQLError(
        f"introspection exceeds the cost limit of {max_cost} fields; ask for less at a time",
        extensions={
            "code": ErrorCode.QUERY_TOO_COMPLEX.value,
            "limit": "cost",
            "maximum": max_cost,
            "actual": budget.spent,
        },
    )
    return ExecutionResult(data=None, errors=[error])


class ClientIntrospection(SchemaExtension):
    def __init__(self, clients: ClientSchemas, *, max_cost: int) -> None:
        self.clients = clients
        self.max_cost = max_cost

    def _client(self) -> ClientSchema:
        """The caller's schema; a caller without a principal may use nothing guarded."""
        context = self.execution_context.context
        return self.clients.for_scopes(
            context.principal.scopes if isinstance(context, Context) else ()
        )

    def on_execute(self) -> Iterator[None]:
        """Answers an introspection operation before the executor would run it."""
        context = self.execution_context
        document = context.graphql_document
        if document is not None and _introspects(document, context.operation_name):
            context.result = introspect(
                self._client(), document, context.variables, context.operation_name, self.max_cost
            )
        yield

    def on_operation(self) -> Iterator[None]:
        """Suggestions in errors ("Did you mean …?") name only what the client may see."""
        yield
        context = self.execution_context
        result, document = context.result, context.graphql_document
        if result is not None and result.errors and document is not None:
            result.errors = visible_suggestions(
                result.errors,
                lambda: self._client().schema,
                document,
                context.variables,
                context.operation_name,
            )
