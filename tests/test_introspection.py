"""Introspection over HTTP: every authenticated client, in every mode, sees the schema its
token's scopes let it use, and nothing else; within the limits any query meets, which the
standard introspection query fits and abusive documents do not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from graphql import get_introspection_query
from starlette.testclient import TestClient

from schema.query_limits import QueryLimits
from sinergi.app import create_app
from sinergi.settings import Environment, Settings, SettingsError
from tests.support.databases import as_service
from tests.support.http import Api

MINISTRY = "demo-ministry"
PROVINCE = "demo-province-62"  # holds pii:read on top of the province bundle
PROVINCE_WITHOUT_PII = "demo-province-61"
BUMD = "demo-jamkrida-62"
CUSTODIAN = "demo-walidata"
CLIENTS = [MINISTRY, PROVINCE, PROVINCE_WITHOUT_PII, BUMD, CUSTODIAN]
GRAPHQL_RESPONSE = "application/graphql-response+json"

# What graphql-core and GraphiQL send, from the plainest to every option.
STANDARD = {
    "graphql-core default": get_introspection_query(),
    "GraphiQL": get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
    ),
    "every option": get_introspection_query(
        descriptions=True,
        specified_by_url=True,
        directive_is_repeatable=True,
        schema_description=True,
        input_value_deprecation=True,
        one_of=True,
    ),
}
PUBLISHED = graphql.build_schema(
    (Path(__file__).resolve().parents[1] / "schema.graphql").read_text(encoding="utf-8")
)


def _post(api: Api, body: dict[str, Any], client_id: str | None, **headers: str) -> httpx.Response:
    if client_id is not None:
        headers["Authorization"] = f"Bearer {api.token(client_id)}"
    return api.client.post("/graphql", json=body, headers=headers)


def _introspect(api: Api, client_id: str) -> dict[str, Any]:
    response = _post(api, {"query": STANDARD["every option"]}, client_id)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert "errors" not in answer, answer
    schema: dict[str, Any] = answer["data"]["__schema"]
    return schema


def _fields(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Each object type the introspection lists, with its fields."""
    return {
        kind["name"]: {field["name"] for field in kind["fields"]}
        for kind in schema["types"]
        if kind["kind"] == "OBJECT" and not kind["name"].startswith("__")
    }


def _published_scopes(type_name: str, field_name: str) -> set[str]:
    """The scopes the committed schema.graphql says a field requires (its @requiresScopes)."""
    node = PUBLISHED.get_type(type_name).fields[field_name].ast_node  # type: ignore[union-attr]
    return {
        value.value
        for directive in node.directives or ()
        if directive.name.value == "requiresScopes"
        for value in directive.arguments[0].value.values
    }


def _scopes(api: Api, client_id: str) -> set[str]:
    answer = _post(api, {"query": "{ viewer { scopes } }"}, client_id).json()
    return set(answer["data"]["viewer"]["scopes"])


@pytest.fixture(scope="module")
def dev_api(demo_url: str, api: Api) -> Iterator[Api]:
    settings = Settings(environment=Environment.DEVELOPMENT, rate_limit=1_000_000)
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        yield Api(client)


@pytest.fixture(scope="module")
def wide_api(demo_url: str, api: Api) -> Iterator[Api]:
    """Documents of up to a thousand fields: what the cost limit still stops at execution."""
    settings = Settings(rate_limit=1_000_000, query_limits=QueryLimits(max_fields=1_000))
    with TestClient(create_app(settings, database_url=as_service(demo_url))) as client:
        yield Api(client)


@pytest.mark.parametrize("client_id", CLIENTS)
def test_each_client_sees_exactly_the_fields_its_scopes_allow(api: Api, client_id: str) -> None:
    """Against the published @requiresScopes: no field beyond the client's scopes, and on every
    type it sees, every field within them."""
    scopes = _scopes(api, client_id)
    seen = _fields(_introspect(api, client_id))
    for type_name, fields in seen.items():
        published = PUBLISHED.get_type(type_name)
        assert isinstance(published, graphql.GraphQLObjectType), type_name
        allowed = {
            name for name in published.fields if _published_scopes(type_name, name) <= scopes
        }
        assert fields == allowed, (client_id, type_name)


