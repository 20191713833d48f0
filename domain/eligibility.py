"""Credit-guarantee eligibility: a pure function from plain facts and a rule set to a decision.

A regional guarantor (e.g. PT Jamkrida Kalteng) asks whether a business may be guaranteed, and why
(docs/domain.md, Credit-guarantee eligibility). Sinergi knows the registry side; the lender attests
what only it can see in SLIK. Nothing here reads a clock, a database or a file: the check date is a
fact, so a decision replayed from its stored facts and rule-set version gives the same answer years
later. Missing data is UNKNOWN, never PASS: a gap sends the case to a human (UU PDP Pasal 34 asks
for a review path for automated decisions), it never approves it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Context, Decimal
from enum import StrEnum
from typing import Required, TypedDict

from domain.errors import InvalidValue
from domain.identifiers import is_province_code
from domain.ruleset import (
    KSP_HEALTH,
    RULES,
    SCALES,
    Outcome,
    RuleSet,
    StrictObject,
    as_plain_dict,
    require,
)

MSME = "msme"
COOPERATIVE = "cooperative"
COOP_STATUSES = ("active", "inactive", "dissolved")
MAX_TENOR_MONTHS = 360
"""Thirty years, past any productive loan a guarantee covers. The rule sets state no tenor limit
of their own; without one, a tenor past what a decision stores (a smallint) was INTERNAL, and
a guarantee's end (within the tenor) was unbounded."""
MAX_CHECK_DATE_AGE_DAYS = 14
"""How far back a check may be dated: a lender's application checked a few days late, over a
holiday; and never before the rules in force today took effect (`validate_check_date`). The facts
are today's, so a date further back dated a decision, and a guarantee resting on it, before the
facts it rests on, even before the record existed; and a date before a new version of the rules
chose the superseded one (2026.1, whose reasons quote the record's start date, sales and last RAT
year, which 2026.3 withholds)."""


class Verdict(StrEnum):
    ELIGIBLE = "ELIGIBLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NEEDS_REVIEW = "NEEDS_REVIEW"


@dataclass(frozen=True, kw_only=True)
class LenderAttestation:
    """What the lender attests from SLIK and its own analysis; Sinergi cannot query SLIK.

    `has_existing_credit` False: SLIK shows the borrower no credit facility at all (a first-time
    borrower, common for micro businesses), so there is no collectibility to attest and R06
    passes; None, not attested (facts stored before it existed), R06 then resting on
    `max_collectibility` alone. A borrower with no facility has neither a collectibility nor
    another productive credit, so either attested beside it is a contradiction, refused."""

    max_collectibility: int | None = None
    has_existing_credit: bool | None = None
    has_other_productive_credit: bool | None = None
    feasibility_approved: bool | None = None
    on_national_blacklist: bool | None = None
    has_npwp: bool | None = None

    def __post_init__(self) -> None:
        if self.max_collectibility is not None and not 1 <= self.max_collectibility <= 5:
            raise InvalidValue("attestation.max_collectibility", "must be 1..5 (POJK 40/2019)")
        if self.has_existing_credit is False:
            if self.max_collectibility is not None:
                raise InvalidValue(
                    "attestation.has_existing_credit",
                    "false (SLIK shows no credit facility) contradicts the collectibility"
                    " attested (maxCollectibility): a borrower with no facility has none;"
                    " give one or the other",
                )
            if self.has_other_productive_credit is True:
                raise InvalidValue(
                    "attestation.has_existing_credit",
                    "false (SLIK shows no credit facility) contradicts"
                    " hasOtherProductiveCredit true, which is a facility SLIK shows",
                )

    @classmethod
    def read(cls, obj: StrictObject) -> LenderAttestation:
        attestation = cls(
            max_collectibility=obj.fact("max_collectibility", int),
            has_existing_credit=obj.fact("has_existing_credit", bool),
            has_other_productive_credit=obj.fact("has_other_productive_credit", bool),
            feasibility_approved=obj.fact("feasibility_approved", bool),
            on_national_blacklist=obj.fact("on_national_blacklist", bool),
            has_npwp=obj.fact("has_npwp", bool),
        )
        obj.done()
        return attestation


