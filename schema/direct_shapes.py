"""What the direct path answers of an object, derived from the Strawberry types.

A Shape lists, in selection order, the leaves (an attribute of the row, with graphql-core's own
serialiser), constants (`__typename`), lists of nested objects held by the row (a figure's key)
and the region or cooperative relations. Record pages (schema/direct.py) have PostgreSQL write
their shapes as JSON (schema/direct_json.py); aggregate figures (schema/direct_figures.py) are
rendered here, their regions fetched for all cells at once. Anything else in a selection raises
Unsupported, so the document goes to the full executor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    InlineFragmentNode,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    is_object_type,
)
from strawberry.permission import PermissionExtension

from db.queries.regions import RegionDirectory
from resolvers import relations
from resolvers.context import Context
from schema.permissions import HasScopes
from schema.types.eligibility import rule_results, standing_verdict


class Unsupported(Exception):
    """The document needs the full executor."""


@dataclass(frozen=True, slots=True)
class Link:
    """Where a row holds the key of what it points at."""

    column: str  # what the row must hold; "code": the key derives from the region's own code
    key_of: Callable[[Any], Any]


# Relations answered from a batch of rows, by the resolver the executor would call instead.
REGION_RELATIONS: dict[Callable[..., Any], Link] = {
    relations.regency: Link("regency_code", attrgetter("regency_code")),
    relations.province: Link("province_code", attrgetter("province_code")),
    relations.district: Link("district_code", attrgetter("district_code")),
    relations.region_parent: Link("parent_code", attrgetter("parent_code")),
    relations.region_province: Link("code", lambda row: relations.province_of(row.code)),
    relations.key_region: Link("value", relations.key_region_code),
}


# Fields whose resolver derives the value from the row alone, by (type, field): the function the
# resolver itself calls.
DERIVED: dict[tuple[str, str], Callable[[Any], Any]] = {
    ("EligibilityDecision", "results"): rule_results,
    ("EligibilityDecision", "final_verdict"): standing_verdict,
}


@dataclass(frozen=True, slots=True)
class Leaf:
    key: str
    column: str
    serialize: Callable[[Any], Any]
    nullable: bool
    kind: GraphQLScalarType | GraphQLEnumType


@dataclass(frozen=True, slots=True)
class Constant:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Relation:
    key: str
    target: str  # "region" or "cooperative"
    link: Link
    shape: Shape
    nullable: bool


@dataclass(frozen=True, slots=True)
class Items:
    """A list of objects the row itself holds (the key parts of a figure)."""

    key: str
    column: str
    shape: Shape
    nullable: bool


@dataclass(frozen=True, slots=True)
class Derived:
    """A non-null value DERIVED from the row: a leaf with its serialiser, or a list of objects
    with their shape."""

    key: str
    derive: Callable[[Any], Any]
    answer: Callable[[Any], Any] | Shape


@dataclass(frozen=True, slots=True)
class Shape:
    """What to answer of one object, in selection order."""

    parts: tuple[Leaf | Constant | Relation | Items | Derived, ...]


COOPERATIVE_LINK = Link("cooperative_id", attrgetter("cooperative_id"))


def selections(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    type_name: str,
) -> Iterable[FieldNode]:
    if selection_set is None:
        raise Unsupported("a field without selection")
    for selection in selection_set.selections:
        if selection.directives:
            raise Unsupported("directives")
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition
            if condition is not None and condition.name.value != type_name:
                raise Unsupported("a fragment on another type")
            yield from selections(selection.selection_set, fragments, type_name)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            if fragment.directives or fragment.type_condition.name.value != type_name:
                raise Unsupported("a fragment on another type")
            yield from selections(fragment.selection_set, fragments, type_name)


def keyed(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    type_name: str,
    *,
    root: bool = False,
) -> list[tuple[str, FieldNode]]:
    """The selected fields by response key; only root fields may take arguments."""
    found: list[tuple[str, FieldNode]] = []
    seen: set[str] = set()
    for node in selections(selection_set, fragments, type_name):
        key = node.alias.value if node.alias else node.name.value
        if key in seen:
            raise Unsupported("a response key selected twice")
        if node.arguments and not root:
            raise Unsupported("arguments below the root field")
        seen.add(key)
        found.append((key, node))
    return found


def unwrap(graphql_type: Any) -> tuple[Any, bool]:
    nullable = not isinstance(graphql_type, GraphQLNonNull)
    return (graphql_type if nullable else graphql_type.of_type), nullable


def shape_of(
    object_type: GraphQLObjectType,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Shape:
    """The shape of a selection: plain fields read the attribute of their name, relations are
    recognised by their resolver."""
    parts: list[Leaf | Constant | Relation | Items | Derived] = []
    for key, node in keyed(selection_set, fragments, object_type.name):
        name = node.name.value
        if name == "__typename":
            parts.append(Constant(key, object_type.name))
            continue
        graphql_field = object_type.fields.get(name)
        if graphql_field is None:
            raise Unsupported(name)
        definition = graphql_field.extensions["strawberry-definition"]
        if definition.extensions:
            raise Unsupported("a guarded or extended field")
        field_type, nullable = unwrap(graphql_field.type)
        resolver = definition.base_resolver
        column = definition.python_name
        if resolver is None and is_leaf_type(field_type):
            parts.append(Leaf(key, column, field_type.serialize, nullable, field_type))
        elif resolver is None and _is_object_list(field_type):
            target = shape_of(get_named_type(field_type), node.selection_set, fragments)
            parts.append(Items(key, column, target, nullable))
        elif resolver is not None and resolver.wrapped_func in REGION_RELATIONS:
            link = REGION_RELATIONS[resolver.wrapped_func]
            target = shape_of(get_named_type(field_type), node.selection_set, fragments)
            parts.append(Relation(key, "region", link, target, nullable))
        elif resolver is not None and resolver.wrapped_func is relations.cooperative_of_msme:
            target = shape_of(get_named_type(field_type), node.selection_set, fragments)
            parts.append(Relation(key, "cooperative", COOPERATIVE_LINK, target, nullable))
        elif (object_type.name, column) in DERIVED and not nullable:
            derive = DERIVED[object_type.name, column]
            if is_leaf_type(field_type):
                parts.append(Derived(key, derive, field_type.serialize))
            elif _is_object_list(field_type):
                target = shape_of(get_named_type(field_type), node.selection_set, fragments)
                parts.append(Derived(key, derive, target))
            else:
                raise Unsupported(name)
        else:
            raise Unsupported(name)
    return Shape(tuple(parts))


def _is_object_list(field_type: Any) -> bool:
    """A list of non-null objects: nulls inside would need the executor's error handling."""
    return (
        isinstance(field_type, GraphQLList)
        and isinstance(field_type.of_type, GraphQLNonNull)
        and is_object_type(field_type.of_type.of_type)
    )


