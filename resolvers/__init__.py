"""How each field gets its data: argument checks, per-request loaders and calls into db/queries."""

from typing import Any

Node = Any
"""A database row serving directly as a GraphQL object: Strawberry reads its attributes by name,
so no Python object is built per row. Typed Any because one row stands for whichever type the
schema declares for the field."""
