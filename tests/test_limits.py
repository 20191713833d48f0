"""The document checks of schema/limits.py on their own; HTTP behaviour is tested elsewhere."""

from __future__ import annotations

import csv
import time
from collections import Counter

import pytest
from graphql import (
    GraphQLList,
    GraphQLNonNull,
    build_schema,
    get_introspection_query,
    parse,
)

from resolvers.aggregates import FIGURE_ROWS
from schema.build import sdl
from schema.limits import (
    FIGURE_CELL_COST,
    FIGURE_DIMENSIONS,
    FIGURE_TABLES,
    KBLI_SECTIONS,
    LIST_SIZES,
    REGIONS,
    InputError,
    Violation,
    check_document,
)
from schema.query_limits import QueryLimits
from sinergi.demo import SEED_DATA

LIMITS = QueryLimits(max_depth=12, max_aliases=30, max_cost=50_000, default_page_size=20)
SCHEMA = build_schema(sdl())


def _nested(depth: int) -> str:
    return "{ " + "a { " * depth + "b" + " }" * (depth + 1)


def test_a_shallow_query_passes() -> None:
    assert (
        check_document(parse("{ msmes(first: 5) { nodes { name } } }"), {}, LIMITS, SCHEMA) is None
    )


def test_depth_over_the_limit_names_the_limit() -> None:
    violation = check_document(parse(_nested(50)), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.maximum) == ("depth", 12)
    assert violation.actual == 51


