"""A participation's MSME and cooperative, and its programme's jurisdiction, compiled into the
statement of the page or lookup that lists the participation: as stored, null where the MSME or
cooperative lies outside the caller's jurisdiction (or there is none), and audited as handed out
exactly as the executor's resolvers audit them.

The schema lets a participation have one subject, the record it is listed under, which the caller
reads already; the join is scoped all the same, as the resolvers' loaders are, so this module's
database drops that constraint and stores participations pointing across provinces: a
province-62 MSME's with a cooperative of province 61, a province-62 cooperative's with an MSME of
province 61."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.demo_data import load_demo
from tests.support.executor import assert_the_executor_agrees, compiled, latest_entry
from tests.support.http import Api, served
from tests.support.statements import recorded_statements
from tests.test_change_feed import run

PROVINCE = "demo-province-62"
NIB = "9990000000001"
"""A province-62 MSME of the demo data with participations of its own."""
NUMBER = "AHU-9990001.AH.01.26.TAHUN 2019"
"""A province-62 cooperative with a participation of its own."""
OUTSIDE = "Luar Yurisdiksi 61"
"""Part of the names given to the province-61 MSME and cooperative the participations point at,
which no province-62 client may see."""

PARTICIPATION = """id scheme: programme { id jurisdiction { code name } }
  msme { nib name province { code } } cooperative { legalEntityNo name }"""
AT = "<at>"
MSME_PAGE = f"""query Page {{ msmes(first: 50, filter: {{region: "62"}}) {{
  nodes {{ nib{AT} participations {{ {PARTICIPATION} }} }}
  edges {{ node {{ nib participations {{ msme {{ nib }} cooperative {{ name }} }} }} }} }} }}"""
MSME = f"""query Lookup($nib: String!) {{ msme(nib: $nib) {{
  nib{AT} participations {{ {PARTICIPATION} }} }} }}"""
COOPERATIVES = f"""query Cooperatives {{ cooperatives(first: 50) {{
  nodes {{ legalEntityNo{AT} participations {{ {PARTICIPATION} }} }} }} }}"""
COOPERATIVE = f"""query Cooperative($number: String!) {{
  cooperative(legalEntityNo: $number) {{
  legalEntityNo{AT} participations {{ {PARTICIPATION} }} }} }}"""
MEMBERS = f"""query Members {{ msmes(first: 50, filter: {{region: "62"}}) {{
  nodes {{ nib{AT} cooperative {{ participations {{ {PARTICIPATION} }} }} }} }} }}"""


@pytest.fixture(scope="module")
def relations_url(module_reference_url: str) -> str:
    """The demo data, with three participations of both an MSME and a cooperative: the
    province-62 MSME `NIB` with the province-62 cooperative `NUMBER`, and with a province-61
    cooperative; and a province-61 MSME with `NUMBER`, of which `NIB` is made a member."""
    url = module_reference_url
    load_demo(url, msmes=120, seed=7)
    run(url, "ALTER TABLE participations DROP CONSTRAINT ck_participations_exactly_one_subject")
    run(
        url,
        """UPDATE msmes SET name = 'Usaha ' || $1
            WHERE id = (SELECT min(id) FROM msmes WHERE province_code = '61')""",
        OUTSIDE,
    )
    run(
        url,
        """UPDATE cooperatives SET name = 'Koperasi ' || $1
            WHERE id = (SELECT min(id) FROM cooperatives WHERE province_code = '61')""",
        OUTSIDE,
    )
    run(
        url,
        """INSERT INTO participations (programme_id, msme_id, cooperative_id, role, status)
           SELECT 'PR-MBG', m.id, c.id, 'supplier', 'active' FROM msmes m, cooperatives c
            WHERE (m.nib = $1 AND (c.legal_entity_no = $2 OR c.name = 'Koperasi ' || $3))
               OR (m.name = 'Usaha ' || $3 AND c.legal_entity_no = $2)""",
        NIB,
        NUMBER,
        OUTSIDE,
    )
    run(
        url,
        """UPDATE msmes SET cooperative_id =
             (SELECT id FROM cooperatives WHERE legal_entity_no = $2) WHERE nib = $1""",
        NIB,
        NUMBER,
    )
    return url


@pytest.fixture(scope="module")
def relations_api(relations_url: str) -> Iterator[Api]:
    with served(relations_url) as api:
        yield api


def _participations(url: str, subject: str, key: str) -> list[dict[str, Any]]:
    """The participations of the MSME whose NIB, or the cooperative whose number, is `key`, as
    stored, with the MSME and cooperative a province-62 caller may read (none outside it)."""
    column = {"msmes": "nib", "cooperatives": "legal_entity_no"}[subject]
    rows = run(
        url,
        f"""SELECT p.id, p.programme_id, g.jurisdiction, r.name AS region,
                   m.nib, m.name AS msme, m.province_code, c.legal_entity_no, c.name AS cooperative
              FROM participations p
              JOIN programmes g ON g.id = p.programme_id
              JOIN regions r ON r.code = g.jurisdiction
              JOIN {subject} s ON s.id = p.{subject[:-1]}_id
              LEFT JOIN msmes m ON m.id = p.msme_id AND m.province_code = '62'
              LEFT JOIN cooperatives c ON c.id = p.cooperative_id AND c.province_code = '62'
             WHERE s.{column} = $1 ORDER BY p.id""",  # noqa: S608  # names written here
        key,
    )
    return [
        {
            "id": str(row["id"]),
            "scheme": {
                "id": row["programme_id"],
                "jurisdiction": {"code": row["jurisdiction"], "name": row["region"]},
            },
            "msme": None
            if row["nib"] is None
            else {"nib": row["nib"], "name": row["msme"], "province": {"code": "62"}},
            "cooperative": None
            if row["legal_entity_no"] is None
            else {"legalEntityNo": row["legal_entity_no"], "name": row["cooperative"]},
        }
        for row in rows
    ]


def _stored_pointers(url: str, subject: str, key: str) -> list[tuple[bool, bool]]:
    """Whether each participation of the record names an MSME, and a cooperative, at all."""
    column = {"msmes": "nib", "cooperatives": "legal_entity_no"}[subject]
    rows = run(
        url,
        f"""SELECT p.msme_id IS NOT NULL, p.cooperative_id IS NOT NULL
              FROM participations p JOIN {subject} s ON s.id = p.{subject[:-1]}_id
             WHERE s.{column} = $1 ORDER BY p.id""",  # noqa: S608  # names written here
        key,
    )
    return [(row[0], row[1]) for row in rows]


def _compiled(api: Api, document: str, variables: dict[str, Any] | None = None) -> Any:
    """The answer, checked to be the compiled statement's alone: no record read on its own."""
    with recorded_statements() as statements:
        answer = api.graphql(compiled(document), PROVINCE, variables)
    assert "errors" not in answer, answer
    tables = ("msmes", "cooperatives", "participations", "programmes")
    reads = [sql for sql in statements if any(table in sql for table in tables)]
    assert reads
    assert all("json_agg" in sql for sql in reads), reads
    return answer["data"]


