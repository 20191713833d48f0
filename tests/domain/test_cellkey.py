"""The cell-key method's perturbation table and sum noise, as pure functions."""

from __future__ import annotations

import hashlib
import math
import random
import statistics
from collections import Counter
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.cellkey import (
    LABELS,
    MODULUS,
    Perturbation,
    Summed,
    cell_key,
    draws,
    perturbed_cell,
    uniform,
)

PERSON = b"sinergi-cellkey"  # the method's published BLAKE2b personalisation
TABLE = Perturbation()  # the defaults: max_noise 5, variance 2, sum_noise 0.1
_RANDOM = random.Random(19)
KEYS = [_RANDOM.randrange(MODULUS**2) for _ in range(20_000)]  # key sums of many records


def test_zero_stays_zero_whatever_the_key() -> None:
    assert {TABLE.count(0, key) for key in KEYS[:1000]} == {0}
    assert TABLE.total(0, 0, 12345, "turnover") == 0


@pytest.mark.parametrize("count", [1, 2, 3, 4, 10, 1000])
def test_each_row_of_the_table_has_mean_zero_and_never_goes_below_zero(count: int) -> None:
    distribution = TABLE.distribution(count)
    assert sum(distribution.values()) == pytest.approx(1)
    assert sum(noise * p for noise, p in distribution.items()) == pytest.approx(0, abs=1e-12)
    assert min(distribution) >= -count
    assert max(abs(noise) for noise in distribution) <= TABLE.max_noise
    variance = sum(noise**2 * p for noise, p in distribution.items())
    if count >= TABLE.max_noise:
        assert variance == pytest.approx(TABLE.variance)
    else:  # the reach is the count: as much variance as it allows, up to the one asked for
        assert variance <= TABLE.variance + 1e-12


def test_the_cell_key_draws_the_noise_as_often_as_the_table_says() -> None:
    drawn = Counter(TABLE.count(100, key) - 100 for key in KEYS)
    for noise, p in TABLE.distribution(100).items():
        assert drawn[noise] / len(KEYS) == pytest.approx(p, abs=0.015), noise


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=2**62))
def test_the_same_records_always_get_the_same_count(count: int, key_sum: int) -> None:
    """The key is the sum modulo 2**32: a rollup's sum and a records' sum agree on it."""
    assert TABLE.count(count, key_sum) == TABLE.count(count, key_sum + MODULUS)
    assert TABLE.count(count, key_sum) == TABLE.count(count, cell_key(key_sum))
    assert abs(TABLE.count(count, key_sum) - count) <= TABLE.max_noise


@given(
    st.lists(st.integers(min_value=0, max_value=10**11), min_size=1, max_size=40),
    st.integers(min_value=0, max_value=2**40),
)
def test_sum_noise_hides_at_least_a_share_of_the_largest_contribution(
    values: list[int], key_sum: int
) -> None:
    squares = sum(value * value for value in values)
    published = TABLE.total(sum(values), squares, key_sum, "turnover")
    assert published >= 0
    if squares:
        noise = abs(published - sum(values))
        smallest = 0.5 * max(TABLE.sum_noise * max(values), TABLE.max_noise)
        assert noise >= min(smallest, sum(values)) - 1
        assert noise <= 1.5 * max(TABLE.sum_noise * math.sqrt(squares), TABLE.max_noise) + 1


def test_sum_noise_is_small_for_a_cell_of_many_similar_businesses() -> None:
    values = [1_000_000_000 + 7_919 * i for i in range(400)]
    squares = sum(value * value for value in values)
    errors = [
        abs(TABLE.total(sum(values), squares, key, "turnover") - sum(values)) / sum(values)
        for key in KEYS[:500]
    ]
    assert max(errors) <= 1.5 * TABLE.sum_noise / math.sqrt(400) * 1.01


def test_each_measure_of_a_cell_draws_its_own_noise() -> None:
    signs = {
        (TABLE.total(10**9, 10**18, key, "turnover") > 10**9)
        == (TABLE.total(10**9, 10**18, key, "capital") > 10**9)
        for key in KEYS[:200]
    }
    assert signs == {True, False}


def _guarantees(amounts: list[int], coverages: list[int], key_sum: int) -> tuple[int, int]:
    """A cell of guarantees published: its amount and coverage sums."""
    sums = {
        "amount": Summed(len(amounts), sum(amounts), sum(a * a for a in amounts), key_sum, key_sum),
        "coverage": Summed(
            len(coverages),
            sum(coverages),
            sum(c * c for c in coverages),
            key_sum,
            key_sum,
            cross=sum(a * c for a, c in zip(amounts, coverages, strict=True)),
        ),
    }
    _, values = perturbed_cell(TABLE, len(amounts), key_sum, sums, ())
    amount, coverage = values["amount_sum"], values["coverage_sum"]
    assert amount is not None
    assert coverage is not None
    return amount, coverage


@given(
    st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=30),
    st.sampled_from([Fraction(7, 10), Fraction(4, 5), Fraction(1, 2)]),
    st.integers(min_value=0, max_value=2**40),
)
def test_a_sum_that_is_a_multiple_of_another_is_no_second_reading_of_it(
    loans: list[int], rate: Fraction, key_sum: int
) -> None:
    """Coverage at one rate of every loan is published as that rate of the published amount,
    to the rupiah: coverage / rate says nothing the amount does not."""
    amounts = [loan * rate.denominator for loan in loans]
    amount, coverage = _guarantees(amounts, [int(a * rate) for a in amounts], key_sum)
    assert amount != sum(amounts)
    assert abs(coverage - rate * amount) <= Fraction(1, 2)


