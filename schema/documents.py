"""Every GraphQL document a process sees is parsed once, whoever asks: the request guard checking
its limits, the HTTP edge asking whether it is a mutation, and the engine executing it all take
it from here, so a document costs one parse however many layers look at it."""

from __future__ import annotations

from functools import lru_cache

from graphql import DocumentNode, GraphQLSyntaxError, parse


@lru_cache(maxsize=1024)
def parse_document(query: str, max_tokens: int | None) -> DocumentNode | GraphQLSyntaxError:
    """The document, or the syntax error parsing it raised (a document over `max_tokens` is
    one); a cached document is shared, so nobody may change it."""
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLSyntaxError as error:
        return error
