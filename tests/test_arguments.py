"""A planned field's arguments (schema/arguments.py) are what graphql-core and Strawberry make of
them, whatever a request gives its variables (a value, null, nothing), and one request's values
never reach another's."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, parse
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.types.arguments import convert_arguments

from schema import arguments as planned_arguments
from schema.arguments import Arguments, coerced_arguments
from schema.build import build_schema
from schema.errors import graphql_schema

CHECK = """mutation Check($nib: String!) { checkEligibility(request: {nib: $nib,
  product: "JAMKRIDA_KTG_PRODUKTIF", loanAmount: "50000000", tenorMonths: 24,
  attestation: {maxCollectibility: 1, hasOtherProductiveCredit: false,
  feasibilityApproved: true, onNationalBlacklist: false, hasNpwp: true}}) { verdict } }"""
CHECK_NESTED = """mutation Check($nib: String, $amount: Rupiah!, $on: Date, $worst: Int,
  $npwp: Boolean) { checkEligibility(request: {nib: $nib, product: "JAMKRIDA_KTG_PRODUKTIF",
  loanAmount: $amount, tenorMonths: 24, checkDate: $on, attestation: {maxCollectibility: $worst,
  hasNpwp: $npwp}}) { verdict } }"""
PAGE = """query Page($first: Int, $after: String, $region: String, $scale: Scale) {
  msmes(first: $first, after: $after, filter: {region: $region, scale: $scale}) {
  nodes { nib } } }"""
TWICE = """query Twice($code: String) { msmes(filter: {region: $code, kbliSection: $code}) {
  nodes { nib } } }"""
COOPERATIVES = """query Cooperatives($programme: ID, $type: CooperativeType) {
  cooperatives(filter: {programme: $programme, type: $type}) { nodes { name } } }"""
LOOKUP = "query Lookup($nib: String!) { msme(nib: $nib) { nib } }"
# Strawberry changes these variables' values (a list copied, a `Maybe` wrapped): coerced the
# libraries' way on every request.
FIGURES = "query Figures($by: [MsmeDimension!]!) { msmeFigures(groupBy: $by) { count } }"
UPDATE = """mutation Update($id: ID!, $name: String) {
  updateMsme(id: $id, version: 1, changes: {name: $name}) { nib } }"""

CASES = [
    (CHECK, {"nib": "8120000012345"}),
    (CHECK_NESTED, {"nib": "8120000012345", "amount": "75000000", "on": "2026-11-02"}),
    (CHECK_NESTED, {"nib": None, "amount": "1", "worst": 3, "npwp": False}),
    (CHECK_NESTED, {"amount": "1", "on": None, "worst": None}),
    (PAGE, {}),
    (PAGE, {"first": 10, "after": "bXNtZTox", "region": "62", "scale": "MICRO"}),
    (PAGE, {"first": None, "region": None, "scale": "SMALL"}),
    (TWICE, {"code": "62"}),
    (TWICE, {"code": None}),
    (COOPERATIVES, {"programme": "7", "type": "SIMPAN_PINJAM"}),
    (LOOKUP, {"nib": "8120000012345"}),
    (FIGURES, {"by": ["PROVINCE", "SCALE"]}),
    (UPDATE, {"id": "1", "name": "Toko Sinar"}),
    (UPDATE, {"id": "1", "name": None}),
    (UPDATE, {"id": "1"}),
]


@pytest.fixture(scope="module")
def schema() -> strawberry.Schema:
    return build_schema()


def _root(schema: strawberry.Schema, document: str) -> tuple[Any, FieldNode, Any, Any]:
    (operation,) = parse(document).definitions
    assert isinstance(operation, OperationDefinitionNode)
    (node,) = operation.selection_set.selections
    assert isinstance(node, FieldNode)
    root_type = graphql_schema(schema).get_root_type(operation.operation)
    assert root_type is not None
    declared = schema.get_field_for_type(node.name.value, root_type.name)
    assert declared is not None
    return operation, node, root_type.fields[node.name.value], declared.arguments


def _variables(schema: strawberry.Schema, operation: Any, given: dict[str, Any]) -> Any:
    variables = get_variable_values(graphql_schema(schema), operation.variable_definitions, given)
    assert not isinstance(variables, list), variables
    return variables


def _libraries(schema: strawberry.Schema, document: str, given: dict[str, Any]) -> Any:
    """What graphql-core and Strawberry make of the arguments for this request."""
    operation, node, field, declared = _root(schema, document)
    values = get_argument_values(field, node, _variables(schema, operation, given))
    return convert_arguments(
        values,
        declared,
        scalar_registry=schema.schema_converter.scalar_registry,
        config=schema.config,
    )


def _planned(schema: strawberry.Schema, document: str) -> tuple[Any, Arguments]:
    operation, node, field, declared = _root(schema, document)
    return operation, coerced_arguments(schema, field, declared, node)


@pytest.mark.parametrize(("document", "given"), CASES)
def test_planned_arguments_are_what_the_libraries_make_of_them(
    schema: strawberry.Schema, document: str, given: dict[str, Any]
) -> None:
    operation, arguments = _planned(schema, document)
    for _ in range(2):  # the first request makes the pattern's coercion, the second reuses it
        assert arguments(_variables(schema, operation, given)) == _libraries(
            schema, document, given
        )


def test_one_requests_values_never_reach_anothers(schema: strawberry.Schema) -> None:
    operation, arguments = _planned(schema, CHECK_NESTED)
    first = {"nib": "8120000000001", "amount": "1", "worst": 2, "npwp": True}
    second = {"nib": "8120000000002", "amount": "2", "worst": 5, "npwp": False}
    answers = [arguments(_variables(schema, operation, given)) for given in (first, second)]
    request = answers[0]["request"]
    assert (request.nib, request.loan_amount) == ("8120000000001", 1)
    assert (request.attestation.max_collectibility, request.attestation.has_npwp) == (2, True)
    request = answers[1]["request"]
    assert (request.nib, request.loan_amount) == ("8120000000002", 2)
    assert (request.attestation.max_collectibility, request.attestation.has_npwp) == (5, False)
    answers[1]["request"].attestation.has_npwp = None  # a resolver that changed its input
    again = arguments(_variables(schema, operation, first))["request"]
    assert again.attestation.has_npwp is True


def test_a_pattern_the_libraries_refuse_raises_their_error(schema: strawberry.Schema) -> None:
    """`loanAmount: $amount` is non-null: the executor reports the null, as it always did."""
    operation, arguments = _planned(schema, CHECK_NESTED)
    variables = _variables(schema, operation, {"amount": "1"})
    variables.coerced["amount"] = None  # as a nullable variable in its place would give it
    with pytest.raises(GraphQLError, match="loanAmount"):
        arguments(variables)


@pytest.fixture
def coercions(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Each coercion of a field's arguments by graphql-core."""
    made: list[tuple[Any, ...]] = []
    coerce = planned_arguments.get_argument_values

    def counted(*arguments: Any) -> Any:
        made.append(arguments)
        return coerce(*arguments)

    monkeypatch.setattr(planned_arguments, "get_argument_values", counted)
    return made


