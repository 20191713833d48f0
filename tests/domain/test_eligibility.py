"""Guarantee eligibility (docs/domain.md, Credit-guarantee eligibility): the worked scenarios,
each rule at each threshold's edge, missing data never passing, and decisions replayed across
rule-set versions.

The scenario file (sinergi/seed_data/eligibility-scenarios.csv) names the product "productive";
it is PT Jamkrida Kalteng's productive guarantee, whose product id here is
JAMKRIDA_KTG_PRODUKTIF. Engine tests move thresholds relative to the shipped rule
set, so editing a figure in the JSON does not break them; the scenarios pin the figures.
"""

from __future__ import annotations

import json
import re
import string
from dataclasses import fields, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import domain.eligibility
import domain.ruleset
from domain.eligibility import (
    Decision,
    EligibilityFacts,
    LenderAttestation,
    RuleResult,
    Verdict,
    add_months,
    evaluate,
    required_rat_book_year,
    validate_check_date,
)
from domain.errors import InvalidValue
from domain.identifiers import established_by
from domain.ruleset import (
    BUNDLED_RULESETS,
    PLACEHOLDERS,
    RECORD_PLACEHOLDERS,
    RULES,
    Message,
    Outcome,
    RuleSet,
    RuleSpec,
    load_rulesets,
    select_ruleset,
)

PRODUCT = "JAMKRIDA_KTG_PRODUKTIF"
SCENARIO_PRODUCTS = {"productive": PRODUCT}
CHECK = date(2026, 1, 15)
# The shipped rule set, plus an illustrative later version kept with the tests: it changes one
# threshold, to show that versions are chosen by date and replays keep their own version.
RULESETS = load_rulesets(BUNDLED_RULESETS) + load_rulesets(Path(__file__).parent / "rulesets")
V1 = select_ruleset(RULESETS, PRODUCT, CHECK)
V2 = select_ruleset(RULESETS, PRODUCT, date(2026, 7, 1))
# A KUR-style product: micro and small only, annual sales capped at Rp4,8 miliar (Permenko 1/2026).
KUR_LIKE = replace(V1, allowed_scales=("micro", "small"), max_annual_sales=4_800_000_000)
FULL_ATTESTATION = LenderAttestation(
    max_collectibility=1,
    has_other_productive_credit=False,
    feasibility_approved=True,
    on_national_blacklist=False,
    has_npwp=True,
)


def msme(**overrides: Any) -> EligibilityFacts:
    """A micro business that passes every rule of the shipped rule set; tests change one fact."""
    facts = EligibilityFacts(
        subject_kind="msme",
        check_date=CHECK,
        product=PRODUCT,
        loan_amount=50_000_000,
        tenor_months=24,
        has_defaulted_guarantee=False,
        province_code="62",
        has_nib=True,
        has_sku=False,
        business_start_date=date(2021, 3, 1),
        scale="micro",
        annual_sales=240_000_000,
        owner_nik_present=True,
        conflicting_programme_credit=False,
        attestation=FULL_ATTESTATION,
    )
    return replace(facts, **overrides)


def coop(**overrides: Any) -> EligibilityFacts:
    """An active producer cooperative that passes every rule of the shipped rule set."""
    facts = EligibilityFacts(
        subject_kind="cooperative",
        check_date=CHECK,
        product=PRODUCT,
        loan_amount=100_000_000,
        tenor_months=24,
        has_defaulted_guarantee=False,
        province_code="62",
        has_legal_entity_no=True,
        business_start_date=date(2019, 6, 1),
        coop_status="active",
        coop_last_rat_book_year=2024,
        coop_savings_and_loan=False,
        conflicting_programme_credit=False,
        attestation=FULL_ATTESTATION,
    )
    return replace(facts, **overrides)


def attested(**changes: Any) -> LenderAttestation:
    return replace(FULL_ATTESTATION, **changes)


def result(decision: Decision, rule_id: str) -> RuleResult:
    return next(r for r in decision.results if r.rule_id == rule_id)


def outcome(facts: EligibilityFacts, rule_id: str, ruleset: RuleSet = V1) -> Outcome:
    return result(evaluate(facts, ruleset), rule_id).outcome


def rules_with(decision: Decision, wanted: Outcome) -> set[str]:
    return {r.rule_id for r in decision.results if r.outcome is wanted}


# --- the worked scenarios of sinergi/seed_data/eligibility-scenarios.csv -------------------


def test_e01_m001_is_eligible_with_70_percent_cover() -> None:
    # M-001: NIB 9990000000001, Kota Palangka Raya (62.71), since 2021-03-01, 2025 sales
    # Rp240 juta (micro), owner NIK on file; its programmes (Serbu NIB, a grant) are no credit.
    facts = EligibilityFacts(
        subject_kind="msme",
        check_date=CHECK,
        product=SCENARIO_PRODUCTS["productive"],
        loan_amount=50_000_000,
        tenor_months=24,
        has_defaulted_guarantee=False,
        province_code="62",
        has_nib=True,
        business_start_date=date(2021, 3, 1),
        scale="micro",
        annual_sales=240_000_000,
        owner_nik_present=True,
        conflicting_programme_credit=False,
        attestation=LenderAttestation(
            max_collectibility=1,
            has_other_productive_credit=False,
            feasibility_approved=True,
            on_national_blacklist=False,
        ),
    )
    decision = evaluate(facts, V1)
    assert decision.decision is Verdict.ELIGIBLE
    assert decision.coverage_amount == 35_000_000
    assert decision.estimated_fee is None  # Jamkrida Kalteng's IJP rate is not public
    assert (decision.product, decision.ruleset_version) == (PRODUCT, "2026.1")
    assert result(decision, "R08").outcome is Outcome.PASS  # no NPWP needed at Rp50 juta


def test_e02_m005_fails_on_other_credit_and_collectibility() -> None:
    # M-005: NIB 9990000000005, 62.71, since 2016-05-20, 2025 sales Rp950 juta (micro).
    facts = EligibilityFacts(
        subject_kind="msme",
        check_date=CHECK,
        product=SCENARIO_PRODUCTS["productive"],
        loan_amount=75_000_000,
        tenor_months=36,
        has_defaulted_guarantee=False,
        province_code="62",
        has_nib=True,
        business_start_date=date(2016, 5, 20),
        scale="micro",
        annual_sales=950_000_000,
        owner_nik_present=True,
        conflicting_programme_credit=False,
        attestation=LenderAttestation(max_collectibility=3, has_other_productive_credit=True),
    )
    decision = evaluate(facts, V1)
    assert decision.decision is Verdict.NOT_ELIGIBLE
    assert rules_with(decision, Outcome.FAIL) == {"R05", "R06"}


def test_e04_k001_needs_review_only_while_feasibility_is_not_attested() -> None:
    # K-001: active producer co-op in Kab. Kotawaringin Barat (62.01), last RAT for book year
    # 2024 (held 2025-03-15); its MMM participation is production, not programme credit. Its
    # legal-entity number dates it to 2019 at the latest, so it has run six months (R03).
    facts = EligibilityFacts(
        subject_kind="cooperative",
        check_date=CHECK,
        product=SCENARIO_PRODUCTS["productive"],
        loan_amount=400_000_000,
        tenor_months=36,
        has_defaulted_guarantee=False,
        province_code="62",
        has_legal_entity_no=True,
        business_started_by=established_by("AHU-9990001.AH.01.26.TAHUN 2019", today=CHECK),
        coop_status="active",
        coop_last_rat_book_year=2024,
        coop_savings_and_loan=False,
        conflicting_programme_credit=False,
        attestation=attested(feasibility_approved=None),
    )
    decision = evaluate(facts, V1)
    assert decision.decision is Verdict.NEEDS_REVIEW
    assert rules_with(decision, Outcome.FAIL) == set()
    assert rules_with(decision, Outcome.UNKNOWN) == {"R04"}
    assert result(decision, "R03").outcome is Outcome.PASS
    assert result(decision, "R11").outcome is Outcome.PASS  # the 2025 RAT is not due yet


