"""Every error leaves with a contract code; anything unexpected is masked and logged.

Coded errors (FORBIDDEN, BAD_USER_INPUT, …) pass unchanged. Errors the GraphQL engine raises for
a malformed document or bad variables are the caller's input errors; one it raises for a value
a resolver returned that the field's type cannot represent is ours. Everything else becomes
INTERNAL with a correlation id: the detail goes to the log only, never to the client. A lost
database is SERVICE_UNAVAILABLE (retry later), not INTERNAL: nothing is wrong with the request.
A read past the statement timeout is QUERY_TOO_COMPLEX (`limit`: "statement timeout"): the
request asked for more than a statement may take, which asking again will not change. A
statement held up past the lock timeout by another's lock (a row another write holds, a
migration's table lock) is SERVICE_UNAVAILABLE too: its own work was not the cause, and what it
was doing was not applied (a write's transaction is rolled back, an autocommitted statement
undone), so sent again after Retry-After it goes through. (Where the request had committed a
change before, sinergi.graphql_http's `settled` says so, as for an outage.)
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator, Sequence
from enum import Enum
from typing import Any

import strawberry
from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    DocumentNode,
    GraphQLError,
    GraphQLResolveInfo,
    GraphQLSchema,
)
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext, ExecutionResult, Info
from strawberry.types.execution import StreamExecutionResult

from db.errors import ReadTimedOut, is_lock_timeout, is_unavailable
from db.releases import NoRelease
from resolvers.errors import ErrorCode
from schema.documents import parse_document
from schema.input_fields import input_field

logger = logging.getLogger("sinergi.errors")


_ECHO = re.compile(r"(?:[,;] found| Found): .*\Z", re.DOTALL)
"""graphql-core's echo of the rejected input ("…, found: {nik: "6271…", …}."): a whole input
object, personal data included, which error messages (and so logs) must never carry."""


def _unechoed(message: str) -> str:
    return _ECHO.sub(lambda echo: "" if echo.group(0).startswith(" ") else ".", message)


_LONG_INT = f"must be an integer within {GRAPHQL_MIN_INT:,} and {GRAPHQL_MAX_INT:,}"
_INT_LITERAL = re.compile(r"\AExpected value of type '\[*Int[!\]]*'")


def _long_int(error: GraphQLError) -> bool:
    """An Int literal graphql-core's parser refused with the ValueError of Python's int(): only
    one of more digits than int() converts (4,300), whose message names
    sys.set_int_max_str_digits(), which is no reason to give a client."""
    return isinstance(error.original_error, ValueError) and bool(_INT_LITERAL.match(error.message))


def _input_error(error: GraphQLError, document: DocumentNode | None) -> GraphQLError:
    """BAD_USER_INPUT, naming the input field when the error is about one (schema.input_fields),
    else `query`, the document itself (a syntax error, a field the type lacks): in
    `extensions.field`, and first in the message, as the resolvers' input errors do."""
    field = input_field(error, document) or "query"
    extensions = {
        **(error.extensions or {}),
        "code": ErrorCode.BAD_USER_INPUT.value,
        "field": field,
    }
    message = _LONG_INT if _long_int(error) else _unechoed(error.message)
    message = message if message.startswith(f"{field}: ") else f"{field}: {message}"
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,  # with positions: a syntax error keeps its locations
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class _Kind(Enum):
    CODED = "coded"
    INPUT = "input"
    UNAVAILABLE = "unavailable"
    HELD_UP = "held up"
    TOO_COSTLY = "too costly"
    INTERNAL = "internal"


def _unrepresentable(error: GraphQLError) -> bool:
    """A value a resolver returned that its type cannot represent (a sum past GraphQL's 32-bit
    Int, say): the engine's output coercion raised it while executing (the error has a path),
    and names no node of the document, as a refused argument does. A fault of ours, not the
    caller's input: coded BAD_USER_INPUT (field `query`), it told every client of a national
    table to change a request that was fine, and its message carried the value."""
    original = error.original_error
    return error.path is not None and isinstance(original, GraphQLError) and not original.nodes


def _kind(error: GraphQLError) -> _Kind:
    """What an error is to the caller: already coded, its own input, a lost database, or a
    fault of ours."""
    if error.extensions and "code" in error.extensions:
        return _Kind.CODED
    original = error.original_error
    if _unrepresentable(error):
        return _Kind.INTERNAL
    if original is None or isinstance(original, GraphQLError):
        return _Kind.INPUT
    if _refused_literal(error):
        return _Kind.INPUT
    return _fault(original)


def _refused_literal(error: GraphQLError) -> bool:
    """A scalar's parser refusing a literal in the document (schema.scalars raise ValueError):
    graphql-core reports it before execution (no path) on the literal's node. Any other
    ValueError (a UnicodeError, a JSONDecodeError, one raised by the audit write) names no node
    of the document: counted as input, it went out as BAD_USER_INPUT quoting its text, and was
    not logged. (A refused variable's value comes wrapped in a GraphQLError of graphql-core's.)"""
    return isinstance(error.original_error, ValueError) and error.path is None and bool(error.nodes)


def _fault(original: Exception) -> _Kind:
    """What an exception that is not the caller's input is: a read past the statement timeout,
    a statement held up by another's lock, a lost database (or no released figures), or a
    fault of ours."""
    if isinstance(original, ReadTimedOut):
        return _Kind.TOO_COSTLY
    if is_lock_timeout(original):
        return _Kind.HELD_UP
    if isinstance(original, NoRelease):
        return _Kind.UNAVAILABLE
    return _Kind.UNAVAILABLE if is_unavailable(original) else _Kind.INTERNAL


