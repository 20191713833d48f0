"""Guarantee status moves, the guarantor's gearing limit and the decision a guarantee rests on,
at their edges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from domain.errors import InvalidValue
from domain.guarantees import (
    MAX_DECISION_AGE_DAYS,
    TRANSITIONS,
    check_coverage,
    check_decision_age,
    check_effective,
    check_gearing,
    check_period,
    check_start,
    check_transition,
    failing_now,
)
from tests.domain.test_eligibility import V1, attested, coop, msme

EQUITY = 50_000_000_000  # Rp50 miliar: the POJK 2/2017 minimum for a provincial guarantor


def test_outstanding_cover_may_reach_exactly_20_times_equity() -> None:
    check_gearing(
        outstanding=20 * EQUITY - 1_000,
        new_coverage=1_000,
        equity=EQUITY,
        gearing_limit=Decimal(20),
    )


def test_one_rupiah_beyond_the_limit_is_refused_with_the_headroom() -> None:
    with pytest.raises(InvalidValue) as refused:
        check_gearing(
            outstanding=20 * EQUITY - 1_000,
            new_coverage=1_001,
            equity=EQUITY,
            gearing_limit=Decimal(20),
        )
    assert refused.value.field == "coverageAmount"
    assert "headroom left Rp1,000" in refused.value.reason


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("active", "claimed", True),
        ("active", "defaulted", True),
        ("claimed", "active", True),
        ("claimed", "paid_off", True),
        ("active", "active", False),
        ("defaulted", "active", False),
        ("paid_off", "claimed", False),
        ("active", "cancelled", False),
    ],
)
def test_status_moves(current: str, new: str, allowed: bool) -> None:
    if allowed:
        check_transition(current, new)
        return
    with pytest.raises(InvalidValue) as refused:
        check_transition(current, new)
    assert refused.value.field == "status"


def test_final_statuses_allow_no_move() -> None:
    assert TRANSITIONS["paid_off"] == TRANSITIONS["defaulted"] == frozenset()


def test_cover_may_be_partial_but_never_more_than_decided() -> None:
    check_coverage(35_000_000, decided=35_000_000)
    check_coverage(1, decided=35_000_000)
    for coverage in (0, 35_000_001):
        with pytest.raises(InvalidValue):
            check_coverage(coverage, decided=35_000_000)


def test_a_guarantee_ends_within_the_loans_tenor_counted_in_calendar_months() -> None:
    check_period(date(2025, 8, 31), date(2026, 2, 28), tenor_months=6)  # clamped, as R03 counts
    for ends_on in (date(2026, 3, 1), date(2025, 8, 31), date(9999, 12, 31)):
        with pytest.raises(InvalidValue) as refused:
            check_period(date(2025, 8, 31), ends_on, tenor_months=6)
        assert refused.value.field == "endsOn"


def test_a_start_near_the_end_of_the_calendar_leaves_the_period_to_its_own_rule() -> None:
    check_period(date(9999, 1, 1), date(9999, 12, 31), tenor_months=24)
    with pytest.raises(InvalidValue) as refused:
        check_start(date(9999, 1, 1), decided_on=date(2026, 1, 15), today=date(2026, 12, 4))
    assert (refused.value.field, refused.value.reason) == ("startsOn", "must not be in the future")


def test_a_status_change_takes_effect_between_the_start_and_today() -> None:
    today, started = date(2026, 12, 4), date(2026, 2, 1)
    check_effective(started, starts_on=started, latest=started, today=today)
    check_effective(today, starts_on=started, latest=started, today=today)
    for effective_on in (date(2026, 1, 31), date(2026, 12, 5)):
        with pytest.raises(InvalidValue) as refused:
            check_effective(effective_on, starts_on=started, latest=started, today=today)
        assert refused.value.field == "effectiveOn"


def test_a_status_change_takes_effect_no_earlier_than_the_latest_one() -> None:
    """Claimed effective the 20th, the guarantee is not active again, nor paid off, before it."""
    today, started, claimed = date(2026, 12, 25), date(2026, 12, 5), date(2026, 12, 20)
    check_effective(claimed, starts_on=started, latest=claimed, today=today)
    for effective_on in (date(2026, 12, 10), date(2026, 12, 6), date(2026, 12, 19)):
        with pytest.raises(InvalidValue) as refused:
            check_effective(effective_on, starts_on=started, latest=claimed, today=today)
        assert (refused.value.field, refused.value.reason) == (
            "effectiveOn",
            "must not be before the guarantee's latest status change, effective 2026-12-20:"
            " 2026-12-20 or later",
        )


def test_a_guarantee_rests_on_a_decision_no_older_than_a_check_may_be_dated() -> None:
    assert MAX_DECISION_AGE_DAYS == 14
    check_decision_age(date(2026, 12, 7), today=date(2026, 12, 21))
    with pytest.raises(InvalidValue) as refused:
        check_decision_age(date(2026, 12, 7), today=date(2026, 12, 22))
    assert refused.value.field == "decisionId"
    assert refused.value.reason.endswith(
        "(a guarantee rests on one of 2026-12-08 or later): check again"
    )


def test_a_recording_applies_again_only_the_rules_the_register_can_overturn() -> None:
    """R01, R10, R12 and R13 fail as the check fails them; the lender's facts (R06 here) and
    unknowns are the decision's, weighed once."""
    overturned = msme(
        marked_inactive=True,
        province_code="61",
        conflicting_programme_credit=True,
        has_defaulted_guarantee=True,
        attestation=attested(max_collectibility=5),
    )
    assert [(r.rule_id, r.reason) for r in failing_now(overturned, V1)] == [
        ("R01", "inactive"),
        ("R10", "outside_area"),
        ("R12", "conflict"),
        ("R13", "defaulted"),
    ]
    assert failing_now(msme(province_code=None), V1) == ()


@pytest.mark.parametrize("status", ["inactive", "dissolved"])
def test_a_recording_applies_again_a_cooperatives_status_but_not_its_rat_or_health(
    status: str,
) -> None:
    """A cooperative deactivated or dissolved since its check fails R11 as the check fails it,
    whatever its RAT; its RAT and health are its standing as the check weighed it."""
    assert [(r.rule_id, r.reason) for r in failing_now(coop(coop_status=status), V1)] == [
        ("R11", "not_active")
    ]
    stale = coop(coop_status=status, coop_last_rat_book_year=2019)
    assert [(r.rule_id, r.reason) for r in failing_now(stale, V1)] == [("R11", "not_active")]
    assert failing_now(coop(coop_last_rat_book_year=2019), V1) == ()
    assert failing_now(coop(coop_savings_and_loan=True, ksp_health="tidak_sehat"), V1) == ()
