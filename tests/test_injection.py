"""Injection and odd strings in every string argument and filter of the read schema.

The arguments are found from the schema itself, so a new query argument is covered the day it
is added. Each payload must be refused as BAD_USER_INPUT or match nothing: never a 5xx, never
INTERNAL, never rows the honest value would not have returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import graphql
import httpx
import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    get_named_type,
)

from schema.build import sdl
from tests.support.http import Api

SCHEMA = graphql.build_schema(sdl())
# Who asks: records and personal data, the audit trail, eligibility.
CLIENTS = ("demo-province-62", "demo-walidata", "demo-jamkrida-62")
PAYLOADS = [
    "' OR 1=1 --",
    "'; DROP TABLE msmes; --",
    '" OR ""="',
    "9990000000001' OR '1'='1",
    "62' --",
    "62%",
    "6_",
    "%",
    "62.71\x00",
    "\x00",
    "\\",
    "",
    "６２",  # fullwidth digits: str.isdigit() says yes
    "62\u200b",
    "🙂",
    "\ud800",  # a lone surrogate: valid JSON, not encodable as UTF-8
    "x" * 100_000,
]
NO_ROWS: list[Any] = [None, [], {"nodes": []}]
ALLOWED_CODES = {"BAD_USER_INPUT", "NOT_FOUND", "FORBIDDEN"}


def _selection(output: GraphQLOutputType, depth: int = 0) -> str:
    """Every scalar field without required arguments, and one level of objects below."""
    named = get_named_type(output)
    if not isinstance(named, GraphQLObjectType):
        return ""
    parts = []
    for name, field in named.fields.items():
        if any(isinstance(arg.type, GraphQLNonNull) for arg in field.args.values()):
            continue
        inner = get_named_type(field.type)
        if isinstance(inner, GraphQLScalarType | GraphQLEnumType):
            parts.append(name)
        elif depth == 0 and name == "nodes":
            parts.append(f"{name} {_selection(field.type, depth + 1)}")
    return "{ " + " ".join(parts or ["__typename"]) + " }"


def _filler(kind: GraphQLInputType, name: str) -> Any:
    """A harmless value for a required argument that is not under test."""
    if isinstance(kind, GraphQLNonNull):
        return _filler(kind.of_type, name)
    if isinstance(kind, GraphQLList):
        return [_filler(kind.of_type, name)]
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        return {}
    return {"Int": 2024, "Boolean": False, "Float": 1.0}.get(kind.name, "9990000000001")


def _targets() -> Iterator[tuple[str, str, str | None]]:
    """(root field, argument, field of the argument's input object or None) for every string."""
    assert SCHEMA.query_type is not None
    for field_name, field in SCHEMA.query_type.fields.items():
        for arg_name, arg in field.args.items():
            named = get_named_type(arg.type)
            if isinstance(named, GraphQLScalarType) and named.name in {"String", "ID"}:
                yield field_name, arg_name, None
            elif isinstance(named, GraphQLInputObjectType):
                for inner_name, inner in named.fields.items():
                    if get_named_type(inner.type).name in {"String", "ID"}:
                        yield field_name, arg_name, inner_name


TARGETS = list(_targets())


def _request(field_name: str, arg_name: str, inner: str | None, payload: str) -> dict[str, Any]:
    assert SCHEMA.query_type is not None
    field: GraphQLField = SCHEMA.query_type.fields[field_name]
    variables: dict[str, Any] = {}
    for name, arg in field.args.items():
        if name == arg_name:
            variables[name] = payload if inner is None else {inner: payload}
        elif isinstance(arg.type, GraphQLNonNull):
            variables[name] = _filler(arg.type, name)
    declared = ", ".join(f"${name}: {field.args[name].type}" for name in variables)
    passed = ", ".join(f"{name}: ${name}" for name in variables)
    query = f"query Probe({declared}) {{ target: {field_name}({passed}) {_selection(field.type)} }}"
    return {"query": query, "variables": variables}


def test_every_string_argument_is_probed() -> None:
    probed = {(field, arg, inner) for field, arg, inner in TARGETS}
    for expected in [
        ("msme", "nib", None),
        ("cooperative", "legalEntityNo", None),
        ("region", "code", None),
        ("msmes", "filter", "region"),
        ("msmes", "filter", "kbliSection"),
        ("msmes", "after", None),
        ("cooperatives", "filter", "programme"),
        ("auditEntries", "nik", None),
        ("auditEntries", "clientId", None),
        ("personalDataAccess", "nik", None),
        ("graduations", "region", None),
        ("indicator", "code", None),
        ("programme", "id", None),
    ]:
        assert expected in probed


@pytest.mark.parametrize(
    ("field_name", "arg_name", "inner"),
    TARGETS,
    ids=[f"{field}.{arg}" + (f".{inner}" if inner else "") for field, arg, inner in TARGETS],
)
def test_hostile_strings_are_refused_or_match_nothing(
    api: Api, field_name: str, arg_name: str, inner: str | None
) -> None:
    for client in CLIENTS:
        token = api.token(client)
        for payload in PAYLOADS:
            response = _post(api, _request(field_name, arg_name, inner, payload), token)
            context = (client, payload[:40], response.status_code, response.text[:300])
            assert response.status_code < 500, context
            body = response.json()
            codes = {error["extensions"]["code"] for error in body.get("errors", [])}
            assert codes <= ALLOWED_CODES, context
            value = (body.get("data") or {}).get("target")
            if "FORBIDDEN" in codes and codes == {"FORBIDDEN"}:
                continue  # not this client's field: nothing ran
            assert _no_rows(value), context


def _post(api: Api, body: dict[str, Any], token: str) -> httpx.Response:
    """json.dumps escapes a lone surrogate as \\ud800; httpx's own encoder would refuse it."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    return api.client.post("/graphql", content=json.dumps(body), headers=headers)


def _no_rows(value: Any) -> bool:
    if value in NO_ROWS:
        return True
    if isinstance(value, dict) and value.get("nodes") == []:
        return True
    # Figures grouped with totals: a filter that matches nothing leaves every cell at zero.
    return isinstance(value, list) and all(
        isinstance(cell, dict) and cell.get("count") in (0, None) for cell in value
    )
