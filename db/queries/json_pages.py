"""A page of records whose JSON PostgreSQL builds, nested regions, cooperatives, MSMEs,
programmes and lists of participations and scale changes included.

A page of fifty MSMEs with their regency, province and cooperative, fetched as rows, costs a
statement for the cooperatives and, in Python, a row object per record and a dictionary per
object of the answer. Here one statement joins what the page points at and hands back its
`nodes` and `edges` arrays as JSON text, which the response embeds as it is. The page is the
keyset page of db/queries/paging.py, scoped the same way, and a cooperative or MSME outside the
caller's jurisdiction is left out by the join condition, exactly as its own statement would leave
it out.
A list of the rows pointing at a record (its participations, its scale history) is an aggregate
joined to the record's row, in the order its DataLoader reads it (db/queries/programmes.py); its
rows are of a record the caller reads already, so it needs no scope of its own, except a
programme's participants: a programme is public, so its list holds only the participations the
caller may read (`VISIBLE`), the first of them as their DataLoader pages them. An MSME's owner
is joined the same way, with only the personal columns the caller's access policy lets it
read, and the page hands back the owners' NIKs for the audit entry, those of owners shown inside
a list or a nested page included; so, with no other column of the owner, does a row that shows
an MSME's figures, its owner's finances (`JsonShape.owner_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    FromClause,
    Select,
    Table,
    TableClause,
    Text,
    and_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal_column,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by, array

from db.driver import DriverStatement, Pooled, Row, fetch
from db.models import COOPERATIVES, MSME_OWNERS, MSMES, PARTICIPATIONS, PROGRAMMES, REGIONS
from db.queries import programmes
from db.queries.cooperatives import legal_entity_no_is
from db.queries.programmes import SCALE_HISTORY
from db.queries.scoping import NATIONAL, RowScope

ONE: ColumnElement[int] = literal_column("1")
"""A LIMIT written into the SQL (see json_page_statement)."""
NO_SUBJECTS: ColumnElement[Any] = literal_column("ARRAY[]::text[]")
"""The data subjects of a statement that joins no owner."""
PROVINCE_OF_OWN_CODE = "code"
"""The link of a region's province: the first two digits of the region's own code."""


@dataclass(frozen=True, slots=True)
class Field:
    """A column's value under a key: as text (`as_text`: an ID or an amount kept as a number),
    or, for an enumeration, the name of its stored value (`names`: stored value, name)."""

    key: str
    column: str
    nullable: bool
    as_text: bool = False
    names: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Fixed:
    """The same text on every object (`__typename`)."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Computed:
    """A value PostgreSQL computes from the row's `columns` with `expression`, the SQL twin of a
    field's resolver, declared beside it (schema/types/records.py)."""

    key: str
    columns: tuple[str, ...]
    expression: Callable[[FromClause], ColumnElement[Any]]
    nullable: bool


@dataclass(frozen=True, slots=True)
class Nested:
    """The region, cooperative, MSME or programme (`target`) whose key the row holds in `link`,
    or the owner (`target` "owner", `link` "id") of the MSME the row is."""

    key: str
    target: str
    link: str
    shape: JsonShape
    nullable: bool


@dataclass(frozen=True, slots=True)
class NestedList:
    """The rows of `target` (a key of LISTED) whose `link` holds the row's `on` (its id, or a
    region's code), as an array of objects in `shape`: empty, never null, where there are none.
    A `limited` list (participations: a programme's participants, a record's participations)
    holds only the rows the caller may read (VISIBLE), the first `first` of them, `first` given
    as a `NestedPage`'s."""

    key: str
    target: str
    link: str
    shape: JsonShape
    on: str = "id"
    limited: bool = False
    first: int | str | None = None


LISTED: dict[str, tuple[TableClause, str]] = {
    "participation": (PARTICIPATIONS, "id"),
    "scale_history": (SCALE_HISTORY, "effective_from"),
    "region": (REGIONS, "code"),
}
"""The table of each list's rows and the column they are in order of, the order their
DataLoaders read them in (db/queries/programmes.py)."""
VISIBLE: dict[str, Callable[[RowScope, FromClause], ColumnElement[bool]]] = {
    "participation": programmes.visible,
}
"""The rows of each target of a `limited` list the caller may read."""