def test_aliases_are_counted_across_the_document() -> None:
    query = "{ " + " ".join(f"a{i}: viewer {{ clientId }}" for i in range(1000)) + " }"
    violation = check_document(parse(query), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("aliases", 1000)


def test_cost_multiplies_nested_page_sizes_including_variables() -> None:
    query = """query($n: Int) { cooperatives(first: 100) { nodes {
        memberMsmes(first: $n) { nodes { name regency { name } } } } } }"""
    limits = QueryLimits(max_cost=20_000)
    assert check_document(parse(query), {"n": 10}, limits, SCHEMA) is None
    violation = check_document(parse(query), {"n": 100}, limits, SCHEMA)
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"


def _cost(query: str, variables: dict[str, object]) -> int:
    """The estimated cost: the least max_cost the document passes (a refusal's `actual` counts
    only up to the field that passed the limit)."""
    document = parse(query)

    def passes(max_cost: int) -> bool:
        return check_document(document, variables, QueryLimits(max_cost=max_cost), SCHEMA) is None

    low, high = 0, 1
    while not passes(high):
        low, high = high + 1, high * 2
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(middle) else (middle + 1, high)
    return low


def test_a_page_size_given_as_an_integral_float_is_costed_as_the_int_it_runs_as() -> None:
    """graphql-core runs `first: $n` with n = 100.0 as a page of 100; what it refuses (1.5, a
    bool, a string, infinity) never runs, and is costed as the default page."""
    query = """query($n: Int) { cooperatives(first: $n) { nodes {
        memberMsmes(first: $n) { nodes { name } } } } }"""
    assert _cost(query, {"n": 100.0}) == _cost(query, {"n": 100}) > _cost(query, {})
    for refused in (1.5, True, "100", float("inf")):
        assert _cost(query, {"n": refused}) == _cost(query, {})


def test_each_operation_is_costed_with_its_own_variables_defaults() -> None:
    """An omitted variable runs with its operation's default; another operation's does not
    apply, and one sent (even as null) replaces it."""
    paged = "cooperatives(first: $n) { nodes { memberMsmes(first: $n) { nodes { name } } } }"
    defaults = f"query A($n: Int = 100) {{ {paged} }}"
    plain = f"query B($n: Int) {{ {paged} }}"
    assert _cost(defaults, {}) == _cost(defaults, {"n": 100}) > _cost(defaults, {"n": None})
    assert _cost(f"{defaults} {plain}", {}) == _cost(defaults, {}) + _cost(plain, {})


def test_fragments_count_towards_depth_and_cycles_do_not_hang() -> None:
    query = """
    { a { ...F } }
    fragment F on T { b { c { ...G } } }
    fragment G on T { d { ...F } }
    """
    violation = check_document(parse(query), {}, QueryLimits(max_depth=3), SCHEMA)
    assert isinstance(violation, Violation)
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
    assert check_document(parse(query), {}, LIMITS, SCHEMA) is None


def _type_ref(depth: int) -> str:
    return "ofType { " * depth + "name" + " }" * depth


def test_type_references_nine_deep_add_no_depth_and_deeper_ones_do() -> None:
    within = parse('{ __type(name: "Query") { fields { type { ' + _type_ref(9) + " } } } }")
    assert check_document(within, {}, QueryLimits(max_depth=5), SCHEMA) is None
    beyond = parse('{ __type(name: "Query") { fields { type { ' + _type_ref(14) + " } } } }")
    violation = check_document(beyond, {}, QueryLimits(max_depth=5), SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("depth", 9)


def test_the_type_reference_allowance_is_not_a_way_around_depth() -> None:
    """Nine `ofType` fields per path are free, wherever they are: other fields cannot reset it."""
    query = "{ a { " + "ofType { b { " * 10 + "c" + " } }" * 10 + " } }"
    violation = check_document(parse(query), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("depth", 13)


def _tree(levels: int) -> str:
    return "indonesia { " + "children { " * levels + "code name" + " }" * (levels + 1)


@pytest.mark.parametrize("aliases", [10, 30])
def test_aliased_region_trees_count_every_child_list(aliases: int) -> None:
    """The attack of issue 22: 10 aliased trees took 2.8 s and 3.5 MB; they never reach SQL."""
    query = "{ " + " ".join(f"t{i}: {_tree(3)}" for i in range(aliases)) + " }"
    violation = check_document(parse(query), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"


def test_one_region_tree_down_to_regencies_passes() -> None:
    assert check_document(parse("{ " + _tree(2) + " }"), {}, LIMITS, SCHEMA) is None


def test_a_list_through_a_fragment_counts_as_one_written_inline() -> None:
    query = "{ " + " ".join(f"t{i}: indonesia {{ ...T }}" for i in range(20)) + " }"
    query += " fragment T on Region { children { children { children { code } } } }"
    violation = check_document(parse(query), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"


def test_a_connection_without_first_counts_the_default_page() -> None:
    """Omitting `first` gets the default page (20), not one row."""
    inner = "memberMsmes { nodes { name } }"
    query = "{ cooperatives(first: 100) { nodes { " + inner + " } } }"
    violation = check_document(parse(query), {}, QueryLimits(max_cost=2_000), SCHEMA)
    assert isinstance(violation, Violation)
    assert violation.actual > 100 * 20


def test_a_figure_table_counts_the_product_of_its_dimensions() -> None:
    narrow = "{ msmeFigures(groupBy: [PROVINCE]) { count key { value } } }"
    wide = "{ msmeFigures(groupBy: [REGENCY, KBLI_SECTION]) { count key { value } } }"
    assert _cost(narrow, {}) < 1_000 < 5_000 < _cost(wide, {})


def test_a_figure_table_through_variables_is_sized_by_them() -> None:
    query = "query($g: [MsmeDimension!]!) { msmeFigures(groupBy: $g) { count } }"
    limits = QueryLimits(max_cost=1_000)
    assert check_document(parse(query), {"g": ["SCALE"]}, limits, SCHEMA) is None
    assert check_document(parse(query), {"g": ["REGENCY", "SCALE"]}, limits, SCHEMA) is not None


def test_every_unpaginated_list_of_the_schema_has_a_size_estimate() -> None:
    missing = []
    for type_ in SCHEMA.type_map.values():
        if type_.name.startswith("__") or not hasattr(type_, "fields"):
            continue
        if type_ is SCHEMA.mutation_type or type(type_).__name__ == "GraphQLInputObjectType":
            continue
        for name, field in type_.fields.items():
            inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if not isinstance(inner, GraphQLList) or "first" in field.args:
                continue
            if (type_.name, name) not in LIST_SIZES and name not in FIGURE_TABLES:
                missing.append(f"{type_.name}.{name}")
    assert missing == []


def test_the_region_estimate_covers_the_largest_family_of_the_reference_data() -> None:
    regions = list(csv.DictReader((SEED_DATA / "regions.csv").open()))
    districts = list(csv.DictReader((SEED_DATA / "districts.csv").open()))
    families = Counter(row["parent_code"] for row in regions + districts)
    assert max(families.values()) <= LIST_SIZES[("Region", "children")]


def test_a_figure_key_counts_one_part_per_dimension_asked_for() -> None:
    query = "{ msmeFigures(groupBy: [REGENCY, SCALE]) { key { value } } }"
    rows = min(515 * 5, FIGURE_ROWS)  # regencies by scale, with their subtotals, capped
    assert _cost(query, {}) == 1 + rows * FIGURE_CELL_COST + rows + rows * 2


def _doubling(levels: int, bottom: str) -> str:
    """Fragments each spreading the one below twice: `levels` of them ask for 2**levels copies of
    `bottom`, in a document of a few hundred bytes."""
    fragments = [f"fragment F0 on Query {{ {bottom} }}"]
    fragments += [f"fragment F{i} on Query {{ ...F{i - 1} ...F{i - 1} }}" for i in range(1, levels)]
    return f"query {{ ...F{levels - 1} }} " + " ".join(fragments)


def test_fragments_spread_twice_at_every_level_are_refused_in_time_linear_in_the_text() -> None:
    """The attack: 21 such fragments, 844 bytes without a token, took 3 s to be refused, and
    each level doubled it. Measured once each, 60 levels are refused at once."""
    started = time.perf_counter()
    violation = check_document(parse(_doubling(60, "__typename")), {}, LIMITS, SCHEMA)
    assert time.perf_counter() - started < 1
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"


def test_fragments_that_select_nothing_costed_are_measured_in_time_linear_in_the_text() -> None:
    """Spreads of a fragment the document lacks cost nothing (validation then refuses them), so
    no cost limit cuts the walk short: only measuring each fragment once does."""
    started = time.perf_counter()
    assert check_document(parse(_doubling(60, "...Missing")), {}, LIMITS, SCHEMA) is None
    assert time.perf_counter() - started < 1


def test_a_fragment_spread_again_counts_its_aliases_and_depth_again() -> None:
    """Reused measurements count as the fragment walked anew: 2**10 spreads of an alias are
    1,024 aliases, and depth through a fragment is the same at every spread."""
    violation = check_document(parse(_doubling(11, "a: __typename")), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("aliases", 1024)
    nested = "{ t: indonesia { ...R } u: indonesia { children { ...R } } }"
    nested += " fragment R on Region { children { children { code } } }"
    violation = check_document(parse(nested), {}, QueryLimits(max_depth=4), SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("depth", 5)


def test_a_fragment_spread_under_lists_of_other_sizes_costs_as_if_written_out() -> None:
    """A fragment's cost is reused at every spread, multiplied by the lists above that spread."""
    member = "memberMsmes(first: 7) { nodes { name regency { children { code } } } }"
    inline = f"""{{ a: cooperatives(first: 3) {{ nodes {{ {member} }} }}
        b: cooperatives(first: 11) {{ nodes {{ name {member} }} }} }}"""
    spread = """{ a: cooperatives(first: 3) { nodes { ...M } }
        b: cooperatives(first: 11) { nodes { name ...M } } }
        fragment M on Cooperative { MEMBER }""".replace("MEMBER", member)
    assert _cost(spread, {}) == _cost(inline, {}) > 11 * 7 * 51


def test_a_cost_over_the_limit_stops_counting_but_not_the_depth() -> None:
    """Past max_cost nothing more is counted, yet the depth is measured whole and reported first:
    the region tree 50 deep is too deep (actual 51), not merely too costly."""
    violation = check_document(parse(_nested(50)), {}, QueryLimits(max_cost=1), SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.actual) == ("depth", 51)


def test_realisations_are_costed_by_the_page_they_answer() -> None:
    """A target's realisations are a page (default 20, `first` up to 100): the estimate counts
    the page asked for, as the resolver answers it, not a fixed guess of the history's length."""
    query = '{{ indicator(code: "KOP_JUMLAH") {{ targets {{ realisations{} {{ value }} }} }} }}'
    costs = [_cost(query.format(first), {}) for first in ("", "(first: 100)")]
    targets = LIST_SIZES[("Indicator", "targets")]
    assert costs == [1 + 1 + targets + targets * 20, 1 + 1 + targets + targets * 100]


def test_a_groupby_of_150_000_dimensions_is_refused_before_it_is_measured() -> None:
    """The attack: 150,000 dimensions in a variable (750 KB, no token) took 3 s, the row
    estimate multiplying an integer of 150,000 factors; the resolver refuses more than four."""
    query = "query($g: [MsmeDimension!]!) { msmeFigures(groupBy: $g) { count } }"
    started = time.perf_counter()
    refused = check_document(parse(query), {"g": ["X"] * 150_000}, LIMITS, SCHEMA)
    assert time.perf_counter() - started < 1
    assert refused == InputError("groupBy", "at most 4 dimensions, got 150000")


@pytest.mark.parametrize(
    ("group_by", "reason"),
    [
        ("[PROVINCE, REGENCY, SCALE, ACTIVE, KBLI_SECTION]", "at most 4 dimensions, got 5"),
        ("[SCALE, PROVINCE, SCALE]", "names a dimension twice"),
    ],
)
def test_a_groupby_its_resolver_refuses_is_refused_as_it_would(group_by: str, reason: str) -> None:
    """Wherever the table sits: after one the resolver accepts, too."""
    fine = "graduations(year: 2025, groupBy: [PROVINCE]) { count }"
    query = f"{{ {fine} msmeFigures(groupBy: {group_by}) {{ count }} }}"
    assert check_document(parse(query), {}, LIMITS, SCHEMA) == InputError("groupBy", reason)
    four = "{ msmeFigures(groupBy: [PROVINCE, REGENCY, SCALE, ACTIVE]) { count } }"
    assert not isinstance(check_document(parse(four), {}, LIMITS, SCHEMA), InputError)


def test_the_figure_dimensions_cover_the_reference_data() -> None:
    regions = Counter(row["level"] for row in csv.DictReader((SEED_DATA / "regions.csv").open()))
    assert {
        "PROVINCE": regions["province"],
        "REGENCY": regions["regency"] + regions["city"],
    } == REGIONS
    sections = list(csv.DictReader((SEED_DATA / "kbli-sections.csv").open()))
    assert len(sections) == KBLI_SECTIONS


WIDEST = "msmeFigures(groupBy: [REGENCY, KBLI_SECTION, SCALE, ESTABLISHED_YEAR]) { count }"


def test_a_figure_table_counts_every_subtotal_of_its_dimensions() -> None:
    """GROUP BY CUBE answers each value of a dimension and the total over it: 38 provinces by
    4 scales are 39 × 5 rows. The attack: 24 aliased tables of four dimensions, estimated at
    2,000 rows each, answered 13,189 rows each over 50,000 MSMEs and took the whole pool."""
    table = "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { count } }"
    assert _cost(table, {}) == 1 + 39 * 5 * (FIGURE_CELL_COST + 1)
    aliased = "{ " + " ".join(f"t{i}: {WIDEST}" for i in range(24)) + " }"
    violation = check_document(parse(aliased), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"
    assert check_document(parse("{ " + WIDEST + " }"), {}, LIMITS, SCHEMA) is None


def test_a_table_of_the_most_cells_costs_most_of_the_limit_whatever_it_selects() -> None:
    """The attack: `{ __typename }` alone on the widest table was costed 10,001, so four aliases
    of it ran in one request (2.5 s of CPU over 3,000 MSMEs): its cells cost their work
    whatever is selected, so one such table runs and two are refused as over the cost limit."""
    table = "msmeFigures(groupBy: [ACTIVE, ESTABLISHED_YEAR, KBLI_SECTION, REGENCY])"
    one = "{ " + table + " { __typename } }"
    assert _cost(one, {}) >= LIMITS.max_cost / 2
    assert check_document(parse(one), {}, LIMITS, SCHEMA) is None
    two = "{ a: " + table + " { __typename } b: " + table + " { __typename } }"
    violation = check_document(parse(two), {}, LIMITS, SCHEMA)
    assert isinstance(violation, Violation)
    assert (violation.limit, violation.maximum) == ("cost", LIMITS.max_cost)
    assert violation.actual > LIMITS.max_cost


def test_the_national_figures_of_the_bench_and_the_readme_stay_well_under_the_limit() -> None:
    for query in (
        "{ msmeFigures(groupBy: [PROVINCE, SCALE]) { key { value } count turnoverSum } }",
        "{ viewer { clientId scopes } msmeFigures(groupBy: [PROVINCE]) { key { value } count } }",
        "{ cooperativeFigures(groupBy: [PROVINCE, TYPE]) { key { value } count } }",
        '{ guaranteeFigures(groupBy: [STATUS], region: "62") { key { value } count } }',
    ):
        assert _cost(query, {}) < LIMITS.max_cost / 10, query


def test_a_table_of_one_province_or_regency_is_costed_as_its_regencies_not_the_nations() -> None:
    """A province's dashboard by regency and KBLI section, with five measures, is a few hundred
    rows, not the 11,330 of the nation's: filtered to the province (a literal or a variable), it
    runs; unfiltered, it is refused."""
    fields = " { key { value } count turnoverSum employeesSum turnoverAverage }"

    def table(filtered: str) -> str:
        return "msmeFigures(groupBy: [REGENCY, KBLI_SECTION]" + filtered + ")" + fields

    national = _cost("{ " + table("") + " }", {})
    assert national > LIMITS.max_cost
    province = _cost("{ " + table(', filter: {region: "62"}') + " }", {})
    regencies = LIST_SIZES[("Region", "children")]
    assert province == 1 + (regencies + 1) * 22 * (FIGURE_CELL_COST + 1 + 2 + 4)
    through_variable = "query($r: String) { " + table(", filter: {region: $r}") + " }"
    assert _cost(through_variable, {"r": "62"}) == province
    assert _cost(through_variable, {"r": None}) == national
    regency = '{ guaranteeFigures(groupBy: [REGENCY, STATUS], region: "62.71") { count } }'
    statuses = FIGURE_DIMENSIONS["guaranteeFigures"]["STATUS"]
    assert _cost(regency, {}) == 1 + 2 * (statuses + 1) * (FIGURE_CELL_COST + 1)


def test_a_change_feed_page_without_first_counts_the_feeds_default_page() -> None:
    """The feed answers 100 entries when `first` is omitted, not the 20 of other lists."""
    default = "{ cooperativeChanges { entries { id } } }"
    assert _cost(default, {}) == _cost("{ cooperativeChanges(first: 100) { entries { id } } }", {})
    assert _cost(default, {}) == 1 + 100 + 100


def test_a_subscriptions_page_counts_the_largest_page_the_feed_reads() -> None:
    """A subscription takes no `first`, and every page it sends holds up to 1000 entries:
    costed at one, thirty aliases of `entries { record }` ran and sent 14 MB at once, a
    document HTTP refuses as `msmeChanges(first: 1000)`."""
    followed = "subscription { msmeChanges { entries { record } } }"
    assert _cost(followed, {}) == _cost("{ msmeChanges(first: 1000) { entries { record } } }", {})
    aliased = " ".join(f"a{i}: entries {{ record }}" for i in range(29))
    violation = check_document(
        parse(f"subscription {{ msmeChanges {{ {aliased} endCursor }} }}"), {}, LIMITS, SCHEMA
    )
    assert isinstance(violation, Violation)
    assert violation.limit == "cost"


def test_a_page_its_resolver_refuses_costs_what_a_page_of_one_does() -> None:
    """Out of the range its resolver holds `first` to (1 to the largest page; the change feed's
    to 1000), a page reads nothing: costed as asked, `first: 2147483647` was refused as over the
    cost limit, its `actual` cut short, where `first: 1000` is told the range to keep to."""
    one = _cost("{ msmes(first: 1) { nodes { name } } }", {})
    for first in (0, -5, 101, 2_147_483_647):
        assert _cost(f"{{ msmes(first: {first}) {{ nodes {{ name }} }} }}", {}) == one
    assert _cost("{ msmes(first: 100) { nodes { name } } }", {}) == 1 + 100 + 100
    hundred = parse("{ msmes(first: 100) { nodes { name } } }")
    assert check_document(hundred, {}, QueryLimits(max_cost=150), SCHEMA) is not None
    assert check_document(hundred, {}, QueryLimits(max_cost=150, max_page_size=50), SCHEMA) is None
    feed = "query($n: Int) { msmeChanges(first: $n) { entries { id } } }"
    assert _cost(feed, {"n": 1000}) == 1 + 1000 + 1000
    assert _cost(feed, {"n": 1001}) == _cost(feed, {"n": 1})
