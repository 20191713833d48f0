"""An MSME's owner, compiled into its page's or lookup's one statement for a caller with
`pii:read`: the personal data as stored, each owner's NIK in the audit entry as a data subject,
the same answer and audit entry the executor gives row by row. And the attacks: a caller
without `pii:read` never runs a statement that reads `msme_owners`, even with a document a
caller with it has just run, and gets each owner nulled with FORBIDDEN, as before; the
statement selects only the personal columns asked for (and the NIK, for the audit)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from domain.personal import OWNER_FIELDS
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
"""A client of province 62 with pii:read."""
WITHOUT_OWNER = "9990000000002"
"""An MSME of the province whose owner this module's data erases."""
OWNER = " ".join(field.name for field in OWNER_FIELDS)
PAGE = f"""query Owners {{ msmes(first: 60, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} owner {{ __typename {OWNER} }} }}
     edges {{ node {{ nib holder: owner {{ nik }} }} }} }} }}"""
LOOKUP = f"""query Owner($nib: String!) {{ msme(nib: $nib)
  {{ nib{AT} name owner {{ {OWNER} }} }} }}"""
INSIDE_LISTS = f"""query Inside {{ msmes(first: 60, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} participations {{ msme {{ owner {{ nik fullName }} }} }}
     cooperative {{ memberMsmes(first: 3) {{ nodes {{ nib owner {{ {OWNER} }} }} }} }} }} }} }}"""
"""Owners inside a list and inside a nested page, below a page."""
TWO_DEEP = f"""query Deep($number: String!) {{ cooperative(legalEntityNo: $number)
  {{ legalEntityNo{AT} memberMsmes(first: 50) {{ edges {{ node {{ nib
     participations {{ msme {{ holder: owner {{ nik }} }} }} }} }} }} }} }}"""
"""Owners inside a list inside a nested page, below a lookup."""
NAME_ONLY = """query Names { msmes(first: 60, filter: {region: "62"})
  { nodes { nib owner { fullName } } } }"""


@pytest.fixture(scope="module")
def owner_url(module_reference_url: str) -> str:
    """The demo data in a database of this module's own, one MSME's owner erased, and the
    province's first cooperative given a dozen members, the MSMEs that take part in programmes
    first."""
    load_demo(module_reference_url, msmes=120, seed=5)
    run(
        module_reference_url,
        "DELETE FROM msme_owners WHERE msme_id = (SELECT id FROM msmes WHERE nib = $1)",
        WITHOUT_OWNER,
    )
    run(
        module_reference_url,
        """UPDATE msmes SET cooperative_id = $1 WHERE id IN (SELECT id FROM msmes
             WHERE province_code = '62' ORDER BY EXISTS (SELECT FROM participations p
                   WHERE p.msme_id = msmes.id) DESC, id LIMIT 12)""",
        _first_cooperative(module_reference_url),
    )
    return module_reference_url


def _first_cooperative(url: str) -> int:
    (row,) = run(url, "SELECT id FROM cooperatives WHERE province_code = '62' ORDER BY id LIMIT 1")
    return int(row["id"])


@pytest.fixture(scope="module")
def owner_api(owner_url: str) -> Iterator[Api]:
    with served(owner_url) as api:
        yield api


