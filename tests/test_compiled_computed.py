"""A cooperative's computed fields, `isActive` and `memberCount`, written by its page's or
lookup's one statement from the SQL their declarations give beside their resolvers
(schema/types/records.py): the answers and audit entries the executor gives row by row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.demo_data import load_demo
from tests.support.executor import AT, assert_the_executor_agrees, compiled
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
FIELDS = f"legalEntityNo{AT} isActive memberCount"
PAGE = f"query Page {{ cooperatives(first: 100) {{ nodes {{ {FIELDS} }} }} }}"
LOOKUP = f"""query One($number: String!) {{ cooperative(legalEntityNo: $number)
  {{ {FIELDS} }} }}"""
UNDER_MSMES = f"""query Members {{ msmes(first: 50, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} cooperative {{ legalEntityNo isActive memberCount }} }} }} }}"""


@pytest.fixture(scope="module")
def computed_url(module_reference_url: str) -> str:
    """The demo data in a database of this module's own, with cooperatives of every status."""
    load_demo(module_reference_url, msmes=120, seed=11)
    return module_reference_url


@pytest.fixture(scope="module")
def computed_api(computed_url: str) -> Iterator[Api]:
    with served(computed_url) as api:
        yield api


def _compiled(api: Api, document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be one statement's that builds the JSON: no row read apart."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), PROVINCE, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "cooperatives" in sql]
    assert len(reads) == 1, reads
    assert "json_build_object" in reads[0]
    return answer["data"]


def _stored(url: str) -> dict[str, dict[str, Any]]:
    """Each cooperative of the province, as its computed fields should read, by number."""
    rows = run(
        url,
        """SELECT legal_entity_no, status, members_male, members_female FROM cooperatives
            WHERE province_code = '62'""",
    )
    return {
        row["legal_entity_no"]: {
            "legalEntityNo": row["legal_entity_no"],
            "isActive": row["status"] == "active",
            "memberCount": row["members_male"] + row["members_female"],
        }
        for row in rows
    }


def test_a_page_computes_each_cooperatives_fields_as_the_resolvers_do(
    computed_api: Api, computed_url: str
) -> None:
    stored = _stored(computed_url)
    nodes = _compiled(computed_api, PAGE)["cooperatives"]["nodes"]
    assert nodes == [stored[node["legalEntityNo"]] for node in nodes]
    assert {node["isActive"] for node in nodes} == {True, False}
    assert len({node["memberCount"] for node in nodes}) > 1


@pytest.mark.parametrize(
    ("document", "variables"),
    [(PAGE, None), (LOOKUP, "first"), (UNDER_MSMES, None)],
    ids=["page", "lookup", "under msmes"],
)
def test_the_executor_answers_and_audits_the_same(
    computed_api: Api, computed_url: str, document: str, variables: str | None
) -> None:
    given = None
    if variables is not None:
        given = {"number": sorted(_stored(computed_url))[0]}
    expected = _compiled(computed_api, document, given)
    assert_the_executor_agrees(computed_api, computed_url, PROVINCE, document, given, expected)
