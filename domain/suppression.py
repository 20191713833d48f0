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

Where the caller's own part is published apart (`own_apart`: a guarantor's guarantees), a cell
with records is hidden whenever the others' part is below k, an empty one included, and the
caller reads its own part in fields of its own: shown when the others' part is empty and hidden
when it held one or two records, a cell would tell a rival's few records from none. A hidden
cell holding none of the caller's own is left out there: it would only say that a rival's
records are in it.

A table of the members of something only the records' readers may list (a programme's
participants) publishes no hidden cell: its key alone would say that some member has those
attributes, where an empty cell is simply absent. There each part of a protected cell too small
to show is left out as if it held none, and a cell with nothing left to show is left out too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal

from domain.cellkey import (
    NOTHING_OWN,
    NOTHING_SUMMED,
    Own,
    Perturbation,
    Summed,
    exact_values,
    perturbed_cell,
)

Key = tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """A cell's records other than the caller's own (`count`, `key_sum`, `sums`) and, apart,
    its own (`own`)."""

    key: Key
    count: int
    key_sum: int = 0
    sums: Mapping[str, Summed] = field(default_factory=dict)
    protected: bool = True
    own: Own = NOTHING_OWN


@dataclass(frozen=True, slots=True)
class Published:
    key: Key
    count: int | None
    values: Mapping[str, int | None]
    suppressed: bool
    own_count: int | None = None
    """The caller's own part, when published apart and exact (`publish`'s `own_apart`)."""
    own_values: Mapping[str, int | None] = field(default_factory=dict)


def hidden(count: int, published: int, k: int) -> bool:
    """A cell with records whose published count is below k is not shown."""
    return count > 0 and published < k


def _members_shown(cell: Cell, *, k: int, perturbation: Perturbation) -> Cell | None:
    """A protected cell of members with each part too small to show left out, as if it held
    none: the others' and the caller's own when perturbed, each below k on its own (its own,
    if exact, it may read). None when no part is left to show.

    Leaving out the whole cell only when a part is hidden would not do: beside a part that is
    shown, a cell published or missing would still tell whether the other part was empty or
    held a few members (a BUMD's own province's lone participant beside others' many)."""
    own = cell.own
    others = cell.count > 0 and perturbation.count(cell.count, cell.key_sum) >= k
    mine = own.count > 0 and (own.exact or perturbation.count(own.count, own.key_sum) >= k)
    if not (others or mine):
        return None
    if others:
        return cell if mine else replace(cell, own=NOTHING_OWN)
    return replace(cell, count=0, key_sum=0, sums=dict.fromkeys(cell.sums, NOTHING_SUMMED))


def publish(
    cells: Sequence[Cell],
    *,
    k: int,
    perturbation: Perturbation,
    averages: tuple[str, ...] = (),
    members_only: bool = False,
    own_apart: bool = False,
) -> list[Published]:
    """Each cell as the caller may see it; `averages` names the sums published as averages too.

    `own_apart`: the caller's own part of each protected cell is published apart too (exact
    when it may read it, else not at all), and the whole cell is hidden whenever the others'
    part is below k, even empty: whether the others' part was empty or small is then never
    told by the cell being shown or hidden. A hidden cell with nothing of the caller's is not
    published at all: its presence would only say that others (a rival) were there.

    `members_only`: the records are the members of something only their readers may list (a
    programme's participants). A hidden cell is then not published at all, nor its key, and
    any part of a cell too small to show is left out (`_members_shown`): a bank that knows its
    applicant's regency, scale and founding year would otherwise see that a cell of them holds
    a participant, and so that its applicant got the grant, or from its absence that it did
    not. An empty table, totals included, then means that too few members match to show."""
    if k < 1:
        raise ValueError("k must be at least 1")
    published = []
    for cell in cells:
        own = cell.own
        if not cell.protected:
            sums = {
                name: summed.plus(own.sums.get(name, NOTHING_SUMMED))
                for name, summed in cell.sums.items()
            }
            values = exact_values(sums, averages)
            published.append(Published(cell.key, own.count + cell.count, values, suppressed=False))
            continue
        if members_only:
            shown = _members_shown(cell, k=k, perturbation=perturbation)
            if shown is None:
                continue
            cell, own = shown, shown.own
        count, values = perturbed_cell(
            perturbation, cell.count, cell.key_sum, cell.sums, averages, own
        )
        own_count = own.count if own.exact else perturbation.count(own.count, own.key_sum)
        # Each part is held to the threshold on its own: the caller's own records would
        # otherwise lift one other business's cell over it. Its own, if exact, need none.
        # Published apart, its own no longer exempt an empty others' part from it.
        others_hidden = hidden(cell.count + (own.count if own_apart else 0), count - own_count, k)
        if others_hidden or (not own.exact and hidden(own.count, own_count, k)):
            if own_apart and own.count == 0:
                continue  # hidden with nothing of its own: only says others were there
            figure = Published(cell.key, None, dict.fromkeys(values), suppressed=True)
        else:
            figure = Published(cell.key, count, values, suppressed=False)
        if own_apart and own.exact:
            own_values = exact_values(own.sums, averages)
            figure = replace(figure, own_count=own.count, own_values=own_values)
        published.append(figure)
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
            summed = summed.less(part.summed)
        return Tally(self.count - part.count, self.key_sum - part.key_sum, summed)


