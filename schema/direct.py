"""Direct answers for pages of records, the hottest reads, without per-field resolution.

Through graphql-core, a page of fifty MSMEs with their regency, province and cooperative costs
some four hundred field resolutions, each a coroutine and a DataLoader future: about twenty
milliseconds of CPU for what PostgreSQL answers in one. A document made only of `msmes` and
`cooperatives` pages over plain columns and region or cooperative relations is answered here
straight from the rows instead: the same statements, the same jurisdiction scoping, graphql-core's
own leaf serialisers, and the same audit entry.

Everything else returns None and goes through the schema as usual: another field, a directive, an
input error, a caller missing a scope (so FORBIDDEN and error answers have a single source). The
plan of a document is derived from the Strawberry types themselves (plain fields read the column
of their name, relations are recognised by their resolver), and tests/test_direct.py checks that
both paths give identical answers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    parse,
    validate,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.permission import PermissionExtension

from db.queries import cooperatives, msmes, regions
from db.queries.paging import Page
from resolvers import relations
from resolvers.context import Context
from resolvers.paging import decode_cursor, encode_cursor, page_size
from schema.audit import record
from schema.inputs import CooperativeFilter, MsmeFilter, cooperative_where, msme_where
from schema.permissions import HasScopes

PAGES = {"msmes": ("msme", msmes), "cooperatives": ("cooperative", cooperatives)}
# Relations answered from a batch of rows; the value says which column holds the target's key.
REGION_RELATIONS: dict[Callable[..., Any], str | None] = {
    relations.regency: "regency_code",
    relations.province: "province_code",
    relations.district: "district_code",
    relations.region_parent: "parent_code",
    relations.region_province: None,  # the first segment of the region's own code
}


class Unsupported(Exception):
    """The document needs the full executor."""


@dataclass(frozen=True, slots=True)
class Leaf:
    key: str
    column: str
    serialize: Callable[[Any], Any]
    nullable: bool


@dataclass(frozen=True, slots=True)
class Constant:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Relation:
    key: str
    target: str  # "region" or "cooperative"
    column: str | None
    shape: Shape
    nullable: bool


@dataclass(frozen=True, slots=True)
class Shape:
    """What to render of one object, in selection order, and the columns that takes."""

    parts: tuple[Leaf | Constant | Relation, ...]
    columns: frozenset[str]


@dataclass(frozen=True, slots=True)
class PagePart:
    key: str
    kind: str  # nodes, edges, pageInfo, totalCount, __typename
    shape: Shape | None = None
    sub: tuple[tuple[str, str], ...] = ()  # (key, field) of edges and pageInfo
    value: str = ""


@dataclass(frozen=True, slots=True)
class PagePlan:
    key: str
    root: str
    node: FieldNode
    definition: GraphQLField
    scopes: tuple[Any, ...]
    parts: tuple[PagePart, ...]
    node_shape: Shape


@dataclass(frozen=True, slots=True)
class Plan:
    document: DocumentNode
    operation: Any
    pages: tuple[PagePlan | Constant, ...]


def _selections(
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
            yield from _selections(selection.selection_set, fragments, type_name)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments[selection.name.value]
            if fragment.directives or fragment.type_condition.name.value != type_name:
                raise Unsupported("a fragment on another type")
            yield from _selections(fragment.selection_set, fragments, type_name)


def _keyed(
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
    type_name: str,
) -> list[tuple[str, FieldNode]]:
    keyed: list[tuple[str, FieldNode]] = []
    seen: set[str] = set()
    for node in _selections(selection_set, fragments, type_name):
        key = node.alias.value if node.alias else node.name.value
        if key in seen:
            raise Unsupported("a response key selected twice")
        if node.arguments and node.name.value not in PAGES:
            raise Unsupported("arguments below the page")
        seen.add(key)
        keyed.append((key, node))
    return keyed


def _unwrap(graphql_type: Any) -> tuple[Any, bool]:
    nullable = not isinstance(graphql_type, GraphQLNonNull)
    return (graphql_type if nullable else graphql_type.of_type), nullable


def _shape(
    object_type: GraphQLObjectType,
    selection_set: SelectionSetNode | None,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Shape:
    parts: list[Leaf | Constant | Relation] = []
    columns: set[str] = set()
    for key, node in _keyed(selection_set, fragments, object_type.name):
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
        field_type, nullable = _unwrap(graphql_field.type)
        resolver = definition.base_resolver
        if resolver is None and is_leaf_type(field_type):
            parts.append(Leaf(key, definition.python_name, field_type.serialize, nullable))
            columns.add(definition.python_name)
        elif resolver is not None and resolver.wrapped_func in REGION_RELATIONS:
            column = REGION_RELATIONS[resolver.wrapped_func]
            target = _shape(get_named_type(field_type), node.selection_set, fragments)
            parts.append(Relation(key, "region", column, target, nullable))
            columns.add(column or "code")
        elif resolver is not None and resolver.wrapped_func is relations.cooperative_of_msme:
            target = _shape(get_named_type(field_type), node.selection_set, fragments)
            parts.append(Relation(key, "cooperative", "cooperative_id", target, nullable))
            columns.add("cooperative_id")
        else:
            raise Unsupported(name)
    return Shape(tuple(parts), frozenset(columns))


def _page_plan(
    key: str,
    node: FieldNode,
    definition: GraphQLField,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> PagePlan:
    connection_type, _ = _unwrap(definition.type)
    node_type = get_named_type(connection_type.fields["nodes"].type)
    parts: list[PagePart] = []
    shapes: list[Shape] = []
    for part_key, part in _keyed(node.selection_set, fragments, connection_type.name):
        name = part.name.value
        if name == "nodes":
            shape = _shape(node_type, part.selection_set, fragments)
            shapes.append(shape)
            parts.append(PagePart(part_key, "nodes", shape))
        elif name == "edges":
            edge_type = get_named_type(connection_type.fields["edges"].type)
            edge_parts: list[tuple[str, str]] = []
            edge_shape = None
            for edge_key, edge in _keyed(part.selection_set, fragments, edge_type.name):
                if edge.name.value == "node":
                    edge_shape = _shape(node_type, edge.selection_set, fragments)
                    shapes.append(edge_shape)
                edge_parts.append((edge_key, edge.name.value))
            parts.append(PagePart(part_key, "edges", edge_shape, tuple(edge_parts), edge_type.name))
        elif name == "pageInfo":
            info_type = get_named_type(connection_type.fields["pageInfo"].type)
            fields = _keyed(part.selection_set, fragments, info_type.name)
            info_parts = tuple((info_key, info.name.value) for info_key, info in fields)
            parts.append(PagePart(part_key, "pageInfo", sub=info_parts, value=info_type.name))
        elif name in ("totalCount", "__typename"):
            parts.append(PagePart(part_key, name, value=connection_type.name))
        else:
            raise Unsupported(name)
    merged = Shape(
        tuple(part for shape in shapes for part in shape.parts),
        frozenset(column for shape in shapes for column in shape.columns),
    )
    strawberry_field = definition.extensions["strawberry-definition"]
    scopes: tuple[Any, ...] = ()
    for extension in strawberry_field.extensions:
        if not isinstance(extension, PermissionExtension):
            raise Unsupported("an unknown field extension")
        for permission in extension.permissions:
            if not isinstance(permission, HasScopes):
                raise Unsupported("an unknown permission")
            scopes += permission.scopes
    return PagePlan(key, node.name.value, node, definition, scopes, tuple(parts), merged)


def compile_plan(schema: GraphQLSchema, query: str, operation_name: str | None) -> Plan | None:
    """A plan for a document this module can answer; None for anything else."""
    try:
        document = parse(query)
    except GraphQLError:
        return None
    if validate(schema, document):
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None or operation.operation is not OperationType.QUERY:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    query_type = schema.query_type
    assert query_type is not None
    try:
        pages: list[PagePlan | Constant] = []
        for key, node in _keyed(operation.selection_set, fragments, query_type.name):
            name = node.name.value
            if name == "__typename":
                pages.append(Constant(key, query_type.name))
            elif name in PAGES:
                pages.append(_page_plan(key, node, query_type.fields[name], fragments))
            else:
                return None
    except Unsupported:
        return None
    return Plan(document, operation, tuple(pages))


@dataclass
class _Batch:
    """Rows fetched for one request, and the region and cooperative rows they point at."""

    regions: dict[str, Any] = field(default_factory=dict)
    cooperatives: dict[int, Any] = field(default_factory=dict)


class DirectAnswers:
    def __init__(self, schema: GraphQLSchema) -> None:
        self.schema = schema
        self._plans = lru_cache(maxsize=512)(self._compile)

    def _compile(self, query: str, operation_name: str | None) -> Plan | None:
        return compile_plan(self.schema, query, operation_name)

    async def answer(self, context: Context, payload: Any) -> dict[str, Any] | None:
        """The response to a single-operation request, or None to use the full executor."""
        if not isinstance(payload, dict) or not isinstance(payload.get("query"), str):
            return None
        operation_name = payload.get("operationName")
        raw_variables = payload.get("variables") or {}
        if not isinstance(operation_name, str | None) or not isinstance(raw_variables, dict):
            return None
        plan = self._plans(payload["query"], operation_name)
        if plan is None:
            return None
        for page in plan.pages:
            if isinstance(page, PagePlan) and not context.principal.has(*page.scopes):
                return None
        variables = get_variable_values(
            self.schema, plan.operation.variable_definitions or (), raw_variables
        )
        if not isinstance(variables, VariableValues):
            return None
        try:
            data = await self._data(context, plan, variables)
        except (GraphQLError, Unsupported, SQLAlchemyError, OSError):
            # Input errors, nulls to report, a database gone away: the executor says it right.
            return None
        await record(context, payload["query"], operation_name)
        return {"data": data}

    async def _data(
        self, context: Context, plan: Plan, variables: VariableValues
    ) -> dict[str, Any]:
        fetched: list[tuple[PagePlan, Page, int | None]] = []
        batch = _Batch()
        async with context.reads.connect() as connection:
            for page in plan.pages:
                if isinstance(page, PagePlan):
                    rows, total = await _fetch_page(connection, context, page, variables)
                    fetched.append((page, rows, total))
            shapes = [(page.node_shape, rows.rows) for page, rows, _ in fetched]
            await _fetch_cooperatives(connection, context, shapes, batch)
            await _fetch_regions(connection, shapes, batch)
        answers = iter(fetched)
        data: dict[str, Any] = {}
        for page in plan.pages:
            if isinstance(page, Constant):
                data[page.key] = page.value
                continue
            _, rows, total = next(answers)
            data[page.key] = _render_page(context, page, rows, total, batch)
        return data


async def _fetch_page(
    connection: AsyncConnection, context: Context, page: PagePlan, variables: VariableValues
) -> tuple[Page, int | None]:
    arguments = get_argument_values(page.definition, page.node, variables)
    kind, queries = PAGES[page.root]
    given = arguments.get("filter")
    where: Any
    if page.root == "msmes":
        where = await msme_where(context, _input(MsmeFilter, given))
    else:
        where = await cooperative_where(context, _input(CooperativeFilter, given))
    jurisdiction = context.principal.jurisdiction
    rows: Page = await queries.page(
        connection,
        jurisdiction=jurisdiction,
        where=where,
        columns=page.node_shape.columns,
        first=page_size(arguments.get("first"), context.limits),
        after=decode_cursor(arguments.get("after"), kind),
    )
    wants_total = any(part.kind == "totalCount" for part in page.parts)
    total = (
        await queries.total(connection, jurisdiction=jurisdiction, where=where)
        if wants_total
        else None
    )
    context.accesses.field_used(f"Query.{page.root}", (scope.value for scope in page.scopes))
    context.accesses.records_returned(kind, len(rows.rows))
    return rows, total


def _input(kind: Any, given: Mapping[str, Any] | None) -> Any:
    if given is None:
        return None
    return kind(**{_snake(name): value for name, value in given.items()})


def _snake(name: str) -> str:
    return "".join(f"_{char.lower()}" if char.isupper() else char for char in name)


def _relations(shape: Shape, target: str) -> list[Relation]:
    return [part for part in shape.parts if isinstance(part, Relation) and part.target == target]


async def _fetch_cooperatives(
    connection: AsyncConnection,
    context: Context,
    shapes: Sequence[tuple[Shape, Sequence[Any]]],
    batch: _Batch,
) -> None:
    wanted = [
        (relation, rows) for shape, rows in shapes for relation in _relations(shape, "cooperative")
    ]
    if not wanted:
        return
    ids = sorted({row.cooperative_id for _, rows in wanted for row in rows} - {None})
    columns = frozenset(column for relation, _ in wanted for column in relation.shape.columns)
    if ids:
        batch.cooperatives = await cooperatives.by_ids(
            connection, ids, jurisdiction=context.principal.jurisdiction, columns=columns
        )


async def _fetch_regions(
    connection: AsyncConnection, shapes: Sequence[tuple[Shape, Sequence[Any]]], batch: _Batch
) -> None:
    """Every region the rows point at, nested ones included, in as few statements as it takes
    (one, unless a region's `parent` is asked for)."""
    pending = list(shapes) + [
        (relation.shape, list(batch.cooperatives.values()))
        for shape, _ in shapes
        for relation in _relations(shape, "cooperative")
    ]
    while pending:
        codes: set[str] = set()
        nested: list[tuple[Shape, list[str]]] = []
        for shape, rows in pending:
            for relation in _relations(shape, "region"):
                keys = [_region_key(relation, row) for row in rows]
                found = [code for code in keys if code is not None]
                codes.update(found)
                if any(inner.column is None for inner in _relations(relation.shape, "region")):
                    codes.update(code[:2] for code in found if code != "ID")  # known already
                nested.append((relation.shape, found))
        missing = sorted(codes - batch.regions.keys())
        if missing:
            batch.regions.update(await regions.by_codes(connection, missing))
        pending = [
            (shape, [batch.regions[code] for code in found if code in batch.regions])
            for shape, found in nested
            if _relations(shape, "region")
        ]


def _region_key(relation: Relation, row: Any) -> str | None:
    if relation.column is None:
        return None if row.code == "ID" else str(row.code)[:2]
    value = getattr(row, relation.column)
    return None if value is None else str(value)


def _render_page(
    context: Context, page: PagePlan, rows: Page, total: int | None, batch: _Batch
) -> dict[str, Any]:
    kind = PAGES[page.root][0]
    answer: dict[str, Any] = {}
    for part in page.parts:
        if part.kind == "nodes":
            assert part.shape is not None
            answer[part.key] = [_render(context, part.shape, row, batch) for row in rows.rows]
        elif part.kind == "edges":
            answer[part.key] = [_render_edge(context, part, kind, row, batch) for row in rows.rows]
        elif part.kind == "pageInfo":
            end = encode_cursor(kind, rows.rows[-1].id) if rows.rows else None
            values = {"hasNextPage": rows.has_next, "endCursor": end, "__typename": part.value}
            answer[part.key] = {key: values[name] for key, name in part.sub}
        elif part.kind == "totalCount":
            answer[part.key] = total
        else:
            answer[part.key] = part.value
    return answer


def _render_edge(
    context: Context, part: PagePart, kind: str, row: Any, batch: _Batch
) -> dict[str, Any]:
    edge: dict[str, Any] = {}
    for key, name in part.sub:
        if name == "cursor":
            edge[key] = encode_cursor(kind, row.id)
        elif name == "node":
            assert part.shape is not None
            edge[key] = _render(context, part.shape, row, batch)
        else:
            edge[key] = part.value
    return edge


def _render(context: Context, shape: Shape, row: Any, batch: _Batch) -> dict[str, Any]:
    rendered: dict[str, Any] = {}
    for part in shape.parts:
        if isinstance(part, Leaf):
            value = getattr(row, part.column)
            if value is None and not part.nullable:
                raise Unsupported("null in a non-null field: let the executor report it")
            rendered[part.key] = None if value is None else part.serialize(value)
        elif isinstance(part, Constant):
            rendered[part.key] = part.value
        else:
            rendered[part.key] = _render_relation(context, part, row, batch)
    return rendered


def _render_relation(context: Context, part: Relation, row: Any, batch: _Batch) -> Any:
    if part.target == "region":
        code = _region_key(part, row)
        target = None if code is None else batch.regions.get(code)
    else:
        target = None if row.cooperative_id is None else batch.cooperatives.get(row.cooperative_id)
        if row.cooperative_id is not None:
            context.accesses.records_returned("cooperative", target is not None)
    if target is None:
        if not part.nullable:
            raise Unsupported("a missing non-null relation: let the executor report it")
        return None
    return _render(context, part.shape, target, batch)