def test_e05_k002_is_not_eligible_only_because_it_is_inactive() -> None:
    # K-002: KSP in Kota Palangka Raya (62.71), inactive, last RAT for book year 2021.
    facts = EligibilityFacts(
        subject_kind="cooperative",
        check_date=CHECK,
        product=SCENARIO_PRODUCTS["productive"],
        loan_amount=100_000_000,
        tenor_months=24,
        has_defaulted_guarantee=False,
        province_code="62",
        has_legal_entity_no=True,
        business_started_by=established_by("AHU-9990002.AH.01.26.TAHUN 2020", today=CHECK),
        coop_status="inactive",
        coop_last_rat_book_year=2021,
        coop_savings_and_loan=True,
        ksp_health="cukup_sehat",
        conflicting_programme_credit=False,
        attestation=FULL_ATTESTATION,
    )
    decision = evaluate(facts, V1)
    assert decision.decision is Verdict.NOT_ELIGIBLE
    assert rules_with(decision, Outcome.FAIL) == {"R11"}
    assert rules_with(decision, Outcome.UNKNOWN) == set()
    assert result(decision, "R11").reason == "not_active"


def test_a_cooperative_dated_by_its_number_alone_passes_once_six_months_ran_else_is_unknown() -> (
    None
):
    """A number of 2025 says the cooperative was founded by 31 December 2025, not on that day:
    six months from the bound, it has certainly run six; before then it may have (founded in
    February 2025, say), so R03 asks for review rather than failing on a date never recorded."""
    by = established_by("AHU-7780030.AH.01.26.TAHUN 2025", today=date(2026, 1, 20))
    facts = coop(business_start_date=None, business_started_by=by, check_date=date(2026, 6, 29))
    assert result(evaluate(facts, V1), "R03").reason == "unknown"
    assert outcome(replace(facts, check_date=date(2026, 1, 15)), "R03") is Outcome.UNKNOWN
    assert outcome(replace(facts, check_date=date(2026, 6, 30)), "R03") is Outcome.PASS
    assert outcome(replace(facts, business_started_by=date(2019, 12, 31)), "R03") is Outcome.PASS


def test_a_recorded_deed_date_decides_r03_whatever_the_number_bounds() -> None:
    """Only a recorded start date fails R03: a deed of October 2025 is too young in January."""
    facts = coop(business_start_date=date(2025, 10, 1), business_started_by=date(2025, 12, 31))
    assert result(evaluate(facts, V1), "R03").reason == "too_young"
    assert outcome(replace(facts, business_started_by=None), "R03") is Outcome.FAIL
    assert outcome(replace(facts, business_start_date=date(2019, 6, 1)), "R03") is Outcome.PASS


# --- the decision as a whole -------------------------------------------------------------


@pytest.mark.parametrize("facts", [msme(), coop()], ids=["msme", "cooperative"])
def test_the_baselines_pass_every_rule_that_applies(facts: EligibilityFacts) -> None:
    decision = evaluate(facts, V1)
    assert decision.decision is Verdict.ELIGIBLE
    assert rules_with(decision, Outcome.FAIL) | rules_with(decision, Outcome.UNKNOWN) == set()


def test_results_list_every_rule_in_order_with_its_stable_code() -> None:
    decision = evaluate(msme(), V1)
    assert [(r.rule_id, r.code) for r in decision.results] == [
        ("R01", "SUBJECT_REGISTERED"),
        ("R02", "SCALE_ELIGIBLE"),
        ("R03", "BUSINESS_AGE_MIN_6M"),
        ("R04", "FEASIBILITY_ASSESSED"),
        ("R05", "NO_OTHER_PRODUCTIVE_CREDIT"),
        ("R06", "COLLECTIBILITY_OK"),
        ("R07", "NOT_BLACKLISTED"),
        ("R08", "DOCS_COMPLETE"),
        ("R09", "PLAFOND_IN_RANGE"),
        ("R10", "IN_GUARANTOR_AREA"),
        ("R11", "COOP_ACTIVE"),
        ("R12", "PROGRAM_CONFLICT"),
        ("R13", "NO_GUARANTEE_DEFAULT"),
    ]
    assert all(r.legal_basis and r.message_id and r.message_en for r in decision.results)


def test_a_fail_outweighs_an_unknown() -> None:
    facts = msme(attestation=attested(feasibility_approved=None, on_national_blacklist=True))
    assert evaluate(facts, V1).decision is Verdict.NOT_ELIGIBLE


def test_an_unknown_alone_sends_the_case_to_review() -> None:
    facts = msme(attestation=attested(feasibility_approved=None))
    assert evaluate(facts, V1).decision is Verdict.NEEDS_REVIEW


def test_a_defaulted_guarantee_makes_the_next_decision_not_eligible_and_says_why() -> None:
    decision = evaluate(msme(has_defaulted_guarantee=True), V1)
    assert decision.decision is Verdict.NOT_ELIGIBLE
    r13 = result(decision, "R13")
    assert (r13.outcome, r13.reason) == (Outcome.FAIL, "defaulted")
    assert "gagal bayar" in r13.message_id
    assert "default" in r13.message_en


def test_the_rules_in_force_word_r13_as_the_guarantors_own_guarantees() -> None:
    """R13 counts only the asking guarantor's own guarantees (db.queries.guarantees): from
    2026.4 its reasons say so, rather than vouch that no guarantor's is in default."""
    current = select_ruleset(RULESETS, PRODUCT, date(2026, 12, 5))
    assert current.version == "2026.4"
    for defaulted in (False, True):
        r13 = result(evaluate(msme(has_defaulted_guarantee=defaulted), current), "R13")
        assert "this guarantor issued" in r13.message_en
        assert "oleh penjamin ini" in r13.message_id


def test_a_rule_set_for_another_product_is_refused() -> None:
    with pytest.raises(InvalidValue) as error:
        evaluate(msme(product="KUR_KECIL"), V1)
    assert error.value.field == "product"


# --- missing data is UNKNOWN, never PASS -------------------------------------------------

# (fact, subject, other facts that make the fact matter, rule, rule set)
MISSING_CASES: list[tuple[str, str, dict[str, Any], str, RuleSet]] = [
    ("province_code", "msme", {}, "R10", V1),
    ("has_nib", "msme", {}, "R01", V1),
    ("has_sku", "msme", {"has_nib": False}, "R01", V1),
    ("has_legal_entity_no", "cooperative", {}, "R01", V1),
    ("business_start_date", "msme", {}, "R03", V1),
    # A cooperative without a recorded deed date, dated by its number alone, or not even so.
    ("business_started_by", "cooperative", {"business_start_date": None}, "R03", V1),
    ("scale", "msme", {}, "R02", V1),
    ("annual_sales", "msme", {}, "R02", KUR_LIKE),
    ("owner_nik_present", "msme", {}, "R08", V1),
    ("coop_status", "cooperative", {}, "R11", V1),
    ("coop_last_rat_book_year", "cooperative", {}, "R11", V1),
    ("coop_savings_and_loan", "cooperative", {}, "R11", V1),
    (
        "ksp_health",
        "cooperative",
        {"coop_savings_and_loan": True, "ksp_health_book_year": 2024},
        "R11",
        V1,
    ),
    (
        "ksp_health_book_year",
        "cooperative",
        {"coop_savings_and_loan": True, "ksp_health": "sehat"},
        "R11",
        V1,
    ),
    ("conflicting_programme_credit", "msme", {}, "R12", V1),
    ("attestation.max_collectibility", "msme", {}, "R06", V1),
    ("attestation.has_other_productive_credit", "msme", {}, "R05", V1),
    ("attestation.feasibility_approved", "msme", {}, "R04", V1),
    ("attestation.on_national_blacklist", "msme", {}, "R07", V1),
    ("attestation.has_npwp", "msme", {"loan_amount": 75_000_000}, "R08", V1),
]


