"""The cell-key method: every published figure carries a little noise that depends only on the
records behind it, so asking for the same records in another way gives the same answer.

Every record holds a permanent random record key (32 secret bits, never published). A key is
the sum of some records' keys modulo 2**32: additive, so a rollup keeps it per cell and a total
is the sum of its parts' key sums, and any two cells made of the same records, whatever query,
grouping, filter, page or worker produced them, get the same key and hence the same noise.
Cells made of different records get keys that are, to anyone without the record keys,
independent uniform draws. A count is keyed on all the records of its cell; a sum on its
contributors alone (`Summed.key_sum`: the records whose value is neither missing nor zero),
and the number an average divides by on the records with a value (`Summed.valued_key_sum`).
Keyed on every record of the cell, a sum was drawn anew by records that add nothing to it, and
cells differing only by such records were independent readings of the same sum.

- Counts: the noise is looked up in a perturbation table (count, cell key) -> integer in
  [-D, D] with mean zero and variance V (D = `max_noise`, V = `variance`), each size half as
  likely as the one below it, never taking a count below zero; a count of zero stays zero.
  Within each count's row the cell key picks the noise by inverse distribution function, as in
  the ABS TableBuilder's p-table.
- Sums of non-negative values: the noise is `sum_noise` times the root of the sum of squares of
  the contributions (at least `max_noise` units), times a magnitude in [0.5, 1.5) and a sign
  both drawn from the cell key. The root of the sum of squares is at least the largest
  contribution and additive through its square, so a rollup keeps it exactly under writes; the
  noise therefore always hides at least half of `sum_noise` of the largest business's value,
  and for a cell of n similar businesses it is about `sum_noise` / sqrt(n) of the sum. A sum
  whose values are nearly a fixed multiple of another's (`FOLLOWS`) takes that one's noise,
  scaled, and noise of its own only on what the multiple leaves: else it would be a second
  reading of the other.

All parameters may be public: what an attacker lacks is the record keys.
"""

from __future__ import annotations

import hashlib
import math
import struct
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import NamedTuple

MODULUS = 2**32


def cell_key(key_sum: int) -> int:
    """The cell key from the sum of its records' keys (what SQL and the rollups add up)."""
    return key_sum % MODULUS


# Every measure perturbed, each with its own draw from the cell key (a new one goes at the end).
LABELS = (
    "count",
    "turnover",
    "capital",
    "employees",
    "business_volume",
    "assets",
    "members",
    "amount",
    "coverage",
)
_SLOTS = {label: slot for slot, label in enumerate(LABELS)}
FOLLOWS: Mapping[str, str] = {"coverage": "amount"}
"""Measures whose values are (nearly) a fixed multiple of another's, with the one each follows:
a guarantee's coverage is its product's coverage rate times the loan, unless the guarantor
gives less. Drawn apart, coverage over the rate was a second, independently perturbed reading
of the amount, and averaging the two narrowed it; so a follower's noise is the other's, scaled
(`Perturbation.drawn_follower`)."""
_WIDTH = 4  # bytes per draw: 2**-32 is finer than any probability in the table
_WORDS = struct.Struct(f">{len(LABELS)}I")
"""The digest read as one big-endian word of `_WIDTH` bytes per label."""
_UNIT = 2.0 ** (-8 * _WIDTH)
"""A word's weight: a power of two, so word * _UNIT is exactly word / 2**32."""
_COUNT = _SLOTS["count"]


_PERSON = b"sinergi-cellkey"
_HASH = hashlib.blake2b(digest_size=_WIDTH * len(LABELS), person=_PERSON)
"""The digest's state before the key: copied for each, at half the cost of setting it up anew."""


@lru_cache(maxsize=65_536)
def _draws(key: int) -> tuple[float, ...]:
    """One BLAKE2b digest of the cell key, cut into a uniform number per label.

    Cached: a national table's cells are the same few thousand keys from one request to the
    next, and a digest per cell rather than per measure keeps perturbation cheap.
    """
    digest = _HASH.copy()
    digest.update(key.to_bytes(4, "big"))
    return tuple([word * _UNIT for word in _WORDS.unpack(digest.digest())])