def test_a_lookup_shows_the_msme_and_cooperative_of_each_participation_inside_its_scope(
    relations_api: Api, relations_url: str
) -> None:
    expected = _participations(relations_url, "msmes", NIB)
    answer = _compiled(relations_api, MSME, {"nib": NIB})
    assert answer == {"msme": {"nib": NIB, "participations": expected}}
    pointers = _stored_pointers(relations_url, "msmes", NIB)
    shown = [(item["msme"] is not None, item["cooperative"] is not None) for item in expected]
    assert (True, False) in pointers  # one with no cooperative
    assert [pair for pair in pointers if pair[1]] == [(True, True), (True, True)]
    assert shown.count((True, True)) == 1  # the other cooperative is outside the province


def test_a_cooperative_shows_the_msme_of_each_participation_inside_its_scope(
    relations_api: Api, relations_url: str
) -> None:
    expected = _participations(relations_url, "cooperatives", NUMBER)
    answer = _compiled(relations_api, COOPERATIVE, {"number": NUMBER})
    assert answer == {"cooperative": {"legalEntityNo": NUMBER, "participations": expected}}
    shown = {(item["msme"] or {}).get("nib") for item in expected}
    assert shown == {NIB, None}  # the province-61 MSME's participation shows none
    assert sum(item["msme"] is None for item in expected) >= 2  # and one that has none


