"""Figure tables served again for a moment: never to a caller they were not suppressed for, and
never to a client that has just written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from resolvers.policy import AccessPolicy
from schema.figure_cache import FigureCache
from sinergi.settings import Settings
from tests.support.demo_data import load_demo, release_figures
from tests.support.http import Api, served
from tests.support.statements import recorded_statements

BY_PROVINCE = "{ msmeFigures(groupBy: [PROVINCE]) { key { value } count turnoverSum } }"
SMALL_CELLS = """{ msmeFigures(groupBy: [REGENCY, KBLI_SECTION], filter: {region: "62"}) {
  key { value } count suppressed } }"""
CREATE = """mutation { createMsme(input: {nib: "7790000000002", name: "Warung Segar",
  kbliCode: "47112", region: "62.71", capital: "50000000", annualTurnover: "90000000"}) { id } }"""
CACHE_SECONDS = 3


def _who(org_kind: OrgKind, jurisdiction: str, *scopes: Scope) -> Principal:
    return Principal(f"c-{org_kind.value}", org_kind, jurisdiction, frozenset(scopes))


def _listening(cache: FigureCache) -> FigureCache:
    """`cache`, told its process's listener hears releases announced: it keeps tables."""
    cache.listening(True)
    return cache


def test_a_table_of_an_older_release_is_neither_kept_nor_served() -> None:
    """A newer release read by a request, or any announced, lets every table go; a table
    computed from a release older than one read, or by a request begun before an announcement,
    is not kept; nothing is kept unheard."""
    cells = {"figures": [{"count": 1}]}
    cache = FigureCache(seconds=60)

    def put(key: str, release: int | None, generation: int | None = None) -> None:
        begun = cache.generation if generation is None else generation
        cache.put(key, cells, release=release, generation=begun, now=100.0)

    put("a", 1)
    assert cache.get("a", now=100.0) is None  # not listening: a release may go unannounced
    cache.listening(True)
    cache.released(1)  # a request read release 1, and computed its table
    put("a", 1)
    put("live", None)
    assert cache.get("a", now=100.0) == cells
    cache.released(1)  # the same release, read again: nothing goes
    assert cache.get("a", now=100.0) == cells
    begun = cache.generation
    cache.changed("2")
    assert [cache.get(key, now=100.0) for key in ("a", "live")] == [None, None]
    put("a", 1, begun)  # begun before the announcement
    assert cache.get("a", now=100.0) is None
    cache.released(3)
    put("a", 2)  # a replica still on release 2
    assert cache.get("a", now=100.0) is None
    put("a", 3)
    assert cache.get("a", now=100.0) == cells
    begun = cache.generation
    cache.listening(False)
    assert cache.get("a", now=100.0) is None
    cache.listening(True)
    put("a", 3, begun)  # begun before the listener stopped: a release may have gone unheard
    assert cache.get("a", now=100.0) is None


def test_a_forged_announcement_costs_the_tables_of_the_moment_and_no_more() -> None:
    """Any role that can connect may NOTIFY: one naming a release far ahead kept every later
    table out until the process restarted."""
    cells = {"figures": [{"count": 1}]}
    cache = _listening(FigureCache(seconds=60))
    cache.released(2)
    cache.changed("9000000000000000000")
    cache.put("a", cells, release=2, generation=cache.generation, now=100.0)
    assert cache.get("a", now=100.0) == cells


def test_a_table_is_kept_for_its_seconds_and_the_oldest_makes_room() -> None:
    cache = _listening(FigureCache(seconds=2, capacity=4, largest=3))
    cells = {"figures": [{"count": 1}, {"count": 2}]}
    cache.put("a", cells, release=None, generation=cache.generation, now=100.0)
    assert cache.get("a", now=101.9) == cells
    assert cache.get("a", now=102.0) is None
    for key in "bcd":
        cache.put(key, cells, release=None, generation=cache.generation, now=100.0)
    assert [cache.get(key, now=100.0) for key in "bcd"] == [None, cells, cells]
    cache.put(
        "huge",
        {"figures": [{"count": n} for n in range(4)]},
        release=None,
        generation=cache.generation,
        now=100.0,
    )
    assert cache.get("huge", now=100.0) is None
    assert cache.get("d", now=100.0) == cells


def test_tables_past_their_time_are_dropped_as_others_are_put() -> None:
    """Tables of no cells never made room for others, and one past its time went only when
    asked for again: small tables, each keyed by a new 1.5 MB variable, were never released."""
    cache = _listening(FigureCache(seconds=2, entries=3))
    for n in range(3):
        cache.put(n, {"figures": []}, release=None, generation=cache.generation, now=100.0 + n / 2)
    assert len(cache) == 3
    cache.put(
        "more", {"figures": []}, release=None, generation=cache.generation, now=101.5
    )  # the oldest makes room
    assert [cache.get(n, now=101.5) for n in range(3)] == [None, {"figures": []}, {"figures": []}]
    cache.put(
        "later", {"figures": []}, release=None, generation=cache.generation, now=103.0
    )  # those put at 100.5 and 101 are past it
    assert len(cache) == 2
    assert cache.get("more", now=103.0) == {"figures": []}


