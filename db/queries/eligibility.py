"""What an eligibility decision reads from the registry, and where decisions are kept.

The facts come from one statement per subject, scoped to the caller's jurisdiction like every
other read, so a business outside it is simply not found. The decision needs only whether the
owner's NIK is on file (R08), and weighs only that; the NIK itself is read beside it and
stored apart from the facts (`subject_nik`), to name the person the decision is about as the data
subject of its audit entries, whoever owns the business later.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Executable,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.driver import DriverStatement, Pooled, Row, fetch
from db.engine import json_text
from db.models import (
    COOPERATIVES,
    ELIGIBILITY_DECISIONS,
    ELIGIBILITY_RULESETS,
    GUARANTEES,
    MSMES,
    PARTICIPATIONS,
    PROGRAMMES,
)
from db.queries import Record
from db.queries.cooperatives import legal_entity_no_is
from db.queries.guarantees import has_defaulted
from db.queries.owners import owner_nik
from db.queries.ownership import Ownership
from db.writes import ImportInProgress
from db.writes.msmes import IMPORT_LOCK
from domain.errors import InvalidValue
from domain.identifiers import parse_sku_key
from domain.participations import ParticipationStatus
from domain.programmes import ProgrammeKind
from domain.ruleset import RuleSet

# Programme kinds that are subsidised credit and exclude a second guarantee (R12), while the
# business's participation is ACTIVE: both closed vocabularies (domain/programmes.py,
# domain/participations.py), so no other spelling of either can pass for "not taking part".
SUBSIDISED_CREDIT_KINDS = (ProgrammeKind.SUBSIDISED_CREDIT.value,)


def _holds_programme_credit(subject: Any) -> Any:
    # OR rather than IN: the statement is compiled once for asyncpg (db/driver.py), and an IN
    # list's parameters are expanded per execution.
    return exists().where(
        subject,
        PARTICIPATIONS.c.status == ParticipationStatus.ACTIVE.value,
        PROGRAMMES.c.id == PARTICIPATIONS.c.programme_id,
        or_(*(PROGRAMMES.c.kind == kind for kind in SUBSIDISED_CREDIT_KINDS)),
    )


# A check's statements are built once per guarantor (its Ownership: its ids and jurisdiction),
# values bound per call: building and hashing these statements anew was a twentieth of a
# check's CPU.
_VERSION_IN_FORCE = (
    select(ELIGIBILITY_RULESETS.c.version)
    .where(
        ELIGIBILITY_RULESETS.c.product == bindparam("product"),
        ELIGIBILITY_RULESETS.c.effective_from <= bindparam("on_date"),
    )
    # Publishing refuses a second version for a date (day_taken); should two still share one,
    # the later loaded is in force, not whichever row the scan meets first.
    .order_by(ELIGIBILITY_RULESETS.c.effective_from.desc(), ELIGIBILITY_RULESETS.c.loaded_at.desc())
    .limit(1)
    .scalar_subquery()
    .label("ruleset_version")
)
"""The version of the product's rule set in force on the date; NULL when there is none."""
_IN_FORCE = select(_VERSION_IN_FORCE).subquery("in_force")
"""One row, the version in force or NULL, to which the business is joined: the statement answers
for the rules even when no such business is in scope, so a request for rules that do not exist
is refused the same whether or not the business does."""


MsmeNamed = Literal["nib", "sku", "id"]
_MSME_NAMED_BY: dict[MsmeNamed, ColumnElement[bool]] = {
    "nib": MSMES.c.nib == bindparam("key"),
    "sku": and_(
        MSMES.c.sku_issuer == bindparam("sku_issuer"),
        MSMES.c.sku_number == bindparam("sku_number"),
    ),
    # A decision's business when a guarantee is recorded: its NIB or SKU may have changed since
    # the check (a typo corrected, an SKU replaced), and another business may hold it now.
    "id": MSMES.c.id == bindparam("id"),
}


@lru_cache(maxsize=1024)
def _msme_facts(own: Ownership, *, by: MsmeNamed) -> DriverStatement:
    """An MSME in the guarantor's jurisdiction, named by NIB, by SKU (each one unique key) or by
    id, and whether a guarantee of its own for it has defaulted (R13)."""
    scope = own.scope
    return DriverStatement(
        select(
            MSMES.c.id,
            MSMES.c.nib,
            MSMES.c.sku_number,
            MSMES.c.province_code,
            MSMES.c.regency_code,
            MSMES.c.established_on,
            MSMES.c.capital,
            MSMES.c.annual_turnover,
            MSMES.c.is_active,
            owner_nik(MSMES.c.id),
            _holds_programme_credit(PARTICIPATIONS.c.msme_id == MSMES.c.id).label(
                "programme_credit"
            ),
            has_defaulted(GUARANTEES.c.msme_id == MSMES.c.id, own).label("defaulted"),
            _IN_FORCE.c.ruleset_version,
        ).select_from(_IN_FORCE.outerjoin(MSMES, and_(_MSME_NAMED_BY[by], scope.rows(MSMES))))
    )


