"""Eligibility decisions: gather the registry facts, apply the rule set in force, keep the lot.

The rules themselves are domain/eligibility.py; this module only fetches, stores and replays. A
business outside the caller's jurisdiction is NOT_FOUND with the same message as an unknown key.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from graphql import GraphQLError
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types import Info
from strawberry.utils.str_converters import to_camel_case

from db.driver import Pooled, Row
from db.queries import Record
from db.queries import eligibility as queries
from db.writes import ImportInProgress
from domain.cooperative_records import runs_savings_and_loan
from domain.eligibility import (
    COOPERATIVE,
    MSME,
    Decision,
    EligibilityFacts,
    LenderAttestation,
    RegistryFacts,
    evaluate,
    loan_problems,
    validate_check_date,
)
from domain.errors import InvalidValue
from domain.identifiers import (
    established_by,
    legal_entity_no_key,
    parse_sku_key,
    sku_key,
    validate_nib,
    validate_sku_issuer,
    validate_sku_number,
)
from domain.personal import owner_finances
from domain.records import NOTE_MAX, Collector, validate_text
from domain.ruleset import RuleSet
from domain.scale import FIGURES, classify
from resolvers.calendar import today
from resolvers.context import Context
from resolvers.errors import ErrorCode, bad_input, coded_error
from resolvers.policy import AccessPolicy
from resolvers.writing import after_imports, import_in_progress, invalid

_PARSED: dict[tuple[str, str], RuleSet] = {}


@dataclass(frozen=True, slots=True)
class Request:
    """A check as it may be asked: `kind` MSME or COOPERATIVE, `key` its NIB, SKU (`sku_key`)
    or legal-entity number, well formed (`checked_request`)."""

    kind: str
    key: str
    product: str
    loan_amount: int
    tenor_months: int
    check_date: date | None
    attestation: LenderAttestation


async def ruleset(connection: Pooled | AsyncConnection, product: str, version: str) -> RuleSet:
    """Stored versions never change (db.queries.eligibility.sync_rulesets), so each is read and
    parsed once per process."""
    key = (product, version)
    if key not in _PARSED:
        document = await queries.ruleset_version(connection, product, version)
        _PARSED[key] = RuleSet.from_dict(document)
    return _PARSED[key]


def _in_request(error: InvalidValue) -> InvalidValue:
    """The error naming the request's field as the contract spells it: the domain names the
    facts in snake_case (`attestation.max_collectibility`), the request in camelCase."""
    field = ".".join(to_camel_case(part) for part in error.field.split("."))
    return InvalidValue(f"request.{field}", error.reason)


def request_error(error: InvalidValue) -> GraphQLError:
    """BAD_USER_INPUT naming the request's field (`_in_request`)."""
    named = _in_request(error)
    return bad_input(named.field, named.reason)


@dataclass(frozen=True, slots=True)
class Subject:
    """The business a check names, as the request gives it: exactly one of these ways."""

    nib: str | None = None
    sku_number: str | None = None
    sku_issuer: str | None = None
    legal_entity_no: str | None = None


def _subject_key(subject: Subject) -> tuple[str, str]:
    by_sku = subject.sku_number is not None or subject.sku_issuer is not None
    ways = (subject.nib is not None, by_sku, subject.legal_entity_no is not None)
    if sum(ways) != 1:
        raise InvalidValue(
            "nib",
            "give one of nib or skuNumber with skuIssuer (an MSME), or legalEntityNo "
            "(a cooperative)",
        )
    if subject.nib is not None:
        return MSME, validate_nib(subject.nib, field="nib")
    if by_sku:
        if subject.sku_number is None:
            raise InvalidValue("sku_number", "is required with skuIssuer")
        if subject.sku_issuer is None:
            raise InvalidValue("sku_issuer", "is required with skuNumber")
        issuer = validate_sku_issuer(subject.sku_issuer, field="sku_issuer")
        return MSME, sku_key(issuer, validate_sku_number(subject.sku_number, field="sku_number"))
    assert subject.legal_entity_no is not None
    number = legal_entity_no_key(subject.legal_entity_no, field="legal_entity_no")
    return COOPERATIVE, number