def test_callers_share_a_table_only_when_their_scopes_and_suppression_are_alike() -> None:
    def key(who: Principal, variables: dict[str, object] | None = None) -> object:
        return FigureCache.key(
            BY_PROVINCE, None, variables or {}, ("a", "b"), AccessPolicy(who).figure_audience
        )

    ministry = _who(OrgKind.MINISTRY, "ID", Scope.AGGREGATES_READ)
    again = _who(OrgKind.MINISTRY, "ID", Scope.AGGREGATES_READ)  # another token of the client
    other_ministry = Principal("c-other", OrgKind.MINISTRY, "ID", ministry.scopes)
    targets_too = _who(OrgKind.MINISTRY, "ID", Scope.AGGREGATES_READ, Scope.TARGETS_READ)
    targets_only = _who(OrgKind.MINISTRY, "ID", Scope.TARGETS_READ)
    kalteng = _who(OrgKind.PROVINCE, "62", Scope.AGGREGATES_READ, Scope.RECORDS_READ)
    kalbar = _who(OrgKind.PROVINCE, "61", Scope.AGGREGATES_READ, Scope.RECORDS_READ)
    assert key(ministry) == key(again)
    # Another client's own records may differ (the guarantees it issued), so its table does.
    assert key(ministry) != key(other_ministry)
    # Without records:read too, a jurisdiction's records are read apart, so its table is its own.
    kalteng_narrowed = _who(OrgKind.PROVINCE, "62", Scope.AGGREGATES_READ)
    kalbar_narrowed = _who(OrgKind.PROVINCE, "61", Scope.AGGREGATES_READ)
    tables = {
        key(ministry),
        key(targets_too),
        key(targets_only),
        key(kalteng),
        key(kalbar),
        key(kalteng_narrowed),
        key(kalbar_narrowed),
    }
    assert len(tables) == 7
    assert key(ministry, {"a": 1, "b": 2}) == key(ministry, {"b": 2, "a": 1})
    assert key(ministry, {"a": 1}) != key(ministry, {"a": 2})
    # A variable the operation does not declare cannot change its answer, nor its key.
    assert key(ministry, {"a": 1, "junk": "x" * 100_000}) == key(ministry, {"a": 1})


def test_two_guarantors_of_one_province_never_share_a_guarantee_table() -> None:
    """Alike in scopes and jurisdiction, two guarantors still read different guarantees as
    their own (exact) and as the others' (held to k): one's table would show the other a rival's
    lone guarantee (tests/test_disclosure_guarantors.py)."""
    scopes = frozenset({Scope.AGGREGATES_READ, Scope.ELIGIBILITY_CHECK, Scope.GUARANTEES_WRITE})
    jamkrida = Principal("jamkrida", OrgKind.BUMD, "62", scopes)
    rival = Principal("rival", OrgKind.BUMD, "62", scopes)
    table = '{ guaranteeFigures(groupBy: [STATUS], region: "62") { key { value } count } }'
    keys = {
        FigureCache.key(table, None, {}, (), AccessPolicy(who).figure_audience)
        for who in (jamkrida, rival)
    }
    assert len(keys) == 2


def test_the_same_figures_again_cost_no_figure_statement(api: Api) -> None:
    first = api.graphql(BY_PROVINCE, "demo-ministry")
    with recorded_statements() as statements:
        again = api.graphql(BY_PROVINCE, "demo-ministry")
        api.graphql("{ msmes(first: 1) { nodes { nib } } }", "demo-province-62")  # reads SQL
    assert again == first
    assert statements, "the requests ran no SQL at all; the recorder is not listening"
    assert not [statement for statement in statements if "rollup" in statement]


def test_requests_differing_only_in_an_undeclared_variable_share_a_table(api: Api) -> None:
    """The attack: a 1.5 MB variable the operation never declares, changed each time, kept a
    new table (and the variable) per request; 60 took a worker from 268 MB to 367 MB."""
    query = "query($g: [MsmeDimension!]!) { msmeFigures(groupBy: $g) { count } }"
    token = api.token("demo-ministry")
    first = api.post({"query": query, "variables": {"g": ["SCALE"], "junk": "a"}}, token)
    with recorded_statements() as statements:
        again = api.post({"query": query, "variables": {"g": ["SCALE"], "junk": "b"}}, token)
        api.graphql("{ msmes(first: 1) { nodes { nib } } }", "demo-province-62")  # reads SQL
    assert again.json() == first.json()
    assert "errors" not in again.json(), again.json()
    assert statements, "the requests ran no SQL at all; the recorder is not listening"
    assert not [statement for statement in statements if "rollup" in statement]


