"""A record's participations and scale history, compiled into its page's or lookup's one
statement: the lists as stored, in the order the DataLoaders read them (participations by id,
scale changes by date), under the selection's keys; audited as the resolvers audit them; and
what the compiler leaves alone (a guarded field, a page inside a list, a null in a non-null
field) answered by the executor as before."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from schema.enums import Scale
from tests.support.demo_data import load_demo
from tests.support.executor import (
    AT,
    assert_the_executor_agrees,
    compiled,
    executed,
    latest_entry,
)
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
NIB = "9990000000001"
"""An MSME of the demo data with two participations."""
WITHOUT = "9990000000005"
"""One with no participation (and, in this module's data, two scale changes at least)."""
COOPERATIVE = "AHU-9990001.AH.01.26.TAHUN 2019"
"""A cooperative with a participation of its own."""

PARTICIPATION = """__typename id role state: status detail startedOn version
  scheme: programme { __typename id name kind legalBasis startsOn
                      jurisdiction { code name } }"""
SCALE_CHANGE = "__typename scale effectiveFrom annualSales capital ruleVersion"
MSME_FIELDS = f"""nib{AT} participations {{ {PARTICIPATION} }}
  history: scaleHistory {{ {SCALE_CHANGE} }}"""
MSME_PAGE = f"""query Page {{ msmes(first: 50, filter: {{region: "62"}})
  {{ nodes {{ {MSME_FIELDS} }} }} }}"""
MSME = f"query Lookup($nib: String!) {{ msme(nib: $nib) {{ {MSME_FIELDS} }} }}"
MEMBERS = f"""query Members {{ msmes(first: 50, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} cooperative {{ name participations {{ {PARTICIPATION} }} }} }} }} }}"""
COOPERATIVES = f"""query Cooperatives {{ cooperatives(first: 50)
  {{ nodes {{ legalEntityNo{AT} participations {{ {PARTICIPATION} }} }} }} }}"""
COOPERATIVE_LOOKUP = f"""query Cooperative($number: String!) {{ cooperative(legalEntityNo: $number)
  {{ legalEntityNo{AT} name participations {{ {PARTICIPATION} }} }} }}"""


@pytest.fixture(scope="module")
def lists_url(module_reference_url: str) -> str:
    """The demo data in a database of this module's own, with a participation and two scale
    changes stored out of the order they are listed in, as rows updated or backdated are: a
    list read without its ORDER BY comes out in the order they are stored."""
    load_demo(module_reference_url, msmes=120, seed=7)
    run(
        module_reference_url,
        """WITH moved AS (DELETE FROM participations WHERE id =
             (SELECT min(p.id) FROM participations p JOIN msmes m ON m.id = p.msme_id
               WHERE m.nib = $1) RETURNING *)
           INSERT INTO participations SELECT * FROM moved""",
        NIB,
    )
    run(
        module_reference_url,
        """INSERT INTO msme_scale_history (msme_id, scale, effective_from, rule_version)
           SELECT id, scale, day::date, 'PP 7/2021' FROM msmes,
                  unnest(ARRAY['2024-06-01', '2021-02-01']) AS day
            WHERE nib = $1""",
        WITHOUT,
    )
    return module_reference_url


@pytest.fixture(scope="module")
def lists_api(lists_url: str) -> Iterator[Api]:
    with served(lists_url) as api:
        yield api


def _participations(url: str, subject: str, key: str) -> list[dict[str, Any]]:
    """The participations of the MSME whose NIB, or the cooperative whose number, is `key`."""
    column = {"msmes": "nib", "cooperatives": "legal_entity_no"}[subject]
    rows = run(
        url,
        f"""SELECT p.*, g.name, g.kind, g.legal_basis, g.starts_on, g.jurisdiction,
                   r.name AS region
              FROM participations p JOIN programmes g ON g.id = p.programme_id
              JOIN regions r ON r.code = g.jurisdiction
              JOIN {subject} s ON s.id = p.{subject[:-1]}_id
             WHERE s.{column} = $1 ORDER BY p.id""",  # noqa: S608  # names written here
        key,
    )
    return [
        {
            "__typename": "Participation",
            "id": str(row["id"]),
            "role": row["role"],
            "state": row["status"].upper(),  # as the ParticipationStatus enum names it
            "detail": row["detail"],
            "startedOn": _day(row["started_on"]),
            "version": row["version"],
            "scheme": {
                "__typename": "Programme",
                "id": row["programme_id"],
                "name": row["name"],
                "kind": row["kind"],
                "legalBasis": row["legal_basis"],
                "startsOn": _day(row["starts_on"]),
                "jurisdiction": {"code": row["jurisdiction"], "name": row["region"]},
            },
        }
        for row in rows
    ]


def _scale_history(url: str, nib: str) -> list[dict[str, Any]]:
    rows = run(
        url,
        """SELECT h.* FROM scale_history h JOIN msmes m ON m.id = h.msme_id
            WHERE m.nib = $1 ORDER BY h.effective_from""",
        nib,
    )
    return [
        {
            "__typename": "ScaleChange",
            "scale": Scale(row["scale"]).name,
            "effectiveFrom": row["effective_from"].isoformat(),
            "annualSales": _text(row["annual_sales"]),
            "capital": _text(row["capital"]),
            "ruleVersion": row["rule_version"],
        }
        for row in rows
    ]


def _day(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)


def _msme(url: str, nib: str) -> dict[str, Any]:
    return {
        "nib": nib,
        "participations": _participations(url, "msmes", nib),
        "history": _scale_history(url, nib),
    }


def _compiled(api: Api, document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be the compiled statement's alone: no list read on its own."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), PROVINCE, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "participations" in sql or "scale_history" in sql]
    assert reads
    assert all("json_agg" in sql for sql in reads), reads
    return answer["data"]


def test_a_page_lists_each_msmes_participations_and_scale_history_as_stored(
    lists_api: Api, lists_url: str
) -> None:
    nodes = _compiled(lists_api, MSME_PAGE)["msmes"]["nodes"]
    assert nodes == [_msme(lists_url, node["nib"]) for node in nodes]
    by_nib = {node["nib"]: node for node in nodes}
    assert by_nib[WITHOUT]["participations"] == []
    assert len(by_nib[NIB]["participations"]) == 2
    assert len(by_nib[WITHOUT]["history"]) >= 2


@pytest.mark.parametrize("nib", [NIB, WITHOUT])
def test_a_lookup_lists_its_participations_and_scale_history_as_stored(
    lists_api: Api, lists_url: str, nib: str
) -> None:
    answer = _compiled(lists_api, MSME, {"nib": nib})
    assert answer == {"msme": _msme(lists_url, nib)}
    assert list(answer["msme"]) == ["nib", "participations", "history"]


def test_a_cooperative_lists_its_participations_as_stored(lists_api: Api, lists_url: str) -> None:
    expected = _participations(lists_url, "cooperatives", COOPERATIVE)
    assert expected
    found = _compiled(lists_api, COOPERATIVE_LOOKUP, {"number": COOPERATIVE})["cooperative"]
    assert found["participations"] == expected
    nodes = _compiled(lists_api, COOPERATIVES)["cooperatives"]["nodes"]
    assert [node["participations"] for node in nodes] == [
        _participations(lists_url, "cooperatives", node["legalEntityNo"]) for node in nodes
    ]


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (MSME_PAGE, None),
        (MSME, {"nib": NIB}),
        (MSME, {"nib": WITHOUT}),
        (COOPERATIVES, None),
        (MEMBERS, None),
        (COOPERATIVE_LOOKUP, {"number": COOPERATIVE}),
    ],
)
def test_the_executor_answers_and_audits_the_same(
    lists_api: Api, lists_url: str, document: str, variables: dict[str, Any] | None
) -> None:
    expected = _compiled(lists_api, document, variables)
    assert_the_executor_agrees(lists_api, lists_url, PROVINCE, document, variables, expected)


