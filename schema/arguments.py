"""A planned field's arguments, coerced once per document with holes where its variables go.

graphql-core coerces a field's arguments on every request by walking their literal against
their types (each input field's definition, its default), and Strawberry walks the result again
to build its input objects: 40 µs of an eligibility check's CPU, for a literal of which only
`$nib` changes. So a plan (schema/plan.py) has the field's arguments coerced by graphql-core and
Strawberry themselves, once, with a placeholder standing for each variable a request gives, and
notes where the placeholders landed; a request then puts its variables' values there,
rebuilding only the input objects that hold one. Everything else in the value (defaults, the
literals' scalars and enums, implicit nulls) is what the libraries made of it, shared by every
request as a plan's constant arguments always were.

Whether each variable is given a value, given null or left out changes what the libraries make
of the rest (a default instead, or an error), so each such pattern has its own coercion, made
when a request first shows it; a variable's null is coerced as the constant it is. A value goes
in as graphql-core coerced it, which is what the libraries would pass on wherever Strawberry
passes a value through unchanged (a scalar, an enum). Where Strawberry would change it (a global
ID, a list, a `Maybe`), or a pattern fails to coerce (an error the executor reports), the
placeholder does not land as itself, and that pattern is coerced the libraries' way on every
request.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import strawberry
from graphql import FieldNode, GraphQLField, VariableNode, visit
from graphql.execution.values import VariableValues, get_argument_values
from graphql.language import Visitor
from strawberry.types.arguments import StrawberryArgument, convert_arguments
from strawberry.types.base import get_object_definition

Arguments = Callable[[VariableValues], dict[str, Any]]
_Fill = Callable[[Mapping[str, Any]], Any]
_GIVEN, _NULL, _LEFT_OUT = range(3)
_PATTERNS = 16
"""Coercions kept per field: a document can name many variables, a client sends few patterns."""


class _Unplaceable(Exception):
    pass


class _Placeholder:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Variables(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.append(node.name.value)


def coerced_arguments(
    schema: strawberry.Schema,
    graphql_field: GraphQLField,
    declared: Sequence[StrawberryArgument],
    node: FieldNode,
) -> Arguments:
    """The field's arguments as its resolver receives them, for a request's variables."""

    def coerce(variables: VariableValues | None) -> dict[str, Any]:
        values = get_argument_values(graphql_field, node, variables)
        return convert_arguments(
            values,
            list(declared),
            scalar_registry=schema.schema_converter.scalar_registry,
            config=schema.config,
        )

    used = _Variables()
    for argument in node.arguments or ():
        visit(argument, used)
    occurrences = Counter(used.names)
    names = tuple(occurrences)
    fills: dict[tuple[int, ...], _Fill | None] = {}

    def fill_for(pattern: tuple[int, ...]) -> _Fill | None:
        coerced: dict[str, Any] = {}
        placeholders = 0
        for name, state in zip(names, pattern, strict=True):
            if state == _GIVEN:
                coerced[name] = _Placeholder(name)
                placeholders += occurrences[name]
            elif state == _NULL:
                coerced[name] = None
        try:
            template = coerce(VariableValues({}, coerced))
        except Exception:  # an error to report, or a placeholder a library would not pass on
            return None
        return _filler(template, placeholders)

    def planned(variables: VariableValues) -> dict[str, Any]:
        values = variables.coerced
        pattern = tuple(
            _LEFT_OUT if name not in values else _NULL if values[name] is None else _GIVEN
            for name in names
        )
        if pattern in fills:
            fill = fills[pattern]
        elif len(fills) < _PATTERNS:
            fill = fills[pattern] = fill_for(pattern)
        else:
            fill = None
        if fill is None:
            return coerce(variables)
        filled: dict[str, Any] = fill(values)
        return filled

    return planned


def _filler(template: dict[str, Any], occurrences: int) -> _Fill | None:
    """How to put variables' values where `template` holds placeholders; None unless each of
    the `occurrences` landed as itself, on a path of input objects only."""
    placed: list[str] = []

    def fill_of(value: Any) -> _Fill | None:
        if isinstance(value, _Placeholder):
            placed.append(value.name)
            name = value.name
            return lambda values: values[name]
        definition = get_object_definition(type(value))
        if definition is None or not definition.is_input or not dataclasses.is_dataclass(value):
            return None
        fields = dataclasses.fields(value)
        holes = {}
        for field in fields:
            inner = fill_of(getattr(value, field.name))
            if inner is not None:
                holes[field.name] = inner
        if not holes:
            return None
        if hasattr(value, "__post_init__") or not all(field.init for field in fields):
            raise _Unplaceable  # its fields are not what its constructor was given
        given = {field.name: getattr(value, field.name) for field in fields}
        return _rebuild(type(value), given, holes)

    try:
        top = {key: fill_of(value) for key, value in template.items()}
    except _Unplaceable:
        return None
    if len(placed) != occurrences:
        return None
    return _rebuild(dict, template, {key: fill for key, fill in top.items() if fill is not None})


def _rebuild(make: Callable[..., Any], base: dict[str, Any], holes: dict[str, _Fill]) -> _Fill:
    filled = tuple(holes.items())

    def rebuilt(values: Mapping[str, Any]) -> Any:
        given = dict(base)
        for name, fill in filled:
            given[name] = fill(values)
        return make(**given)

    return rebuilt
