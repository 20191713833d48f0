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

from resolvers.access import Audited, Touched
from resolvers.context import Context
from schema.errors import graphql_schema
from schema.touched import touched_by


class AuditTrail(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            document = execution.graphql_document
            touched = (
                cache(
                    partial(
                        touched_by,
                        graphql_schema(execution.schema),
                        document,
                        execution.operation_name,
                        context.policy.may,
                        execution.variables,
                    )
                )
                if document is not None
                else Touched
            )
            # Handed what `touched_by` needs, not the execution, which holds the context:
            # the context would hold itself, left to the cyclic collector to free.
            context.audited = Audited(execution.query or "", execution.operation_name, touched)
        yield
        if isinstance(context, Context):
            await context.record()


def sent_document(operation: OperationDefinitionNode) -> str:
    """The document `operation` was parsed from, as the client sent it (a registered document
    in place of a hash): what a subscription's entries hash, as a request's do over HTTP. The
    operation printed alone leaves out its fragments, and matches no document sent."""
    location = operation.loc
    assert location is not None, "documents are parsed with their locations"
    return location.source.body
