"""A mutation's root field that the plan answers (schema/plan.py): the write its resolver makes,
and the stored row's plain fields shown as the executor shows them.

The executor answers `checkEligibility` by coercing its arguments again on every request,
converting them to Strawberry's input objects and wrapping the one resolver in Strawberry's
layers, then walking the selection field by field: as much CPU as the check's own Python. The
plan runs the same write (`write`, the function the field's resolver calls, so both paths
refuse, store and note alike) and reads the selected fields off the stored row, each serialised
by its own GraphQL type. A selection this cannot show exactly (a field with a resolver, a guard,
arguments or a directive; a non-null field whose column may be null) is the executor's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLEnumType, GraphQLObjectType, GraphQLScalarType, get_nullable_type
from sqlalchemy import Table
from strawberry.types.nodes import SelectedField

from schema.compiled import Unsupported, definitions, keyed


@dataclass(frozen=True, slots=True)
class _Leaf:
    key: str
    attribute: str
    serialize: Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class RowShape:
    """The selected fields of a stored row: (response key, value) in selection order."""

    parts: tuple[_Leaf | tuple[str, str], ...]
    """A leaf read off the row, or (key, type name) for `__typename`."""
    resolve: Callable[[Any, str], Any]
    """How the executor reads a field without a resolver (Strawberry's default resolver)."""

    def answer(self, row: Any) -> dict[str, Any]:
        answer: dict[str, Any] = {}
        for part in self.parts:
            if isinstance(part, _Leaf):
                value = self.resolve(row, part.attribute)
                answer[part.key] = None if value is None else part.serialize(value)
            else:
                answer[part[0]] = part[1]
        return answer


@dataclass(frozen=True, slots=True)
class WriteRoot:
    """A mutation's root field whose resolver stores one row of `table` and answers it as
    `node_type`."""

    node_type: type
    table: Table
    write: Callable[..., Awaitable[Any]]
    """`write(context, **arguments)`: what the field's resolver does, raising its coded errors;
    the stored row."""

    def shape(
        self,
        graphql_type: GraphQLObjectType,
        selected: SelectedField,
        resolve: Callable[[Any, str], Any],
    ) -> RowShape:
        """The selection's shape on `graphql_type` (the built schema's `node_type`), read with
        `resolve`; Unsupported when the executor must answer it."""
        type_name, fields = definitions(self.node_type)
        parts: list[_Leaf | tuple[str, str]] = []
        for key, field in keyed(selected.selections, type_name):
            if field.name == "__typename":
                parts.append((key, type_name))
                continue
            declared = fields.get(field.name)
            if declared is None or declared.base_resolver is not None or declared.extensions:
                raise Unsupported(field.name)
            column = self.table.c.get(declared.python_name)
            field_type = graphql_type.fields[field.name].type
            leaf = get_nullable_type(field_type)
            if column is None or (leaf is not field_type and column.nullable):
                raise Unsupported(field.name)  # the executor reports a null where none may be
            if not isinstance(leaf, GraphQLScalarType | GraphQLEnumType):
                raise Unsupported(field.name)
            parts.append(_Leaf(key, declared.python_name, leaf.serialize))
        return RowShape(tuple(parts), resolve)
