"""Guarantees a BUMD issued: the decision they rest on, how their status may move, and the
guarantor's gearing limit.

POJK 2/POJK.05/2017 caps a guarantee company's productive guarantees at 20 times its equity
(docs/domain.md, Credit-guarantee eligibility); the cap is checked when a guarantee is
recorded, over what is still outstanding, so guarantees paid off or settled by a default no
longer count against it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from domain.eligibility import (
    MAX_CHECK_DATE_AGE_DAYS,
    EligibilityFacts,
    RuleResult,
    add_months,
    evaluate,
)
from domain.errors import InvalidValue
from domain.ruleset import Outcome, RuleSet

ACTIVE = "active"
CLAIMED = "claimed"
PAID_OFF = "paid_off"
DEFAULTED = "defaulted"
OUTSTANDING = (ACTIVE, CLAIMED)

# A claim may be withdrawn (the debtor caught up) or end in a default; both ends are final.
# The database's trigger allows these moves alone (migration 0039), whoever writes the history:
# a change here takes a migration, which tests/test_decision_and_guarantee_guards.py asks for.
TRANSITIONS: dict[str, frozenset[str]] = {
    ACTIVE: frozenset({CLAIMED, PAID_OFF, DEFAULTED}),
    CLAIMED: frozenset({ACTIVE, PAID_OFF, DEFAULTED}),
    PAID_OFF: frozenset(),
    DEFAULTED: frozenset(),
}


MAX_DECISION_AGE_DAYS = MAX_CHECK_DATE_AGE_DAYS
"""How old a decision a guarantee may rest on: its check date at most this many days before the
day the guarantee is recorded. As far back as a check may be dated, and for the same reason: a
decision is the lender's attestation (SLIK, its feasibility analysis) and the register as they
stood on one day, and a guarantee recorded months later on it would rest on facts that have
moved on, as a check dated months back would. A lender's application, checked a few days late
over a holiday, is guaranteed within the fortnight, or checked again."""

RECHECKED_RULES = ("R01", "R10", "R11", "R12", "R13")
"""The rules a guarantee's recording applies again, to the register as it is that day: since the
check the business may have closed (R01), left the guarantor's area (R10), a cooperative may
have been deactivated or dissolved (R11), the business taken up subsidised programme credit
(R12) or defaulted on a guarantee of the guarantor's (R13), each a state of the register that
ends its eligibility outright. The lender's facts are the lender's, attested once."""

RECHECKED_IN_PART = {"R11": frozenset({"not_active"})}
"""Rules of several checks applied again for some of their failures (`RuleResult.reason`): R11
for the cooperative's status alone. Its RAT and health are its standing as the check weighed
it on its check date; the status, like an MSME's closing (R01), ends its eligibility. R11
reports the status first (domain.eligibility), so an inactive cooperative is `not_active`
whatever its RAT."""


def check_decision_age(decided_on: date, *, today: date) -> None:
    """A guarantee rests on a decision no older than MAX_DECISION_AGE_DAYS."""
    oldest = today - timedelta(days=MAX_DECISION_AGE_DAYS)
    if decided_on < oldest:
        raise InvalidValue(
            "decisionId",
            f"the decision is of {decided_on}, more than {MAX_DECISION_AGE_DAYS} days ago "
            f"(a guarantee rests on one of {oldest} or later): check again",
        )


def failing_now(facts: EligibilityFacts, ruleset: RuleSet) -> tuple[RuleResult, ...]:
    """The RECHECKED_RULES failed (those of RECHECKED_IN_PART for its reasons alone) on `facts`,
    a decision's with the register's replaced by what it says today, under the decision's own
    rule set: by the check's own rules (domain.eligibility.evaluate), so a check and a
    guarantee's recording apply one rule."""
    results = evaluate(facts, ruleset).results
    return tuple(
        result
        for result in results
        if result.rule_id in RECHECKED_RULES
        and result.outcome is Outcome.FAIL
        and result.reason in RECHECKED_IN_PART.get(result.rule_id, {result.reason})
    )


def check_transition(current: str, new: str) -> None:
    if new not in TRANSITIONS:
        raise InvalidValue("status", f"unknown status {new!r}")
    if new not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none: it is final"
        article = "an" if current[0] in "aeiou" else "a"
        raise InvalidValue(
            "status", f"{article} {current} guarantee can become {allowed}; not {new}"
        )


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


def check_effective(effective_on: date, *, starts_on: date, latest: date, today: date) -> None:
    """A status change reports what happened (a claim, a repayment, a default): on or after the
    guarantee started, and not in the future. Nor before the `latest` change already recorded
    took effect: the history is read in order, so a claim of the 20th followed by a repayment
    of the 6th would have the guarantee repaid before it was claimed, and its status on a day
    be neither the one its history ends at nor any it had then."""
    if effective_on < starts_on:
        raise InvalidValue(
            "effectiveOn",
            f"must not be before the guarantee started on {starts_on}: {starts_on} or later",
        )
    if effective_on < latest:
        raise InvalidValue(
            "effectiveOn",
            f"must not be before the guarantee's latest status change, effective {latest}:"
            f" {latest} or later",
        )
    if effective_on > today:
        raise InvalidValue("effectiveOn", "must not be in the future")


def check_coverage(coverage: int, *, decided: int) -> None:
    """Cover may be less than the decision's (a partial guarantee), never more."""
    if coverage <= 0:
        raise InvalidValue("coverageAmount", "must be positive")
    if coverage > decided:
        raise InvalidValue("coverageAmount", f"exceeds the decision's coverage Rp{decided:,}")