class RegistryFacts(TypedDict, total=False):
    """The `EligibilityFacts` the register answers for a business (resolvers/eligibility.py
    `registry_facts`): the first three for either kind, the rest for an MSME or a cooperative.
    Typed, so a fact misnamed there is mypy's error rather than a fact left unknown."""

    province_code: Required[str | None]
    conflicting_programme_credit: Required[bool | None]
    has_defaulted_guarantee: Required[bool]
    has_nib: bool | None
    has_sku: bool | None
    has_legal_entity_no: bool | None
    business_start_date: date | None
    business_started_by: date | None
    scale: str | None
    annual_sales: int | None
    marked_inactive: bool
    owner_nik_present: bool | None
    coop_status: str | None
    coop_last_rat_book_year: int | None
    coop_savings_and_loan: bool | None
    ksp_health: str | None
    ksp_health_book_year: int | None


@dataclass(frozen=True, kw_only=True)
class EligibilityFacts:
    """Everything a decision depends on besides the rule set. None means "not known".

    `scale` is the PP 7/2021 scale domain.scale.classify computes from the figures (never a
    declared one); `province_code` is the 2-digit Kemendagri code of the business's location;
    `coop_savings_and_loan` says whether the co-op is a KSP or runs a savings-and-loan unit,
    whose health rating then matters: `ksp_health`, for the book year `ksp_health_book_year`.
    Facts stored before the register kept a rating have none, and replay with it unknown.

    `marked_inactive`: the register marks the MSME inactive (deactivateMsme), a closed business
    (a cooperative's status is R11's). Sinergi's own flag, like a defaulted guarantee, so never
    unknown; False in facts stored before it was gathered, since those decisions were made
    taking the business as active, and must replay as they were made.

    `has_defaulted_guarantee`: a guarantee the asking guarantor issued for the business has
    defaulted (R13, worded so from rule set 2026.4). Another guarantor's default is no fact of
    this decision: a rival could record one of Rp1 to shut the business out, and the business's
    history with other lenders is what the lender attests from SLIK. Facts stored before this
    counted every guarantor's defaults, and replay as they were made.

    `business_start_date` is the day the business started as the register records it (an MSME's
    `establishedOn`, a cooperative's deed); `business_started_by` the latest day it can have
    started, all that a cooperative's legal-entity number tells (the last day of its year). R03
    fails only on the recorded day: the bound passes it once the minimum age has run from it and
    otherwise leaves it unknown, for the business may have started months before. Facts stored
    before the bound was a fact of its own carried it as the start date, and replay as they were
    made.
    """

    subject_kind: str
    check_date: date
    product: str
    loan_amount: int
    tenor_months: int
    has_defaulted_guarantee: bool
    province_code: str | None = None
    has_nib: bool | None = None
    has_sku: bool | None = None
    has_legal_entity_no: bool | None = None
    business_start_date: date | None = None
    business_started_by: date | None = None
    scale: str | None = None
    annual_sales: int | None = None
    owner_nik_present: bool | None = None
    coop_status: str | None = None
    coop_last_rat_book_year: int | None = None
    coop_savings_and_loan: bool | None = None
    ksp_health: str | None = None
    ksp_health_book_year: int | None = None
    conflicting_programme_credit: bool | None = None
    marked_inactive: bool = False
    attestation: LenderAttestation = field(default_factory=LenderAttestation)

    def __post_init__(self) -> None:
        require(self.subject_kind in (MSME, COOPERATIVE), "subject_kind", "msme or cooperative")
        check_loan(self.product, self.loan_amount, self.tenor_months)
        province = self.province_code
        require(province is None or is_province_code(province), "province_code", "2 digits")
        require(self.scale in (None, *SCALES), "scale", f"one of {SCALES}")
        require((self.annual_sales or 0) >= 0, "annual_sales", "must not be negative")
        require(self.coop_status in (None, *COOP_STATUSES), "coop_status", f"{COOP_STATUSES}")
        require(self.ksp_health in (None, *KSP_HEALTH), "ksp_health", f"one of {KSP_HEALTH}")

    @classmethod
    def from_dict(cls, data: object) -> EligibilityFacts:
        """Reads the shape of `to_dict`; unknown keys are refused. A fact that may be unknown
        may also be absent: facts stored before it existed replay with it unknown."""
        obj = StrictObject(data)
        facts = cls(
            subject_kind=obj.get("subject_kind", str),
            check_date=obj.day("check_date"),
            product=obj.get("product", str),
            loan_amount=obj.get("loan_amount", int),
            tenor_months=obj.get("tenor_months", int),
            has_defaulted_guarantee=obj.get("has_defaulted_guarantee", bool),
            province_code=obj.fact("province_code", str),
            has_nib=obj.fact("has_nib", bool),
            has_sku=obj.fact("has_sku", bool),
            has_legal_entity_no=obj.fact("has_legal_entity_no", bool),
            business_start_date=obj.fact_day("business_start_date"),
            business_started_by=obj.fact_day("business_started_by"),
            scale=obj.fact("scale", str),
            annual_sales=obj.fact("annual_sales", int),
            owner_nik_present=obj.fact("owner_nik_present", bool),
            coop_status=obj.fact("coop_status", str),
            coop_last_rat_book_year=obj.fact("coop_last_rat_book_year", int),
            coop_savings_and_loan=obj.fact("coop_savings_and_loan", bool),
            ksp_health=obj.fact("ksp_health", str),
            ksp_health_book_year=obj.fact("ksp_health_book_year", int),
            conflicting_programme_credit=obj.fact("conflicting_programme_credit", bool),
            marked_inactive=obj.flag("marked_inactive"),
            attestation=LenderAttestation.read(obj.child("attestation")),
        )
        obj.done()
        return facts

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able values, so the facts can be stored with the decision and replayed."""
        return as_plain_dict(self)


def validate_check_date(check_date: date, *, today: date, rules_from: date) -> date:
    """A check is dated today or up to MAX_CHECK_DATE_AGE_DAYS before: never ahead of the facts
    it reads, and not so far behind them that it is a different decision. Nor before `rules_from`,
    the day the product's rules in force today took effect: a guarantor's board adopting new rules
    governs every check made from then on, and a check dated across that day would apply the
    rules they superseded. The refusal names the earliest date allowed."""
    require(check_date <= today, "check_date", "must not be in the future")
    earliest = today - timedelta(days=MAX_CHECK_DATE_AGE_DAYS)
    bound = f"at most {MAX_CHECK_DATE_AGE_DAYS} days before today"
    if rules_from > earliest:
        earliest, bound = rules_from, "on or after the day the rules in force today took effect"
    require(check_date >= earliest, "check_date", f"must be {bound}: from {earliest}")
    return check_date


def loan_problems(product: str, loan_amount: int, tenor_months: int) -> list[InvalidValue]:
    """What is wrong with the loan a check is asked about, all of it; a request is checked with
    this before the registry is read, so that a bad one is refused alike whether or not the
    business exists (and is in the asker's jurisdiction)."""
    problems = []
    if not product.strip():
        problems.append(InvalidValue("product", "must not be empty"))
    if loan_amount <= 0:
        problems.append(InvalidValue("loan_amount", "must be positive rupiah"))
    if tenor_months <= 0:
        problems.append(InvalidValue("tenor_months", "must be positive"))
    elif tenor_months > MAX_TENOR_MONTHS:
        problems.append(InvalidValue("tenor_months", f"must be at most {MAX_TENOR_MONTHS} months"))
    return problems


def check_loan(product: str, loan_amount: int, tenor_months: int) -> None:
    """The loan as a decision's facts hold it: the first of its `loan_problems`, if any."""
    problems = loan_problems(product, loan_amount, tenor_months)
    if problems:
        raise problems[0]


@dataclass(frozen=True)
class RuleResult:
    """One rule's outcome; `reason` is a stable machine-readable key for the message."""

    rule_id: str
    code: str
    outcome: Outcome
    reason: str
    message_id: str
    message_en: str
    legal_basis: str


@dataclass(frozen=True)
class Decision:
    """The answer and its reasons, with the amounts that would apply if the guarantee is given."""

    decision: Verdict
    results: tuple[RuleResult, ...]
    coverage_amount: int
    estimated_fee: int | None
    ruleset_version: str
    product: str


def add_months(day: date, months: int) -> date:
    """Calendar months, clamped to the month's end: 31 Aug 2025 + 6 months = 28 Feb 2026.

    Clamping (not rolling over into March) is how people count "six months running": a business
    started on the last day of August has run six months on the last day of February.
    """
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def required_rat_book_year(check_date: date, grace_months: int) -> int:
    """The latest book year whose RAT is already due on `check_date`.

    The RAT for book year Y falls due `grace_months` after Y closes (31 Dec). With a grace of 0
    this is simply check year - 1 (docs/domain.md, Cooperatives); with 6, a check in January
    2026 still accepts a RAT for 2024, because the 2025 meeting may lawfully be held until
    June 2026.
    """
    return add_months(check_date, -grace_months).year - 1


def _known(flag: bool | None, *, passes_when: bool, fail: str) -> str:
    if flag is None:
        return "unknown"
    return "pass" if flag is passes_when else fail


def _first_problem(rule_id: str, reasons: Iterable[str]) -> str:
    """A rule with several checks reports its first FAIL, else its first UNKNOWN, else pass."""
    outcomes = RULES[rule_id].reasons
    ordered = list(reasons)
    for wanted in (Outcome.FAIL, Outcome.UNKNOWN):
        for reason in ordered:
            if outcomes[reason] is wanted:
                return reason
    return "pass"


def _subject_registered(f: EligibilityFacts, rs: RuleSet) -> str:
    if f.subject_kind == COOPERATIVE:
        return _known(f.has_legal_entity_no, passes_when=True, fail="not_registered")
    if f.marked_inactive:
        return "inactive"
    if f.has_nib or f.has_sku:
        return "pass"
    return "unknown" if None in (f.has_nib, f.has_sku) else "not_registered"


def _scale_eligible(f: EligibilityFacts, rs: RuleSet) -> str:
    """PP 7/2021 scale classifies UMKM only; a cooperative has no scale to check."""
    if f.subject_kind == COOPERATIVE:
        return "cooperative"
    if f.scale is None:
        scale = "scale_unknown"
    else:
        scale = "pass" if f.scale in rs.allowed_scales else "scale_not_allowed"
    if rs.max_annual_sales is None:
        sales = "pass"
    elif f.annual_sales is None:
        sales = "sales_unknown"
    else:
        sales = "pass" if f.annual_sales <= rs.max_annual_sales else "sales_above_max"
    return _first_problem("R02", (scale, sales))


def _business_age(f: EligibilityFacts, rs: RuleSet) -> str:
    """From the recorded start date, else from the latest day the business can have started: old
    enough from that day, it is old enough; not, it may still be, and is unknown, not too young."""
    started = f.business_start_date if f.business_start_date is not None else f.business_started_by
    if started is None:
        return "unknown"
    try:
        old_enough = add_months(started, rs.min_business_age_months) <= f.check_date
    except (ValueError, OverflowError):  # past the calendar's last year: a stored rule set's
        return "unknown"  # minimum, from before publishing bounded it, cannot be decided
    if old_enough:
        return "pass"
    return "too_young" if f.business_start_date is not None else "unknown"


def _feasibility_assessed(f: EligibilityFacts, rs: RuleSet) -> str:
    return _known(f.attestation.feasibility_approved, passes_when=True, fail="not_feasible")


def _no_other_productive_credit(f: EligibilityFacts, rs: RuleSet) -> str:
    credit = f.attestation.has_other_productive_credit
    return _known(credit, passes_when=False, fail="has_other_credit")


def _collectibility_ok(f: EligibilityFacts, rs: RuleSet) -> str:
    """The worst collectibility of the borrower's existing facilities; none, by SLIK, passes
    (a first-time borrower has no collectibility to weigh, and no bad one)."""
    worst = f.attestation.max_collectibility
    if f.attestation.has_existing_credit is False:
        return "no_existing_credit"
    if worst is None:
        return "unknown"
    if worst <= rs.collectibility_pass_max:
        return "pass"
    return "review" if worst <= rs.collectibility_review_max else "non_performing"


def _not_blacklisted(f: EligibilityFacts, rs: RuleSet) -> str:
    return _known(f.attestation.on_national_blacklist, passes_when=False, fail="blacklisted")


def _docs_complete(f: EligibilityFacts, rs: RuleSet) -> str:
    """A cooperative's documents are its legal entity's (R01), so only MSMEs need an owner NIK."""
    nik = "pass"
    if f.subject_kind == MSME and f.owner_nik_present is not True:
        nik = "nik_unknown" if f.owner_nik_present is None else "nik_missing"
    npwp = "pass"
    if f.loan_amount > rs.npwp_required_above and f.attestation.has_npwp is not True:
        npwp = "npwp_unknown" if f.attestation.has_npwp is None else "npwp_missing"
    return _first_problem("R08", (nik, npwp))


def _plafond_in_range(f: EligibilityFacts, rs: RuleSet) -> str:
    if f.loan_amount < rs.min_plafond:
        return "below_min"
    return "above_max" if f.loan_amount > rs.max_plafond else "pass"


def _in_guarantor_area(f: EligibilityFacts, rs: RuleSet) -> str:
    if f.province_code is None:
        return "unknown"
    return "pass" if f.province_code == rs.guarantor_province else "outside_area"


def _coop_active(f: EligibilityFacts, rs: RuleSet) -> str:
    if f.subject_kind == MSME:
        return "msme"
    return _first_problem("R11", (_coop_status(f), _coop_rat(f, rs), _coop_health(f, rs)))


def _coop_status(f: EligibilityFacts) -> str:
    if f.coop_status is None:
        return "status_unknown"
    return "pass" if f.coop_status == "active" else "not_active"


def _coop_rat(f: EligibilityFacts, rs: RuleSet) -> str:
    if f.coop_last_rat_book_year is None:
        return "rat_unknown"
    due = required_rat_book_year(f.check_date, rs.rat_grace_months)
    return "pass" if f.coop_last_rat_book_year >= due else "rat_overdue"


def _coop_health(f: EligibilityFacts, rs: RuleSet) -> str:
    """Only savings and loans carry a health rating (sehat .. tidak sehat, docs/domain.md,
    Cooperatives). A rating assesses one book year's accounts; one older than the book year
    whose RAT is due (R11's own bar) says how the savings and loans stood before the accounts
    R11 asks for, healthy or not, so it is no rating of them now: unknown, and a person looks."""
    if f.coop_savings_and_loan is False:
        return "pass"
    if f.coop_savings_and_loan is None or f.ksp_health is None:
        return "health_unknown"
    due = required_rat_book_year(f.check_date, rs.rat_grace_months)
    if f.ksp_health_book_year is None or f.ksp_health_book_year < due:
        return "health_unknown"
    return "unhealthy" if f.ksp_health in rs.disallowed_ksp_health else "pass"


def _no_programme_conflict(f: EligibilityFacts, rs: RuleSet) -> str:
    return _known(f.conflicting_programme_credit, passes_when=False, fail="conflict")


def _no_guarantee_default(f: EligibilityFacts, rs: RuleSet) -> str:
    return "defaulted" if f.has_defaulted_guarantee else "pass"


CHECKS: dict[str, Callable[[EligibilityFacts, RuleSet], str]] = {
    "R01": _subject_registered,
    "R02": _scale_eligible,
    "R03": _business_age,
    "R04": _feasibility_assessed,
    "R05": _no_other_productive_credit,
    "R06": _collectibility_ok,
    "R07": _not_blacklisted,
    "R08": _docs_complete,
    "R09": _plafond_in_range,
    "R10": _in_guarantor_area,
    "R11": _coop_active,
    "R12": _no_programme_conflict,
    "R13": _no_guarantee_default,
}


def evaluate(facts: EligibilityFacts, ruleset: RuleSet) -> Decision:
    """Applies the rules `ruleset` declares to `facts`. Depends on nothing else, so a stored
    decision replays, under the rules it was made with even after the catalogue grows.

    The rule set is not checked against `facts.check_date`: choosing the version in force is
    `select_ruleset`'s job, and evaluating old facts under a newer version is how a guarantor
    sees what a rule change would do.
    """
    if facts.product != ruleset.product:
        raise InvalidValue("product", f"rule set is for {ruleset.product}, not {facts.product}")
    contexts = {lang: _message_context(facts, ruleset, lang) for lang in ("id", "en")}
    results = tuple(
        _result(rule_id, CHECKS[rule_id](facts, ruleset), ruleset, contexts)
        for rule_id in ruleset.rules
    )
    return Decision(
        decision=_verdict(result.outcome for result in results),
        results=results,
        coverage_amount=_floor(_EXACT.multiply(ruleset.coverage_rate, Decimal(facts.loan_amount))),
        estimated_fee=_estimated_fee(facts, ruleset),
        ruleset_version=ruleset.version,
        product=ruleset.product,
    )


def _verdict(outcomes: Iterable[Outcome]) -> Verdict:
    seen = set(outcomes)
    if Outcome.FAIL in seen:
        return Verdict.NOT_ELIGIBLE
    return Verdict.NEEDS_REVIEW if Outcome.UNKNOWN in seen else Verdict.ELIGIBLE


def _result(
    rule_id: str, reason: str, ruleset: RuleSet, contexts: dict[str, dict[str, str]]
) -> RuleResult:
    text = ruleset.rules[rule_id]
    # A reason added to the rule after the rule set was published has the catalogue's wording.
    message = text.messages.get(reason) or RULES[rule_id].later[reason]
    return RuleResult(
        rule_id=rule_id,
        code=text.code,
        outcome=RULES[rule_id].reasons[reason],
        reason=reason,
        message_id=message.id.format_map(contexts["id"]),
        message_en=message.en.format_map(contexts["en"]),
        legal_basis=text.legal_basis,
    )


# Money is exact: a context of our own, so a caller's decimal settings cannot change an amount.
_EXACT = Context(prec=50)


def _floor(amount: Decimal) -> int:
    """Whole rupiah, rounded down: a guarantee never covers or charges more than the rate says."""
    return int(amount.to_integral_value(rounding=ROUND_FLOOR))


def _estimated_fee(facts: EligibilityFacts, ruleset: RuleSet) -> int | None:
    """IJP for one year of cover, pro-rated when the tenor is shorter (docs/domain.md,
    Credit-guarantee eligibility).

    `ijp_rate x plafond x min(1, tenor/12)`: the rate is yearly and PMK 28/2022 pro-rates only
    tenors under a year, so a 36-month loan shows the first year's fee, not three years'.
    Unknown rate (Jamkrida Kalteng publishes none): no estimate rather than a made-up one.
    """
    if ruleset.ijp_rate is None:
        return None
    yearly = _EXACT.multiply(ruleset.ijp_rate, Decimal(facts.loan_amount))
    months = Decimal(min(facts.tenor_months, 12))
    return _floor(_EXACT.divide(_EXACT.multiply(yearly, months), Decimal(12)))


def _message_context(f: EligibilityFacts, rs: RuleSet, lang: str) -> dict[str, str]:
    """Every placeholder a template may use, rendered for one language (Rp1.000 vs Rp1,000)."""
    money = {
        "loan_amount": f.loan_amount,
        "min_plafond": rs.min_plafond,
        "max_plafond": rs.max_plafond,
        "npwp_required_above": rs.npwp_required_above,
        "annual_sales": f.annual_sales,
        "max_annual_sales": rs.max_annual_sales,
    }
    other: dict[str, object] = {
        "check_date": f.check_date,
        "scale": f.scale,
        "allowed_scales": ", ".join(rs.allowed_scales),
        "business_start_date": f.business_start_date,
        "min_business_age_months": rs.min_business_age_months,
        "max_collectibility": f.attestation.max_collectibility,
        "collectibility_pass_max": rs.collectibility_pass_max,
        "province_code": f.province_code,
        "guarantor_province": rs.guarantor_province,
        "coop_status": f.coop_status,
        "last_rat_book_year": f.coop_last_rat_book_year,
        "required_rat_book_year": required_rat_book_year(f.check_date, rs.rat_grace_months),
        "ksp_health": f.ksp_health,
        "disallowed_ksp_health": ", ".join(rs.disallowed_ksp_health),
    }
    rendered = {key: _rupiah(amount, lang) for key, amount in money.items()}
    rendered.update({key: "-" if value is None else str(value) for key, value in other.items()})
    return rendered


def _rupiah(amount: int | None, lang: str) -> str:
    if amount is None:
        return "-"
    grouped = f"{amount:,}"
    return "Rp" + (grouped.replace(",", ".") if lang == "id" else grouped)