def _without(fact: str, subject: str, context: dict[str, Any]) -> EligibilityFacts:
    build = msme if subject == "msme" else coop
    if fact.startswith("attestation."):
        return build(**context, attestation=attested(**{fact.split(".")[1]: None}))
    return build(**context, **{fact: None})


@pytest.mark.parametrize(
    ("fact", "subject", "context", "rule_id", "ruleset"),
    MISSING_CASES,
    ids=[case[0] for case in MISSING_CASES],
)
def test_a_missing_fact_is_unknown_never_pass(
    fact: str, subject: str, context: dict[str, Any], rule_id: str, ruleset: RuleSet
) -> None:
    decision = evaluate(_without(fact, subject, context), ruleset)
    assert result(decision, rule_id).outcome is Outcome.UNKNOWN
    assert decision.decision is Verdict.NEEDS_REVIEW


def test_every_optional_fact_has_a_missing_data_case() -> None:
    optional = {f.name for f in fields(EligibilityFacts) if "None" in str(f.type)}
    optional |= {f"attestation.{f.name}" for f in fields(LenderAttestation)}
    # Not attested, "no existing credit" leaves R06 to the collectibility, whose own case is
    # above; with neither, R06 is unknown (test_r06_with_neither_attested_is_unknown).
    optional.discard("attestation.has_existing_credit")
    assert optional == {case[0] for case in MISSING_CASES}


def test_nothing_known_passes_nothing_that_needs_a_fact() -> None:
    bare = EligibilityFacts(
        subject_kind="msme",
        check_date=CHECK,
        product=PRODUCT,
        loan_amount=75_000_000,
        tenor_months=12,
        has_defaulted_guarantee=False,
    )
    decision = evaluate(bare, V1)
    # Only the loan itself (R09) and Sinergi's own guarantee register (R13) are known.
    assert rules_with(decision, Outcome.PASS) == {"R09", "R13"}
    assert decision.decision is Verdict.NEEDS_REVIEW


# --- R01 SUBJECT_REGISTERED ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("has_nib", "has_sku", "expected"),
    [
        (True, False, Outcome.PASS),
        (False, True, Outcome.PASS),
        (True, None, Outcome.PASS),
        (False, False, Outcome.FAIL),
        (None, False, Outcome.UNKNOWN),
        (None, None, Outcome.UNKNOWN),
    ],
)
def test_r01_an_msme_needs_an_nib_or_an_sku(
    has_nib: bool | None, has_sku: bool | None, expected: Outcome
) -> None:
    assert outcome(msme(has_nib=has_nib, has_sku=has_sku), "R01") is expected


def test_r01_a_cooperative_without_a_legal_entity_number_fails() -> None:
    assert outcome(coop(has_legal_entity_no=False), "R01") is Outcome.FAIL


@pytest.mark.parametrize("ruleset", RULESETS, ids=lambda r: r.version)
def test_r01_an_msme_the_register_marks_inactive_fails_in_words_of_its_own(
    ruleset: RuleSet,
) -> None:
    """A closed business is known to be closed, not unknown: it fails rather than going to a
    reviewer. The versions published before the reason existed word it the catalogue's way."""
    decision = evaluate(msme(marked_inactive=True), ruleset)
    r01 = result(decision, "R01")
    assert (r01.outcome, r01.reason) == (Outcome.FAIL, "inactive")
    assert r01.message_en == "The business is marked inactive in the register."
    assert r01.message_id == "Usaha tercatat tidak aktif dalam register."
    assert decision.decision is Verdict.NOT_ELIGIBLE


def test_facts_stored_before_the_inactive_mark_replay_as_they_were_decided() -> None:
    """Those decisions took the business as active; read back, the facts still say so."""
    for facts in (msme(), msme(has_nib=None), coop()):
        data = json.loads(json.dumps(facts.to_dict()))
        del data["marked_inactive"]
        stored = EligibilityFacts.from_dict(data)
        assert stored == facts
        assert evaluate(stored, V1) == evaluate(facts, V1)


def test_a_rule_set_may_word_a_reason_added_after_it_but_no_other_is_optional() -> None:
    data = json.loads(json.dumps(V1.to_dict()))
    own = {"id": "Usaha sudah tutup.", "en": "The business has closed."}
    data["rules"]["R01"]["messages"]["inactive"] = own
    worded = RuleSet.from_dict(data)
    assert result(evaluate(msme(marked_inactive=True), worded), "R01").message_en == own["en"]

    del data["rules"]["R01"]["messages"]["unknown"]
    with pytest.raises(InvalidValue) as missing:
        RuleSet.from_dict(data)
    assert missing.value.field == "rules.R01.messages.unknown"


# --- R02 SCALE_ELIGIBLE --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        ("micro", Outcome.PASS),
        ("small", Outcome.PASS),
        ("medium", Outcome.PASS),
        ("large", Outcome.FAIL),
    ],
)
def test_r02_a_generic_productive_guarantee_takes_up_to_medium(
    scale: str, expected: Outcome
) -> None:
    assert outcome(msme(scale=scale), "R02") is expected


@pytest.mark.parametrize(
    ("scale", "annual_sales", "expected", "reason"),
    [
        ("small", 4_800_000_000, Outcome.PASS, "pass"),
        ("small", 4_800_000_001, Outcome.FAIL, "sales_above_max"),
        ("medium", 1_000_000_000, Outcome.FAIL, "scale_not_allowed"),
        (None, 4_800_000_001, Outcome.FAIL, "sales_above_max"),
    ],
)
def test_r02_a_kur_type_product_caps_annual_sales_at_4_8_miliar(
    scale: str | None, annual_sales: int, expected: Outcome, reason: str
) -> None:
    decision = evaluate(msme(scale=scale, annual_sales=annual_sales), KUR_LIKE)
    assert (result(decision, "R02").outcome, result(decision, "R02").reason) == (expected, reason)


def test_r02_does_not_apply_to_a_cooperative() -> None:
    # PP 7/2021 Pasal 35 classifies UMKM; a cooperative has no micro/small/medium scale.
    assert outcome(coop(scale=None), "R02") is Outcome.NOT_APPLICABLE


# --- R03 BUSINESS_AGE_MIN_6M ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("started", "checked", "expected"),
    [
        (date(2025, 7, 15), date(2026, 1, 15), Outcome.PASS),  # exactly six calendar months
        (date(2025, 7, 16), date(2026, 1, 15), Outcome.FAIL),  # one day short
        (date(2025, 8, 31), date(2026, 2, 28), Outcome.PASS),  # month end: 31 Aug -> 28 Feb
        (date(2025, 8, 31), date(2026, 2, 27), Outcome.FAIL),
        (date(2023, 8, 31), date(2024, 2, 29), Outcome.PASS),  # leap year: -> 29 Feb
        (date(2023, 8, 31), date(2024, 2, 28), Outcome.FAIL),
        (date(2026, 2, 1), date(2026, 1, 15), Outcome.FAIL),  # starts after the check
    ],
)
def test_r03_the_business_has_run_six_calendar_months(
    started: date, checked: date, expected: Outcome
) -> None:
    assert outcome(msme(business_start_date=started, check_date=checked), "R03") is expected