SCOPED: dict[str, TableClause] = {"cooperative": COOPERATIVES, "msme": MSMES}
"""The targets of a `Nested` part that are records: joined only inside the caller's
jurisdiction, as their loaders read them, so one outside it comes out null."""
AUDITED = ("cooperative", "msme", "participation")
"""The kinds of record a statement hands out besides the page's or lookup's own rows, counted
as their resolvers count them (audited as records handed out): a nested record where it is
found, a listed one for each row of its list."""


@dataclass(frozen=True, slots=True)
class Cursor:
    """The row's keyset cursor: base64 of "kind:id", as resolvers.paging.encode_cursor writes
    it. (A change feed's entry has no such cursor: its position is sealed, by the server, not
    by PostgreSQL: resolvers/change_feed.py.)"""

    key: str
    kind: str


@dataclass(frozen=True, slots=True)
class Node:
    """The row itself as an object (an edge's node, a page's `pageInfo`)."""

    key: str
    shape: JsonShape


@dataclass(frozen=True, slots=True)
class PageFact:
    """A fact of a `NestedPage`: "total" (how many rows all its pages hold), "has_next"
    (whether more follow) or "end_cursor" (the cursor of its last row, null when it has
    none)."""

    key: str
    fact: Literal["total", "has_next", "end_cursor"]


@dataclass(frozen=True, slots=True)
class PageRows:
    """A `NestedPage`'s rows as an array of objects in `shape` (its `nodes`, its `edges`)."""

    key: str
    shape: JsonShape


@dataclass(frozen=True, slots=True)
class NestedPage:
    """A connection to the first `first` records of `target` (a key of SCOPED) whose `link`
    holds the row's id, in id order, inside the caller's jurisdiction, as their DataLoader
    pages them (db/queries/msmes.members_of); `first` the size, or the name of the variable
    that gives it (its value in the build's `sizes`), None for the default page size. Its
    object's parts are `Fixed`, `PageFact`, `PageRows` and `Node` (`pageInfo`, of facts)."""

    key: str
    target: str
    link: str
    first: int | str | None
    shape: JsonShape


ShapePart = (
    Field
    | Fixed
    | Computed
    | Nested
    | NestedList
    | NestedPage
    | Cursor
    | Node
    | PageFact
    | PageRows
)
"""One key of a JSON object, and how its value is written."""


@dataclass(frozen=True, slots=True)
class JsonShape:
    """The keys of one JSON object in selection order. Keys, fixed values and cursor kinds are
    GraphQL names (letters, digits, underscores), so they are written into the SQL as they
    are."""

    parts: tuple[ShapePart, ...]
    owner_of: str | None = None
    """The row's column holding the id of an MSME whose owner's NIK the statement reads for the
    audit entry alone, written into no object: the row hands out figures that are the owner's
    finances (domain.personal.OWNER_FINANCES), whoever may read them, so their owner is a data
    subject of the read though none of the owner's fields is selected."""
    owners_kept: str | None = None
    """With `owner_of`, the row's column keeping the NIKs of the owners whose figures it holds
    (a scale history row's, migration 0062): the owner it names, the one on record at the read
    only where the row kept none (NULL, written before that migration)."""


Sizes = tuple[tuple[str, int | None], ...]
"""The values of the variables that give nested pages their sizes, by name: a statement is kept
for each."""


@dataclass(frozen=True, slots=True)
class JsonPage:
    lists: tuple[str, ...]
    """For each shape asked for, the page's rows in it: a JSON array (`nodes`, `edges`)."""
    count: int
    has_next: bool
    last_id: int | None
    records: dict[str, int]
    """By kind (AUDITED), the records the page shows besides its own rows (audited as handed
    out)."""
    subjects: tuple[str, ...]
    """The NIK of each owner the page shows (audited as data subjects)."""


