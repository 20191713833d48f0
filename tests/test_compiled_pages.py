"""A cooperative's `memberMsmes(first:)`, a page below the root, compiled into its page's or
lookup's one statement: the members the caller may see, in id order, with the total, the next
page's flag and cursor the executor gives, audited as the executor audits them. A page size a
variable gives is not taken for the document's own, and one the limits refuse is reported as
before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from resolvers.paging import encode_cursor
from tests.support.demo_data import load_demo
from tests.support.executor import AT, assert_the_executor_agrees, compiled
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
REGENCY = "demo-regency-6271"
STRANGER = "9990000000003"
"""An MSME of province 61, made a member of a cooperative of province 62 by this module."""
MEMBERS = """memberMsmes(first: 2) { __typename totalCount
  pageInfo { __typename hasNextPage endCursor }
  nodes { nib regency { name } } edges { cursor node { nib } } }"""
PAGE = f"""query Page {{ cooperatives(first: 100)
  {{ nodes {{ legalEntityNo{AT} {MEMBERS} }} }} }}"""
LOOKUP = f"""query One($number: String!) {{ cooperative(legalEntityNo: $number)
  {{ legalEntityNo{AT} all: memberMsmes {{ totalCount nodes {{ nib }} }} {MEMBERS} }} }}"""
UNDER_MSMES = f"""query Under {{ msmes(first: 100, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} cooperative {{ memberMsmes(first: 1) {{ totalCount nodes {{ nib }}
     pageInfo {{ hasNextPage }} }} }} }} }} }}"""
SIZED = f"""query Sized($number: String!, $first: Int) {{ cooperative(legalEntityNo: $number)
  {{ legalEntityNo{AT} memberMsmes(first: $first) {{ totalCount nodes {{ nib }} }} }} }}"""


@pytest.fixture(scope="module")
def pages_url(module_reference_url: str) -> str:
    """The demo data in a database of this module's own, where a cooperative of Palangka Raya
    has a dozen members across the province, and one of another province."""
    load_demo(module_reference_url, msmes=300, seed=13)
    run(
        module_reference_url,
        """UPDATE msmes SET cooperative_id = (SELECT id FROM cooperatives
             WHERE province_code = '62' ORDER BY regency_code = '62.71' DESC, id LIMIT 1)
            WHERE nib = $1 OR id IN (SELECT id FROM msmes WHERE province_code = '62'
                                      AND cooperative_id IS NULL ORDER BY id LIMIT 12)""",
        STRANGER,
    )
    return module_reference_url


@pytest.fixture(scope="module")
def pages_api(pages_url: str) -> Iterator[Api]:
    with served(pages_url) as api:
        yield api


def _members(url: str, where: str = "m.province_code = '62'") -> dict[str, list[str]]:
    """The NIBs of each cooperative's members the caller sees (`where`), in id order, by the
    cooperative's number."""
    rows = run(
        url,
        f"""SELECT c.legal_entity_no, array_agg(m.nib ORDER BY m.id) AS nibs
              FROM cooperatives c JOIN msmes m ON m.cooperative_id = c.id
             WHERE {where} GROUP BY c.legal_entity_no""",  # noqa: S608  # written here
    )
    return {row["legal_entity_no"]: list(row["nibs"]) for row in rows}


def _busiest(url: str) -> str:
    members = _members(url)
    return max(members, key=lambda number: (len(members[number]), number))


