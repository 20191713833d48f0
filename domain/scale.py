"""MSME scale under PP 7/2021 Pasal 35 (docs/domain.md, Scale).

Scale is computed from the figures with a named rule version instead of being stored as a bare
label, so records computed under these thresholds stay explainable when the nominal values change
(Pasal 36 allows that).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from domain.errors import InvalidValue

RULE_VERSION = "PP7_2021"
CORRECTION = "PP7_2021/correction"
"""The rule version of an entry that corrects the figures of a year already recorded
(`entry_rule_version`)."""
CORRECTIONS: frozenset[str] = frozenset({"PP7_2021/0037", CORRECTION})
"""Rule versions of scale history entries that correct a record rather than record a change of
the business: migration 0037's, dated the day it ran, for records whose figures had moved under
a kept declaration without an entry, and CORRECTION's, an update's or an import's fix of a year's
figures. Such an entry is where the history stands (the next step is counted from it) but never
itself a graduation: correcting a label or a mistyped figure is not growing."""


def entry_rule_version(turnover_year: int | None, previous_year: int | None) -> str:
    """The rule version of a scale history entry an update or an import writes, from the year of
    its sales (None: not known) and the year the entry before it counts in (None: there is none).

    Such a mutation fixes figures as often as it brings new ones, and only a later year's sales
    can show growth ("naik kelas" compares the sales of t-1 and t): figures of the same year, an
    earlier one or no known year correct what was recorded (CORRECTION), so a typing error and
    its fix are never a graduation. A first entry has nothing to correct. `reportScaleChange`
    states a change of the business, so its entries are RULE_VERSION whatever their year."""
    if previous_year is None or (turnover_year is not None and turnover_year > previous_year):
        return RULE_VERSION
    return CORRECTION


class Scale(StrEnum):
    """Smallest first: the graduation figures take a business's lowest and highest scale by
    this order (db/queries/aggregates.py graduation_source)."""

    MICRO = "micro"
    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"


MSME_SCALES: frozenset[Scale] = frozenset({Scale.MICRO, Scale.SMALL, Scale.MEDIUM})
"""The scales of micro, small and medium enterprises (UMKM), what the MSME indicators count: the
register also holds large enterprises (over Rp 50 miliar of annual sales), which are outside the
MSMEs and their programmes (docs/domain.md, Scale)."""

_Thresholds = tuple[tuple[int, Scale], ...]

# (inclusive upper bound in rupiah, scale); anything above the last bound is LARGE. The regulation
# reads "lebih dari ... sampai dengan paling banyak ...": lower bound exclusive, upper inclusive.
_CAPITAL_LIMITS: _Thresholds = (
    (1_000_000_000, Scale.MICRO),
    (5_000_000_000, Scale.SMALL),
    (10_000_000_000, Scale.MEDIUM),
)
_SALES_LIMITS: _Thresholds = (
    (2_000_000_000, Scale.MICRO),
    (15_000_000_000, Scale.SMALL),
    (50_000_000_000, Scale.MEDIUM),
)

Step = tuple[Scale, Scale]

GRADUATIONS: frozenset[Step] = frozenset(
    {(Scale.MICRO, Scale.SMALL), (Scale.MICRO, Scale.MEDIUM), (Scale.SMALL, Scale.MEDIUM)}
)
"""Every step up within the MSME scales, as the `graduations` figures count them (grouped by the
scale left and the one reached). Growing into a large enterprise leaves the MSME programmes, so it
is not counted."""
MICRO_GRADUATIONS: frozenset[Step] = frozenset(
    step for step in GRADUATIONS if step[0] is Scale.MICRO
)
""""Usaha mikro naik kelas" as the planning targets count it (indicator MIKRO_NAIK_KELAS, e.g.
Kalteng's "pelaku usaha mikro yang berkembang menjadi usaha kecil dan menengah"): micro to small or
medium only; a small business growing to medium was not micro, so it is no such graduate."""


def _scale(amount: int, thresholds: _Thresholds, field: str) -> Scale:
    if amount < 0:
        raise InvalidValue(field, "must not be negative")
    for upper, scale in thresholds:
        if amount <= upper:
            return scale
    return Scale.LARGE


def scale_by_capital(capital: int) -> Scale:
    """Pasal 35(2): the criterion OSS applies when a business registers for its NIB."""
    return _scale(capital, _CAPITAL_LIMITS, "capital")


def scale_by_sales(annual_sales: int) -> Scale:
    """Pasal 35(4)-(5): the criterion for programmes (ease, protection, empowerment)."""
    return _scale(annual_sales, _SALES_LIMITS, "annualSales")


def classify(*, capital: int | None, annual_sales: int | None) -> Scale | None:
    """The scale programmes act on: annual sales when known, since Pasal 35(4) makes sales the
    criterion for programmes; otherwise capital, the registration criterion of Pasal 35(2), which
    is all a business younger than a year has; otherwise unknown rather than guessed.
    """
    if annual_sales is not None:
        return scale_by_sales(annual_sales)
    if capital is not None:
        return scale_by_capital(capital)
    return None


def registered_scale(
    declared: Scale | None, *, capital: int | None, annual_sales: int | None
) -> Scale | None:
    """The scale the register keeps and every figure, indicator and graduation counts: the one
    the figures give (`classify`), since a label the annual sales contradict would put a business
    in the wrong programmes and figures; the declared one (as on the NIB) only while there are no
    figures to compute one from. The declaration itself is kept apart, as it was made.
    """
    computed = classify(capital=capital, annual_sales=annual_sales)
    return declared if computed is None else computed


FIGURES = frozenset({"capital", "annual_turnover"})
"""The fields a scale is computed from (domain.records MsmeDraft's)."""


def kept_declaration(
    *,
    declared: str | None,
    scale: str,
    capital: int | None,
    annual_turnover: int | None,
    given: Mapping[str, object],
) -> Scale | None:
    """The declared scale a write merged over a stored record (`declared`, `scale`, `capital`,
    `annual_turnover`: its columns) keeps when the write (`given`: the fields it sets, by draft
    field name, with their values) declares none itself, as `updateMsme` and an import's row
    alike merge it.

    The stored declaration stands while the figures it was checked against do; a write changing
    figures drops it: one they might now contradict is not carried over unasked (and, as before
    the declaration was kept apart, such a write is not refused for it). Figures sent as stored
    change nothing, so a client sending the record back whole keeps it. A record without
    figures stored before migration 0037 has no declaration kept apart (0037 left those it did
    not change alone), but its scale was declared, as without figures it must be: it stands as
    the declaration, so the record stays writable. Nor does a declaration the stored figures
    contradict (one a scale report left before reports cleared it) stand: it would refuse every
    write.
    """
    stored = {"capital": capital, "annual_turnover": annual_turnover}
    if any(name in given and given[name] != stored[name] for name in FIGURES):
        return None
    if declared is not None:
        return standing_declaration(declared, capital=capital, annual_sales=annual_turnover)
    if capital is None and annual_turnover is None:
        return Scale(scale)
    return None


def standing_declaration(
    declared: str | None, *, capital: int | None, annual_sales: int | None
) -> Scale | None:
    """The stored declaration as new figures leave it (`reportScaleChange`'s, which declare no
    scale): kept while either supports it (`check_declared_scale`), else None: one they
    contradict would refuse every later write that keeps it."""
    if declared is None or not _fits(Scale(declared), capital=capital, annual_sales=annual_sales):
        return None
    return Scale(declared)


def _fits(declared: Scale, *, capital: int | None, annual_sales: int | None) -> bool:
    """Whether either figure given supports `declared`; with none, nothing contradicts it."""
    computed = [
        scale
        for scale in (
            None if capital is None else scale_by_capital(capital),
            None if annual_sales is None else scale_by_sales(annual_sales),
        )
        if scale is not None
    ]
    return not computed or declared in computed


def check_declared_scale(
    declared: Scale, *, capital: int | None, annual_sales: int | None, field: str = "scale"
) -> None:
    """A declared scale (e.g. the one on the NIB) is accepted if either given figure supports
    it, because Pasal 35 groups businesses by capital OR annual sales (the NIB's scale is the
    capital's, Pasal 35(2)); with no figures there is nothing to contradict it. Accepted, it is
    kept as the declaration: the registered scale is still `registered_scale`'s.
    """
    if _fits(declared, capital=capital, annual_sales=annual_sales):
        return
    bands: list[str] = []
    if capital is not None:
        bands.append(f"capital {_band(declared, _CAPITAL_LIMITS)}")
    if annual_sales is not None:
        bands.append(f"annual sales {_band(declared, _SALES_LIMITS)}")
    raise InvalidValue(
        field,
        f"{declared} does not fit the figures given: under PP 7/2021 a {declared} business "
        f"has {' or '.join(bands)}",
    )


def _band(scale: Scale, thresholds: _Thresholds) -> str:
    """The range of one scale in words, read from the same table the classification uses."""
    lower: int | None = None
    for upper, candidate in thresholds:
        if candidate == scale:
            return f"up to Rp{upper:,}" if lower is None else f"over Rp{lower:,} up to Rp{upper:,}"
        lower = upper
    return f"over Rp{lower:,}"
