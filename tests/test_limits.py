"""The document checks of schema/limits.py on their own; HTTP behaviour is tested elsewhere."""

from __future__ import annotations

from dataclasses import replace

from graphql import parse

from auth.scopes import OrgKind
from db.engine import create_engine
from resolvers.context import Context
from schema.build import build_schema
from schema.limits import QueryLimits, check_document
from tests.support.graphql import LIMITS as PAGE_LIMITS
from tests.support.graphql import principal

LIMITS = QueryLimits(max_depth=12, max_aliases=30, max_cost=50_000, default_page_size=20)


def _nested(depth: int) -> str:
    return "{ " + "a { " * depth + "b" + " }" * (depth + 1)


def test_a_shallow_query_passes() -> None:
    assert check_document(parse("{ msmes(first: 5) { nodes { name } } }"), {}, LIMITS) is None


def test_depth_over_the_limit_names_the_limit() -> None:
    violation = check_document(parse(_nested(50)), {}, LIMITS)
    assert violation is not None
    assert (violation.limit, violation.maximum) == ("depth", 12)
    assert violation.actual == 51


def test_aliases_are_counted_across_the_document() -> None:
    query = "{ " + " ".join(f"a{i}: viewer {{ clientId }}" for i in range(1000)) + " }"
    violation = check_document(parse(query), {}, LIMITS)
    assert violation is not None
    assert (violation.limit, violation.actual) == ("aliases", 1000)


def test_cost_multiplies_nested_page_sizes_including_variables() -> None:
    query = """query($n: Int) { cooperatives(first: 100) { nodes {
        memberMsmes(first: $n) { nodes { name regency { name } } } } } }"""
    limits = QueryLimits(max_cost=20_000)
    assert check_document(parse(query), {"n": 10}, limits) is None
    violation = check_document(parse(query), {"n": 100}, limits)
    assert violation is not None
    assert violation.limit == "cost"


def test_fragments_count_towards_depth_and_cycles_do_not_hang() -> None:
    query = """
    { a { ...F } }
    fragment F on T { b { c { ...G } } }
    fragment G on T { d { ...F } }
    """
    violation = check_document(parse(query), {}, QueryLimits(max_depth=3))
    assert violation is not None
    assert violation.limit == "depth"


INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_is_refused_for_clients_not_listed(migrated_url: str) -> None:
    engine = create_engine(migrated_url, statement_timeout_ms=5_000)
    schema = build_schema(introspection="trusted-client")
    try:
        for client_id, allowed in (("trusted-client", True), ("someone-else", False)):
            who = replace(principal(OrgKind.MINISTRY, "ID"), client_id=client_id)
            context = Context(principal=who, engine=engine, limits=PAGE_LIMITS)
            result = await schema.execute(INTROSPECTION, context_value=context)
            assert (result.errors is None) is allowed
    finally:
        await engine.dispose()
