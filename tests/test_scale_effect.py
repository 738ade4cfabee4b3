"""The scale effect of q (issue: several analysis cell sizes from one pass), the confidence interval of q
and the significance of an interaction."""

from __future__ import annotations

import dask
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from ecodask.kernels.coarsen import block_density, block_mean, block_mode
from ecodask.science.geodetector import factor_test, q_interval, stratum_sums
from ecodask.science.scale import driver_levels_off, levels_off, scale_summary


def test_blocks_worked_by_hand() -> None:
    a = np.array([[1, 2, 3], [4, np.nan, 6], [7, 8, 9.0]])
    # 2 x 2 blocks, partial at the right and bottom edges
    assert block_mean(a, 2) == pytest.approx(np.array([[7 / 3, 4.5], [7.5, 9.0]]))
    codes = np.array([[1, 1, 2], [2, np.nan, 3], [3, 3, np.nan]])
    got = block_mode(codes, 2)  # [1, 1, 2, nan] -> 1; [2, 3] tie -> 2; [3, 3] -> 3; [nan] -> nan
    assert got[:, :1].ravel().tolist() == [1.0, 3.0] and got[0, 1] == 2.0 and np.isnan(got[1, 1])
    esv = np.array([[100.0, 50.0], [np.nan, 30.0]])
    pixels = np.array([[10, 5], [0, 3]])
    # (100 + 50 + 30) CNY/yr over 18 px x 0.09 ha
    assert block_density(esv, pixels, 2, 0.09)[0, 0] == pytest.approx(180 / (18 * 0.09))
    assert np.isnan(block_density(esv * np.nan, pixels * 0, 2, 0.09)[0, 0])


def _plain_blocks(a: np.ndarray, s: int, fill: float) -> np.ndarray:
    """(R, C, s * s): ``a`` padded with ``fill`` to multiples of ``s``, one block a row."""
    a = np.pad(a, ((0, -a.shape[0] % s), (0, -a.shape[1] % s)), constant_values=fill)
    r, c = a.shape[0] // s, a.shape[1] // s
    return a.reshape(r, s, c, s).transpose(0, 2, 1, 3).reshape(r, c, s * s)


@settings(max_examples=150, deadline=None)
@given(shape=st.tuples(st.integers(1, 23), st.integers(1, 23)), s=st.integers(1, 6),
       seed=st.integers(0, 2**32 - 1), weighted=st.booleans())
def test_the_blocks_loops_equal_plain_numpy(shape: tuple[int, int], s: int, seed: int,
                                            weighted: bool) -> None:
    # numpy over padded blocks, as the code was before its loops: the same means and modes
    rng = np.random.default_rng(seed)
    x = np.where(rng.random(shape) < 0.2, np.nan, rng.normal(0, 100, shape))
    codes = np.where(rng.random(shape) < 0.2, np.nan, rng.integers(0, 4, shape).astype(float))
    bad = rng.choice([0.0, -3.0, np.nan], shape)  # weights that count 0
    w = np.where(rng.random(shape) < 0.2, bad, rng.integers(1, 1025, shape))
    weights = w if weighted else None
    wb = _plain_blocks(np.where(w > 0, w, 0.0) if weighted else np.ones(shape), s, 0.0)
    b = _plain_blocks(x, s, np.nan)
    ww = np.where(np.isfinite(b), wb, 0.0)
    want = np.divide((ww * np.nan_to_num(b)).sum(axis=2), ww.sum(axis=2),
                     out=np.full(ww.shape[:2], np.nan), where=ww.sum(axis=2) > 0)
    assert block_mean(x, s, weights=weights) == pytest.approx(want, rel=1e-12, nan_ok=True)
    c = _plain_blocks(codes, s, np.nan)
    votes = np.stack([np.where(c == v, wb, 0.0).sum(axis=2) for v in range(4)], axis=2)  # codes 0..3
    top = votes.argmax(axis=2)  # the first of a tie: the smaller code
    mode = np.where(votes.max(axis=2) > 0, top.astype(float), np.nan)
    np.testing.assert_array_equal(block_mode(codes, s, weights=weights), mode)
    esv = np.where(np.isfinite(x), np.abs(x) * 1e6, np.nan)  # CNY/yr, NaN where nothing is valued
    pb = _plain_blocks(np.where(w > 0, w, 0.0), s, 0.0).sum(axis=2)
    dens = np.divide(np.nansum(_plain_blocks(esv, s, np.nan), axis=2), pb * 0.09,
                     out=np.full(pb.shape, np.nan), where=pb > 0)
    assert block_density(esv, w, s, 0.09) == pytest.approx(dens, rel=1e-12, nan_ok=True)


