"""Which columns a query needs, read from the GraphQL selection before any SQL runs.

A field declares the columns it reads in its metadata (`metadata={"columns": (...)}`); a plain
field reads the column named like its Python attribute. A page then selects exactly the columns
its selection touches, and a personal-data table is never joined when no such field is asked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from strawberry.types import Info
from strawberry.types.base import get_object_definition
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection
from strawberry.utils.str_converters import to_camel_case


def _fields(selections: Iterable[Selection]) -> Iterable[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, (FragmentSpread, InlineFragment)):
            yield from _fields(selection.selections)


def _children(selections: Iterable[Selection], name: str) -> list[Selection]:
    found: list[Selection] = []
    for field in _fields(selections):
        if field.name == name:
            found.extend(field.selections)
    return found


def node_selection(info: Info[Any, Any]) -> list[Selection]:
    """The selection on the nodes of a connection, whether asked as `nodes` or `edges.node`."""
    top = object_selection(info)
    return _children(top, "nodes") + _children(_children(top, "edges"), "node")


def hands_out_rows(selections: Iterable[Selection]) -> bool:
    """Whether a selection on a connection hands out which records are on the page: its `nodes`
    or `edges` (an edge's cursor alone names its record), `pageInfo.endCursor`, which names the
    last, or `pageInfo.hasNextPage` (`peeks_past_page`). The one rule of both paths
    (resolvers/records.py, schema/compiled.py); a `totalCount` alone names no record."""
    selections = list(selections)
    return (
        is_selected(selections, "nodes")
        or is_selected(selections, "edges")
        or is_selected(_children(selections, "pageInfo"), "endCursor")
        or peeks_past_page(selections)
    )


def peeks_past_page(selections: Iterable[Selection]) -> bool:
    """Whether a selection on a connection asks `pageInfo.hasNextPage`, answered by the row read
    past the page: after a made-up cursor it tells whether `first` + 1 records the filter keeps
    follow any id, so that walking the ids finds each of them. What the filter tells of the
    page's rows it tells of that row too."""
    return is_selected(_children(list(selections), "pageInfo"), "hasNextPage")


def object_selection(info: Info[Any, Any]) -> list[Selection]:
    """The selection on the object this field returns, merged over every time the document
    selects the field under the same key (GraphQL answers them as one)."""
    return [selection for field in info.selected_fields for selection in field.selections]


def is_selected(selections: Iterable[Selection], name: str) -> bool:
    return any(field.name == name for field in _fields(selections))


def selects(info: Info[Any, Any], *path: str) -> bool:
    """Whether the selection on the object this field returns reaches `path`, each name a field
    of the one before (a feed page's `entries`, then their `record`)."""
    *parents, last = path
    selections = object_selection(info)
    for name in parents:
        selections = _children(selections, name)
    return is_selected(selections, last)


@cache
def _column_map(graphql_type: type) -> dict[str, tuple[str, ...]]:
    definition = get_object_definition(graphql_type, strict=True)
    mapping: dict[str, tuple[str, ...]] = {}
    for field in definition.fields:
        name = field.graphql_name or to_camel_case(field.python_name)
        metadata: Mapping[str, Any] = field.metadata or {}
        declared = metadata.get("columns")
        if declared is not None:
            mapping[name] = tuple(declared)
        elif field.base_resolver is None:
            mapping[name] = (field.python_name,)
    return mapping


def _columns(graphql_type: type, selections: Iterable[Selection]) -> frozenset[str]:
    mapping = _column_map(graphql_type)
    columns: set[str] = set()
    for field in _fields(selections):
        columns.update(mapping.get(field.name, ()))
    return frozenset(columns)


def _unwrap(annotation: Any) -> Any:
    while hasattr(annotation, "of_type"):
        annotation = annotation.of_type
    return annotation


def selected_columns(info: Info[Any, Any]) -> frozenset[str]:
    """Columns needed for the object this field returns."""
    return _columns(_unwrap(info.return_type), object_selection(info))


def node_columns(info: Info[Any, Any]) -> frozenset[str]:
    """Columns needed for the nodes of the connection this field returns."""
    connection = get_object_definition(_unwrap(info.return_type), strict=True)
    nodes = next(field for field in connection.fields if field.python_name == "nodes")
    return _columns(_unwrap(nodes.type), node_selection(info))