def test_r03_a_stored_rule_set_past_publishings_bound_still_reads_and_decides() -> None:
    """Publishing bounds the minimum age (ten years); a version stored before the bound, asking
    fifteen, is frozen like any other: it reads, and R03 decides under it."""
    document = V1.to_dict()
    document["min_business_age_months"] = 180
    stored = RuleSet.from_dict(json.loads(json.dumps(document)))
    assert outcome(msme(), "R03", stored) is Outcome.FAIL  # started 2021: under fifteen years
    assert outcome(msme(business_start_date=date(2010, 1, 1)), "R03", stored) is Outcome.PASS


def test_r03_a_minimum_past_the_calendar_is_unknown_not_a_crash() -> None:
    """A stored minimum of 100000 months carries the count past year 9999: R03 cannot decide."""
    stored = replace(V1, min_business_age_months=100_000)
    assert outcome(msme(), "R03", stored) is Outcome.UNKNOWN
    assert evaluate(msme(), stored).decision is Verdict.NEEDS_REVIEW


def test_r03_m004_at_under_six_months_fails() -> None:
    # M-004 in Samarinda started 2025-09-01 (demo-msmes.csv: "under 6 months old on 2026-01-15").
    assert outcome(msme(business_start_date=date(2025, 9, 1)), "R03") is Outcome.FAIL


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2025, 7, 15), 6, date(2026, 1, 15)),
        (date(2025, 8, 31), 6, date(2026, 2, 28)),
        (date(2025, 12, 31), 2, date(2026, 2, 28)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2026, 1, 15), -6, date(2025, 7, 15)),
        (date(2026, 1, 15), 0, date(2026, 1, 15)),
    ],
)
def test_add_months_counts_calendar_months_and_clamps_to_month_end(
    day: date, months: int, expected: date
) -> None:
    assert add_months(day, months) == expected


# --- R04, R05, R07, R12: yes/no facts ------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "attestation", "expected"),
    [
        ("R04", attested(feasibility_approved=True), Outcome.PASS),
        ("R04", attested(feasibility_approved=False), Outcome.FAIL),
        ("R05", attested(has_other_productive_credit=False), Outcome.PASS),
        ("R05", attested(has_other_productive_credit=True), Outcome.FAIL),
        ("R07", attested(on_national_blacklist=False), Outcome.PASS),
        ("R07", attested(on_national_blacklist=True), Outcome.FAIL),
    ],
)
def test_lender_attestations_pass_or_fail_as_attested(
    rule_id: str, attestation: LenderAttestation, expected: Outcome
) -> None:
    assert outcome(msme(attestation=attestation), rule_id) is expected


@pytest.mark.parametrize(("conflict", "expected"), [(False, Outcome.PASS), (True, Outcome.FAIL)])
def test_r12_another_subsidised_programme_credit_conflicts(
    conflict: bool, expected: Outcome
) -> None:
    assert outcome(msme(conflicting_programme_credit=conflict), "R12") is expected


# --- R06 COLLECTIBILITY_OK -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("collectibility", "expected", "reason"),
    [
        (1, Outcome.PASS, "pass"),
        (2, Outcome.UNKNOWN, "review"),
        (3, Outcome.FAIL, "non_performing"),
        (4, Outcome.FAIL, "non_performing"),
        (5, Outcome.FAIL, "non_performing"),
        (None, Outcome.UNKNOWN, "unknown"),
    ],
)
def test_r06_current_passes_special_mention_is_reviewed_npl_fails(
    collectibility: int | None, expected: Outcome, reason: str
) -> None:
    decision = evaluate(msme(attestation=attested(max_collectibility=collectibility)), V1)
    assert (result(decision, "R06").outcome, result(decision, "R06").reason) == (expected, reason)


@pytest.mark.parametrize("collectibility", [0, 6])
def test_r06_collectibility_outside_1_to_5_is_refused(collectibility: int) -> None:
    with pytest.raises(InvalidValue) as error:
        attested(max_collectibility=collectibility)
    assert error.value.field == "attestation.max_collectibility"


FIRST_TIME_BORROWER = attested(max_collectibility=None, has_existing_credit=False)


@pytest.mark.parametrize("ruleset", RULESETS, ids=lambda r: r.version)
def test_r06_a_borrower_slik_shows_no_facility_passes_and_is_eligible(ruleset: RuleSet) -> None:
    """A first-time borrower (SLIK returns no record) has no collectibility to attest; saying so
    passes R06 in every version, those published before the reason in the catalogue's words."""
    decision = evaluate(msme(attestation=FIRST_TIME_BORROWER), ruleset)
    r06 = result(decision, "R06")
    assert (r06.outcome, r06.reason) == (Outcome.PASS, "no_existing_credit")
    assert r06.message_en == (
        "The lender attests that SLIK shows no existing credit facility (a first-time borrower)."
    )
    assert "SLIK" in r06.message_id
    assert decision.decision is Verdict.ELIGIBLE


@pytest.mark.parametrize(
    ("has_existing_credit", "collectibility", "expected", "reason"),
    [
        (True, 1, Outcome.PASS, "pass"),
        (True, 3, Outcome.FAIL, "non_performing"),
        (True, None, Outcome.UNKNOWN, "unknown"),
        (None, None, Outcome.UNKNOWN, "unknown"),
    ],
)
def test_r06_with_existing_credit_or_neither_attested_rests_on_the_collectibility(
    has_existing_credit: bool | None, collectibility: int | None, expected: Outcome, reason: str
) -> None:
    attestation = attested(has_existing_credit=has_existing_credit, max_collectibility=None)
    attestation = replace(attestation, max_collectibility=collectibility)
    decision = evaluate(msme(attestation=attestation), V1)
    assert (result(decision, "R06").outcome, result(decision, "R06").reason) == (expected, reason)


def test_r06_with_neither_attested_is_unknown() -> None:
    decision = evaluate(msme(attestation=attested(max_collectibility=None)), V1)
    assert result(decision, "R06").outcome is Outcome.UNKNOWN
    assert decision.decision is Verdict.NEEDS_REVIEW


@pytest.mark.parametrize(
    "contradiction",
    [
        {"max_collectibility": 1},  # a collectibility is a facility's
        {"max_collectibility": None, "has_other_productive_credit": True},  # R05's is one too
    ],
    ids=["with a collectibility", "with other productive credit"],
)
def test_no_existing_credit_contradicted_by_another_attestation_is_refused(
    contradiction: dict[str, Any],
) -> None:
    with pytest.raises(InvalidValue) as error:
        attested(has_existing_credit=False, **contradiction)
    assert error.value.field == "attestation.has_existing_credit"


def test_no_existing_credit_with_no_other_credit_attested_or_not_stands() -> None:
    for other in (False, None):
        attestation = replace(FIRST_TIME_BORROWER, has_other_productive_credit=other)
        assert outcome(msme(attestation=attestation), "R06") is Outcome.PASS


def test_facts_stored_before_no_existing_credit_replay_as_they_were_decided() -> None:
    """Stored facts without the key read it as not attested: R06 weighs the collectibility."""
    for attestation in (FULL_ATTESTATION, attested(max_collectibility=2), LenderAttestation()):
        facts = msme(attestation=attestation)
        data = json.loads(json.dumps(facts.to_dict()))
        del data["attestation"]["has_existing_credit"]
        stored = EligibilityFacts.from_dict(data)
        assert stored == facts
        assert evaluate(stored, V1) == evaluate(facts, V1)