@pytest.mark.parametrize("client_id", CLIENTS)
def test_every_type_listed_is_reachable_through_what_the_client_may_use(
    api: Api, client_id: str
) -> None:
    schema = _introspect(api, client_id)
    kinds = {kind["name"]: kind for kind in schema["types"]}
    reached: set[str] = set()
    roots = (schema["queryType"], schema["mutationType"], schema["subscriptionType"])
    pending = [root["name"] for root in roots if root is not None]

    def named(reference: dict[str, Any]) -> str:
        while reference["ofType"] is not None:
            reference = reference["ofType"]
        return str(reference["name"])

    while pending:
        name = pending.pop()
        if name in reached:
            continue
        reached.add(name)
        kind = kinds[name]
        for field in kind["fields"] or []:
            pending.append(named(field["type"]))
            pending.extend(named(argument["type"]) for argument in field["args"])
        pending.extend(named(field["type"]) for field in kind["inputFields"] or [])
    listed = {name for name in kinds if not name.startswith("__")}
    assert listed - reached <= {"Boolean", "String"}, listed - reached  # introspection's own


def _roots(schema: dict[str, Any]) -> tuple[set[str], set[str] | None]:
    fields = _fields(schema)
    mutation = schema["mutationType"]
    return fields["Query"], None if mutation is None else fields[mutation["name"]]


FIGURES = {"cooperativeFigures", "figureRelease", "graduations", "guaranteeFigures", "msmeFigures"}
OPEN = {"indonesia", "programme", "programmes", "region", "viewer"}
RECORDS = {"cooperative", "cooperatives", "msme", "msmes"}
RECORD_FEEDS = {"cooperativeChanges", "msmeChanges", "participationChanges"}
RECORD_WRITES = {
    "addParticipation",
    "createCooperative",
    "createMsme",
    "deactivateCooperative",
    "deactivateMsme",
    "importMsmes",
    "reactivateCooperative",
    "reactivateMsme",
    "reportScaleChange",
    "updateCooperative",
    "updateMsme",
    "updateParticipation",
}


def test_a_ministry_sees_figures_and_targets_and_no_record_nor_mutation(api: Api) -> None:
    schema = _introspect(api, MINISTRY)
    query, mutation = _roots(schema)
    assert query == FIGURES | OPEN | {"indicator", "indicators"}
    assert mutation is None
    listed = {kind["name"] for kind in schema["types"]}
    for absent in (
        "Msme",
        "Cooperative",
        "MsmeConnection",
        "Owner",
        "OwnerInput",
        "Participation",
        "RecordChange",
        "CreateMsmeInput",
        "EligibilityDecision",
        "AuditEntry",
        "ImportMode",
        "Mutation",
    ):
        assert absent not in listed, absent
    assert {"MsmeFilter", "Scale", "MsmeDimension", "Indicator", "Region"} <= listed
    assert "participants" not in _fields(schema)["Programme"]


def test_a_province_sees_its_records_and_writes_and_no_guarantor_nor_audit(api: Api) -> None:
    schema = _introspect(api, PROVINCE)
    query, mutation = _roots(schema)
    assert query == FIGURES | OPEN | RECORDS | RECORD_FEEDS | {"indicator", "indicators"}
    assert mutation == RECORD_WRITES | {"reportRealisation"}
    fields = _fields(schema)
    assert {"owner", "changes"} <= fields["Msme"]
    assert "participants" in fields["Programme"]
    listed = {kind["name"] for kind in schema["types"]}
    assert {"Owner", "OwnerInput", "ImportMode", "MsmeImportRow", "RealisationInput"} <= listed
    for absent in (
        "EligibilityDecision",
        "EligibilityRequest",
        "Guarantee",
        "GuaranteeInput",
        "AuditEntry",
        "PersonalDataAccess",
        "ReviewVerdict",
    ):
        assert absent not in listed, absent


def test_a_province_without_pii_read_does_not_see_the_owner(api: Api) -> None:
    schema = _introspect(api, PROVINCE_WITHOUT_PII)
    fields = _fields(schema)
    assert "owner" not in fields["Msme"]
    assert "Owner" not in {kind["name"] for kind in schema["types"]}


def test_a_bumd_sees_eligibility_and_guarantees_and_no_record(api: Api) -> None:
    schema = _introspect(api, BUMD)
    query, mutation = _roots(schema)
    assert query == FIGURES | OPEN | {"eligibilityDecision", "guaranteeChanges"}
    assert mutation == {
        "changeGuaranteeStatus",
        "checkEligibility",
        "recordGuarantee",
        "resolveEligibilityReview",
    }
    listed = {kind["name"] for kind in schema["types"]}
    assert {"EligibilityRequest", "LenderAttestationInput", "GuaranteeStatus"} <= listed
    for absent in (
        "Msme",
        "Cooperative",
        "Owner",
        "Indicator",
        "RecordChange",
        "CreateMsmeInput",
        "ScaleReport",
        "RealisationInput",
    ):
        assert absent not in listed, absent