def test_pages_show_each_participations_msme_and_cooperative_as_stored(
    relations_api: Api, relations_url: str
) -> None:
    page = _compiled(relations_api, MSME_PAGE)["msmes"]
    nodes = page["nodes"]
    assert NIB in [node["nib"] for node in nodes]
    assert nodes == [
        {"nib": node["nib"], "participations": _participations(relations_url, "msmes", node["nib"])}
        for node in nodes
    ]
    assert [edge["node"]["nib"] for edge in page["edges"]] == [node["nib"] for node in nodes]
    assert [edge["node"]["participations"] for edge in page["edges"]] == [
        [
            {"msme": item["msme"] and {"nib": item["msme"]["nib"]}}
            | {"cooperative": item["cooperative"] and {"name": item["cooperative"]["name"]}}
            for item in node["participations"]
        ]
        for node in nodes
    ]
    nodes = _compiled(relations_api, COOPERATIVES)["cooperatives"]["nodes"]
    assert NUMBER in [node["legalEntityNo"] for node in nodes]
    assert nodes == [
        {
            "legalEntityNo": node["legalEntityNo"],
            "participations": _participations(relations_url, "cooperatives", node["legalEntityNo"]),
        }
        for node in nodes
    ]


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (MSME_PAGE, None),
        (MSME, {"nib": NIB}),
        (COOPERATIVES, None),
        (COOPERATIVE, {"number": NUMBER}),
        (MEMBERS, None),
    ],
)
def test_the_executor_answers_and_audits_the_same(
    relations_api: Api, relations_url: str, document: str, variables: dict[str, Any] | None
) -> None:
    expected = _compiled(relations_api, document, variables)
    assert_the_executor_agrees(
        relations_api, relations_url, PROVINCE, document, variables, expected
    )


def test_the_audit_entry_counts_the_msmes_and_cooperatives_shown(
    relations_api: Api, relations_url: str
) -> None:
    """Each MSME and cooperative a participation shows is a record handed out; one outside the
    caller's jurisdiction, shown as null, is not."""
    answer = _compiled(relations_api, MSME, {"nib": NIB})
    listed = answer["msme"]["participations"]
    assert latest_entry(relations_url, PROVINCE).entry["records"] == {
        "msme": 1 + len(listed),  # the record, and itself as each participation's MSME
        "participation": len(listed),
        "cooperative": 1,  # the province-61 cooperative is not handed out
    }
    listed = _compiled(relations_api, COOPERATIVE, {"number": NUMBER})["cooperative"][
        "participations"
    ]
    assert latest_entry(relations_url, PROVINCE).entry["records"] == {
        "cooperative": 1 + len(listed),
        "participation": len(listed),
        "msme": 1,  # `NIB`, not the province-61 MSME
    }
    nodes = _compiled(relations_api, MSME_PAGE)["msmes"]["nodes"]
    items = [item for node in nodes for item in node["participations"]]
    assert latest_entry(relations_url, PROVINCE).entry["records"] == {
        "msme": len(nodes) + 2 * len(items),  # the page, and each in nodes and in edges
        "participation": 2 * len(items),
        "cooperative": 2,
    }


ATTACK = """participations { msme { nib name } cooperative { name }
  ... on Participation { other: msme { nib name } } }"""