NOTHING_TALLIED = Tally(0, 0)


def _indicator_cell(tally: Tally, own: Tally, own_exact: bool, measure: str = "") -> Cell:
    """An indicator's records as the one cell of a figure table would hold them, so that
    `publish` decides both alike: the others apart from the caller's `own`."""
    others = tally.less(own)

    def sums(part: Tally) -> dict[str, Summed]:
        return {measure: part.summed or NOTHING_SUMMED} if measure else {}

    mine = Own(own.count, own.key_sum, sums(own), exact=own_exact)
    return Cell((), others.count, others.key_sum, sums(others), protected=True, own=mine)


def indicator_count(
    tally: Tally,
    *,
    k: int,
    perturbation: Perturbation | None,
    own: Tally = NOTHING_TALLIED,
    own_exact: bool = True,
    members_only: bool = False,
) -> int | None:
    """A count as a figure cell publishes it (`perturbation` None: the caller reads it exactly),
    with the caller's `own` part apart from the others', exact when `own_exact`.

    `members_only`: the records are members, as in `publish` (a year's graduates). A cell left
    out there is None here, an empty one included: published as 0, none would tell apart from
    a few, whose cell the figures leave out because its key alone says there were some."""
    if perturbation is None:
        return tally.count
    cell = _indicator_cell(tally, own, own_exact)
    shown = publish([cell], k=k, perturbation=perturbation, members_only=members_only)
    return shown[0].count if shown else None


def indicator_total(
    tally: Tally,
    measure: str,
    *,
    k: int,
    perturbation: Perturbation | None,
    own: Tally = NOTHING_TALLIED,
    own_exact: bool = True,
) -> int | None:
    """A sum as a figure cell publishes it: hidden with its count, perturbed like any sum; None
    where no record has a value (a book year no books have reached: not known yet, not a
    volume of 0), exact or perturbed alike, as a figure cell's sum is (`exact_values`)."""
    if perturbation is None:
        summed = tally.summed or NOTHING_SUMMED
        return summed.total if summed.n else None
    cell = _indicator_cell(tally, own, own_exact, measure)
    (shown,) = publish([cell], k=k, perturbation=perturbation)
    return None if shown.suppressed else shown.values[f"{measure}_sum"]


def indicator_share(
    part: Tally,
    whole: Tally,
    *,
    k: int,
    perturbation: Perturbation | None,
    own: tuple[Tally, Tally] = (NOTHING_TALLIED, NOTHING_TALLIED),
    own_exact: bool = True,
    members_only: bool = False,
) -> Decimal | None:
    """A percentage (2 places) of two published counts; hidden when either is. `own`: the
    caller's part of each. `members_only`: the part's records are members (`indicator_count`),
    so a part of none is hidden as one of too few is: a share of 0 beside the hidden ones
    would say which places have a few."""
    numerator = indicator_count(
        part,
        k=k,
        perturbation=perturbation,
        own=own[0],
        own_exact=own_exact,
        members_only=members_only,
    )
    denominator = indicator_count(
        whole, k=k, perturbation=perturbation, own=own[1], own_exact=own_exact
    )
    if numerator is None or not denominator:
        return None
    share = Decimal(numerator) * 100 / Decimal(denominator)
    return share.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
