"""GraphQL over HTTP, the rules alone: which media type an answer goes out in, which status it
carries, and how a GET carries its parameters.

The specification is a draft; Sinergi follows it as graphql-http 1.23.1 audits it. Where the
draft has moved on since: a request without `Accept`, or reaching JSON only through wildcards,
gets `application/json` (the draft's pre-2025 default, which that audit checks and which curl
and older clients rely on). A client naming both types alike gets the specification's own,
`application/graphql-response+json`.

Pure functions of headers, URLs and answers, so any engine behind the edge can use them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from urllib.parse import parse_qsl

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationType,
    SelectionNode,
    SelectionSetNode,
    get_operation_ast,
    value_from_ast_untyped,
)
from strawberry.http import GraphQLHTTPResponse

from schema.documents import parse_document


class MediaType(StrEnum):
    GRAPHQL_RESPONSE = "application/graphql-response+json"
    JSON = "application/json"


@dataclass(frozen=True, slots=True)
class _Range:
    kind: str
    subtype: str
    q: float
    charset: str | None


def _ranges(accept: str) -> list[_Range]:
    """RFC 9110 §12.5.1 media ranges, lower-cased; a malformed weight counts as 0."""
    found = []
    for part in accept.split(","):
        media, *parameters = part.split(";")
        kind, _, subtype = media.strip().lower().partition("/")
        q, charset = 1.0, None
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            name, value = name.strip().lower(), value.strip().strip('"').lower()
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                q = q if 0.0 <= q <= 1.0 else 0.0
            elif name == "charset":
                charset = value
        if kind and subtype:
            found.append(_Range(kind, subtype, q, charset))
    return found


def _quality(ranges: Sequence[_Range], media_type: str) -> tuple[float, int]:
    """(weight, specificity) of the most specific range that matches `media_type`: specificity
    2 for the type itself, 1 for `type/*`, 0 for `*/*`, -1 for none. Answers are always UTF-8,
    so a range asking for another charset does not match."""
    kind, _, subtype = media_type.partition("/")
    best = (0.0, -1)
    for candidate in ranges:
        if candidate.charset not in (None, "utf-8", "utf8"):
            continue
        if (candidate.kind, candidate.subtype) == (kind, subtype):
            specificity = 2
        elif candidate.kind == kind and candidate.subtype == "*":
            specificity = 1
        elif (candidate.kind, candidate.subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (candidate.q, specificity)
    return best


@lru_cache(maxsize=256)
def negotiate(accept: str | None) -> MediaType | None:
    """The media type to answer in, or None when `accept` allows neither (406). Remembered per
    `Accept`: a client sends the same one with every request, and its parse cost a few
    microseconds of every request."""
    if accept is None or not accept.strip():
        return MediaType.JSON
    ranges = _ranges(accept)

    def preference(media_type: MediaType) -> tuple[float, int, bool]:
        q, specificity = _quality(ranges, media_type)
        named = specificity == 2
        # Named alike, the specification's own type; reached by wildcards only, the legacy one.
        return q, specificity, named == (media_type is MediaType.GRAPHQL_RESPONSE)

    best = max(MediaType, key=preference)
    return best if preference(best)[0] > 0 else None


def wants_html(accept: str | None) -> bool:
    """A browser: `text/html` named, and weighted above any JSON answer, or as highly and
    named before any JSON type (browsers send it first; a client naming JSON first wants
    JSON, whatever else it would take)."""
    if accept is None:
        return False
    ranges = _ranges(accept)
    q, specificity = _quality(ranges, "text/html")
    json_q = max(_quality(ranges, media_type)[0] for media_type in MediaType)
    if specificity != 2 or q <= 0 or q < json_q:
        return False
    named = [f"{candidate.kind}/{candidate.subtype}" for candidate in ranges]
    return q > json_q or not set(named[: named.index("text/html")]) & set(MediaType)


PARAMETERS = ("query", "operationName", "variables", "extensions")


@dataclass(frozen=True, slots=True)
class BadParameter:
    """A GET's URL does not carry the parameters as the specification encodes them."""

    parameter: str
    reason: str