def test_a_token_asking_for_fewer_scopes_sees_fewer_fields(api: Api) -> None:
    response = _post(
        api,
        {"query": "{ __schema { queryType { fields { name } } mutationType { name } } }"},
        None,
        Authorization=f"Bearer {api.token(PROVINCE, scope='aggregates:read')}",
    )
    schema = response.json()["data"]["__schema"]
    assert {field["name"] for field in schema["queryType"]["fields"]} == FIGURES | OPEN
    assert schema["mutationType"] is None


def test_a_type_the_client_cannot_use_does_not_exist_for_it(api: Api) -> None:
    query = '{ __type(name: "Msme") { name fields { name } } }'
    assert _post(api, {"query": query}, MINISTRY).json() == {"data": {"__type": None}}
    found = _post(api, {"query": query}, PROVINCE).json()["data"]["__type"]
    assert found["name"] == "Msme"


@pytest.mark.parametrize("variant", list(STANDARD))
@pytest.mark.parametrize("mode", ["production", "development"])
def test_the_standard_introspection_query_passes_the_limits_in_every_mode(
    api: Api, dev_api: Api, variant: str, mode: str
) -> None:
    served = api if mode == "production" else dev_api
    for client_id in (MINISTRY, PROVINCE):
        response = _post(served, {"query": STANDARD[variant]}, client_id)
        assert response.status_code == 200, response.text
        answer = response.json()
        assert "errors" not in answer, answer["errors"]
        assert answer["data"]["__schema"]["queryType"]["name"] == "Query"