@lru_cache(maxsize=1024)
def _cooperative_facts(own: Ownership, *, by_id: bool = False) -> DriverStatement:
    """As `_msme_facts`, for a cooperative, named by legal-entity number or by id."""
    scope = own.scope
    cooperative = COOPERATIVES.c.id
    return DriverStatement(
        select(
            cooperative,
            COOPERATIVES.c.legal_entity_no,
            COOPERATIVES.c.established_on,
            COOPERATIVES.c.province_code,
            COOPERATIVES.c.regency_code,
            COOPERATIVES.c.type,
            COOPERATIVES.c.kbli_code,
            COOPERATIVES.c.status,
            COOPERATIVES.c.last_rat_book_year,
            COOPERATIVES.c.ksp_health,
            COOPERATIVES.c.ksp_health_book_year,
            _holds_programme_credit(PARTICIPATIONS.c.cooperative_id == cooperative).label(
                "programme_credit"
            ),
            has_defaulted(GUARANTEES.c.cooperative_id == cooperative, own).label("defaulted"),
            _IN_FORCE.c.ruleset_version,
        ).select_from(
            _IN_FORCE.outerjoin(
                COOPERATIVES,
                and_(
                    COOPERATIVES.c.id == bindparam("id")
                    if by_id
                    else legal_entity_no_is(bindparam("key")),
                    scope.rows(COOPERATIVES),
                ),
            )
        )
    )


async def msme_facts(
    connection: Pooled,
    key: str,
    own: Ownership,
    *,
    product: str,
    on_date: date,
) -> Row:
    """The facts of one MSME as the guarantor whose decisions and guarantees are `own` asks
    about it (in its jurisdiction, R13 of its own guarantees), with the version of `product`'s
    rules in force on `on_date`: a check reads the registry and learns which rules apply in one
    statement (on asyncpg itself: db/driver.py). `key` is its NIB or its SKU
    (domain/identifiers.py `sku_key`). No such MSME in scope: the business's columns are
    NULL."""
    statement, parameters = _msme_key(own, key, product=product, on_date=on_date)
    (row,) = await fetch(connection, statement, parameters)
    return row


def _msme_key(
    own: Ownership, key: str, *, product: str, on_date: date
) -> tuple[DriverStatement, dict[str, Any]]:
    """The statement of `msme_facts` for a NIB or an SKU, and its parameters."""
    sku = parse_sku_key(key)
    if sku is None:
        parameters = {"key": key, "product": product, "on_date": on_date}
        return _msme_facts(own, by="nib"), parameters
    issuer, number = sku
    parameters = {
        "sku_issuer": issuer,
        "sku_number": number,
        "product": product,
        "on_date": on_date,
    }
    return _msme_facts(own, by="sku"), parameters


async def cooperative_facts(
    connection: Pooled,
    legal_entity_no: str,
    own: Ownership,
    *,
    product: str,
    on_date: date,
) -> Row:
    """As `msme_facts`, for a cooperative."""
    parameters = {"key": legal_entity_no, "product": product, "on_date": on_date}
    (row,) = await fetch(connection, _cooperative_facts(own), parameters)
    return row


async def facts_now(connection: AsyncConnection, decision: Record, own: Ownership) -> Row | Record:
    """The facts of a stored decision's business as the register holds them now, for the
    guarantor recording a guarantee on it, whose own decision it is (`own`): the statement its
    check read them with, run in the transaction that records a guarantee on the decision (the
    version in force it also answers goes unused: the decision's own applies). The business is
    the decision's, by id: the key it was asked by may have changed hands since. No longer in
    scope: the business's columns are NULL."""
    if decision.msme_id is not None:
        statement, subject = _msme_facts(own, by="id"), decision.msme_id
    else:
        statement, subject = _cooperative_facts(own, by_id=True), decision.cooperative_id
    parameters = {"id": subject, "product": decision.product, "on_date": decision.check_date}
    return await _one(connection, statement, parameters)


