"""Discretization for the Geographical Detector: natural breaks against brute force, the other
methods by hand, the optimal (method, k) by q, and degenerate input."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecodask.chunked.geodetector import optimal_discretization
from ecodask.errors import InputError
from ecodask.science.discretize import breaks, classify, natural_breaks
from ecodask.science.geodetector import q_value, stratum_sums


def _ssd(groups: list[np.ndarray]) -> float:
    return float(sum(((g - g.mean()) ** 2).sum() for g in groups))


@settings(max_examples=60, deadline=None)
@given(values=st.lists(st.integers(0, 40), min_size=2, max_size=12), k=st.integers(2, 5))
def test_natural_breaks_are_the_optimal_partition(values, k) -> None:
    x = np.asarray(values, dtype=float)
    distinct = np.unique(x)
    if k > len(distinct):
        return
    got = classify(x, natural_breaks(x, k))
    assert len(np.unique(got)) == k
    best = np.inf  # brute force over every split of the sorted distinct values into k classes
    for cuts in combinations(range(1, len(distinct)), k - 1):
        edges = distinct[[c - 1 for c in cuts]]
        best = min(best, _ssd([x[classify(x, edges) == c] for c in range(k)]))
    assert _ssd([x[got == c] for c in range(k)]) == pytest.approx(best, abs=1e-9)


def test_weighted_natural_breaks_equal_the_expanded_data() -> None:
    v, w = np.array([1.0, 2.0, 10.0, 11.0, 30.0]), np.array([3, 1, 2, 5, 1])
    np.testing.assert_array_equal(natural_breaks(v, 3, w), natural_breaks(np.repeat(v, w), 3))


def test_equal_quantile_geometric_sd_by_hand() -> None:
    x = np.arange(1.0, 9.0)  # 1..8
    np.testing.assert_allclose(breaks(x, 4, "equal"), [2.75, 4.5, 6.25])
    # R's quantile(1:8, c(.25, .5, .75)) (type 7, GD's and gdverse's): 2.75 4.50 6.25
    np.testing.assert_allclose(breaks(x, 4, "quantile"), [2.75, 4.5, 6.25])
    np.testing.assert_array_equal(breaks(x, 4, "quantile", quantile_rule="type1"), [2.0, 4.0, 6.0])
    np.testing.assert_allclose(breaks(x, 3, "geometric"), [2.0, 4.0])  # 1 x 8^(1/3), 1 x 8^(2/3)
    sd = x.std()
    np.testing.assert_allclose(breaks(x, 4, "sd"), [4.5 - sd, 4.5, 4.5 + sd])
    assert classify(x, [2.0, 4.0, 6.0]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_degenerate_discretizations_are_named() -> None:
    with pytest.raises(InputError, match="larger than the number of distinct values"):
        breaks(np.array([1.0, 1.0, 2.0]), 3, "equal", name="slope")
    with pytest.raises(InputError, match="positive"):
        breaks(np.array([0.0, 1.0, 2.0, 3.0]), 3, "geometric")
    with pytest.raises(InputError, match="finite"):
        breaks(np.array([0.0, np.nan, 2.0, 3.0]), 3, "equal")


def test_optimal_discretization_takes_the_highest_q() -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(1, 100, 2000)
    y = np.where(x > 70, 5.0, 0.0) + rng.normal(0, 1, x.size)
    table = optimal_discretization(y, x, ks=range(3, 7))
    best = table[table.optimal].iloc[0]
    assert best.q == table.q.max()
    q = q_value(stratum_sums(y, classify(x, breaks(x, int(best.k), best.method))))
    assert best.q == pytest.approx(q)
    assert table.q.notna().all() and len(table) == 5 * 4


@pytest.mark.parametrize("seed", range(5))
def test_quantile_breaks_are_r_type_7_on_weighted_values(seed: int) -> None:
    """On distinct values with counts (fine-bin centres), the breaks are R type 7 quantiles of the
    sample they stand for: numpy's ``quantile`` with method "linear" is that rule, type 1 its
    "inverted_cdf"."""
    rng = np.random.default_rng(seed)
    v = np.unique(rng.normal(100, 30, 40).round(2))
    w = rng.integers(1, 6, len(v))
    sample = np.repeat(v, w)
    for k in (3, 4, 5, 7, 10):
        probs = np.arange(1, k) / k
        np.testing.assert_allclose(breaks(v, k, "quantile", w), np.quantile(sample, probs, method="linear"),
                                   rtol=1e-12)
        np.testing.assert_allclose(breaks(v, k, "quantile", w, quantile_rule="type1"),
                                   np.quantile(sample, probs, method="inverted_cdf"), rtol=1e-12)
