"""A compiled root field selected directly and again inside a root fragment spread or inline
fragment: GraphQL merges the copies, so the answer holds every field of every copy, in the
order graphql-core collects them, from as many statements as the field written once, and the
audit entry lists exactly the fields handed out. Where `@skip` or `@include` decide which copies
merge, each request gets its own copies' fields, however the requests before it decided."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import pytest

from schema.compiled import PLANS
from tests.support.executor import audit_head, entries_after, latest_entry
from tests.support.http import Api
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-61"
MINISTRY = "demo-ministry"

SPREAD = """{ msmes(first: 2) { nodes { id } } ...F }
fragment F on Query { msmes(first: 2) { nodes { name nib } totalCount } }"""
INLINE = (
    """{ msmes(first: 2) { nodes { id } } ... on Query { msmes(first: 2) { nodes { name } } } }"""
)
RECORD = """query($nib: String!) { msme(nib: $nib) { id } ...F }
fragment F on Query { msme(nib: $nib) { name } }"""
COOPERATIVE = """query($number: String!) { cooperative(legalEntityNo: $number) { id } ...F }
fragment F on Query { cooperative(legalEntityNo: $number) { name memberCount } }"""
PROGRAMMES = """{ programmes { id } ... on Query { programmes { name } } }"""
REGION = """{ region(code: "62") { code } ...F }
fragment F on Query { region(code: "62") { name level } }"""
NATION = """{ indonesia { code } ... { indonesia { name children { code } } } }"""

MERGED = [
    (SPREAD, "{ msmes(first: 2) { nodes { id name nib } totalCount } }", PROVINCE),
    (INLINE, "{ msmes(first: 2) { nodes { id name } } }", PROVINCE),
    (RECORD, "query($nib: String!) { msme(nib: $nib) { id name } }", PROVINCE),
    (
        COOPERATIVE,
        "query($number: String!) { cooperative(legalEntityNo: $number) { id name memberCount } }",
        PROVINCE,
    ),
    (PROGRAMMES, "{ programmes { id name } }", PROVINCE),
    (REGION, '{ region(code: "62") { code name level } }', MINISTRY),
    (NATION, "{ indonesia { code name children { code } } }", MINISTRY),
]
"""Each document with its copies merged, the same document written once, and who sends it."""


def _variables(url: str) -> dict[str, Any]:
    """A province-61 MSME's NIB and a province-61 cooperative's number."""
    ((msme,),) = [tuple(row.values()) for row in run(url, _FIRST_61.format(table="msmes"))]
    ((number,),) = [tuple(row.values()) for row in run(url, _FIRST_COOPERATIVE_61)]
    return {"nib": msme, "number": number}


_FIRST_61 = "SELECT nib FROM {table} WHERE province_code = '61' ORDER BY id LIMIT 1"
_FIRST_COOPERATIVE_61 = (
    "SELECT legal_entity_no FROM cooperatives WHERE province_code = '61' ORDER BY id LIMIT 1"
)


def _answered(api: Api, document: str, client: str, variables: dict[str, Any]) -> Any:
    """The answer, and how many statements read the records it shows."""
    used = {name: value for name, value in variables.items() if f"${name}" in document}
    with recorded_statements() as statements:
        answer = api.graphql(document, client, used or None)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "audit" not in sql and _READ.search(sql)]
    return answer["data"], len(reads)


_READ = re.compile(r"\b(msmes|cooperatives|programmes|regions)\b")


@pytest.mark.parametrize(
    ("document", "once", "client"),
    MERGED,
    ids=["spread", "inline", "msme", "cooperative", "programmes", "region", "indonesia"],
)
def test_a_root_field_merged_from_a_fragment_answers_every_copys_fields(
    api: Api, demo_url: str, document: str, once: str, client: str
) -> None:
    variables = _variables(demo_url)
    head = audit_head(demo_url)
    expected, expected_statements = _answered(api, once, client, variables)
    expected_entries = _audited(demo_url, client, head)
    head = audit_head(demo_url)
    data, statements = _answered(api, document, client, variables)
    assert data == expected
    assert statements == expected_statements
    assert _audited(demo_url, client, head) == expected_entries
    assert bool(expected_entries) == (client == PROVINCE and "programmes" not in once)


def _audited(url: str, client: str, head: int) -> list[tuple[Any, ...]]:
    """What the entries `client`'s requests wrote after `head` say of the fields and records
    handed out (none for public reference)."""
    return [
        (row.entry.get("touched"), row.entry.get("records"), row.subjects)
        for row in entries_after(url, client, head)
    ]


def test_the_audit_entry_lists_exactly_the_fields_handed_out(api: Api, demo_url: str) -> None:
    data, _ = _answered(api, SPREAD, PROVINCE, {})
    assert [set(node) for node in data["msmes"]["nodes"]] == [{"id", "name", "nib"}] * 2
    assert isinstance(data["msmes"]["totalCount"], int)
    entry = latest_entry(demo_url, PROVINCE).entry
    assert entry["touched"] == [
        "Msme.id",
        "Msme.name",
        "Msme.nib",
        "MsmeConnection.nodes",
        "MsmeConnection.totalCount",
        "Query.msmes",
    ]


CONDITIONAL = [
    """query($on: Boolean!) { msmes(first: 2) { nodes { id } } ...F @include(if: $on) }
    fragment F on Query { msmes(first: 2) { nodes { name } totalCount } }""",
    """query($on: Boolean!) { msmes(first: 2) { nodes { id } }
    ... @skip(if: $on) { msmes(first: 2) { nodes { name } totalCount } } }""",
]


@pytest.mark.parametrize("document", CONDITIONAL, ids=["include on a spread", "skip inline"])
def test_copies_a_variable_includes_are_merged_for_the_requests_that_include_them(
    api: Api, document: str
) -> None:
    for on in (True, False, True, False):
        merged = on == ("@include" in document)
        answer = api.graphql(document, PROVINCE, {"on": on})
        assert "errors" not in answer, answer
        page = answer["data"]["msmes"]
        assert [set(node) for node in page["nodes"]] == [{"id", "name"} if merged else {"id"}] * 2
        assert ("totalCount" in page) == merged


def test_a_root_field_written_once_inside_a_conditional_fragment_is_still_one_statement(
    api: Api,
) -> None:
    document = """query($on: Boolean!) { ...F @include(if: $on) }
    fragment F on Query { msmes(first: 2) { nodes { id name } } }"""
    for on in (True, False):
        with recorded_statements() as statements:
            answer = api.graphql(document, PROVINCE, {"on": on})
        assert "errors" not in answer, answer
        reads = [sql for sql in statements if "msmes" in sql]
        if on:
            assert [set(node) for node in answer["data"]["msmes"]["nodes"]] == [{"id", "name"}] * 2
            assert len(reads) == 1, reads
            assert "json_build_object" in reads[0]
        else:
            assert answer["data"] == {}
            assert reads == []


EVICTING = ((True, False), (False, True), (True, False), (True, True), (False, False))
"""Requests (`on`, whether the plans are evicted before it), the document parsed by the first:
whichever value leaves a copy out, a request sending it finds the plan missing, and the next
merges the copy."""
EVICTED = [
    *CONDITIONAL,
    """query($on: Boolean!) { ...F @include(if: $on) msmes(first: 2) { nodes { id } } }
    fragment F on Query { msmes(first: 2) { nodes { name } totalCount } }""",
]


@pytest.mark.parametrize(
    "document", EVICTED, ids=["include on a spread", "skip inline", "include before"]
)
def test_a_plan_made_again_after_eviction_holds_for_every_request(
    api: Api, document: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The document stays parsed while its plans are evicted (more root fields since than the
    plan cache holds): the plan made again must be the document's, not that of the request
    that found it missing, whose `@include` or `@skip` had left out some copies."""
    for on, evicted in EVICTING:
        if evicted:
            monkeypatch.setattr(PLANS, "_plans", OrderedDict())
        merged = on == ("@include" in document)
        answer = api.graphql(document, PROVINCE, {"on": on})
        assert "errors" not in answer, answer
        page = answer["data"]["msmes"]
        assert [set(node) for node in page["nodes"]] == [{"id", "name"} if merged else {"id"}] * 2
        assert ("totalCount" in page) == merged


FEED = """query($on: Boolean!) { msmeChanges(first: 2) { entries { id } } ...F @include(if: $on) }
fragment F on Query { msmeChanges(first: 2) { entries { change } } }"""


def test_a_change_feeds_plan_holds_for_requests_a_variable_includes_more_copies_for(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed's entries are planned when the executor first resolves them, by the document's
    first request or the first after an eviction: from the document, so a request leaving a
    copy out does not decide the fields of the next that merges it."""
    for on, evicted in ((False, False), (True, False), (False, True), (True, False)):
        if evicted:
            monkeypatch.setattr(PLANS, "_plans", OrderedDict())
        answer = api.graphql(FEED, PROVINCE, {"on": on})
        assert "errors" not in answer, answer
        entries = answer["data"]["msmeChanges"]["entries"]
        assert entries
        assert [set(entry) for entry in entries] == [{"id", "change"} if on else {"id"}] * 2
