"""A request's context is freed as soon as the request lets it go, on either execution path.

The bug: the audit's naming of the request (`Context.audited`) held a function holding the
context, so every request's context, its loaders and its notes waited for the cyclic garbage
collector, and were promoted to its older generations at any real request rate."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable

import pytest

from auth.scopes import OrgKind
from db.engine import create_engine
from resolvers.context import Context
from schema.engine import Engine
from tests.support.databases import as_service
from tests.support.graphql import SCHEMA, principal, request_context

QUERY = "query Owners { msmes(first: 1) { nodes { nib owner { nik } } } }"


async def _by_the_engine(context: Context) -> None:
    answer = await Engine(SCHEMA).answer(context, {"query": QUERY})
    assert answer is not None
    assert "errors" not in answer, answer


async def _by_the_schema(context: Context) -> None:
    result = await SCHEMA.execute(QUERY, context_value=context)
    assert result.errors is None, result.errors


@pytest.mark.parametrize("execute", [_by_the_engine, _by_the_schema], ids=["engine", "schema"])
def test_a_request_s_context_is_freed_without_the_cyclic_collector(
    module_reference_url: str, execute: Callable[[Context], Awaitable[None]]
) -> None:
    async def answered() -> bool:
        engine = create_engine(as_service(module_reference_url), statement_timeout_ms=30_000)
        try:
            context = request_context(engine, principal(OrgKind.PROVINCE, "62"))
            await execute(context)
            assert context.audited is not None  # named, as every request is
            held = weakref.ref(context)
            gc.collect()
            gc.disable()
            try:
                del context
                return held() is None
            finally:
                gc.enable()
        finally:
            await engine.dispose()

    assert asyncio.run(answered())


def test_serving_collects_the_young_generation_less_often_and_stops_at_the_app_s_end(
    module_reference_url: str,
) -> None:
    """With no cycle left behind by a request, the young generation's collections set off by
    bursts of allocation found nothing to free, each walking every request in flight: while
    the app serves they wait for YOUNG_OBJECTS, and once it stops the threshold is what it
    was, for whatever else the process runs."""
    from sinergi.app import YOUNG_OBJECTS
    from tests.support.http import served

    before = gc.get_threshold()
    with served(module_reference_url):
        assert gc.get_threshold() == (YOUNG_OBJECTS, *before[1:])
    assert gc.get_threshold() == before