# --- R08 DOCS_COMPLETE ---------------------------------------------------------------------

NPWP_AT = V1.npwp_required_above  # Rp50 juta in the shipped rule set


@pytest.mark.parametrize(
    ("loan_amount", "has_npwp", "expected"),
    [
        (NPWP_AT, None, Outcome.PASS),
        (NPWP_AT, False, Outcome.PASS),
        (NPWP_AT + 1, None, Outcome.UNKNOWN),
        (NPWP_AT + 1, False, Outcome.FAIL),
        (NPWP_AT + 1, True, Outcome.PASS),
    ],
)
def test_r08_npwp_is_required_only_above_the_threshold(
    loan_amount: int, has_npwp: bool | None, expected: Outcome
) -> None:
    facts = msme(loan_amount=loan_amount, attestation=attested(has_npwp=has_npwp))
    assert outcome(facts, "R08") is expected


def test_r08_the_shipped_npwp_threshold_is_50_juta() -> None:
    assert NPWP_AT == 50_000_000


def test_r08_an_msme_without_the_owner_nik_fails_even_if_npwp_is_unknown() -> None:
    facts = msme(
        owner_nik_present=False, loan_amount=75_000_000, attestation=attested(has_npwp=None)
    )
    decision = evaluate(facts, V1)
    assert (result(decision, "R08").outcome, result(decision, "R08").reason) == (
        Outcome.FAIL,
        "nik_missing",
    )


def test_r08_a_cooperative_needs_no_owner_nik() -> None:
    assert outcome(coop(owner_nik_present=None, loan_amount=NPWP_AT), "R08") is Outcome.PASS


# --- R09 PLAFOND_IN_RANGE ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loan_amount", "expected", "reason"),
    [
        (V1.min_plafond - 1, Outcome.FAIL, "below_min"),
        (V1.min_plafond, Outcome.PASS, "pass"),
        (V1.max_plafond, Outcome.PASS, "pass"),
        (V1.max_plafond + 1, Outcome.FAIL, "above_max"),
    ],
)
def test_r09_both_plafond_bounds_are_inclusive(
    loan_amount: int, expected: Outcome, reason: str
) -> None:
    decision = evaluate(msme(loan_amount=loan_amount, attestation=FULL_ATTESTATION), V1)
    assert (result(decision, "R09").outcome, result(decision, "R09").reason) == (expected, reason)


# --- R10 IN_GUARANTOR_AREA -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("province", "expected"), [("62", Outcome.PASS), ("64", Outcome.FAIL), ("61", Outcome.FAIL)]
)
def test_r10_jamkrida_kalteng_guarantees_in_kalimantan_tengah_only(
    province: str, expected: Outcome
) -> None:
    assert outcome(msme(province_code=province), "R10") is expected


# --- R11 COOP_ACTIVE -----------------------------------------------------------------------


def test_r11_does_not_apply_to_an_msme() -> None:
    assert outcome(msme(), "R11") is Outcome.NOT_APPLICABLE


@pytest.mark.parametrize("status", ["inactive", "dissolved"])
def test_r11_an_inactive_or_dissolved_cooperative_fails(status: str) -> None:
    assert outcome(coop(coop_status=status), "R11") is Outcome.FAIL


@pytest.mark.parametrize(
    ("checked", "last_rat", "expected"),
    [
        (date(2026, 1, 15), 2024, Outcome.PASS),  # the 2025 RAT is due by 30 June 2026
        (date(2026, 1, 15), 2023, Outcome.FAIL),
        (date(2026, 6, 30), 2024, Outcome.PASS),  # last day of grace
        (date(2026, 7, 1), 2024, Outcome.FAIL),  # the 2025 RAT is now overdue
        (date(2026, 7, 1), 2025, Outcome.PASS),
    ],
)
def test_r11_the_rat_for_the_last_due_book_year_was_held(
    checked: date, last_rat: int, expected: Outcome
) -> None:
    facts = coop(check_date=checked, coop_last_rat_book_year=last_rat)
    assert outcome(facts, "R11") is expected


@pytest.mark.parametrize(("last_rat", "expected"), [(2024, Outcome.FAIL), (2025, Outcome.PASS)])
def test_r11_without_grace_the_rat_must_cover_last_year(last_rat: int, expected: Outcome) -> None:
    # rat_grace_months = 0 is the plain reading "last RAT book year >= check year - 1".
    strict = replace(V1, rat_grace_months=0)
    assert outcome(coop(coop_last_rat_book_year=last_rat), "R11", strict) is expected


@pytest.mark.parametrize(
    ("checked", "grace", "expected"),
    [
        (date(2026, 1, 15), 0, 2025),
        (date(2026, 1, 15), 6, 2024),
        (date(2026, 6, 30), 6, 2024),
        (date(2026, 7, 1), 6, 2025),
        (date(2026, 12, 31), 12, 2024),
    ],
)
def test_required_rat_book_year_allows_the_grace_after_the_year_closes(
    checked: date, grace: int, expected: int
) -> None:
    assert required_rat_book_year(checked, grace) == expected


@pytest.mark.parametrize(
    ("health", "expected"),
    [
        ("sehat", Outcome.PASS),
        ("cukup_sehat", Outcome.PASS),
        ("kurang_sehat", Outcome.PASS),
        ("tidak_sehat", Outcome.FAIL),
    ],
)
def test_r11_a_savings_and_loan_cooperative_rated_tidak_sehat_fails(
    health: str, expected: Outcome
) -> None:
    facts = coop(coop_savings_and_loan=True, ksp_health=health, ksp_health_book_year=2024)
    assert outcome(facts, "R11") is expected


@pytest.mark.parametrize("health", ["sehat", "tidak_sehat"])
def test_r11_a_rating_older_than_the_book_year_due_is_unknown(health: str) -> None:
    """On 15 January 2026 the RAT for book year 2024 is due (six months' grace): a rating of
    2023's accounts says how the savings and loans stood before them, so a person looks."""
    assert required_rat_book_year(CHECK, V1.rat_grace_months) == 2024
    stale = coop(coop_savings_and_loan=True, ksp_health=health, ksp_health_book_year=2023)
    r11 = result(evaluate(stale, V1), "R11")
    assert (r11.outcome, r11.reason) == (Outcome.UNKNOWN, "health_unknown")
    newer = outcome(replace(stale, ksp_health_book_year=2025), "R11")
    assert newer is (Outcome.PASS if health == "sehat" else Outcome.FAIL)


def test_r11_health_does_not_matter_for_a_cooperative_without_savings_and_loans() -> None:
    assert outcome(coop(coop_savings_and_loan=False, ksp_health=None), "R11") is Outcome.PASS


# --- amounts --------------------------------------------------------------------------------


def test_coverage_is_rounded_down_to_whole_rupiah() -> None:
    assert evaluate(msme(loan_amount=10_000_001), V1).coverage_amount == 7_000_000


@given(st.integers(min_value=V1.min_plafond, max_value=10**15))
def test_coverage_is_the_rate_of_the_plafond_never_more(loan_amount: int) -> None:
    coverage = evaluate(msme(loan_amount=loan_amount), V1).coverage_amount
    assert coverage == loan_amount * 7 // 10


