"""Disclosure control of figure tables built from hand-made records, and attacks on it."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cellkey import MODULUS, NOTHING_SUMMED, Own, Perturbation, Summed, perturbed_cell
from domain.suppression import (
    Cell,
    Key,
    Published,
    Tally,
    indicator_count,
    indicator_share,
    indicator_total,
    publish,
)

TABLE = Perturbation()
K = 5
NOTHING_TALLIED_WITH_NO_SUM = Tally(0, 0, NOTHING_SUMMED)


@dataclass(frozen=True)
class Business:
    province: str
    scale: str
    turnover: int
    key: int


def _population(seed: int, size: int) -> list[Business]:
    rng = random.Random(seed)
    return [
        Business(
            rng.choice(("61", "62", "64")),
            rng.choices(("micro", "small", "medium"), (20, 4, 1))[0],
            rng.randint(10**7, 10**10),
            rng.randrange(MODULUS),
        )
        for _ in range(size)
    ]


def _cell(key: Key, members: Sequence[Business], protected: bool = True) -> Cell:
    turnovers = [business.turnover for business in members]
    key_sum = sum(business.key for business in members)
    summed = Summed(len(members), sum(turnovers), sum(t * t for t in turnovers), key_sum, key_sum)
    return Cell(key, len(members), key_sum, {"turnover": summed}, protected)


def _table(population: Sequence[Business], protected: bool = True) -> list[Cell]:
    """Province x scale with every total, as GROUP BY CUBE returns it (present cells only)."""
    cells = []
    for province, scale in product(("61", "62", "64", None), ("micro", "small", "medium", None)):
        members = [
            b for b in population if province in (None, b.province) and scale in (None, b.scale)
        ]
        if members or (province, scale) == (None, None):
            cells.append(_cell((province, scale), members, protected))
    return cells


def _publish(cells: Sequence[Cell]) -> dict[Key, Published]:
    published = publish(cells, k=K, perturbation=TABLE, averages=("turnover",))
    return {cell.key: cell for cell in published}


def test_hidden_cells_show_neither_count_nor_measures() -> None:
    few = _population(1, 3)
    (shown,) = _publish([_cell(("62",), few)]).values()
    assert shown.suppressed
    assert shown.count is None
    assert shown.values == {"turnover_sum": None, "turnover_average": None}


def test_published_counts_are_within_the_noise_and_at_least_k() -> None:
    """Of 300 businesses some cells are shown, and some shown perturbed: were every cell
    hidden, or shown exact, there would be nothing here to bound."""
    population = _population(2, 300)
    truth = {cell.key: cell.count for cell in _table(population)}
    published = {cell.key: _publish([cell])[cell.key] for cell in _table(population)}
    assert any(not shown.suppressed for shown in published.values())
    assert any(not p.suppressed and p.count != truth[key] for key, p in published.items())
    for key, shown in published.items():
        if not shown.suppressed:
            assert shown.count is not None
            assert shown.count >= K
            assert abs(shown.count - truth[key]) <= TABLE.max_noise


def test_cells_the_caller_may_read_are_exact_and_never_hidden() -> None:
    population = _population(3, 40)
    cells = _table(population, protected=False)
    for cell in cells:
        shown = _publish([cell])[cell.key]
        summed = cell.sums["turnover"]
        assert not shown.suppressed
        assert shown.count == cell.count
        assert shown.values["turnover_sum"] == (summed.total if cell.count else None)


def test_an_empty_total_stays_zero() -> None:
    (shown,) = _publish([_cell((None,), [])]).values()
    assert (shown.count, shown.suppressed) == (0, False)
    assert shown.values == {"turnover_sum": None, "turnover_average": None}


def test_an_indicator_total_without_a_value_is_not_known_rather_than_zero() -> None:
    """No record with a value (none at all, or records without one): the total is None, exact
    or perturbed, as a figure cell's sum; records whose values add up to 0 make a total of 0."""
    rng = random.Random(17)
    keys = [rng.randrange(MODULUS) for _ in range(8)]
    unvalued = Tally(8, sum(keys), Summed(0, 0, 0, 0, 0))
    zeros = Tally(8, sum(keys), Summed(8, 0, 0, 0, sum(keys)))
    for perturbation in (None, TABLE):
        for tally in (NOTHING_TALLIED_WITH_NO_SUM, unvalued):
            assert indicator_total(tally, "business_volume", k=K, perturbation=perturbation) is None
    assert indicator_total(zeros, "business_volume", k=K, perturbation=None) == 0


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        publish([], k=0, perturbation=TABLE)