def test_a_request_coerces_nothing_once_its_pattern_is_known(
    schema: strawberry.Schema, coercions: list[tuple[Any, ...]]
) -> None:
    operation, arguments = _planned(schema, CHECK_NESTED)
    for nib in ("8120000000001", "8120000000002", "8120000000003"):
        arguments(_variables(schema, operation, {"nib": nib, "amount": "1", "worst": 1}))
    assert len(coercions) == 1
    arguments(_variables(schema, operation, {"nib": None, "amount": "1", "worst": 1}))
    assert len(coercions) == 2  # a new pattern: nib null


def test_a_variable_strawberry_changes_is_coerced_on_every_request(
    schema: strawberry.Schema, coercions: list[tuple[Any, ...]]
) -> None:
    operation, arguments = _planned(schema, FIGURES)
    first = arguments(_variables(schema, operation, {"by": ["PROVINCE"]}))
    second = arguments(_variables(schema, operation, {"by": ["SCALE"]}))
    assert first != second
    assert len(coercions) == 3  # the placeholder's refused pattern, then each request


def test_a_field_keeps_a_bounded_number_of_coercions(
    schema: strawberry.Schema, coercions: list[tuple[Any, ...]]
) -> None:
    """A document can name many variables and a client vary which it gives: past the bound,
    a new pattern is coerced on each request, and memory stays as it was."""
    operation, arguments = _planned(schema, PAGE)
    values = {"first": 5, "after": "bXNtZTox", "region": "62", "scale": "MICRO"}
    patterns = [
        {name: value for bit, (name, value) in enumerate(values.items()) if mask >> bit & 1}
        for mask in range(16)
    ]
    for given in patterns:
        arguments(_variables(schema, operation, given))
    assert len(coercions) == 16
    for given in patterns:  # each kept
        arguments(_variables(schema, operation, given))
    assert len(coercions) == 16
    beyond = {name: None for name in values}  # a seventeenth pattern
    for _ in range(2):
        assert arguments(_variables(schema, operation, beyond)) == _libraries(schema, PAGE, beyond)
    assert len(coercions) == 16 + 2  # the libraries' way, on each request