@pytest.mark.parametrize(
    ("loan_amount", "tenor_months", "fee"),
    [
        (50_000_000, 24, 675_000),  # a year's IJP for longer tenors
        (50_000_000, 12, 675_000),
        (50_000_000, 6, 337_500),  # pro-rated under a year
        (12_000_000, 1, 13_500),  # exactly 1/12, no rounding drift
        (10_000_001, 7, 78_750),  # 10_000_001 x 0.0135 x 7/12 = 78_750.0078..., rounded down
    ],
)
def test_fee_estimate_is_ijp_for_at_most_one_year(
    loan_amount: int, tenor_months: int, fee: int
) -> None:
    priced = replace(V1, ijp_rate=Decimal("0.0135"))
    facts = msme(loan_amount=loan_amount, tenor_months=tenor_months)
    assert evaluate(facts, priced).estimated_fee == fee


# --- messages --------------------------------------------------------------------------------


def test_messages_fill_placeholders_in_each_languages_number_style() -> None:
    decision = evaluate(msme(loan_amount=V1.max_plafond + 1), V1)
    r09 = result(decision, "R09")
    assert r09.message_id == "Plafon Rp500.000.001 melebihi maksimum produk Rp500.000.000."
    assert (
        r09.message_en == "The loan of Rp500,000,001 exceeds the product maximum of Rp500,000,000."
    )


def test_the_engine_fills_every_placeholder_a_template_may_use() -> None:
    template = " ".join(f"{{{name}}}" for name in sorted(PLACEHOLDERS))
    messages = {**V1.rules["R13"].messages, "pass": Message(template, template)}
    r13 = replace(V1.rules["R13"], messages=MappingProxyType(messages))
    ruleset = replace(V1, rules=MappingProxyType({**V1.rules, "R13": r13}))
    message = result(evaluate(msme(), ruleset), "R13").message_en
    assert "{" not in message
    assert "Rp50,000,000" in message


# --- serialisation and replay ----------------------------------------------------------------


@pytest.mark.parametrize(
    "facts",
    [
        msme(),
        coop(),
        msme(attestation=LenderAttestation()),
        msme(attestation=attested(max_collectibility=None, has_existing_credit=False)),
    ],
)
def test_facts_survive_a_json_round_trip(facts: EligibilityFacts) -> None:
    assert EligibilityFacts.from_dict(json.loads(json.dumps(facts.to_dict()))) == facts


@pytest.mark.parametrize("ruleset", RULESETS, ids=lambda r: r.version)
def test_rule_sets_survive_a_json_round_trip(ruleset: RuleSet) -> None:
    assert RuleSet.from_dict(json.loads(json.dumps(ruleset.to_dict()))) == ruleset


def test_rule_set_files_read_back_to_exactly_their_own_json() -> None:
    for path in [*BUNDLED_RULESETS.glob("*.json"), *Path(__file__).parent.glob("rulesets/*.json")]:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert RuleSet.from_dict(data).to_dict() == data


def test_a_stored_decision_replays_the_same_after_the_rules_change() -> None:
    facts = msme(attestation=attested(has_npwp=None))  # Rp50 juta, NPWP not attested
    original = evaluate(facts, V1)
    stored = json.dumps({"facts": facts.to_dict(), "ruleset": V1.to_dict()})

    # Version 2026.2 lowers the NPWP threshold to Rp25 juta from 1 July 2026.
    assert V2.npwp_required_above < facts.loan_amount <= V1.npwp_required_above
    record = json.loads(stored)
    replayed_facts = EligibilityFacts.from_dict(record["facts"])
    replayed = evaluate(replayed_facts, RuleSet.from_dict(record["ruleset"]))
    assert replayed == original
    assert original.decision is Verdict.ELIGIBLE

    under_v2 = evaluate(replayed_facts, V2)
    assert under_v2.decision is Verdict.NEEDS_REVIEW
    assert result(under_v2, "R08").reason == "npwp_unknown"
    assert under_v2.ruleset_version == "2026.2"


@pytest.mark.parametrize(
    ("data_change", "field"),
    [
        ({"surprise": 1}, "surprise"),
        ({"loan_amount": "50000000"}, "loan_amount"),
        ({"loan_amount": True}, "loan_amount"),
        ({"has_defaulted_guarantee": 0}, "has_defaulted_guarantee"),
        ({"check_date": "15-01-2026"}, "check_date"),
        ({"check_date": "20260115"}, "check_date"),
        ({"business_start_date": 2021}, "business_start_date"),
        ({"business_started_by": "2025"}, "business_started_by"),
        ({"attestation": {"max_collectibility": "1"}}, "attestation.max_collectibility"),
        ({"attestation": {"kol": 1}}, "attestation.kol"),
        ({"attestation": None}, "attestation"),
        ({"scale": "mikro"}, "scale"),
        ({"province_code": "62.71"}, "province_code"),
        ({"subject_kind": "person"}, "subject_kind"),
        ({"tenor_months": 0}, "tenor_months"),
        ({"loan_amount": 0}, "loan_amount"),
        ({"coop_status": "aktif"}, "coop_status"),
        ({"ksp_health": "sehat sekali"}, "ksp_health"),
    ],
)
def test_bad_stored_facts_are_refused_naming_the_key(
    data_change: dict[str, Any], field: str
) -> None:
    data = {**msme().to_dict(), **data_change}
    with pytest.raises(InvalidValue) as error:
        EligibilityFacts.from_dict(data)
    assert error.value.field == field


def test_stored_facts_missing_a_key_are_refused_naming_it() -> None:
    data = msme().to_dict()
    del data["tenor_months"]
    with pytest.raises(InvalidValue) as error:
        EligibilityFacts.from_dict(data)
    assert error.value.field == "tenor_months"


def test_a_fact_absent_from_stored_facts_is_unknown() -> None:
    """Facts stored before a fact existed (one a later rule reads) still replay."""
    data = msme().to_dict()
    del data["scale"]
    del data["attestation"]["has_npwp"]
    facts = EligibilityFacts.from_dict(data)
    assert (facts.scale, facts.attestation.has_npwp) == (None, None)


def test_a_rule_added_to_the_catalogue_leaves_stored_rule_sets_and_decisions_replayable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """R14 joins the catalogue: stored versions still parse and apply what they applied; a new
    version that declares R14 applies it too."""
    facts = msme(loan_amount=75_000_000)
    original = evaluate(facts, V1)
    stored = json.loads(json.dumps({"facts": facts.to_dict(), "ruleset": V1.to_dict()}))

    grown = MappingProxyType(
        {
            **RULES,
            "R14": RuleSpec(
                "LOAN_IN_MILLIONS", MappingProxyType({"pass": Outcome.PASS, "odd": Outcome.FAIL})
            ),
        }
    )
    monkeypatch.setattr(domain.ruleset, "RULES", grown)
    monkeypatch.setattr(domain.eligibility, "RULES", grown)
    monkeypatch.setitem(
        domain.eligibility.CHECKS,
        "R14",
        lambda f, rs: "pass" if f.loan_amount % 1_000_000 == 0 else "odd",
    )

    replayed = evaluate(
        EligibilityFacts.from_dict(stored["facts"]), RuleSet.from_dict(stored["ruleset"])
    )
    assert replayed == original
    assert "R14" not in {r.rule_id for r in replayed.results}

    text = {"id": "Plafon dalam jutaan.", "en": "The loan is in millions."}
    r14 = {"code": "LOAN_IN_MILLIONS", "legal_basis": "-", "messages": {"pass": text, "odd": text}}
    newer = RuleSet.from_dict(
        {
            **stored["ruleset"],
            "version": "2027.1",
            "rules": {**stored["ruleset"]["rules"], "R14": r14},
        }
    )
    odd = evaluate(replace(facts, loan_amount=75_000_001), newer)
    assert result(odd, "R14").outcome is Outcome.FAIL
    assert odd.decision is Verdict.NOT_ELIGIBLE