def test_the_same_records_get_the_same_figures_in_any_table() -> None:
    """Kalteng's micro businesses as a cell of the national table, as the only cell of a
    filtered one, and with the cells in another order: one published value."""
    population = _population(4, 200)
    national = _publish(_table(population))
    kalteng = [b for b in population if b.province == "62"]
    filtered = _publish(_table(kalteng))
    shuffled = _table(population)
    random.Random(0).shuffle(shuffled)
    again = _publish(shuffled)
    assert national[("62", "micro")] == again[("62", "micro")]
    assert national[("62", "micro")].count == filtered[("62", "micro")].count
    assert national[("62", "micro")].values == filtered[("62", "micro")].values
    assert national[("62", None)].values == filtered[(None, None)].values


def test_subtracting_published_siblings_from_a_total_no_longer_gives_the_hidden_count() -> None:
    """The attack cell suppression had to stop with complements: a row total minus its
    published parts. With perturbation it is off by the sum of several noises, and the
    attacker cannot tell when it happens to be right."""
    attempts = hits = 0
    for seed in range(300):
        population = _population(seed, 120)
        truth = {cell.key: cell.count for cell in _table(population)}
        shown = _publish(_table(population))
        for province in ("61", "62", "64"):
            row = [key for key in shown if key[0] == province and key[1] is not None]
            hidden = [key for key in row if shown[key].suppressed]
            total = shown.get((province, None))
            if len(hidden) != 1 or total is None or total.suppressed:
                continue
            published = sum(shown[key].count or 0 for key in row if key not in hidden)
            assert total.count is not None
            attempts += 1
            hits += total.count - published == truth[hidden[0]]
    assert attempts > 100
    assert hits / attempts < 0.5


def test_count_against_sum_over_average_does_not_give_the_records_without_a_value() -> None:
    """An average is the perturbed sum over a perturbed number of the records with a value. Had
    that number the count's noise, the count minus sum over average would be the exact number
    of businesses in the cell that reported no turnover."""
    rng = random.Random(3)
    hits = 0
    for _ in range(300):
        turnovers = [rng.randint(10**7, 10**9) for _ in range(27)]
        valued = rng.randrange(MODULUS)  # the 27 with a value; three more in the cell
        squares = sum(t * t for t in turnovers)
        summed = Summed(27, sum(turnovers), squares, valued, valued)
        count, values = perturbed_cell(
            TABLE, 30, valued + rng.randrange(MODULUS), {"turnover": summed}, ("turnover",)
        )
        total, mean = values["turnover_sum"], values["turnover_average"]
        assert total is not None
        assert mean is not None
        hits += count - round(total / mean) == 30 - 27
    assert hits / 300 < 0.5


def test_an_average_over_every_record_of_a_cell_divides_by_the_published_count() -> None:
    """Where every business has a value, a divisor drawn apart would be a second reading of the
    count, and two readings narrow it; the published count itself tells nothing new."""
    rng = random.Random(5)
    for _ in range(300):
        turnovers = [rng.randint(10**7, 10**9) for _ in range(rng.randint(1, 40))]
        n, key_sum = len(turnovers), rng.randrange(MODULUS)
        summed = Summed(n, sum(turnovers), sum(t * t for t in turnovers), key_sum, key_sum)
        count, values = perturbed_cell(TABLE, n, key_sum, {"turnover": summed}, ("turnover",))
        total, mean = values["turnover_sum"], values["turnover_average"]
        assert total is not None
        if count:
            assert mean == (2 * total + count) // (2 * count)


def test_the_callers_own_records_are_exact_and_move_no_noise() -> None:
    """A province's own businesses in a national cell: added exactly, the others' noise the same
    however many of its own it puts in."""
    rng = random.Random(11)
    others = [
        Business("61", "small", rng.randint(10**8, 10**10), rng.randrange(MODULUS))
        for _ in range(9)
    ]
    shown = []
    for size in range(6):
        own = [rng.randint(10**8, 10**10) for _ in range(size)]
        mine = Own(size, 0, {"turnover": Summed(size, sum(own), sum(t * t for t in own), 0, 0)})
        cell = replace(_cell(("small",), others), own=mine)
        (published,) = _publish([cell]).values()
        assert published.count is not None
        total = published.values["turnover_sum"]
        assert total is not None
        shown.append((published.count - size, total - sum(own)))
    assert len(set(shown)) == 1