def draws(key_sum: int) -> tuple[float, ...]:
    """A number in [0, 1) per label (`LABELS`), fixed by the cell key.

    Each label gets its own draw, so the noise of a sum says nothing about that of the count.
    """
    return _draws(cell_key(key_sum))


def uniform(key_sum: int, label: str) -> float:
    """The draw of one label: its entry of `draws`."""
    return _draw(key_sum, _SLOTS[label])


def _draw(key_sum: int, slot: int) -> float:
    """The draw of the label in `slot` of `LABELS`: what `uniform`, counts and sums read.
    Counts know their slot (a lookup less); counts and sums skip `uniform`'s call: asked per
    measure of every cell."""
    return _draws(cell_key(key_sum))[slot]


def _weights(reach: int) -> list[float]:
    """Relative probabilities of |noise| = 1..reach: halving at each step, so the extremes are
    rare. Bounded noise has edges, and an attacker intersecting several derivations of one
    count pins it only when every cell involved sits on an edge; rare edges make that so."""
    return [0.5 ** (size - 1) for size in range(1, reach + 1)]


def _mean_square(reach: int) -> float:
    """The mean of j**2 over non-zero noise j of reach `reach`."""
    weights = _weights(reach)
    return sum(w * size**2 for size, w in enumerate(weights, start=1)) / sum(weights)


@cache
def _row(reach: int, variance: float) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """One row of the perturbation table: cumulative probabilities and their noise values.

    Noise 0 with probability 1 - q, and +-j with q/2 times the weight of j: symmetric, so its
    mean is zero, and q is chosen for the variance asked (as far as the reach allows).
    """
    q = min(1.0, variance / _mean_square(reach))
    weights = _weights(reach)
    whole = sum(weights)
    values = tuple(range(-reach, reach + 1))
    cumulative: list[float] = []
    total = 0.0
    for value in values:
        total += (1 - q) if value == 0 else q / 2 * weights[abs(value) - 1] / whole
        cumulative.append(total)
    cumulative[-1] = 1.0
    return tuple(cumulative), values


