"""Disclosure control of published figures: the cell-key method, then a threshold.

A figure table comes from one grouped query with every total (GROUP BY CUBE): a key part of
None means "all values of that dimension". A protected cell (the caller may not read its
records) is published perturbed (domain/cellkey.py), and hidden when its perturbed count is
below k: count and every measure null. A cell with no record stays zero.

Why not suppression with complements, as before: on-demand tables are answered independently,
so a hidden cell is the difference of two other tables (with and without a filter, national
against per province) that suppression of each table alone cannot see. Perturbed cells no longer
add up exactly, so no subtraction, within a table or across tables, gives an exact value; and
since a cell's noise depends only on its records, asking again or in other words gives the
same value, so repeating a query to average the noise away learns nothing.

Unprotected cells (the caller may read those records anyway) are exact and never hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from domain.cellkey import (
    NOTHING_READABLE,
    NOTHING_SUMMED,
    Perturbation,
    Readable,
    Summed,
    exact_values,
    perturbed_cell,
)

Key = tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell's records the caller may not read (`count`, `key_sum`, `sums`) and, apart, those
    it may (`readable`), published exactly whether or not the cell is `protected`."""

    key: Key
    count: int
    key_sum: int = 0
    sums: Mapping[str, Summed] = field(default_factory=dict)
    protected: bool = True
    readable: Readable = NOTHING_READABLE


@dataclass(frozen=True, slots=True)
class Published:
    key: Key
    count: int | None
    values: Mapping[str, int | None]
    suppressed: bool


def hidden(count: int, published: int, k: int) -> bool:
    """A cell with records whose published count is below k is not shown."""
    return count > 0 and published < k


def publish(
    cells: Sequence[Cell],
    *,
    k: int,
    perturbation: Perturbation,
    averages: tuple[str, ...] = (),
) -> list[Published]:
    """Each cell as the caller may see it; `averages` names the sums published as averages too."""
    if k < 1:
        raise ValueError("k must be at least 1")
    published = []
    for cell in cells:
        readable = cell.readable
        if not cell.protected:
            sums = {
                name: summed.plus(readable.sums.get(name, NOTHING_SUMMED))
                for name, summed in cell.sums.items()
            }
            values = exact_values(sums, averages)
            count = readable.count + cell.count
            published.append(Published(cell.key, count, values, suppressed=False))
            continue
        count, values = perturbed_cell(
            perturbation, cell.count, cell.key_sum, cell.sums, averages, readable
        )
        # Hidden by the others' records alone: the caller's own, exact, would otherwise lift
        # one other business's cell over the threshold.
        if hidden(cell.count, count, k):
            blank = dict.fromkeys(values)
            published.append(Published(cell.key, None, blank, suppressed=True))
        else:
            published.append(Published(cell.key, readable.count + count, values, suppressed=False))
    return published


@dataclass(frozen=True, slots=True)
class Tally:
    """The records behind one indicator value: how many, their key sum, and a summed measure."""

    count: int
    key_sum: int
    summed: Summed | None = None

    def less(self, part: Tally) -> Tally:
        """The records of this tally that are not in `part`, a tally of some of them."""
        summed = self.summed
        if summed is not None and part.summed is not None:
            own = part.summed
            summed = Summed(
                summed.n - own.n, summed.total - own.total, summed.squares - own.squares
            )
        return Tally(self.count - part.count, self.key_sum - part.key_sum, summed)


NOTHING_TALLIED = Tally(0, 0)


def indicator_count(
    tally: Tally,
    *,
    k: int,
    perturbation: Perturbation | None,
    readable: Tally = NOTHING_TALLIED,
) -> int | None:
    """A count as a figure cell publishes it (`perturbation` None: the caller reads it exactly).
    `readable`: the part of the records the caller may read anyway, exact, as in a figure cell
    (`publish`): the others alone are perturbed, and hidden below k."""
    if perturbation is None:
        return tally.count
    others = tally.less(readable)
    count = perturbation.count(others.count, others.key_sum)
    return None if hidden(others.count, count, k) else readable.count + count


def indicator_total(
    tally: Tally,
    measure: str,
    *,
    k: int,
    perturbation: Perturbation | None,
    readable: Tally = NOTHING_TALLIED,
) -> int | None:
    """A sum as a figure cell publishes it: hidden with its count, perturbed like any sum."""
    summed = tally.summed or NOTHING_SUMMED
    if perturbation is None:
        return summed.total
    if indicator_count(tally, k=k, perturbation=perturbation, readable=readable) is None:
        return None
    others = tally.less(readable)
    own = readable.summed or NOTHING_SUMMED
    rest = others.summed or NOTHING_SUMMED
    return own.total + perturbation.total(rest.total, rest.squares, others.key_sum, measure)


def indicator_share(
    part: Tally,
    whole: Tally,
    *,
    k: int,
    perturbation: Perturbation | None,
    readable: tuple[Tally, Tally] = (NOTHING_TALLIED, NOTHING_TALLIED),
) -> Decimal | None:
    """A percentage (2 places) of two published counts; hidden when either is. `readable`: the
    caller's readable part of each."""
    numerator = indicator_count(part, k=k, perturbation=perturbation, readable=readable[0])
    denominator = indicator_count(whole, k=k, perturbation=perturbation, readable=readable[1])
    if numerator is None or not denominator:
        return None
    share = Decimal(numerator) * 100 / Decimal(denominator)
    return share.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