class JsonBuild:
    """The joins and the JSON expression of a shape, made while walking it: `source` is `rows`
    with every join the shapes walked so far need, to select from. `aliases` numbers the joins,
    shared with the builds of the lists inside, whose joins sit in their own subqueries.
    `personal`: the owner's columns an owner's join selects, which the caller's access policy
    decides (none: the shape has no owner). `default_size`: the size of a nested page that
    asks for none (none: the shape has no nested page). `sizes`: the values of the variables
    that give nested pages their sizes, by name (None: the default size)."""

    def __init__(
        self,
        scope: RowScope,
        rows: FromClause,
        aliases: count[int] | None = None,
        *,
        default_size: int | None = None,
        personal: frozenset[str] = frozenset(),
        sizes: Sizes = (),
    ) -> None:
        self.scope = scope
        self.default_size = default_size
        self.personal = personal
        self.sizes = sizes
        self.source = rows
        self.missing: list[ColumnElement[bool]] = []
        """Conditions under which a part that may not be null came out null."""
        self.counts: dict[str, list[ColumnElement[Any]]] = {kind: [] for kind in AUDITED}
        """By kind (AUDITED), how many records of it each row of `source` hands out: one
        number per part that shows them, summed over the rows shown."""
        self.subjects_found: list[ColumnElement[Any]] = []
        """The NIK of each owner joined, null where there is none (audited as data subjects)."""
        self.subjects_listed: list[ColumnElement[Any]] = []
        """The NIKs of the owners the lists and nested pages of a row show, as a JSON array of
        arrays: an aggregate can only hand them up nested, however deep it sits."""
        self._aliases = count(1) if aliases is None else aliases

    def json(self, shape: JsonShape, row: FromClause) -> ColumnElement[Any]:
        arguments: list[Any] = []
        for part in shape.parts:
            arguments.append(literal_column(f"'{part.key}'"))
            if isinstance(part, Fixed):
                arguments.append(literal_column(f"'{part.value}'"))
            elif isinstance(part, Field):
                arguments.append(self._field(part, row))
            elif isinstance(part, Computed):
                arguments.append(self._computed(part, row))
            elif isinstance(part, Cursor):
                arguments.append(_cursor(part.kind, row.c.id))
            elif isinstance(part, Node):
                arguments.append(self.json(part.shape, row))
            elif isinstance(part, NestedList):
                arguments.append(self._list(part, row))
            elif isinstance(part, NestedPage):
                arguments.append(self._page(part, row))
            elif isinstance(part, Nested):
                arguments.append(self._nested(part, row))
            else:
                raise ValueError(f"{part} belongs in a nested page")
        if shape.owner_of is not None:
            self._owner_nik(row, shape.owner_of, shape.owners_kept)
        return func.json_build_object(*arguments)

    def _field(self, part: Field, row: FromClause) -> ColumnElement[Any]:
        value = row.c[part.column]
        if not part.nullable:
            self.missing.append(value.is_(None))
        if part.names:
            named = case(
                *((value == stored, literal_column(f"'{name}'")) for stored, name in part.names),
                else_=null(),
            )
            self.missing.append(and_(value.is_not(None), named.is_(None)))  # a value with no name
            return named
        return cast(value, Text) if part.as_text else value

    def _computed(self, part: Computed, row: FromClause) -> ColumnElement[Any]:
        value = part.expression(row)
        if not part.nullable:
            self.missing.append(value.is_(None))
        return value

    def _nested(self, part: Nested, row: FromClause) -> ColumnElement[Any]:
        """The object `part` points at, looked up by its key row by row: a LATERAL subquery
        with a LIMIT, which PostgreSQL cannot turn into a plain join. As a plain join it
        hashed all 7,838 regions for every page of fifty, which its cost model (a random read
        per probe) rated cheaper than fifty index probes into a table that sits in memory."""
        read: frozenset[str] | set[str] = _columns(part.shape)
        if part.target in SCOPED:
            table, key_column = SCOPED[part.target], "id"
            joined = and_(table.c.id == row.c[part.link], self.scope.rows(table))
        elif part.target == "owner":  # personal data: what the policy lets the caller read
            table, key_column = MSME_OWNERS, "msme_id"
            joined = table.c.msme_id == row.c[part.link]
            if not read <= self.personal:
                raise ValueError(f"the owner's {sorted(read - self.personal)} are not readable")
            read = self.personal
        elif part.target == "programme":  # public reference, like a region
            table, key_column = PROGRAMMES, "id"
            joined = table.c.id == row.c[part.link]
        else:
            table, key_column = REGIONS, "code"
            key: ColumnElement[Any] = row.c[part.link]
            if part.link == PROVINCE_OF_OWN_CODE:  # as resolvers.relations.region_province
                key = func.nullif(func.left(key, 2), NATIONAL)
            joined = table.c.code == key
        columns = sorted({key_column} | read)
        alias = f"{part.target[0]}{next(self._aliases)}"
        target = select(*(table.c[name] for name in columns)).where(joined).limit(ONE)
        probed = target.lateral(alias)
        found = probed.c[key_column]
        if part.target in self.counts:
            one = case((found.is_(None), literal_column("0")), else_=literal_column("1"))
            self.counts[part.target].append(one)
        elif part.target == "owner":
            self.subjects_found.append(probed.c.nik)
        self.source = self.source.outerjoin(probed, true())
        outer, self.missing = self.missing, []
        json = self.json(part.shape, probed)
        if self.missing:  # its own fields count only where it was found
            outer.append(and_(found.is_not(None), or_(*self.missing)))
        if not part.nullable:
            outer.append(found.is_(None))
        self.missing = outer
        return case((found.is_(None), null()), else_=json)

    def _owner_nik(self, row: FromClause, owner_of: str, kept: str | None) -> None:
        """The NIK of the owner of the MSME in `row`'s column `owner_of`, probed by the owners'
        primary key as `_nested` probes an owner, written into no object and handed up with the
        NIKs of the owners the row shows (audited as data subjects); where the row keeps whose
        figures it holds (`kept`, at most one owner: a scale history row's), that one."""
        nik = MSME_OWNERS.c.nik
        probe = select(nik).where(MSME_OWNERS.c.msme_id == row.c[owner_of]).limit(ONE)
        probed = probe.lateral(f"s{next(self._aliases)}")
        self.source = self.source.outerjoin(probed, true())
        found: ColumnElement[Any] = probed.c.nik
        if kept is not None:
            found = case((row.c[kept].is_(None), found), else_=row.c[kept][1])
        self.subjects_found.append(found)

    def _list(self, part: NestedList, row: FromClause) -> ColumnElement[Any]:
        """The rows pointing at `row` as one JSON array, aggregated by a LATERAL subquery,
        which also says how many records of each kind it shows (the rows listed, and what they
        show in turn: audited as handed out) and whether a part of theirs that may not be null
        came out null. It is one row for every row it is joined to, so the page's counts stay as
        they were."""
        table, order = LISTED[part.target]
        number = next(self._aliases)
        name = f"{part.target[0]}{number}"
        rows: FromClause
        if part.limited:  # numbered like a nested page's rows, the first shown
            first = self._size(part.first)
            where = [table.c[part.link] == row.c[part.on], VISIBLE[part.target](self.scope, table)]
            read = {"id", order} | _columns(part.shape)
            rows = _first_rows(table, read, where, first).correlate(row).lateral(name)
            shown: ColumnElement[bool] | None = rows.c.n <= literal_column(str(first))
            joined = None
        else:
            rows = table.alias(name)
            shown, joined = None, rows.c[part.link] == row.c[part.on]
        inner = self._inner(rows)
        objects = inner._objects(part.shape, rows, order_by=rows.c[order], shown=shown)
        listed = self._aggregated(
            inner,
            part.target,
            [objects.label("list")],
            where=joined,
            shown=shown,
            name=f"l{number}",
        )
        return listed.c.list

    def _size(self, first: int | str | None) -> int:
        """The size of a nested page or limited list: the document's, its variable's value in
        `sizes`, or the default."""
        size = dict(self.sizes)[first] if isinstance(first, str) else first
        if size is None:
            size = self.default_size
        if size is None:
            raise ValueError("a nested size left to the default, in a build without one")
        return size

    def _page(self, part: NestedPage, row: FromClause) -> ColumnElement[Any]:
        """The connection `part` describes. Its first rows are aggregated by a LATERAL
        subquery, as a page's statement aggregates its own (json_page_statement), with the
        records they show counted (audited as handed out) and their non-null parts checked;
        its total, when asked, is counted apart, over all its pages."""
        table = SCOPED[part.target]
        first = self._size(part.first)
        number = next(self._aliases)
        scoped = and_(table.c[part.link] == row.c.id, self.scope.rows(table))
        listed = [piece for piece in part.shape.parts if isinstance(piece, PageRows)]
        read = {"id"}.union(*(_columns(piece.shape) for piece in listed))
        rows = (
            _first_rows(table, read, [scoped], first)
            .correlate(row)  # the row is two levels up: not found on its own
            .lateral(f"{part.target[0]}{number}")
        )
        inner = self._inner(rows)
        shown = rows.c.n <= literal_column(str(first))
        # by position, not by the client's key, which may be any name below (`has_next`,
        # `msme`, `missing`...): the JSON object names the rows by key, as a string
        labels = {piece.key: f"k{place}" for place, piece in enumerate(listed)}
        columns: list[Any] = [
            inner._objects(piece.shape, rows, order_by=rows.c.id, shown=shown).label(
                labels[piece.key]
            )
            for piece in listed
        ]
        columns.append((func.count() > literal_column(str(first))).label("has_next"))
        columns.append(func.max(rows.c.id).filter(shown).label("end_id"))
        paged = self._aggregated(inner, part.target, columns, shown=shown, name=f"l{number}")
        facts: dict[str, ColumnElement[Any]] = {
            "total": select(func.count()).select_from(table).where(scoped).scalar_subquery(),
            "has_next": paged.c.has_next,
            "end_cursor": case(
                (paged.c.end_id.is_(None), null()), else_=_cursor(part.target, paged.c.end_id)
            ),
        }

        def connection(shape: JsonShape) -> ColumnElement[Any]:
            arguments: list[Any] = []
            for piece in shape.parts:
                arguments.append(literal_column(f"'{piece.key}'"))
                if isinstance(piece, Fixed):
                    arguments.append(literal_column(f"'{piece.value}'"))
                elif isinstance(piece, PageFact):
                    arguments.append(facts[piece.fact])
                elif isinstance(piece, PageRows):
                    arguments.append(paged.c[labels[piece.key]])
                elif isinstance(piece, Node):
                    arguments.append(connection(piece.shape))
                else:
                    raise ValueError(f"{piece} is not part of a page")
            return func.json_build_object(*arguments)

        return connection(part.shape)

    def _inner(self, rows: FromClause) -> JsonBuild:
        """The build of a list's or nested page's rows, under this one's access."""
        return JsonBuild(
            self.scope,
            rows,
            self._aliases,
            default_size=self.default_size,
            personal=self.personal,
            sizes=self.sizes,
        )

    def _aggregated(
        self,
        inner: JsonBuild,
        target: str,
        columns: list[Any],
        *,
        name: str,
        where: ColumnElement[bool] | None = None,
        shown: ColumnElement[bool] | None = None,
    ) -> FromClause:
        """`columns` aggregated over `inner`'s rows (those `shown`) by a LATERAL subquery
        joined to this build's rows, one row for each of them, so their counts stay as they
        were. With them, how many records of each kind the rows show (each row one of
        `target`, and what they show in turn: audited as handed out), the NIKs of the owners
        they show (audited as data subjects) and whether a part of theirs that may not be null
        came out null, all passed up to this build."""
        if target in inner.counts:
            inner.counts[target].append(literal_column("1"))  # each row aggregated
        counted = [kind for kind, numbers in inner.counts.items() if numbers]
        columns = [*columns, *(_summed(inner.counts[kind], shown).label(kind) for kind in counted)]
        if inner.missing:
            columns.append(inner.any_missing(shown).label("missing"))
        if inner.subjects_found or inner.subjects_listed:
            columns.append(inner.subjects_of_rows(shown).label("subjects"))
        aggregate = select(*columns).select_from(inner.source)
        if where is not None:
            aggregate = aggregate.where(where)
        joined = aggregate.lateral(name)
        self.source = self.source.outerjoin(joined, true())
        for kind in counted:
            self.counts[kind].append(joined.c[kind])
        if inner.missing:
            self.missing.append(joined.c.missing)
        if inner.subjects_found or inner.subjects_listed:
            self.subjects_listed.append(joined.c.subjects)
        return joined

    def subjects_of_row(self) -> ColumnElement[Any]:
        """The NIKs a row shows, its owners' and its lists', as a JSON array of arrays (null
        where an owner is missing), for `_flattened` to read."""
        return func.jsonb_build_array(*self.subjects_found, *self.subjects_listed)

    def subjects_of_rows(self, shown: ColumnElement[bool] | None = None) -> ColumnElement[Any]:
        """`subjects_of_row` of every (`shown`) row, in one JSON array."""
        aggregated = func.jsonb_agg(self.subjects_of_row())
        return aggregated if shown is None else aggregated.filter(shown)

    def array(
        self,
        shape: JsonShape,
        rows: FromClause,
        *,
        order_by: Any,
        shown: ColumnElement[bool] | None = None,
    ) -> ColumnElement[str]:
        """The JSON array, as text, of the (`shown`) rows in `shape`, in `order_by` order."""
        return cast(self._objects(shape, rows, order_by=order_by, shown=shown), Text)

    def _objects(
        self,
        shape: JsonShape,
        rows: FromClause,
        *,
        order_by: Any,
        shown: ColumnElement[bool] | None,
    ) -> ColumnElement[Any]:
        objects = func.json_agg(aggregate_order_by(self.json(shape, rows), order_by))
        shown_objects = objects if shown is None else objects.filter(shown)
        return func.coalesce(shown_objects, literal_column("'[]'::json"))

    def any_missing(self, shown: ColumnElement[bool] | None = None) -> ColumnElement[bool]:
        """Whether a part that may not be null came out null in any of the (`shown`) rows."""
        found = func.bool_or(or_(false(), *self.missing))
        return func.coalesce(found if shown is None else found.filter(shown), false())


