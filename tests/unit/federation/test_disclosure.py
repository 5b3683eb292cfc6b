"""A site's disclosure control: what leaves never derives from a cell below k."""

import pytest
from giftcloud_api.federation.criteria import Key
from giftcloud_api.federation.disclosure import (
    BELOW_K,
    RELEASED,
    SECONDARY,
    Released,
    lines,
    noisy,
    protect,
    protect_noisy,
)
from hypothesis import given, settings
from hypothesis import strategies as st

K = 10


def _released(answer: Released) -> dict[Key, int]:
    return {cell.key: cell.count for cell in answer.cells if cell.count is not None}


def test_a_cell_of_three_is_said_below_k_and_the_next_smallest_protects_it() -> None:
    cells = {("F",): 3, ("M",): 40, ("O",): 12}
    answer = protect(cells, 55, K)
    rules = {cell.key: cell.rule for cell in answer.cells}
    assert rules == {("F",): BELOW_K, ("M",): RELEASED, ("O",): SECONDARY}
    assert _released(answer) == {("M",): 40}
    # the total minus the released cells is 15: two cells, neither found
    assert answer.total == 55 and answer.total - 40 == 3 + 12


def test_a_total_below_k_releases_nothing() -> None:
    answer = protect({("CT",): 4, ("MR",): 3}, 7, K)
    assert answer.total is None and _released(answer) == {}


def test_two_small_cells_whose_sum_is_below_k_take_a_third() -> None:
    answer = protect({("a",): 2, ("b",): 3, ("c",): 30, ("d",): 50}, 85, K)
    assert _released(answer) == {("d",): 50}


def test_a_two_way_table_protects_rows_and_columns() -> None:
    cells = {("F", "CT"): 3, ("F", "MR"): 20, ("M", "CT"): 25, ("M", "MR"): 30}
    answer = protect(cells, 78, K)
    hidden = {cell.key for cell in answer.cells if cell.count is None}
    # the classic rectangle: every row and column with a hidden cell has two
    assert hidden == set(cells) or len(hidden) >= 4 - 1
    for line in lines(cells):
        inside = [key for key in line if key in hidden]
        assert len(inside) != 1


def test_the_same_table_gets_the_same_answer() -> None:
    cells = {("a",): 5, ("b",): 5, ("c",): 12, ("d",): 12}
    assert protect(cells, 34, K) == protect(dict(reversed(list(cells.items()))), 34, K)


def test_noise_is_opendp_s_and_below_k_cells_are_not_even_listed() -> None:
    cells = {("a",): 1000, ("b",): 2}
    answer = protect_noisy(noisy(cells, epsilon=1.0, sensitivity=1), K)
    assert [cell.key for cell in answer.cells] == [("a",)]
    assert 950 < (answer.cells[0].count or 0) < 1050
    many = [noisy({("a",): 100}, 0.5, 1)[("a",)] for _ in range(40)]
    assert len(set(many)) > 1  # noise is really added


tables = st.one_of(
    st.dictionaries(
        st.tuples(st.sampled_from("abcdefgh")), st.integers(1, 60), min_size=1, max_size=8
    ),
    st.dictionaries(
        st.tuples(st.sampled_from("abcd"), st.sampled_from("wxyz")),
        st.integers(1, 40),
        min_size=1,
        max_size=16,
    ),
)


@settings(max_examples=400, deadline=None)
@given(cells=tables, k=st.integers(5, 20))
def test_no_released_value_derives_from_a_cell_below_k(cells: dict[Key, int], k: int) -> None:
    total = sum(cells.values())
    answer = protect(cells, total, k)
    shown = _released(answer)
    assert all(count >= k for count in shown.values())
    assert all(cells[key] == count for key, count in shown.items())
    if answer.total is not None:
        assert answer.total >= k
        left = answer.total - sum(shown.values())
        hidden = [key for key in cells if key not in shown]
        # what the total and released cells leave is a sum of two or more cells, >= k
        assert not hidden or (len(hidden) >= 2 and left >= k)
    for line in lines(cells):
        hidden = [key for key in line if key not in shown]
        # no line (whose total another question could give) has one hidden cell,
        # nor hidden cells whose sum is below k, unless all of it is hidden
        if hidden and len(hidden) < len(line):
            assert len(hidden) >= 2 and sum(cells[key] for key in hidden) >= k


@pytest.mark.parametrize("k", [5, 10])
def test_a_cell_below_k_is_never_released(k: int) -> None:
    answer = protect({("a",): k - 1, ("b",): 100, ("c",): 100}, 100 + 100 + k - 1, k)
    assert ("a",) not in _released(answer)