@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (
            f"{{ msmes(first: 50) {{ nodes {{ {ATTACK} }} edges {{ node {{ {ATTACK} }} }} }} }}",
            None,
        ),
        (f"{{ cooperatives(first: 50) {{ nodes {{ {ATTACK} }} }} }}", None),
        (f'{{ msme(nib: "{NIB}") {{ {ATTACK} }} }}', None),
        (f"{{ msmes(first: 50) {{ nodes {{ cooperative {{ {ATTACK} }} }} }} }}", None),
        (
            f"query C($number: String!) {{ cooperative(legalEntityNo: $number) {{ {ATTACK} }} }}",
            {"number": NUMBER},
        ),
    ],
)
def test_a_province_client_never_receives_another_provinces_msme_or_cooperative(
    relations_api: Api, relations_url: str, document: str, variables: dict[str, Any] | None
) -> None:
    with recorded_statements() as statements:
        answer = relations_api.graphql(document, PROVINCE, variables)
    assert "errors" not in answer, answer
    assert any("json_agg" in sql for sql in statements)  # the compiled statement answered
    assert OUTSIDE not in repr(answer)
    nibs = {
        row[0] for row in run(relations_url, "SELECT nib FROM msmes WHERE province_code = '62'")
    }
    names = {
        row[0]
        for row in run(relations_url, "SELECT name FROM cooperatives WHERE province_code = '62'")
    }
    shown = list(_shown(answer["data"]))
    assert shown
    for kind, found in shown:
        if kind == "cooperative":
            assert found["name"] in names
        else:
            assert found["nib"] in nibs


def _shown(value: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every MSME and cooperative a participation in `value` shows."""
    if isinstance(value, list):
        for item in value:
            yield from _shown(item)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key == "participations":
                for item in inner:
                    for kind in ("msme", "other", "cooperative"):
                        if item.get(kind) is not None:
                            yield ("cooperative" if kind == "cooperative" else "msme"), item[kind]
            else:
                yield from _shown(inner)


def test_the_owner_of_a_participations_msme_is_compiled_and_audited(
    relations_api: Api, relations_url: str
) -> None:
    """Under a participation's MSME, inside the list's aggregate, the owner is in the lookup's
    one statement, and its NIK comes up out of the aggregate as a data subject of the entry."""
    document = f'{{ msme(nib: "{NIB}") {{ nib participations {{ msme {{ owner {{ nik }} }} }} }} }}'
    with recorded_statements() as statements:
        answer = relations_api.graphql(document, PROVINCE)
    assert "errors" not in answer, answer
    (read,) = [sql for sql in statements if "msme_owners" in sql]
    assert "json_agg" in read
    niks = {item["msme"]["owner"]["nik"] for item in answer["data"]["msme"]["participations"]}
    (nik,) = niks
    assert latest_entry(relations_url, PROVINCE).subjects == [nik]


def test_an_owner_outside_the_callers_jurisdiction_is_neither_shown_nor_audited(
    relations_api: Api, relations_url: str
) -> None:
    """The cooperative `NUMBER` lists a participation of a province-61 MSME: compiled with its
    owner inside the list, that MSME comes out null, and its owner's NIK is neither in the
    response nor among the entry's data subjects, while the owner of the province's own MSME
    is both."""
    document = f"""query Owners($number: String!) {{ cooperative(legalEntityNo: $number) {{
      legalEntityNo{AT} participations {{ msme {{ nib owner {{ nik fullName }} }} }} }} }}"""
    variables = {"number": NUMBER}
    with recorded_statements() as statements:
        response = relations_api.post(
            {"query": compiled(document), "variables": variables}, relations_api.token(PROVINCE)
        )
    (read,) = [sql for sql in statements if "msme_owners" in sql]
    assert "json_agg" in read
    answer = response.json()
    assert "errors" not in answer, answer
    (outside,) = run(
        relations_url,
        """SELECT o.nik FROM msme_owners o JOIN msmes m ON m.id = o.msme_id
            WHERE m.name = 'Usaha ' || $1""",
        OUTSIDE,
    )
    assert outside["nik"] not in response.text
    listed = answer["data"]["cooperative"]["participations"]
    assert None in [item["msme"] for item in listed]
    shown = [item["msme"]["owner"]["nik"] for item in listed if item["msme"] is not None]
    assert shown
    audited = latest_entry(relations_url, PROVINCE)
    assert audited.subjects == sorted(set(shown))
    assert outside["nik"] not in audited.subjects
    assert_the_executor_agrees(
        relations_api, relations_url, PROVINCE, document, variables, answer["data"]
    )