@dataclass(frozen=True, slots=True)
class Perturbation:
    """The published parameters of the cell-key method (settings `SINERGI_CELL_KEY_*`)."""

    max_noise: int = 5
    variance: float = 2.0
    sum_noise: float = 0.1

    def __post_init__(self) -> None:
        if self.max_noise < 1:
            raise ValueError("max_noise must be at least 1")
        if not 0 < self.variance <= _mean_square(self.max_noise):
            raise ValueError(
                f"variance must be above 0 and at most {_mean_square(self.max_noise):g} "
                f"(the most noise of at most {self.max_noise} can have)"
            )
        if not 0 < self.sum_noise <= 1:
            raise ValueError("sum_noise must be above 0 and at most 1")

    def distribution(self, count: int) -> dict[int, float]:
        """The noise a cell of `count` records may get, with its probability (public)."""
        if count == 0:
            return {0: 1.0}
        cumulative, values = _row(min(count, self.max_noise), self.variance)
        previous = 0.0
        probabilities = {}
        for value, upto in zip(values, cumulative, strict=True):
            probabilities[value] = upto - previous
            previous = upto
        return {value: p for value, p in probabilities.items() if p > 0}

    def count(self, count: int, key_sum: int) -> int:
        """The published count: never below zero, zero for zero, the same for the same records.
        A count of zero needs no draw: most cells' own part is one."""
        if count == 0:
            return 0
        cumulative, values = _row(min(count, self.max_noise), self.variance)
        return count + values[bisect_right(cumulative, _draw(key_sum, _COUNT))]

    def total(self, total: int, squares: int, key_sum: int, measure: str) -> int:
        """The published sum of non-negative contributions whose squares add up to `squares`,
        keyed on the key sum of its contributors (`Summed.key_sum`).

        The noise's scale is `sum_noise` times the root of `squares`, but at least `max_noise`
        units, so small whole-number sums (employees, members) are perturbed too; its size is
        0.5 to 1.5 times that scale, never zero. A sum of zeros stays zero.
        """
        return self.drawn_total(total, squares, uniform(key_sum, measure))

    def drawn_total(self, total: int, squares: int, draw: float) -> int:
        return max(0, total + self._noise(squares, draw))

    def drawn_follower(self, summed: Summed, followed: Summed, draws: tuple[float, float]) -> int:
        """The published sum of a measure that follows another (`FOLLOWS`), with the draws of
        that one and of its own: the other's noise times the cell's least-squares multiple
        b = sum(xy) / sum(y**2) of it, plus noise of its own scaled by the root of what that
        multiple leaves, sum((x - b*y)**2) = sum(x**2) - sum(xy)**2 / sum(y**2).

        So any combination of the two published sums carries about the noise that combination
        of the contributions would get as a sum of its own: where every value is the same
        multiple of the other's nothing is left, and this sum is that multiple of the other's
        published sum (to the unit), no second reading of it; where a guarantor covered less
        than the rate, what it left out gets noise of about its own size.
        """
        followed_draw, own_draw = draws
        if followed.squares == 0:
            return self.drawn_total(summed.total, summed.squares, own_draw)
        shared = self._noise(followed.squares, followed_draw)
        scaled = (2 * summed.cross * shared + followed.squares) // (2 * followed.squares)
        # Rounded up: only what is exactly a multiple leaves nothing to perturb.
        left = -(-(summed.squares * followed.squares - summed.cross**2) // followed.squares)
        return max(0, summed.total + scaled + self._noise(left, own_draw))

    def _noise(self, squares: int, draw: float) -> int:
        """A sum's noise: 0 for a sum of zeros, else 0.5 to 1.5 times its scale, either sign."""
        if squares == 0:
            return 0
        sign = 1 if draw >= 0.5 else -1
        magnitude = 0.5 + 2 * (draw % 0.5)
        scale = max(self.sum_noise * math.sqrt(squares), self.max_noise)
        return sign * round(magnitude * scale)


class Summed(NamedTuple):
    """One summed measure of a cell: records with a value (`n`), their sum and sum of squares,
    the key sums its noise is drawn from, and for a measure that follows another (`FOLLOWS`)
    the sum of each value times that one's. A named tuple, not a frozen dataclass: a table
    makes one per measure of each of its ten thousand cells, at a third of the cost.

    The sum's noise is keyed on its contributors alone (`key_sum`: records whose value is
    neither missing nor zero), the number an average divides by on the records with a value
    (`valued_key_sum`). Keyed on every record of the cell, records that add nothing to the sum
    drew its noise anew: cells differing only by such records were independent readings of one
    sum, and a few of them, each ruling out a band around itself, pinned a lone business's
    employees exactly."""

    n: int
    total: int
    squares: int
    key_sum: int
    valued_key_sum: int
    cross: int = 0

    def plus(self, other: Summed) -> Summed:
        return Summed(
            self.n + other.n,
            self.total + other.total,
            self.squares + other.squares,
            self.key_sum + other.key_sum,
            self.valued_key_sum + other.valued_key_sum,
            self.cross + other.cross,
        )

    def less(self, part: Summed) -> Summed:
        """The records of this measure that are not in `part`, a measure of some of them."""
        return Summed(
            self.n - part.n,
            self.total - part.total,
            self.squares - part.squares,
            self.key_sum - part.key_sum,
            self.valued_key_sum - part.valued_key_sum,
            self.cross - part.cross,
        )


NOTHING_SUMMED = Summed(0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Own:
    """The caller's own records of a cell (those it can move between cells: its jurisdiction's
    registers, the guarantees it issued), read apart from the others: how many, their key sum
    and each summed measure. Published exactly when the caller may read them (`exact`), else
    perturbed on a key of their own; either way the others' noise is keyed on the others alone,
    which the caller cannot move."""

    count: int = 0
    key_sum: int = 0
    sums: Mapping[str, Summed] = field(default_factory=dict)
    exact: bool = True


NOTHING_OWN = Own()


def average(total: int, n: int) -> int | None:
    """Of a non-negative sum, rounded half up (as PostgreSQL rounds); None when nothing was
    summed."""
    if n == 0:
        return None
    return (2 * total + n) // (2 * n)


@cache
def _names(measure: str) -> tuple[str, str, int]:
    """The published names of a measure's sum and average, and the slot of its draw."""
    return f"{measure}_sum", f"{measure}_average", _SLOTS[measure]


def exact_values(sums: Mapping[str, Summed], averages: tuple[str, ...]) -> dict[str, int | None]:
    """Each `<measure>_sum` (None where no record has a value) and `<measure>_average`."""
    values: dict[str, int | None] = {}
    for name, summed in sums.items():
        sum_name, average_name, _ = _names(name)
        values[sum_name] = summed.total if summed.n else None
        if name in averages:
            values[average_name] = average(summed.total, summed.n)
    return values


def _drawn_sum(
    perturbation: Perturbation, name: str, summed: Summed, sums: Mapping[str, Summed]
) -> int:
    """The published sum `summed` of measure `name` of a cell (whose measures are `sums`), each
    measure drawn on its contributors' key (`Summed.key_sum`)."""
    own_draw = _draw(summed.key_sum, _SLOTS[name])
    followed = FOLLOWS.get(name)
    if followed is None:
        return perturbation.drawn_total(summed.total, summed.squares, own_draw)
    followed_draw = _draw(sums[followed].key_sum, _SLOTS[followed])
    return perturbation.drawn_follower(summed, sums[followed], (followed_draw, own_draw))


def _perturbed(
    perturbation: Perturbation, count: int, key_sum: int, sums: Mapping[str, Summed]
) -> tuple[int, dict[str, tuple[int, int]]]:
    """Records perturbed on their keys: the count, and per measure the sum and the number an
    average divides by.

    That number is the records with a value, perturbed as their count would be in a cell of
    their own (keyed on them: `Summed.valued_key_sum`). When every record has a value it is
    the cell's published count, so the ratio tells nothing the count does not (a draw of its
    own would be a second, independent reading of the count, narrowing it). Otherwise its key
    is not the count's, so count minus sum over average is no exact number of records without
    a value."""
    counted = perturbation.count(count, key_sum)
    measures: dict[str, tuple[int, int]] = {}
    for name, summed in sums.items():
        total = _drawn_sum(perturbation, name, summed, sums)
        n, valued_key_sum = summed.n, summed.valued_key_sum
        # Every record valued (most cells): the count's very arguments, so its result.
        same = n == count and valued_key_sum == key_sum
        measures[name] = (total, counted if same else perturbation.count(n, valued_key_sum))
    return counted, measures


def perturbed_cell(
    perturbation: Perturbation,
    count: int,
    key_sum: int,
    sums: Mapping[str, Summed],
    averages: tuple[str, ...],
    own: Own = NOTHING_OWN,
) -> tuple[int, dict[str, int | None]]:
    """The published count of a cell, and as `exact_values` each sum and average: the records
    other than the caller's own (`count`, `key_sum`, `sums`) perturbed on their own key, plus
    its `own`, exact or perturbed on theirs.

    Were the noise keyed on all the records of the cell, a caller that may write records could
    move its own in and out of a cell, draw the cell's noise afresh each time, subtract its own
    part and average the rest down to one business's value.
    """
    counted, measures = _perturbed(perturbation, count, key_sum, sums)
    if own.exact:
        own_count = own.count
        own_measures = {name: (summed.total, summed.n) for name, summed in own.sums.items()}
    else:
        own_count, own_measures = _perturbed(perturbation, own.count, own.key_sum, own.sums)
    values: dict[str, int | None] = {}
    for name, (total, n) in measures.items():
        sum_name, average_name, _ = _names(name)
        own_total, own_n = own_measures.get(name, (0, 0))
        present = sums[name].n or own.sums.get(name, NOTHING_SUMMED).n
        values[sum_name] = total + own_total if present else None
        if name in averages:
            values[average_name] = average(total + own_total, n + own_n)
    return counted + own_count, values