def test_a_coarse_cells_driver_weighs_each_cell_by_its_valued_pixels() -> None:
    # a zone's edge: the left column's cells hold 4 and 2 valued pixels, the top right one 1, the
    # centre cell has no driver value (its 3 pixels do not count), a cell with 0 pixels lies outside
    x = np.array([[10, 20, 5], [30, np.nan, 7], [1, 2, 3.0]])
    px = np.array([[4, 1, 0], [2, 3, 6], [0, 5, 0]])
    got = block_mean(x, 2, weights=px)
    # (10 x 4 + 20 x 1 + 30 x 2) / (4 + 1 + 2) = 120 / 7 = 17.142857 (unweighted: 60 / 3 = 20)
    assert got[0, 0] == pytest.approx(120 / 7) and block_mean(x, 2)[0, 0] == pytest.approx(20.0)
    # 7 x 6 / 6 = 7 (unweighted 6); 2 x 5 / 5 = 2 (unweighted 1.5); the last cell weighs 0: NaN
    assert got[0, 1] == pytest.approx(7.0) and got[1, 0] == pytest.approx(2.0) and np.isnan(got[1, 1])
    codes = np.array([[1, 2, 3], [2, np.nan, 3], [1, 1, 2.0]])
    got = block_mode(codes, 2, weights=px)
    # code 1 holds 4 pixels, code 2 holds 1 + 2 = 3: 1, though 2 is the code of more cells
    assert got[0, 0] == 1.0 and block_mode(codes, 2)[0, 0] == 2.0
    assert got[0, 1] == 3.0 and got[1, 0] == 1.0 and np.isnan(got[1, 1])
    # equal weights give the unweighted rules; a tie in weight keeps the smaller code
    assert block_mean(x, 2, weights=np.full(x.shape, 7)) == pytest.approx(block_mean(x, 2), nan_ok=True)
    assert block_mode(np.array([[5, 4], [4, 5.0]]), 2, weights=np.array([[2, 1], [2, 1]]))[0, 0] == 4.0
    with pytest.raises(ValueError, match="weights of shape"):
        block_mean(x, 2, weights=px[:2])


def test_the_interval_of_q_puts_a_central_f_quantile_at_zero_and_covers_eta_squared() -> None:
    # F(1, 10) at 0.975 is 6.937 in the tables: observed there, the lower end of λ (and q) is 0
    f = stats.f.ppf(0.975, 1, 10)
    assert round(f, 3) == 6.937
    lo, hi = q_interval(f, 1, 10)
    assert lo == pytest.approx(0.0, abs=1e-9) and hi > f / (f + 10)
    # Coverage of the population η² = λ / (λ + N) of four normal groups, 400 samples (seeded)
    rng = np.random.default_rng(0)
    mu, n_h = np.array([0.0, 0.3, 0.6, 0.2]), 30
    lam = n_h * ((mu - mu.mean()) ** 2).sum()
    eta2 = lam / (lam + 4 * n_h)
    hits = 0
    for _ in range(400):
        y = (rng.normal(size=(4, n_h)) + mu[:, None]).ravel()
        t = factor_test(stratum_sums(y, np.repeat(np.arange(4), n_h)))
        assert t["q_low"] <= t["q"] <= t["q_high"]
        hits += t["q_low"] <= eta2 <= t["q_high"]
    assert 0.92 <= hits / 400 <= 0.975


