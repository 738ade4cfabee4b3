"""The chunked Geographical Detector against direct numpy/scipy computations on random data and
random chunkings (flox-style property tests), on tables and on 2-D grids with no-data cells."""

from __future__ import annotations

from itertools import combinations

import dask.array as da
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ecodask.chunked.geodetector import detect, detect_arrays, detect_table
from ecodask.errors import InputError
from ecodask.science.discretize import classify


def _q(y: np.ndarray, strata: np.ndarray) -> float:
    """1 - SSW/SST by direct group variances."""
    sst = ((y - y.mean()) ** 2).sum()
    ssw = sum(((y[strata == h] - y[strata == h].mean()) ** 2).sum() for h in np.unique(strata))
    return 1 - ssw / sst


def _overlay(a: np.ndarray, b: np.ndarray, drop: bool) -> tuple[np.ndarray, np.ndarray]:
    codes = a.astype(np.int64) * 1000 + b
    if not drop:
        return codes, np.ones(codes.size, bool)
    labels, counts = np.unique(codes, return_counts=True)
    return codes, np.isin(codes, labels[counts > 1])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(20, 400), levels=st.lists(st.integers(2, 7), min_size=2, max_size=3),
       chunk=st.integers(1, 150), drop=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_chunked_detectors_equal_direct_numpy(n, levels, chunk, drop, seed) -> None:
    rng = np.random.default_rng(seed)
    xs = {f"x{i}": rng.integers(0, k, n) * 3 + 1 for i, k in enumerate(levels)}  # codes 1, 4, 7, ...
    y = rng.normal(size=n) + sum(x * rng.uniform(0, 1) for x in xs.values()) + 1e4
    if len({len(np.unique(x)) for x in xs.values()} & {1}):
        return
    out = detect(y, xs, chunk_rows=chunk, drop_singletons=drop)
    f = out["factor"].set_index("factor")
    for name, x in xs.items():
        assert f.loc[name, "q"] == pytest.approx(_q(y, x), rel=1e-9, abs=1e-12)
    for row in out["interaction"].itertuples():
        codes, keep = _overlay(xs[row.factor_a], xs[row.factor_b], drop)
        if keep.sum() > 1 and y[keep].var() > 0:
            assert row.q_ab == pytest.approx(_q(y[keep], codes[keep]), rel=1e-9, abs=1e-12)
        else:
            assert np.isnan(row.q_ab)
    for row in out["risk"].itertuples():
        a, b = y[xs[row.factor] == row.stratum_a], y[xs[row.factor] == row.stratum_b]
        assert (row.n_a, row.n_b) == (a.size, b.size)
        assert row.mean_a == pytest.approx(a.mean(), rel=1e-12)
        if a.size > 1 and b.size > 1 and a.var() + b.var() > 0:
            c = y.mean()  # t does not depend on a shift; centring keeps the reference precise
            ref = stats.ttest_ind(a - c, b - c, equal_var=False)
            assert row.t == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
            assert row.p == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-15)
    ssw = {k: sum(((y[x == h] - y[x == h].mean()) ** 2).sum() for h in np.unique(x)) for k, x in xs.items()}
    for row in out["ecological"].itertuples():
        if ssw[row.factor_b] > 0:
            assert row.F == pytest.approx(ssw[row.factor_a] / ssw[row.factor_b], rel=1e-9)  # N_a = N_b


@settings(max_examples=15, deadline=None)
@given(method=st.sampled_from(["equal", "quantile", "natural", "geometric", "sd"]), k=st.integers(3, 10),
       chunk=st.integers(50, 3000), seed=st.integers(0, 2**32 - 1))