def test_a_rule_set_may_declare_fewer_rules_and_applies_only_those() -> None:
    data = V1.to_dict()
    rules = data["rules"]
    assert isinstance(rules, dict)
    fewer = RuleSet.from_dict({**data, "rules": {"R09": rules["R09"], "R13": rules["R13"]}})
    decision = evaluate(msme(loan_amount=1), fewer)
    assert [r.rule_id for r in decision.results] == ["R09", "R13"]
    assert decision.decision is Verdict.NOT_ELIGIBLE


# --- choosing and loading rule sets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("on_date", "version"),
    [
        (date(2026, 1, 1), "2026.1"),
        (date(2026, 6, 30), "2026.1"),
        (date(2026, 7, 1), "2026.2"),
        (date(2026, 12, 3), "2026.2"),
        (date(2026, 12, 4), "2026.3"),
        (date(2026, 12, 5), "2026.4"),
        (date(2026, 12, 6), "2026.5"),
        (date(2030, 1, 1), "2026.5"),
    ],
)
def test_select_ruleset_picks_the_latest_version_in_force(on_date: date, version: str) -> None:
    assert select_ruleset(RULESETS, PRODUCT, on_date).version == version


@pytest.mark.parametrize(
    ("product", "on_date"), [(PRODUCT, date(2025, 12, 31)), ("KUR_KECIL", date(2026, 1, 15))]
)
def test_select_ruleset_refuses_when_nothing_is_in_force(product: str, on_date: date) -> None:
    with pytest.raises(InvalidValue) as error:
        select_ruleset(RULESETS, product, on_date)
    assert error.value.field == "product"


# --- dating a check ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "earliest", "bound"),
    [
        # 2026.5 took effect yesterday: the fortnight would reach back into 2026.4 and before.
        (date(2026, 12, 7), date(2026, 12, 6), "on or after the day the rules in force today"),
        (date(2026, 12, 19), date(2026, 12, 6), "on or after the day the rules in force today"),
        # From here on the fortnight is the nearer bound.
        (date(2026, 12, 20), date(2026, 12, 6), "at most 14 days before today"),
        (date(2027, 3, 1), date(2027, 2, 15), "at most 14 days before today"),
        # On the day new rules take effect a check can only be dated that day.
        (date(2026, 12, 4), date(2026, 12, 4), "on or after the day the rules in force today"),
        (date(2026, 12, 5), date(2026, 12, 5), "on or after the day the rules in force today"),
        (date(2026, 12, 6), date(2026, 12, 6), "on or after the day the rules in force today"),
    ],
)
def test_a_check_is_dated_back_neither_past_a_fortnight_nor_before_todays_rules(
    today: date, earliest: date, bound: str
) -> None:
    rules_from = select_ruleset(RULESETS, PRODUCT, today).effective_from
    for day in (today, earliest):
        assert validate_check_date(day, today=today, rules_from=rules_from) == day
    with pytest.raises(InvalidValue) as error:
        validate_check_date(earliest - timedelta(days=1), today=today, rules_from=rules_from)
    assert error.value.field == "check_date"
    assert error.value.reason.startswith(f"must be {bound}")
    assert error.value.reason.endswith(f": from {earliest}")


@given(
    today=st.dates(date(2026, 1, 1), date(2030, 12, 31)),
    rules_age=st.integers(0, 60),
    age=st.integers(-3, 90),
)
def test_a_check_date_is_allowed_exactly_from_the_later_bound_to_today(
    today: date, rules_age: int, age: int
) -> None:
    rules_from = today - timedelta(days=rules_age)
    check_date = today - timedelta(days=age)
    earliest = max(today - timedelta(days=14), rules_from)
    if earliest <= check_date <= today:
        assert validate_check_date(check_date, today=today, rules_from=rules_from) == check_date
        return
    with pytest.raises(InvalidValue) as error:
        validate_check_date(check_date, today=today, rules_from=rules_from)
    named = f": from {earliest}" if check_date < earliest else "must not be in the future"
    assert named in error.value.reason


def test_the_two_shipped_versions_differ_only_in_the_npwp_threshold() -> None:
    """And in the reasons' wording: 2026.2, published as a new version, names no value of the
    record (`withholding_refusal`)."""
    assert replace(
        V2, version=V1.version, effective_from=V1.effective_from, notes=V1.notes, rules=V1.rules
    ) == replace(V1, npwp_required_above=V2.npwp_required_above)
    assert _placeholders(V2) & RECORD_PLACEHOLDERS == set()


def _v1_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(V1.to_dict()))
    return data


def _drop(data: dict[str, Any], *path: str) -> None:
    for key in path[:-1]:
        data = data[key]
    del data[path[-1]]


def _put(data: dict[str, Any], value: object, *path: str) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