def test_the_audit_entry_counts_the_participations_listed(lists_api: Api, lists_url: str) -> None:
    nodes = _compiled(lists_api, MSME_PAGE)["msmes"]["nodes"]
    listed = sum(len(node["participations"]) for node in nodes)
    assert listed >= 2
    assert latest_entry(lists_url, PROVINCE).entry["records"] == {
        "msme": len(nodes),
        "participation": listed,
    }
    _compiled(lists_api, MSME, {"nib": WITHOUT})
    assert latest_entry(lists_url, PROVINCE).entry["records"] == {"msme": 1}


@pytest.mark.parametrize(
    "inner",
    [
        "msme { nib changes { operation } }",
        "changes { operation }",
    ],
)
def test_what_a_participation_leaves_to_the_executor_is_resolved_row_by_row(
    lists_api: Api, lists_url: str, inner: str
) -> None:
    document = f'{{ msme(nib: "{NIB}") {{ nib participations {{ id {inner} }} }} }}'
    with recorded_statements() as statements:
        answer = lists_api.graphql(document, PROVINCE)
    assert "errors" not in answer, answer
    assert not any("json_agg" in sql for sql in statements)
    expected = _participations(lists_url, "msmes", NIB)
    assert [item["id"] for item in answer["data"]["msme"]["participations"]] == [
        item["id"] for item in expected
    ]


def test_a_null_in_a_non_null_field_of_a_list_is_the_executors_error(
    lists_api: Api, lists_url: str
) -> None:
    """The statement notices the null and hands the request to the executor, which reports it."""
    roles = run(
        lists_url,
        "SELECT p.id, p.role FROM participations p JOIN msmes m ON m.id = p.msme_id"
        " WHERE m.nib = $1",
        NIB,
    )
    run(lists_url, "ALTER TABLE participations ALTER COLUMN role DROP NOT NULL")
    try:
        run(lists_url, "UPDATE participations SET role = NULL WHERE id = $1", roles[0]["id"])
        for document, variables in ((MSME, {"nib": NIB}), (MSME_PAGE, None)):
            with recorded_statements() as statements:
                answer = lists_api.graphql(compiled(document), PROVINCE, variables)
            assert any("json_agg" in sql for sql in statements)
            expected = lists_api.graphql(executed(document), PROVINCE, variables)
            assert answer["data"] == expected["data"]
            (error,) = answer["errors"]
            assert error["extensions"]["code"] == "INTERNAL"  # as for any null in a non-null field
            assert error["path"] == expected["errors"][0]["path"]
            assert error["path"][-1] == "role"
    finally:
        for row in roles:
            run(lists_url, "UPDATE participations SET role = $2 WHERE id = $1", *row)
        run(lists_url, "ALTER TABLE participations ALTER COLUMN role SET NOT NULL")