def test_the_standard_introspection_query_works_over_get(api: Api) -> None:
    response = api.client.get(
        "/graphql",
        params={"query": STANDARD["GraphiQL"], "operationName": "IntrospectionQuery"},
        headers={"Authorization": f"Bearer {api.token(MINISTRY)}", "Accept": GRAPHQL_RESPONSE},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["__schema"]["mutationType"] is None


def test_introspection_without_a_token_is_401(api: Api) -> None:
    for query in (STANDARD["graphql-core default"], '{ __type(name: "Query") { name } }'):
        response = _post(api, {"query": query}, None)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "data" not in response.json()


def _type_ref(depth: int) -> str:
    return "ofType { " * depth + "name" + " }" * depth


def test_deep_of_type_chains_under_aliases_are_refused_by_depth(api: Api) -> None:
    fields = " ".join(
        f'a{i}: __type(name: "Query") {{ fields {{ type {{ {_type_ref(40)} }} }} }}'
        for i in range(20)
    )
    response = _post(api, {"query": "{ " + fields + " }"}, PROVINCE)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "depth"


def test_a_type_reference_as_deep_as_the_standard_query_is_not(api: Api) -> None:
    query = '{ __type(name: "Query") { fields { type { ' + _type_ref(9) + " } } } }"
    assert _post(api, {"query": query}, PROVINCE).status_code == 200


@pytest.mark.parametrize("accept", [GRAPHQL_RESPONSE, "application/json"])
def test_introspection_fanning_out_past_the_cost_limit_is_refused(
    api: Api, wide_api: Api, accept: str
) -> None:
    """Thirty aliased copies of the whole standard query: each within every document limit,
    together far more than the schema is worth asking for. Its 531 fields are over the fields
    limit first; where that is raised, the cost limit stops it as it runs."""
    standard = STANDARD["graphql-core default"]
    operation, _, fragments = standard.partition("fragment")
    body = operation.split("{", 1)[1].rsplit("}", 1)[0]
    query = "{ " + " ".join(f"a{i}: {body.strip()}" for i in range(30)) + " } fragment" + fragments
    fields = _post(api, {"query": query}, PROVINCE, Accept=accept).json()["errors"]
    assert fields[0]["extensions"]["limit"] == "fields"
    response = _post(wide_api, {"query": query}, PROVINCE, Accept=accept)
    assert response.status_code == 400, response.text[:500]
    answer = response.json()
    assert "data" not in answer
    (error,) = answer["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert error["extensions"]["limit"] == "cost"
    assert error["extensions"]["actual"] > error["extensions"]["maximum"] == 50_000


def test_introspection_beside_data_fields_is_refused(api: Api) -> None:
    query = "{ viewer { clientId } __schema { queryType { name } } }"
    response = _post(api, {"query": query}, PROVINCE, Accept=GRAPHQL_RESPONSE)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "__schema" in error["message"]
    fragment = '{ ...F } fragment F on Query { viewer { clientId } __type(name: "Query") { name } }'
    assert _post(api, {"query": fragment}, PROVINCE).json()["errors"]


def test_typename_beside_introspection_is_answered(api: Api) -> None:
    answer = _post(api, {"query": "{ __typename __schema { queryType { name } } }"}, BUMD).json()
    assert answer == {"data": {"__typename": "Query", "__schema": {"queryType": {"name": "Query"}}}}


# ---- suggestions ----------------------------------------------------------------------------

SUGGESTING = {
    # document, variables → the suggestion a province may see, which a ministry may not
    "a misspelt root field": ("{ msmez { totalCount } }", None, "'msmes'"),
    "a misspelt field of a forbidden type": (
        "{ msmes(first: 1) { nodes { nmae } } }",
        None,
        "'name'",
    ),
    "a misspelt argument of a forbidden field": (
        "{ msmes(frist: 1) { totalCount } }",
        None,
        "'first'",
    ),
    "a misspelt forbidden input type": (
        "query($i: CreateMsmeInpt) { __typename }",
        None,
        "'CreateMsmeInput'",
    ),
    "a misspelt input field in a variable": (
        'mutation($i: MsmeChanges!) { updateMsme(id: "1", version: 1, changes: $i) { version } }',
        {"i": {"nmae": "Warung"}},
        "'name'",
    ),
}


def _messages(response: httpx.Response) -> str:
    return " ".join(error["message"] for error in response.json()["errors"])


@pytest.mark.parametrize("case", list(SUGGESTING))
def test_suggestions_name_only_what_the_client_may_see(api: Api, case: str) -> None:
    query, variables, suggestion = SUGGESTING[case]
    body = {"query": query, "variables": variables}
    seen = _messages(_post(api, body, PROVINCE))
    assert "Did you mean" in seen
    assert suggestion in seen
    hidden = _messages(_post(api, body, MINISTRY))
    assert suggestion not in hidden
    assert "Did you mean" not in hidden


def test_suggestions_of_what_the_client_sees_are_kept(api: Api) -> None:
    response = _post(api, {"query": "{ msmeFigures(groupBy: [PROVINCEE]) { count } }"}, MINISTRY)
    assert "Did you mean the enum value 'PROVINCE'" in _messages(response)
    response = _post(api, {"query": "{ viewr { clientId } }"}, MINISTRY)
    assert "Did you mean 'viewer'" in _messages(response)


@pytest.mark.parametrize("value", ["all", "none", "demo-ministry"])
def test_the_old_introspection_setting_stops_the_server_saying_what_replaced_it(
    value: str,
) -> None:
    with pytest.raises(SettingsError, match="SINERGI_TRUSTED_DOCUMENTS"):
        Settings.from_env({"SINERGI_INTROSPECTION": value})


def _literal(kind: graphql.GraphQLInputType) -> str:
    """Some valid literal of an input type, for arguments a test must pass but not mean."""
    if isinstance(kind, graphql.GraphQLNonNull):
        return _literal(kind.of_type)
    if isinstance(kind, graphql.GraphQLList):
        return f"[{_literal(kind.of_type)}]"
    if isinstance(kind, graphql.GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, graphql.GraphQLInputObjectType):
        required = [
            f"{name}: {_literal(field.type)}"
            for name, field in kind.fields.items()
            if graphql.is_required_input_field(field)
        ]
        return "{" + ", ".join(required) + "}"
    return {"Int": "1", "Boolean": "true", "Date": '"2025-01-01"'}.get(kind.name, '"1"')  # type: ignore[union-attr]


def _call(root: graphql.GraphQLObjectType, name: str) -> str:
    field = root.fields[name]
    arguments = ", ".join(
        f"{argument}: {_literal(value.type)}"
        for argument, value in field.args.items()
        if graphql.is_required_argument(value)
    )
    selection = (
        "" if graphql.is_leaf_type(graphql.get_named_type(field.type)) else " { __typename }"
    )
    return name + (f"({arguments})" if arguments else "") + selection


@pytest.mark.parametrize("client_id", CLIENTS)
def test_what_introspection_hides_the_guard_refuses_and_what_it_shows_answers(
    api: Api, client_id: str
) -> None:
    """Every root field the client's introspection leaves out answers FORBIDDEN naming the
    published scopes; every query field it lists answers without FORBIDDEN."""
    query_fields, mutation_fields = _roots(_introspect(api, client_id))
    for operation, root, shown in (
        ("query", PUBLISHED.query_type, query_fields),
        ("mutation", PUBLISHED.mutation_type, mutation_fields or set()),
    ):
        assert root is not None
        for name in root.fields:
            if operation == "mutation" and name in shown:
                continue  # it would run: allowed writes are tested where they belong
            answer = _post(api, {"query": f"{operation} {{ {_call(root, name)} }}"}, client_id)
            refused = [
                error["extensions"]
                for error in answer.json().get("errors", [])
                if error["extensions"]["code"] == "FORBIDDEN"
            ]
            if name in shown:
                assert refused == [], (client_id, name)
            else:
                assert [set(found["requiredScopes"]) for found in refused] == [
                    _published_scopes(root.name, name)
                ], (client_id, name, answer.json())
