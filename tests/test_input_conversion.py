"""Input objects built by the converters made once per type (schema/input_conversion.py) are the
values resolvers always got: an omitted field keeps its default, an explicit null stays null
(for `owner`, null erases personal data, omitted leaves it), nested inputs, lists and
enumerations are built."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry.types.arguments import convert_arguments

from schema.build import build_schema
from schema.eligibility_mutation import EligibilityRequest, LenderAttestationInput
from schema.enums import Scale
from schema.inputs import MsmeFilter
from schema.record_inputs import MsmeChanges, MsmeImportRow, OwnerInput

SCHEMA = build_schema()


def converted(root: str, field_name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The resolver's keyword arguments for the graphql-core values `arguments`."""
    definition = SCHEMA.get_type_by_name(root)
    assert definition is not None
    field = next(field for field in definition.fields if field.python_name == field_name)  # type: ignore[union-attr]
    return convert_arguments(
        arguments,
        field.arguments,
        scalar_registry=SCHEMA.schema_converter.scalar_registry,
        config=SCHEMA.config,
    )


def test_a_filter_keeps_the_defaults_of_what_was_omitted() -> None:
    given = converted(
        "Query", "msmes", {"first": 50, "filter": {"region": "62", "scale": Scale.MICRO}}
    )
    assert given == {"first": 50, "filter": MsmeFilter(region="62", scale=Scale.MICRO)}


def test_an_omitted_owner_is_left_alone_and_a_null_one_erased() -> None:
    omitted = converted(
        "Mutation", "update_msme", {"id": "1", "changes": {"name": "Warung"}, "version": 3}
    )
    assert omitted["changes"].owner is strawberry.UNSET
    assert omitted["changes"].region is strawberry.UNSET
    nulled = converted(
        "Mutation",
        "update_msme",
        {"id": "1", "changes": {"owner": None, "region": None}, "version": 3},
    )
    assert nulled["changes"].owner is None
    assert nulled["changes"].region is None
    assert nulled["changes"].name is strawberry.UNSET
    assert isinstance(nulled["changes"], MsmeChanges)


def test_nested_inputs_and_lists_of_them_are_built() -> None:
    row = {
        "nib": "8120000000001",
        "name": "Warung",
        "kbliCode": "56101",
        "region": "62.71",
        "establishedOn": date(2020, 1, 2),
        "owner": {"nik": "6271010101900001", "fullName": "Siti"},
    }
    given = converted(
        "Mutation", "import_msmes", {"rows": [row, {**row, "owner": None}], "mode": None}
    )
    first, second = given["rows"]
    assert first == MsmeImportRow(
        nib="8120000000001",
        name="Warung",
        kbli_code="56101",
        region="62.71",
        established_on=date(2020, 1, 2),
        owner=OwnerInput(nik="6271010101900001", full_name="Siti"),
    )
    assert second.owner is None


def test_an_eligibility_request_is_built_with_its_attestation() -> None:
    request = {
        "nib": "8120000000001",
        "product": "JAMKRIDA_KTG_PRODUKTIF",
        "loanAmount": 50_000_000,
        "tenorMonths": 24,
        "attestation": {"maxCollectibility": 1, "hasNpwp": None},
    }
    given = converted("Mutation", "check_eligibility", {"request": request})
    assert given["request"] == EligibilityRequest(
        nib="8120000000001",
        product="JAMKRIDA_KTG_PRODUKTIF",
        loan_amount=50_000_000,  # type: ignore[arg-type]
        tenor_months=24,
        attestation=LenderAttestationInput(max_collectibility=1),
    )


def test_an_argument_without_an_input_object_is_passed_as_it_is() -> None:
    assert converted("Query", "msmes", {"first": 5, "after": None}) == {"first": 5, "after": None}
