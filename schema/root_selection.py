"""The root fields of an operation by response key, as graphql-core's executor collects them:
written directly, or inside a fragment spread or inline fragment at the root.

GraphQL merges every field selected under one response key, wherever in the root selection it is
written, and resolves it once with all their selections. A plan made for a root field once per
document (schema/compiled.py) must be made from all of them, or the fields written inside a
fragment are silently missing from the answer. Whether a copy is selected may depend on a
request's variables (`@skip`, `@include` on it or on a fragment around it): `conditional` says
so, since the copies then merged are not the same for every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
)

_CONDITIONS = frozenset({"skip", "include"})


@dataclass(slots=True)
class RootKey:
    """The nodes selected under one response key at the root, in document order."""

    nodes: list[FieldNode] = field(default_factory=list)
    conditional: bool = False
    """Whether a node is selected only as `@skip` or `@include` decide, request by request."""


def root_keys(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode]
) -> dict[str, RootKey]:
    """Each response key of the root selection with its nodes, through fragments, in the order
    graphql-core collects them (the order of the answer's keys)."""
    found: dict[str, RootKey] = {}

    def walk(selections: SelectionSetNode, conditional: bool, seen: frozenset[str]) -> None:
        for node in selections.selections:
            here = conditional or _conditioned(node)
            if isinstance(node, FieldNode):
                key = found.setdefault((node.alias or node.name).value, RootKey())
                key.nodes.append(node)
                key.conditional = key.conditional or here
            elif isinstance(node, InlineFragmentNode):
                walk(node.selection_set, here, seen)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = fragments.get(node.name.value)
                if fragment is not None:
                    walk(fragment.selection_set, here, seen | {node.name.value})

    walk(selection_set, False, frozenset())
    return found


def _conditioned(node: SelectionNode) -> bool:
    return any(directive.name.value in _CONDITIONS for directive in node.directives or ())
