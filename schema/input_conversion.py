"""Input objects built from their GraphQL values by converters made once per type.

Strawberry converts an argument's input object on every request by walking its type: for each
field the name converter, the field's type resolved again, a recursive call per value. That cost
0.12 ms of CPU for a page's `filter` and 0.44 ms for an eligibility check's `request`, more than
the statement that answers them. `StrawberryObjectDefinition.from_input`, the hook Strawberry
offers integrations to build their own input values, is given here a converter made once per
type from the same definitions, so a request only copies values into the dataclass.

What the converter does not know how to build exactly as Strawberry does (a `Maybe`, a lazy or
generic type, a global ID) it hands back to Strawberry for that field (`InputContext.convert`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import MISSING
from typing import Any

from strawberry.scalars import is_scalar
from strawberry.types.arguments import InputContext
from strawberry.types.base import (
    StrawberryList,
    StrawberryMaybe,
    StrawberryObjectDefinition,
    StrawberryOptional,
    StrawberryType,
    get_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition, has_enum_definition
from strawberry.types.unset import UNSET

Convert = Callable[[Any, InputContext], Any]


def compile_inputs(roots: Iterable[type]) -> None:
    """Gives every input object reachable from the arguments of `roots`' fields its converter
    (those that build their own value keep their way)."""
    for definition in _input_definitions(roots):
        if definition.from_input is None:
            definition.from_input = _Builder(definition)


def _input_definitions(roots: Iterable[type]) -> Iterator[StrawberryObjectDefinition]:
    seen: set[int] = set()
    pending: list[Any] = []
    for root in roots:
        definition = get_object_definition(root, strict=True)
        pending.extend(argument.type for field in definition.fields for argument in field.arguments)
    while pending:
        found = get_object_definition(_unwrapped(pending.pop()))
        if found is None or not found.is_input or id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        pending.extend(field.resolve_type(type_definition=found) for field in found.fields)


def _unwrapped(type_: Any) -> Any:
    while isinstance(type_, StrawberryOptional | StrawberryList):
        type_ = type_.of_type
    return type_


class _Builder:
    """`from_input` of one input type: the converters of its fields made on first use (the
    types of its fields may not all be resolved while the schema is built)."""

    def __init__(self, definition: StrawberryObjectDefinition) -> None:
        self._definition = definition
        self._scalars: Mapping[object, Any] = {}
        self._fields: tuple[tuple[str, str, Convert], ...] | None = None
        self._defaults: dict[str, None] = {}

    def __call__(self, cls: type, value: Mapping[str, Any], context: InputContext) -> Any:
        fields = self._fields
        if fields is None:
            fields = self._fields = self._compile(context)
        kwargs: dict[str, Any] = dict(self._defaults)
        for graphql_name, python_name, convert in fields:
            if graphql_name in value:
                kwargs[python_name] = convert(value[graphql_name], context)
        return cls(**kwargs)

    def _compile(self, context: InputContext) -> tuple[tuple[str, str, Convert], ...]:
        definition = self._definition
        self._scalars = context.scalar_registry
        # Strawberry's implicit default: None for every field the client may leave out
        self._defaults = {
            field.python_name: None
            for field in definition.fields
            if field.default_value is MISSING and field.default_factory is MISSING
        }
        compiled = []
        for field in definition.fields:
            graphql_name = context.config.name_converter.from_field(field)
            type_ = field.resolve_type(type_definition=definition)
            compiled.append((graphql_name, field.python_name, self._converter(type_, graphql_name)))
        return tuple(compiled)

    def _converter(self, type_: Any, name: str) -> Convert:
        if isinstance(type_, StrawberryMaybe):
            return _strawberrys(type_, name)
        if isinstance(type_, StrawberryOptional):
            inner = self._converter(type_.of_type, name)
            return lambda value, context: (
                value if value is None or value is UNSET else inner(value, context)
            )
        if isinstance(type_, StrawberryList):
            item = self._converter(type_.of_type, name)
            return lambda value, context: (
                value if value is None or value is UNSET else [item(v, context) for v in value]
            )
        if self._leaf(type_):
            return lambda value, context: value  # graphql-core has parsed it already
        definition = get_object_definition(type_)
        if definition is not None and definition.is_input:
            return lambda value, context: (
                value
                if value is None or value is UNSET
                else context.convert(value, type_, name)  # its own from_input, with its path
            )
        return _strawberrys(type_, name)

    def _leaf(self, type_: Any) -> bool:
        if isinstance(type_, StrawberryEnumDefinition) or has_enum_definition(type_):
            return True
        if isinstance(type_, StrawberryType):
            return False
        return isinstance(type_, type) and is_scalar(type_, self._scalars) and not _global(type_)


def _global(type_: type) -> bool:
    """A global ID is decoded by Strawberry, not passed as it is."""
    from strawberry.relay.types import GlobalID

    return issubclass(type_, GlobalID)


def _strawberrys(type_: Any, name: str) -> Convert:
    return lambda value, context: context.convert(value, type_, name)
