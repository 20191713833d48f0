"""Guarantees a BUMD issued: how their status may move, and the guarantor's gearing limit.

POJK 2/POJK.05/2017 caps a guarantee company's productive guarantees at 20 times its equity
(shared/domain.md §4.1); the cap is checked when a guarantee is recorded, over what is still
outstanding, so guarantees paid off or settled by a default no longer count against it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.errors import InvalidValue

ACTIVE = "active"
CLAIMED = "claimed"
PAID_OFF = "paid_off"
DEFAULTED = "defaulted"
OUTSTANDING = (ACTIVE, CLAIMED)

# A claim may be withdrawn (the debtor caught up) or end in a default; both ends are final.
TRANSITIONS: dict[str, frozenset[str]] = {
    ACTIVE: frozenset({CLAIMED, PAID_OFF, DEFAULTED}),
    CLAIMED: frozenset({ACTIVE, PAID_OFF, DEFAULTED}),
    PAID_OFF: frozenset(),
    DEFAULTED: frozenset(),
}


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS:
        raise InvalidValue("status", f"unknown status {new!r}")
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        raise InvalidValue("status", f"a {current} guarantee can become {allowed}; not {new}")


def check_gearing(
    *, outstanding: int, new_coverage: int, equity: int, gearing_limit: Decimal
) -> None:
    """Refuses a guarantee that would take outstanding cover above `gearing_limit` × equity."""
    ceiling = gearing_limit * equity
    if outstanding + new_coverage > ceiling:
        headroom = max(Decimal(0), ceiling - outstanding)
        raise InvalidValue(
            "coverageAmount",
            f"would exceed the guarantor limit of {gearing_limit} x equity "
            f"(Rp{int(ceiling):,}); headroom left Rp{int(headroom):,}",
        )


def check_start(starts_on: date, *, decided_on: date) -> None:
    """A guarantee rests on a decision about the loan: it cannot start before that check."""
    if starts_on < decided_on:
        raise InvalidValue("startsOn", f"is before the decision's check date {decided_on}")


def check_coverage(coverage: int, *, decided: int) -> None:
    """Cover may be less than the decision's (a partial guarantee), never more."""
    if coverage <= 0:
        raise InvalidValue("coverageAmount", "must be positive")
    if coverage > decided:
        raise InvalidValue("coverageAmount", f"exceeds the decision's coverage Rp{decided:,}")
