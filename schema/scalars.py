"""Money and exact decimals travel as strings, since GraphQL's Int is only 32 bits."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

Rupiah = NewType("Rupiah", int)
ExactDecimal = NewType("ExactDecimal", Decimal)


def _parse_rupiah(value: object) -> int:
    text = str(value).strip()
    if not text.isdigit():
        raise ValueError('Rupiah must be a whole, non-negative number of rupiah, e.g. "2500000"')
    return int(text)


def _parse_decimal(value: object) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('Decimal must be a number written as a string, e.g. "1.12"') from None
    if not number.is_finite():
        raise ValueError("Decimal must be finite")
    return number


def _serialize_decimal(value: object) -> str:
    return format(Decimal(str(value)).normalize(), "f")


SCALARS: dict[object, ScalarDefinition] = {
    Rupiah: strawberry.scalar(
        name="Rupiah",
        description="An amount of Indonesian rupiah: an integer written as a string.",
        serialize=lambda value: str(int(value)),
        parse_value=_parse_rupiah,
    ),
    ExactDecimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number written as a string, e.g. "1.12" (percent).',
        serialize=_serialize_decimal,
        parse_value=_parse_decimal,
    ),
}