def _compiled(
    api: Api, document: str, variables: dict[str, Any] | None = None, client: str = PROVINCE
) -> Any:
    """The answer, checked to be one statement's that builds the JSON: no members read apart."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), client, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "msmes" in sql or "cooperatives" in sql]
    assert len(reads) == 1, reads
    assert "json_build_object" in reads[0]
    return answer["data"]


def test_a_page_lists_each_cooperatives_members_as_stored(pages_api: Api, pages_url: str) -> None:
    members = _members(pages_url)
    nodes = _compiled(pages_api, PAGE)["cooperatives"]["nodes"]
    assert any(len(members.get(node["legalEntityNo"], [])) > 2 for node in nodes)
    for node in nodes:
        stored = members.get(node["legalEntityNo"], [])
        page = node["memberMsmes"]
        assert page["__typename"] == "MsmeConnection"
        assert page["totalCount"] == len(stored)
        assert [member["nib"] for member in page["nodes"]] == stored[:2]
        assert [edge["node"]["nib"] for edge in page["edges"]] == stored[:2]
        assert page["pageInfo"]["hasNextPage"] == (len(stored) > 2)
        assert page["pageInfo"]["__typename"] == "PageInfo"
        if stored:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        else:
            assert page["pageInfo"]["endCursor"] is None


@pytest.mark.parametrize(
    "document", [PAGE, LOOKUP, UNDER_MSMES], ids=["page", "lookup", "under msmes"]
)
@pytest.mark.parametrize("client", [PROVINCE, REGENCY])
def test_the_executor_answers_and_audits_the_same(
    pages_api: Api, pages_url: str, document: str, client: str
) -> None:
    given = {"number": _busiest(pages_url)} if document is LOOKUP else None
    expected = _compiled(pages_api, document, given, client)
    assert_the_executor_agrees(pages_api, pages_url, client, document, given, expected)


def test_a_lookup_pages_by_the_default_size_when_asked_for_none(
    pages_api: Api, pages_url: str
) -> None:
    number = _busiest(pages_url)
    stored = _members(pages_url)[number]
    found = _compiled(pages_api, LOOKUP, {"number": number})["cooperative"]
    assert found["all"] == {"totalCount": len(stored), "nodes": [{"nib": nib} for nib in stored]}


def test_members_outside_the_callers_jurisdiction_are_neither_listed_nor_counted(
    pages_api: Api, pages_url: str
) -> None:
    number = _busiest(pages_url)
    everyone = _members(pages_url, "true")[number]
    assert STRANGER in everyone
    for client, where in [
        (PROVINCE, "m.province_code = '62'"),
        (REGENCY, "m.regency_code = '62.71'"),
    ]:
        seen = _members(pages_url, where).get(number, [])
        found = _compiled(pages_api, LOOKUP, {"number": number}, client)["cooperative"]
        if found is None:  # the cooperative itself lies outside the regency
            continue
        assert STRANGER not in seen
        assert found["all"] == {"totalCount": len(seen), "nodes": [{"nib": nib} for nib in seen]}


def test_a_size_a_variable_gives_is_each_requests_own_and_compiled(
    pages_api: Api, pages_url: str
) -> None:
    """The plan keeps the variable's name, not the first request's value: each request's size
    is written into its own statement (the same document, one size after the other)."""
    number = _busiest(pages_url)
    stored = _members(pages_url)[number]
    assert len(stored) >= 3
    for first, expected in [(1, stored[:1]), (3, stored[:3]), (None, stored), (2, stored[:2])]:
        variables = {"number": number, "first": first}
        answer = _compiled(pages_api, SIZED, variables)
        nodes = answer["cooperative"]["memberMsmes"]["nodes"]
        assert [node["nib"] for node in nodes] == expected
        assert_the_executor_agrees(pages_api, pages_url, PROVINCE, SIZED, variables, answer)


def test_the_executor_too_compiles_a_size_a_variable_gives_for_each_request(
    pages_api: Api, pages_url: str
) -> None:
    """Beside a root field no plan takes on (`indicator`), the executor answers the operation,
    and its resolver finds the lookup's plan made from the document: each request's size is
    still its own, in one statement, and a size the limits refuse is reported naming `first`."""
    unplanned = '{ indicator(code: "KOP_PRODUSEN_JUMLAH") { code } cooperative('
    document = SIZED.replace("{ cooperative(", unplanned)
    number = _busiest(pages_url)
    stored = _members(pages_url)[number]
    for first, expected in [(3, stored[:3]), (1, stored[:1]), (None, stored)]:
        answer = _compiled(pages_api, document, {"number": number, "first": first})
        assert answer["indicator"] == {"code": "KOP_PRODUSEN_JUMLAH"}
        nodes = answer["cooperative"]["memberMsmes"]["nodes"]
        assert [node["nib"] for node in nodes] == expected
    answer = pages_api.graphql(compiled(document), PROVINCE, {"number": number, "first": 101})
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("first:")


def test_a_size_a_variable_gives_is_checked_against_each_callers_limits(
    pages_api: Api, pages_url: str
) -> None:
    number = _busiest(pages_url)
    _compiled(pages_api, SIZED, {"number": number, "first": 2})
    for first in (0, 101):
        answer = pages_api.graphql(compiled(SIZED), PROVINCE, {"number": number, "first": first})
        (error,) = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("first:")
        assert error["path"] == ["cooperative", "memberMsmes"]


@pytest.mark.parametrize("first", [0, 101])
def test_a_size_the_limits_refuse_is_reported_naming_first(
    pages_api: Api, pages_url: str, first: int
) -> None:
    number = _busiest(pages_url)
    document = f"""query Refused($number: String!) {{ cooperative(legalEntityNo: $number)
      {{ name memberMsmes(first: {first}) {{ nodes {{ nib }} }} }} }}"""
    answer = pages_api.graphql(document, PROVINCE, {"number": number})
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("first:")
    assert error["path"] == ["cooperative", "memberMsmes"]
    assert answer["data"] == {"cooperative": None}  # the connection may not be null


AFTER = """query After($number: String!, $after: String) {
  cooperative(legalEntityNo: $number) { memberMsmes(first: 5, after: $after) {
    totalCount nodes { nib } edges { cursor } pageInfo { hasNextPage endCursor } } } }"""
EVERY_AFTER = """query EveryAfter($after: String!) { cooperatives(first: %d) { nodes {
  legalEntityNo memberMsmes(first: 1, after: $after) { nodes { nib } pageInfo { hasNextPage } }
} } }"""


def test_members_past_a_page_are_listed_after_its_end_cursor(
    pages_api: Api, pages_url: str
) -> None:
    number = _busiest(pages_url)
    stored = _members(pages_url)[number]
    assert len(stored) > 10
    listed: list[str] = []
    after = None
    for _ in range(len(stored)):  # pages of five: a page that never ends fails, not hangs
        answer = pages_api.graphql(AFTER, PROVINCE, {"number": number, "after": after})
        assert "errors" not in answer, answer
        page = answer["data"]["cooperative"]["memberMsmes"]
        assert page["totalCount"] == len(stored)
        listed += [node["nib"] for node in page["nodes"]]
        if page["nodes"]:
            assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert listed == stored


def test_a_page_after_a_cursor_is_one_statement_for_all_cooperatives(
    pages_api: Api, pages_url: str
) -> None:
    """Every cooperative's page after the same cursor is read at once, whatever their number:
    the cursor does not turn the set-based read into one statement per cooperative."""
    after = run(
        pages_url,
        "SELECT id FROM msmes WHERE province_code = '62' AND cooperative_id IS NOT NULL"
        " ORDER BY id LIMIT 1 OFFSET 3",
    )[0]["id"]
    expected = {
        row["legal_entity_no"]: row["nibs"]
        for row in run(
            pages_url,
            """SELECT c.legal_entity_no, array_agg(m.nib ORDER BY m.id) AS nibs
                 FROM cooperatives c JOIN msmes m ON m.cooperative_id = c.id
                WHERE m.province_code = '62' AND m.id > $1 GROUP BY c.legal_entity_no""",
            after,
        )
    }
    counted = []
    for cooperatives in (2, 50):
        with recorded_statements() as statements:
            answer = pages_api.graphql(
                EVERY_AFTER % cooperatives, PROVINCE, {"after": encode_cursor("msme", after)}
            )
        assert "errors" not in answer, answer
        counted.append(len([sql for sql in statements if "msmes" in sql]))
        for node in answer["data"]["cooperatives"]["nodes"]:
            nibs = expected.get(node["legalEntityNo"], [])
            page = node["memberMsmes"]
            assert [member["nib"] for member in page["nodes"]] == nibs[:1]
            assert page["pageInfo"]["hasNextPage"] == (len(nibs) > 1)
    assert counted[0] == counted[1]


@pytest.mark.parametrize("cursor", [encode_cursor("cooperative", 1), "not a cursor"])
def test_a_cursor_of_another_list_is_refused_naming_after(
    pages_api: Api, pages_url: str, cursor: str
) -> None:
    variables = {"number": _busiest(pages_url), "after": cursor}
    answer = pages_api.graphql(AFTER, PROVINCE, variables)
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("after:")
    assert error["path"] == ["cooperative", "memberMsmes"]


RESERVED = ("has_next", "end_id", "msme", "cooperative", "participation", "missing", "subjects")
"""Names the statement of a nested page gives its own columns: a client's alias of its rows
may be any of them."""
ALIASED_ROWS = """%(connection)s { pageInfo { hasNextPage endCursor }
  %(alias)s: %(rows)s { %(selection)s } }"""
ALIASED_AT = {
    "root": 'query Root { msmes(first: 2, filter: {region: "62"}) %s }',
    "lookup": "query One($number: String!) { cooperative(legalEntityNo: $number) { %s } }",
    "page": "query Page { cooperatives(first: 100) { nodes { legalEntityNo %s } } }",
    "under msmes": """query Under { msmes(first: 30, filter: {region: "62"})
      { nodes { nib cooperative { %s } } } }""",
}
ROWS_SELECTED = {"nodes": "nib", "edges": "cursor node { nib }"}


def _renamed(data: Any, old: str, new: str) -> Any:
    """`data` with every key `old` named `new`."""
    if isinstance(data, list):
        return [_renamed(item, old, new) for item in data]
    if isinstance(data, dict):
        return {
            new if key == old else key: _renamed(value, old, new) for key, value in data.items()
        }
    return data


@pytest.mark.parametrize("alias", RESERVED)
@pytest.mark.parametrize("rows", list(ROWS_SELECTED))
@pytest.mark.parametrize("level", list(ALIASED_AT))
def test_a_nested_pages_rows_answer_under_any_alias(
    pages_api: Api, pages_url: str, alias: str, rows: str, level: str
) -> None:
    """The rows come back under the client's alias, whatever the statement calls its own
    columns, as they come back under one it does not use."""

    def document(name: str) -> str:
        connection = "" if level == "root" else "memberMsmes(first: 2)"
        page = ALIASED_ROWS % {
            "connection": connection,
            "alias": name,
            "rows": rows,
            "selection": ROWS_SELECTED[rows],
        }
        return ALIASED_AT[level] % page

    given = {"number": _busiest(pages_url)} if level == "lookup" else None
    expected = _renamed(_compiled(pages_api, document("listed"), given), "listed", alias)
    assert _compiled(pages_api, document(alias), given) == expected
