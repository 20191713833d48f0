"""Dates as the API and the import files write them: YYYY-MM-DD, one rule for every reader."""

from __future__ import annotations

import re
from datetime import date

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(text: str) -> date:
    """The calendar day `text` writes as YYYY-MM-DD, or ValueError saying what is wrong.

    `date.fromisoformat` alone reads more on Python 3.11: "20210302" and ISO week dates
    ("2021W011"), which the contract does not promise, and which a reader of the file or the
    request would not take for the day stored. Surrounding blanks are the caller's to strip.
    """
    if not _ISO_DATE.fullmatch(text):
        raise ValueError('must be written YYYY-MM-DD, e.g. "2025-06-30"')
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"must be a real calendar date: {error}") from None
