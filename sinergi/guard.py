"""The outermost check on POST /graphql: size, shape and complexity, before any token or SQL.

Refusing here costs no database work, so an oversized or pathological request is cheap to turn
away whoever sends it. The body is read once and handed on unchanged.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from graphql import DocumentNode, GraphQLSyntaxError, parse
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.limits import QueryLimits, Violation, check_document


def _refusal(status: int, code: str, message: str, **extensions: Any) -> JSONResponse:
    error = {"message": message, "extensions": {"code": code, **extensions}}
    return JSONResponse({"errors": [error]}, status_code=status)


def _too_complex(violation: Violation) -> JSONResponse:
    return _refusal(
        400,
        "QUERY_TOO_COMPLEX",
        violation.message,
        limit=violation.limit,
        maximum=violation.maximum,
        actual=violation.actual,
    )


class RequestGuard:
    def __init__(self, app: ASGIApp, *, limits: QueryLimits, path: str = "/graphql") -> None:
        self.app = app
        self.limits = limits
        self.path = path
        self._parse = lru_cache(maxsize=512)(self._parse_uncached)

    def _parse_uncached(self, query: str) -> DocumentNode | Violation | None:
        try:
            return parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLSyntaxError as error:
            if "tokens" in error.message:
                return Violation("tokens", self.limits.max_tokens, self.limits.max_tokens + 1)
            return None  # a plain syntax error: the GraphQL endpoint reports it with its location

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive)
        if body is None:
            limit = self.limits.max_body_bytes
            await _too_complex(Violation("body size", limit, limit + 1))(scope, receive, send)
            return
        refusal = self._check(body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limits.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check(self, body: bytes) -> JSONResponse | None:
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _refusal(400, "BAD_USER_INPUT", "the request body is not valid JSON")
        operations = payload if isinstance(payload, list) else [payload]
        if len(operations) > self.limits.max_batch:
            return _too_complex(Violation("batch", self.limits.max_batch, len(operations)))
        for operation in operations:
            if not isinstance(operation, dict) or not isinstance(operation.get("query"), str):
                return _refusal(400, "BAD_USER_INPUT", "each operation needs a 'query' string")
            refusal = self._check_operation(operation)
            if refusal is not None:
                return refusal
        return None

    def _check_operation(self, operation: dict[str, Any]) -> JSONResponse | None:
        query: str = operation["query"]
        size = len(query.encode())
        if size > self.limits.max_document_bytes:
            return _too_complex(Violation("document size", self.limits.max_document_bytes, size))
        parsed = self._parse(query)
        if isinstance(parsed, Violation):
            return _too_complex(parsed)
        variables = operation.get("variables")
        if parsed is None:
            return None
        violation = check_document(
            parsed, variables if isinstance(variables, dict) else {}, self.limits
        )
        return None if violation is None else _too_complex(violation)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Hand the body on once, then wait on the real channel (for the client's disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed
