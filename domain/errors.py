"""The one error the business rules raise for bad input, and the one way a closed vocabulary
reads its words (`one_of`)."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar


class InvalidValue(ValueError):
    """A value broke a domain rule; `field` names the input it came from so callers can say so."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


Word = TypeVar("Word", bound=StrEnum)


def one_of(vocabulary: type[Word], value: str, *, field: str) -> Word:
    """A word of a closed vocabulary as a file spells it: exactly a stored value, no other
    spelling or case, which a rule reading the word would silently not count."""
    try:
        return vocabulary(value)
    except ValueError:
        allowed = ", ".join(vocabulary)
        raise InvalidValue(field, f"must be one of {allowed}, not {value!r}") from None