def test_own_records_the_caller_may_not_read_are_perturbed_on_a_key_of_their_own() -> None:
    """A narrowed token or a BUMD: its jurisdiction's records are perturbed too, but apart, so
    the others' part of the cell is the same however the own records change, and each part is
    held to the threshold."""
    rng = random.Random(17)
    others = [Business("61", "small", 10**9, rng.randrange(MODULUS)) for _ in range(9)]
    alone = _publish([_cell(("small",), others)])[("small",)]
    assert alone.count is not None
    for size in range(5, 12):
        keys = [rng.randrange(MODULUS) for _ in range(size)]
        mine = Own(size, sum(keys), exact=False)
        cell = replace(_cell(("small",), others), own=mine)
        (published,) = _publish([cell]).values()
        assert published.count == alone.count + TABLE.count(size, sum(keys))
    few = replace(_cell(("small",), others), own=Own(2, 12345, exact=False))
    assert _publish([few])[("small",)].suppressed


def test_the_callers_own_records_do_not_lift_a_small_cell_of_others_over_k() -> None:
    lone = Business("61", "medium", 5 * 10**10, 12345)
    own = Own(20, 0, {"turnover": Summed(20, 20 * 10**10, 20 * 10**20, 0, 0)})
    (published,) = _publish([replace(_cell(("medium",), [lone]), own=own)]).values()
    assert published.suppressed
    assert published.count is None
    assert published.values["turnover_sum"] is None


def test_with_its_own_part_apart_a_cell_hides_alike_whether_others_hold_none_or_one() -> None:
    """A guarantor's own part is published apart; the whole cell is then hidden as much when
    no rival has a record in it as when one has, and its own part reads the same in both."""
    lone = Business("62", "small", 3 * 10**8, 12345)
    own = Own(3, 0, {"turnover": Summed(3, 3 * 10**8, 3 * 10**16, 0, 0)})
    cells = [
        replace(_cell((scale,), members), own=own) for scale, members in (("a", []), ("b", [lone]))
    ]
    alone, beside = publish(cells, k=K, perturbation=TABLE, averages=("turnover",), own_apart=True)
    for published in (alone, beside):
        assert (published.suppressed, published.count, published.own_count) == (True, None, 3)
        assert published.own_values == {"turnover_sum": 3 * 10**8, "turnover_average": 10**8}
    # Without it, the own records alone were shown and the rival's lone one hid the cell.
    alone, beside = publish(cells, k=K, perturbation=TABLE, averages=("turnover",))
    assert (alone.suppressed, beside.suppressed) == (False, True)


def test_with_no_own_part_apart_a_hidden_cell_is_left_out_and_the_rest_unchanged() -> None:
    """A guarantor with no guarantees in a table: the cells shown are shown as to anyone, and
    a hidden one, which would only say that others guarantee there, is not published."""
    table = _table(_population(7, 60))

    def whole(own_apart: bool) -> list[tuple[Key, int | None, object, bool]]:
        published = publish(table, k=K, perturbation=TABLE, own_apart=own_apart)
        return [(cell.key, cell.count, cell.values, cell.suppressed) for cell in published]

    everyones = whole(own_apart=False)
    assert any(suppressed for *_, suppressed in everyones)
    assert whole(own_apart=True) == [cell for cell in everyones if not cell[3]]


def _members(cell: Cell) -> list[Published]:
    return publish([cell], k=K, perturbation=TABLE, averages=("turnover",), members_only=True)


