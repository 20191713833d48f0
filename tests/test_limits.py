"""The document checks of schema/limits.py on their own; HTTP behaviour is tested elsewhere."""

from __future__ import annotations

from graphql import get_introspection_query, parse

from schema.limits import QueryLimits, check_document

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


def test_the_standard_introspection_query_passes_every_limit() -> None:
    """graphql-core's query, with every option GraphiQL sends, nests `ofType` nine deep."""
    query = get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    )
    assert check_document(parse(query), {}, LIMITS) is None


def _type_ref(depth: int) -> str:
    return "ofType { " * depth + "name" + " }" * depth


def test_type_references_nine_deep_add_no_depth_and_deeper_ones_do() -> None:
    within = parse('{ __type(name: "Query") { fields { type { ' + _type_ref(9) + " } } } }")
    assert check_document(within, {}, QueryLimits(max_depth=5)) is None
    beyond = parse('{ __type(name: "Query") { fields { type { ' + _type_ref(14) + " } } } }")
    violation = check_document(beyond, {}, QueryLimits(max_depth=5))
    assert violation is not None
    assert (violation.limit, violation.actual) == ("depth", 9)


def test_the_type_reference_allowance_is_not_a_way_around_depth() -> None:
    """Nine `ofType` fields per path are free, wherever they are: other fields cannot reset it."""
    query = "{ a { " + "ofType { b { " * 10 + "c" + " } }" * 10 + " } }"
    violation = check_document(parse(query), {}, LIMITS)
    assert violation is not None
    assert (violation.limit, violation.actual) == ("depth", 13)
