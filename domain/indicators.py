"""What a reported realisation of a planning indicator may be (docs/domain.md, Indicators)."""

from __future__ import annotations

from decimal import Decimal

from domain.errors import InvalidValue

QUALIFIER_MAX = 20
"""The `realisations.qualifier` column is varchar(20)."""

_VALUE_MAX = Decimal(10**15)
_VALUE_PLACES = Decimal("0.000001")


def validate_indicator_value(value: Decimal, *, field: str) -> Decimal:
    """Every indicator is a count, a rupiah amount or a share of such (docs/domain.md), so no
    value is negative. The ceiling is the rupiah one (Rp1 quadrillion, domain.identifiers), far
    above any count or percentage, and six decimal places are more than a statistic is
    published with: a value is a figure that every reader of the indicator gets back, not a
    payload of thousands of digits."""
    if not 0 <= value <= _VALUE_MAX:
        raise InvalidValue(field, f"must be between 0 and {_VALUE_MAX:,}")
    if value != value.quantize(_VALUE_PLACES):
        raise InvalidValue(field, "must have at most 6 decimal places")
    return value
