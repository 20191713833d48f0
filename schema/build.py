"""The schema object and its SDL."""

from __future__ import annotations

import strawberry
from strawberry.schema.config import StrawberryConfig

from schema.audit import AuditTrail
from schema.errors import CodedParserCache, CodedSchema, ErrorCodes
from schema.execution import EmbeddingExecutionContext
from schema.input_conversion import compile_inputs
from schema.introspection import ClientIntrospection
from schema.mutation import Mutation
from schema.query import Query
from schema.query_limits import QueryLimits
from schema.scalars import SCALARS
from schema.types.change_feed import Subscription
from schema.validation import SharedValidation
from schema.visible import ClientSchemas
from schema.websocket import SubscriptionsOnlyOverWebSocket


def build_schema(
    *,
    max_batch: int = 10,
    max_cost: int = QueryLimits().max_cost,
    max_tokens: int = QueryLimits().max_tokens,
) -> strawberry.Schema:
    """Parsing and validation are cached: integrations send the same few documents all day.
    `max_cost` bounds what one introspection may resolve, as it bounds any query."""
    clients = ClientSchemas(lambda: schema.as_str())  # read on first use, once `schema` exists
    schema = CodedSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        extensions=[
            ErrorCodes,
            AuditTrail,
            SubscriptionsOnlyOverWebSocket,
            lambda: ClientIntrospection(clients, max_cost=max_cost),
            lambda: CodedParserCache(max_tokens),
            SharedValidation,
        ],
        execution_context_class=EmbeddingExecutionContext,
        config=StrawberryConfig(
            scalar_map=SCALARS,
            sort_schema=True,
            batching_config={"max_operations": max_batch},
        ),
    )
    compile_inputs((Query, Mutation))
    return schema


def sdl() -> str:
    return build_schema().as_str() + "\n"