RULESET_BREAKAGES: list[tuple[str, tuple[str, ...], object, str]] = [
    # (what, path, new value or DROP, the key the error names)
    ("missing key", ("coverage_rate",), "DROP", "coverage_rate"),
    ("unknown key", ("coverage_percent",), 70, "coverage_percent"),
    ("float rate", ("coverage_rate",), 0.7, "coverage_rate"),
    ("rate above 1", ("coverage_rate",), "1.5", "coverage_rate"),
    ("not a number", ("ijp_rate",), "satu persen", "ijp_rate"),
    ("string amount", ("min_plafond",), "10000000", "min_plafond"),
    ("bool amount", ("max_plafond",), True, "max_plafond"),
    ("min above max", ("min_plafond",), 600_000_000, "min_plafond"),
    ("max past Rp1 quadrillion", ("max_plafond",), 10**15 + 1, "max_plafond"),
    ("sales past Rp1 quadrillion", ("max_annual_sales",), 10**15 + 1, "max_annual_sales"),
    ("negative sales", ("max_annual_sales",), -1, "max_annual_sales"),
    ("npwp past Rp1 quadrillion", ("npwp_required_above",), 10**15 + 1, "npwp_required_above"),
    ("age past ten years", ("min_business_age_months",), 121, "min_business_age_months"),
    ("age past the calendar", ("min_business_age_months",), 100_000, "min_business_age_months"),
    ("negative age", ("min_business_age_months",), -1, "min_business_age_months"),
    ("bad date", ("effective_from",), "2026-1-1", "effective_from"),
    ("unknown scale", ("allowed_scales",), ["micro", "huge"], "allowed_scales"),
    ("scale not a list", ("allowed_scales",), "micro", "allowed_scales"),
    ("bad province", ("guarantor_province",), "Kalteng", "guarantor_province"),
    ("review below pass", ("collectibility_review_max",), 0, "collectibility_review_max"),
    ("unknown health", ("disallowed_ksp_health",), ["buruk"], "disallowed_ksp_health"),
    ("no rules", ("rules",), {}, "rules"),
    ("unknown rule", ("rules", "R14"), {}, "rules.R14"),
    ("wrong code", ("rules", "R03", "code"), "BUSINESS_AGE", "rules.R03.code"),
    ("reason missing", ("rules", "R03", "messages", "too_young"), "DROP",
     "rules.R03.messages.too_young"),
    ("unknown reason", ("rules", "R03", "messages", "ancient"), {"id": "x", "en": "x"},
     "rules.R03.messages.ancient"),
    ("language missing", ("rules", "R01", "messages", "pass", "en"), "DROP",
     "rules.R01.messages.pass.en"),
    ("unknown placeholder", ("rules", "R01", "messages", "pass", "en"), "{nib}",
     "rules.R01.messages.pass.en"),
    ("formatted placeholder", ("rules", "R09", "messages", "pass", "id"), "{loan_amount:,}",
     "rules.R09.messages.pass.id"),
    ("broken template", ("rules", "R09", "messages", "pass", "id"), "Plafon {loan_amount",
     "rules.R09.messages.pass.id"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [case[1:] for case in RULESET_BREAKAGES],
    ids=[case[0] for case in RULESET_BREAKAGES],
)
def test_a_malformed_rule_set_file_is_refused_naming_the_key(
    tmp_path: Path, path: tuple[str, ...], value: object, field: str
) -> None:
    data = _v1_json()
    if value == "DROP":
        _drop(data, *path)
    else:
        _put(data, value, *path)
    (tmp_path / "broken@2026-01-01.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidValue) as error:
        load_rulesets(tmp_path)
    assert error.value.field == field
    assert "broken@2026-01-01.json" in error.value.reason


def test_a_rule_set_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"product": ', encoding="utf-8")
    with pytest.raises(InvalidValue, match=r"broken\.json"):
        load_rulesets(tmp_path)


def test_a_key_written_twice_is_refused(tmp_path: Path) -> None:
    text = json.dumps(V1.to_dict())[:-1] + ', "coverage_rate": "0.80"}'
    (tmp_path / "twice.json").write_text(text, encoding="utf-8")
    with pytest.raises(InvalidValue) as error:
        load_rulesets(tmp_path)
    assert error.value.field == "coverage_rate"


@pytest.mark.parametrize(
    ("change", "field"), [({"version": "2026.9"}, "effective_from"), ({}, "version")]
)
def test_two_versions_may_not_share_a_date_or_a_label(
    tmp_path: Path, change: dict[str, str], field: str
) -> None:
    published = V2.to_dict()  # 2026.1 would be refused under another label: it quotes the record
    (tmp_path / "a.json").write_text(json.dumps(published), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({**published, **change}), encoding="utf-8")
    with pytest.raises(InvalidValue) as error:
        load_rulesets(tmp_path)
    assert error.value.field == field


REASONS_ON = date(2026, 12, 4)


@pytest.mark.parametrize(
    ("facts", "quoted"),
    [
        (msme(check_date=REASONS_ON), {"2021-03-01", "240.000.000", "240,000,000"}),
        (msme(check_date=REASONS_ON, business_start_date=date(2026, 10, 7)), {"2026-10-07"}),
        # A RAT for the book year due: naming that year is the reason itself.
        (coop(check_date=REASONS_ON, coop_last_rat_book_year=2025), {"2019-06-01"}),
        (coop(check_date=REASONS_ON, coop_last_rat_book_year=2019), {"2019"}),
    ],
)
def test_the_reasons_in_force_name_no_value_of_the_record(
    facts: EligibilityFacts, quoted: set[str]
) -> None:
    """A guarantor is given the decision and its reasons, nothing else of the record: from
    version 2026.3 no reason quotes the business's start date, its annual sales (over a cap
    here) or the book year of its last RAT."""
    shipped = select_ruleset(load_rulesets(BUNDLED_RULESETS), PRODUCT, REASONS_ON)
    capped = replace(shipped, max_annual_sales=100_000_000)
    decision = evaluate(replace(facts, annual_sales=240_000_000), capped)
    assert decision.ruleset_version == "2026.3"
    reasons = [text for r in decision.results for text in (r.message_id, r.message_en)]
    assert [(value, text) for value in quoted for text in reasons if value in text] == []


WITHHELD_ON = domain.ruleset.RECORD_VALUES_WITHHELD_FROM


def _placeholders(ruleset: RuleSet) -> set[str]:
    return {
        name
        for text in ruleset.rules.values()
        for message in text.messages.values()
        for template in (message.id, message.en)
        for _, name, _, _ in string.Formatter().parse(template)
        if name is not None
    }


def test_from_2026_5_no_reason_template_names_a_value_of_the_record() -> None:
    """2026.4's reasons still named the scale (a band of a sole proprietor's sales), the
    province, a cooperative's status and its health; from 2026.5 a reason names only the rule
    set's thresholds and what the request states."""
    current = select_ruleset(RULESETS, PRODUCT, WITHHELD_ON)
    assert current.version == "2026.5"
    later = [r for r in RULESETS if r.effective_from >= WITHHELD_ON]
    assert [(r.version, _placeholders(r) & RECORD_PLACEHOLDERS) for r in later] == [
        (r.version, set()) for r in later
    ]


@pytest.mark.parametrize(
    ("facts", "value"),
    [
        (msme(scale="large"), "large"),
        (msme(scale="small"), "small"),
        (msme(province_code="61"), "61"),
        (coop(coop_status="dissolved"), "dissolved"),
        (coop(coop_status="inactive"), "inactive"),
        (
            coop(
                coop_savings_and_loan=True,
                coop_last_rat_book_year=2025,
                ksp_health="cukup_sehat",
                ksp_health_book_year=2025,
            ),
            "cukup_sehat",
        ),
    ],
)
def test_the_reasons_from_2026_5_do_not_quote_the_record(
    facts: EligibilityFacts, value: str
) -> None:
    current = select_ruleset(RULESETS, PRODUCT, WITHHELD_ON)
    narrow = replace(current, allowed_scales=("micro",))
    decision = evaluate(replace(facts, check_date=WITHHELD_ON), narrow)
    reasons = [text for r in decision.results for text in (r.message_id, r.message_en)]
    assert [text for text in reasons if value in text] == []


@pytest.mark.parametrize("placeholder", sorted(RECORD_PLACEHOLDERS))
def test_a_rule_set_from_2026_12_06_naming_a_value_of_the_record_is_refused(
    tmp_path: Path, placeholder: str
) -> None:
    """The loader keeps the next version from quoting the record again, whatever its effective
    date: one dated before that day is refused too, unless identical to a stored version (loading
    it adds nothing). One stored before the rule existed is still read (a check under it must not
    fail)."""
    current = select_ruleset(RULESETS, PRODUCT, WITHHELD_ON).to_dict()
    data = json.loads(json.dumps({**current, "version": "2027.1", "effective_from": "2027-01-01"}))
    _put(data, f"Skala {{{placeholder}}}.", "rules", "R02", "messages", "pass", "en")
    (tmp_path / "quoting.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InvalidValue) as error:
        load_rulesets(tmp_path)
    assert error.value.field == "rules.R02.messages.pass.en"
    assert "value of the record" in error.value.reason
    stored = RuleSet.from_dict(data)
    assert str(domain.ruleset.withholding_refusal(stored)) == str(error.value).replace(
        "quoting.json: ", ""
    )
    backdated = {**data, "effective_from": (WITHHELD_ON - timedelta(days=1)).isoformat()}
    (tmp_path / "quoting.json").write_text(json.dumps(backdated), encoding="utf-8")
    with pytest.raises(InvalidValue, match="value of the record"):
        load_rulesets(tmp_path)
    assert load_rulesets(tmp_path, [RuleSet.from_dict(backdated)])[0].version == "2027.1"


def test_only_the_bundled_versions_before_the_rule_quote_the_record_as_published(
    tmp_path: Path,
) -> None:
    """They are exempt by their content: a bundled version's label on other wording is not."""
    bundled_versions = [r.version for r in load_rulesets(BUNDLED_RULESETS)]
    assert bundled_versions == ["2026.1", "2026.3", "2026.4", "2026.5"]
    bundled = BUNDLED_RULESETS / "jamkrida-kalteng-productive@2026-12-05.json"
    edited = json.loads(bundled.read_text(encoding="utf-8"))
    edited["notes"] += " Edited."
    (tmp_path / "edited.json").write_text(json.dumps(edited), encoding="utf-8")
    with pytest.raises(
        InvalidValue, match=re.escape("edited.json: {scale} is a value of the record")
    ):
        load_rulesets(tmp_path)
