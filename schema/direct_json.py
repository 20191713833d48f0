"""Which selections of a page PostgreSQL can build as JSON (db/queries/json_pages.py) exactly
as graphql-core would serialise them.

Strings, booleans, 32-bit integers, dates, IDs and rupiah amounts read straight from columns of
matching types, enumerations kept as text, the constant `__typename`, and region or cooperative
relations made of the same. Anything else keeps the Python renderer of schema/direct_shapes.py,
whose serialisers are graphql-core's own.
"""

from __future__ import annotations

from enum import Enum

from graphql import GraphQLEnumType
from sqlalchemy import BigInteger, Boolean, Date, Integer, String, Table

from db.queries.json_pages import COOPERATIVES, REGIONS, Field, Fixed, JsonShape, Nested
from schema.direct_shapes import Constant, Derived, Items, Leaf, Shape

TARGET_TABLES = {"region": REGIONS, "cooperative": COOPERATIVES}


def json_shape(shape: Shape, table: Table) -> JsonShape | None:
    """The shape for rows of `table`, or None if PostgreSQL's JSON could differ anywhere."""
    parts: list[Field | Fixed | Nested] = []
    for part in shape.parts:
        if isinstance(part, Constant):
            parts.append(Fixed(part.key, part.value))
        elif isinstance(part, Leaf):
            field = _field(part, table)
            if field is None:
                return None
            parts.append(field)
        elif isinstance(part, Items | Derived) or part.link.column not in table.c:
            return None
        else:
            inner = json_shape(part.shape, TARGET_TABLES[part.target])
            if inner is None:
                return None
            parts.append(Nested(part.key, part.target, part.link.column, inner, part.nullable))
    return JsonShape(tuple(parts))


def _field(leaf: Leaf, table: Table) -> Field | None:
    column = table.c.get(leaf.column)
    if column is None:
        return None
    kind, graphql_type = column.type, leaf.kind
    text, integer = isinstance(kind, String), isinstance(kind, Integer)
    if isinstance(graphql_type, GraphQLEnumType):
        names = _names(graphql_type)
        return Field(leaf.key, leaf.column, leaf.nullable, names=names) if text and names else None
    plain = {
        "String": text,
        "Boolean": isinstance(kind, Boolean),
        # graphql-core refuses integers beyond 32 bits; a BIGINT column may hold one
        "Int": integer and not isinstance(kind, BigInteger),
        "Date": isinstance(kind, Date),  # to_json writes a date as isoformat() does
    }
    if plain.get(graphql_type.name):
        return Field(leaf.key, leaf.column, leaf.nullable)
    if (graphql_type.name == "ID" and (text or integer)) or (
        graphql_type.name == "Rupiah" and integer
    ):
        return Field(leaf.key, leaf.column, leaf.nullable, as_text=True)
    return None


def _names(enum: GraphQLEnumType) -> tuple[tuple[str, str], ...]:
    """(stored value, name) of each member, as the enum's own serialiser maps them; empty if a
    member is not stored as text."""
    pairs: list[tuple[str, str]] = []
    for name, member in enum.values.items():
        stored = member.value.value if isinstance(member.value, Enum) else member.value
        if not isinstance(stored, str) or enum.serialize(stored) != name:
            return ()
        pairs.append((stored, name))
    return tuple(pairs)