def _first_rows(
    table: TableClause, read: set[str], where: Sequence[ColumnElement[bool]], first: int
) -> Select[Any]:
    """The `read` columns of the first `first` rows of `table` (`where`) in id order, numbered
    `n`, and one more, which tells whether a next page follows. The size is written into the
    SQL (see json_page_statement)."""
    return (
        select(
            *(table.c[name] for name in sorted(read)),
            func.row_number().over(order_by=table.c.id).label("n"),
        )
        .where(*where)
        .order_by(table.c.id)
        .limit(literal_column(str(int(first) + 1)))
    )


def _cursor(kind: str, position: ColumnElement[Any]) -> ColumnElement[str]:
    """base64.urlsafe_b64encode of "kind:position", as resolvers.paging.encode_cursor writes it
    (a cursor stays well under the 76 characters after which PostgreSQL would break the line)."""
    plain = func.convert_to(literal_column(f"'{kind}:'", Text) + cast(position, Text), "UTF8")
    return func.translate(func.encode(plain, "base64"), "+/", "-_")


SUBJECTS_IN_JSON: ColumnElement[Any] = literal_column(
    """'strict $.** ? (@.type() == "string")'::jsonpath"""
)
"""Every string of a JSON value, however deeply nested: the NIKs of `subjects_of_rows`."""