def _ncf_cdf(f: float, d1: float, d2: float, lam: float) -> float:
    """The non-central F CDF as the Poisson(λ/2) mixture of central F CDFs, each a regularized
    incomplete beta: Σ_j e^(-λ/2) (λ/2)^j / j! · I_x(d1/2 + j, d2/2), x = d1 F / (d1 F + d2)
    (Johnson, Kotz & Balakrishnan 1995, ch. 30), summed here instead of scipy's ``ncf``."""
    from scipy.special import betainc, gammaln

    x = d1 * f / (d1 * f + d2)
    j = np.arange(int(lam / 2 + 12 * np.sqrt(lam / 2 + 1) + 60))
    logw = -lam / 2 + j * np.log(lam / 2) - gammaln(j + 1) if lam > 0 else np.where(j == 0, 0.0, -np.inf)
    return float(np.sum(np.exp(logw) * betainc(d1 / 2 + j, d2 / 2, x)))


def _lambda_at(f: float, d1: float, d2: float, prob: float) -> float:
    """The λ where the CDF at ``f`` is ``prob`` (it falls as λ grows); 0 where it is below at λ = 0."""
    from scipy.optimize import bisect

    if _ncf_cdf(f, d1, d2, 0.0) <= prob:
        return 0.0
    hi = 1.0
    while _ncf_cdf(f, d1, d2, hi) > prob:
        hi *= 2
    return float(bisect(lambda lam: _ncf_cdf(f, d1, d2, lam) - prob, 0.0, hi, xtol=1e-12))


@pytest.mark.parametrize(("f", "d1", "d2"), [(10.0, 3, 96), (25.0, 1, 48), (4.0, 2, 27), (1.3, 5, 200)])
def test_the_interval_of_q_equals_an_independent_inversion(f: float, d1: int, d2: int) -> None:
    # q = η² = λ / (λ + N) with N = d1 + d2 + 1 (the L strata's d1 = L - 1 plus d2 = N - L, plus 1)
    n = d1 + d2 + 1
    lam_lo, lam_hi = _lambda_at(f, d1, d2, 0.975), _lambda_at(f, d1, d2, 0.025)
    lo, hi = q_interval(f, d1, d2)
    assert (lo, hi) == pytest.approx((lam_lo / (lam_lo + n), lam_hi / (lam_hi + n)), rel=1e-7, abs=1e-10)
    assert lo <= f * d1 / (f * d1 + d2) <= hi  # the point estimate q = F d1 / (F d1 + d2) inside
    if (f, d1, d2) in ((10.0, 3, 96), (25.0, 1, 48)):
        assert lo > 0.05
    if (f, d1, d2) == (4.0, 2, 27):
        # one-sided p < 0.05 (central F) and yet a lower end of 0: the 95 % interval is two-sided
        assert stats.f.sf(f, d1, d2) < 0.05 and lo == 0.0


def test_the_overlays_own_p_is_the_factor_test_of_the_overlay() -> None:
    from ecodask.chunked.geodetector import detect_arrays

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 3, 600), rng.integers(0, 4, 600)
    y = a * 1.0 + (b == 2) * 0.8 + rng.normal(0, 1, 600) + 50.0  # far from 0: the shift matters
    r = detect_arrays(y, {"a": a, "b": b})
    row = r["interaction"].iloc[0]
    overlay = factor_test(stratum_sums(y, a * 10 + b))
    got = (row["q_ab"], row["F_overlay"], row["p_overlay"])
    assert got == pytest.approx((overlay["q"], overlay["F"], overlay["p"]))


