"""A request runs as many statements for a page of two as for a page of twenty-five, for every
list the schema offers: nothing is fetched row by row."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from graphql import GraphQLList, GraphQLNonNull, GraphQLObjectType
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.principal import Principal
from auth.scopes import OrgKind, Scope
from db.engine import create_engine
from schema.errors import graphql_schema
from tests.support.databases import as_service
from tests.support.graphql import SCHEMA, principal, run
from tests.support.statements import recorded_statements

READER = principal(OrgKind.PROVINCE, "62", extra=frozenset({Scope.PII_READ}))
MINISTRY = principal(OrgKind.MINISTRY, "ID")
CUSTODIAN = principal(OrgKind.CUSTODIAN, "ID")
SMALL, LARGE = 2, 25

# Each document lists a page of `{n}` parents (or a page of `{n}` items), and the list fields it
# covers beneath them.
CASES: dict[str, tuple[Principal, str, tuple[str, ...]]] = {
    "msme pages": (
        READER,
        """{ msmes(first: {n}) { totalCount pageInfo { endCursor hasNextPage }
             nodes { nib regency { name province { name } } district { name }
                     cooperative { name regency { name } } }
             edges { cursor node { nib scale } } } }""",
        ("Query.msmes", "MsmeConnection.nodes", "MsmeConnection.edges"),
    ),
    "an msme's lists": (
        READER,
        """{ msmes(first: {n}) { nodes { nib owner { nik fullName phone }
             scaleHistory { scale effectiveFrom }
             participations { role programme { name } cooperative { name } msme { nib }
                              changes { operation } }
             changes { operation fields { field before after } personalDataChanged } } } }""",
        (
            "Msme.owner",
            "Msme.scaleHistory",
            "Msme.participations",
            "Msme.changes",
            "Participation.changes",
            "RecordChange.fields",
            "RecordChange.personalDataChanged",
        ),
    ),
    "cooperative pages and their lists": (
        READER,
        """{ cooperatives(first: {n}) { totalCount
             nodes { name isActive memberCount province { name }
                     participations { role } changes { operation }
                     memberMsmes(first: 3) { totalCount nodes { nib } edges { cursor } } }
             edges { cursor node { name } } } }""",
        (
            "Query.cooperatives",
            "CooperativeConnection.nodes",
            "CooperativeConnection.edges",
            "Cooperative.participations",
            "Cooperative.changes",
            "Cooperative.memberMsmes",
        ),
    ),
    "an msme page's compiled lists": (
        READER,
        """{ msmes(first: {n}, filter: {region: "62"}) { nodes { nib regency { name }
             owner { nik fullName } participations { status programme { name } }
             scaleHistory { scale effectiveFrom } } } }""",
        ("Query.msmes", "MsmeConnection.nodes", "Msme.participations", "Msme.scaleHistory"),
    ),
    "a cooperative page's compiled members": (
        READER,
        """{ cooperatives(first: {n}) { nodes { name memberMsmes(first: 3) { totalCount
             pageInfo { hasNextPage endCursor } nodes { nib regency { name } }
             edges { cursor node { nib } } } } } }""",
        ("Query.cooperatives", "CooperativeConnection.nodes", "Cooperative.memberMsmes"),
    ),
    "a cooperative page's compiled lists": (
        READER,
        """{ cooperatives(first: {n}) { nodes { name isActive memberCount
             participations { __typename id role programme { id name } } } } }""",
        ("Query.cooperatives", "CooperativeConnection.nodes", "Cooperative.participations"),
    ),
    "an msme page's compiled relations": (
        READER,
        """{ msmes(first: {n}, filter: {region: "62"}) { nodes { nib
             participations { msme { nib } cooperative { name }
                              programme { jurisdiction { name } } } } } }""",
        ("Query.msmes", "MsmeConnection.nodes", "Msme.participations"),
    ),
    "participants": (
        READER,
        """{ programmes { name jurisdiction { name } participants(first: {n}) {
             role msme { nib regency { name } } cooperative { name } } } }""",
        ("Query.programmes", "Programme.participants"),
    ),
    "planning": (
        READER,
        """{ indicators { code targets { year value computedValue progress
             realisations { value } } } indicator(code: "KOP_PRODUSEN_JUMLAH") { code } }""",
        ("Query.indicators", "Indicator.targets", "Target.realisations"),
    ),
    # Apart from a target's: the two share a loader, and batch together or not as they resolve.
    "realisations by jurisdiction": (
        READER,
        """{ indicators { code realisations(jurisdiction: "62.71", year: 2025) { value } } }""",
        ("Query.indicators", "Indicator.realisations"),
    ),
    "regions": (
        READER,
        """{ indonesia { children { name children { name parent { name } } } } }""",
        ("Region.children",),
    ),
    "figures": (
        MINISTRY,
        """{ msmeFigures(groupBy: [PROVINCE, SCALE]) {
               key { dimension value region { name } } count }
             cooperativeFigures(groupBy: [PROVINCE, TYPE]) { key { value } count }
             graduations(year: 2025, groupBy: [PROVINCE]) { key { value } }
             guaranteeFigures(groupBy: [PROVINCE]) { key { value } } }""",
        (
            "Query.msmeFigures",
            "Query.cooperativeFigures",
            "Query.graduations",
            "Query.guaranteeFigures",
            "MsmeFigure.key",
            "CooperativeFigure.key",
            "GraduationFigure.key",
            "GuaranteeFigure.key",
        ),
    ),
    "the audit trail": (
        CUSTODIAN,
        """{ auditEntries(first: {n}) { seq subjects }
             personalDataAccess(nik: "6271010101900001") { clientId } }""",
        ("Query.auditEntries", "AuditEntry.subjects", "Query.personalDataAccess"),
    ),
    "a change feed page": (
        READER,
        "{ msmeChanges(first: {n}) { entries { cursor id change record } endCursor hasMore } }",
        ("ChangePage.entries",),
    ),
}
ONE_PARENT = {
    "Viewer.scopes": "the token's scopes, no statement",
    "EligibilityDecision.results": "read from the decision's own row",
    "Guarantee.history": "one guarantee per request: a mutation's answer",
    "ImportReport.errors": "an import's own report, no statement",
}
"""Lists that never sit under a list of parents, so no page size multiplies them."""


@pytest.fixture(scope="module")
async def engine(demo_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(as_service(demo_url), statement_timeout_ms=10_000)
    yield engine
    await engine.dispose()


def _list_fields() -> set[str]:
    """Every field of an output type that answers a list or a page of a list."""
    found: set[str] = set()
    for name, graphql_type in graphql_schema(SCHEMA).type_map.items():
        if name.startswith("__") or name == "Mutation":
            continue
        if not isinstance(graphql_type, GraphQLObjectType):
            continue
        for field_name, field in graphql_type.fields.items():
            inner = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
            if isinstance(inner, GraphQLList) or getattr(inner, "name", "").endswith("Connection"):
                found.add(f"{name}.{field_name}")
    return found


def test_every_list_field_is_counted() -> None:
    covered = {field for _, _, fields in CASES.values() for field in fields}
    assert _list_fields() - covered - ONE_PARENT.keys() == set()


@pytest.mark.parametrize("case", list(CASES))
async def test_statements_per_request_do_not_grow_with_the_page(
    engine: AsyncEngine, case: str
) -> None:
    who, document, _ = CASES[case]
    for _ in range(SMALL + 1):  # audit entries to list, whatever ran before
        await run(engine, READER, '{ msme(nib: "9990000000001") { nib } }')
    counts: list[int] = []
    answers: list[str] = []
    for size in (SMALL, LARGE):
        with recorded_statements(engine) as statements:
            result = await run(engine, who, document.replace("{n}", str(size)))
        assert result.errors is None, result.errors
        counts.append(len(statements))
        answers.append(repr(result.data))
    assert counts[0] == counts[1], f"{counts[0]} statements for {SMALL}, {counts[1]} for {LARGE}"
    if "{n}" in document:
        assert len(answers[0]) < len(answers[1])  # the larger page holds more


@pytest.mark.parametrize(
    ("document", "pages"),
    [
        (
            "{ indicators { code targets { year progress realisations(first: {n}) { value } } } }",
            lambda indicator: [target["realisations"] for target in indicator["targets"]],
        ),
        (
            """{ indicators { code
                 realisations(jurisdiction: "62", year: 2026, first: {n}) { value } } }""",
            lambda indicator: [indicator["realisations"]],
        ),
    ],
    ids=["a target's", "an indicator's by jurisdiction and year"],
)
async def test_a_page_of_realisations_is_one_statement_whatever_its_size(
    engine: AsyncEngine, document: str, pages: Callable[[Any], list[list[Any]]]
) -> None:
    """Every report is kept, so realisations are a page of their history: read for all targets
    (or indicators) at once, the latest `first` of each, in one statement for two as for
    twenty-five."""
    province = principal(OrgKind.PROVINCE, "62")
    reports = " ".join(
        f'r{n}: reportRealisation(report: {{indicator: "RASIO_KEWIRAUSAHAAN", '
        f'jurisdiction: "62", year: 2026, value: "{n}", source: "BPS"}}) {{ value }}'
        for n in range(SMALL + 1)
    )
    assert (await run(engine, province, f"mutation {{ {reports} }}")).errors is None
    counts: list[int] = []
    shown: list[int] = []
    for size in (SMALL, LARGE):
        with recorded_statements(engine) as statements:
            result = await run(engine, MINISTRY, document.replace("{n}", str(size)))
        assert result.errors is None, result.errors
        counts.append(len(statements))
        shown.append(
            max(len(page) for indicator in result.data["indicators"] for page in pages(indicator))
        )
    assert counts[0] == counts[1]
    assert shown[0] == SMALL < shown[1]


@pytest.mark.parametrize("size", [1, 50])
@pytest.mark.parametrize(
    "case",
    [
        "an msme page's compiled lists",
        "a cooperative page's compiled lists",
        "an msme page's compiled relations",
        "a cooperative page's compiled members",
        "participants",
    ],
)
async def test_a_page_with_its_compiled_lists_is_one_statement(
    engine: AsyncEngine, case: str, size: int
) -> None:
    """Participations, scale history and owners, a participation's MSME, cooperative and
    programme's jurisdiction, and a cooperative's page of members are written by the page's
    own statement, not loaded (the audit's writes and the region directory, read once,
    aside)."""
    who, document, _ = CASES[case]
    with recorded_statements(engine) as statements:
        result = await run(engine, who, document.replace("{n}", str(size)))
    assert result.errors is None, result.errors
    records = ("msme", "cooperatives", "participations", "programmes", "scale_history")
    (read,) = [sql for sql in statements if any(table in sql for table in records)]
    assert "json_agg" in read