def _flattened(listed: ColumnElement[Any]) -> ColumnElement[Any]:
    """The NIKs of a JSON value of nested arrays (`subjects_of_rows`), as a text array."""
    strings = func.jsonb_path_query_array(listed, SUBJECTS_IN_JSON)
    niks = func.jsonb_array_elements_text(strings).table_valued("value")
    return func.array(select(niks.c.value).select_from(niks).scalar_subquery())


def _summed(
    numbers: Sequence[ColumnElement[Any]], shown: ColumnElement[bool] | None = None
) -> ColumnElement[int]:
    """The sum of `numbers` over the rows aggregated (those `shown`), 0 where there are none."""
    if not numbers:
        return literal_column("0")
    total = func.sum(_added(numbers))
    filtered = total if shown is None else total.filter(shown)
    return cast(func.coalesce(filtered, literal_column("0")), BigInteger)


def _added(numbers: Sequence[ColumnElement[Any]]) -> ColumnElement[int]:
    """The numbers of one row added up (a lookup's, whose statement has no aggregate)."""
    if not numbers:
        return literal_column("0")
    first, *rest = numbers
    return sum(rest, start=first)


def _columns(shape: JsonShape) -> set[str]:
    """The row columns a shape reads itself (its nested objects read their own tables)."""
    names = {name for name in (shape.owner_of, shape.owners_kept) if name is not None}
    for part in shape.parts:
        if isinstance(part, Field):
            names.add(part.column)
        elif isinstance(part, Computed):
            names.update(part.columns)
        elif isinstance(part, Nested):
            names.add(part.link)
        elif isinstance(part, Cursor):
            names.add("id")
        elif isinstance(part, NestedList):
            names.add(part.on)
        elif isinstance(part, NestedPage):
            names.add("id")
        elif isinstance(part, Node):
            names |= _columns(part.shape)
    return names


