"""How big a GraphQL document may be, checked on its syntax tree before anything runs.

Depth, aliases, tokens and an estimated cost (fields times the sizes of the lists above them)
bound the work one request can ask for, so a careless or hostile client is refused in
microseconds instead of exhausting the database. Every list counts: a paginated one by its
`first` (the default page size when omitted; as one item when out of the range its resolver
refuses, since it then reads nothing; a subscription's, which takes none, by the largest page it
sends), an unpaginated one by the estimate LIST_SIZES gives its parent type and field (a
region's children, a figure table's rows from its `groupBy`), so the region tree or a wide
figure table cannot hide behind aliases. A figure table's field costs FIGURE_CELL_COST per
estimated cell besides: its cells cost their work whatever is selected. Arguments are read as
they run: variables wherever they sit, an omitted one as the default its operation declares, a
page size as graphql-core coerces it. What still slips past an estimate meets the bound on the
response's size (max_response_bytes).

Measuring takes time in proportion to the document's text, whatever it asks for: a fragment is
measured once and its measurements reused wherever it is spread again (twenty fragments each
spreading the one before twice would otherwise be walked a million times), and the cost is
counted only until it passes the limit.

Introspection meets the same limits. Its standard query (graphql-core's, GraphiQL's) nests
`ofType` nine deep to spell out type references such as `[Region!]!`: those nine add no depth,
any further `ofType` on the same path does. What introspection really costs is counted as it runs
(schema.introspection), since its lists are as long as the schema, not as a `first` argument.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLField,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    NamedTypeNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    Visitor,
    get_named_type,
    value_from_ast_untyped,
    visit,
)

from domain.records import EARLIEST
from domain.scale import Scale
from resolvers import change_feed, imports
from resolvers.aggregates import FIGURE_ROWS, grouping_error
from resolvers.calendar import today
from schema.enums import CooperativeStatus, CooperativeType
from schema.query_limits import QueryLimits
from schema.types.eligibility import GuaranteeStatus

TYPE_REF_NESTING = 9
"""`ofType` fields on a path that add no depth: graphql-core's standard introspection query asks
for nine, more than any real type reference has (`[[T!]!]!` needs five)."""

REGIONS = {"PROVINCE": 38, "REGENCY": 514}
"""Provinces and regencies (cities too) in the Kemendagri codes (a test holds these to the
reference data)."""

KBLI_SECTIONS = 21
"""Sections A to U of KBLI 2020 (a test holds this to the reference data)."""

YEARS = today().year - EARLIEST.year + 2
"""The years a record may be dated in, as of the year the process started, and the next: a
process still serving after New Year's Day costs the year it did not know."""

FIGURE_DIMENSIONS: Mapping[str, Mapping[str, int]] = {
    "msmeFigures": {
        **REGIONS,
        "KBLI_SECTION": KBLI_SECTIONS,
        "SCALE": len(Scale),
        "ACTIVE": 2,
        "ESTABLISHED_YEAR": YEARS,
    },
    "cooperativeFigures": {
        **REGIONS,
        "TYPE": len(CooperativeType),
        "STATUS": len(CooperativeStatus),
        "BOOK_YEAR": YEARS,
    },
    "graduations": {**REGIONS, "FROM_SCALE": len(Scale), "TO_SCALE": len(Scale)},
    "guaranteeFigures": {
        **REGIONS,
        "STATUS": len(GuaranteeStatus),
        "SUBJECT_KIND": 2,  # an MSME's or a cooperative's
        "YEAR": YEARS,
    },
}
"""How many values each dimension of each figure table takes at most."""

FIGURE_CELL_COST = 2
"""What each estimated cell of a figure table costs on the table's field, besides the fields
selected on its rows: reading, protecting and publishing a cell costs the same whatever a client
selects, so `{ __typename }` alone no longer made a table cheap. A table of FIGURE_ROWS cells
(resolvers.aggregates) then costs three fifths of the default max_cost at least: one runs per
request, not the four aliases of it that spent 2.5 s of CPU."""

