"""`checkEligibility` without graphql-core's executor, while the partner's bank waits.

Through the executor, a check spends about as much CPU in graphql-core and Strawberry (variable
and argument conversion, the permission extension, completing each field) as in deciding. A
mutation made of that one field, selecting the decision's plain fields, its rule results and its
final verdict, is answered here instead: by the same resolver, rendered with graphql-core's own
serialisers from the shape the Strawberry type gives (schema/direct_shapes.py), audited like
any other answer.

A mutation must not run twice. Until the decision is stored, anything that goes wrong (bad
input, an unknown business, a lost database) returns None and the executor runs the check again
and reports it; no decision was stored, because the resolver stores it with its last statement.
From the moment the decision is stored the answer is given here, as the executor would give it,
even when the audit entry cannot be written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import FieldNode, FragmentDefinitionNode, GraphQLError, GraphQLField
from graphql.execution.values import VariableValues, get_argument_values

from resolvers import eligibility
from resolvers.context import Context
from schema.audit import record
from schema.direct_shapes import (
    Batch,
    Shape,
    guard_scopes,
    render,
    shape_of,
    strawberry_input,
    unwrap,
)
from schema.eligibility_mutation import EligibilityRequest, LenderAttestationInput, checked_request
from schema.errors import coded

FIELD = "checkEligibility"


@dataclass(frozen=True, slots=True)
class CheckPlan:
    key: str
    node: FieldNode
    definition: GraphQLField
    scopes: tuple[Any, ...]
    shape: Shape


def check_plan(
    key: str,
    node: FieldNode,
    definition: GraphQLField,
    fragments: Mapping[str, FragmentDefinitionNode],
) -> CheckPlan:
    decision_type, _ = unwrap(definition.type)
    shape = shape_of(decision_type, node.selection_set, fragments)
    return CheckPlan(key, node, definition, guard_scopes(definition), shape)


async def answer_check(
    context: Context,
    plan: CheckPlan,
    variables: VariableValues,
    query: str,
    operation_name: str | None,
) -> dict[str, Any] | None:
    """The response, or None when no decision was stored and the executor should answer."""
    if not context.principal.has(*plan.scopes):
        return None  # FORBIDDEN comes from the executor
    try:
        arguments = get_argument_values(plan.definition, plan.node, variables)
        request = checked_request(_request(arguments["request"]))
        context.accesses.field_used(f"Mutation.{FIELD}", (scope.value for scope in plan.scopes))
        stored = await eligibility.check(context, request)
    except Exception:  # raised before the store: the executor checks again and says what failed
        return None
    try:
        data = {plan.key: render(context, plan.shape, stored, Batch())}
        await record(context, query, operation_name)
    except Exception as failure:
        # Stored: no falling back now. Answered as the executor answers a failed extension.
        errors = coded([GraphQLError(str(failure), original_error=failure)])
        return {"data": None, "errors": [error.formatted for error in errors]}
    return {"data": data}


def _request(given: Mapping[str, Any]) -> EligibilityRequest:
    """The Strawberry input the resolver would receive for the coerced argument."""
    attestation = strawberry_input(LenderAttestationInput, given["attestation"])
    request: EligibilityRequest = strawberry_input(
        EligibilityRequest, {**given, "attestation": attestation}
    )
    return request