def test_what_a_multiple_leaves_gets_noise_of_its_own_size() -> None:
    """One guarantor covered 50 % of a loan where the rate is 70 %: 0.7 x amount - coverage
    is that shortfall, and it comes out no more exactly than one business's value in a sum
    would (drawing coverage's noise from the amount's own draw left it within about 2 %)."""
    rng = random.Random(3)
    errors = []
    for key in KEYS[:1000]:
        amounts = [rng.randint(9_000_000, 11_000_000) * 10 for _ in range(20)]
        coverages = [a * 7 // 10 for a in amounts]
        coverages[0] = amounts[0] // 2
        shortfall = amounts[0] * 7 // 10 - coverages[0]
        amount, coverage = _guarantees(amounts, coverages, key)
        errors.append(abs(Fraction(7, 10) * amount - coverage - shortfall) / shortfall)
    assert statistics.median(errors) >= TABLE.sum_noise * 0.8


def _employees(count: int, key_sum: int, employees: Summed) -> tuple[int, int | None]:
    """A cell of `count` records keyed `key_sum`, its employees published, with an average."""
    _, values = perturbed_cell(TABLE, count, key_sum, {"employees": employees}, ("employees",))
    total = values["employees_sum"]
    assert total is not None
    return total, values["employees_average"]


@given(st.integers(min_value=0, max_value=2**40), st.integers(min_value=1, max_value=2**40))
def test_records_that_add_nothing_to_a_sum_give_no_new_reading_of_it(
    lone: int, others: int
) -> None:
    """One business with 4 employees, alone or beside records without employees (NULL) or
    with none (0): every such cell publishes the same sum. Keyed on the whole cell, each was
    a new reading of it, each ruling out a band around itself (noise of 3 to 7), and a few
    intersected to the 4."""
    alone = Summed(1, 4, 16, lone, lone)
    published, average = _employees(1, lone, alone)
    beside_missing = _employees(15, lone + others, alone)
    assert beside_missing == (published, average)  # the same records with a value: all alike
    beside_zeros = Summed(15, 4, 16, lone, lone + others)
    assert _employees(15, lone + others, beside_zeros)[0] == published


def test_an_average_divides_by_the_count_its_records_with_a_value_would_get() -> None:
    """The divisor is keyed on the records with a value as a count of them would be: where a
    cell holds others without one, it is the published count of a cell of those records alone
    (no second reading of that count), and not drawn with the whole cell's count, with which
    count minus sum over average was the exact number of records without a value."""
    for valued, others in zip(KEYS[:300], KEYS[300:600], strict=True):
        summed = Summed(8, 8 * 10**9, 8 * 10**18, valued, valued)
        _, values = perturbed_cell(TABLE, 11, valued + others, {"turnover": summed}, ("turnover",))
        total = values["turnover_sum"]
        assert total is not None
        divisor = TABLE.count(8, valued)
        assert values["turnover_average"] == (2 * total + divisor) // (2 * divisor)


def test_each_draw_is_its_word_of_the_cell_keys_digest_over_two_to_the_32() -> None:
    """The draws are the published method's, however they are computed and cached: label i's
    is the i-th big-endian 4-byte word of the cell key's BLAKE2b digest (person
    "sinergi-cellkey") over 2**32, for any key sum (negative, or past 2**32: its cell key)."""
    for key_sum in [*KEYS[:2000], -1, -(2**40) - 3, 0, MODULUS - 1, MODULUS]:
        digest = hashlib.blake2b(
            cell_key(key_sum).to_bytes(4, "big"), digest_size=4 * len(LABELS), person=PERSON
        ).digest()
        words = [int.from_bytes(digest[4 * i : 4 * i + 4], "big") for i in range(len(LABELS))]
        assert draws(key_sum) == tuple(Fraction(word, MODULUS) for word in words)
        assert [uniform(key_sum, label) for label in LABELS] == list(draws(key_sum))


def test_an_average_over_every_record_divides_by_the_cells_published_count() -> None:
    """Where every record of the cell has a value, the divisor is the published count itself
    (the same records, hence the same key): the ratio tells nothing the count does not."""
    for key_sum in KEYS[:300]:
        summed = Summed(8, 8 * 10**9, 8 * 10**18, key_sum // 2, key_sum)
        count, values = perturbed_cell(TABLE, 8, key_sum, {"turnover": summed}, ("turnover",))
        total = values["turnover_sum"]
        assert total is not None
        assert values["turnover_average"] == (2 * total + count) // (2 * count)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"max_noise": 0}, "max_noise"),
        ({"variance": 0}, "variance"),
        ({"max_noise": 2, "variance": 2.6}, "variance"),
        ({"sum_noise": 0}, "sum_noise"),
        ({"sum_noise": 1.5}, "sum_noise"),
    ],
)
def test_impossible_parameters_are_refused(arguments: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Perturbation(**arguments)  # type: ignore[arg-type]