def test_discretized_q_is_exact_for_the_reported_breaks(method, k, chunk, seed) -> None:
    """Equal-width fine bins: the strata are whole bins, and q is the exact q of the reported breaks."""
    rng = np.random.default_rng(seed)
    x = rng.gamma(2.0, 30.0, 6000) + 0.5
    y = np.sqrt(x) + rng.normal(size=x.size)
    out = detect_arrays(da.from_array(y, chunks=chunk), {"x": da.from_array(x, chunks=chunk)},
                        discretize=method, k=k)
    cand = out["discretization"].iloc[0]
    assert cand.optimal and cand.bin_resolution.startswith("bins")
    edges = np.array([float(e) for e in cand.breaks.split(",")])
    # A bin holds lo + i w <= x < lo + (i + 1) w; the breaks are bin edges, so x < edge decides.
    strata = np.searchsorted(edges, x, side="right")
    assert len(np.unique(strata)) == cand.strata
    assert out["factor"].q.iloc[0] == pytest.approx(_q(y, strata), rel=1e-9)
    assert cand.q == out["factor"].q.iloc[0]
    if method == "equal":  # every k from 3 to 10 divides the fine bins: the breaks are exact
        np.testing.assert_allclose(edges, x.min() + (x.max() - x.min()) * np.arange(1, k) / k, rtol=1e-9)


def test_small_tables_get_exact_breaks_and_optimal_takes_the_highest_q() -> None:
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 100, 3000).round(1)
    y = np.where(x > 62.3, 4.0, 0.0) + rng.normal(size=x.size)
    out = detect(y, {"x": x}, discretize="optimal", distinct={"x": np.unique(x)})
    cand = out["discretization"]
    assert len(cand) == 5 * 8 and (cand.bin_resolution == "exact values").all()
    best = cand[cand.optimal].iloc[0]
    assert best.q == cand.q.max()
    edges = np.array([float(e) for e in best.breaks.split(",")])
    assert out["factor"].q.iloc[0] == pytest.approx(_q(y, classify(x, edges)), rel=1e-12)
    assert out["factor"].strata.iloc[0] == best.strata


@settings(max_examples=10, deadline=None)
@given(cy=st.integers(3, 17), cx=st.integers(3, 17), seed=st.integers(0, 2**32 - 1))
def test_grid_with_no_data_cells(cy, cx, seed) -> None:
    """On a 2-D grid the cells where y or a factor is NaN (outside the region) are left out."""
    rng = np.random.default_rng(seed)
    shape = (29, 31)
    a = rng.integers(1, 5, shape).astype(np.float32)
    b = rng.integers(0, 3, shape).astype(np.float32)
    y = a * 2 + b + rng.normal(size=shape)
    y[:4, :] = np.nan
    a[:, -3:] = np.nan
    out = detect_arrays(da.from_array(y, chunks=(cy, cx)),
                        {"a": da.from_array(a, chunks=(cy, cx)), "b": da.from_array(b, chunks=(cy, cx))},
                        dropna=True)
    keep = np.isfinite(y) & np.isfinite(a)
    assert out["factor"].rows_dropped.iloc[0] == (~keep).sum()
    # Reported apart: cells without y (outside the region), cells with y but without a factor.
    assert out["factor"].rows_without_y.iloc[0] == (~np.isfinite(y)).sum() == 4 * 31
    assert out["factor"].rows_without_a_factor.iloc[0] == (np.isfinite(y) & ~np.isfinite(a)).sum() == 25 * 3
    assert out["factor"].n.iloc[0] == keep.sum()
    q = out["factor"].set_index("factor").q
    assert q["a"] == pytest.approx(_q(y[keep], a[keep]), rel=1e-9)
    assert q["b"] == pytest.approx(_q(y[keep], b[keep]), rel=1e-9)


