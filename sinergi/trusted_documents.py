"""Trusted documents: clients that may run only the operations registered for them.

A production integration runs a fixed set of operations. Registering them (`sinergi clients trust`)
and switching the mode on (`SINERGI_TRUSTED_DOCUMENTS`) turns every other document away, over
HTTP and in a WebSocket's subscribe messages alike, so a leaked token cannot be used to explore
the API. In any mode a client may send just the hash of a registered operation, in the Apollo
persisted-query shape: `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "…"}}}`.

An operation is stored as graphql-core prints it (with the fragments it uses), so a client may
send either that text, its own text of a registered file with one operation, or the hash.
Registered documents were checked against the limits when registered; a hash-only request
meets the request guard's document checks once its document is filled in, with its own
variables and operation name (`TrustedDocuments.resolve`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLFormattedError,
    GraphQLSchema,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    print_ast,
    validate,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import clients
from db.engine import one_connection
from db.errors import transient_reason
from db.queries import trusted_documents
from schema.documents import parse_document
from schema.limits import check_document
from schema.query_limits import QueryLimits
from sinergi.guard import OperationChecks, Refusal, bad_request, persisted_hash, sha256
from sinergi.rate_limit import service_unavailable

logger = logging.getLogger("sinergi.trusted_documents")


@dataclass(frozen=True, slots=True)
class Operation:
    name: str | None
    document: str
    sha256: str


def _spreads(selections: SelectionSetNode | None, found: list[str]) -> None:
    for node in selections.selections if selections else ():
        if isinstance(node, FragmentSpreadNode):
            if node.name.value not in found:
                found.append(node.name.value)
        else:
            _spreads(getattr(node, "selection_set", None), found)


def _standalone(operation: OperationDefinitionNode, document: DocumentNode) -> str:
    """The operation and every fragment it uses, transitively, as one printed document."""
    fragments = {
        node.name.value: node
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    used: list[str] = []
    _spreads(operation.selection_set, used)
    for name in used:  # grows while walking: fragments that use fragments
        if name in fragments:
            _spreads(fragments[name].selection_set, used)
    own = [fragments[name] for name in used if name in fragments]
    return print_ast(DocumentNode(definitions=(operation, *own)))


def operations(source: str) -> list[Operation]:
    """Each operation of a .graphql file, standalone; raises GraphQLSyntaxError."""
    document = parse(source)
    found = []
    for node in document.definitions:
        if isinstance(node, OperationDefinitionNode):
            text = _standalone(node, document)
            found.append(Operation(node.name.value if node.name else None, text, sha256(text)))
    return found


def checked_operations(source: str, schema: GraphQLSchema, limits: QueryLimits) -> list[Operation]:
    """The operations of a file about to be trusted, each valid and within the limits.

    Raises ValueError naming the operation at fault: a document is registered only if it could
    run (with the variables a request sends, it is checked again: `TrustedDocuments.resolve`).
    """
    try:
        found = operations(source)
    except GraphQLError as error:
        raise ValueError(f"not a GraphQL document: {error.message}") from None
    if not found:
        raise ValueError("the file holds no operation")
    for operation in found:
        label = operation.name or "the anonymous operation"
        document = parse(operation.document)
        errors = validate(schema, document)
        if errors:
            raise ValueError(f"{label}: {errors[0].message}")
        size = len(operation.document.encode())
        violation = check_document(document, {}, limits, schema)
        if size > limits.max_document_bytes or violation is not None:
            reason = violation.message if violation else "document size over the limit"
            raise ValueError(f"{label}: {reason}")
    return found


def _canonical_hash(query: str, operation_name: object, max_tokens: int) -> str | None:
    """The hash the selected operation was registered under, whatever the client's whitespace."""
    document = parse_document(query, max_tokens)
    if isinstance(document, GraphQLError):
        return None
    for node in document.definitions:
        if isinstance(node, OperationDefinitionNode) and (
            operation_name is None or (node.name and node.name.value == operation_name)
        ):
            return sha256(_standalone(node, document))
    return None