def checked_request(
    *,
    subject: Subject,
    product: str,
    loan_amount: int,
    tenor_months: int,
    check_date: date | None,
    attestation: Callable[[], LenderAttestation],
) -> Request:
    """The request, or BAD_USER_INPUT listing in `extensions.problems` all that is wrong with
    it before anything is read (the business's key, the loan, the `attestation` as it is
    built), as a record write lists its own (resolvers.writing's `invalid`): a client fixing
    one problem at a time sent the request once for each. What needs the database (a rule set
    in force on the date asked for, the business itself) is refused after, one at a time. It is
    all refused alike whether or not the business exists: a request cannot tell a business in
    the register from none."""
    got = Collector()
    named = got.take(lambda: _subject_key(subject))
    got.errors.extend(loan_problems(product, loan_amount, tenor_months))
    attested = got.take(attestation)
    if got.errors or named is None or attested is None:
        raise invalid([_in_request(error) for error in got.errors])
    kind, key = named
    return Request(
        kind=kind,
        key=key,
        product=product,
        loan_amount=loan_amount,
        tenor_months=tenor_months,
        check_date=check_date,
        attestation=attested,
    )


def registry_facts(kind: str, row: Row | Record) -> RegistryFacts:
    """Registry columns in the domain's terms; None stays None (UNKNOWN), never a guess."""
    common: RegistryFacts = {
        "province_code": row.province_code,
        "conflicting_programme_credit": bool(row.programme_credit),
        "has_defaulted_guarantee": bool(row.defaulted),
    }
    if kind == MSME:
        # The scale programmes act on, from the figures (domain/scale.py): the record's own
        # scale may be a declared one that capital alone supports, whatever the sales.
        scale = classify(capital=row.capital, annual_sales=row.annual_turnover)
        return {
            **common,
            # A record has a NIB or an SKU (migration 0043), and R01 takes either.
            "has_nib": row.nib is not None,
            "has_sku": row.sku_number is not None,
            "business_start_date": row.established_on,
            "scale": None if scale is None else scale.value,
            "annual_sales": row.annual_turnover,
            "marked_inactive": not row.is_active,
            # No owner on record is not a missing NIK: a client without pii:read cannot record
            # one, so the NIK is unknown here and the case goes to review.
            "owner_nik_present": True if row.owner_nik is not None else None,
        }
    return {
        **common,
        "has_legal_entity_no": True,
        # The deed's date when recorded; the legal-entity number's year only bounds it (founded
        # by the year's end), which R03 weighs as a bound, never as the day the business started.
        "business_start_date": row.established_on,
        "business_started_by": established_by(row.legal_entity_no, today=today()),
        "coop_status": row.status,
        "coop_last_rat_book_year": row.last_rat_book_year,
        # A KSP, or a cooperative with a savings-and-loan unit by its KBLI (a USP, a KSPPS):
        # both are rated, and R11 weighs the rating.
        "coop_savings_and_loan": runs_savings_and_loan(row.type, row.kbli_code),
        "ksp_health": row.ksp_health,
        "ksp_health_book_year": row.ksp_health_book_year,
    }


