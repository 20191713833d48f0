"""Guarantees a BUMD issued: how their status may move, and the guarantor's gearing limit.

POJK 2/POJK.05/2017 caps a guarantee company's productive guarantees at 20 times its equity
(shared/domain.md §4.1); the cap is checked when a guarantee is recorded, over what is still
outstanding, so guarantees paid off or settled by a default no longer count against it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from domain.eligibility import add_months
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


def check_start(starts_on: date, *, decided_on: date, today: date) -> None:
    """A guarantee rests on a decision about the loan: it cannot start before that check. It is
    recorded once issued, so it has started by the day it is recorded: like every other date a
    client reports (a check date, a report, a status change), it is not in the future."""
    if starts_on < decided_on:
        raise InvalidValue("startsOn", f"is before the decision's check date {decided_on}")
    if starts_on > today:
        raise InvalidValue("startsOn", "must not be in the future")


def check_period(starts_on: date, ends_on: date, *, tenor_months: int) -> None:
    """A guarantee covers the loan the decision was made on, so it ends within that loan's tenor
    (the decision's tenorMonths) from its start: no end in the year 9999."""
    if ends_on <= starts_on:
        raise InvalidValue("endsOn", "must be after startsOn")
    try:
        latest = add_months(starts_on, tenor_months)
    except ValueError:  # after 9999-12-31, so no date is later (a start refused on its own)
        return
    if ends_on > latest:
        raise InvalidValue(
            "endsOn", f"must be within the loan's tenor of {tenor_months} months: by {latest}"
        )


def check_effective(effective_on: date, *, starts_on: date, today: date) -> None:
    """A status change reports what happened (a claim, a repayment, a default): on or after the
    guarantee started, and not in the future."""
    if effective_on < starts_on:
        raise InvalidValue("effectiveOn", "must not be before the guarantee started")
    if effective_on > today:
        raise InvalidValue("effectiveOn", "must not be in the future")


def check_coverage(coverage: int, *, decided: int) -> None:
    """Cover may be less than the decision's (a partial guarantee), never more."""
    if coverage <= 0:
        raise InvalidValue("coverageAmount", "must be positive")
    if coverage > decided:
        raise InvalidValue("coverageAmount", f"exceeds the decision's coverage Rp{decided:,}")
