"""Direct answers for pages of records, for figures and for eligibility checks, the hottest
requests, without per-field resolution.

Through graphql-core, a page of fifty MSMEs with their regency, province and cooperative costs
some four hundred field resolutions, each a coroutine and a DataLoader future: about twenty
milliseconds of CPU for what PostgreSQL answers in one. A document made only of `msmes` and
`cooperatives` pages over their columns and region or cooperative relations is answered here
instead: each page is one statement, scoped like every other read, in which PostgreSQL writes the
`nodes` and `edges` as JSON (schema/direct_json.py, db/queries/json_pages.py), and the response
embeds that text; the audit entry is the one the executor writes. Figures are rendered from
their rows with graphql-core's own serialisers (schema/direct_figures.py). An eligibility check,
a mutation, has its own rules for when it may fall back (schema/direct_check.py).

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
    validate,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.utilities import get_operation_ast
from sqlalchemy import Table
from sqlalchemy.exc import SQLAlchemyError

from db.driver import DriverStatement
from db.queries import cooperatives, msmes
from db.queries.json_pages import (
    Cursor,
    Fixed,
    JsonPage,
    JsonShape,
    Node,
    fetch_json_page,
    json_page_statement,
)
from resolvers.context import Context
from resolvers.paging import decode_cursor, encode_cursor, page_size
from schema.audit import record
from schema.direct_check import FIELD, CheckPlan, answer_check, check_plan
from schema.direct_figures import FIGURES, FigurePlan, fetch_figures, figure_plan
from schema.direct_json import json_shape
from schema.direct_shapes import (
    Batch,
    Constant,
    Shape,
    Unsupported,
    fetch_regions,
    guard_scopes,
    keyed,
    render,
    shape_of,
    strawberry_input,
    unwrap,
)
from schema.documents import parse_document
from schema.figure_cache import FigureCache
from schema.inputs import CooperativeFilter, MsmeFilter, cooperative_where, msme_where

PAGES = {"msmes": ("msme", msmes), "cooperatives": ("cooperative", cooperatives)}
TABLES = {"msmes": msmes.MSMES, "cooperatives": cooperatives.COOPERATIVES}


@dataclass(frozen=True, slots=True)
class PagePart:
    key: str
    kind: str  # nodes, edges, pageInfo, totalCount, __typename
    json: JsonShape | None = None  # of each row in `nodes` or `edges`
    sub: tuple[tuple[str, str], ...] = ()  # (key, field) of pageInfo
    value: str = ""


@dataclass(frozen=True, slots=True)
class PagePlan:
    key: str
    root: str
    node: FieldNode
    definition: GraphQLField
    scopes: tuple[Any, ...]
    parts: tuple[PagePart, ...]

    @property
    def lists(self) -> tuple[JsonShape, ...]:
        """The shapes of the page's `nodes` and `edges` lists, in selection order."""
        return tuple(part.json for part in self.parts if part.json is not None)


@dataclass(frozen=True, slots=True)
class Plan:
    document: DocumentNode
    operation: Any
    roots: tuple[PagePlan | FigurePlan | Constant, ...]
    check: CheckPlan | None = None
    """A mutation's one `checkEligibility` (and then no roots)."""

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
    root = node.name.value
    kind, table = PAGES[root][0], TABLES[root]
    parts: list[PagePart] = []
    for part_key, part in keyed(node.selection_set, fragments, connection_type.name):
        name = part.name.value
        if name == "nodes":
            shape = _json(shape_of(node_type, part.selection_set, fragments), table)
            parts.append(PagePart(part_key, "nodes", shape))
        elif name == "edges":
            edge_type = get_named_type(connection_type.fields["edges"].type)
            edge: list[Fixed | Cursor | Node] = []
            for edge_key, field in keyed(part.selection_set, fragments, edge_type.name):
                if field.name.value == "node":
                    node_shape = _json(shape_of(node_type, field.selection_set, fragments), table)
                    edge.append(Node(edge_key, node_shape))
                elif field.name.value == "cursor":
                    edge.append(Cursor(edge_key, kind))
                else:
                    edge.append(Fixed(edge_key, edge_type.name))
            parts.append(PagePart(part_key, "edges", JsonShape(tuple(edge))))
        elif name == "pageInfo":
            info_type = get_named_type(connection_type.fields["pageInfo"].type)
            fields = keyed(part.selection_set, fragments, info_type.name)
            info_parts = tuple((info_key, info.name.value) for info_key, info in fields)
            parts.append(PagePart(part_key, "pageInfo", sub=info_parts, value=info_type.name))
        elif name in ("totalCount", "__typename"):
            parts.append(PagePart(part_key, name, value=connection_type.name))
        else:
            raise Unsupported(name)
    return PagePlan(key, root, node, definition, guard_scopes(definition), tuple(parts))


