"""Which selections of a page PostgreSQL can build as JSON (db/queries/json_pages.py) exactly
as graphql-core would serialise them.

Strings, booleans, 32-bit integers and IDs read straight from columns of those types, the
constant `__typename`, and region or cooperative relations made of the same. Anything else (an
enum, a date, an amount of money, a list) keeps the Python renderer of schema/direct_shapes.py,
whose serialisers are graphql-core's own.
"""

from __future__ import annotations

from graphql import GraphQLBoolean, GraphQLID, GraphQLInt, GraphQLString
from sqlalchemy import BigInteger, Boolean, Enum, Integer, String, Table

from db.queries.json_pages import COOPERATIVES, REGIONS, Field, Fixed, JsonShape, Nested
from schema.direct_shapes import Constant, Items, Leaf, Shape

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
        elif isinstance(part, Items) or part.link.column not in table.c:
            return None
        else:
            inner = json_shape(part.shape, TARGET_TABLES[part.target])
            if inner is None:
                return None
            parts.append(Nested(part.key, part.target, part.link.column, inner, part.nullable))
    return JsonShape(tuple(parts))


def _field(leaf: Leaf, table: Table) -> Field | None:
    column = table.c.get(leaf.column)
    if column is None or isinstance(column.type, Enum):
        return None
    kind, serialize = column.type, leaf.serialize
    text, integer = isinstance(kind, String), isinstance(kind, Integer)
    if (
        (serialize is GraphQLString.serialize and text)
        or (serialize is GraphQLBoolean.serialize and isinstance(kind, Boolean))
        # graphql-core refuses integers beyond 32 bits; a BIGINT column may hold one
        or (serialize is GraphQLInt.serialize and integer and not isinstance(kind, BigInteger))
    ):
        return Field(leaf.key, leaf.column, leaf.nullable)
    if serialize is GraphQLID.serialize and (text or integer):
        return Field(leaf.key, leaf.column, leaf.nullable, as_text=True)
    return None
