"""Priority levels by ecodask's own exact Fisher-Jenks equal mapclassify's FisherJenks classes
(the reference implementation the seed's natural-breaks levels were first computed with)."""

from __future__ import annotations

import mapclassify
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ecodask.science.compensation import natural_break_levels


@settings(max_examples=150, deadline=None, derandomize=True)
@given(values=st.lists(st.floats(0, 1e9, allow_nan=False, allow_subnormal=False), min_size=3, max_size=80),
       k=st.integers(2, 7), decimals=st.sampled_from([None, 0, 2]))
def test_levels_equal_mapclassify(values: list[float], k: int, decimals: int | None) -> None:
    v = np.asarray(values)
    if decimals is not None:
        v = np.round(v, decimals)
    k_eff = min(k, np.unique(v).size)
    got = natural_break_levels(v, k)
    if k_eff == 1:
        assert (got == 1).all()
        return
    expected = k_eff - np.asarray(mapclassify.FisherJenks(v, k=k_eff).yb)
    assert np.array_equal(got, expected)


def test_levels_by_hand() -> None:
    # Three clear groups: the highest group is level 1.
    v = np.array([1.0, 1.1, 0.9, 10.0, 10.5, 100.0, 101.0])
    assert natural_break_levels(v, 3).tolist() == [3, 3, 3, 2, 2, 1, 1]
