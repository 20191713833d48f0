"""How big a GraphQL document may be, checked on its syntax tree before anything runs.

Depth, aliases, tokens and an estimated cost (fields times the page sizes above them) bound the
work one request can ask for, so a careless or hostile client is refused in microseconds
instead of exhausting the database.

Introspection meets the same limits. Its standard query (graphql-core's, GraphiQL's) nests
`ofType` nine deep to spell out type references such as `[Region!]!`: those nine add no depth,
any further `ofType` on the same path does. What introspection really costs is counted as it runs
(schema.introspection), since its lists are as long as the schema, not as a `first` argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_cost: int = 50_000
    max_document_bytes: int = 100_000
    max_batch: int = 10
    max_body_bytes: int = 2_000_000
    default_page_size: int = 20


TYPE_REF_NESTING = 9
"""`ofType` fields on a path that add no depth: graphql-core's standard introspection query asks
for nine, more than any real type reference has (`[[T!]!]!` needs five)."""


@dataclass(frozen=True, slots=True)
class Violation:
    limit: str
    maximum: int
    actual: int

    @property
    def message(self) -> str:
        return f"query exceeds the {self.limit} limit of {self.maximum} (found {self.actual})"


class _Walk:
    def __init__(self, document: DocumentNode, variables: Mapping[str, Any], page: int) -> None:
        self.fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        self.variables = variables
        self.page = page
        self.aliases = 0

    def _page_size(self, field: FieldNode) -> int:
        for argument in field.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                return max(int(argument.value.value), 1)
            if isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
                return max(value, 1) if isinstance(value, int) else self.page
        return 1

    def measure(
        self,
        selections: SelectionSetNode | None,
        multiplier: int,
        seen: frozenset[str],
        type_refs: int = 0,
    ) -> tuple[int, int]:
        """(depth, cost) of a selection set below `type_refs` `ofType` fields; the first
        TYPE_REF_NESTING of those on a path add no depth. Fragments are followed once per path."""
        if selections is None:
            return 0, 0
        depth = cost = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.alias is not None:
                    self.aliases += 1
                inner = multiplier * self._page_size(node)
                type_ref = node.name.value == "ofType"
                nested = type_refs + type_ref
                child_depth, child_cost = self.measure(node.selection_set, inner, seen, nested)
                own_depth = 0 if type_ref and nested <= TYPE_REF_NESTING else 1
                depth, cost = max(depth, child_depth + own_depth), cost + multiplier + child_cost
            elif isinstance(node, InlineFragmentNode):
                child_depth, child_cost = self.measure(
                    node.selection_set, multiplier, seen, type_refs
                )
                depth, cost = max(depth, child_depth), cost + child_cost
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = self.fragments.get(node.name.value)
                if fragment is not None:
                    child_depth, child_cost = self.measure(
                        fragment.selection_set, multiplier, seen | {node.name.value}, type_refs
                    )
                    depth, cost = max(depth, child_depth), cost + child_cost
        return depth, cost


def check_document(
    document: DocumentNode, variables: Mapping[str, Any], limits: QueryLimits
) -> Violation | None:
    walk = _Walk(document, variables, limits.default_page_size)
    depth = cost = 0
    for node in document.definitions:
        if isinstance(node, OperationDefinitionNode):
            operation_depth, operation_cost = walk.measure(node.selection_set, 1, frozenset())
            depth, cost = max(depth, operation_depth), cost + operation_cost
    for limit, maximum, actual in (
        ("depth", limits.max_depth, depth),
        ("aliases", limits.max_aliases, walk.aliases),
        ("cost", limits.max_cost, cost),
    ):
        if actual > maximum:
            return Violation(limit, maximum, actual)
    return None
