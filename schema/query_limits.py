"""The bounds on a GraphQL request (schema.limits checks a document against them), apart from
the checks: settings read them, and a command that serves no GraphQL does not load graphql-core
to read its settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5_000
    max_fields: int = 200
    """Fields a document selects, each fragment's once. Validation compares every two fields
    that share a response name in a selection, and then their selections, pair by pair
    (OverlappingFieldsCanBeMerged), so its work grows with the square of the fields: 1,240
    copies of `viewer { clientId }`, within the token limit, took a second of CPU to refuse;
    at this bound the worst shapes measured take some 30-60 ms. The documents integrations
    send select a few dozen."""
    max_cost: int = 50_000
    max_document_bytes: int = 100_000
    max_batch: int = 10
    max_body_bytes: int = 2_000_000
    max_response_bytes: int = 5_000_000
    default_page_size: int = 20
    max_page_size: int = 100
    """The largest page a `first` may ask for (SINERGI_MAX_PAGE_SIZE, as the resolvers hold it):
    a larger one reads nothing, its resolver refusing it, and is costed so."""

    @property
    def max_frame_chars(self) -> int:
        """The longest WebSocket frame an acknowledged connection may send, and the
        `ws_max_size` uvicorn is given to refuse longer ones with, unread, as their header
        announces them (in bytes: a frame has no more characters than bytes). A subscribe
        message is one operation, which a POST carries in a body of at most `max_body_bytes`."""
        return self.max_body_bytes