def test_the_interaction_test_worked_by_hand() -> None:
    from ecodask.chunked.geodetector import detect

    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    b = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    y = np.array([1.0, 3, 4, 6, 5, 7, 12, 14]) + 1000.0  # the shift must not matter
    # a=0: 1 3 4 6, mean 3.5, SS 6.25+0.25+0.25+6.25 = 13; a=1: 5 7 12 14, mean 9.5, SS 53: SSW_a = 66
    # b=0: 1 3 5 7, SS 20; b=1: 4 6 12 14, SS 68: SSW_b = 88; SST = 476 - 8 x 6.5² = 138
    # q_a = 72/138 > q_b = 50/138: a is the stronger. Overlay cells (1 3) (4 6) (5 7) (12 14): SSW_ab = 8
    # F = ((66 - 8) / (4 - 2)) / (8 / (8 - 4)) = 29 / 2 = 14.5 on (2, 4) df; the F(2, d) tail is
    # (1 + 2F/d)^(-d/2) = 8.25^-2 = 0.014692
    row = detect(y, {"a": a, "b": b})["interaction"].iloc[0]
    assert row["q_a"] == pytest.approx(72 / 138) and row["q_b"] == pytest.approx(50 / 138)
    assert row["stronger"] == "a" and (row["df1_interaction"], row["df2_interaction"]) == (2, 4)
    assert row["F_interaction"] == pytest.approx(14.5, rel=1e-9)
    assert row["p_interaction"] == pytest.approx(1 / 8.25**2, rel=1e-9) and row["interaction_significant"]
    # b the stronger the other way round: swap the factors' strengths by swapping y's middle pairs
    y2 = np.array([1.0, 3, 5, 7, 4, 6, 12, 14])  # now SSW_a = 88, SSW_b = 66: F and p as above
    row = detect(y2, {"a": a, "b": b})["interaction"].iloc[0]
    assert row["stronger"] == "b" and row["F_interaction"] == pytest.approx(14.5, rel=1e-9)
    # A ninth row a=1, b=2, y=10 is a one-observation stratum of the overlay. a=1: 5 7 12 14 10, mean
    # 9.6, SS 21.16+6.76+5.76+19.36+0.16 = 53.2: SSW_a = 66.2; SSW_b = 20 + 68 + 0 = 88, a still the
    # stronger. The nested test counts every observation and stratum whatever drop_singletons says:
    # F = ((66.2 - 8) / (5 - 2)) / (8 / (9 - 5)) = 19.4 / 2 = 9.7 on (3, 4) df
    a9, b9, y9 = np.append(a, 1), np.append(b, 2), np.append(y, 1010.0)
    for drop in (True, False):
        row = detect(y9, {"a": a9, "b": b9}, drop_singletons=drop)["interaction"].iloc[0]
        assert row["strata_ab"] == (4 if drop else 5)
        assert (row["df1_interaction"], row["df2_interaction"]) == (3, 4)
        assert row["F_interaction"] == pytest.approx(9.7, rel=1e-9)
        assert row["p_interaction"] == pytest.approx(stats.f.sf(9.7, 3, 4), rel=1e-9)


def test_the_interaction_test_with_nothing_to_test() -> None:
    from ecodask.chunked.geodetector import detect
    from ecodask.science.geodetector import interaction_test

    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y = np.array([1.0, 3, 4, 6, 5, 7, 12, 14])
    # b the same partition as a: the overlay has no more strata than the stronger factor, p = 1
    row = detect(y, {"a": a, "b": a * 2 + 5})["interaction"].iloc[0]
    assert row["df1_interaction"] == 0 and np.isnan(row["F_interaction"]) and row["p_interaction"] == 1.0
    assert not row["interaction_significant"]
    # one observation per overlay stratum: no degrees of freedom within, F and p undefined
    row = detect(np.array([1.0, 2, 4, 7]), {"a": np.array([0, 0, 1, 1]),
                                            "b": np.array([0, 1, 0, 1])})["interaction"].iloc[0]
    assert row["df2_interaction"] == 0 and np.isnan(row["F_interaction"]) and np.isnan(row["p_interaction"])
    # the overlay fits y exactly and the stronger factor does not: F infinite, p 0
    assert interaction_test(10.0, 2, 0.0, 4, 8) == {"F": np.inf, "df1": 2, "df2": 4, "p": 0.0}


