"""Seal every response that hands out records or personal data, or reads the trail, into the
audit log first.

The entry is written before the response leaves; if it cannot be written, the response fails
rather than going out unrecorded (UU 27/2022 Pasal 31: record all processing).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from graphql import OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from resolvers.access import AccessNotes
from resolvers.context import Context
from schema.errors import graphql_schema
from schema.touched import touched_by


class AuditTrail(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        yield
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            document = execution.graphql_document
            if document is not None and context.accesses.worth_recording:
                context.accesses.touched = touched_by(
                    graphql_schema(execution.schema),
                    document,
                    execution.operation_name,
                    context.policy.may,
                    execution.variables,
                )
            await record(context, execution.query or "", execution.operation_name)


def sent_document(operation: OperationDefinitionNode) -> str:
    """The document `operation` was parsed from, as the client sent it (a registered document
    in place of a hash): what a subscription's entries hash, as a request's do over HTTP. The
    operation printed alone leaves out its fragments, and matches no document sent."""
    location = operation.loc
    assert location is not None, "documents are parsed with their locations"
    return location.source.body


async def record(
    context: Context, query: str, operation_name: str | None, notes: AccessNotes | None = None
) -> None:
    """Append the request's entry, if it is worth recording (AccessNotes); `notes`: what one
    delivery of a subscription handed out, rather than the request."""
    notes = notes or context.accesses
    if not notes.worth_recording:
        return
    entry = context.policy.audit_entry(
        operation=operation_name,
        document_hash=hashlib.sha256(query.encode()).hexdigest(),
        fields=notes.fields,
        records=notes.records,
        touched=notes.touched,
        owner_columns=notes.owner_columns,
        owner_finances=notes.owner_finances,
        positions=notes.positions,
    )
    await context.audit.append(
        client_id=context.principal.client_id, entry=entry, subjects=notes.subjects
    )
