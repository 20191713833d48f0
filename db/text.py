"""Text a text column can hold: one rule for every string from outside that may reach a query."""

from __future__ import annotations

import re

UNSTORABLE = "holds a NUL character or a lone surrogate, which no text field can store"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot store (a NUL) or UTF-8 cannot encode (a lone
    surrogate): refused up front, it cannot reach a query as an INTERNAL encoding error."""
    return _UNSTORABLE.search(text) is None
