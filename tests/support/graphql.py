"""Run GraphQL documents through the real schema as a given principal (no HTTP)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.types import ExecutionResult

from auth.principal import Principal
from auth.scopes import DEFAULT_SCOPES, OrgKind, Scope
from db.engine import autocommit
from db.queries.audit import AuditWriter
from resolvers.context import Context, Limits
from schema.build import build_schema
from tests.support.databases import TEST_SERVICE
from tests.support.feed_cursors import cursor_seal, default_audit_key

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


def request_context(
    engine: AsyncEngine, who: Principal, *, audit_writer: AuditWriter | None = None
) -> Context:
    """A request's context on `engine`, which must connect as the service role, as the app does
    (tests.support.databases.as_service): as the owner, a grant db/roles.py lacks would go
    unnoticed. Without `audit_writer`, entries are signed with the tests' default audit key."""
    user = engine.url.username
    assert user == TEST_SERVICE, (
        f"GraphQL in tests runs as the service role {TEST_SERVICE!r}, as the app does, not as "
        f"{user!r}: make the engine with create_engine(as_service(url), ...)"
    )
    return Context(
        principal=who,
        engine=engine,
        limits=LIMITS,
        cursor_seal=cursor_seal(),
        audit=audit_writer or AuditWriter(autocommit(engine), default_audit_key()),
    )


async def run(
    engine: AsyncEngine, who: Principal, document: str, variables: dict[str, Any] | None = None
) -> Any:
    """`document` executed as `who`, on `engine` as the service role (`request_context`)."""
    result = await SCHEMA.execute(
        document, variable_values=variables, context_value=request_context(engine, who)
    )
    return as_sent(result)


def as_sent(result: ExecutionResult) -> ExecutionResult:
    """The result with its data as the client reads it: JSON that PostgreSQL wrote
    (schema/compiled.py) is embedded in the response as text, and decoded here."""
    if result.data is not None:
        result.data = orjson.loads(orjson.dumps(result.data))
    return result