def _coded(error: GraphQLError, document: DocumentNode | None = None) -> GraphQLError:
    return _coded_as(_kind(error), error, document)


def unexpected(error: Exception) -> GraphQLError:
    """An exception raised around the operation rather than reported in its result (the audit
    write, the executor itself): never the caller's input, whatever its type, and its text is
    for the log only."""
    wrapped = GraphQLError("the answer could not be completed", original_error=error)
    return _coded_as(_fault(error), wrapped)


def _coded_as(
    kind: _Kind, error: GraphQLError, document: DocumentNode | None = None
) -> GraphQLError:
    if kind is _Kind.CODED:
        return error
    if kind is _Kind.INPUT:
        return _input_error(error, document)
    original = error.original_error
    if kind is _Kind.UNAVAILABLE:
        unreleased = isinstance(original, NoRelease)
        what = "no figures have been released yet" if unreleased else "the database is unavailable"
        logger.warning("%s%s: %s", what, _at(error.path), original)
        return _in_place_of(error, f"{what}; retry shortly", ErrorCode.SERVICE_UNAVAILABLE)
    if kind is _Kind.HELD_UP:
        logger.warning("a statement was held up past the lock timeout%s", _at(error.path))
        return _in_place_of(
            error,
            "held up waiting for another transaction's lock (held past the lock timeout); "
            "send it again after Retry-After seconds",
            ErrorCode.SERVICE_UNAVAILABLE,
        )
    if kind is _Kind.TOO_COSTLY:
        logger.warning("a read ran past the statement timeout%s", _at(error.path))
        return _in_place_of(
            error,
            "the query ran past the statement timeout; ask for less at a time (fewer aliases, "
            "smaller pages, figure tables of fewer dimensions)",
            ErrorCode.QUERY_TOO_COMPLEX,
            limit="statement timeout",
        )
    correlation_id = uuid.uuid4().hex
    logger.error("internal error %s%s", correlation_id, _at(error.path), exc_info=original)
    return _in_place_of(
        error,
        f"Internal error; quote {correlation_id} when reporting it.",
        ErrorCode.INTERNAL,
        correlationId=correlation_id,
    )


def _in_place_of(
    error: GraphQLError, message: str, code: ErrorCode, **extensions: str
) -> GraphQLError:
    """`message`, coded `code` with `extensions`, where `error` was met (its nodes and path):
    nothing else of `error` goes out, its text being for the log only."""
    return GraphQLError(
        message, nodes=error.nodes, path=error.path, extensions={"code": code.value, **extensions}
    )


def _at(path: list[str | int] | None) -> str:
    """Where an error was met, for the log: nowhere for one outside every field (the audit
    write, a token check), where the log read "at None"."""
    return "" if path is None else f" at {path}"


def coded(
    errors: Sequence[GraphQLError], document: DocumentNode | None = None
) -> list[GraphQLError]:
    """The errors as the client may see them, input errors naming their field in `document`;
    also the HTTP layer's last pass, for errors that strawberry reports outside the operation
    hooks (an extension failing, say)."""
    return [_coded(error, document) for error in errors]


def graphql_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry builds, which validation, planning and the audit's
    field list work on. Strawberry (0.341) has no public accessor for it and reads the private
    attribute itself (strawberry/printer), so this is the one place that does."""
    return schema._schema


def raw_info(info: Info[Any, Any]) -> GraphQLResolveInfo[Any]:
    """graphql-core's resolve info behind Strawberry's `info`, for what Strawberry's does not
    pass on: the operation's fragments, which the compiled plans walk, and a subscription's
    coerced variables, which @skip and @include are read with. Strawberry (0.341) has no public
    accessor for it, so this is the one place that reads the private attribute."""
    return info._raw_info


class CodedSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        """Strawberry logs every error at ERROR with its message, and a refused variable's
        message echoes the whole input, personal data included; a FORBIDDEN, NOT_FOUND or
        input error is the caller's answer, not a fault. Only faults of ours are logged (and
        again, with the correlation id the client quotes, where they are coded INTERNAL)."""
        faults = [error for error in errors if _kind(error) is _Kind.INTERNAL]
        if faults:
            super().process_errors(faults, execution_context)


class ErrorCodes(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = coded(result.errors, self.execution_context.graphql_document)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """Each result a WebSocket sends (a subscription's `next`, or its refusal) is coded
        before it goes, as an HTTP answer is: `on_operation` runs only once the stream has
        ended, so a delivery failing mid-stream (its audit write timing out) went out as the
        exception's text, the statement and its parameters with it."""
        if isinstance(result, ExecutionResult) and result.errors:
            result.errors = coded(result.errors, self.execution_context.graphql_document)
        yield


class CodedParserCache(SchemaExtension):
    """Documents from the process's one parse cache (schema/documents.py), except that a syntax
    error is left for strawberry to report.

    Strawberry's ParserCache parses while the parsing hooks are being entered, outside the `try`
    that turns a syntax error into a result, so the error skipped ErrorCodes and left without a
    code. Leaving the document unset makes strawberry parse again inside that `try`.
    """

    def __init__(self, max_tokens: int) -> None:
        """`max_tokens`: the request guard's limit, so both find the same cached document."""
        super().__init__()
        self.max_tokens = max_tokens

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        if context.query is not None:
            document = parse_document(context.query, self.max_tokens)
            if not isinstance(document, GraphQLError):
                context.graphql_document = document
        yield
