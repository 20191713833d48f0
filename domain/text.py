"""What text a name may hold: one rule for every name a person reads back (a record's, an
organisation's, a client's as an SSO asserts it); and what text any stored value may hold
(`storable`)."""

from __future__ import annotations

import re
import unicodedata

INVISIBLE = "must not contain control or invisible characters"
UNSTORABLE = "holds a NUL character or a lone surrogate, which no text field can store"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> bool:
    """False for text PostgreSQL cannot store (a NUL) or UTF-8 cannot encode (a lone
    surrogate): refused up front, it cannot reach a query as an INTERNAL encoding error.
    Here, pure, so that the domain holds its own values to it (a rule set read from a file),
    and the one rule for every other string from outside that may reach a query."""
    return _UNSTORABLE.search(text) is None


_BLANKS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Characters Unicode counts as drawn (the Hangul fillers are letters, Lo, and the Braille
pattern blank U+2800 a symbol, So, so str.isprintable() passes them) that draw nothing: a name
of them looks blank, and one beside another name's letters is a second, invisible spelling of
it. Korean text written in precomposed syllables, as every keyboard types it, holds no filler,
and Braille text is not typed into a register's names."""


def printable(text: str) -> bool:
    """False for text holding a control character (a newline, a terminal escape, U+2028) or an
    invisible one (a zero-width space, a bidirectional override such as U+202E, a lone
    surrogate): each would forge, hide or garble the lines and pages that show the name.
    Spaces of every width (Unicode Zs, a no-break space pasted from a document) are allowed;
    the Hangul fillers and the Braille blank, which draw nothing, are not."""
    if not _BLANKS.isdisjoint(text):
        return False
    # str.isprintable() settles the common case in one C call; only text it refuses (tabs,
    # non-breaking or other Zs spaces, control characters) is looked at character by character.
    return text.isprintable() or all(
        ch.isprintable() or unicodedata.category(ch) == "Zs" for ch in text
    )


def legible(text: str) -> bool:
    """Whether the text holds a letter or a digit (Unicode L* or N*): a name of punctuation or
    of combining marks alone (U+0301 on nothing) shows as blank or as a smudge, naming no one."""
    return any(unicodedata.category(ch)[0] in "LN" for ch in text)
