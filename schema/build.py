"""The schema object and its SDL."""

from __future__ import annotations

import strawberry
from strawberry.extensions import ValidationCache
from strawberry.schema.config import StrawberryConfig

from schema.audit import AuditTrail
from schema.errors import CodedParserCache, ErrorCodes
from schema.introspection import IntrospectionPolicy, policy
from schema.mutation import Mutation
from schema.query import Query
from schema.scalars import SCALARS


def build_schema(*, max_batch: int = 10, introspection: str = "all") -> strawberry.Schema:
    """Parsing and validation are cached: integrations send the same few documents all day."""
    allows = policy(introspection)
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        extensions=[
            ErrorCodes,
            AuditTrail,
            lambda: IntrospectionPolicy(allows),
            lambda: CodedParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
        config=StrawberryConfig(
            scalar_map=SCALARS,
            sort_schema=True,
            batching_config={"max_operations": max_batch},
        ),
    )


def sdl() -> str:
    return build_schema().as_str() + "\n"