def test_a_noise_factor_is_an_interaction_about_5_percent_of_the_time() -> None:
    from ecodask.chunked.geodetector import detect

    rng = np.random.default_rng(11)
    reps, n = 300, 400
    new = old = 0
    for _ in range(reps):
        a, b = rng.integers(0, 4, n), rng.integers(0, 5, n)  # b pure noise: no interaction
        y = a * 1.0 + rng.normal(0, 1, n)
        row = detect(y, {"a": a, "b": b})["interaction"].iloc[0]
        new += row["p_interaction"] < 0.05
        old += row["p_overlay"] < 0.05
    # 5 % expected (15 of 300, sd 3.8); the overlay's own p rejects every time (q_ab > 0 from a alone)
    assert 0.02 <= new / reps <= 0.09
    assert old == reps
    # a real interaction (y moves only where a = 1 and b = 1) and a real second factor are rejected
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    y = 1.0 * ((a == 1) & (b == 1)) + rng.normal(0, 1, n)
    row = detect(y, {"a": a, "b": b})["interaction"].iloc[0]
    assert row["p_interaction"] < 1e-6 and row["interaction_significant"]
    # an additive second factor too: the test asks whether the overlay explains more than the
    # stronger factor alone, not whether the effects add up
    y = 1.0 * a + 0.8 * b + rng.normal(0, 1, n)
    assert detect(y, {"a": a, "b": b})["interaction"].iloc[0]["p_interaction"] < 1e-6


def test_the_size_where_q_levels_off_and_gds_best_size() -> None:
    sizes = np.array([240.0, 480.0, 960.0, 1920.0])
    # growth +50 %, +10 %, +2 %: levelled off at 1920 (the first growth <= 5 % after one above it)
    assert levels_off(sizes, np.array([0.2, 0.3, 0.33, 0.3366])) == 1920.0
    assert levels_off(sizes, np.array([0.4, 0.3, 0.2, 0.1])) == 240.0  # never: the highest q
    rows = pd.DataFrame({
        "year": 2020, "size_m": np.repeat(sizes, 3), "factor": ["x1", "x2", "x3"] * 4,
        "q": [0.1, 0.2, 0.3, 0.2, 0.3, 0.5, 0.3, 0.4, 0.45, 0.3, 0.41, 0.9],
        "p": [0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.5]})
    t = scale_summary(rows).set_index("size_m")
    # the 90 % quantile (type 7) of the significant q: 0.3 + 0.8 x (0.5 - 0.3) = 0.46 at 480 m ...
    assert t.loc[480.0, "q90"] == pytest.approx(0.46)
    assert t.loc[1920.0, "significant"] == 2 and t.loc[1920.0, "q90"] == pytest.approx(0.3 + 0.9 * 0.11)
    assert t.index[t["best_q90"]].tolist() == [480.0]  # 0.46 > 0.44 (960) > 0.399 (1920) > 0.28
    # q_mean 0.2, 0.333, 0.383, 0.355: +67 %, +15 %, -7 %: levelled off at 1920
    assert t.index[t["levels_off"]].tolist() == [1920.0]


