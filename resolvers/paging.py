"""Page-size limits and opaque cursors, shared by every connection."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.errors import InvalidValue
from domain.identifiers import validate_record_id
from resolvers.context import Limits
from resolvers.errors import bad_input


@dataclass(frozen=True, slots=True)
class PageResult:
    """A page ready for a Connection: rows, whether more exist, and how to count them all; or,
    compiled (schema/compiled.py), its `nodes` and `edges` as the JSON PostgreSQL wrote, by
    response key, and the id of its last row."""

    kind: str
    rows: Sequence[Any]
    has_next: bool
    count: Callable[[], Awaitable[int]]
    lists: Mapping[str, Any] = field(default_factory=dict)
    last_id: int | None = None

    @property
    def end(self) -> int | None:
        """The id of the page's last row, if it has any."""
        if self.lists:
            return self.last_id
        return self.rows[-1].id if self.rows else None


def page_size(first: int | None, limits: Limits) -> int:
    if first is None:
        return limits.default_page_size
    if first < 1 or first > limits.max_page_size:
        raise bad_input("first", f"must be between 1 and {limits.max_page_size}, got {first}")
    return first


def encode_cursor(kind: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(after: str | None, kind: str) -> int | None:
    """Cursors name their connection, so one from another list is refused rather than misread."""
    if after is None:
        return None
    try:
        prefix, _, key = base64.urlsafe_b64decode(after.encode()).decode().partition(":")
        if prefix != kind:
            raise ValueError(prefix)
        return validate_record_id(key)
    except (ValueError, InvalidValue, binascii.Error, UnicodeDecodeError):
        raise bad_input("after", "is not a cursor of this list") from None
