"""Run GraphQL documents through the real schema as a given principal (no HTTP)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types import ExecutionResult

from auth.principal import Principal
from auth.scopes import DEFAULT_SCOPES, OrgKind, Scope
from resolvers.context import Context, Limits
from schema.build import build_schema

SCHEMA = build_schema()
LIMITS = Limits(max_page_size=100, default_page_size=20)


def principal(
    org_kind: OrgKind, jurisdiction: str, *, extra: frozenset[Scope] = frozenset()
) -> Principal:
    return Principal(
        client_id=f"test-{org_kind.value}-{jurisdiction}",
        org_kind=org_kind,
        jurisdiction=jurisdiction,
        scopes=DEFAULT_SCOPES[org_kind] | extra,
    )


async def run(
    engine: AsyncEngine, who: Principal, document: str, variables: dict[str, Any] | None = None
) -> Any:
    context = Context(principal=who, engine=engine, limits=LIMITS)
    result = await SCHEMA.execute(document, variable_values=variables, context_value=context)
    return as_sent(result)


def as_sent(result: ExecutionResult) -> ExecutionResult:
    """The result with its data as the client reads it: JSON that PostgreSQL wrote
    (schema/compiled.py) is embedded in the response as text, and decoded here."""
    if result.data is not None:
        result.data = orjson.loads(orjson.dumps(result.data))
    return result
