"""Direct answers for pages of records and for figures, the hottest reads, without per-field
resolution.

Through graphql-core, a page of fifty MSMEs with their regency, province and cooperative costs
some four hundred field resolutions, each a coroutine and a DataLoader future: about twenty
milliseconds of CPU for what PostgreSQL answers in one. A document made only of `msmes` and
`cooperatives` pages over plain columns and region or cooperative relations is answered here
straight from the rows instead: the same statements, the same jurisdiction scoping, graphql-core's
own leaf serialisers, and the same audit entry. Figures (schema/direct_figures.py) likewise.
When a page shows nothing but strings, numbers, flags and IDs with their regions and cooperative
(schema/direct_json.py), PostgreSQL builds its nodes as JSON in the page's own statement, and the
response embeds that text as it is (db/queries/json_pages.py).

Everything else returns None and goes through the schema as usual: another field, a directive, an
input error, a caller missing a scope (so FORBIDDEN and error answers have a single source). The
plan of a document is derived from the Strawberry types themselves (schema/direct_shapes.py), and
tests/test_direct.py checks that both paths give identical answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import orjson
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLField,
    GraphQLSchema,
    OperationType,
    get_named_type,
    parse,
    validate,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.queries import cooperatives, msmes
from db.queries.json_pages import JsonPage, JsonShape, fetch_json_page, json_page_statement
from db.queries.paging import Page
from resolvers.context import Context
from resolvers.paging import decode_cursor, encode_cursor, page_size
from schema.audit import record
from schema.direct_figures import FIGURES, FigurePlan, fetch_figures, figure_plan
from schema.direct_json import json_shape
from schema.direct_shapes import (
    Batch,
    Constant,
    Shape,
    Unsupported,
    fetch_cooperatives,
    fetch_regions,
    guard_scopes,
    keyed,
    render,
    shape_of,
    strawberry_input,
    unwrap,
)
from schema.figure_cache import FigureCache
from schema.inputs import CooperativeFilter, MsmeFilter, cooperative_where, msme_where

PAGES = {"msmes": ("msme", msmes), "cooperatives": ("cooperative", cooperatives)}
TABLES = {"msmes": msmes.MSMES, "cooperatives": cooperatives.COOPERATIVES}


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
    json: JsonShape | None
    """The nodes as PostgreSQL can build them, when that is all the page shows besides its
    pageInfo and totalCount."""


@dataclass(frozen=True, slots=True)
class Plan:
    document: DocumentNode
    operation: Any
    roots: tuple[PagePlan | FigurePlan | Constant, ...]

    @property
    def figures_only(self) -> bool:
        """Nothing but figures: no records, so nothing to audit, and the answer may be cached."""
        return any(isinstance(root, FigurePlan) for root in self.roots) and not any(
            isinstance(root, PagePlan) for root in self.roots
        )


def _page_plan(
    key: str,
    node: FieldNode,
    definition: GraphQLField,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> PagePlan:
    connection_type, _ = unwrap(definition.type)
    node_type = get_named_type(connection_type.fields["nodes"].type)
    parts: list[PagePart] = []
    shapes: list[Shape] = []
    for part_key, part in keyed(node.selection_set, fragments, connection_type.name):
        name = part.name.value
        if name == "nodes":
            shape = shape_of(node_type, part.selection_set, fragments)
            shapes.append(shape)
            parts.append(PagePart(part_key, "nodes", shape))
        elif name == "edges":
            edge_type = get_named_type(connection_type.fields["edges"].type)
            edge_parts: list[tuple[str, str]] = []
            edge_shape = None
            for edge_key, edge in keyed(part.selection_set, fragments, edge_type.name):
                if edge.name.value == "node":
                    edge_shape = shape_of(node_type, edge.selection_set, fragments)
                    shapes.append(edge_shape)
                edge_parts.append((edge_key, edge.name.value))
            parts.append(PagePart(part_key, "edges", edge_shape, tuple(edge_parts), edge_type.name))
        elif name == "pageInfo":
            info_type = get_named_type(connection_type.fields["pageInfo"].type)
            fields = keyed(part.selection_set, fragments, info_type.name)
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
    scopes = guard_scopes(definition)
    root = node.name.value
    nodes = [part for part in parts if part.kind == "nodes"]
    compiled = (
        json_shape(nodes[0].shape, TABLES[root])
        if len(nodes) == 1 and nodes[0].shape and not any(part.kind == "edges" for part in parts)
        else None
    )
    return PagePlan(key, root, node, definition, scopes, tuple(parts), merged, compiled)


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
        roots: list[PagePlan | FigurePlan | Constant] = []
        for key, node in keyed(operation.selection_set, fragments, query_type.name, root=True):
            name = node.name.value
            if name == "__typename":
                roots.append(Constant(key, query_type.name))
            elif name in PAGES:
                roots.append(_page_plan(key, node, query_type.fields[name], fragments))
            elif name in FIGURES:
                roots.append(figure_plan(key, node, query_type.fields[name], fragments))
            else:
                return None  # one root the executor must answer: it answers them all
    except Unsupported:
        return None
    return Plan(document, operation, tuple(roots))


class DirectAnswers:
    def __init__(self, schema: GraphQLSchema, *, figures_cache_seconds: int = 0) -> None:
        """`figures_cache_seconds`: how long a published figure table may be served again
        (schema/figure_cache.py); 0 computes every table afresh."""
        self.schema = schema
        self._plans = lru_cache(maxsize=512)(self._compile)
        self._figures = FigureCache(figures_cache_seconds) if figures_cache_seconds else None

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
        for root in plan.roots:
            if not isinstance(root, Constant) and not context.principal.has(*root.scopes):
                return None
        variables = get_variable_values(
            self.schema, plan.operation.variable_definitions or (), raw_variables
        )
        if not isinstance(variables, VariableValues):
            return None
        cache = self._figures if plan.figures_only and not context.wrote_recently else None
        if cache is not None:
            key = cache.key(payload["query"], operation_name, raw_variables, context.principal)
            cached = cache.get(key)
            if cached is not None:
                return {"data": cached}
        try:
            data = await self._data(context, plan, variables)
            await record(context, payload["query"], operation_name)
        except (GraphQLError, Unsupported, SQLAlchemyError, OSError):
            # Input errors, nulls to report, a database gone away (even between the read and
            # its audit entry): the executor says it right.
            return None
        if cache is not None:
            cache.put(key, data)
        return {"data": data}

    async def _data(
        self, context: Context, plan: Plan, variables: VariableValues
    ) -> dict[str, Any]:
        figures: dict[str, list[SimpleNamespace]] = {}
        fetched: dict[str, tuple[Page, int | None]] = {}
        built: dict[str, tuple[JsonPage, int | None]] = {}
        shapes: list[tuple[Shape, Any]] = []
        for root in plan.roots:
            if isinstance(root, FigurePlan):  # before connecting: the figures connect on their own
                figures[root.key] = cells = await fetch_figures(context, root, variables)
                shapes.append((root.cell_shape, cells))
        batch = Batch()
        # Filters are checked and regions looked up (the directory may read them afresh, on a
        # connection of its own) outside the page's connection, so no request ever holds one
        # pooled connection while waiting for another.
        pages = [
            (root, await _page_query(context, root, variables))
            for root in plan.roots
            if isinstance(root, PagePlan)
        ]
        if pages:
            async with context.reads.connect() as connection:
                for page, query in pages:
                    if page.json is not None:
                        built[page.key] = await _fetch_json_page(connection, context, page, query)
                        continue
                    rows, total = await _fetch_page(connection, context, page, query)
                    fetched[page.key] = rows, total
                    shapes.append((page.node_shape, rows.rows))
                await fetch_cooperatives(connection, context, shapes, batch)
        await fetch_regions(context.regions, shapes, batch)
        data: dict[str, Any] = {}
        for root in plan.roots:
            if isinstance(root, Constant):
                data[root.key] = root.value
            elif isinstance(root, FigurePlan):
                cells = figures[root.key]
                data[root.key] = [render(context, root.cell_shape, cell, batch) for cell in cells]
            elif root.key in built:
                json_page, total = built[root.key]
                data[root.key] = _render_json_page(root, json_page, total)
            else:
                rows, total = fetched[root.key]
                data[root.key] = _render_page(context, root, rows, total, batch)
        return data


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A page's checked arguments."""

    where: Any
    first: int
    after: int | None


