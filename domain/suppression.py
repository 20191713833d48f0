"""Small-cell suppression of grouped figures, so no business can be singled out.

A table of cells comes from one grouped query with every total (GROUP BY CUBE): a key part of
None means "all values of that dimension". Each total equals the sum of its parts along each
dimension it totals over; those sums are the equations an attacker can solve.

- Primary: a protected cell counting 1..k-1 businesses is hidden (count and every measure).
- Secondary: while some equation has exactly one hidden member, one more member is hidden, so
  subtraction never isolates a hidden value. The extra member is a protected, non-zero part
  with the smallest count (least information lost), else the total; ties break on the key, so
  the choice depends only on the data and every query over the same grouping hides the same
  cells.

Zero cells are published: "no business here" identifies nobody. Unprotected cells (the caller
may read those records anyway) are never hidden, and never chosen as complements, because
hiding what the caller can count from records protects nothing.

Guarantee: within one table (and across repeated queries over the same grouping and filter),
no hidden value can be derived by adding and subtracting published cells. Not covered:
combining tables of different groupings or filters, which needs a cross-table audit
(as tau-ARGUS does) and is a known limit of cell suppression.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Key = tuple[str | None, ...]


class Reason(StrEnum):
    PRIMARY = "primary"
    SECONDARY = "secondary"


@dataclass(frozen=True, slots=True)
class Cell:
    key: Key
    count: int
    values: Mapping[str, Any] = field(default_factory=dict)
    protected: bool = True


@dataclass(frozen=True, slots=True)
class Published:
    key: Key
    count: int | None
    values: Mapping[str, Any]
    suppressed: bool
    reason: Reason | None


@dataclass(frozen=True, slots=True)
class Equation:
    total: Key
    parts: tuple[Key, ...]

    @property
    def members(self) -> tuple[Key, ...]:
        return (self.total, *self.parts)


def equations(keys: Sequence[Key]) -> list[Equation]:
    """Every additive relation in the table: a total and its parts along one dimension.

    Built in one pass: a cell is a part of the total that blanks one of its known dimensions.
    """
    present = set(keys)
    parts: dict[tuple[int, Key], list[Key]] = defaultdict(list)
    for key in keys:
        for dimension, value in enumerate(key):
            if value is not None:
                total = (*key[:dimension], None, *key[dimension + 1 :])
                if total in present:
                    parts[(dimension, total)].append(key)
    return [
        Equation(total, tuple(sorted(members, key=_sortable)))
        for (_, total), members in sorted(
            parts.items(), key=lambda item: (item[0][0], _sortable(item[0][1]))
        )
    ]


def _sortable(key: Key) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if part is None else (1, part) for part in key)


def suppress(cells: Sequence[Cell], *, k: int = 5) -> list[Published]:
    if k < 1:
        raise ValueError("k must be at least 1")
    hidden: dict[Key, Reason] = {
        cell.key: Reason.PRIMARY for cell in cells if cell.protected and 0 < cell.count < k
    }
    if not hidden:  # the common national table: nothing small, no equations to solve
        return [_published(cell, None) for cell in cells]
    by_key = {cell.key: cell for cell in cells}
    relations = equations([cell.key for cell in cells])
    involving: dict[Key, list[Equation]] = defaultdict(list)
    for equation in relations:
        for member in equation.members:
            involving[member].append(equation)
    # Work from the greatest key down (pop takes the last), so input order never matters.
    pending = sorted(hidden, key=_sortable, reverse=True)
    while pending:
        for equation in involving[pending.pop()]:
            if sum(member in hidden for member in equation.members) != 1:
                continue
            complement = _complement(equation, by_key, hidden)
            if complement is not None:
                hidden[complement] = Reason.SECONDARY
                pending.append(complement)
    return [_published(cell, hidden.get(cell.key)) for cell in cells]


def _complement(
    equation: Equation, cells: Mapping[Key, Cell], hidden: Mapping[Key, Reason]
) -> Key | None:
    """The member to hide beside the single hidden one, or None if none may be hidden."""
    candidates = [key for key in equation.parts if key not in hidden and cells[key].protected]
    nonzero = [key for key in candidates if cells[key].count > 0]
    pool = nonzero or candidates
    if pool:
        return min(pool, key=lambda key: (cells[key].count, _sortable(key)))
    total = equation.total
    if total not in hidden and cells[total].protected:
        return total
    return None


def _published(cell: Cell, reason: Reason | None) -> Published:
    if reason is None:
        return Published(cell.key, cell.count, dict(cell.values), suppressed=False, reason=None)
    blank = {name: None for name in cell.values}
    return Published(cell.key, None, blank, suppressed=True, reason=reason)


def recoverable(published: Sequence[Published]) -> list[Key]:
    """The subtraction attack: solve every equation with one unknown until none is left.

    Returns the hidden cells whose count it recovers; suppression is sound when it is empty.
    """
    known = {cell.key: cell.count for cell in published if not cell.suppressed}
    relations = equations([cell.key for cell in published])
    recovered: list[Key] = []
    progress = True
    while progress:
        progress = False
        for equation in relations:
            unknown = [member for member in equation.members if member not in known]
            if len(unknown) != 1:
                continue
            (missing,) = unknown
            parts = sum(known[part] or 0 for part in equation.parts if part in known)
            if missing == equation.total:
                known[missing] = parts
            else:
                known[missing] = (known[equation.total] or 0) - parts
            recovered.append(missing)
            progress = True
    return recovered