async def _one(
    connection: Pooled | AsyncConnection, statement: DriverStatement, parameters: Mapping[str, Any]
) -> Row | Record:
    """The one row of `statement`: on asyncpg itself on a checked-out connection (db/driver.py),
    through SQLAlchemy in a transaction, which `fetch` runs nothing in."""
    if isinstance(connection, Pooled):
        (row,) = await fetch(connection, statement, parameters)
        return row
    executable = statement.statement
    assert isinstance(executable, Executable)
    return (await connection.execute(executable, parameters)).one()


async def sync_rulesets(connection: AsyncConnection, rulesets: Sequence[RuleSet]) -> list[str]:
    """Store rule sets not yet known; returns the versions added.

    A version, once stored, is frozen: decisions name it, so a file that changes a stored
    version's content is refused, and the change has to be published as a new version.
    """
    added: list[str] = []
    for ruleset in rulesets:
        document = ruleset.to_dict()
        inserted = await connection.execute(
            insert(ELIGIBILITY_RULESETS)
            .values(
                product=ruleset.product,
                version=ruleset.version,
                effective_from=ruleset.effective_from,
                document=document,
            )
            .on_conflict_do_nothing()
            .returning(ELIGIBILITY_RULESETS.c.version)
        )
        if inserted.first() is not None:
            added.append(f"{ruleset.product} {ruleset.version}")
            continue
        stored = (
            await connection.execute(
                select(ELIGIBILITY_RULESETS.c.document).where(
                    ELIGIBILITY_RULESETS.c.product == ruleset.product,
                    ELIGIBILITY_RULESETS.c.version == ruleset.version,
                )
            )
        ).scalar_one()
        if _canonical(stored) != _canonical(document):
            raise InvalidValue(
                "version",
                f"{ruleset.product} {ruleset.version} differs from the stored version of that "
                "name; publish the change under a new version",
            )
    return added


async def day_taken(connection: AsyncConnection, ruleset: RuleSet) -> str | None:
    """Why `ruleset`, when not stored yet, may not be published: another stored version of its
    product takes effect on its day, and which of the two is in force would be a coin toss.
    Asked when an operator publishes (`sinergi rulesets load`), not when preparation stores the
    bundled ones: a pair stored before this check existed, or an operator's version on a day a
    later release bundles, must not stop every migration; the later loaded is then in force."""
    stored = (
        (
            await connection.execute(
                select(ELIGIBILITY_RULESETS.c.version).where(
                    ELIGIBILITY_RULESETS.c.product == ruleset.product,
                    ELIGIBILITY_RULESETS.c.effective_from == ruleset.effective_from,
                )
            )
        )
        .scalars()
        .all()
    )
    if not stored or ruleset.version in stored:
        return None
    return (
        f"{ruleset.product} {ruleset.version} would take effect on {ruleset.effective_from},"
        f" as the stored {stored[0]} does; one version takes effect on a day, so give it another"
        " date"
    )


def _canonical(document: object) -> str:
    return json.dumps(document, sort_keys=True, default=str)


_RULESET_VERSION = DriverStatement(
    select(ELIGIBILITY_RULESETS.c.document).where(
        ELIGIBILITY_RULESETS.c.product == bindparam("product"),
        ELIGIBILITY_RULESETS.c.version == bindparam("version"),
    )
)


async def ruleset_version(
    connection: Pooled | AsyncConnection, product: str, version: str
) -> dict[str, Any]:
    """A stored version's document, for a check or for a guarantee's recording (in its
    transaction)."""
    row = await _one(connection, _RULESET_VERSION, {"product": product, "version": version})
    return dict(row.document)


async def ruleset_documents(connection: AsyncConnection) -> list[Record]:
    """Every stored version's product, version and document, for start-up's review of them
    (sinergi/ruleset_review.py) and for publishing (`stored_rulesets`)."""
    statement = select(
        ELIGIBILITY_RULESETS.c.product,
        ELIGIBILITY_RULESETS.c.version,
        ELIGIBILITY_RULESETS.c.document,
    ).order_by(ELIGIBILITY_RULESETS.c.product, ELIGIBILITY_RULESETS.c.effective_from)
    return list(await connection.execute(statement))


async def stored_rulesets(connection: AsyncConnection) -> list[RuleSet]:
    """Every stored version that still reads, for publishing to tell a version already stored
    (domain/ruleset.py `withholding_refusal`); one that no longer reads is no file's twin, and
    start-up's review names it."""
    stored: list[RuleSet] = []
    for row in await ruleset_documents(connection):
        with contextlib.suppress(InvalidValue):
            stored.append(RuleSet.from_dict(row.document))
    return stored


async def rulesets(connection: AsyncConnection) -> list[Record]:
    statement = select(
        ELIGIBILITY_RULESETS.c.product,
        ELIGIBILITY_RULESETS.c.version,
        ELIGIBILITY_RULESETS.c.effective_from,
    ).order_by(ELIGIBILITY_RULESETS.c.product, ELIGIBILITY_RULESETS.c.effective_from)
    return list(await connection.execute(statement))