def guard_scopes(definition: GraphQLField) -> tuple[Any, ...]:
    """The scopes `requires` guards a root field with; other extensions need the executor."""
    scopes: tuple[Any, ...] = ()
    for extension in definition.extensions["strawberry-definition"].extensions:
        if not isinstance(extension, PermissionExtension):
            raise Unsupported("an unknown field extension")
        for permission in extension.permissions:
            if not isinstance(permission, HasScopes):
                raise Unsupported("an unknown permission")
            scopes += permission.scopes
    return scopes


def strawberry_input(kind: Any, given: Mapping[str, Any] | None) -> Any:
    """The Strawberry input object the resolver would receive for a coerced argument."""
    if given is None:
        return None
    return kind(**{_snake(name): value for name, value in given.items()})


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


@dataclass
class Batch:
    """The region rows that the rows of one request point at."""

    regions: dict[str, Any] = field(default_factory=dict)
    rendered: dict[tuple[int, Any], Any] = field(default_factory=dict)
    """Each relation's target as rendered, by (id of the relation, key): figures of one
    province's regencies and scales point at each regency several times, rendered once each."""


Rows = Sequence[tuple[Shape, Sequence[Any]]]


def relations_of(shape: Shape, target: str) -> list[Relation]:
    return [part for part in shape.parts if isinstance(part, Relation) and part.target == target]


def expanded(shapes: Rows) -> Iterator[tuple[Shape, Sequence[Any]]]:
    """Each shape with its rows, and the shapes of the lists those rows hold with their items."""
    for shape, rows in shapes:
        yield shape, rows
        for part in shape.parts:
            if isinstance(part, Items):
                items = [item for row in rows for item in getattr(row, part.column) or ()]
                yield from expanded([(part.shape, items)])


async def fetch_regions(directory: RegionDirectory, shapes: Rows, batch: Batch) -> None:
    """Every region the rows point at, nested ones included, from the process's directory."""
    pending = list(expanded(shapes))
    while pending:
        codes: set[str] = set()
        nested: list[tuple[Shape, list[str]]] = []
        for shape, rows in pending:
            for relation in relations_of(shape, "region"):
                keys = [relation.link.key_of(row) for row in rows]
                found = [code for code in keys if code is not None]
                codes.update(found)
                if any(
                    inner.link.column == "code" for inner in relations_of(relation.shape, "region")
                ):
                    # A region's own province is known from its code: fetch both at once.
                    codes.update(filter(None, map(relations.province_of, found)))
                nested.append((relation.shape, found))
        missing = sorted(codes - batch.regions.keys())
        if missing:
            batch.regions.update(await directory.by_codes(missing))
        pending = [
            (shape, [batch.regions[code] for code in found if code in batch.regions])
            for shape, found in nested
            if relations_of(shape, "region")
        ]


def render(context: Context, shape: Shape, row: Any, batch: Batch) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for part in shape.parts:
        if isinstance(part, Leaf):
            value = getattr(row, part.column)
            if value is None and not part.nullable:
                raise Unsupported("null in a non-null field: let the executor report it")
            rendered[part.key] = None if value is None else part.serialize(value)
        elif isinstance(part, Constant):
            rendered[part.key] = part.value
        elif isinstance(part, Derived):
            value = part.derive(row)
            rendered[part.key] = (
                [render(context, part.answer, item, batch) for item in value]
                if isinstance(part.answer, Shape)
                else part.answer(value)
            )
        elif isinstance(part, Items):
            items = getattr(row, part.column)
            if items is None and not part.nullable:
                raise Unsupported("null in a non-null field: let the executor report it")
            rendered[part.key] = (
                None if items is None else [render(context, part.shape, i, batch) for i in items]
            )
        else:
            rendered[part.key] = _render_relation(context, part, row, batch)
    return rendered


def _render_relation(context: Context, part: Relation, row: Any, batch: Batch) -> Any:
    """A region; a cooperative is only ever part of a page, which PostgreSQL writes."""
    if part.target != "region":
        raise Unsupported("a cooperative outside a page")
    key = part.link.key_of(row)
    target = None if key is None else batch.regions.get(key)
    if target is None:
        if not part.nullable:
            raise Unsupported("a missing non-null relation: let the executor report it")
        return None
    memo = (id(part), key)
    rendered = batch.rendered.get(memo)
    if rendered is None:
        rendered = batch.rendered[memo] = render(context, part.shape, target, batch)
    return rendered