def _json(shape: Shape, table: Table) -> JsonShape:
    built = json_shape(shape, table)
    if built is None:
        raise Unsupported("a field PostgreSQL would not write as graphql-core does")
    return built


def compile_plan(
    schema: GraphQLSchema, query: str, operation_name: str | None, max_tokens: int | None = None
) -> Plan | None:
    """A plan for a document this module can answer; None for anything else. `max_tokens`: the
    request guard's, whose parsed document (schema/documents.py) this reuses."""
    document = parse_document(query, max_tokens)
    if isinstance(document, GraphQLError):
        return None
    if validate(schema, document):
        return None
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    try:
        if operation.operation is OperationType.MUTATION:
            return _mutation_plan(schema, document, operation, fragments)
        if operation.operation is not OperationType.QUERY:
            return None
        query_type = schema.query_type
        assert query_type is not None
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


def _mutation_plan(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: Any,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> Plan | None:
    """A plan for a mutation of one `checkEligibility` and nothing else."""
    mutation_type = schema.mutation_type
    assert mutation_type is not None
    fields = keyed(operation.selection_set, fragments, mutation_type.name, root=True)
    if len(fields) != 1 or fields[0][1].name.value != FIELD:
        return None
    key, node = fields[0]
    return Plan(
        document, operation, (), check_plan(key, node, mutation_type.fields[FIELD], fragments)
    )


class DirectAnswers:
    def __init__(
        self,
        schema: GraphQLSchema,
        *,
        figures_cache_seconds: int = 0,
        max_tokens: int | None = None,
    ) -> None:
        """`figures_cache_seconds`: how long a published figure table may be served again
        (schema/figure_cache.py); 0 computes every table afresh."""
        self.schema = schema
        self.max_tokens = max_tokens
        self._plans = lru_cache(maxsize=512)(self._compile)
        self._figures = FigureCache(figures_cache_seconds) if figures_cache_seconds else None

    def _compile(self, query: str, operation_name: str | None) -> Plan | None:
        return compile_plan(self.schema, query, operation_name, self.max_tokens)

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
        if plan.check is not None:
            return await answer_check(
                context, plan.check, variables, payload["query"], operation_name
            )
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
        for page, query in pages:
            built[page.key] = await _fetch_page(context, page, query)
        await fetch_regions(context.regions, shapes, batch)
        data: dict[str, Any] = {}
        for root in plan.roots:
            if isinstance(root, Constant):
                data[root.key] = root.value
            elif isinstance(root, FigurePlan):
                cells = figures[root.key]
                data[root.key] = [render(context, root.cell_shape, cell, batch) for cell in cells]
            else:
                fetched, total = built[root.key]
                data[root.key] = _render_page(root, fetched, total)
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
    context: Context, page: PagePlan, query: PageQuery
) -> tuple[JsonPage, int | None]:
    statement = _json_statement(
        page.root,
        page.lists,
        context.principal.jurisdiction,
        query.where,
        query.first,
        after=query.after is not None,
    )
    async with context.reads.checked_out() as connection:
        built = await fetch_json_page(connection, statement, first=query.first, after=query.after)
    if built is None:
        raise Unsupported("null in a non-null field: let the executor report it")
    kind, queries = PAGES[page.root]
    context.accesses.field_used(f"Query.{page.root}", (scope.value for scope in page.scopes))
    context.accesses.records_returned(kind, built.count)
    context.accesses.records_returned("cooperative", built.cooperatives)
    if not any(part.kind == "totalCount" for part in page.parts):
        return built, None
    async with context.reads.connect() as connection:
        total: int = await queries.total(
            connection, jurisdiction=context.principal.jurisdiction, where=query.where
        )
    return built, total


@lru_cache(maxsize=128)
def _json_statement(
    root: str,
    shapes: tuple[JsonShape, ...],
    jurisdiction: str,
    where: Any,
    first: int,
    *,
    after: bool,
) -> DriverStatement:
    """Kept for the next page of the same shape, caller, filter and size (any cursor)."""
    _, queries = PAGES[root]
    return json_page_statement(
        TABLES[root],
        shapes,
        where=queries.conditions(jurisdiction, where),
        jurisdiction=jurisdiction,
        first=first,
        after=after,
    )


def _render_page(page: PagePlan, built: JsonPage, total: int | None) -> dict[str, Any]:
    """The page's lists go into the response as the JSON PostgreSQL wrote."""
    lists = iter(built.lists)
    answer: dict[str, Any] = {}
    for part in page.parts:
        if part.json is not None:
            answer[part.key] = orjson.Fragment(next(lists))
        elif part.kind == "pageInfo":
            last = built.last_id
            end = None if last is None else encode_cursor(PAGES[page.root][0], last)
            values = {"hasNextPage": built.has_next, "endCursor": end, "__typename": part.value}
            answer[part.key] = {key: values[name] for key, name in part.sub}
        elif part.kind == "totalCount":
            answer[part.key] = total
        else:
            answer[part.key] = part.value
    return answer