def test_the_size_where_each_drivers_q_levels_off() -> None:
    sizes = [240.0, 480.0, 960.0, 1920.0]
    rows = pd.DataFrame({
        "year": 2020, "size_m": sizes * 4, "factor": np.repeat(["x1", "x2", "x3", "x4"], 4),
        "q": [0.1, 0.2, 0.205, 0.3,  0.3, 0.6, 0.4, 0.41,  0.2, 0.3, 0.31, 0.32,  0.4, 0.3, 0.2, 0.1],
        "p": [0.01] * 4 + [0.01, 0.5, 0.01, 0.01] + [0.5] * 4 + [0.01] * 4})
    got = rows.assign(flat=driver_levels_off(rows))
    flat = got[got["flat"]].set_index("factor")["size_m"].to_dict()
    # x1: +100 %, then +2.5 %: 960. x2: 480 is not significant and left out, so 0.3 -> 0.4 (+33 %) at
    # 960, then 0.41 (+2.5 %): 1920 (with 480's 0.6: +100 %, -33 %, 960). x3: nothing significant.
    # x4: q only falls, no growth above 5 %: the size of its highest q, 240 (no lower rate is tried)
    assert flat == {"x1": 960.0, "x2": 1920.0, "x4": 240.0}
    assert levels_off(np.array(sizes), np.array([0.3, 0.6, 0.4, 0.41])) == 960.0
    # each year apart: in 2021 x1's q falls from 240 m on (its highest q at 240), the others as in 2020
    later = rows.assign(year=2021)
    later.loc[later["factor"] == "x1", "q"] = [0.3, 0.2, 0.1, 0.05]
    two = pd.concat([later, rows], ignore_index=True)
    got = two[driver_levels_off(two).to_numpy()].set_index(["year", "factor"])["size_m"].to_dict()
    assert got == {(2020, "x1"): 960.0, (2020, "x2"): 1920.0, (2020, "x4"): 240.0,
                   (2021, "x1"): 240.0, (2021, "x2"): 1920.0, (2021, "x4"): 240.0}


