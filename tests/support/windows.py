"""Fixed windows, as the token endpoint's throttle counts in (db/queries/auth_failures.py):
windows of N seconds from the epoch, by PostgreSQL's clock, which no test holds still."""

from __future__ import annotations

import time

from sinergi.settings import MAX_SECONDS

LONGEST_WINDOW = MAX_SECONDS
"""The longest window a setting allows (a year): a test counting in it meets an edge once a
year, and `clear_of_an_edge` waits that one out."""


def clear_of_an_edge(window: int, margin: float) -> None:
    """Returns once at least `margin` seconds of the current window are left, waiting for the
    next window if fewer are: attempts straddling an edge count in two windows, and a limit a
    test expects after its Nth attempt does not come."""
    left = window - time.time() % window
    if left < margin:
        time.sleep(left + 0.5)
