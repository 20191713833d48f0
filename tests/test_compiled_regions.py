"""Regions, looked up by code or from the nation down, compiled into one statement: each
region's parent and province joined, its children aggregated in code order, level by level.

Regions are public reference: every caller reads them all, and reading them hands out no record,
so no audit entry is written. A code that names no region is refused as the executor refuses it,
naming `code`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.executor import compiled, executed
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
MINISTRY = "demo-ministry"
AT = "<at>"
TREE = f"""query Tree {{ indonesia {{ code{AT} level name parent {{ code }} children {{ code name
  level province {{ name }} children {{ code name parent {{ code }} }} }} }} }}"""
REGION = f"""query Region($code: String!) {{ region(code: $code) {{ code{AT} name level
  province {{ code }} parent {{ code name }} children {{ code level }} }} }}"""


def _compiled(api: Api, document: str, client: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be one statement's, and the executor's answer to the same
    document."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), client, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "regions" in sql]
    assert len(reads) == 1, reads
    assert "json_agg" in reads[0] or "json_build_object" in reads[0]
    assert api.graphql(executed(document), client, variables) == answer
    return answer["data"]


def _children(url: str) -> dict[str, list[dict[str, Any]]]:
    """Each region's children as stored, in code order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for row in run(url, "SELECT code, level, name, parent_code FROM regions ORDER BY code"):
        if row["parent_code"] is not None:
            found.setdefault(row["parent_code"], []).append(dict(row))
    return found


def test_the_tree_from_the_nation_down_is_one_statement(api: Api, demo_url: str) -> None:
    children = _children(demo_url)
    answer = _compiled(api, TREE, PROVINCE)
    assert answer == {
        "indonesia": {
            "code": "ID",
            "level": "NATIONAL",
            "name": "Indonesia",
            "parent": None,
            "children": [
                {
                    "code": province["code"],
                    "name": province["name"],
                    "level": "PROVINCE",
                    "province": {"name": province["name"]},
                    "children": [
                        {
                            "code": regency["code"],
                            "name": regency["name"],
                            "parent": {"code": province["code"]},
                        }
                        for regency in children.get(province["code"], [])
                    ],
                }
                for province in children["ID"]
            ],
        }
    }
    assert len(answer["indonesia"]["children"]) >= 30


@pytest.mark.parametrize("code", ["62", "62.71", "62.71.01", "ID"])
def test_a_region_by_code_is_one_statement(api: Api, demo_url: str, code: str) -> None:
    (row,) = run(
        demo_url,
        """SELECT r.code, r.name, r.level, p.code AS parent, p.name AS parent_name
             FROM regions r LEFT JOIN regions p ON p.code = r.parent_code WHERE r.code = $1""",
        code,
    )
    answer = _compiled(api, REGION, MINISTRY, {"code": code})
    assert answer == {
        "region": {
            "code": code,
            "name": row["name"],
            "level": row["level"].upper(),
            "province": None if code == "ID" else {"code": code[:2]},
            "parent": None
            if row["parent"] is None
            else {"code": row["parent"], "name": row["parent_name"]},
            "children": [
                {"code": child["code"], "level": child["level"].upper()}
                for child in _children(demo_url).get(code, [])
            ],
        }
    }


def test_reading_regions_writes_no_audit_entry(api: Api, demo_url: str) -> None:
    (before,) = run(demo_url, "SELECT max(seq) FROM audit_log")
    _compiled(api, TREE, PROVINCE)
    _compiled(api, REGION, PROVINCE, {"code": "62.71"})
    (after,) = run(demo_url, "SELECT max(seq) FROM audit_log")
    assert after["max"] == before["max"]


@pytest.mark.parametrize(
    ("code", "reason"), [("62.99", "unknown region code"), ("6x", ""), ("", "")]
)
def test_a_code_naming_no_region_is_refused_naming_code(api: Api, code: str, reason: str) -> None:
    for document in (compiled(REGION), executed(REGION)):
        answer = api.graphql(document, PROVINCE, {"code": code})
        (error,) = answer["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith("code:")
        assert reason in error["message"]
        assert answer["data"] == {"region": None}