async def _subject(
    connection: Pooled, kind: str, key: str, policy: AccessPolicy, request: Request, now: date
) -> tuple[Row, RuleSet, date]:
    """The business's facts, the product's rules in force today and the date the check is for.

    The rules are looked at before the business, and in the same statement: a product without
    rules in force, or a check dated before they took effect (or too far back, or ahead), is
    refused whether or not the business exists. A check is dated no earlier than today's rules
    took effect, so they are the rules in force on its date. The facts are the business's in the
    caller's jurisdiction, its defaults those of the caller's own guarantees (R13)."""
    product = request.product
    read = queries.msme_facts if kind == MSME else queries.cooperative_facts
    row = await read(connection, key, policy.own, product=product, on_date=now)
    if row.ruleset_version is None:
        raise bad_input("request.product", f"no rule set for {product} in force on {now}")
    rules = await ruleset(connection, product, row.ruleset_version)
    try:
        on = validate_check_date(
            request.check_date or now, today=now, rules_from=rules.effective_from
        )
    except InvalidValue as error:
        raise request_error(error) from None
    if row.id is None:
        field = "request.legalEntityNo"
        if kind == MSME:
            field = "request.nib" if parse_sku_key(key) is None else "request.skuNumber"
        raise coded_error(ErrorCode.NOT_FOUND, f"{field}: no such business", field=field)
    return row, rules, on


async def check(context: Context, request: Request) -> queries.StoredDecision:
    """Decide, store the decision with its facts and rule-set version, and return it.

    A decision about an MSME is not stored while an import holds the register (the decision's
    foreign key would wait on the records it holds locked): the check then waits for the import
    as a write does, at most `msmes.IMPORT_WAIT` (SERVICE_UNAVAILABLE after that), and decides
    again on the register the import left. A check that raises has stored no decision."""
    kind, key = request.kind, request.key
    try:
        stored = await _decide(context, kind, key, request)
    except ImportInProgress:
        async with context.transaction() as connection:
            await after_imports(connection)
            await connection.rollback()  # waited for, and nothing written
        try:
            stored = await _decide(context, kind, key, request)
        except ImportInProgress:  # the next import took the register meanwhile
            raise import_in_progress() from None
    handed_out(context, "eligibility_decision", stored.subject_nik)
    return stored


async def _decide(
    context: Context, kind: str, key: str, request: Request
) -> queries.StoredDecision:
    """The decision stored, with its MSME's owner's NIK as read for the check (`subject_nik`).
    ImportInProgress, and nothing stored, while an import holds the MSME register. The decision
    is stored by the last statement, a transaction of its own: an outage while it runs may
    have met it stored (Context's `store`)."""
    principal = context.principal
    now = today()
    async with context.single_write() as connection:
        row, rules, check_date = await _subject(connection, kind, key, context.policy, request, now)
        try:
            facts = EligibilityFacts(
                subject_kind=kind,
                check_date=check_date,
                product=request.product,
                loan_amount=request.loan_amount,
                tenor_months=request.tenor_months,
                attestation=request.attestation,
                **registry_facts(kind, row),
            )
        except InvalidValue as error:
            raise request_error(error) from None
        decision = evaluate(facts, rules)
        context.store()
        return await queries.store_decision(
            connection,
            {
                "client_id": principal.client_id,
                "organisation": principal.organisation or principal.client_id,
                "msme_id": row.id if kind == MSME else None,
                "cooperative_id": row.id if kind == COOPERATIVE else None,
                "subject_key": key,
                "province_code": row.province_code,
                "regency_code": row.regency_code,
                "loan_amount": request.loan_amount,
                "tenor_months": request.tenor_months,
                "product": decision.product,
                "ruleset_version": decision.ruleset_version,
                "check_date": check_date,
                "facts": facts.to_dict(),
                "verdict": decision.decision.value,
                "results": results_of(decision),
                "coverage_amount": decision.coverage_amount,
                "estimated_fee": decision.estimated_fee,
                "subject_nik": row.owner_nik if kind == MSME else None,
            },
        )


WEIGHED_FINANCES = owner_finances("Msme", {"scale", *FIGURES})
"""The owner's finances (domain.personal.OWNER_FINANCES) a decision tells of: R02 weighs the
scale `registry_facts` bands from the figures (the annual sales, else the capital; none, and it
is unknown), the band the record's `scale` holds, and the annual sales themselves where the rule
set caps them. Whether the band is one the product guarantees is the owner's finances told, as
much as the band read from the record; a guarantee, made only on a decision R02 passed, tells
it too."""