async def _page_query(context: Context, page: PagePlan, variables: VariableValues) -> PageQuery:
    arguments = get_argument_values(page.definition, page.node, variables)
    kind, _ = PAGES[page.root]
    given = arguments.get("filter")
    where: Any
    if page.root == "msmes":
        where = await msme_where(context, strawberry_input(MsmeFilter, given))
    else:
        where = await cooperative_where(context, strawberry_input(CooperativeFilter, given))
    return PageQuery(
        where,
        page_size(arguments.get("first"), context.limits),
        decode_cursor(arguments.get("after"), kind),
    )


async def _fetch_page(
    connection: AsyncConnection, context: Context, page: PagePlan, query: PageQuery
) -> tuple[Page, int | None]:
    _, queries = PAGES[page.root]
    rows: Page = await queries.page(
        connection,
        jurisdiction=context.principal.jurisdiction,
        where=query.where,
        columns=page.node_shape.columns,
        first=query.first,
        after=query.after,
    )
    _note_page(context, page, len(rows.rows))
    return rows, await _total(connection, context, page, query)


async def _fetch_json_page(
    connection: AsyncConnection, context: Context, page: PagePlan, query: PageQuery
) -> tuple[JsonPage, int | None]:
    assert page.json is not None
    statement = _json_statement(
        page.root,
        page.json,
        context.principal.jurisdiction,
        query.where,
        query.first,
        after=query.after is not None,
    )
    built = await fetch_json_page(connection, statement, first=query.first, after=query.after)
    if built is None:
        raise Unsupported("null in a non-null field: let the executor report it")
    _note_page(context, page, built.count)
    context.accesses.records_returned("cooperative", built.cooperatives)
    return built, await _total(connection, context, page, query)


