"""Queries answered by their plan (schema/plan.py) over HTTP: the answer GraphQL prescribes, in
selection order, audited like any read; and what the plan does not take on (a refused guard,
a refused argument, a failure) answered by the executor with its coded errors."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from db.queries import json_pages
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_engine import _latest_entry

PROVINCE = "demo-province-62"
NIB = "9990000000001"


def test_several_roots_answer_in_selection_order_under_their_aliases(api: Api) -> None:
    answer = api.graphql(
        f'{{ second: msme(nib: "{NIB}") {{ name }} __typename'
        f' first: msme(nib: "{NIB}") {{ nib }} missing: msme(nib: "9999999999999") {{ nib }} }}',
        PROVINCE,
    )
    assert "errors" not in answer
    assert list(answer["data"]) == ["second", "__typename", "first", "missing"]
    assert answer["data"]["first"] == {"nib": NIB}
    assert answer["data"]["__typename"] == "Query"
    assert answer["data"]["missing"] is None


PAGE = """query Page($size: Int, $after: String) {
  msmes(first: $size, after: $after, filter: {region: "62"}) {
    __typename totalCount pageInfo { endCursor hasNextPage } nodes { nib } } }"""


def test_pages_follow_their_cursors_with_one_statement_each(api: Api) -> None:
    with recorded_statements() as statements:
        first = api.graphql(PAGE, PROVINCE, {"size": 2})["data"]["msmes"]
    assert len([sql for sql in statements if "json_agg" in sql]) == 1
    assert first["__typename"] == "MsmeConnection"
    assert list(first) == ["__typename", "totalCount", "pageInfo", "nodes"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["totalCount"] > 2
    end = base64.urlsafe_b64decode(first["pageInfo"]["endCursor"]).decode()
    assert end.startswith("msme:")
    after = first["pageInfo"]["endCursor"]
    second = api.graphql(PAGE, PROVINCE, {"size": 2, "after": after})["data"]["msmes"]
    seen = {node["nib"] for node in first["nodes"]}
    assert len(second["nodes"]) == 2
    assert not seen & {node["nib"] for node in second["nodes"]}


def test_a_planned_page_is_audited_with_its_records_and_guarded_field(
    api: Api, demo_url: str
) -> None:
    api.graphql(PAGE, PROVINCE, {"size": 3})
    entry = _latest_entry(demo_url, PROVINCE)
    assert entry["operation"] == "Page"
    assert entry["records"] == {"msme": 3}
    assert entry["fields"] == {"Query.msmes": ["records:read"]}
    assert "Msme.nib" in entry["touched"]


@pytest.mark.parametrize(
    ("query", "client_id", "code", "field"),
    [
        (f'{{ msme(nib: "{NIB}") {{ nib }} }}', "demo-ministry", "FORBIDDEN", None),
        ('{ msme(nib: "12") { nib } }', PROVINCE, "BAD_USER_INPUT", "nib"),
        ("{ msmes(first: 0) { nodes { nib } } }", PROVINCE, "BAD_USER_INPUT", "first"),
        (
            '{ msmes(after: "bm90IGEgY3Vyc29y") { nodes { nib } } }',
            PROVINCE,
            "BAD_USER_INPUT",
            "after",
        ),
    ],
)
def test_what_the_plan_refuses_the_executor_answers_with_a_coded_error(
    api: Api, query: str, client_id: str, code: str, field: str | None
) -> None:
    answer = api.graphql(query, client_id)
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == code
    if field is not None:
        assert error["extensions"]["field"] == field
    assert next(iter(answer["data"].values())) is None


def test_a_failing_statement_is_a_coded_internal_error_and_no_record_is_audited(
    api: Api, demo_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.graphql(PAGE, PROVINCE, {"size": 1})
    before = _latest_entry(demo_url, PROVINCE)

    async def broken(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(json_pages, "fetch", broken)
    answer = api.graphql(PAGE, PROVINCE, {"size": 2})
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "INTERNAL"
    assert answer["data"] == {"msmes": None}
    assert _latest_entry(demo_url, PROVINCE) == before