def handed_out(context: Context, kind: str, subject_nik: str | None) -> None:
    """A decision, or a guarantee resting on one (`kind`), went out: a record, and, about an
    MSME, data about its owner when it was checked, a natural person (a credit decision; whether
    a guarantee is in default, R13), whose NIK, stored with the decision
    (db.queries.owners.owner_nik), names them as its data subject, so that `personalDataAccess`
    lists the guarantor, with the owner's finances its rules weigh (`WEIGHED_FINANCES`): itemised
    whichever of its fields the document selects, since even its verdict or a refusal naming
    it tells of them. A cooperative's names no one."""
    context.accesses.records_returned(kind, 1)
    if subject_nik is not None:
        context.accesses.owner_finances_of(subject_nik, WEIGHED_FINANCES)


def results_of(decision: Decision) -> list[dict[str, Any]]:
    return [
        {
            "rule_id": result.rule_id,
            "code": result.code,
            "outcome": result.outcome.value,
            "reason": result.reason,
            "message_id": result.message_id,
            "message_en": result.message_en,
            "legal_basis": result.legal_basis,
        }
        for result in decision.results
    ]


async def decision(info: Info[Context, Any], decision_id: str) -> Record | None:
    """A decision, only for the client that asked for it (`AccessPolicy.own_decisions`)."""
    parsed = parse_id(decision_id, "id")
    async with info.context.reads.connect() as connection:
        found = await queries.decision(
            connection, parsed, visible=info.context.policy.own_decisions
        )
    if found is not None:
        handed_out(info.context, "eligibility_decision", found.subject_nik)
    return found


async def resolve_review(
    info: Info[Context, Any], decision_id: str, *, verdict: str, reviewer: str, reason: str
) -> Record:
    """A person's verdict on a NEEDS_REVIEW decision (UU 27/2022 Pasal 34: a human-review path)."""
    parsed = parse_id(decision_id, "decisionId")
    # Checked as a record's text is: both are shown with the decision to whoever reads it.
    got = Collector()
    checked_reviewer = got.take(lambda: validate_text(reviewer, field="reviewer"))
    checked_reason = got.take(lambda: validate_text(reason, field="reason", max_length=NOTE_MAX))
    # Without errors both checks produced their text; the test narrows the types for mypy.
    if got.errors or checked_reviewer is None or checked_reason is None:
        raise invalid(got.errors)
    visible = info.context.policy.own_decisions
    async with info.context.transaction() as connection:
        reviewed = await queries.review(
            connection,
            parsed,
            visible=visible,
            client_id=info.context.principal.client_id,
            verdict=verdict,
            reviewer=checked_reviewer,
            reason=checked_reason,
        )
        if reviewed is None:
            # Refused inside the transaction, which then rolls back: it changed nothing.
            existing = await queries.decision(connection, parsed, visible=visible)
            if existing is None:
                raise coded_error(
                    ErrorCode.NOT_FOUND, "decisionId: no such decision", field="decisionId"
                )
            # The refusal tells the decision's verdict or its review: handed out, audited as
            # a read of it, so polling a verdict by a review sure to be refused leaves a trace.
            handed_out(info.context, "eligibility_decision", existing.subject_nik)
            why = (
                "the decision is already reviewed"
                if existing.reviewed_verdict
                else f"only a NEEDS_REVIEW decision can be reviewed; this one is {existing.verdict}"
            )
            raise coded_error(ErrorCode.CONFLICT, f"decisionId: {why}", field="decisionId")
        handed_out(info.context, "eligibility_decision", reviewed.subject_nik)
        return reviewed


async def replay(info: Info[Context, Any], stored: Record) -> Decision:
    """The stored facts under the stored rule-set version: a disputed decision, re-derived."""
    async with info.context.reads.checked_out() as connection:
        rules = await ruleset(connection, stored.product, stored.ruleset_version)
    return evaluate(EligibilityFacts.from_dict(stored.facts), rules)


def parse_id(raw: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise bad_input(field, "must be an id returned by this API") from None
