"""The check on every /graphql request: its token, its rate limit, then its size, shape and
complexity, before any SQL (but the rate limit's counting).

The token comes first, before the body is even read: what the checks keep (the parse cache here
and in schema/documents.py, each document's measured limits) holds syntax trees of a few MB for
a large document, so a request that stands for nobody must leave nothing behind, and a client
trickling a body must have a token before it may hold a connection open reading one. Checking a
token is as cheap as the checks (the signature of a token seen before is not verified again,
the client registry is held in memory: auth.service), so a bad one is still a cheap 401; the
checks then cost no database work, so an oversized or pathological document from a client is
cheap to turn away too. The rate limit comes next, before the checks: a client its process
already knows to be over it is refused before its body is read, with no statement, and any
other request is counted (sinergi.rate_limit) once its body is decoded, before any document in
it is parsed. Otherwise a client over its limit kept a worker parsing and costing a batch of
large documents for each 429, and the requests the checks refused were never counted. Every
refusal is a GraphQL error body with a contract code, never a bare text page. The body is read
and decoded once, here, and what it decodes to is handed on in the ASGI scope (`payload`):
nothing after the guard decodes it again, and the documents it holds are parsed once for every
layer (schema/documents.py). A GET arrives here with its URL's parameters already decoded into
that shape (sinergi.http_edge), so both methods meet one guard.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from graphql import (
    DocumentNode,
    GraphQLFormattedError,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    Visitor,
    build_schema,
    visit,
)
from starlette.authentication import AuthenticationError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.http import bearer_user, unauthorized
from domain.text import UNSTORABLE, storable
from schema.documents import parse_document
from schema.limits import InputError, Violation, check_document, cost_variables, page_size
from schema.query_limits import QueryLimits
from sinergi import exchange
from sinergi.request_headers import header

if TYPE_CHECKING:  # sinergi.rate_limit builds its refusals with this module's Refusal
    from sinergi.rate_limit import RateLimiter

PAYLOAD = "sinergi.graphql"
"""The scope key of the request's decoded JSON: one operation (an object) or a batch (a list)."""

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TOO_LONG = f"is longer than {exchange.MAX_OPERATION_NAME} characters"
_NOT_A_NAME = (
    "must be a GraphQL name ([_A-Za-z][_0-9A-Za-z]*) of at most "
    f"{exchange.MAX_OPERATION_NAME} characters"
)
_Inputs = tuple[tuple[str, int | str | tuple[str, ...] | None], ...]
"""The values a request sends for the variables a document's cost estimate reads, by name."""


def _unstorable(value: object) -> bool:
    """A string no text column can store (domain.text.storable), anywhere in `value`. Walked
    without recursion: the JSON decoders accept arrays nested a thousand deep."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if not storable(item):
                return True
        elif isinstance(item, dict):
            pending.extend(item)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


class _Census(Visitor):
    """A document's string literals, how many fields it selects (each fragment's once) and
    whether any selection set is empty."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[str] = []
        self.fields = 0
        self.empty_selection = False

    def enter_string_value(self, node: StringValueNode, *_: object) -> None:
        self.values.append(node.value)

    def enter_field(self, *_: object) -> None:
        self.fields += 1

    def enter_selection_set(self, node: SelectionSetNode, *_: object) -> None:
        if not node.selections:
            self.empty_selection = True


@dataclass(frozen=True, slots=True)
class _UnstorableLiteral:
    """A document whose string literals (escapes decoded) hold an unstorable character."""


@dataclass(frozen=True, slots=True)
class _EmptySelection:
    """A document with a selection set of no fields (`{ }`, `mutation { }`), which the GraphQL
    grammar forbids and graphql-core parses: it ran, answering `{"data": {}}`."""


@dataclass(frozen=True, slots=True)
class _TooManyFields:
    """A document selecting more fields than validation may be asked to compare; its other
    limits are named first, being what the client most likely needs to change."""

    document: DocumentNode
    violation: Violation


class Refusal(JSONResponse):
    """A request turned away, as its response; `errors` too, for a WebSocket's subscribe
    message, which is refused with them in an `error` message (there is no status to send)."""

    def __init__(self, status: int, error: GraphQLFormattedError) -> None:
        self.errors = [error]
        super().__init__({"errors": self.errors}, status_code=status)


def _refusal(status: int, code: str, message: str, **extensions: Any) -> Refusal:
    return Refusal(status, {"message": message, "extensions": {"code": code, **extensions}})


