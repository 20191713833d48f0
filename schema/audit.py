"""Seal every response that hands out records or personal data, or reads the trail, into the
audit log first.

The entry is written before the response leaves; if it cannot be written, the response fails
rather than going out unrecorded (UU 27/2022 Pasal 31: record all processing).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import cache, partial

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext

from resolvers.access import Audited, Touched
from resolvers.context import Context
from schema.errors import graphql_schema
from schema.touched import touched_by


class AuditTrail(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            context.audited = Audited(
                execution.query or "", execution.operation_name, cache(partial(_touched, execution))
            )
        yield
        if isinstance(context, Context):
            await context.record()


def _touched(execution: ExecutionContext) -> Touched:
    document = execution.graphql_document
    if document is None:
        return Touched()
    return touched_by(
        graphql_schema(execution.schema),
        document,
        execution.operation_name,
        execution.context.policy.may,
        execution.variables,
    )


def sent_document(operation: OperationDefinitionNode) -> str:
    """The document `operation` was parsed from, as the client sent it (a registered document
    in place of a hash): what a subscription's entries hash, as a request's do over HTTP. The
    operation printed alone leaves out its fragments, and matches no document sent."""
    location = operation.loc
    assert location is not None, "documents are parsed with their locations"
    return location.source.body