def _owners(url: str) -> dict[str, dict[str, Any] | None]:
    """Each MSME of the province by NIB, with its owner as the API names the fields."""
    columns = ", ".join(f"o.{field.column}" for field in OWNER_FIELDS)
    rows = run(
        url,
        f"""SELECT m.nib, o.msme_id IS NOT NULL AS owned, {columns} FROM msmes m
              LEFT JOIN msme_owners o ON o.msme_id = m.id
             WHERE m.province_code = '62'""",  # noqa: S608  # names written here
    )
    return {
        row["nib"]: {field.name: _json(row[field.column]) for field in OWNER_FIELDS}
        if row["owned"]
        else None
        for row in rows
    }


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _compiled(api: Api, document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be one statement's that builds the JSON, owners included."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), PROVINCE, variables)
    assert "errors" not in answer, answer
    reads = [sql for sql in statements if "msmes" in sql or "msme_owners" in sql]
    assert len(reads) == 1, reads
    assert "json_build_object" in reads[0]
    assert "msme_owners" in reads[0]
    return answer["data"]


def test_a_page_shows_each_owner_as_stored_and_audits_their_niks(
    owner_api: Api, owner_url: str
) -> None:
    stored = _owners(owner_url)
    page = _compiled(owner_api, PAGE)["msmes"]
    nodes = page["nodes"]
    assert len(nodes) == len(stored)
    for node in nodes:
        owner = stored[node["nib"]]
        assert node["owner"] == (None if owner is None else {"__typename": "Owner", **owner})
    assert [edge["node"]["holder"] for edge in page["edges"]] == [
        None if stored[node["nib"]] is None else {"nik": stored[node["nib"]]["nik"]}
        for node in nodes
    ]
    assert stored[WITHOUT_OWNER] is None
    audited = latest_entry(owner_url, PROVINCE)
    assert audited.subjects == sorted(
        owner["nik"] for owner in stored.values() if owner is not None
    )
    assert audited.entry["fields"]["Msme.owner"] == ["pii:read"]
    assert audited.entry["records"] == {"msme": len(stored)}


@pytest.mark.parametrize(
    ("document", "nib"),
    [(PAGE, None), (LOOKUP, "9990000000001"), (LOOKUP, WITHOUT_OWNER)],
    ids=["page", "lookup", "lookup without an owner"],
)
def test_the_executor_answers_and_audits_the_same(
    owner_api: Api, owner_url: str, document: str, nib: str | None
) -> None:
    variables = None if nib is None else {"nib": nib}
    expected = _compiled(owner_api, document, variables)
    assert_the_executor_agrees(owner_api, owner_url, PROVINCE, document, variables, expected)


@pytest.mark.parametrize("document", [PAGE, LOOKUP], ids=["page", "lookup"])
def test_without_pii_read_no_statement_reads_owners_even_after_a_caller_with_it(
    owner_api: Api, owner_url: str, document: str
) -> None:
    """The plan of the document is made and kept by the first caller, who may read owners;
    the second may not, and must not run that plan's statement."""
    variables = {"nib": "9990000000001"}
    _compiled(owner_api, document, variables)
    token = owner_api.token(PROVINCE, scope="records:read")
    with recorded_statements() as statements:
        response = owner_api.post({"query": compiled(document), "variables": variables}, token)
    answer = response.json()
    assert not [sql for sql in statements if "msme_owners" in sql]
    errors = answer["errors"]
    assert errors
    assert {error["extensions"]["code"] for error in errors} == {"FORBIDDEN"}
    assert all(error["path"][-1] in ("owner", "holder") for error in errors)
    niks = [owner["nik"] for owner in _owners(owner_url).values() if owner is not None]
    assert not [nik for nik in niks if nik in response.text]
    audited = latest_entry(owner_url, PROVINCE)
    assert audited.subjects == []
    assert "Msme.owner" not in audited.entry["fields"]


def test_the_statement_selects_only_the_personal_columns_asked_for_and_the_nik(
    owner_api: Api, owner_url: str
) -> None:
    with recorded_statements() as statements:
        answer = owner_api.graphql(NAME_ONLY, PROVINCE)
    assert "errors" not in answer, answer
    (read,) = [sql for sql in statements if "msme_owners" in sql]
    selected = {field.column for field in OWNER_FIELDS if f".{field.column}" in read}
    assert selected == {"nik", "full_name"}
    owners = _owners(owner_url)
    nodes = answer["data"]["msmes"]["nodes"]
    assert all(set(node["owner"] or {}) <= {"fullName"} for node in nodes)
    subjects = latest_entry(owner_url, PROVINCE).subjects
    assert subjects == sorted(owner["nik"] for owner in owners.values() if owner is not None)


def _niks(value: Any) -> set[str]:
    """Every NIK an answer shows (under `nik`, whatever the owner is called)."""
    if isinstance(value, dict):
        found = {value["nik"]} if isinstance(value.get("nik"), str) else set()
        return found.union(*map(_niks, value.values()))
    if isinstance(value, list):
        return set().union(*map(_niks, value))
    return set()


def _cooperative_number(url: str) -> str:
    (row,) = run(
        url, "SELECT legal_entity_no FROM cooperatives WHERE id = $1", _first_cooperative(url)
    )
    return str(row["legal_entity_no"])


@pytest.mark.parametrize(
    "document", [INSIDE_LISTS, TWO_DEEP], ids=["in a list and a page", "in a list in a page"]
)
def test_owners_inside_lists_and_pages_are_compiled_and_audited_as_the_executor_does(
    owner_api: Api, owner_url: str, document: str
) -> None:
    variables = {"number": _cooperative_number(owner_url)} if document is TWO_DEEP else None
    data = _compiled(owner_api, document, variables)
    shown = _niks(data)
    assert len(shown) >= 3  # owners inside the lists and pages, not only at the root
    assert latest_entry(owner_url, PROVINCE).subjects == sorted(shown)
    assert_the_executor_agrees(owner_api, owner_url, PROVINCE, document, variables, data)


def test_without_pii_read_owners_inside_lists_are_forbidden_and_never_read(
    owner_api: Api, owner_url: str
) -> None:
    variables = {"number": _cooperative_number(owner_url)}
    shown = _niks(_compiled(owner_api, TWO_DEEP, variables))
    token = owner_api.token(PROVINCE, scope="records:read")
    with recorded_statements() as statements:
        response = owner_api.post({"query": compiled(TWO_DEEP), "variables": variables}, token)
    assert not [sql for sql in statements if "msme_owners" in sql]
    errors = response.json()["errors"]
    assert errors
    assert {error["extensions"]["code"] for error in errors} == {"FORBIDDEN"}
    assert all(error["path"][-1] == "holder" for error in errors)
    assert not [nik for nik in shown if nik in response.text]
    assert latest_entry(owner_url, PROVINCE).subjects == []


CONDITIONAL = {
    "include": """query O2($c: Boolean!) { msmes(first: 2, filter: {region: "62"})
      { nodes { nib ...F @include(if: $c) } } } fragment F on Msme { owner { nik } }""",
    "skip": """query O3($c: Boolean!) { msmes(first: 2, filter: {region: "62"})
      { nodes { nib ... on Msme @skip(if: $c) { holder: owner { nik } } } } }""",
    "on the field": """query O4($c: Boolean!) { msmes(first: 2, filter: {region: "62"})
      { nodes { nib owner @include(if: $c) { nik fullName } } } }""",
}
"""Documents whose owners a variable hands out or leaves out, one request after the other."""


@pytest.mark.parametrize("document", list(CONDITIONAL.values()), ids=list(CONDITIONAL))
def test_the_entry_names_the_personal_fields_each_request_hands_out(
    owner_api: Api, owner_url: str, document: str
) -> None:
    """@skip and @include are decided by each request's variables: the same document names the
    owner's fields when it hands them out, and not when it does not, in either order."""
    shows = "@include" in document
    for shown in (True, False, True):
        answer = owner_api.graphql(document, PROVINCE, {"c": shown if shows else not shown})
        assert "errors" not in answer, answer
        nodes = answer["data"]["msmes"]["nodes"]
        assert all((len(node) > 1) is shown for node in nodes), nodes
        audited = latest_entry(owner_url, PROVINCE)
        personal = [field for field in audited.entry["personalFields"] if "Owner" in field]
        assert bool(personal) is shown, audited.entry
        assert ("Msme.owner" in audited.entry["touched"]) is shown
        assert bool(audited.subjects) is shown


OWNER_KIND = f"""query OwnerKind {{ msmes(first: 60, filter: {{region: "62"}})
  {{ nodes {{ nib{AT} owner {{ __typename }} }} }} }}"""


@pytest.mark.parametrize("rows", [compiled, executed], ids=["compiled", "row by row"])
def test_owners_shown_by_their_type_alone_are_itemised_as_the_msmes_owner(
    owner_api: Api, owner_url: str, rows: Any
) -> None:
    """An owner selected for its `__typename` alone still tells which businesses have one, and
    names them as data subjects: the entry itemises `Msme.owner`, so a reader of the trail sees
    why those subjects are there."""
    answer = owner_api.graphql(rows(OWNER_KIND), PROVINCE)
    assert "errors" not in answer, answer
    audited = latest_entry(owner_url, PROVINCE)
    assert audited.subjects
    assert audited.entry["personalFields"] == ["Msme.owner"]