def test_degenerate_inputs() -> None:
    y = np.arange(12.0)
    with pytest.raises(InputError, match=r"slope = 'NaN': 1 missing values"):
        detect(y, {"slope": np.where(y == 3, np.nan, y % 3)})
    out = detect(y, {"slope": np.where(y == 3, np.nan, y % 3)}, dropna=True)
    assert out["factor"].n.iloc[0] == 11 and out["factor"].rows_dropped.iloc[0] == 1
    with pytest.raises(InputError, match=r"y = .inf.: 2 infinite values \(leave those rows out"):
        detect(np.where(y > 9, np.inf, y), {"slope": y % 3})
    with pytest.raises(InputError, match=r"y = 'NaN': 1 missing values \(NaN\) and 1 infinite values"):
        detect(np.where(y == 0, np.nan, np.where(y == 1, -np.inf, y)), {"slope": y % 3})
    with pytest.raises(InputError, match="y has no variance"):
        detect(np.ones(12), {"a": y % 2})
    with pytest.raises(InputError, match="at least 2 strata"):
        detect(y, {"a": np.zeros(12)})
    with pytest.raises(InputError, match="discretize it"):
        detect(np.arange(30_000.0), {"t": np.linspace(0, 1, 30_000) ** 2})
    with pytest.raises(InputError, match="no \\(method, k\\) gives two strata"):
        detect(y, {"a": y % 2}, discretize="quantile", k=3)  # two distinct values, three classes
    out = detect(y, {"a": y % 3}, discretize="optimal", ks=[2, 3, 4])
    cand = out["discretization"]
    assert cand[cand.k == 4].note.str.contains("larger than the number of distinct values").all()
    assert cand[cand.k == 4].q.isna().all()
    # One-observation strata count in the factor detector; overlays drop them by default.
    pair = detect(y, {"a": (y > 0).astype(int), "b": y % 2})["interaction"].iloc[0]
    assert pair.strata_ab == 2  # (0, 0) is a single observation; (1, 0) and (1, 1) are left
    assert detect(y, {"a": (y > 0).astype(int), "b": y % 2},
                  drop_singletons=False)["interaction"].iloc[0].strata_ab == 3
    with pytest.raises(InputError, match="shape differs"):
        detect_arrays(y, {"a": np.arange(5)})


def test_conventions_are_in_every_table() -> None:
    rng = np.random.default_rng(0)
    xs = {"a": rng.integers(0, 3, 200), "b": rng.integers(0, 4, 200)}
    out = detect(rng.normal(size=200), xs, variance="sample", drop_singletons=False, alpha=0.1)
    for name, df in out.items():
        assert {"variance", "drop_singletons", "alpha", "rows_dropped"} <= set(df.columns), name
        if len(df):
            assert (df.variance == "sample").all() and (df.alpha == 0.1).all()
    assert len(out["risk"]) == 3 + 6
    assert [tuple(r) for r in out["interaction"][["factor_a", "factor_b"]].to_numpy()] == list(
        combinations(xs, 2))


@pytest.mark.parametrize("column", ["Tempchange", "Precipitation", "GDP", "Popdensity"])
def test_quantile_q_on_gd_s_ndvi_example_follows_r_type_7(column: str) -> None:
    """GD's ndvi_40 example (GD 10.8), a continuous factor cut into 5 quantile classes as GD's
    ``disc(..., method = "quantile")`` does (R's ``quantile()``, type 7; classes ``(a, b]``): q equals
    the formula on those classes, computed here with numpy alone; type 1 is the other rule."""
    import pandas as pd

    from conftest import shared

    t = pd.read_csv(shared("reference/geodetector/ndvi_40_GD_10.8.csv"))
    y, x = t["NDVIchange"].to_numpy(float), t[column].to_numpy(float)

    def q_of(inner: np.ndarray) -> float:
        strata = np.searchsorted(inner, x, side="left")
        within = sum(((y[strata == h] - y[strata == h].mean()) ** 2).sum() for h in np.unique(strata))
        return 1 - within / ((y - y.mean()) ** 2).sum()

    probs = np.arange(1, 5) / 5
    for rule, method in (("type7", "linear"), ("type1", "inverted_cdf")):
        out = detect_table(t, "NDVIchange", [column], discretize="quantile", k=5, quantile_rule=rule)
        expect = q_of(np.quantile(x, probs, method=method))
        assert out["factor"]["q"].iloc[0] == pytest.approx(expect, rel=1e-9)
        note = out["discretization"]["note"].iloc[0]
        assert ("R type 7" if rule == "type7" else "R type 1") in note