@lru_cache(maxsize=128)
def _json_statement(
    root: str, shape: JsonShape, jurisdiction: str, where: Any, first: int, *, after: bool
) -> Any:
    """Kept for the next page of the same shape, caller, filter and size (any cursor)."""
    _, queries = PAGES[root]
    return json_page_statement(
        TABLES[root],
        shape,
        where=queries.conditions(jurisdiction, where),
        jurisdiction=jurisdiction,
        first=first,
        after=after,
    )


async def _total(
    connection: AsyncConnection, context: Context, page: PagePlan, query: PageQuery
) -> int | None:
    if not any(part.kind == "totalCount" for part in page.parts):
        return None
    _, queries = PAGES[page.root]
    total: int = await queries.total(
        connection, jurisdiction=context.principal.jurisdiction, where=query.where
    )
    return total


def _note_page(context: Context, page: PagePlan, records: int) -> None:
    context.accesses.field_used(f"Query.{page.root}", (scope.value for scope in page.scopes))
    context.accesses.records_returned(PAGES[page.root][0], records)


def _render_page(
    context: Context, page: PagePlan, rows: Page, total: int | None, batch: Batch
) -> dict[str, Any]:
    kind = PAGES[page.root][0]
    answer: dict[str, Any] = {}
    for part in page.parts:
        if part.kind == "nodes":
            assert part.shape is not None
            answer[part.key] = [render(context, part.shape, row, batch) for row in rows.rows]
        elif part.kind == "edges":
            answer[part.key] = [_render_edge(context, part, kind, row, batch) for row in rows.rows]
        elif part.kind == "pageInfo":
            last = rows.rows[-1].id if rows.rows else None
            answer[part.key] = _page_info(part, kind, last, rows.has_next)
        elif part.kind == "totalCount":
            answer[part.key] = total
        else:
            answer[part.key] = part.value
    return answer


def _render_json_page(page: PagePlan, built: JsonPage, total: int | None) -> dict[str, Any]:
    """As `_render_page`; the nodes go into the response as the JSON PostgreSQL wrote."""
    answer: dict[str, Any] = {}
    for part in page.parts:
        if part.kind == "nodes":
            answer[part.key] = orjson.Fragment(built.nodes)
        elif part.kind == "pageInfo":
            kind = PAGES[page.root][0]
            answer[part.key] = _page_info(part, kind, built.last_id, built.has_next)
        elif part.kind == "totalCount":
            answer[part.key] = total
        else:
            answer[part.key] = part.value
    return answer


def _page_info(part: PagePart, kind: str, last_id: int | None, has_next: bool) -> dict[str, Any]:
    end = None if last_id is None else encode_cursor(kind, last_id)
    values = {"hasNextPage": has_next, "endCursor": end, "__typename": part.value}
    return {key: values[name] for key, name in part.sub}


def _render_edge(
    context: Context, part: PagePart, kind: str, row: Any, batch: Batch
) -> dict[str, Any]:
    edge: dict[str, Any] = {}
    for key, name in part.sub:
        if name == "cursor":
            edge[key] = encode_cursor(kind, row.id)
        elif name == "node":
            assert part.shape is not None
            edge[key] = render(context, part.shape, row, batch)
        else:
            edge[key] = part.value
    return edge