FIGURE_TABLES = frozenset(FIGURE_DIMENSIONS)

LIST_SIZES: Mapping[tuple[str, str], int] = {
    # Bounded by the connection's `first`, counted on the connection field.
    ("CooperativeConnection", "edges"): 1,
    ("CooperativeConnection", "nodes"): 1,
    ("MsmeConnection", "edges"): 1,
    ("MsmeConnection", "nodes"): 1,
    ("ChangePage", "entries"): 1,
    # Reference data: the largest count in the Kemendagri codes (a regency's 51 districts).
    ("Region", "children"): 51,
    ("Query", "programmes"): 50,
    ("Query", "indicators"): 50,
    ("Indicator", "targets"): 20,
    # A record's own history and links.
    ("Msme", "scaleHistory"): 20,
    ("RecordChange", "fields"): 20,
    ("RecordChange", "personalDataChanged"): 10,
    ("Guarantee", "history"): 10,
    ("Query", "personalDataAccess"): 100,
    ("EligibilityDecision", "results"): 20,
    ("ImportReport", "errors"): imports.MAX_REPORTED_ERRORS,
    ("AuditEntry", "subjects"): 10,
    ("Viewer", "scopes"): 10,
    # A figure row's key has one part per dimension asked for: at most four (the exact number
    # when the table's groupBy is known, see _Walk._figure_rows).
    ("MsmeFigure", "key"): 4,
    ("CooperativeFigure", "key"): 4,
    ("GraduationFigure", "key"): 4,
    ("GuaranteeFigure", "key"): 4,
}
"""Estimated length of each list without a `first`, by parent type and field. A list missing
here counts as UNLISTED (a test keeps the table complete)."""

UNLISTED = 100

PAGE_DEFAULTS: Mapping[str, int] = {"ChangePage": change_feed.DEFAULT_PAGE_SIZE}
"""The page a list whose `first` is omitted runs with, by the type it returns, where that is
not the settings' default page: the change feed's is its own."""

PAGE_MAXIMA: Mapping[str, int] = {"ChangePage": change_feed.MAX_PAGE_SIZE}
"""The largest page a list's `first` may ask for, by the type it returns, where that is not the
settings' largest page: the change feed's is its own."""


def page_size(value: object) -> int | None:
    """`value` as the Int a `first` argument receives, or None if it is not one.

    graphql-core coerces an Int variable from an int or from a float with an integral value (JSON
    has one number type: `100.0` runs as 100), and refuses anything else (a bool, 1.5, a string),
    so those never run and the default page stands in for them. Costing the float as its int
    keeps `first: 100.0` from being costed at the default page while running a page of 100.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass(frozen=True, slots=True)
class Violation:
    limit: str
    maximum: int
    actual: int

    @property
    def message(self) -> str:
        return f"query exceeds the {self.limit} limit of {self.maximum} (found {self.actual})"


@dataclass(frozen=True, slots=True)
class InputError:
    """An argument the document would run with that its resolver refuses, refused before it
    runs because measuring it would already cost: a groupBy of 150,000 dimensions."""

    field: str
    reason: str

    @property
    def message(self) -> str:
        return f"{self.field}: {self.reason}"


class _Refused(Exception):
    def __init__(self, error: InputError) -> None:
        super().__init__(error.message)
        self.error = error


def _field(parent: GraphQLNamedType | None, node: FieldNode) -> GraphQLField | None:
    """The schema's definition of the field `node` selects on `parent`, if there is one."""
    if not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
        return None
    fields: dict[str, GraphQLField] = parent.fields
    return fields.get(node.name.value)


def _list_type(field: GraphQLField) -> bool:
    type_ = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return isinstance(type_, GraphQLList)


