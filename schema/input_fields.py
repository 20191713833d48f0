"""Which input field an engine error is about, named as the contract's input errors name it.

graphql-core rejects a bad literal (`capital: "-5"`, `employees: 99999999999`, an unknown enum
value or input field, an impossible Date) while validating, and a bad variable while coercing,
in words that name a type, not the field: the client cannot tell which of its inputs to fix.
The field is found from the document: the path of arguments, input fields and list positions
that leads to the rejected literal (`input.capital`, `rows[2].nib`), or to the variable the
rejected value came in (`input` for `$i`, then the path within it, `input.capital`). A required
argument or input field left out is named as it would have been given (`nib`, `input.nib`):
graphql-core reports it on the field or the object that lacks it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    Node,
    ObjectValueNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
)

_VARIABLE = re.compile(r"Variable '\$(?P<name>\w+)'(?: has invalid value(?: at (?P<at>[^:]+))?:)?")
_UNKNOWN_FIELD = re.compile(r"not to include unknown field '(?P<name>\w+)'")
_REQUIRED_FIELD = re.compile(r"to include required field '(?P<name>\w+)'")
_REQUIRED_ARGUMENT = re.compile(
    r"\AArgument '[^'(]*\((?P<name>\w+):\)' of type '[^']*' is required"
)


def _values(value: ValueNode, path: str) -> Iterator[tuple[Node, str]]:
    """Every node inside an argument's value with its path; an object field both as itself
    (an unknown field is reported on it) and as its value."""
    yield value, path
    if isinstance(value, ObjectValueNode):
        for field in value.fields:
            inner = f"{path}.{field.name.value}"
            yield field, inner
            yield from _values(field.value, inner)
    elif isinstance(value, ListValueNode):
        for index, item in enumerate(value.values):
            yield from _values(item, f"{path}[{index}]")


def _arguments(selections: SelectionSetNode | None) -> Iterator[ArgumentNode]:
    for node in selections.selections if selections is not None else ():
        if isinstance(node, FieldNode):
            yield from node.arguments or ()
            yield from _arguments(node.selection_set)
        elif isinstance(node, InlineFragmentNode):
            yield from _arguments(node.selection_set)
        elif isinstance(node, FragmentSpreadNode):
            continue  # its definition is walked on its own


def _places(document: DocumentNode) -> Iterator[tuple[Node, str]]:
    for definition in document.definitions:
        if isinstance(definition, ExecutableDefinitionNode):
            for argument in _arguments(definition.selection_set):
                yield argument, argument.name.value
                yield from _values(argument.value, argument.name.value)


def _variable_path(document: DocumentNode, name: str) -> str:
    """Where the variable is used (its first use), else the variable's own name."""
    for node, path in _places(document):
        if isinstance(node, VariableNode) and node.name.value == name:
            return path
    return name


def input_field(error: GraphQLError, document: DocumentNode | None) -> str | None:
    """The input field `error` is about, or None when it is not about an input value."""
    if document is None:
        return None
    missing = _REQUIRED_ARGUMENT.match(error.message)
    if missing is not None:  # reported on the field (or directive) that lacks it
        return missing["name"]
    required = _REQUIRED_FIELD.search(error.message)
    variable = _VARIABLE.match(error.message)
    if variable is not None:
        unknown = _UNKNOWN_FIELD.search(error.message) or required
        inner = f".{unknown['name']}" if unknown is not None else ""
        return _variable_path(document, variable["name"]) + (variable["at"] or "") + inner
    reported = {id(node) for node in error.nodes or ()}
    found = next((path for node, path in _places(document) if id(node) in reported), None)
    # A required input field left out is reported on the object that lacks it.
    return found if found is None or required is None else f"{found}.{required['name']}"