def _listed(setting: str) -> list[str]:
    """The client ids a setting that is neither 'on' nor 'off' lists."""
    return [] if setting in ("on", "off") else [part.strip() for part in setting.split(",")]


def enforcement(setting: str) -> Callable[[str], bool]:
    """'off', 'on', or a comma-separated list of the client ids held to their documents (as
    sinergi/settings.py reads SINERGI_TRUSTED_DOCUMENTS)."""
    if setting == "on":
        return lambda client_id: True
    if setting == "off":
        return lambda client_id: False
    return frozenset(_listed(setting)).__contains__


async def unregistered(url: str, setting: str) -> list[str]:
    """The ids the setting lists that no client is registered under (revoked or not), which
    `serve` refuses: each would hold nobody, and the client meant (a typo's, or everyone's for a
    word meant as a mode) would run any document, silently. An SSO principal's id (a `#` in it)
    is registered nowhere and a user's first token may come at any time, so it cannot be looked
    up; the settings already refused one no token of a configured issuer could carry."""
    registrable = [client_id for client_id in _listed(setting) if "#" not in client_id]
    if not registrable:  # `on` or `off`, as most deployments are: nothing to ask
        return []
    async with one_connection(url, statement_timeout_ms=30_000) as connection:
        return [
            client_id
            for client_id in registrable
            if await clients.get(connection, client_id) is None
        ]


def _forbidden(client_id: str) -> Refusal:
    error: GraphQLFormattedError = {
        "message": f"trusted documents mode: client {client_id!r} may run only operations "
        "registered for it (sinergi clients trust); this one is not",
        "extensions": {"code": "FORBIDDEN", "mode": "trusted documents"},
    }
    return Refusal(403, error)


class TrustedDocuments:
    def __init__(self, setting: str, *, checks: OperationChecks) -> None:
        """`checks`: the request guard's, which a registered document filled in for a hash meets
        as one sent as text does; its token limit finds the same parsed document."""
        self.enforced = enforcement(setting)
        self.checks = checks
        self.max_tokens = checks.limits.max_tokens

    async def resolve(self, engine: AsyncEngine, client_id: str, payload: Any) -> Any:
        """The request's decoded JSON (sinergi.guard) with registered documents filled in for
        hashes, or the Refusal to send: for a POST or GET, and for each subscribe message over
        the WebSocket (sinergi.subscriptions), so both are held to the same documents.

        Its shape has already been checked (sinergi.guard's `OperationChecks`); a document filled
        in is checked here, with the request's variables and operation name.
        """
        enforced = self.enforced(client_id)
        operations = payload if isinstance(payload, list) else [payload]
        if not enforced and all(persisted_hash(operation) is None for operation in operations):
            return payload  # the common case costs nothing more
        operations = [dict(operation) for operation in operations]
        wanted: list[set[str]] = []
        for operation in operations:
            query, hashed = operation.get("query"), persisted_hash(operation)
            if query is None or hashed is not None:
                wanted.append({hashed} if hashed is not None else set())
            elif enforced:
                canonical = _canonical_hash(query, operation.get("operationName"), self.max_tokens)
                wanted.append({sha256(query)} | ({canonical} if canonical else set()))
            else:
                wanted.append(set())
        try:
            async with engine.connect() as connection:
                found = await trusted_documents.find(connection, client_id, set().union(*wanted))
        except Exception as error:  # away, or held up by a migration's lock: sent again later
            reason = transient_reason(error)
            if reason is None:
                raise
            logger.warning("could not read the trusted documents: %s", error)
            return service_unavailable(reason)
        for operation, hashes in zip(operations, wanted, strict=True):
            known = hashes & found.keys()
            if operation.get("query") is None:
                if not known:
                    return bad_request(
                        "extensions.persistedQuery.sha256Hash",
                        f"no trusted document with this hash is registered for {client_id!r}",
                    )
                operation["query"] = found[known.pop()]
                refused = self.checks.document_refusal(operation)
                if refused is not None:
                    return refused
            elif enforced and not known:
                return _forbidden(client_id)
        self.checks.note(operations)  # a hash-only operation's name is known only now
        return operations if isinstance(payload, list) else operations[0]
