"""Guarantees a BUMD records on its own eligible decisions, and their status over time."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info

from db.driver import Row
from db.queries import Record
from db.queries import eligibility as decisions
from db.queries import guarantees as queries
from domain import guarantees as rules
from domain.eligibility import COOPERATIVE, MSME, EligibilityFacts
from domain.errors import InvalidValue
from domain.records import NOTE_MAX, Collector, validate_text
from resolvers.calendar import today
from resolvers.context import Context
from resolvers.eligibility import handed_out, parse_id, registry_facts, ruleset
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.writing import after_imports, invalid

_DECISION = "guarantee.decisionId"
"""The argument every refusal about the decision names, in `extensions.field` and its message."""


@dataclass(frozen=True, slots=True)
class NewGuarantee:
    decision_id: str
    bank: str
    starts_on: date
    ends_on: date
    coverage_amount: int | None


def _eligible(decision: Record) -> bool:
    """Eligible by the rules, or found eligible by the person who reviewed it."""
    return bool(
        decision.verdict == "ELIGIBLE"
        or (decision.verdict == "NEEDS_REVIEW" and decision.reviewed_verdict == "ELIGIBLE")
    )


def _not_eligible(decision: Record) -> str:
    """Why a decision is not guaranteed, in the verdict that stands: a reviewed decision's is
    its review's, so one reviewed NOT_ELIGIBLE is not reported as still awaiting review."""
    if decision.reviewed_verdict is not None:
        standing = f"was reviewed {decision.reviewed_verdict}"
    elif decision.verdict == "NEEDS_REVIEW":
        standing = "is NEEDS_REVIEW, not yet reviewed"
    else:
        standing = f"is {decision.verdict}"
    return f"the decision {standing}: only an eligible decision is guaranteed"


async def record(info: Info[Context, Any], new: NewGuarantee) -> Record:
    principal = info.context.principal
    decision_id = parse_id(new.decision_id, _DECISION)
    # Every rule the guarantee breaks, as a record write reports them (resolvers.writing.invalid).
    got = Collector()
    bank = got.take(lambda: validate_text(new.bank, field="bank"))
    async with info.context.transaction() as connection:
        decision = await decisions.decision(
            connection, decision_id, visible=info.context.policy.own_decisions
        )
        if decision is None:
            raise coded_error(
                ErrorCode.NOT_FOUND, f"{_DECISION}: no such decision", field=_DECISION
            )
        if not _eligible(decision):
            # The refusal names the verdict: the decision handed out again, audited as a read,
            # with the owner's finances its rules weigh.
            handed_out(info.context, "eligibility_decision", decision.subject_nik)
            raise bad_input(_DECISION, _not_eligible(decision))
        try:
            rules.check_decision_age(decision.check_date, today=today())
        except InvalidValue as error:
            # Past here every refusal tells of the decision (eligible, its check date, not yet
            # guaranteed, its tenor and cover): each is audited as handing it out.
            handed_out(info.context, "eligibility_decision", decision.subject_nik)
            raise bad_input(_DECISION, error.reason) from None
        if decision.msme_id is not None:
            # The guarantee's foreign key would otherwise wait on the records an import holds.
            await after_imports(connection)
        guarantor = await queries.lock_guarantor(connection, principal.client_id)
        if guarantor is None:
            handed_out(info.context, "eligibility_decision", decision.subject_nik)
            raise bad_input(
                "guarantee", "the guarantor's equity is not registered, so its limit is unknown"
            )
        if await queries.is_guaranteed(connection, decision_id):
            # The refusal tells that the guarantee exists: it is handed out, audited as a read.
            handed_out(info.context, "guarantee", decision.subject_nik)
            raise coded_error(
                ErrorCode.CONFLICT, f"{_DECISION}: already guaranteed", field=_DECISION
            )
        # 0 is a coverage given (and refused below), not an absent one.
        coverage = decision.coverage_amount if new.coverage_amount is None else new.coverage_amount
        got.take(
            lambda: rules.check_start(new.starts_on, decided_on=decision.check_date, today=today())
        )
        got.take(
            lambda: rules.check_period(
                new.starts_on, new.ends_on, tenor_months=decision.tenor_months
            )
        )
        got.take(lambda: rules.check_coverage(coverage, decided=decision.coverage_amount))
        if not got.errors:  # only a guarantee the rules above allow is weighed against the limit
            outstanding = await queries.outstanding_cover(connection, info.context.policy.own)
            got.take(
                lambda: rules.check_gearing(
                    outstanding=outstanding,
                    new_coverage=coverage,
                    equity=guarantor.equity,
                    gearing_limit=guarantor.gearing_limit,
                )
            )
        if got.errors:
            # Even a refusal for its bank alone tells the decision is eligible and unguaranteed.
            handed_out(info.context, "eligibility_decision", decision.subject_nik)
            raise invalid([InvalidValue(f"guarantee.{e.field}", e.reason) for e in got.errors])
        # The register last, once the request itself is one that would be recorded: a refusal
        # of the request tells nothing of the business as it stands today. Placed where the
        # register has the business today, as its rules are read today.
        registered = await _still_holds(connection, info.context, decision)
        recorded = await queries.insert_guarantee(
            connection,
            {
                "decision_id": decision_id,
                "guarantor_client_id": principal.client_id,
                "msme_id": decision.msme_id,
                "cooperative_id": decision.cooperative_id,
                "province_code": registered.province_code,
                "regency_code": registered.regency_code,
                "bank": bank,
                "amount": decision.loan_amount,
                "coverage_amount": coverage,
                "starts_on": new.starts_on,
                "ends_on": new.ends_on,
            },
            changed_by=principal.client_id,
        )
        handed_out(info.context, "guarantee", decision.subject_nik)
        return recorded