def _key(table: TableClause) -> str:
    """The column of `table`'s primary key: its id, a region's code."""
    (column,) = table.primary_key
    return column.name


def json_page_statement(
    table: Table,
    shapes: Sequence[JsonShape],
    *,
    where: Sequence[ColumnElement[bool]],
    scope: RowScope,
    personal: frozenset[str],
    default_size: int,
    sizes: Sizes,
    first: int,
    after: bool,
    peeked: bool,
) -> DriverStatement:
    """The statement for pages of `first` rows of `table`, one JSON array of them in each of
    `shapes`, from the start or (with `after`) after the row whose id `fetch_json_page` binds.
    With `peeked`, the owners it names include the owner of the row read past the page, whose
    `hasNextPage` tells what the filter tells of it (the owner the row's shape probes or joins,
    not those its lists show: they are not told).
    Building it costs more CPU than PostgreSQL takes to run it, so callers keep it for the next
    page of the same kind.

    The page size is written into the SQL, not bound: PostgreSQL plans a prepared statement
    once for any value, and for a LIMIT it cannot see it plans for a tenth of the table, which
    turns fifty index probes into a scan of every cooperative in the province.
    """
    size: ColumnElement[int] = literal_column(str(int(first)))
    if after:
        where = [*where, table.c.id > bindparam("after", type_=BigInteger)]
    read = {"id"}.union(*map(_columns, shapes))
    rows = _first_rows(table, read, where, first).subquery("p")
    build = JsonBuild(scope, rows, default_size=default_size, personal=personal, sizes=sizes)
    shown = rows.c.n <= size
    lists = [build.array(shape, rows, order_by=rows.c.id, shown=shown) for shape in shapes]
    subjects = _subjects_of_rows(build, shown)
    if peeked:
        subjects = subjects + _subjects_found(build, rows.c.n > size)
    columns: list[Any] = [
        *lists,
        func.count(),
        func.max(rows.c.id).filter(shown),
        subjects,
        build.any_missing(shown),
        *(_summed(build.counts[kind], shown) for kind in AUDITED),
    ]
    return DriverStatement(select(*columns).select_from(build.source))