def test_in_a_table_of_members_a_part_too_small_to_show_is_left_out_as_an_empty_one() -> None:
    """A programme's participants: a BUMD's own province holding one beside thirty of the
    others', a province's own three beside two of the others', each published exactly as if
    the small part held none; where no part may be shown, no cell at all, where a table of
    everyone would show it suppressed."""
    rng = random.Random(23)
    many = [Business("61", "micro", rng.randint(10**7, 10**9), rng.randrange(MODULUS))]
    many += [replace(many[0], key=rng.randrange(MODULUS)) for _ in range(29)]
    two = many[:2]  # two records are never shown: their count is perturbed to at most 4
    key = rng.randrange(MODULUS)
    lone = Own(1, key, {"turnover": Summed(1, 10**9, 10**18, key, key)}, exact=False)
    three = Own(3, 0, {"turnover": Summed(3, 3 * 10**8, 3 * 10**16, 0, 0)})
    for cell, empty in [
        (
            replace(_cell(("micro",), many), own=lone),
            replace(
                _cell(("micro",), many), own=Own(0, 0, {"turnover": NOTHING_SUMMED}, exact=False)
            ),
        ),
        (replace(_cell(("micro",), two), own=three), replace(_cell(("micro",), []), own=three)),
    ]:
        (shown,) = _members(cell)
        assert not shown.suppressed
        assert [shown] == _members(empty)
    hidden = replace(_cell(("micro",), two), own=lone)
    assert _members(hidden) == []
    assert _publish([hidden])[("micro",)].suppressed


def test_an_indicator_over_a_wider_region_is_its_figure_cell() -> None:
    """A province's national indicator and the national figure cell of the same records, its
    own part exact in both: one value, or the two would be two readings of the others' noise."""
    rng = random.Random(13)
    for _ in range(200):
        others = [Business("61", "small", 10**9, rng.randrange(MODULUS)) for _ in range(9)]
        own = rng.randint(0, 12)
        cell = replace(_cell(("small",), others), own=Own(own))
        (published,) = _publish([cell]).values()
        whole = Tally(len(others) + own, sum(b.key for b in others) + rng.randrange(MODULUS))
        mine = Tally(own, whole.key_sum - cell.key_sum)
        assert indicator_count(whole, k=K, perturbation=TABLE, own=mine) == published.count


def test_an_indicator_of_members_answers_alike_for_none_and_too_few() -> None:
    """MIKRO_NAIK_KELAS counts a year's graduates, members as `graduations`' cells are: to a
    perturbed reader a place of none and one of one or two answer alike, None, as the figures
    leave both out; a province's own graduates, exact, show alike beside the others' none or
    few; a reader of the records gets its exact count, 0 included."""
    rng = random.Random(29)
    none = Tally(0, 0)
    for _ in range(200):
        few = Tally(rng.randint(1, 2), rng.randrange(MODULUS))
        for tally in (none, few):
            assert indicator_count(tally, k=K, perturbation=TABLE, members_only=True) is None
        mine = Tally(rng.randint(1, 9), rng.randrange(MODULUS))
        whole = Tally(mine.count + few.count, mine.key_sum + few.key_sum)
        beside = [
            indicator_count(tally, k=K, perturbation=TABLE, own=mine, members_only=True)
            for tally in (mine, whole)
        ]
        assert beside == [mine.count, mine.count]
    assert indicator_count(none, k=K, perturbation=None, members_only=True) == 0


def test_a_share_of_members_answers_alike_for_none_and_too_few() -> None:
    """UKM_PROPORSI's part, the small and medium businesses, is held as members: to a perturbed
    reader a share of none and one of one or two answer alike, None; read exactly, 0 is 0."""
    rng = random.Random(31)
    whole = Tally(40, rng.randrange(MODULUS))
    for _ in range(200):
        few = Tally(rng.randint(1, 2), rng.randrange(MODULUS))
        for part in (Tally(0, 0), few):
            assert indicator_share(part, whole, k=K, perturbation=TABLE, members_only=True) is None
    assert indicator_share(Tally(0, 0), whole, k=K, perturbation=None, members_only=True) == 0


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**6),
    st.integers(min_value=K + TABLE.max_noise, max_value=60),
)
def test_no_protected_small_cell_is_published_and_no_published_cell_is_below_k(
    seed: int, size: int
) -> None:
    """At least k + max_noise businesses, so the table's total is always shown (a table all
    hidden would check nothing); its province and scale cells are often below k."""
    cells = _table(_population(seed, size))
    published = _publish(cells)
    assert any(not shown.suppressed for shown in published.values())
    for cell in cells:
        shown = published[cell.key]
        if not shown.suppressed:
            assert shown.count == 0 or shown.count >= K
            assert cell.count > 0 or shown.count == 0


def test_a_share_is_hidden_when_either_count_is() -> None:
    few, many = Tally(2, 123), Tally(400, 456)
    assert indicator_share(few, many, k=K, perturbation=TABLE) is None
    exact = indicator_share(few, many, k=K, perturbation=None)
    assert str(exact) == "0.50"