def bad_request(field: str, reason: str) -> Refusal:
    """A BAD_USER_INPUT refusal naming the part of the request at fault."""
    return _refusal(400, "BAD_USER_INPUT", f"{field}: {reason}", field=field)


def too_complex(violation: Violation, status: int = 400) -> Refusal:
    """A QUERY_TOO_COMPLEX refusal naming the limit, its maximum and what the request had."""
    return _refusal(
        status,
        "QUERY_TOO_COMPLEX",
        violation.message,
        limit=violation.limit,
        maximum=violation.maximum,
        actual=violation.actual,
    )


def persisted_hash(operation: dict[str, Any]) -> str | None:
    """The sha256Hash of an Apollo-style `extensions.persistedQuery`, if the operation has one."""
    extensions = operation.get("extensions")
    persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
    found = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
    return found if isinstance(found, str) else None


def sha256(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def _shape_error(operation: object) -> Refusal | None:
    """What GraphQL over HTTP requires of one operation's JSON, checked before anything else."""
    if not isinstance(operation, dict):
        return bad_request("body", "each operation must be a JSON object")
    for name, kind, wanted in (
        ("variables", dict, "an object"),
        ("extensions", dict, "an object"),
        ("operationName", str, "a string"),
        ("query", str, "a string"),
    ):
        if operation.get(name) is not None and not isinstance(operation[name], kind):
            return bad_request(name, f"must be {wanted} or null")
    requested = operation.get("operationName")  # into logs and metrics: bounded first
    if requested is not None and not exchange.OPERATION_NAME.fullmatch(requested):
        return bad_request("operationName", _NOT_A_NAME)
    extensions = operation.get("extensions") or {}
    query = operation.get("query")
    if "persistedQuery" in extensions:
        hashed = persisted_hash(operation)
        if hashed is None or not _SHA256.fullmatch(hashed):
            return bad_request(
                "extensions.persistedQuery.sha256Hash", "must be 64 lower-case hex digits"
            )
        if query is not None and sha256(query) != hashed:
            return bad_request("extensions.persistedQuery.sha256Hash", "does not match the query")
    elif query is None:
        return bad_request("query", "each operation needs a query (or a persistedQuery hash)")
    if query is not None and not query.strip():  # else text/plain, or INTERNAL over a WebSocket
        return bad_request("query", "must not be empty")
    return None


def _operation_names(document: DocumentNode) -> list[str | None]:
    return [
        node.name.value if node.name else None
        for node in document.definitions
        if isinstance(node, OperationDefinitionNode)
    ]


def _operation_name_error(document: DocumentNode, name: object) -> Refusal | None:
    """Why the document has no one operation to run under `name`: none at all (only fragments
    or type definitions, which strawberry answered in text/plain over HTTP and as INTERNAL over
    a WebSocket), a name too long, none so named, or several and no name."""
    names = _operation_names(document)
    if not names:
        return bad_request("query", "the document holds no operation")
    if any(len(declared or "") > exchange.MAX_OPERATION_NAME for declared in names):
        return bad_request("query", f"an operation's name {_TOO_LONG}")
    if name is not None and name not in names:
        return bad_request("operationName", f"the document has no operation named {name!r}")
    if name is None and len(names) > 1:
        return bad_request("operationName", "required when the document has several operations")
    return None


def measure_key(query: str, inputs: _Inputs) -> tuple[str, bytes]:
    """What a document's limits are kept by: the document, and a digest of the inputs (their
    repr is unambiguous for these types). Kept as sent, a long string in any of them (a
    `region` of 1.5 MB, which its resolver then refuses) stayed in memory with each entry."""
    return query, hashlib.blake2b(repr(inputs).encode(), digest_size=32).digest()


class OperationChecks:
    """What one operation must be before it runs, wherever it comes from: a POST's or GET's
    (RequestGuard) or a WebSocket's subscribe message (sinergi.subscriptions), so that neither
    way in skips a limit."""

    def __init__(self, limits: QueryLimits, sdl: str) -> None:
        """`sdl` is the schema the documents run on: the cost estimate sizes its lists."""
        self.limits = limits
        self.schema = build_schema(sdl)
        self.parse = lru_cache(maxsize=512)(self._parse_uncached)
        self._measured: OrderedDict[tuple[str, bytes], Violation | InputError | None] = (
            OrderedDict()
        )
        self._cost_variables = lru_cache(maxsize=512)(self._cost_variables_uncached)

    def _measure(self, query: str, inputs: _Inputs) -> Violation | InputError | None:
        """`_measure_uncached`, the last 512 answers kept, by `measure_key`."""
        key = measure_key(query, inputs)
        if key in self._measured:
            self._measured.move_to_end(key)
            return self._measured[key]
        measured = self._measure_uncached(query, inputs)
        self._measured[key] = measured
        if len(self._measured) > 512:
            self._measured.popitem(last=False)
        return measured

    def _measure_uncached(self, query: str, inputs: _Inputs) -> Violation | InputError | None:
        """The limits of a document given the values of the variables its estimate reads that
        the request sends (the others take their defaults, part of the document's text): the
        same whoever sends it, whatever its other variables."""
        parsed = self.parse(query)
        assert isinstance(parsed, DocumentNode)
        variables = {
            name: list(value) if isinstance(value, tuple) else value for name, value in inputs
        }
        return check_document(parsed, variables, self.limits, self.schema)

    def _estimate(
        self, query: str, parsed: DocumentNode, variables: dict[str, Any]
    ) -> Violation | InputError | None:
        inputs: list[tuple[str, int | str | tuple[str, ...] | None]] = []
        for name in sorted(self._cost_variables(query) & variables.keys()):
            value = variables[name]  # one omitted is left out: it runs with its default, not null
            size = page_size(value)
            if size is not None:  # keyed as the Int it runs as: 100.0 and 100 cost the same
                inputs.append((name, size))
            elif isinstance(value, list) and all(isinstance(item, str) for item in value):
                inputs.append((name, tuple(value)))
            elif value is None or isinstance(value, str):
                inputs.append((name, value))
            else:  # not a value the estimate reads (validation refuses it): measured afresh
                return check_document(parsed, variables, self.limits, self.schema)
        return self._measure(query, tuple(inputs))

    def _cost_variables_uncached(self, query: str) -> frozenset[str]:
        parsed = self.parse(query)
        assert isinstance(parsed, DocumentNode)
        return cost_variables(parsed)

    def _parse_uncached(
        self, query: str
    ) -> DocumentNode | Violation | _UnstorableLiteral | _EmptySelection | _TooManyFields | None:
        document = parse_document(query, self.limits.max_tokens)
        if not isinstance(document, DocumentNode):
            if "tokens" in document.message:
                return Violation("tokens", self.limits.max_tokens, self.limits.max_tokens + 1)
            return None  # a plain syntax error: the GraphQL endpoint reports it with its location
        census = _Census()
        visit(document, census)
        if census.fields > self.limits.max_fields:
            too_many = Violation("fields", self.limits.max_fields, census.fields)
            return _TooManyFields(document, too_many)
        if census.empty_selection:
            return _EmptySelection()
        return _UnstorableLiteral() if _unstorable(census.values) else document

    def refusal(self, operation: object) -> Refusal | None:
        """Why the operation may not run (its shape, its document's size, tokens and cost, its
        name), or None. A hash-only operation's document is checked once the trusted documents
        have filled it in (`document_refusal`)."""
        refused = _shape_error(operation)
        if refused is not None or not isinstance(operation, dict):
            return refused
        if _unstorable(operation.get("variables")):
            return bad_request("variables", f"a value {UNSTORABLE}")
        if operation.get("query") is None:
            return None
        return self.document_refusal(operation)

    def document_refusal(self, operation: dict[str, Any]) -> Refusal | None:
        """Why the operation's document may not run with its variables (size, tokens, cost, the
        operation named), or None. A registered document filled in for a hash meets this too:
        registration costed it without variables, and its page sizes may be variables."""
        query: str = operation["query"]
        if _unstorable(query):
            return bad_request("query", UNSTORABLE)
        size = len(query.encode())
        if size > self.limits.max_document_bytes:
            return too_complex(Violation("document size", self.limits.max_document_bytes, size))
        parsed = self.parse(query)
        if isinstance(parsed, Violation):
            return too_complex(parsed)
        if isinstance(parsed, _UnstorableLiteral):
            return bad_request("query", f"a string argument {UNSTORABLE}")
        if isinstance(parsed, _EmptySelection):
            return bad_request("query", "a selection set must select at least one field")
        if isinstance(parsed, _TooManyFields):
            variables = operation.get("variables") or {}
            violation = check_document(parsed.document, variables, self.limits, self.schema)
            if isinstance(violation, InputError):
                return bad_request(violation.field, violation.reason)
            return too_complex(violation or parsed.violation)
        if parsed is None:
            return None
        violation = self._estimate(query, parsed, operation.get("variables") or {})
        if isinstance(violation, InputError):
            return bad_request(violation.field, violation.reason)
        if violation is not None:
            return too_complex(violation)
        return _operation_name_error(parsed, operation.get("operationName"))

    def note(self, operations: list[dict[str, Any]]) -> None:
        """Name the accepted request's operation for metrics and logs (sinergi.exchange): the
        one `operationName` picks once its document is known to hold it, else the document's
        only operation; BATCH for a batch, UNKNOWN for a name no document was found to hold
        (a hash-only operation's, until TrustedDocuments fills in its document)."""
        now = exchange.current()
        if now is None:
            return
        if len(operations) > 1:
            now.operation = exchange.BATCH
            return
        requested = operations[0].get("operationName")
        query = operations[0].get("query")
        parsed = self.parse(query) if query is not None else None
        if not isinstance(parsed, DocumentNode):
            now.operation = None if requested is None else exchange.UNKNOWN
            return
        names = _operation_names(parsed)
        if requested is None:
            now.operation = next((name for name in names if name is not None), None)
        else:
            now.operation = requested if requested in names else exchange.UNKNOWN


Read = TypeVar("Read")

LATE = "the body did not all arrive in time"
"""The message of the cancellation that ends a body read past its deadline (BodyDeadlines)."""


class BodyDeadlines:
    """The body reads under way and when each must be done, and the task that ends those past
    it. One task looking every second costs each request a dictionary entry, where a timer of
    its own (asyncio.timeout) cost every `{ __typename }` some 4 µs, a twentieth of its CPU."""

    TICK_SECONDS = 1.0

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reading: dict[asyncio.Task[Any], float] = {}

    async def run(self) -> None:
        """Until cancelled (the app's lifespan): a read past its deadline is cancelled with
        LATE, which the guard answers 408; so it ends within a tick of it."""
        while True:
            await asyncio.sleep(min(self.TICK_SECONDS, self.seconds))
            now = time.monotonic()
            for task, deadline in list(self.reading.items()):
                if deadline <= now:
                    del self.reading[task]
                    task.cancel(LATE)

    async def within(self, reading: Awaitable[Read]) -> Read:
        """`reading` (a body's), awaited in this task: TimeoutError once it runs past the
        deadline, which each endpoint answers 408 in its own shape (/graphql's RequestGuard,
        the token endpoint)."""
        task = asyncio.current_task()
        assert task is not None
        self.reading[task] = time.monotonic() + self.seconds
        try:
            return await reading
        except asyncio.CancelledError as cancelled:
            if cancelled.args != (LATE,):
                raise
            task.uncancel()
            raise TimeoutError(LATE) from None
        finally:
            self.reading.pop(task, None)


class RequestGuard:
    """For HTTP requests to the endpoint only, GET or POST (sinergi.http_edge has refused the
    other methods). A request it passes on has `scope["user"]`, the client its token stands
    for, and has been admitted under the client's rate limit. One refused by the rate limit
    once its body is decoded is logged and counted under the operation it names (`_claimed`);
    one refused before its body is read, its client known to be over the limit, is anonymous:
    reading the body for its name is what that refusal spares."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        checks: OperationChecks,
        deadlines: BodyDeadlines,
        rate_limiter: RateLimiter,
    ) -> None:
        """`deadlines`: how long a client has to send the whole body, once its token is
        accepted; one trickling it a byte at a time would otherwise hold its connection, and
        a worker's memory for it, for as long as it liked."""
        self.app = app
        self.checks = checks
        self.deadlines = deadlines
        self.rate_limiter = rate_limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        connection = HTTPConnection(scope)
        try:
            user = await bearer_user(connection)
        except AuthenticationError as error:
            await unauthorized(connection, error)(scope, receive, send)
            return
        if user is None:
            await unauthorized(connection, None)(scope, receive, send)
            return
        scope["user"] = user  # `request.user`, for the endpoint and the executor's context
        client_id = user.principal.client_id
        now = exchange.current()
        if now is not None:
            now.client_id = client_id
        refusal = self.rate_limiter.known_over(client_id)  # before the body: no statement
        if refusal is None:
            refusal = await self._admitted(scope, receive, client_id)
        if refusal is None:
            refusal = self._check(scope[PAYLOAD])
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _admitted(self, scope: Scope, receive: Receive, client_id: str) -> Refusal | None:
        """Receives the body (`_receive`) and counts the request against the client's rate
        limit before any of its documents is parsed; the refusal to send, if any. Over the
        limit, the answer is 429 whatever else is wrong with the request."""
        received = None if PAYLOAD in scope else await self._receive(scope, receive)
        hits = 1 if received is not None else self._hits(scope[PAYLOAD])
        limited = await self.rate_limiter.admit(scope["state"]["primary"], client_id, hits)
        if limited is None:
            return received
        now = exchange.current()
        if received is None and now is not None:
            now.operation = _claimed(scope[PAYLOAD])
        if received is not None and "Connection" in received.headers:  # a body still arriving
            limited.headers["Connection"] = received.headers["Connection"]
        return limited

    async def _receive(self, scope: Scope, receive: Receive) -> Refusal | None:
        """Reads and decodes the body into `scope[PAYLOAD]`, or the refusal of a body that is
        too large, too slow to arrive, not UTF-8 or not JSON."""
        try:
            body = await self.deadlines.within(self._read_body(scope, receive))
        except TimeoutError:
            late = _refusal(
                408,
                "BAD_USER_INPUT",
                f"body: not received within {self.deadlines.seconds:g} s",
                field="body",
            )
            late.headers["Connection"] = "close"
            return late
        if body is None:
            limit = self.checks.limits.max_body_bytes
            return too_complex(Violation("body size", limit, limit + 1), status=413)
        try:
            scope[PAYLOAD] = _decoded(body)
        except UnicodeError:
            return _refusal(415, "BAD_USER_INPUT", "body: must be UTF-8", field="body")
        except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
            return bad_request("body", "not valid JSON")
        return None

    def _hits(self, payload: Any) -> int:
        """How many requests the body counts as against the rate limit: a batch as many as it
        holds operations, each of which runs as a request would (a mutation's root fields
        beyond its first are counted once its document is known, sinergi.graphql_app). A batch
        refused for its length alone, its operations unread, counts once, as does a body
        refused before it decoded: counted by its length, one body could use up the limit."""
        if isinstance(payload, list) and 0 < len(payload) <= self.checks.limits.max_batch:
            return len(payload)
        return 1

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it is known to be over the limit."""
        declared = header(scope, b"content-length") or ""
        if declared.isdigit() and int(declared) > self.checks.limits.max_body_bytes:
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.checks.limits.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check(self, payload: Any) -> Refusal | None:
        operations = payload if isinstance(payload, list) else [payload]
        if not operations:
            return bad_request("body", "a batch needs at least one operation")
        if len(operations) > self.checks.limits.max_batch:
            return too_complex(Violation("batch", self.checks.limits.max_batch, len(operations)))
        for operation in operations:
            refusal = self.checks.refusal(operation)
            if refusal is not None:
                return refusal
        self.checks.note(operations)
        return None


def _claimed(payload: Any) -> str | None:
    """The operation a request refused before the checks is logged and counted as: BATCH for a
    batch, else the `operationName` it sends if that is a GraphQL name of bounded length
    (exchange.OPERATION_NAME), as sent. Its document is not parsed, neither to confirm that it
    holds the name nor to name an unnamed request's only operation: sparing the parse is what
    refusing before the checks is for."""
    operations = payload if isinstance(payload, list) else [payload]
    if len(operations) > 1:
        return exchange.BATCH
    requested = (
        operations[0].get("operationName")
        if operations and isinstance(operations[0], dict)
        else None
    )
    if isinstance(requested, str) and exchange.OPERATION_NAME.fullmatch(requested):
        return requested
    return None


def _decoded(body: bytes) -> Any:
    """orjson, several times faster; what it refuses, the standard library reads as before
    (a lone surrogate, which the checks above then name; NaN; a UTF-8 byte order mark) or
    refuses (ValueError). Only as UTF-8, as the contract says: given bytes, `json.loads` would
    read UTF-16 and UTF-32 too, and a body that is neither UTF-8 nor JSON is UnicodeError."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        encoding = json.detect_encoding(body)
        if encoding not in ("utf-8", "utf-8-sig"):
            raise UnicodeError(encoding) from None
        return json.loads(body.decode(encoding))


def payload(scope: Scope) -> Any:
    """The request's decoded JSON, as the guard accepted it (or as a trusted document filled
    it in)."""
    return scope[PAYLOAD]