_STORED = (
    "client_id",
    "organisation",
    "msme_id",
    "cooperative_id",
    "subject_key",
    "province_code",
    "regency_code",
    "loan_amount",
    "tenor_months",
    "product",
    "ruleset_version",
    "check_date",
    "facts",
    "verdict",
    "results",
    "coverage_amount",
    "estimated_fee",
    "subject_nik",
)
_JSON = ("facts", "results")
# JSON goes as text that PostgreSQL casts: db.driver takes no parameter SQLAlchemy must convert.
_VALUES = {
    name: cast(bindparam(name, type_=Text), JSONB)
    if name in _JSON
    else bindparam(name, type_=ELIGIBILITY_DECISIONS.c[name].type)
    for name in _STORED
}
# A decision about an MSME is stored only with the import lock shared (db/writes/msmes.py),
# taken in the INSERT itself: no statement more, and no transaction, for a check.
_STORE = DriverStatement(
    insert(ELIGIBILITY_DECISIONS)
    .from_select(
        _STORED,
        select(*(value.label(name) for name, value in _VALUES.items())).where(
            or_(
                _VALUES["msme_id"].is_(None),
                func.pg_try_advisory_xact_lock_shared(IMPORT_LOCK),
            )
        ),
    )
    .returning(*(column for column in ELIGIBILITY_DECISIONS.c if column.name not in _JSON))
)


class StoredDecision:
    """A decision as `store_decision` stored it: the columns the INSERT returned, read by name
    as a Row's are, and the facts and results it was given. Those two are not read back: they
    are the JSON the check sent, which PostgreSQL would make text of again for each check (some
    6 kB) and the server parse, for an answer that seldom selects them. They hold strings,
    integers, booleans and nulls alone (`EligibilityFacts.to_dict`, `results_of`), which jsonb
    gives back as they went in (db.seals' `_signable`): read back, they would equal these."""

    __slots__ = ("_row", "facts", "results")

    def __init__(self, row: Row, facts: Any, results: Any) -> None:
        self._row = row
        self.facts = facts
        self.results = results

    def __getattr__(self, name: str) -> Any:
        return getattr(self._row, name)


async def store_decision(connection: Pooled, values: dict[str, Any]) -> StoredDecision:
    """Store a decision and read back what the database made of it (its id, when it was
    decided, its subject's NIK), on asyncpg itself (db/driver.py): through SQLAlchemy's
    execution a check cost a ninth more server CPU.

    ImportInProgress, and nothing stored, while an import holds the MSME register the decision
    is about: its foreign key would wait until the statement timeout on the records the import
    holds locked. The caller waits for the import as a write does (`msmes.after_imports`)."""
    stored = await fetch(connection, _STORE, {**values, **{k: json_text(values[k]) for k in _JSON}})
    if not stored:
        raise ImportInProgress
    return StoredDecision(stored[0], values["facts"], values["results"])


async def decision(
    connection: AsyncConnection, decision_id: uuid.UUID, *, visible: ColumnElement[bool]
) -> Record | None:
    """A stored decision among those `visible` to the caller (resolvers/policy.py decides)."""
    statement = select(ELIGIBILITY_DECISIONS).where(
        ELIGIBILITY_DECISIONS.c.id == decision_id, visible
    )
    return (await connection.execute(statement)).first()


async def review(
    connection: AsyncConnection,
    decision_id: uuid.UUID,
    *,
    visible: ColumnElement[bool],
    client_id: str,
    verdict: str,
    reviewer: str,
    reason: str,
) -> Record | None:
    """Records a person's verdict on a NEEDS_REVIEW decision among those `visible` to the
    client `client_id`, once, and returns it; None if there is none. The database stamps
    `reviewed_at` and refuses a second review (migration 0023)."""
    statement = (
        update(ELIGIBILITY_DECISIONS)
        .where(
            and_(
                ELIGIBILITY_DECISIONS.c.id == decision_id,
                visible,
                ELIGIBILITY_DECISIONS.c.verdict == "NEEDS_REVIEW",
                ELIGIBILITY_DECISIONS.c.reviewed_verdict.is_(None),
            )
        )
        .values(
            reviewed_verdict=verdict,
            reviewer=reviewer,
            review_reason=reason,
            reviewed_by_client=client_id,
        )
        .returning(ELIGIBILITY_DECISIONS)
    )
    reviewed: Record | None = (await connection.execute(statement)).first()
    return reviewed