@pytest.mark.parametrize(
    ("query", "before", "variables", "field"),
    [
        (
            "query($y: Int!) { graduations(groupBy: [PROVINCE], year: $y) { count } }",
            None,
            f'{{"y": {10**23}, "unused": NaN}}',
            "year",
        ),
        (
            "query($g: [MsmeDimension!]!) { msmeFigures(groupBy: $g) { count } }",
            None,
            '{"g": ' + "[" * 1000 + "]" * 1000 + "}",
            # Refused as too deep where Python 3.11 recurses out, by the enum where 3.13 doesn't.
            ("query", "groupBy[0]"),
        ),
        (
            "query($r: String) { graduations(year: 2025, groupBy: [PROVINCE], region: $r) {"
            " count } }",
            '{"r": null}',
            '{"r": NaN}',
            "region",
        ),
    ],
)
def test_variables_no_key_can_hold_are_refused_not_an_internal_error(
    api: Api, query: str, before: str | None, variables: str, field: str | tuple[str, ...]
) -> None:
    """Keying the table by orjson raised on an integer past 64 bits (which the standard library
    decodes, for a body orjson refuses: its NaN) or on arrays nested past 254, answering
    INTERNAL; and orjson writes NaN as null, so a NaN asked after a null was answered the
    null's table from the cache rather than refused."""
    token = api.token("demo-ministry")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def ask(variables: str) -> dict[str, Any]:
        body = f'{{"query": "{query}", "variables": {variables}}}'
        answer: dict[str, Any] = api.client.post("/graphql", content=body, headers=headers).json()
        return answer

    if before is not None:
        assert "errors" not in ask(before)
    (error,) = ask(variables)["errors"]
    fields = field if isinstance(field, tuple) else (field,)
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    assert error["extensions"]["field"] in fields, error


def test_a_table_suppressed_for_a_ministry_is_not_served_to_the_province(api: Api) -> None:
    ministry = api.graphql(SMALL_CELLS, "demo-ministry")["data"]["msmeFigures"]
    province = api.graphql(SMALL_CELLS, "demo-province-62")["data"]["msmeFigures"]
    assert any(cell["suppressed"] for cell in ministry)
    assert not any(cell["suppressed"] for cell in province)


def test_a_table_is_not_served_to_a_token_without_the_scope_for_it(api: Api) -> None:
    """A ministry's table is cached; tokens narrowed to other scopes, the same client's and a
    guarantee partner's, asking for it at once are still refused."""
    assert api.graphql(BY_PROVINCE, "demo-ministry")["data"]["msmeFigures"]
    narrowed = [("demo-ministry", "targets:read"), ("demo-jamkrida-62", "eligibility:check")]
    for client_id, scope in narrowed:
        answer = api.post({"query": BY_PROVINCE}, api.token(client_id, scope)).json()
        assert answer["data"] is None or answer["data"]["msmeFigures"] is None, answer
        assert [error["extensions"]["code"] for error in answer["errors"]] == ["FORBIDDEN"]


@pytest.fixture(scope="module")
def writable(module_reference_url: str) -> Iterator[Api]:
    """A database of its own (this module writes), served as the service role with a figure
    cache of a few seconds."""
    load_demo(module_reference_url, msmes=60, seed=7)
    settings = Settings(rate_limit=1_000_000, figures_cache_seconds=CACHE_SECONDS)
    with served(module_reference_url, settings) as api:
        yield api


def _kalteng(api: Api, client_id: str, query: str = BY_PROVINCE) -> tuple[int, str]:
    answer = api.graphql(query, client_id)
    assert "errors" not in answer, answer
    cell = next(c for c in answer["data"]["msmeFigures"] if c["key"][0]["value"] == "62")
    return cell["count"], cell["turnoverSum"]


def test_a_writer_sees_its_write_at_once_and_everyone_else_at_the_next_release(
    writable: Api, module_reference_url: str
) -> None:
    own = BY_PROVINCE.replace("groupBy: [PROVINCE]", 'groupBy: [PROVINCE], filter: {region: "62"}')
    before, _ = _kalteng(writable, "demo-province-62", own)  # cached for the province from here on
    seen = _kalteng(writable, "demo-ministry")  # perturbed: Kalteng is not the ministry's to read
    created = writable.graphql(CREATE, "demo-province-62")
    assert "errors" not in created, created
    assert _kalteng(writable, "demo-province-62", own)[0] == before + 1  # exact: the live records
    time.sleep(CACHE_SECONDS + 0.2)
    # Perturbed figures are the release's: computed afresh, the ministry's table is the same.
    assert _kalteng(writable, "demo-ministry") == seen
    release_figures(module_reference_url)
    time.sleep(CACHE_SECONDS + 0.2)
    # The new figure, perturbed as a caller never cached (Kalbar) computes it afresh: a new
    # turnover sum, with a new cell key, so it cannot be the table seen before the write.
    fresh = _kalteng(writable, "demo-ministry")
    assert fresh == _kalteng(writable, "demo-province-61")
    assert fresh != seen


def test_a_busy_writer_is_noted_once_not_per_write(writable: Api) -> None:
    notes = []
    for nib in ("7790000000003", "7790000000004"):
        with recorded_statements() as statements:
            created = writable.graphql(CREATE.replace("7790000000002", nib), "demo-regency-6271")
        assert "errors" not in created, created
        notes.append(len([s for s in statements if "INSERT INTO client_writes" in s]))
    assert notes == [1, 0]