def _subjects_of_rows(
    build: JsonBuild, shown: ColumnElement[bool] | None = None
) -> ColumnElement[Any]:
    """The NIKs of the owners the (`shown`) rows of `build` show, as a text array."""
    if build.subjects_listed:
        return _flattened(build.subjects_of_rows(shown))
    # owners only on the rows themselves: one array per owner, without the JSON's detour
    return _subjects_found(build, true() if shown is None else shown)


def _subjects_found(build: JsonBuild, rows: ColumnElement[bool]) -> ColumnElement[Any]:
    """The NIKs of the owners `build` probes or joins on its `rows` themselves (not those its
    lists show), as a text array."""
    return sum(
        (func.array_agg(nik).filter(and_(rows, nik.is_not(None))) for nik in build.subjects_found),
        start=NO_SUBJECTS,
    )


async def fetch_json_page(
    connection: Pooled, statement: DriverStatement, *, first: int, after: int | None
) -> JsonPage | None:
    """One keyset page as JSON, `first` being the size the statement was built for; None when a
    non-null field or relation turns out null (the executor then reports it, as it reports
    everything else)."""
    (row,) = await fetch(connection, statement, {} if after is None else {"after": after})
    values = tuple(row)
    counted = len(values) - len(AUDITED)
    *lists, fetched, last_id, subjects, missing = values[:counted]
    if missing:
        return None
    return JsonPage(
        lists=tuple(lists),
        count=min(fetched, first),
        has_next=fetched > first,
        last_id=last_id,
        records=dict(zip(AUDITED, values[counted:], strict=True)),
        subjects=tuple(subjects),
    )


