"""Small-cell suppression on hand-worked tables, and the subtraction attack against it."""

from __future__ import annotations

import random
from itertools import product

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.suppression import Cell, Published, Reason, equations, recoverable, suppress


def _table(counts: dict[tuple[str, str], int], protected: bool = True) -> list[Cell]:
    """A 2-D table (province x scale) with row, column and grand totals, as CUBE returns it."""
    rows = sorted({row for row, _ in counts})
    columns = sorted({column for _, column in counts})
    cells = [Cell(key, count, {"sum": count * 10}, protected) for key, count in counts.items()]
    for row in rows:
        total = sum(counts.get((row, column), 0) for column in columns)
        cells.append(Cell((row, None), total, {"sum": total * 10}, protected))
    for column in columns:
        total = sum(counts.get((row, column), 0) for row in rows)
        cells.append(Cell((None, column), total, {"sum": total * 10}, protected))
    grand = sum(counts.values())
    cells.append(Cell((None, None), grand, {"sum": grand * 10}, protected))
    return cells


def _hidden(published: list[Published]) -> dict[tuple[str | None, ...], Reason | None]:
    return {cell.key: cell.reason for cell in published if cell.suppressed}


def test_one_small_province_hides_the_next_smallest_so_the_total_cannot_reveal_it() -> None:
    cells = [
        Cell(("61",), 40),
        Cell(("62",), 3),
        Cell(("64",), 25),
        Cell((None,), 68),
    ]
    published = suppress(cells, k=5)
    assert _hidden(published) == {("62",): Reason.PRIMARY, ("64",): Reason.SECONDARY}
    assert recoverable(published) == []


def test_the_total_is_hidden_when_no_sibling_may_be() -> None:
    # 64 is the caller's own province (unprotected), so only the total can hide 62's value.
    published = suppress(
        [Cell(("62",), 2), Cell(("64",), 10, protected=False), Cell((None,), 12)], k=5
    )
    assert _hidden(published) == {("62",): Reason.PRIMARY, (None,): Reason.SECONDARY}
    assert recoverable(published) == []


def test_hidden_cells_show_neither_count_nor_measures() -> None:
    (small, _, _) = suppress(
        [Cell(("62",), 2, {"sum": 7}), Cell(("64",), 9, {"sum": 1}), Cell((None,), 11, {"sum": 8})]
    )
    assert small.count is None
    assert small.values == {"sum": None}


def test_a_small_cell_in_a_two_way_table_hides_a_rectangle() -> None:
    # province x scale, one small cell (62, medium) = 2:
    #            micro  small  medium | total
    #   61         50     12      8   |   70
    #   62         30      9      2   |   41      <- primary
    #   64         44     11      6   |   61
    #   total     124     32     16   |  172
    # Row 62 and column "medium" each have one hidden member, so each gets a complement: the
    # smallest other protected part, (62, small) = 9 and (64, medium) = 6. Row 64 and column
    # "small" then have one hidden member each and share (64, small) = 11, closing the
    # rectangle: four hidden cells, every row and column with two unknowns or none.
    counts = {
        ("61", "micro"): 50, ("61", "small"): 12, ("61", "medium"): 8,
        ("62", "micro"): 30, ("62", "small"): 9, ("62", "medium"): 2,
        ("64", "micro"): 44, ("64", "small"): 11, ("64", "medium"): 6,
    }  # fmt: skip
    published = suppress(_table(counts), k=5)
    assert _hidden(published) == {
        ("62", "medium"): Reason.PRIMARY,
        ("62", "small"): Reason.SECONDARY,
        ("64", "medium"): Reason.SECONDARY,
        ("64", "small"): Reason.SECONDARY,
    }
    assert recoverable(published) == []


def test_cells_the_caller_may_read_are_neither_hidden_nor_used_as_complements() -> None:
    cells = [
        Cell(("61",), 2),  # protected and small: hidden
        Cell(("62",), 3, protected=False),  # the caller reads 62's records anyway
        Cell(("64",), 30),
        Cell((None,), 35),
    ]
    hidden = _hidden(suppress(cells, k=5))
    assert hidden == {("61",): Reason.PRIMARY, ("64",): Reason.SECONDARY}


def test_zero_cells_are_published_and_not_chosen_while_others_can_be() -> None:
    cells = [Cell(("61",), 0), Cell(("62",), 1), Cell(("64",), 7), Cell((None,), 8)]
    hidden = _hidden(suppress(cells, k=5))
    assert hidden == {("62",): Reason.PRIMARY, ("64",): Reason.SECONDARY}


def test_the_choice_does_not_depend_on_the_order_of_the_cells() -> None:
    counts = {(r, c): (hash((r, c)) % 9) for r, c in product("ABCD", "wxyz")}
    cells = _table(counts)
    expected = _hidden(suppress(cells))
    for seed in range(5):
        shuffled = cells[:]
        random.Random(seed).shuffle(shuffled)
        assert _hidden(suppress(shuffled)) == expected


def test_equations_cover_every_total_along_every_dimension() -> None:
    cells = _table({("61", "micro"): 1, ("61", "small"): 2, ("62", "micro"): 3})
    found = {(eq.total, eq.parts) for eq in equations([cell.key for cell in cells])}
    assert ((None, None), (("61", None), ("62", None))) in found
    assert ((None, None), ((None, "micro"), (None, "small"))) in found
    assert (("61", None), (("61", "micro"), ("61", "small"))) in found


def test_k_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        suppress([], k=0)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.tuples(st.sampled_from("ABCDE"), st.sampled_from("vwxyz")),
        st.integers(min_value=0, max_value=12),
        min_size=1,
    ),
    st.integers(min_value=2, max_value=6),
)
def test_no_hidden_cell_is_recoverable_and_published_counts_are_true(
    counts: dict[tuple[str, str], int], k: int
) -> None:
    cells = _table(counts)
    published = suppress(cells, k=k)
    assert recoverable(published) == []
    for cell, shown in zip(cells, published, strict=True):
        assert shown.key == cell.key
        if not shown.suppressed:
            assert shown.count == cell.count
            assert not (cell.protected and 0 < cell.count < k)


def test_the_same_grouping_queried_again_hides_the_same_cells() -> None:
    counts = {(r, c): (ord(r) * 7 + ord(c)) % 11 for r, c in product("ABC", "xyz")}
    first = _hidden(suppress(_table(counts)))
    second = _hidden(suppress(list(reversed(_table(counts)))))
    assert first == second