async def _still_holds(
    connection: AsyncConnection, context: Context, decision: Record
) -> Row | Record:
    """Refuses a decision the register has overturned since its check: the rules the recording
    applies again (domain.guarantees.RECHECKED_RULES), to the business as a check would read it
    today, under the decision's own rule set. A business no longer in the guarantor's
    jurisdiction is one a check would not find. Returns the business as the register has it
    today: a guarantee is placed in the regency the business has when it is recorded, not the
    one it had at the check, which the guarantee figures would otherwise count it in.

    A refusal tells the guarantor the business's state on the register today, as a fresh check
    would, and is audited as one: a decision handed out, about the person the decision is
    about (`handed_out`). Unaudited, a request refused after this re-reading let a guarantor
    follow a business on the register with no trace and nothing stored."""
    row = await decisions.facts_now(connection, decision, context.policy.own)
    if row.id is None:
        handed_out(context, "eligibility_decision", decision.subject_nik)
        raise bad_input(
            _DECISION,
            "the business is no longer in the register of the guarantor's jurisdiction: "
            "the decision no longer holds; check again",
        )
    kind = MSME if decision.msme_id is not None else COOPERATIVE
    rule_set = await ruleset(connection, decision.product, decision.ruleset_version)
    registered_now = replace(
        EligibilityFacts.from_dict(decision.facts), **registry_facts(kind, row)
    )
    failing = rules.failing_now(registered_now, rule_set)
    if failing:
        handed_out(context, "eligibility_decision", decision.subject_nik)
        named = ", ".join(f"{r.rule_id} {r.code} ({r.reason})" for r in failing)
        raise bad_input(
            _DECISION,
            f"on the register today the business fails {named}: "
            "the decision no longer holds; check again",
        )
    return row


async def change_status(
    info: Info[Context, Any],
    guarantee_id: str,
    *,
    status: str,
    effective_on: date,
    note: str | None,
) -> Record:
    principal = info.context.principal
    parsed = parse_id(guarantee_id, "guaranteeId")
    async with info.context.transaction() as connection:
        guarantee = await queries.guarantee_for_update(
            connection, parsed, info.context.policy.own_guarantees
        )
        if guarantee is None:
            raise coded_error(
                ErrorCode.NOT_FOUND, "guaranteeId: no such guarantee", field="guaranteeId"
            )
        latest = await queries.latest_effective_on(connection, guarantee.id)
        got = Collector()
        got.take(lambda: rules.check_transition(guarantee.status, status))
        got.take(
            lambda: rules.check_effective(
                effective_on,
                starts_on=guarantee.starts_on,
                latest=latest,
                today=today(),
            )
        )
        checked_note = got.optional(
            note, lambda given: validate_text(given, field="note", max_length=NOTE_MAX)
        )
        if got.errors:
            # Every refusal tells of the guarantee's status or dates, even one for its note
            # alone (the transition and date were allowed): the guarantee is handed out, and the
            # refusal audited as a read of it. A refused request otherwise let a guarantor poll
            # a guarantee's status with no trace.
            handed_out(info.context, "guarantee", guarantee.subject_nik)
            raise invalid(got.errors)
        changed = await queries.change_status(
            connection,
            guarantee,
            status=status,
            effective_on=effective_on,
            note=checked_note,
            changed_by=principal.client_id,
        )
        handed_out(info.context, "guarantee", guarantee.subject_nik)
        return changed


async def history(info: Info[Context, Any], guarantee: Record) -> list[Record]:
    async with info.context.reads.connect() as connection:
        return await queries.history(connection, [guarantee.id])
