"""Root fields that compile their selection into one statement in which PostgreSQL builds the
JSON of the answer.

A page of fifty MSMEs with their regency, province and cooperative, resolved field by field, is
some four hundred resolutions, each a coroutine and a DataLoader future. Here the selection under
a page's `nodes` and `edges`, under a lookup, or under a change feed page's `entries`, becomes a
`JsonShape` (db/queries/json_pages.py) once per document, and each request runs one statement,
scoped like every other read, whose JSON text the response embeds as it is
(schema/execution.py). The executor still resolves the rest (the connection, `pageInfo`,
`totalCount`, `endCursor`, any new field), so there is one execution path.

A record's first participations, `participations(first:)` (sized like the members below), and
its scale history are lists in the same statement, each participation
with its programme (and the programme's jurisdiction), its MSME and its cooperative (null
outside the caller's jurisdiction, as their resolvers answer, and audited as they audit them);
a field computed from its row (a cooperative's `isActive`, `memberCount`) is computed there too,
by the SQL its declaration gives beside its resolver. An MSME's owner is there for a caller whose
access policy lets it read personal data (see `Admission`), at the root or inside a list or a
page, whose aggregate hands the owners' NIKs up for the audit entry (as an MSME's figures, its
owner's finances, hand up the owner's NIK alone, for any caller); and so is a cooperative's
page of members, `memberMsmes(first:)`, its size the document's or a variable's. The programmes
(public reference, neither scoped nor audited) compile as a list root and a lookup, each
programme with its first participants inside the caller's jurisdiction, `participants(first:)`,
guarded like the owner and sized like the members; so do the regions (public reference too),
looked up by code or from the nation down, each with its children. A selection the compiler
cannot write exactly as graphql-core would serialise it (any other guarded field, any other
list, other arguments, a directive, a computed field without its SQL) is resolved row by row
instead, by the same resolvers, which also report any FORBIDDEN, BAD_USER_INPUT or
null-in-non-null error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import Enum
from functools import cache, lru_cache
from typing import Any, Literal, cast

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLResolveInfo,
    OperationDefinitionNode,
)
from sqlalchemy import JSON as JSON_TYPE
from sqlalchemy import BigInteger, Boolean, Date, Integer, String, TableClause
from strawberry.scalars import ID, JSON
from strawberry.types import Info
from strawberry.types.base import (
    StrawberryList,
    StrawberryOptional,
    get_object_definition,
)
from strawberry.types.enum import StrawberryEnumDefinition
from strawberry.types.field import StrawberryField
from strawberry.types.nodes import (
    FragmentSpread,
    InlineFragment,
    SelectedField,
    Selection,
    convert_selections,
)

from auth.scopes import Scope
from db.driver import DriverStatement
from db.models import COOPERATIVES, MSME_OWNERS, MSMES, PARTICIPATIONS, PROGRAMMES, REGIONS
from db.queries import change_feed, cooperatives, msmes
from db.queries.cooperatives import CooperativeFilter
from db.queries.json_pages import (
    AUDITED,
    PROVINCE_OF_OWN_CODE,
    Computed,
    Cursor,
    Field,
    Fixed,
    JsonRecord,
    JsonShape,
    Nested,
    NestedList,
    NestedPage,
    Node,
    PageFact,
    PageRows,
    ShapePart,
    Sizes,
    fetch_json_list,
    fetch_json_page,
    fetch_json_record,
    json_list_statement,
    json_page_statement,
    json_record_statement,
)
from db.queries.msmes import MsmeFilter
from db.queries.paging import Listing
from db.queries.programmes import SCALE_HISTORY
from db.queries.scoping import RowScope
from domain.personal import owner_finances
from resolvers import relations
from resolvers.change_feed import Plan, cursor_field
from resolvers.context import Context
from resolvers.lookahead import hands_out_rows, peeks_past_page
from resolvers.paging import PageResult, decode_cursor, page_size
from schema.errors import raw_info
from schema.permissions import admitted, declared_scopes
from schema.root_selection import RootKey, root_keys
from schema.scalars import Rupiah, SignedRupiah

TABLES: dict[str, TableClause] = {
    "Msme": MSMES,
    "Cooperative": COOPERATIVES,
    "Region": REGIONS,
    "ChangeEntry": change_feed.ENTRY,
    "Participation": PARTICIPATIONS,
    "Programme": PROGRAMMES,
    "ScaleChange": SCALE_HISTORY,
    "Owner": MSME_OWNERS,
}
RELATIONS: dict[Callable[..., Any], tuple[str, str]] = {
    relations.province: ("region", "province_code"),
    relations.regency: ("region", "regency_code"),
    relations.district: ("region", "district_code"),
    relations.region_parent: ("region", "parent_code"),
    relations.region_province: ("region", PROVINCE_OF_OWN_CODE),
    relations.cooperative_of_msme: ("cooperative", "cooperative_id"),
    relations.participation_programme: ("programme", "programme_id"),
    relations.jurisdiction_region: ("region", "jurisdiction"),
    relations.participation_msme: ("msme", "msme_id"),
    relations.participation_cooperative: ("cooperative", "cooperative_id"),
}
"""Resolvers of a relation to a region, cooperative, MSME or programme: (target, the row's
column holding its key), so the relation is a join rather than a DataLoader."""
LISTS: dict[Callable[..., Any], tuple[str, str, str]] = {
    relations.scale_history: ("scale_history", "msme_id", "id"),
    relations.region_children: ("region", "parent_code", "code"),
}
"""Resolvers of a list of the rows pointing at a record: (target, the target's column holding
the record's key, the record's column holding it), so the list is an aggregate in the
statement rather than a DataLoader."""
PAGES: dict[Callable[..., Any], tuple[str, str]] = {
    relations.member_msmes: ("msme", "cooperative_id"),
}
"""Resolvers of a connection to the records pointing at a record: (target, the target's column
holding the record's id), so the page is an aggregate in the statement, scoped and counted as
its DataLoader's."""
LIMITED: dict[Callable[..., Any], tuple[str, str]] = {
    relations.participants: ("participation", "programme_id"),
    relations.msme_participations: ("participation", "msme_id"),
    relations.cooperative_participations: ("participation", "cooperative_id"),
}
"""Resolvers of the first rows pointing at a record that the caller may read, a list rather
than a connection: (target, the target's column holding the record's id), so the list is an
aggregate in the statement, scoped and counted as its DataLoader's. A record's participations
too: one in another region's programme, whose business has since moved here, is not the
caller's (db/queries/programmes.visible)."""
GUARDED: tuple[Callable[..., Any], ...] = (relations.owner, relations.participants)
"""Resolvers of the guarded fields compiled: each request's access policy decides whether the
statement may answer them (see `Admission`), and which of an owner's columns it selects."""
MSME_OF: dict[str, str] = {"Msme": "id", "ScaleChange": "msme_id"}
"""The row's column holding the id of the MSME whose owner's finances a type carries
(domain.personal.OWNER_FINANCES): whose NIK the statement reads, for the audit entry alone."""
OWNERS_KEPT: dict[str, str] = {"ScaleChange": "owner_niks"}
"""The row's column keeping whose figures it holds (migration 0062), named rather than the owner
on record at the read (JsonShape.owners_kept)."""


class Unsupported(Exception):
    """The selection needs the executor's field-by-field resolution."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What a request is checked for before a compiled statement runs for it. The plan is made
    once for a document whoever sends it, so each request asks its own access policy whether
    it may use the guarded fields the selection hands out, and its own limits whether the
    page sizes asked below the root are allowed."""

    fields: tuple[tuple[str, tuple[Scope, ...]], ...] = ()
    """Each guarded field (`Type.field`) with the scopes that guard it."""
    personal: frozenset[str] | None = None
    """The owner's personal columns asked for; None when no owner is."""
    sizes: tuple[int | str | None, ...] = ()
    """The `first` of each nested page: the document's, the name of the variable that gives
    it, or None where it gives none."""

    def admit(self, context: Context, variables: Mapping[str, Any]) -> Admitted | None:
        """What the statement is built with for this request (`variables`: its coerced values);
        None when the caller may not use every guarded field, so the executor resolves the
        selection and nulls each field refused with FORBIDDEN, and no personal data is read, or
        when a page size is refused, which the executor reports."""
        policy = context.policy
        if not all(policy.may(*scopes) for _, scopes in self.fields):
            return None
        given = {size: variables.get(size) for size in self.sizes if isinstance(size, str)}
        try:
            for size in self.sizes:
                page_size(given[size] if isinstance(size, str) else size, context.limits)
        except GraphQLError:
            return None
        for name, scopes in self.fields:
            admitted(context, name, scopes)
        personal = frozenset() if self.personal is None else policy.owner_columns(self.personal)
        return Admitted(personal, tuple(sorted(given.items())))


@dataclass(frozen=True, slots=True)
class Admitted:
    """What a compiled statement is built with for a request its plan's `Admission` lets in."""

    personal: frozenset[str]
    """The owner's columns the statement selects, as the caller's access policy decides them:
    those asked for and the NIK."""
    sizes: Sizes
    """The sizes this request's variables give nested pages."""


class _Admitting:
    """Collects what a selection's requests are to be checked for, while it compiles."""

    def __init__(self) -> None:
        self.fields: dict[str, tuple[Scope, ...]] = {}
        self.personal: set[str] | None = None
        self.sizes: list[int | str | None] = []

    def done(self) -> Admission:
        personal = None if self.personal is None else frozenset(self.personal)
        return Admission(tuple(self.fields.items()), personal, tuple(self.sizes))


@dataclass(frozen=True, slots=True)
class PagePlan:
    lists: tuple[tuple[str, JsonShape], ...]
    """(response key, shape) of each `nodes` and `edges` selected on the connection."""
    admission: Admission
    handed_out: bool
    """Whether the selection hands out which records are on the page (lookahead.hands_out_rows,
    the rule the row-by-row page follows too), so that what its filter tells of each record is
    told of its owner."""
    peeks: bool
    """Whether it asks `hasNextPage` (lookahead.peeks_past_page), so that what its filter tells
    of the row read past the page is told of that row's owner too."""


@dataclass(frozen=True, slots=True)
class RecordPlan:
    shape: JsonShape
    admission: Admission


@dataclass(frozen=True, slots=True)
class Planned:
    """A root field's plan, kept with the operation it belongs to (see `_Plans`)."""

    operation: object
    plan: PagePlan | RecordPlan | None


class _Plans:
    """Plans by (operation, response key), the least recently used dropped first. Parsed
    documents are kept (schema/engine.py, and Strawberry's parser cache), so the same document
    arrives as the same operation node; the entry keeps that node alive, so its id cannot be
    reused by another while the entry exists. A plan is made from the document alone, never
    from a request's selection: that one is converted with the request's variables, so `@skip`
    and `@include` have already left copies out and a nested size reads as the document's own,
    and the plan kept would answer every later request of the document, whatever it sends."""

    def __init__(self, size: int = 1024) -> None:
        self._size = size
        self._plans: OrderedDict[tuple[int, str], Planned] = OrderedDict()

    def get(
        self, info: Info[Context, Any], make: Callable[[SelectedField], PagePlan | RecordPlan]
    ) -> PagePlan | RecordPlan | None:
        """The plan of the root field the executor resolves, made from the document when it is
        missing: never registered (a change feed), or dropped while the document stayed parsed."""
        operation = info.operation
        key = (id(operation), str(info.path.key))
        found = self._plans.get(key)
        if found is not None and found.operation is operation:
            self._plans.move_to_end(key)
            return found.plan
        fragments = raw_info(info).fragments
        selected = root_keys(operation.selection_set, fragments).get(key[1])
        plan = None if selected is None else _planned(selected, fragments, make)
        self._keep(operation, key[1], plan)
        return plan

    def register(
        self,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        roots: Mapping[str, object],
    ) -> None:
        """Plans the root fields of `operation` that `roots` compiles, for `get` to find when
        the executor resolves them."""
        for key, selected in root_keys(operation.selection_set, fragments).items():
            root = roots.get(selected.nodes[0].name.value)
            if isinstance(root, RecordRoot | ListRoot | PageRoot):
                self._keep(operation, key, _planned(selected, fragments, root.plan))

    def _keep(self, operation: object, key: str, plan: PagePlan | RecordPlan | None) -> None:
        self._plans[id(operation), key] = Planned(operation, plan)
        if len(self._plans) > self._size:
            self._plans.popitem(last=False)


def _planned(
    selected: RootKey,
    fragments: Mapping[str, FragmentDefinitionNode],
    make: Callable[[SelectedField], PagePlan | RecordPlan],
) -> PagePlan | RecordPlan | None:
    """A root key's plan, made from every copy GraphQL merges under it, those inside root
    fragments included, with an argument a variable gives read as that `Variable`; None when
    the executor resolves the key. When `@skip` or `@include` decide which of several copies
    merge, they differ by request, so the executor resolves that key."""
    if len(selected.nodes) > 1 and selected.conditional:
        return None
    try:
        return make(_merged(selections(selected.nodes, fragments)))
    except Unsupported:
        return None


PLANS = _Plans()


@dataclass(frozen=True, slots=True)
class Variable:
    """An argument's value in a selection converted for its document rather than a request: the
    variable `name` gives it, so it may differ by request."""

    name: str


class _Unknown(dict[str, Any]):
    """Variables whose every value reads as the `Variable` itself."""

    def get(self, key: str, default: Any = None) -> Any:
        return Variable(key)


class _Document:
    """What Strawberry's selection conversion reads of a resolver's info, for a document rather
    than a request: its fragments, and variables whose values are not known."""

    def __init__(self, fragments: Mapping[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.variable_values = _Unknown()


def selections(
    field_nodes: list[FieldNode], fragments: Mapping[str, FragmentDefinitionNode]
) -> list[Selection]:
    """The selections of `field_nodes`, for a plan made once for their document: an argument a
    variable gives reads as that `Variable`."""
    return convert_selections(cast("GraphQLResolveInfo[Any]", _Document(fragments)), field_nodes)


def _merged(selected: list[Selection]) -> SelectedField:
    """The copies of one field that GraphQL merges, as one: their selections one after the
    other, as the executor collects them. Validation has made them the same field with the
    same arguments."""
    if not all(isinstance(field, SelectedField) for field in selected):
        raise Unsupported("a fragment")
    fields = cast("list[SelectedField]", selected)
    first = fields[0]
    if any(field.directives for field in fields):
        raise Unsupported("directives")
    if any((field.name, field.arguments) != (first.name, first.arguments) for field in fields):
        raise Unsupported("copies that differ")
    merged = [part for field in fields for part in field.selections]
    return SelectedField(first.name, {}, first.arguments, merged, first.alias)


def _fields(selections: Iterable[Selection], type_name: str) -> Iterable[SelectedField]:
    for selection in selections:
        if selection.directives:
            raise Unsupported("directives")
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            condition = selection.type_condition
            if condition is not None and condition != type_name:
                raise Unsupported("a fragment on another type")
            yield from _fields(selection.selections, type_name)


def keyed(
    selections: Iterable[Selection], type_name: str, *, arguments: bool = False
) -> list[tuple[str, SelectedField]]:
    """The selected fields by response key, in the order of the answer; the copies of a key
    selected twice are merged, as GraphQL merges them. Any argument needs the executor unless
    the caller takes `arguments` on."""
    found: dict[str, list[Selection]] = {}
    for field in _fields(selections, type_name):
        if field.arguments and not arguments:
            raise Unsupported("arguments")
        found.setdefault(field.alias or field.name, []).append(field)
    return [(key, _merged(copies)) for key, copies in found.items()]


@cache
def definitions(graphql_type: type) -> tuple[str, dict[str, StrawberryField]]:
    """A Strawberry type's GraphQL name and its fields by GraphQL name."""
    definition = get_object_definition(graphql_type, strict=True)
    by_name = {
        field.graphql_name or _camel(field.python_name): field for field in definition.fields
    }
    return definition.name, by_name


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def shape_of(
    graphql_type: type, selections: Iterable[Selection], admitting: _Admitting
) -> JsonShape:
    """The JSON shape of a selection on a record or region type; the guarded fields it uses
    noted in `admitting`."""
    type_name, fields = definitions(graphql_type)
    table = TABLES.get(type_name)
    if table is None:
        raise Unsupported(type_name)
    parts: list[Field | Fixed | Computed | Nested | NestedList | NestedPage] = []
    for key, selected in keyed(selections, type_name, arguments=True):
        if selected.name == "__typename":
            parts.append(Fixed(key, type_name))
            continue
        field = fields.get(selected.name)
        if field is None:
            raise Unsupported(selected.name)
        resolver = field.base_resolver
        wrapped = None if resolver is None else resolver.wrapped_func
        if selected.arguments and not _paged(field):
            raise Unsupported("arguments")
        if field.extensions:
            scopes = declared_scopes(field)
            if wrapped not in GUARDED or len(field.extensions) != 1 or not scopes:
                raise Unsupported("a guarded or extended field")
            admitting.fields[f"{type_name}.{selected.name}"] = scopes
        if wrapped in PAGES:
            target, link = PAGES[wrapped]
            parts.append(_nested_page(key, target, link, field, selected, admitting))
            continue
        if wrapped in LIMITED:  # null only when refused, which the admission leaves to the executor
            target, link = LIMITED[wrapped]
            listed = field.type
            item_type = _items(listed.of_type if isinstance(listed, StrawberryOptional) else listed)
            items = shape_of(item_type, selected.selections, admitting)
            first = _first(selected, admitting)
            parts.append(NestedList(key, target, link, items, limited=True, first=first))
            continue
        if wrapped in LISTS:
            target, link, on = LISTS[wrapped]
            item_type = _items(field.type)
            items = shape_of(item_type, selected.selections, admitting)
            parts.append(NestedList(key, target, link, items, on=on))
            continue
        field_type, nullable = _nullable(field.type)
        if resolver is None:
            parts.append(_leaf(key, field.python_name, field_type, nullable, table))
        elif wrapped in RELATIONS:
            target, link = RELATIONS[wrapped]
            inner = shape_of(field_type, selected.selections, admitting)
            parts.append(Nested(key, target, link, inner, nullable))
        elif wrapped is relations.owner:
            inner = shape_of(field_type, selected.selections, admitting)
            asked = {part.column for part in inner.parts if isinstance(part, Field)}
            admitting.personal = asked.union(admitting.personal or ())
            parts.append(Nested(key, "owner", "id", inner, nullable))
        elif "sql" in field.metadata:
            parts.append(_computed(key, field, field_type, nullable))
        else:
            raise Unsupported(selected.name)
    if not _names_no_owner(type_name, parts):
        return JsonShape(tuple(parts))
    return JsonShape(tuple(parts), MSME_OF[type_name], OWNERS_KEPT.get(type_name))


def _names_no_owner(type_name: str, parts: list[Any]) -> bool:
    """Whether the shape hands out figures that are an owner's finances without the owner's
    join, which reads the NIK already: the statement then reads it for the audit entry."""
    columns = (part.column for part in parts if isinstance(part, Field))
    owner = any(isinstance(part, Nested) and part.target == "owner" for part in parts)
    return not owner and bool(owner_finances(type_name, columns))


def _nested_page(
    key: str,
    target: str,
    link: str,
    field: StrawberryField,
    selected: SelectedField,
    admitting: _Admitting,
) -> NestedPage:
    """A connection below the root (a cooperative's `memberMsmes`), whose page size the
    document writes, a variable gives (the plan keeps its name: each request's value is
    checked and written into the statement) or is left to the default. A page `after` a cursor
    is the executor's: its loader reads every cooperative's page in one statement too."""
    first = _first(selected, admitting)
    connection_type = cast("type", field.type)
    node_type = _items(definitions(connection_type)[1]["nodes"].type)
    node_name = definitions(node_type)[0]
    connection_name = f"{node_name}Connection"
    parts: list[Fixed | PageFact | PageRows | Node] = []
    for part_key, part in keyed(selected.selections, connection_name):
        if part.name == "__typename":
            parts.append(Fixed(part_key, connection_name))
        elif part.name == "totalCount":
            parts.append(PageFact(part_key, "total"))
        elif part.name in ("nodes", "edges"):
            make = shape_of if part.name == "nodes" else _edge_shape
            rows = make(node_type, part.selections, admitting)
            parts.append(PageRows(part_key, rows))
        elif part.name == "pageInfo":
            parts.append(Node(part_key, _page_info(part.selections)))
        else:
            raise Unsupported(part.name)  # a field added to Connection: the executor's
    return NestedPage(key, target, link, first, JsonShape(tuple(parts)))


def _paged(field: StrawberryField) -> bool:
    """Whether the field answers a page of its rows, its size a `first` argument."""
    return any(argument.python_name == "first" for argument in field.arguments)


def _first(selected: SelectedField, admitting: _Admitting) -> int | str | None:
    """The size of a nested page or limited list, noted for each request to check: the
    document's, the name of the variable that gives it, or None for the default."""
    if set(selected.arguments) - {"first"}:
        raise Unsupported("arguments other than first")
    given = selected.arguments.get("first")
    first = given.name if isinstance(given, Variable) else None if given is None else int(given)
    admitting.sizes.append(first)
    return first


def _page_info(selections: list[Selection]) -> JsonShape:
    facts: dict[str, Literal["has_next", "end_cursor"]] = {
        "hasNextPage": "has_next",
        "endCursor": "end_cursor",
    }
    parts: list[Fixed | PageFact] = []
    for key, field in keyed(selections, "PageInfo"):
        if field.name == "__typename":
            parts.append(Fixed(key, "PageInfo"))
        elif field.name in facts:
            parts.append(PageFact(key, facts[field.name]))
        else:
            raise Unsupported(field.name)  # a field added to PageInfo: the executor's
    return JsonShape(tuple(parts))


def _nullable(field_type: Any) -> tuple[Any, bool]:
    if isinstance(field_type, StrawberryOptional):
        return field_type.of_type, True
    if isinstance(field_type, StrawberryList):
        raise Unsupported("a list")
    return field_type, False


def _items(field_type: Any) -> Any:
    """The type of a list's items; a list that may be null, or hold nulls, needs the executor."""
    if isinstance(field_type, StrawberryList) and not isinstance(
        field_type.of_type, StrawberryOptional
    ):
        return field_type.of_type
    raise Unsupported("a list that may be null or hold nulls")


def _computed(key: str, field: StrawberryField, kind: Any, nullable: bool) -> Computed:
    """A field computed from its row, whose declaration gives the computation in SQL too
    (`metadata["sql"]`, over the columns it declares), written as graphql-core serialises its
    resolver's value: a boolean, a string or an integer (a member count within 32 bits, as
    graphql-core requires: the rollup trigger adds the same columns in 32 bits and refuses a
    row whose sum is not, migration 0006)."""
    if kind not in (bool, str, int):
        raise Unsupported("a computed field of another type")
    return Computed(key, tuple(field.metadata["columns"]), field.metadata["sql"], nullable)


def _leaf(key: str, column_name: str, kind: Any, nullable: bool, table: TableClause) -> Field:
    """A column PostgreSQL writes as graphql-core serialises the field: strings, booleans,
    32-bit integers, dates, IDs and rupiah amounts as text, enumerations stored as text."""
    column = table.c.get(column_name)
    if column is None:
        raise Unsupported(column_name)
    stored = column.type
    text, integer = isinstance(stored, String), isinstance(stored, Integer)
    if isinstance(kind, StrawberryEnumDefinition):
        names = tuple((_stored(value.value), value.name) for value in kind.values)
        if text and all(isinstance(value, str) for value, _ in names):
            return Field(key, column_name, nullable, names=names)
        raise Unsupported("an enumeration not stored as text")
    plain = {
        str: text,
        bool: isinstance(stored, Boolean),
        # graphql-core refuses integers beyond 32 bits; a BIGINT column may hold one
        int: integer and not isinstance(stored, BigInteger),
        date: isinstance(stored, Date),  # to_json writes a date as isoformat() does
    }
    if plain.get(kind):
        return Field(key, column_name, nullable)
    if (kind is ID and (text or integer)) or (kind in (Rupiah, SignedRupiah) and integer):
        return Field(key, column_name, nullable, as_text=True)
    if kind is JSON and isinstance(stored, JSON_TYPE):
        return Field(key, column_name, nullable)  # the value graphql-core would write again
    raise Unsupported(column_name)


def _stored(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _page_plan(node_type: type) -> Callable[[SelectedField], PagePlan]:
    def make(field: SelectedField) -> PagePlan:
        connection_name = f"{definitions(node_type)[0]}Connection"
        lists: list[tuple[str, JsonShape]] = []
        admitting = _Admitting()
        for key, part in keyed(field.selections, connection_name):
            if part.name == "nodes":
                lists.append((key, shape_of(node_type, part.selections, admitting)))
            elif part.name == "edges":
                lists.append((key, _edge_shape(node_type, part.selections, admitting)))
        selections = field.selections
        return PagePlan(
            tuple(lists),
            admitting.done(),
            hands_out_rows(selections),
            peeks_past_page(selections),
        )

    return make


def _edge_shape(node_type: type, selections: list[Selection], admitting: _Admitting) -> JsonShape:
    node_name = definitions(node_type)[0]
    edge_name = f"{node_name}Edge"
    parts: list[Fixed | Cursor | Node] = []
    for key, field in keyed(selections, edge_name):
        if field.name == "node":
            parts.append(Node(key, shape_of(node_type, field.selections, admitting)))
        elif field.name == "cursor":
            parts.append(Cursor(key, node_name.lower()))
        elif field.name == "__typename":
            parts.append(Fixed(key, edge_name))
        else:
            raise Unsupported(field.name)  # a field added to Edge: the executor resolves it
    return JsonShape(tuple(parts))


@dataclass(frozen=True, slots=True)
class PageRoot:
    """A root field answering pages of `node_type` (Msme or Cooperative)."""

    node_type: type
    where: Callable[[Context, Any], Awaitable[Any]]
    """The field's `filter` argument checked and made the statement's filter."""
    rows: Callable[..., Awaitable[PageResult]]
    """`rows(info, first=, after=, where=)`: the page resolved row by row, when its selection
    does not compile."""

    @property
    def type_name(self) -> str:
        return definitions(self.node_type)[0]

    @property
    def kind(self) -> str:
        return self.type_name.lower()

    def plan(self, field: SelectedField) -> PagePlan:
        return _page_plan(self.node_type)(field)


@dataclass(frozen=True, slots=True)
class RecordRoot:
    """A root field answering the record of `node_type` whose unique `column` holds its one
    argument, or `fixed` for a root without one (the nation)."""

    node_type: type
    column: str
    checked: Callable[[str], str]
    """The argument's check, which refuses it with a coded error naming it."""
    rows: Callable[[Info[Context, Any], str], Awaitable[Any]]
    """The record resolved as a row, when its selection does not compile."""
    fixed: str | None = None
    unknown_refused: bool = False
    """Whether `rows` refuses a key no record holds with a coded error (a region code must
    name a region), rather than answering null: the executor answers it then."""

    def plan(self, field: SelectedField) -> RecordPlan:
        admitting = _Admitting()
        shape = shape_of(self.node_type, field.selections, admitting)
        return RecordPlan(shape, admitting.done())


@dataclass(frozen=True, slots=True)
class ListRoot:
    """A root field answering every record of `node_type` the caller may read, in id order
    (the programmes: public reference, short enough to need no page)."""

    node_type: type
    rows: Callable[[Info[Context, Any]], Awaitable[Any]]
    """The records resolved as rows, when their selection does not compile."""

    def plan(self, field: SelectedField) -> RecordPlan:
        admitting = _Admitting()
        shape = shape_of(self.node_type, field.selections, admitting)
        return RecordPlan(shape, admitting.done())


class RowsNeeded(Enum):
    ROWS_NEEDED = "rows needed"


ROWS_NEEDED = RowsNeeded.ROWS_NEEDED
"""What a compiled read answers when the executor must resolve it row by row instead: a
non-null field or relation turned out null, which the executor reports as it reports
everything else."""


async def page_json(
    context: Context,
    root: PageRoot,
    plan: PagePlan,
    *,
    first: int | None,
    after: str | None,
    where: Any,
    variables: Mapping[str, Any],
) -> PageResult | RowsNeeded:
    """A page whose lists PostgreSQL writes, noted as records handed out and its owners as data
    subjects; `variables`: the request's, coerced."""
    kind = root.kind
    size = page_size(first, context.limits)
    start = decode_cursor(after, kind)
    granted = plan.admission.admit(context, variables)
    if granted is None:
        return ROWS_NEEDED
    scope = context.policy.records
    # each row's owner probed, as if the figures were selected
    revealed = where.revealed if plan.handed_out else frozenset()
    shapes = tuple(_revealing(shape, root.type_name, revealed) for _, shape in plan.lists)
    itemised = owner_finances(root.type_name, revealed)
    peeked = plan.peeks and bool(itemised)
    default_size = context.limits.default_page_size
    statement = _page_statement(
        kind, shapes, scope, granted, default_size, where, size, start is not None, peeked
    )
    async with context.reads.checked_out() as connection:
        built = await fetch_json_page(connection, statement, first=size, after=start)
    if built is None:
        return ROWS_NEEDED
    context.accesses.records_returned(kind, built.count)
    for shown, number in built.records.items():
        context.accesses.records_returned(shown, number)
    for subject in built.subjects:
        context.accesses.owner_finances_of(subject, itemised)
    listing = _listing(kind)

    async def count() -> int:
        async with context.reads.connect() as connection:
            return await listing.total(connection, scope=scope, where=where)

    lists = {
        key: orjson.Fragment(text) for (key, _), text in zip(plan.lists, built.lists, strict=True)
    }
    return PageResult(kind, (), built.has_next, count, lists=lists, last_id=built.last_id)


async def page(
    info: Info[Context, Any], root: PageRoot, *, first: int | None, after: str | None, filter: Any
) -> PageResult:
    """The executor's resolution of a page root field."""
    where = await root.where(info.context, filter)
    plan = PLANS.get(info, root.plan)
    assert plan is None or isinstance(plan, PagePlan)
    if plan is not None and plan.lists:
        built = await page_json(
            info.context,
            root,
            plan,
            first=first,
            after=after,
            where=where,
            variables=info.variable_values,
        )
        if built is not ROWS_NEEDED:
            assert isinstance(built, PageResult)
            return built
    return await root.rows(info, first=first, after=after, where=where)


def _revealing(shape: JsonShape, type_name: str, revealed: frozenset[str]) -> JsonShape:
    """A page's list `shape`, whose filter tells each record's `revealed` columns
    (MsmeFilter.revealed): when they are its owner's finances, it probes the owner's NIK for
    the audit entry as a shape selecting them does (`shape_of`), unless it reads it already."""
    if not owner_finances(type_name, revealed) or _reads_owner(shape):
        return shape
    return replace(shape, owner_of=MSME_OF[type_name])


def _reads_owner(shape: JsonShape) -> bool:
    """Whether each row of `shape` reads its owner's NIK: probed, or joined with the owner."""
    return shape.owner_of is not None or any(
        (isinstance(part, Nested) and part.target == "owner")
        or (isinstance(part, Node) and _reads_owner(part.shape))
        for part in shape.parts
    )


def _listing(kind: str) -> Listing[MsmeFilter] | Listing[CooperativeFilter]:
    """The listing of a page root's `kind` (PageRoot.kind)."""
    return msmes.LISTING if kind == "msme" else cooperatives.LISTING


@lru_cache(maxsize=256)
def _page_statement(
    kind: str,
    shapes: tuple[JsonShape, ...],
    scope: RowScope,
    granted: Admitted,
    default_size: int,
    where: Any,
    first: int,
    after: bool,
    peeked: bool,
) -> DriverStatement:
    """Kept for the next page of the same shape, caller, filter and sizes (any cursor)."""
    listing = _listing(kind)
    return json_page_statement(
        listing.table,
        shapes,
        where=listing.conditions(scope, where),
        scope=scope,
        personal=granted.personal,
        default_size=default_size,
        sizes=granted.sizes,
        first=first,
        after=after,
        peeked=peeked,
    )


async def record_json(
    context: Context,
    root: RecordRoot,
    plan: RecordPlan,
    value: str,
    variables: Mapping[str, Any],
) -> orjson.Fragment | RowsNeeded | None:
    """The record as JSON PostgreSQL writes, None when there is none (or it is outside the
    caller's jurisdiction), noted as records handed out and its owner as a data subject;
    `value` checked, `variables` the request's, coerced."""
    granted = plan.admission.admit(context, variables)
    if granted is None:
        return ROWS_NEEDED
    type_name = definitions(root.node_type)[0]
    scope, default_size = context.policy.records, context.limits.default_page_size
    statement = _record_statement(type_name, plan.shape, root.column, scope, granted, default_size)
    async with context.reads.checked_out() as connection:
        found = await fetch_json_record(connection, statement, value)
    if found is False or (found is None and root.unknown_refused):
        return ROWS_NEEDED
    if found is None:
        return None
    if type_name.lower() in AUDITED:  # a record, not public reference
        context.accesses.records_returned(type_name.lower(), 1)
    return _noted(context, found)


def _noted(context: Context, found: JsonRecord) -> orjson.Fragment:
    """`found`'s JSON, with the records it shows noted as handed out and its owners as data
    subjects."""
    for shown, number in found.records.items():
        context.accesses.records_returned(shown, number)
    for subject in found.subjects:
        context.accesses.personal_data_of(subject)
    return orjson.Fragment(found.json)


async def record(info: Info[Context, Any], root: RecordRoot, value: str) -> Any:
    """The executor's resolution of a record root field."""
    value = root.checked(value)
    plan = PLANS.get(info, root.plan)
    if plan is not None:
        assert isinstance(plan, RecordPlan)
        found = await record_json(info.context, root, plan, value, info.variable_values)
        if found is not ROWS_NEEDED:
            return found
    return await root.rows(info, value)


@lru_cache(maxsize=256)
def _record_statement(
    type_name: str,
    shape: JsonShape,
    key: str,
    scope: RowScope,
    granted: Admitted,
    default_size: int,
) -> DriverStatement:
    return json_record_statement(
        TABLES[type_name],
        shape,
        key=key,
        scope=scope,
        personal=granted.personal,
        default_size=default_size,
        sizes=granted.sizes,
    )


async def list_json(
    context: Context, root: ListRoot, plan: RecordPlan, variables: Mapping[str, Any]
) -> orjson.Fragment | RowsNeeded:
    """Every record the caller may read as a JSON array PostgreSQL writes, noted as the records
    and owners it shows; `variables`: the request's, coerced."""
    granted = plan.admission.admit(context, variables)
    if granted is None:
        return ROWS_NEEDED
    type_name = definitions(root.node_type)[0]
    scope, default_size = context.policy.records, context.limits.default_page_size
    statement = _list_statement(type_name, plan.shape, scope, granted, default_size)
    async with context.reads.checked_out() as connection:
        found = await fetch_json_list(connection, statement)
    if found is False:
        return ROWS_NEEDED
    return _noted(context, found)


async def listed(info: Info[Context, Any], root: ListRoot) -> Any:
    """The executor's resolution of a list root field."""
    plan = PLANS.get(info, root.plan)
    if plan is not None:
        assert isinstance(plan, RecordPlan)
        found = await list_json(info.context, root, plan, info.variable_values)
        if found is not ROWS_NEEDED:
            return found
    return await root.rows(info)


@lru_cache(maxsize=256)
def _list_statement(
    type_name: str, shape: JsonShape, scope: RowScope, granted: Admitted, default_size: int
) -> DriverStatement:
    return json_list_statement(
        TABLES[type_name],
        shape,
        scope=scope,
        personal=granted.personal,
        default_size=default_size,
        sizes=granted.sizes,
    )


def changes_plan(info: Info[Context, Any], entry_type: type) -> Plan:
    """The lists of a change feed page (`entries`, under each key selected) that PostgreSQL
    writes, entries of `entry_type`; none when the selection does not compile, so the entries
    are resolved one by one. An entry's cursor is its position, which the page seals
    (resolvers/change_feed.py): PostgreSQL never holds the key."""

    def make(field: SelectedField) -> PagePlan:
        lists: list[tuple[str, JsonShape]] = []
        admitting = _Admitting()
        for key, part in keyed(field.selections, "ChangePage"):
            if part.name == "entries":
                lists.append((key, _entry_shape(entry_type, part.selections, admitting)))
        if admitting.fields or admitting.sizes:
            raise Unsupported("a guarded field or a nested page in a feed's entry")
        return PagePlan(tuple(lists), admitting.done(), handed_out=bool(lists), peeks=False)

    plan = PLANS.get(info, make)
    assert plan is None or isinstance(plan, PagePlan)
    return () if plan is None else plan.lists


def _entry_shape(entry_type: type, selections: list[Selection], admitting: _Admitting) -> JsonShape:
    parts: list[ShapePart] = []
    for key, field in keyed(selections, definitions(entry_type)[0]):
        if field.name == "cursor":
            parts.append(cursor_field(key))
        else:
            parts.extend(shape_of(entry_type, [field], admitting).parts)
    return JsonShape(tuple(parts))