def _mode(blocks: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The finite value of each block with the largest total weight, the smallest of a tie; NaN where
    none weighs anything."""
    codes = np.unique(blocks[np.isfinite(blocks)])
    counts = np.stack([np.where(blocks == c, weights, 0).sum(axis=2) for c in codes])
    return np.where(counts.max(axis=0) > 0, codes[counts.argmax(axis=0)], np.nan)


def _ssw(y: np.ndarray, strata: np.ndarray) -> float:
    return float(sum(((y[strata == h] - y[strata == h].mean()) ** 2).sum() for h in np.unique(strata)))


@pytest.fixture(scope="module")
def scale_run(tmp_path_factory) -> object:
    from affine import Affine

    from ecodask.run.config import load_config
    from ecodask.science.grid import CHINA_ALBERS

    from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, write_tif
    from helpers import edit_yaml, run_stages

    folder = tmp_path_factory.mktemp("scale") / "r"
    folder.mkdir()
    soil = np.repeat(np.arange(COLS) // 64 % 3 + 1, ROWS).reshape(COLS, ROWS).T.astype(np.float32)
    write_tif(folder / "soil.tif", soil, CHINA_ALBERS, Affine(RES, 0, X0, 0, -RES, Y1), -9999.0)
    path = make_tiny_region(folder, years=(2000, 2010), drivers={
        "elevation": {"path": "elev.tif"}, "soil": {"path": "soil.tif", "kind": "categorical"},
        "cover": {"path": "lc_2000.tif", "kind": "categorical"}})  # ESV follows the land cover: a real q
    import rasterio

    for lc in sorted(folder.glob("lc_*.tif")):  # no land cover in a corner: cells along its diagonal
        with rasterio.open(lc) as src:  # edge are partly valued, so a coarse cell's drivers are weighted
            a = src.read(1)
        a[np.add.outer(np.arange(ROWS), np.arange(COLS)) < 150] = 0
        write_tif(lc, a, CHINA_ALBERS, Affine(RES, 0, X0, 0, -RES, Y1), 0)
    # equal-interval breaks (k = 4): a coarse size's q can be recomputed by hand from the arrays
    edit_yaml(path, lambda d: (d["grid"].update(analysis_factor=8),
                               d.update(analysis={"scales": [2, 4], "discretize": "equal", "k": 4})))
    cfg = load_config(path)
    with dask.config.set(scheduler="threads", num_workers=2):
        _, paths = run_stages(cfg, "ingest", "transitions_esv", "driver_analysis")
    return cfg, paths


def test_a_run_reads_q_at_each_size_from_its_one_pass(scale_run) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store

    cfg, _ = scale_run
    out = RunFolder(cfg.output)
    scale, inter = out.table("geodetector_scale"), out.table("geodetector_interaction")
    assert sorted(scale["size_m"].unique()) == [240.0, 480.0, 960.0]
    _, ana = open_store(out.store)
    elev, soil, cover = (ana[n].values.astype(np.float64) for n in ("elevation", "soil", "cover"))
    for i, year in enumerate((2000, 2010)):
        # q at 480 m from the stored arrays: the blocks' ESV over their valued area (0.09 ha a pixel),
        # elevation the mean of its cells weighted by their valued pixels, soil the code holding the
        # most valued pixels (the smaller of a tie)
        esv = _plain_blocks(ana["esv"].isel(year=i).values.astype(np.float64), 2, np.nan)
        px = _plain_blocks(ana["esv_pixels"].isel(year=i).values.astype(np.float64), 2, np.nan)
        px = np.where(px > 0, px, 0)  # the padding's NaN
        area = px.sum(axis=2) * 0.09
        eb = _plain_blocks(elev, 2, np.nan)
        w = np.where(np.isfinite(eb), px, 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(area > 0, np.nansum(esv, axis=2) / area, np.nan)
            x = np.where(w.sum(axis=2) > 0, np.nansum(eb * w, axis=2) / w.sum(axis=2), np.nan)
            plain = np.nanmean(eb, axis=2)
        modes = {n: _mode(_plain_blocks(c, 2, np.nan), px) for n, c in (("soil", soil), ("cover", cover))}
        keep = np.isfinite(y) & np.isfinite(x) & np.isfinite(modes["soil"]) & np.isfinite(modes["cover"])
        # the tiny region's edge: some blocks' unweighted mean differs from the weighted one
        assert np.abs(x[keep] - plain[keep]).max() > 0.5
        assert ((px > 0) & (px < 64)).any()
        y, x = y[keep], x[keep]
        inner = x.min() + (x.max() - x.min()) * np.array([1, 2, 3]) / 4
        sst = ((y - y.mean()) ** 2).sum()
        # a value on a break goes up (the reported breaks are bin edges: test_drivers.py reads them so)
        want = {"elevation": 1 - _ssw(y, np.searchsorted(inner, x, side="right")) / sst,
                **{n: 1 - _ssw(y, m[keep]) / sst for n, m in modes.items()}}
        got = scale[(scale["year"] == year) & (scale["multiple"] == 2)].set_index("factor")
        assert got["n"].tolist() == [keep.sum()] * 3
        for name, q in want.items():
            assert got.loc[name, "q"] == pytest.approx(q, rel=1e-9), (year, name)
        assert got.loc["cover", "q"] > 0.1  # a real case, not two zeros
        # the written interaction table's nested test, recomputed at the analysis cell: cover x soil
        yb = ana["esv_density"].isel(year=i).values.astype(np.float64)
        ok = np.isfinite(yb) & np.isfinite(elev) & np.isfinite(soil) & np.isfinite(cover)
        yb, cv, so = yb[ok], cover[ok], soil[ok]
        overlay = cv * 10 + so
        la, lab = len(np.unique(cv)), len(np.unique(overlay))
        ssw_a, ssw_ab = _ssw(yb, cv), _ssw(yb, overlay)
        f = ((ssw_a - ssw_ab) / (lab - la)) / (ssw_ab / (ok.sum() - lab))
        row = inter[(inter["year"] == year) & (inter["factor_a"] == "cover") & (inter["factor_b"] == "soil")]
        assert len(row) == 1 and row["stronger"].iloc[0] == "cover"
        assert row["F_interaction"].iloc[0] == pytest.approx(f, rel=1e-7)
        want_p = stats.f.sf(f, lab - la, ok.sum() - lab)
        assert row["p_interaction"].iloc[0] == pytest.approx(want_p, rel=1e-6)
    for (_, _), g in scale.groupby(["year", "factor"]):  # each driver's own size, where it has a q
        assert g["levels_off"].sum() == (1 if (g["p"] < 0.05).any() else 0)
    summary = out.table("geodetector_scale_summary")
    for _, g in summary.groupby("year"):
        # exactly one best size where some size has a significant q, none where none has
        assert g["best_q90"].sum() == (1 if g["q90"].notna().any() else 0)
        assert g["levels_off"].sum() == (1 if g["q_mean"].notna().any() else 0)
    assert summary["q90"].notna().any()
    assert (out.figures / "geodetector_scale_2010.png").is_file()


def test_the_report_shows_the_interval_the_interaction_test_and_the_scale_chart(scale_run) -> None:
    import base64
    import datetime as dt
    import re

    from ecodask.io.layout import RunFolder
    from ecodask.present.report import write_report
    from ecodask.run.record import write_run_record

    cfg, paths = scale_run
    write_run_record(cfg, {"driver_analysis": 1.0}, dict(paths), dt.datetime.now(dt.UTC))
    text = write_report(cfg.output).read_text(encoding="utf-8")
    out = RunFolder(cfg.output)
    factor = out.table("geodetector_factor")
    last = factor[factor["year"] == 2010].set_index("factor")
    section = text[text.index("the factor detector</h3>"):text.index("The scale effect of q, 2010")]
    for head in ("q_low", "q_high", "p_interaction"):
        assert f"<th>{head}</th>" in section
    for name in ("cover", "soil", "elevation"):  # each driver's row: name, q, q_low, q_high, p
        cells = [f"{last.loc[name, c]:,.4f}" for c in ("q", "q_low", "q_high", "p")]
        assert re.search(rf"<td>{name}</td>\s*" + r"\s*".join(f"<td>{v}</td>" for v in cells), section), name
    inter = out.table("geodetector_interaction")
    row = inter.set_index(["year", "factor_a", "factor_b"]).loc[(2010, "cover", "soil")]
    assert re.search(rf"<td>cover ∩ soil</td>\s*<td>{row['q_ab']:,.4f}</td>\s*<td>{row['interaction']}</td>"
                     rf"\s*<td>cover</td>\s*<td>{row['p_interaction']:,.4f}</td>", section)
    # the scale chart in its section, once in the whole report; the hollow markers explained
    scale = text[text.index("The scale effect of q, 2010"):text.index('<section id="conventions">')]
    png = base64.b64encode((out.figures / "geodetector_scale_2010.png").read_bytes()).decode()
    assert png in scale and text.count(png) == 1
    assert "hollow marker" in scale
    rows = out.table("geodetector_scale").query("year == 2010 and multiple == 2").set_index("factor")
    for name, r in rows.iterrows():  # a q that is not significant in parentheses
        shown = f"{r['q']:,.3f}" if r["p"] < 0.05 else f"({r['q']:,.3f})"
        assert re.search(rf"<td>{name}</td>\s*<td>[^<]*</td>\s*<td>{re.escape(shown)}</td>", scale), name
    assert text.count("<h3>The scale effect of q") == 1
    own = out.table("geodetector_scale").query("year == 2010 and levels_off").set_index("factor")["size_m"]
    assert len(own)
    for name, size in own.items():  # each driver's own level-off size in the table's last column
        assert re.search(rf"<td>{name}</td>(\s*<td>[^<]*</td>)*\s*<td>{size:g} m</td>\s*</tr>", scale), name