def get_parameters(query_string: bytes) -> dict[str, object] | BadParameter:
    """A GET's request parameters, as the JSON body of a POST would carry them: `variables` and
    `extensions` are JSON texts, an empty `operationName` means none. Other parameters are
    ignored; one given twice is refused, since either reading would be a guess."""
    try:
        pairs = parse_qsl(query_string.decode(), keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        return BadParameter("query string", "not URL-encoded UTF-8")
    operation: dict[str, object] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            continue
        if name in operation:
            return BadParameter(name, "given more than once")
        if name in ("variables", "extensions") and value:
            try:
                operation[name] = json.loads(value)
            except (ValueError, RecursionError):  # RecursionError: absurdly nested arrays
                return BadParameter(name, "must be URL-encoded JSON")
        elif value or name == "query":
            operation[name] = value
    return operation


def operation_type(operation: Mapping[str, object], max_tokens: int) -> OperationType | None:
    """The type of the operation the request selects; None when it selects none (the engine
    reports the syntax error). `max_tokens`: the request guard's, whose parse this reuses."""
    query, name = operation.get("query"), operation.get("operationName")
    if not isinstance(query, str) or not isinstance(name, str | None):
        return None
    document = parse_document(query, max_tokens)
    if isinstance(document, GraphQLError):
        return None
    selected = get_operation_ast(document, name)
    return None if selected is None else selected.operation


def is_mutation(operation: Mapping[str, object], max_tokens: int) -> bool:
    """Whether the operation the request selects changes anything (not a query): what a GET
    must never run (405)."""
    selected = operation_type(operation, max_tokens)
    return selected is not None and selected is not OperationType.QUERY


def mutation_fields(operation: Mapping[str, object], max_tokens: int) -> int:
    """The root fields the mutation the request selects runs (0 for another operation, or one
    that selects none): each is a write of its own, which outlives the request, and counts
    against the rate limit as an operation does (sinergi.graphql_app). A field its fragments
    select again under the same name runs once, and counts once; one that `@skip` or `@include`
    turns off, given the operation's variables, does not run, and counts not at all."""
    query, name = operation.get("query"), operation.get("operationName")
    if not isinstance(query, str) or not isinstance(name, str | None):
        return 0
    document = parse_document(query, max_tokens)
    if isinstance(document, GraphQLError):
        return 0
    selected = get_operation_ast(document, name)
    if selected is None or selected.operation is not OperationType.MUTATION:
        return 0
    fragments = {
        node.name.value: node.selection_set
        for node in document.definitions
        if isinstance(node, FragmentDefinitionNode)
    }
    sent = operation.get("variables")
    variables = {
        definition.variable.name.value: value_from_ast_untyped(definition.default_value)
        for definition in selected.variable_definitions or ()
        if definition.default_value is not None
    } | (sent if isinstance(sent, dict) else {})
    names: set[str] = set()
    followed: set[str] = set()  # each fragment once: fragments spreading others twice stay linear
    pending: list[SelectionSetNode] = [selected.selection_set]
    while pending:
        for node in pending.pop().selections:
            if not _runs(node, variables):
                continue
            if isinstance(node, FieldNode) and not node.name.value.startswith("__"):
                names.add((node.alias or node.name).value)
            elif isinstance(node, InlineFragmentNode):
                pending.append(node.selection_set)
            elif isinstance(node, FragmentSpreadNode) and node.name.value not in followed:
                followed.add(node.name.value)
                if node.name.value in fragments:
                    pending.append(fragments[node.name.value])
    return len(names)


def _runs(node: SelectionNode, variables: dict[str, object]) -> bool:
    """Whether `node` runs with `variables`, as graphql-core decides: not if `@skip`'s `if` is
    true, nor if `@include`'s is false. A condition that is neither (a variable not sent, or not
    a Boolean) is refused as the request runs; counted meanwhile, it runs."""
    for directive in node.directives or ():
        condition = next(
            (
                value_from_ast_untyped(argument.value, variables)
                for argument in directive.arguments or ()
                if argument.name.value == "if"
            ),
            None,
        )
        if directive.name.value == GraphQLSkipDirective.name and condition is True:
            return False
        if directive.name.value == GraphQLIncludeDirective.name and condition is False:
            return False
    return True


def _codes(answer: GraphQLHTTPResponse) -> list[str]:
    return [
        str(error["extensions"].get("code"))
        for error in answer.get("errors") or []
        if isinstance(error, dict) and isinstance(error.get("extensions"), dict)
    ]


def settled(
    answer: GraphQLHTTPResponse, *, changed: bool = False, commit_lost: bool = False
) -> GraphQLHTTPResponse:
    """The answer as it is sent. A request error (nothing executed: a syntax, validation or
    variable error, none with a `path`) has no `data` entry, as the GraphQL specification asks;
    nor has an answer cut short by a database outage, whose partial data the client must not
    take for a result (it retries the whole request) — unless the operation `changed` something
    first: sent again whole, it would apply that change twice. Then its answer keeps what was
    done and the refused fields' errors (a mutation committed before another of its fields was
    refused); and where the outage withheld the whole answer after the change committed (its
    audit entry could not be written), the error says `applied`, as one over the response size
    bound does: read back what it changed rather than send it again. So does an outage's error
    below a root field of an operation that `changed` something: it came after that field's
    resolver returned, its write committed, and only the answer's read was refused. When a
    write's COMMIT lost its connection (`commit_lost`), whether it was stored is not known:
    every outage error of the operation says it may have been applied, its data kept."""
    errors = answer.get("errors") or []
    request_error = answer.get("data") is None and not any(
        isinstance(error, dict) and "path" in error for error in errors
    )
    unavailable = "SERVICE_UNAVAILABLE" in _codes(answer)
    if unavailable and commit_lost:
        return {**answer, "errors": [_applied(error, _MAYBE_APPLIED) for error in errors]}
    if errors and (request_error or unavailable) and not (unavailable and changed):
        without_data = answer.copy()
        without_data.pop("data", None)
        return without_data
    if unavailable and changed and request_error:
        return {**answer, "errors": [_applied(error, _APPLIED) for error in errors]}
    if unavailable and changed:
        return {**answer, "errors": [_answer_unread(error) for error in errors]}
    return answer


_APPLIED = "the change was applied: read it back, do not send it again"
_MAYBE_APPLIED = (
    "the change may have been applied (the connection was lost as it committed): read it back"
    " before sending any of it again"
)
_ANSWER_UNREAD = (
    "the change was applied; only its answer could not be read: read it back, do not send it again"
)


def _answer_unread(error: object) -> object:
    """An error of an operation that committed its change, its SERVICE_UNAVAILABLE ones below a
    root field saying the write was applied (`_failed_roots`: that field's resolver returned)."""
    if isinstance(error, dict) and len(error.get("path") or ()) > 1:
        return _applied(error, _ANSWER_UNREAD)
    return error


def _applied(error: object, told: str) -> object:
    """A SERVICE_UNAVAILABLE error of an operation that committed its change: its reason (the
    message's first clause), then `told`, in place of the advice to send it again."""
    if not isinstance(error, dict) or "SERVICE_UNAVAILABLE" not in _codes({"errors": [error]}):
        return error
    extensions = {**error["extensions"], "applied": True}
    reason = str(error.get("message")).partition("; ")[0]
    return {**error, "message": f"{reason}; {told}", "extensions": extensions}


def _failed_roots(answer: GraphQLHTTPResponse) -> list[object]:
    """The root fields of the answer whose own resolver failed: an error located at the root
    field itself. An error below one came after its resolver returned."""
    return [
        error
        for error in answer.get("errors") or []
        if isinstance(error, dict) and len(error.get("path") or ()) == 1
    ]


def withheld(answer: GraphQLHTTPResponse, error: object) -> GraphQLHTTPResponse:
    """A mutation's answer with its data withheld (over the response size bound): `error`,
    which says so, then the errors of the root fields whose write failed, so that the client
    learns which did not apply. The errors below a root field went with its data."""
    return {"data": None, "errors": [error, *_failed_roots(answer)]}


_STATUS_BY_CODE = {
    "UNAUTHENTICATED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
    "SERVICE_UNAVAILABLE": 503,
}


def status(
    answers: GraphQLHTTPResponse | list[GraphQLHTTPResponse],
    media_type: MediaType,
    *,
    changed: bool = False,
) -> int:
    """The status of settled answers. An outage is 503 (retry the request), unless the request
    `changed` something before it (then each answer says what was done and what was refused),
    and a limit QUERY_TOO_COMPLEX's 400, in either media type. Otherwise an answer with a `data`
    entry is 200; without one it is 200 as `application/json` (the specification's rule for
    legacy clients) and 4xx or 5xx as `application/graphql-response+json`, by its errors' codes.
    A batch answers 200 unless an outage cut it short: each of its answers carries its own
    errors."""
    batch = answers if isinstance(answers, list) else [answers]
    codes = {code for answer in batch for code in _codes(answer)}
    if "SERVICE_UNAVAILABLE" in codes and not changed:
        return 503
    if isinstance(answers, list) or "data" in answers:
        return 200
    if "QUERY_TOO_COMPLEX" in codes:
        return 400
    if media_type is MediaType.JSON:
        return 200
    return max((_STATUS_BY_CODE.get(code, 400) for code in codes), default=400)
