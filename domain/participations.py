"""A business's part in a programme: the closed vocabulary of its status.

The status is read by a rule: R12 counts a subsidised-credit programme against a guarantee only
while the business's participation in it is ACTIVE (db/queries/eligibility.py). As free text,
"Active", "aktif" or "activе" (its last letter Cyrillic) was a participation no rule counted,
written by whoever may write it and invisible to the guarantor whose check then passed. These
values are the only ones the API accepts, the demo data loads and the database stores (a CHECK
constraint, migration 0026).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TypedDict

from domain.errors import one_of


class ParticipationStatus(StrEnum):
    PROPOSED = "proposed"
    """Put forward for the programme (diusulkan)."""
    VERIFIED = "verified"
    """Checked by the programme's owner (terverifikasi), not yet taking part: set only by a
    client of the owning agency's kind and jurisdiction (resolvers/policy.py owns_programmes),
    which alone takes the mark back or changes the detail it vouches for while it stands, and
    alone puts a participation that was ever VERIFIED back to PROPOSED (after ACTIVE or an end
    too)."""
    ACTIVE = "active"
    """Taking part now (aktif): the one status R12 counts."""
    COMPLETED = "completed"
    """Took part to the end (selesai)."""
    WITHDRAWN = "withdrawn"
    """Left before the end (mundur, keluar)."""


class ParticipationPatch(TypedDict, total=False):
    """The fields of a participation an update sets, as stored: an absent key stays as it is,
    None clears it (the status is never None)."""

    status: ParticipationStatus
    detail: str | None
    started_on: date | None


TOOK_PART: frozenset[ParticipationStatus] = frozenset(
    {ParticipationStatus.ACTIVE, ParticipationStatus.COMPLETED}
)
"""The statuses of a business that takes or took part in a programme: what the `programme`
filter of MSMEs, cooperatives and their figures counts. One proposed or verified has not yet
begun (VERIFIED is a check, not yet taking part), one withdrawn left it: counted, they made a
programme's reach the number of businesses anyone put forward."""


def participation_status(value: str, *, field: str) -> ParticipationStatus:
    """A status as a file spells it: exactly a stored value, no other spelling or case."""
    return one_of(ParticipationStatus, value, field=field)
