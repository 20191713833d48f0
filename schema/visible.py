"""Each client's own schema: the published one without what the client's scopes cannot use.

Derived from the `@requiresScopes` every guarded field publishes in the SDL, which `HasScopes`
(schema.permissions) prints from the very guard that refuses the field at run time: no second
list. A field is visible when the client holds every scope it requires. A type is visible when a
visible field, or an argument or input field of something visible, leads to it from `Query` or
`Mutation`; so a type reachable only through forbidden fields is absent, with the input types
and enums only those fields take, and `Mutation` (or `Subscription`) itself when none of its
fields is visible.
Argument lists and enum values go with their field and type: none carries a guard of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from graphql import (
    DefinitionNode,
    DocumentNode,
    FieldDefinitionNode,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    InterfaceTypeDefinitionNode,
    ListValueNode,
    ObjectTypeDefinitionNode,
    StringValueNode,
    TypeDefinitionNode,
    build_ast_schema,
    get_named_type,
    parse,
    print_ast,
)

from schema.permissions import REQUIRES_SCOPES


def required_scopes(field: GraphQLField) -> frozenset[str]:
    """The scopes a field's `@requiresScopes` names; none for an unguarded field."""
    node = field.ast_node
    found: set[str] = set()
    for directive in (node.directives or ()) if node is not None else ():
        if directive.name.value != REQUIRES_SCOPES:
            continue
        for argument in directive.arguments or ():
            if isinstance(argument.value, ListValueNode):
                found.update(
                    value.value
                    for value in argument.value.values
                    if isinstance(value, StringValueNode)
                )
    return frozenset(found)


def _visible_fields(schema: GraphQLSchema, granted: frozenset[str]) -> dict[str, set[str] | None]:
    """Each visible type's name with its visible fields (None: a type without fields, or one
    whose fields carry no guard: enums, scalars, unions, input types), found by walking from the
    root types through what the client may use."""
    visible: dict[str, set[str] | None] = {}
    pending: list[GraphQLNamedType] = [
        root
        for root in (schema.query_type, schema.mutation_type, schema.subscription_type)
        if root is not None
    ]
    while pending:
        named = pending.pop()
        if named.name in visible:
            continue
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            fields = {
                name for name, field in named.fields.items() if required_scopes(field) <= granted
            }
            if not fields:
                continue  # a root type with nothing the client may use
            visible[named.name] = fields
            for name in fields:
                field = named.fields[name]
                pending.append(get_named_type(field.type))
                pending.extend(get_named_type(argument.type) for argument in field.args.values())
            pending.extend(named.interfaces)
            if isinstance(named, GraphQLInterfaceType):
                pending.extend(schema.get_possible_types(named))
        else:
            visible[named.name] = None
            if isinstance(named, GraphQLInputObjectType):
                pending.extend(get_named_type(field.type) for field in named.fields.values())
            elif isinstance(named, GraphQLUnionType):
                pending.extend(named.types)
    return visible


def _kept(definition: DefinitionNode, visible: dict[str, set[str] | None]) -> DefinitionNode | None:
    if not isinstance(definition, TypeDefinitionNode):
        return definition  # directive definitions
    if definition.name.value not in visible:
        return None
    fields = visible[definition.name.value]
    if fields is None or not isinstance(
        definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode
    ):
        return definition
    kept: tuple[FieldDefinitionNode, ...] = tuple(
        field for field in definition.fields or () if field.name.value in fields
    )
    return type(definition)(
        name=definition.name,
        description=definition.description,
        interfaces=definition.interfaces,
        directives=definition.directives,
        fields=kept,
    )


@dataclass(frozen=True, slots=True)
class ClientSchema:
    """One scope set's schema: its SDL, and a schema built from it to introspect and to draw
    error suggestions from (it has no resolvers: data always runs on the full schema)."""

    document: DocumentNode
    schema: GraphQLSchema

    @property
    def sdl(self) -> str:
        return print_ast(self.document) + "\n"


@dataclass(frozen=True, slots=True)
class FullSchema:
    """The published SDL, parsed and built once for every client schema drawn from it."""

    document: DocumentNode
    schema: GraphQLSchema

    @classmethod
    def from_sdl(cls, sdl: str) -> FullSchema:
        document = parse(sdl)
        return cls(document, build_ast_schema(document))


def client_schema(full: FullSchema, granted: Iterable[str]) -> ClientSchema:
    """The schema a client holding `granted` scopes may use."""
    visible = _visible_fields(full.schema, frozenset(granted))
    definitions = [
        kept
        for definition in full.document.definitions
        if (kept := _kept(definition, visible)) is not None
    ]
    document = DocumentNode(definitions=tuple(definitions))
    return ClientSchema(document, build_ast_schema(document))


class ClientSchemas:
    """Each distinct scope set's schema, built on first use and kept: there are few scope sets
    (at most one per subset of the contract's nine scopes), and each is built once."""

    def __init__(self, full_sdl: Callable[[], str]) -> None:
        self._full_sdl = full_sdl
        self._full: FullSchema | None = None
        self._built: dict[frozenset[str], ClientSchema] = {}

    def for_scopes(self, granted: Iterable[str]) -> ClientSchema:
        key = frozenset(str(scope) for scope in granted)
        if key not in self._built:
            if self._full is None:
                self._full = FullSchema.from_sdl(self._full_sdl())
            self._built[key] = client_schema(self._full, key)
        return self._built[key]
