"""The cell-key method: every published figure carries a little noise that depends only on the
records behind it, so asking for the same records in another way gives the same answer.

Every record holds a permanent random record key (32 secret bits, never published). A cell's
key is the sum of its records' keys modulo 2**32: additive, so a rollup keeps it per cell and a
total is the sum of its parts' key sums, and any two cells made of the same records, whatever
query, grouping, filter, page or worker produced them, get the same key and hence the same
noise. Cells made of different records get keys that are, to anyone without the record keys,
independent uniform draws.

- Counts: the noise is looked up in a perturbation table (count, cell key) -> integer in
  [-D, D] with mean zero and variance V (D = `max_noise`, V = `variance`), never taking a count
  below zero; a count of zero stays zero. Within each count's row the cell key picks the noise
  by inverse distribution function, as in the ABS TableBuilder's p-table.
- Sums of non-negative values: the noise is `sum_noise` times the root of the sum of squares of
  the contributions (at least `max_noise` units), times a magnitude in [0.5, 1.5) and a sign
  both drawn from the cell key. The root of the sum of squares is at least the largest
  contribution and additive through its square, so a rollup keeps it exactly under writes; the
  noise therefore always hides at least half of `sum_noise` of the largest business's value,
  and for a cell of n similar businesses it is about `sum_noise` / sqrt(n) of the sum.

All parameters may be public: what an attacker lacks is the record keys.
"""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_right
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, lru_cache

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
_WIDTH = 4  # bytes per draw: 2**-32 is finer than any probability in the table


@lru_cache(maxsize=65_536)
def _draws(key: int) -> tuple[float, ...]:
    """One BLAKE2b digest of the cell key, cut into a uniform number per label.

    Cached: a national table's cells are the same few thousand keys from one request to the
    next, and a digest per cell rather than per measure keeps perturbation cheap.
    """
    digest = hashlib.blake2b(
        key.to_bytes(4, "big"), digest_size=_WIDTH * len(LABELS), person=b"sinergi-cellkey"
    ).digest()
    return tuple(
        int.from_bytes(digest[slot : slot + _WIDTH], "big") / 2 ** (8 * _WIDTH)
        for slot in range(0, len(digest), _WIDTH)
    )


def uniform(key_sum: int, label: str) -> float:
    """A number in [0, 1) fixed by the cell key and what is being perturbed.

    Each label gets its own draw, so the noise of a sum says nothing about that of the count.
    """
    return _draws(cell_key(key_sum))[_SLOTS[label]]


def _mean_square(reach: int) -> float:
    """The mean of j**2 over j = 1..reach."""
    return (reach + 1) * (2 * reach + 1) / 6


@cache
def _row(reach: int, variance: float) -> tuple[tuple[float, ...], tuple[int, ...]]:
    """One row of the perturbation table: cumulative probabilities and their noise values.

    Noise 0 with probability 1 - q and each of +-1..+-reach with q / (2 * reach): symmetric, so
    its mean is zero, and q is chosen for the variance asked (as far as the reach allows).
    """
    q = min(1.0, variance / _mean_square(reach))
    values = tuple(range(-reach, reach + 1))
    cumulative: list[float] = []
    total = 0.0
    for value in values:
        total += (1 - q) if value == 0 else q / (2 * reach)
        cumulative.append(total)
    cumulative[-1] = 1.0
    return tuple(cumulative), values


@dataclass(frozen=True, slots=True)
class Perturbation:
    """The published parameters of the cell-key method (settings `SINERGI_CELL_KEY_*`)."""

    max_noise: int = 3
    variance: float = 2.0
    sum_noise: float = 0.1

    def __post_init__(self) -> None:
        if self.max_noise < 1:
            raise ValueError("max_noise must be at least 1")
        if not 0 < self.variance <= _mean_square(self.max_noise):
            raise ValueError(
                f"variance must be above 0 and at most {_mean_square(self.max_noise):g} "
                f"(noise spread evenly over +-1..+-{self.max_noise})"
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
        """The published count: never below zero, zero for zero, the same for the same records."""
        if count == 0:
            return 0
        cumulative, values = _row(min(count, self.max_noise), self.variance)
        return count + values[bisect_right(cumulative, uniform(key_sum, "count"))]

    def total(self, total: int, squares: int, key_sum: int, measure: str) -> int:
        """The published sum of non-negative contributions whose squares add up to `squares`.

        The noise's scale is `sum_noise` times the root of `squares`, but at least `max_noise`
        units, so small whole-number sums (employees, members) are perturbed too; its size is
        0.5 to 1.5 times that scale, never zero. A sum of zeros stays zero.
        """
        if squares == 0:
            return total
        draw = uniform(key_sum, measure)
        sign = 1 if draw >= 0.5 else -1
        magnitude = 0.5 + 2 * (draw % 0.5)
        scale = max(self.sum_noise * math.sqrt(squares), self.max_noise)
        return max(0, total + sign * round(magnitude * scale))


@dataclass(frozen=True, slots=True)
class Summed:
    """One summed measure of a cell: records with a value, their sum and sum of squares."""

    n: int
    total: int
    squares: int


def average(total: int, n: int) -> int | None:
    """Rounded half away from zero, as PostgreSQL rounds; None when nothing was summed."""
    if n == 0:
        return None
    return int((Decimal(total) / Decimal(n)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def exact_values(sums: dict[str, Summed], averages: tuple[str, ...]) -> dict[str, int | None]:
    """Each `<measure>_sum` (None where no record has a value) and `<measure>_average`."""
    values: dict[str, int | None] = {}
    for name, summed in sums.items():
        values[f"{name}_sum"] = summed.total if summed.n else None
        if name in averages:
            values[f"{name}_average"] = average(summed.total, summed.n)
    return values


def perturbed_values(
    perturbation: Perturbation,
    key_sum: int,
    sums: dict[str, Summed],
    averages: tuple[str, ...],
) -> dict[str, int | None]:
    """As `exact_values`, each sum perturbed and each average the perturbed sum over the
    perturbed number of records with a value (so no exact count can be read off a ratio)."""
    values: dict[str, int | None] = {}
    for name, summed in sums.items():
        total = perturbation.total(summed.total, summed.squares, key_sum, name)
        values[f"{name}_sum"] = total if summed.n else None
        if name in averages:
            values[f"{name}_average"] = average(total, perturbation.count(summed.n, key_sum))
    return values
