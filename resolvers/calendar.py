"""The date a request is made on, in WIB.

Decisions and reports are dated in Western Indonesian Time, where the agencies this serves in
Kalimantan Barat and Tengah keep their books; one definition so that every "today" agrees.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

WIB = ZoneInfo("Asia/Jakarta")


def today() -> date:
    return datetime.now(WIB).date()
