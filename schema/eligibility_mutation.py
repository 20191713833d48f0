"""What a BUMD does: ask for eligibility decisions, resolve reviews, record guarantees."""

from __future__ import annotations

from datetime import date
from typing import Any

import strawberry
from strawberry.types import Info

from auth.scopes import Scope
from db.models import ELIGIBILITY_DECISIONS
from db.queries.eligibility import StoredDecision
from domain.eligibility import MAX_CHECK_DATE_AGE_DAYS, LenderAttestation
from resolvers import eligibility, guarantees
from resolvers.context import Context
from schema.inputs import stored_value
from schema.permissions import requires
from schema.planned_write import WriteRoot
from schema.scalars import Rupiah
from schema.types.eligibility import (
    EligibilityDecision,
    Guarantee,
    GuaranteeStatus,
    ReviewVerdict,
)


@strawberry.input(
    description="What the lender attests from SLIK and its own analysis; null = not attested."
)
class LenderAttestationInput:
    max_collectibility: int | None = strawberry.field(
        default=None, description="Worst kolektibilitas of existing facilities, 1..5."
    )
    has_existing_credit: bool | None = strawberry.field(
        default=None,
        description=(
            "Whether SLIK shows the borrower any existing credit facility; false: none (a "
            "first-time borrower), so R06 passes, with maxCollectibility null and "
            "hasOtherProductiveCredit not true."
        ),
    )
    has_other_productive_credit: bool | None = None
    feasibility_approved: bool | None = None
    on_national_blacklist: bool | None = None
    has_npwp: bool | None = None


@strawberry.input(
    description="Which business (by NIB, by SKU, or a cooperative by legal-entity number: "
    "exactly one), which product, and the loan to be guaranteed."
)
class EligibilityRequest:
    nib: str | None = strawberry.field(default=None, description="An MSME, by NIB.")
    sku_number: str | None = strawberry.field(
        default=None, description="An MSME, by Surat Keterangan Usaha number, with skuIssuer."
    )
    sku_issuer: str | None = strawberry.field(
        default=None, description="The desa/kelurahan code that issued the SKU."
    )
    legal_entity_no: str | None = strawberry.field(
        default=None, description="A cooperative, by legal-entity number (in any spelling)."
    )
    product: str = strawberry.field(description='e.g. "JAMKRIDA_KTG_PRODUKTIF".')
    loan_amount: Rupiah
    tenor_months: int
    attestation: LenderAttestationInput
    check_date: date | None = strawberry.field(
        default=None,
        description=(
            "The date the decision is for: today (WIB, the default) or up to "
            f"{MAX_CHECK_DATE_AGE_DAYS} days before, but not before the day the product's rules "
            "in force today took effect."
        ),
    )


@strawberry.input(description="A guarantee issued on an eligible decision.")
class GuaranteeInput:
    decision_id: strawberry.ID
    bank: str
    starts_on: date
    ends_on: date
    coverage_amount: Rupiah | None = strawberry.field(
        default=None, description="Default: the decision's coverage; may be less, never more."
    )


def checked_request(request: EligibilityRequest) -> eligibility.Request:
    """The resolver's request; BAD_USER_INPUT listing all that is wrong with it, the
    attestation out of range with the rest (resolvers.eligibility's `checked_request`)."""
    return eligibility.checked_request(
        subject=eligibility.Subject(
            nib=request.nib,
            sku_number=request.sku_number,
            sku_issuer=request.sku_issuer,
            legal_entity_no=request.legal_entity_no,
        ),
        product=request.product,
        loan_amount=request.loan_amount,
        tenor_months=request.tenor_months,
        check_date=request.check_date,
        attestation=lambda: _attestation(request.attestation),
    )


def _attestation(given: LenderAttestationInput) -> LenderAttestation:
    """InvalidValue for a value out of range, or one contradicting another."""
    return LenderAttestation(
        max_collectibility=given.max_collectibility,
        has_existing_credit=given.has_existing_credit,
        has_other_productive_credit=given.has_other_productive_credit,
        feasibility_approved=given.feasibility_approved,
        on_national_blacklist=given.on_national_blacklist,
        has_npwp=given.has_npwp,
    )


async def check(context: Context, request: EligibilityRequest) -> StoredDecision:
    """`checkEligibility`, whether its plan (schema/plan.py) or the executor answers it: the
    decision stored, or the coded error that refuses the request."""
    return await eligibility.check(context, checked_request(request))


CHECK_ELIGIBILITY = WriteRoot(EligibilityDecision, ELIGIBILITY_DECISIONS, check)


@strawberry.type
class EligibilityMutation:
    @requires(
        Scope.ELIGIBILITY_CHECK,
        description="Decide whether a business in your jurisdiction may be guaranteed, and why.",
    )
    async def check_eligibility(
        self, info: Info[Context, Any], request: EligibilityRequest
    ) -> EligibilityDecision | None:
        return await CHECK_ELIGIBILITY.write(info.context, request=request)  # type: ignore[no-any-return]

    @requires(
        Scope.ELIGIBILITY_CHECK,
        description="Record a person's verdict on one of your NEEDS_REVIEW decisions.",
    )
    async def resolve_eligibility_review(
        self,
        info: Info[Context, Any],
        decision_id: strawberry.ID,
        verdict: ReviewVerdict,
        reviewer: str,
        reason: str,
    ) -> EligibilityDecision | None:
        return await eligibility.resolve_review(  # type: ignore[return-value]
            info, decision_id, verdict=str(stored_value(verdict)), reviewer=reviewer, reason=reason
        )

    @requires(
        Scope.GUARANTEES_WRITE,
        description="Record a guarantee issued on an eligible decision; checks the gearing limit.",
    )
    async def record_guarantee(
        self, info: Info[Context, Any], guarantee: GuaranteeInput
    ) -> Guarantee | None:
        return await guarantees.record(  # type: ignore[return-value]
            info,
            guarantees.NewGuarantee(
                decision_id=guarantee.decision_id,
                bank=guarantee.bank,
                starts_on=guarantee.starts_on,
                ends_on=guarantee.ends_on,
                coverage_amount=guarantee.coverage_amount,
            ),
        )

    @requires(
        Scope.GUARANTEES_WRITE,
        description="Move one of your guarantees to a new status (a default counts in decisions).",
    )
    async def change_guarantee_status(
        self,
        info: Info[Context, Any],
        guarantee_id: strawberry.ID,
        status: GuaranteeStatus,
        effective_on: date,
        note: str | None = None,
    ) -> Guarantee | None:
        return await guarantees.change_status(  # type: ignore[return-value]
            info,
            guarantee_id,
            status=str(stored_value(status)),
            effective_on=effective_on,
            note=note,
        )