@dataclass(frozen=True, slots=True)
class JsonRecord:
    json: str
    """The record as a JSON object, or every record of a list as a JSON array."""
    records: dict[str, int]
    """By kind (AUDITED), the records it shows besides itself (audited as handed out)."""
    subjects: tuple[str, ...]
    """The NIKs of the owners it shows (audited as data subjects)."""


def json_record_statement(
    table: TableClause,
    shape: JsonShape,
    *,
    key: str,
    scope: RowScope,
    personal: frozenset[str],
    default_size: int,
    sizes: Sizes,
) -> DriverStatement:
    """The statement for the one record of `table` whose unique column `key` equals the value
    `fetch_json_record` binds, inside `scope`, as a JSON object of `shape`, built like
    a page's rows. Callers keep it for the next lookup of the same shape and caller."""
    record = (
        select(*(table.c[name] for name in sorted({_key(table)} | _columns(shape))))
        .where(_found_by(table, key), scope.rows(table))
        .subquery("p")
    )
    build = JsonBuild(scope, record, default_size=default_size, personal=personal, sizes=sizes)
    json = build.json(shape, record)
    subjects = NO_SUBJECTS
    if build.subjects_listed:
        subjects = _flattened(build.subjects_of_row())
    elif build.subjects_found:
        subjects = func.array_remove(array(build.subjects_found), null())
    columns: list[Any] = [
        cast(json, Text),
        subjects,
        or_(false(), *build.missing),
        *(_added(build.counts[kind]) for kind in AUDITED),
    ]
    return DriverStatement(select(*columns).select_from(build.source))


def _found_by(table: TableClause, key: str) -> ColumnElement[bool]:
    """The record whose `key` is the bound value, found as a lookup by it is found elsewhere:
    a legal-entity number in any case (db/queries/cooperatives.py `legal_entity_no_is`)."""
    column = table.c[key]
    value = bindparam("key", type_=column.type)
    if column is COOPERATIVES.c.legal_entity_no:
        return legal_entity_no_is(value)
    return column == value


async def fetch_json_record(
    connection: Pooled, statement: DriverStatement, key: int | str
) -> JsonRecord | Literal[False] | None:
    """The record, None when there is none, or False when a non-null field or relation turns
    out null (the executor then reports it, as it reports everything else)."""
    rows = await fetch(connection, statement, {"key": key})
    return _json_record(rows[0]) if rows else None


def json_list_statement(
    table: TableClause,
    shape: JsonShape,
    *,
    scope: RowScope,
    personal: frozenset[str],
    default_size: int,
    sizes: Sizes,
) -> DriverStatement:
    """The statement for every record of `table` inside `scope`, in key order, as one JSON
    array of objects in `shape`, built like a page's rows (a list of public reference records,
    such as the programmes: short enough to need no page). Callers keep it for the next request
    of the same shape and caller."""
    key = _key(table)
    rows = (
        select(*(table.c[name] for name in sorted({key} | _columns(shape))))
        .where(scope.rows(table))
        .subquery("p")
    )
    build = JsonBuild(scope, rows, default_size=default_size, personal=personal, sizes=sizes)
    columns: list[Any] = [
        build.array(shape, rows, order_by=rows.c[key]),
        _subjects_of_rows(build),
        build.any_missing(),
        *(_summed(build.counts[kind]) for kind in AUDITED),
    ]
    return DriverStatement(select(*columns).select_from(build.source))


async def fetch_json_list(
    connection: Pooled, statement: DriverStatement
) -> JsonRecord | Literal[False]:
    """The records of a `json_list_statement`, or False when a non-null field or relation turns
    out null (the executor then reports it, as it reports everything else)."""
    (row,) = await fetch(connection, statement, {})
    return _json_record(row)


def _json_record(row: Row) -> JsonRecord | Literal[False]:
    json, subjects, missing, *counts = row
    if missing:
        return False
    return JsonRecord(json, dict(zip(AUDITED, counts, strict=True)), tuple(subjects))
