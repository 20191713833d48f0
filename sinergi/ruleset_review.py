"""Warns, at `sinergi migrate` and `sinergi serve`, of stored rule sets that publishing would
now refuse.

A rule set is held to the rules of publishing when it is loaded (domain/ruleset.py
`load_rulesets`); one an operator stored before a rule existed stays stored, frozen, and is read
as stored, since refusing it at request time would fail every check of its product from its
effective date. What it breaks (a reason quoting the record to the guarantor, a threshold past
publishing's bounds) the operator must hear of before then, once per start, naming the version
and the message: each stored version is judged as a new one would be, so one stored backdated,
while the rule held only from its day, is named too; only the bundled versions published before
the rule are not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from db.engine import one_connection
from db.queries.eligibility import ruleset_documents
from domain.errors import InvalidValue
from domain.ruleset import RuleSet, bounds_refusal, withholding_refusal

log = logging.getLogger("sinergi.rulesets")


def refused_when_published(stored: Iterable[tuple[str, str, object]]) -> list[str]:
    """For each stored (product, version, document) that would not be published today, why.
    One that no longer reads at all is named too, rather than stopping the start-up: a check
    under it fails, which the operator must hear of as well."""
    problems: list[str] = []
    for product, version, document in stored:
        try:
            parsed = RuleSet.from_dict(document)
        except InvalidValue as error:
            problems.append(f"rule set {product} {version} no longer reads: {error}")
            continue
        bounds = bounds_refusal(parsed)
        if bounds is not None:
            problems.append(
                f"rule set {product} {version}, in force from {parsed.effective_from},"
                f" would now be refused: {bounds}; publish a version within the bounds"
                " (`sinergi rulesets load`) to supersede it"
            )
        refusal = withholding_refusal(parsed)
        if refusal is not None:
            problems.append(
                f"rule set {product} {version}, in force from {parsed.effective_from},"
                f" would now be refused: {refusal}; its reasons quote the record to guarantors,"
                " so publish a version worded without it (`sinergi rulesets load`) to supersede it"
            )
    return problems


async def warn_of_refused_rulesets(url: str) -> None:
    """Logs a WARNING for each stored rule set publishing would refuse."""
    async with one_connection(url, statement_timeout_ms=30_000) as connection:
        rows = await ruleset_documents(connection)
    for problem in refused_when_published((row.product, row.version, row.document) for row in rows):
        log.warning("%s", problem)
