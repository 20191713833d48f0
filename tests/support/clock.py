"""The project clock (resolvers/calendar.py) held at a day a test chooses.

A check may be dated at most a fortnight back (domain.eligibility.MAX_CHECK_DATE_AGE_DAYS), and
not before the rules in force that day took effect, so a scenario dated in 2026 holds the clock
near its dates, and moves it on as the scenario does (a guarantee recorded once issued, its
default months later), whenever the suite runs.
"""

from __future__ import annotations

from datetime import date, datetime, time, tzinfo

import pytest

from resolvers import calendar


class Clock:
    """Stands in for `datetime` in resolvers/calendar.py, whose `today` asks it for `now`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, day: date) -> None:
        self.day = day
        monkeypatch.setattr(calendar, "datetime", self)

    def now(self, tz: tzinfo) -> datetime:
        return datetime.combine(self.day, time(12), tzinfo=tz)
