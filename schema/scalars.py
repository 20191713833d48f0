"""Money, exact decimals, audit positions and figure totals travel as strings, since GraphQL's
Int is only 32 bits.

Parsers raise ValueError, never a GraphQLError: graphql-core then reports a bad literal on its
place in the document, from which its field is named (schema.input_fields). That is also why
Date is defined here rather than taken from strawberry, whose parser raises a GraphQLError.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

from domain.dates import iso_date
from domain.identifiers import RUPIAH_MAX

Rupiah = NewType("Rupiah", int)
SignedRupiah = NewType("SignedRupiah", int)
"""An amount that may be a loss: a cooperative's SHU (cooperative_records.validate_surplus)."""
ExactDecimal = NewType("ExactDecimal", Decimal)
AuditSeq = NewType("AuditSeq", int)
Total = NewType("Total", int)
"""A figure's sum of people (employees, members): a few hundred records a writer may hold take
it past an Int."""


def _ascii_number(value: object, refusal: str) -> str:
    """The text a number is written in, or ValueError(`refusal`): ASCII without underscores,
    since int, str.isdigit and Decimal read every script's digits ("٤" and "４" as 4) and
    Python's digit grouping ("1_000" as 1000), which would store a figure other than the one a
    reader of the request sees."""
    text = str(value).strip()
    if not text.isascii() or "_" in text:
        raise ValueError(refusal)
    return text


_RUPIAH = 'Rupiah must be a whole, non-negative number of rupiah, e.g. "2500000"'
_RUPIAH_DIGITS = len(str(RUPIAH_MAX))


def _significant(digits: str) -> str:
    """`digits` (ASCII) without leading zeros ("0" for zero): the digits int() is given, since
    past 4,300 of them it raises CPython's own message, which would reach the client as the
    reason, and zeros before a number are as many digits to it as any."""
    return digits.lstrip("0") or "0"


def _at_most_the_largest(digits: str, refusal: str) -> int:
    """`digits` (ASCII) as a number no more than RUPIAH_MAX, else ValueError(`refusal`). Longer
    than the largest amount, a number is refused before it is converted (`_significant`). As
    long as the largest, it is compared with it: "9999999999999999" has its 16 digits and is
    almost ten times as much."""
    significant = _significant(digits)
    if len(significant) > _RUPIAH_DIGITS or int(significant) > RUPIAH_MAX:
        raise ValueError(refusal)
    return int(significant)


def _parse_rupiah(value: object) -> int:
    text = _ascii_number(value, _RUPIAH)
    if not text.isdigit():
        raise ValueError(_RUPIAH)
    return _at_most_the_largest(text, f"Rupiah must be at most {RUPIAH_MAX:,} rupiah")


_SIGNED_RUPIAH = 'SignedRupiah must be a whole number of rupiah, a loss led by "-", e.g. "-2500000"'


def _parse_signed_rupiah(value: object) -> int:
    """As a Rupiah, with a leading "-" for a loss; no "+", nor any other sign."""
    text = _ascii_number(value, _SIGNED_RUPIAH)
    magnitude = text.removeprefix("-")
    if not magnitude.isdigit():
        raise ValueError(_SIGNED_RUPIAH)
    amount = _at_most_the_largest(magnitude, f"SignedRupiah must be within ±{RUPIAH_MAX:,} rupiah")
    return -amount if text.startswith("-") else amount


_AUDIT_SEQ = 'AuditSeq must be a whole, non-negative number, e.g. "2147483648"'
_AUDIT_SEQ_MAX = 2**63 - 1
"""PostgreSQL's bigint, which an audit entry's `seq` is."""


def _parse_audit_seq(value: object) -> int:
    """Written as a string, or as a JSON number, as a client holding a 32-bit `seq` sends it;
    past a bigint's range refused here, not by the driver (an INTERNAL error)."""
    text = _ascii_number(value, _AUDIT_SEQ)
    if not text.isdigit():
        raise ValueError(_AUDIT_SEQ)
    significant = _significant(text)
    if len(significant) > len(str(_AUDIT_SEQ_MAX)) or int(significant) > _AUDIT_SEQ_MAX:
        raise ValueError(f"AuditSeq must be at most {_AUDIT_SEQ_MAX:,}")
    return int(significant)


def _no_total(value: object) -> int:
    """A Total is answered (a figure's sum), never asked for: no argument or input field is
    one, so graphql-core never reaches here with a client's value; refused all the same."""
    raise ValueError("Total is only answered, never given")


def _parse_date(value: object) -> date:
    try:
        return iso_date(value.strip() if isinstance(value, str) else "")
    except ValueError as error:
        raise ValueError(f"Date {error}") from None


_NUMERIC_INTEGER_DIGITS = 131_072
_NUMERIC_FRACTION_DIGITS = 16_383
"""PostgreSQL's `numeric` holds up to these many digits before and after the point."""


_DECIMAL = 'Decimal must be a number written as a string, e.g. "1.12"'


def _parse_decimal(value: object) -> Decimal:
    """A finite number the `numeric` column it is stored in can hold: "1e999999" would otherwise
    pass here and fail in the driver (asyncpg: "exponent is too large"), an INTERNAL error."""
    try:
        number = Decimal(_ascii_number(value, _DECIMAL))
    except InvalidOperation:
        raise ValueError(_DECIMAL) from None
    if not number.is_finite():
        raise ValueError("Decimal must be finite")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite, so not "n", "N" or "F"
    if number.adjusted() >= _NUMERIC_INTEGER_DIGITS or -exponent > _NUMERIC_FRACTION_DIGITS:
        raise ValueError(
            f"Decimal must have at most {_NUMERIC_INTEGER_DIGITS} digits before the point "
            f"and {_NUMERIC_FRACTION_DIGITS} after it"
        )
    return number


def _serialize_decimal(value: object) -> str:
    return format(Decimal(str(value)).normalize(), "f")


SCALARS: dict[object, ScalarDefinition] = {
    date: strawberry.scalar(
        name="Date",
        description="Date (isoformat)",
        serialize=date.isoformat,
        parse_value=_parse_date,
    ),
    Rupiah: strawberry.scalar(
        name="Rupiah",
        description="An amount of Indonesian rupiah: an integer written as a string.",
        serialize=lambda value: str(int(value)),
        parse_value=_parse_rupiah,
    ),
    SignedRupiah: strawberry.scalar(
        name="SignedRupiah",
        description="An amount of Indonesian rupiah that may be a loss: an integer written as a"
        ' string, negative with a leading "-" (e.g. "-5000000").',
        serialize=lambda value: str(int(value)),
        parse_value=_parse_signed_rupiah,
    ),
    AuditSeq: strawberry.scalar(
        name="AuditSeq",
        description="An audit entry's position in the hash chain: an integer written as a string"
        " (the trail outgrows GraphQL's 32-bit Int); read as a string or a number.",
        serialize=lambda value: str(int(value)),
        parse_value=_parse_audit_seq,
    ),
    Total: strawberry.scalar(
        name="Total",
        description="A figure's total of people (employees, members): an integer written as a"
        " string, since a sum outgrows GraphQL's 32-bit Int.",
        serialize=lambda value: str(int(value)),
        parse_value=_no_total,
    ),
    ExactDecimal: strawberry.scalar(
        name="Decimal",
        description='An exact decimal number written as a string, e.g. "1.12" (percent).',
        serialize=_serialize_decimal,
        parse_value=_parse_decimal,
    ),
}
