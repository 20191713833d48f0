"""Credit-guarantee eligibility decisions and guarantees, as a BUMD sees them.

A decision carries its reasons, amounts and rule-set version, and nothing else of the business:
no owner data, no figures beyond what a rule's message states.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, TypeVar, cast

import strawberry
from strawberry.types import Info

from resolvers import eligibility, guarantees
from resolvers.context import Context
from schema.scalars import Rupiah

E = TypeVar("E", bound=Enum)


@strawberry.enum(description="ELIGIBLE, NOT_ELIGIBLE (a rule failed) or NEEDS_REVIEW (unknowns).")
class Verdict(Enum):
    ELIGIBLE = "ELIGIBLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"
    NEEDS_REVIEW = "NEEDS_REVIEW"


@strawberry.enum(description="What a person reviewing a NEEDS_REVIEW decision concluded.")
class ReviewVerdict(Enum):
    ELIGIBLE = "ELIGIBLE"
    NOT_ELIGIBLE = "NOT_ELIGIBLE"


@strawberry.enum(description="PASS, FAIL, UNKNOWN (missing data: never a pass) or NOT_APPLICABLE.")
class RuleOutcome(Enum):
    PASS = "PASS"  # noqa: S105 (a rule outcome, not a password)
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    NOT_APPLICABLE = "NOT_APPLICABLE"


@strawberry.enum(description="A guarantee's status; paid off and defaulted are final.")
class GuaranteeStatus(Enum):
    ACTIVE = "active"
    CLAIMED = "claimed"
    PAID_OFF = "paid_off"
    DEFAULTED = "defaulted"


@strawberry.type(description="One rule's outcome, with a stable id and bilingual reasons.")
class RuleResult:
    rule_id: str = strawberry.field(description="R01..R13, stable across rule-set versions.")
    code: str
    outcome: RuleOutcome
    reason: str = strawberry.field(description="A stable machine-readable key for the message.")
    message_id: str = strawberry.field(description="The reason in Indonesian.")
    message_en: str = strawberry.field(description="The reason in English.")
    legal_basis: str


def _stored(kind: type[E], value: str) -> E:
    """Strawberry serialises these enums by their stored value; converting first keeps a value
    the enum does not know loud instead of silently passing it on."""
    return cast(E, kind(value).value)


def rule_results(decision: Any) -> list[RuleResult]:
    """A stored decision's rule outcomes, as `EligibilityDecision.results` answers them."""
    return [
        RuleResult(
            rule_id=row["rule_id"],
            code=row["code"],
            outcome=_stored(RuleOutcome, row["outcome"]),
            reason=row["reason"],
            message_id=row["message_id"],
            message_en=row["message_en"],
            legal_basis=row["legal_basis"],
        )
        for row in decision.results
    ]


def standing_verdict(decision: Any) -> Verdict:
    """The verdict that stands, as `EligibilityDecision.finalVerdict` answers it."""
    return _stored(Verdict, decision.reviewed_verdict or decision.verdict)


@strawberry.type(description="A person's resolution of a NEEDS_REVIEW decision.")
class Review:
    verdict: ReviewVerdict
    reviewer: str
    reason: str
    reviewed_by_client: str
    reviewed_at: datetime


@strawberry.type(description="The stored facts re-evaluated under the stored rule-set version.")
class Replay:
    verdict: Verdict
    same_as_stored: bool = strawberry.field(
        description="True when the replay reproduces the stored verdict and every rule outcome."
    )


@strawberry.type(description="An eligibility decision, stored with its facts for later review.")
class EligibilityDecision:
    id: strawberry.ID
    subject_key: str = strawberry.field(
        description="The NIB, SKU (issuing village code, a space, the number) or legal-entity "
        "number asked about."
    )
    product: str
    ruleset_version: str
    check_date: date
    loan_amount: Rupiah
    tenor_months: int
    verdict: Verdict = strawberry.field(description="What the rules decided.")
    coverage_amount: Rupiah = strawberry.field(description="Cover the product's rate gives.")
    estimated_fee: Rupiah | None = strawberry.field(
        description="IJP for the first year; null when the product publishes no rate."
    )
    decided_at: datetime

    @strawberry.field(description="Each rule's outcome, in rule order.")
    def results(self, root: strawberry.Parent[Any]) -> list[RuleResult]:
        return rule_results(root)

    @strawberry.field(description="The verdict that stands: a review's where one was made.")
    def final_verdict(self, root: strawberry.Parent[Any]) -> Verdict:
        return standing_verdict(root)

    @strawberry.field(description="A person's resolution, for decisions that needed review.")
    def review(self, root: strawberry.Parent[Any]) -> Review | None:
        if root.reviewed_verdict is None:
            return None
        return Review(
            verdict=_stored(ReviewVerdict, root.reviewed_verdict),
            reviewer=root.reviewer,
            reason=root.review_reason,
            reviewed_by_client=root.reviewed_by_client,
            reviewed_at=root.reviewed_at,
        )

    @strawberry.field(description="Re-derive the decision from what was stored, to explain it.")
    async def replay(self, root: strawberry.Parent[Any], info: Info[Context, Any]) -> Replay:
        replayed = await eligibility.replay(info, root)
        return Replay(
            verdict=_stored(Verdict, replayed.decision.value),
            same_as_stored=(
                replayed.decision.value == root.verdict
                and eligibility.results_of(replayed) == root.results
            ),
        )


@strawberry.type(description="A status a guarantee entered, with who recorded it and why.")
class GuaranteeStatusChange:
    from_status: GuaranteeStatus | None
    to_status: GuaranteeStatus
    effective_on: date
    note: str | None
    changed_by: str
    changed_at: datetime


@strawberry.type(description="A guarantee a BUMD issued on one of its eligible decisions.")
class Guarantee:
    id: strawberry.ID
    decision_id: strawberry.ID
    bank: str
    amount: Rupiah = strawberry.field(description="The guaranteed loan's plafond.")
    coverage_amount: Rupiah
    starts_on: date
    ends_on: date
    status: GuaranteeStatus

    @strawberry.field(description="Every status the guarantee has had, oldest first.")
    async def history(
        self, root: strawberry.Parent[Any], info: Info[Context, Any]
    ) -> list[GuaranteeStatusChange]:
        return await guarantees.history(info, root)  # type: ignore[return-value]
