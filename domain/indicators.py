"""What a reported realisation of a planning indicator may be (docs/domain.md, Indicators)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from domain.errors import InvalidValue
from domain.identifiers import RegionLevel, region_level
from domain.records import validate_past_date, validate_text

QUALIFIER_MAX = 20
"""The `realisations.qualifier` column is varchar(20)."""
QUALIFIERS = ("more_than", "at_least")
"""How a source bounds a figure it does not state exactly ("lebih dari", "minimal"): what the
seeded targets carry, and what the API documents."""

FIRST_YEAR = 2000
"""The earliest year a realisation may be reported for, or a target or baseline set for."""
LAST_TARGET_YEAR = 2100
"""The latest year a target may be set for: beyond any planning document (the longest, the
RPJPN and the RPJPD, run twenty years, to 2045), so a later year is a slip (2205 for 2025)."""
TARGET_KINDS = ("baseline", "target")
"""What a planning document sets for a year (the `targets.kind` column); a realisation is not
one: it is reported (`reportRealisation`), and every report kept."""
_VALUE_MAX = Decimal(10**15)
_VALUE_PLACES = Decimal("0.000001")

PERCENT = "percent"
"""A share of a whole (`KOP_PARTISIPASI`, `UKM_PROPORSI`, ...): from 0 to 100."""
RUPIAH = "IDR"
"""A rupiah amount: whole rupiah, as every amount (docs/domain.md, Identifiers)."""
COUNTED = frozenset({"unit", "persons", "enterprises"})
"""Cooperatives, businesses, entrepreneurs: counted whole."""
PLANNING_LEVELS = frozenset(
    {RegionLevel.NATIONAL, RegionLevel.PROVINCE, RegionLevel.REGENCY, RegionLevel.CITY}
)


def validate_indicator_value(value: Decimal, unit: str | None, *, field: str) -> Decimal:
    """Every indicator is a count, a rupiah amount or a share of such (docs/domain.md), so no
    value is negative; a value is a figure that every reader of the indicator gets back, and
    compares with its target, so it must be one the indicator's `unit` can take: a share within
    0-100 (250.5 percent of the population in cooperatives is a slip, a ratio entered as a
    count or the reverse), a count or a rupiah amount whole. The ceiling otherwise is the rupiah
    one (Rp1 quadrillion, domain.identifiers), and six decimal places are more than a statistic
    is published with: not a payload of thousands of digits. `unit` is None when the indicator
    is unknown (refused on its own field); a unit not named here gets those bounds alone."""
    ceiling = Decimal(100) if unit == PERCENT else _VALUE_MAX
    if not 0 <= value <= ceiling:
        within = " for an indicator in percent" if unit == PERCENT else ""
        raise InvalidValue(field, f"must be between 0 and {ceiling:,}{within}")
    if value != value.quantize(_VALUE_PLACES):
        raise InvalidValue(field, "must have at most 6 decimal places")
    if (unit == RUPIAH or unit in COUNTED) and value != value.to_integral_value():
        raise InvalidValue(field, f"must be a whole number for an indicator in {unit}")
    return value


def validate_report_jurisdiction(code: str, *, field: str) -> str:
    """Targets are set in planning documents, which the nation (RPJMN, RKP), provinces and
    regencies or cities (RPJMD, RKPD) draw up and no lower level does (docs/domain.md): a
    realisation for a kecamatan or a village has no target to answer to, and a target answers
    only the realisations of its own jurisdiction, so such a report would be kept for no
    reader."""
    if region_level(code, field=field) not in PLANNING_LEVELS:
        raise InvalidValue(
            field,
            "must be the nation, a province or a regency or city: targets are set at no lower "
            "level",
        )
    return code


def validate_qualifier(qualifier: str, *, field: str) -> str:
    """One of `QUALIFIERS`: every client that reads targets gets a realisation's qualifier back
    and reads it as one of them, so any other text ("<script>" included) went to every such
    client as a qualifier it could not read, or rendered."""
    given = validate_text(qualifier, field=field, max_length=QUALIFIER_MAX)
    if given not in QUALIFIERS:
        raise InvalidValue(field, f"must be one of {', '.join(QUALIFIERS)}")
    return given


def validate_report_year(year: int, *, field: str, today: date) -> int:
    """A realisation is what a year achieved, reported once the year has begun (see
    `validate_reported_on`), so its year is this year at the latest: a report for next year
    would be dated before its year, today's date included."""
    if not FIRST_YEAR <= year <= today.year:
        raise InvalidValue(field, f"must be between {FIRST_YEAR} and {today.year}")
    return year


def validate_target_year(year: int, *, field: str) -> int:
    """A target or a baseline may lie years ahead, or behind (the baseline an RPJMD starts
    from), unlike a realisation."""
    if not FIRST_YEAR <= year <= LAST_TARGET_YEAR:
        raise InvalidValue(field, f"must be between {FIRST_YEAR} and {LAST_TARGET_YEAR}")
    return year


def validate_reported_on(reported_on: date, year: int | None, *, field: str, today: date) -> date:
    """The day of the report: a past date, as the other past dates, and not before 1 January of
    the year it reports on, whose achievement nobody could report before the year began.
    `year` is None when the year itself was refused: there is nothing to compare with."""
    validate_past_date(reported_on, field=field, today=today)
    if year is not None and reported_on < date(year, 1, 1):
        raise InvalidValue(
            field,
            f"is before {year}-01-01: a realisation for {year} is reported once the year has begun",
        )
    return reported_on


_EXTERNAL_ID = re.compile(r"[^\s#]+#")
"""How an external principal's client id begins, `ISSUER#`: its issuer, an SSO's URL, holds no
space and no `#`, and a `#` follows it (`auth.external.external_client_id`, older ids too)."""
_EXTERNAL_REPORTER = re.compile(r" \(" + _EXTERNAL_ID.pattern)
"""Where such an id begins in a stored reporter, after the organisation."""


def stored_reporter(organisation: str, client_id: str) -> str:
    """Who reported a realisation, as `realisations.reported_by` keeps it: the organisation
    (else the client id) and the client id, for the owner's history of who reported what."""
    return f"{organisation or client_id} ({client_id})"


def reporting_organisation(stored: str | None) -> str | None:
    """Who reported, as readers are told (`Realisation.reportedBy`, read nationwide): the
    organisation of `stored_reporter`'s text alone. An external principal's client id may hold
    an official's SSO subject (its `sub`, when the issuer maps no client id), so nothing from
    ` (ISSUER#` on is ever shown, nor the id standing for a missing organisation; a client
    registered here is known by its name, or by its id when it has none. Text stored otherwise
    (`seed`) is shown as it is."""
    if stored is None:
        return None
    external = _EXTERNAL_REPORTER.search(stored)
    if external is not None:
        organisation = stored[: external.start()]
    else:
        organisation, parted, _ = stored.rpartition(" (")
        if not (parted and stored.endswith(")")):
            return stored
    return None if not organisation or _EXTERNAL_ID.match(organisation) else organisation