@dataclass(frozen=True, slots=True)
class _Fragment:
    """A fragment's measurements for one parent multiplier: its cost grows with the multiplier,
    its depth and aliases do not."""

    depth: int
    cost: int
    aliases: int


class _Walk:
    """Measures a document in one pass over its text: each fragment is walked once (for each
    allowance of `ofType` and figure key it is reached with) and its measurements reused at
    every further spread, so that fragments spreading each other twice, level after level, cost
    their size to measure and not two to the power of their levels."""

    def __init__(self, document: DocumentNode, limits: QueryLimits, schema: GraphQLSchema) -> None:
        self.fragments = {
            node.name.value: node
            for node in document.definitions
            if isinstance(node, FragmentDefinitionNode)
        }
        self.variables: dict[str, Any] = {}
        """The variables of the operation being measured, as it runs with them."""
        self.page = limits.default_page_size
        self.max_page = limits.max_page_size
        self.schema = schema
        self.max_cost = limits.max_cost
        self.cost = 0
        """The cost measured so far, counted until it passes max_cost."""
        self.aliases = 0
        self.measured: dict[tuple[str, int, int | None], _Fragment] = {}
        """Each fragment by name, `ofType` fields above it (those that still count) and figure
        key parts, measured for a multiplier of one."""

    def _argument(self, field: FieldNode, name: str) -> Any:
        """The value `field`'s argument `name` runs with, wherever its variables sit: a list's
        items too (`groupBy: [$a, $b]` is as wide as `groupBy: [REGENCY, KBLI_SECTION]`)."""
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _first(self, field: FieldNode, default: int, maximum: int) -> int:
        """A page as it runs: one its resolver refuses (below 1, over `maximum`) reads nothing,
        so it costs what a page of one does. Costed as asked, `msmes(first: 2147483647)` was
        refused as over the cost limit where `first: 1000` is told the range it must keep to."""
        first = page_size(self._argument(field, "first"))
        if first is None:
            return default
        return first if 1 <= first <= maximum else 1

    def _figure_rows(self, field: FieldNode) -> tuple[int, int | None]:
        """The rows of a figure table and the parts of each row's key, if its groupBy is known."""
        group_by = self._argument(field, "groupBy")
        if not isinstance(group_by, list):
            return FIGURE_ROWS, None
        if all(isinstance(dimension, str) for dimension in group_by):  # else validation refuses
            reason = grouping_error(group_by)
            if reason is not None:
                raise _Refused(InputError("groupBy", reason))
        values = {**FIGURE_DIMENSIONS[field.name.value], **self._within_region(field)}
        rows = 1
        for dimension in group_by:  # a value of each, or the subtotal over them all
            if isinstance(dimension, str):
                rows = min(rows * (values.get(dimension, FIGURE_ROWS) + 1), FIGURE_ROWS)
        return rows, len(group_by)

    def _within_region(self, field: FieldNode) -> dict[str, int]:
        """The values a figure table's region dimensions take when it is filtered to one
        province (its regencies: at most a region's largest family) or one regency, so that a
        province's table by regency is not costed as the nation's."""
        region = self._argument(field, "region")
        if region is None:
            where = self._argument(field, "filter")
            region = where.get("region") if isinstance(where, dict) else None
        code = region.strip() if isinstance(region, str) else ""
        if len(code) == len("62") and code.isdigit():
            return {"PROVINCE": 1, "REGENCY": LIST_SIZES[("Region", "children")]}
        if len(code) >= len("62.01"):
            return {"PROVINCE": 1, "REGENCY": 1}
        return {}

    def _size(
        self, parent: GraphQLNamedType | None, node: FieldNode, key_parts: int | None
    ) -> tuple[int, int | None]:
        """How many items `node` is estimated to yield for each of its parents, and the parts of
        a figure row's key below it (None: not known), given those above it: a figure table
        sets them for its rows' `key`."""
        field = _field(parent, node)
        if parent is None or field is None:  # unknown (validation reports it), or a meta field
            return self._first(node, 1, self.max_page), key_parts
        if parent.name.startswith("__"):
            return 1, key_parts  # introspection is counted as it runs (schema.introspection)
        returned = get_named_type(field.type).name
        if "first" in field.args:
            default = PAGE_DEFAULTS.get(returned, self.page)
            return self._first(node, default, PAGE_MAXIMA.get(returned, self.max_page)), key_parts
        if parent is self.schema.subscription_type and returned in PAGE_MAXIMA:
            # A subscription takes no `first`: each of its pages is as large as the feed's page
            # may be (resolvers.change_feed `follow`), costed as though it were asked for.
            maximum = PAGE_MAXIMA[returned]
            return self._first(node, maximum, maximum), key_parts
        if not _list_type(field):
            return 1, key_parts
        if parent.name == "Query" and node.name.value in FIGURE_TABLES:
            return self._figure_rows(node)
        estimate = LIST_SIZES.get((parent.name, node.name.value), UNLISTED)
        if parent.name.endswith("Figure") and node.name.value == "key" and key_parts:
            return min(key_parts, estimate), key_parts
        return estimate, key_parts

    def _spend(self, cost: int) -> None:
        """Count `cost` until the total passes max_cost. The verdict stands from then on, and
        the walk goes on for depth and aliases only (a document too deep is refused as too
        deep, whatever its cost): numbers it never adds cannot grow a huge integer."""
        if self.cost <= self.max_cost:
            self.cost += cost

    def measure(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        multiplier: int,
        seen: frozenset[str],
        type_refs: int = 0,
        key_parts: int | None = None,
    ) -> int:
        """The depth of a selection set on `parent` below `type_refs` `ofType` fields, adding
        its cost at `multiplier` and its aliases to the walk's; the first TYPE_REF_NESTING of
        those `ofType` fields on a path add no depth. Fragments are followed once per path."""
        if selections is None:
            return 0
        depth = 0
        for node in selections.selections:
            if isinstance(node, FieldNode):
                if node.alias is not None:
                    self.aliases += 1
                self._spend(multiplier)
                size, parts = self._size(parent, node, key_parts)
                if parent is self.schema.query_type and node.name.value in FIGURE_TABLES:
                    self._spend(min(multiplier * size, self.max_cost + 1) * FIGURE_CELL_COST)
                type_ref = node.name.value == "ofType"
                nested = type_refs + type_ref
                field = _field(parent, node)
                inside = get_named_type(field.type) if field is not None else None
                # Past max_cost a multiplier only decides that the cost is over: capped there, a
                # chain of huge `first` arguments cannot grow an integer of millions of digits.
                inner = min(multiplier * size, self.max_cost + 1)
                child_depth = self.measure(node.selection_set, inside, inner, seen, nested, parts)
                own_depth = 0 if type_ref and nested <= TYPE_REF_NESTING else 1
                depth = max(depth, child_depth + own_depth)
            elif isinstance(node, InlineFragmentNode):
                on = self._condition(node.type_condition, parent)
                child_depth = self.measure(
                    node.selection_set, on, multiplier, seen, type_refs, key_parts
                )
                depth = max(depth, child_depth)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in seen:
                fragment = self._fragment(node.name.value, multiplier, seen, type_refs, key_parts)
                if fragment is not None:
                    depth = max(depth, fragment.depth)
        return depth

    def _fragment(
        self,
        name: str,
        multiplier: int,
        seen: frozenset[str],
        type_refs: int,
        key_parts: int | None,
    ) -> _Fragment | None:
        """The measurements of the fragment `name` spread at `multiplier`, its cost and aliases
        added to the walk's: walked the first time, reused after. Beyond TYPE_REF_NESTING every
        `ofType` counts, so the allowance used up is remembered only that far."""
        key = (name, min(type_refs, TYPE_REF_NESTING + 1), key_parts)
        known = self.measured.get(key)
        if known is not None:
            self.aliases += known.aliases
            self._spend(multiplier * known.cost)
            return known
        fragment = self.fragments.get(name)
        if fragment is None:
            return None
        on = self._condition(fragment.type_condition, None)
        cost, aliases = self.cost, self.aliases
        depth = self.measure(
            fragment.selection_set, on, multiplier, seen | {name}, type_refs, key_parts
        )
        # Every field's cost is the multiplier times the sizes of the lists between: dividing
        # by the multiplier leaves the fragment's cost at a multiplier of one, exactly.
        measured = _Fragment(depth, (self.cost - cost) // multiplier, self.aliases - aliases)
        self.measured[key] = measured
        return measured

    def _condition(
        self, condition: NamedTypeNode | None, parent: GraphQLNamedType | None
    ) -> GraphQLNamedType | None:
        if condition is None:
            return parent
        return self.schema.get_type(condition.name.value)

    def operation(self, operation: OperationDefinitionNode, variables: Mapping[str, Any]) -> int:
        """The depth of one operation run with the request's `variables`, adding its cost and
        aliases to the walk's. A variable the request omits runs with the default the operation
        declares (`$a: Int = 100`), so it is costed with it too; one sent as null stays null, as
        graphql-core runs it. Fragments are measured again for an operation whose variables
        differ from the last one's: they may size the fragments otherwise."""
        running = {
            **{
                definition.variable.name.value: value_from_ast_untyped(definition.default_value)
                for definition in operation.variable_definitions or ()
                if definition.default_value is not None
            },
            **variables,
        }
        if running != self.variables:
            self.measured.clear()
        self.variables = running
        root = self.schema.get_root_type(operation.operation)
        return self.measure(operation.selection_set, root, 1, frozenset())


COST_ARGUMENTS = frozenset({"first", "groupBy", "region", "filter"})
"""The arguments whose values the estimate reads: the rest of a request's variables leave it
unchanged."""


def cost_variables(document: DocumentNode) -> frozenset[str]:
    """The variables `document` passes to an argument the estimate reads, so that callers can
    keep one estimate for every request that gives those the same values and omits the same
    ones (an omitted one is costed with the default its document declares)."""
    names: set[str] = set()

    class _Arguments(Visitor):
        """Each variable in an argument's value, however nested (arguments hold no fields, so
        no argument is inside another)."""

        inside = False

        def enter_argument(self, node: ArgumentNode, *_: object) -> None:
            self.inside = node.name.value in COST_ARGUMENTS

        def leave_argument(self, *_: object) -> None:
            self.inside = False

        def enter_variable(self, node: VariableNode, *_: object) -> None:
            if self.inside:
                names.add(node.name.value)

    visit(document, _Arguments())
    return frozenset(names)


def check_document(
    document: DocumentNode,
    variables: Mapping[str, Any],
    limits: QueryLimits,
    schema: GraphQLSchema,
) -> Violation | InputError | None:
    """The first limit `document` exceeds (or an argument it runs with that is refused whatever
    the limits), estimated against `schema` for its list sizes, with the request's `variables`
    (those it omits: the defaults the document declares, which is all `clients trust` costs a
    document with). A cost over the limit is the `actual` counted up to
    the field that passed it, as tokens are counted up to theirs."""
    walk = _Walk(document, limits, schema)
    depth = 0
    try:
        for node in document.definitions:
            if isinstance(node, OperationDefinitionNode):
                depth = max(depth, walk.operation(node, variables))
    except _Refused as refused:
        return refused.error
    for limit, maximum, actual in (
        ("depth", limits.max_depth, depth),
        ("aliases", limits.max_aliases, walk.aliases),
        ("cost", limits.max_cost, walk.cost),
    ):
        if actual > maximum:
            return Violation(limit, maximum, actual)
    return None
