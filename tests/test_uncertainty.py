"""ESV uncertainty: Olofsson et al. (2014)'s estimators against the paper's printed figures, the Monte
Carlo's summaries against numpy on the same draws, hand cases with known distributions, and a run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ecodask.kernels import draws
from ecodask.kernels.draws import summarize_draws
from ecodask.science import accuracy
from ecodask.science.catalogs import ClassScheme, EsvTable
from ecodask.science.landuse import ClassIndex, repeat_text, text, tile_text
from ecodask.science.uncertainty import (
    Candidate,
    UncertaintySpec,
    draw_cells,
    summarize,
    uncertainty_tables,
)

# Olofsson et al. (2014), section 5 (the example): sample counts, rows the map class (deforestation,
# forest gain, stable forest, stable non-forest), columns the reference; mapped areas in 30 m pixels.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_MAPPED_HA = np.array([200_000, 150_000, 3_200_000, 6_450_000]) * 0.09


def test_area_adjusted_estimates_and_accuracies_as_olofsson_et_al_print_them() -> None:
    area, se = accuracy.adjusted_area(OLOFSSON_MAPPED_HA, OLOFSSON_COUNTS)
    # "21,158 ± 6158 ha", "11,686 ± 3756 ha", "285,770 ± 15,510 ha", "581,386 ± 16,282 ha" (95 %)
    assert np.round(area) == pytest.approx([21_158, 11_686, 285_770, 581_386])
    assert np.round(accuracy.Z95 * se) == pytest.approx([6_158, 3_756, 15_510, 16_282])
    # Table 9: the estimated proportions of area, to 4 decimals
    table9 = [[0.0176, 0, 0.0013, 0.0011], [0, 0.0110, 0.0016, 0.0024],
              [0.0019, 0, 0.2967, 0.0213], [0.0040, 0.0020, 0.0179, 0.6212]]
    assert np.round(accuracy.proportions(OLOFSSON_MAPPED_HA, OLOFSSON_COUNTS), 4) == pytest.approx(
        np.array(table9))
    ua, ua_se = accuracy.users_accuracy(OLOFSSON_COUNTS)
    assert np.round(ua, 2) == pytest.approx([0.88, 0.73, 0.93, 0.96])
    assert np.round(accuracy.Z95 * ua_se, 2) == pytest.approx([0.07, 0.10, 0.04, 0.02])
    pa, pa_se = accuracy.producers_accuracy(OLOFSSON_MAPPED_HA, OLOFSSON_COUNTS)
    assert np.round(pa, 2) == pytest.approx([0.75, 0.85, 0.93, 0.96])
    # printed ± 0.21 and ± 0.03; forest gain's ± 0.23 and stable non-forest's ± 0.01 do not follow
    # from the paper's own eq. 7 (0.25 and 0.02 here), as other implementations of it also find
    assert np.round(accuracy.Z95 * pa_se[[0, 2]], 2) == pytest.approx([0.21, 0.03])
    oa, oa_se = accuracy.overall_accuracy(OLOFSSON_MAPPED_HA, OLOFSSON_COUNTS)
    assert (round(oa, 2), round(accuracy.Z95 * oa_se, 2)) == (0.95, 0.02)


def test_the_drawn_error_rates_centre_on_the_estimate_and_spread_as_its_standard_error() -> None:
    q = accuracy.draw_conditionals(OLOFSSON_COUNTS, 40_000, np.random.default_rng(1))
    assert np.allclose(q.sum(axis=2), 1.0)
    assert (q[:, 1, 0] == 0).all()  # no forest-gain sample was deforestation: it never is
    areas = OLOFSSON_MAPPED_HA @ q  # (draws, 4)
    est, se = accuracy.adjusted_area(OLOFSSON_MAPPED_HA, OLOFSSON_COUNTS)
    assert areas.mean(axis=0) == pytest.approx(est, rel=0.01)
    # Dirichlet rows: variance p (1 - p) / (n + 1) against the estimator's p (1 - p) / (n - 1)
    assert areas.std(axis=0) == pytest.approx(se, rel=0.05)


def _reference(eff, g_of, w, scale, pairs):
    draws = np.einsum("tzkf,fkd,td->dtzf", eff[..., g_of], w, scale)
    draws = np.concatenate([draws, draws.sum(axis=3, keepdims=True)], axis=3).astype(np.float64)
    change = draws[:, pairs[:, 1]] - draws[:, pairs[:, 0]]
    return draws, change


@pytest.mark.parametrize("n_draws", [2, 7, 300, 4_000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kernels_summaries_equal_numpys_on_the_same_draws(n_draws: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_t, n_z, n_k, n_g, n_f = 3, 5, 10, 2, 3
    eff = rng.uniform(0, 50, (n_t, n_z, n_k, n_g)).round(1)
    eff[:, 1] = 0.0  # a zone without land: constant draws
    eff[1, 2] = eff[0, 2]  # a zone whose areas did not change between the first two years
    eff[:, 3, 3:] = 0.0  # a zone with 3 classes: one pass of the kernel's four (10 classes: three)
    eff[0, 4, ::2] = 0.0  # a zone losing half its classes in one year
    g_of = np.array([0, 1, 1])
    w = rng.uniform(-2, 6, (n_f, n_k, n_draws)).astype(np.float32)
    w[0, :, : n_draws // 2] = 1.0  # ties: half the draws of a service equal
    scale = rng.uniform(0.5, 1.5, (n_t, n_draws)).astype(np.float32)
    pairs = np.array([[0, 1], [1, 2], [0, 2]])
    got = summarize_draws(eff, g_of, w, scale, pairs)
    draws, change = _reference(eff, g_of, w.astype(np.float64), scale.astype(np.float64), pairs)
    tol = {"rtol": 1e-9, "atol": 1e-9}  # float64 draws: only the order of the sums differs
    assert np.allclose(got["mean"], draws.mean(axis=0), **tol)
    assert np.allclose(got["low"], np.quantile(draws, 0.05, axis=0), **tol)
    assert np.allclose(got["high"], np.quantile(draws, 0.95, axis=0), **tol)
    assert np.allclose(got["change_mean"], change.mean(axis=0), **tol)
    assert np.allclose(got["change_low"], np.quantile(change, 0.05, axis=0), **tol)
    assert np.allclose(got["change_high"], np.quantile(change, 0.95, axis=0), **tol)
    assert np.array_equal(got["fell"], (change < 0).mean(axis=0))


def _samples(rng: np.random.Generator, dtype: type) -> list[np.ndarray]:
    """Draws of every shape the selection must get exactly right, as ``dtype``."""
    tiny = np.finfo(dtype).smallest_subnormal
    out = []
    for n in (2, 3, 7, 64, 1_000, 10_000):
        out += [rng.normal(1e6, 2e5, n), rng.exponential(1e8, n), rng.standard_cauchy(n),
                np.r_[rng.normal(0, 1, n // 2), rng.normal(50, 1, n - n // 2)],  # two modes
                rng.integers(0, 3, n).astype(float),  # three values, ties everywhere
                np.round(rng.normal(0, 1, n), 1), np.r_[np.ones(n - 1), 1e30], rng.normal(1e8, 1, n),
                np.resize([0.0, tiny], n)]  # a spread of one subnormal: bins per unit beyond the type's range
    return [x.astype(dtype) for x in out]


def _scratch(n: int, dtype: type = np.float64) -> tuple:
    return (np.empty(draws.BINS + 2, np.int32), np.empty(n, np.int32), np.empty(n, dtype),
            np.empty(n, dtype), np.empty(n, np.uint8), np.empty(4, dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("quantiles", [(0.05, 0.95), (0.0, 1.0), (0.5, 0.5), (0.3, 0.31)])
def test_the_kernels_quantiles_are_numpys_to_the_bit_whatever_the_pilot(quantiles, dtype) -> None:
    rng = np.random.default_rng(7)
    piloted = 0
    for x in _samples(rng, dtype):
        want = np.quantile(x.astype(np.float64), quantiles)
        scratch = _scratch(x.size, dtype)
        none = np.zeros(6)
        _, low, high, _ = draws._summary(x, *quantiles, none, *scratch)  # the histogram's selection
        assert (low, high) == tuple(want), (x.size, x[:4])
        own = none.copy()  # the pilot the series leaves: its own quantiles and densities
        off = ([1, 1, 0.9, 1.1, 1, 1], [1, 1, 1, 1, 100, 0.01], [1, 1, 1, 1, 1e-6, 1e-6])  # centre, density
        for pilot in (own, *(own * np.array(f) for f in off)):
            p = pilot.copy()
            _, low, high, _ = draws._summary(x, *quantiles, p, *scratch)
            assert (low, high) == tuple(want), (x.size, x[:4], pilot)
            p = pilot.copy()
            if p[0] > 0:
                mean = x.astype(np.float64).mean()
                found, low, high = draws._piloted(x, mean, *quantiles, p, *scratch[2:4], *scratch[4:])
                piloted += found
                assert not found or (low, high) == tuple(want)
    assert piloted >= 20  # the pilot's own path was taken, and checked, not only the fallback


_DRAWS = st.one_of(
    hnp.arrays(np.float32, st.integers(2, 3_000), elements=st.floats(-1e6, 1e6, width=32)),
    hnp.arrays(np.float64, st.integers(2, 3_000), elements=st.floats(-1e12, 1e12)),
    hnp.arrays(np.float64, st.integers(2, 3_000), elements=st.integers(-3, 3).map(float)),  # ties
)


@settings(max_examples=200, deadline=None)
@given(x=_DRAWS, q=st.tuples(st.floats(0, 1), st.floats(0, 1)).map(sorted),
       pilot=st.tuples(st.floats(-1e6, 1e6), st.floats(-1e6, 1e6), st.floats(-1e6, 1e6),
                       st.floats(1e-9, 1e9), st.floats(1e-9, 1e9)))
def test_any_draws_and_any_pilot_give_numpys_quantiles_to_the_bit(x, q, pilot) -> None:  # noqa: ANN001
    own = np.array([1.0, *pilot])  # a pilot of any mean, quantiles and densities: right or wildly wrong
    _, low, high, _ = draws._summary(x, q[0], q[1], own, *_scratch(x.size, x.dtype.type))
    assert (low, high) == tuple(np.quantile(x.astype(np.float64), q))


def _small_monte_carlo(n_z: int, n_d: int, seed: int = 3) -> tuple:
    rng = np.random.default_rng(seed)
    n_t, n_k, n_f = 4, 6, 3
    eff = rng.uniform(0, 50, (n_t, n_z, n_k, 1)) * (rng.random((n_t, n_z, n_k, 1)) > 0.2)
    w = rng.uniform(0.5, 6, (n_f, n_k, n_d)).astype(np.float32)
    scale = rng.uniform(0.5, 1.5, (n_t, n_d)).astype(np.float32)
    pairs = np.array([[0, 1], [1, 2], [2, 3], [0, 3]])
    return eff, np.zeros(n_f, dtype=np.int64), w, scale, pairs


def _assert_same(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for name in want:
        assert np.array_equal(got[name], want[name]), name


def test_the_summaries_on_one_thread_or_dealt_to_dask_tasks_are_numba_threads_to_the_bit() -> None:
    import dask

    from ecodask.chunked.draws import summarize_draws_by_zones

    inputs = _small_monte_carlo(n_z=9, n_d=3_000)
    want = summarize_draws(*inputs)
    _assert_same(summarize_draws(*inputs, threaded=False), want)
    with dask.config.set(scheduler="threads", num_workers=3):  # tasks at once in one process
        _assert_same(summarize_draws_by_zones(*inputs, zone_draws_per_task=2 * 3_000), want)


def test_the_monte_carlo_dealt_out_to_a_cluster_of_processes_equals_the_kernels() -> None:
    from distributed import Client, LocalCluster, get_task_stream

    from ecodask.chunked.draws import summarize_draws_by_zones

    inputs = _small_monte_carlo(n_z=7, n_d=2_000)
    want = summarize_draws(*inputs)
    with (LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
          Client(cluster) as client, get_task_stream(client) as stream):
        got = summarize_draws_by_zones(*inputs, zone_draws_per_task=2 * 2_000)
        workers = set(client.scheduler_info()["workers"])
    _assert_same(got, want)
    blocks = [t for t in stream.data if "monte_carlo_zones" in str(t["key"])]
    assert len(blocks) == 4  # 7 zones, 2 a task
    assert {t["worker"] for t in blocks} <= workers


def test_the_cluster_summaries_refuse_bad_arguments_before_any_task() -> None:
    from ecodask.chunked.draws import summarize_draws_by_zones

    eff, g_of, w, scale, pairs = _small_monte_carlo(n_z=2, n_d=10)
    with pytest.raises(ValueError, match="years"):
        summarize_draws_by_zones(eff, g_of, w, scale, np.array([[0, 9]]))


@st.composite
def _monte_carlo_inputs(draw: st.DrawFn) -> tuple:
    """Any small Monte Carlo: areas with zeros and subnormals, coefficients with ties and signs."""
    n_t, n_z, n_k = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 9))
    n_g, n_f, n_d = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(2, 400))
    area = st.one_of(st.just(0.0), st.floats(0, 1e6), st.floats(0, 1e-300))  # and subnormals
    eff = draw(hnp.arrays(np.float64, (n_t, n_z, n_k, n_g), elements=area))
    w = draw(hnp.arrays(np.float32, (n_f, n_k, n_d),
                        elements=st.one_of(st.floats(-1e4, 1e4, width=32), st.just(1.0))))
    small = float(np.float32(1e-3))
    scale = draw(hnp.arrays(np.float32, (n_t, n_d), elements=st.floats(small, 1e3, width=32)))
    g_of = np.array(draw(st.lists(st.integers(0, n_g - 1), min_size=n_f, max_size=n_f)))
    pairs = np.array([(a, b) for a in range(n_t) for b in range(a + 1, n_t)], dtype=np.int64).reshape(-1, 2)
    return eff, g_of, w, scale, pairs


@settings(max_examples=150, deadline=None)
@given(inputs=_monte_carlo_inputs())
def test_any_small_monte_carlo_runs_and_its_summaries_are_ordered(inputs: tuple) -> None:
    got = summarize_draws(*inputs)
    assert all(np.isfinite(v).all() for v in got.values())
    assert (got["low"] <= got["high"]).all() and (got["change_low"] <= got["change_high"]).all()
    assert ((got["fell"] >= 0) & (got["fell"] <= 1)).all()


def test_bad_arguments_are_refused_before_any_draw() -> None:
    eff, w, scale = np.ones((2, 1, 3, 1)), np.ones((1, 3, 10)), np.ones((2, 10))
    with pytest.raises(ValueError, match="shapes"):
        summarize_draws(eff, np.zeros(1, int), w, np.ones((3, 10)), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="groups"):
        summarize_draws(eff, np.array([1]), w, scale, np.array([[0, 1]]))
    with pytest.raises(ValueError, match="years"):
        summarize_draws(eff, np.zeros(1, int), w, scale, np.array([[0, 2]]))
    with pytest.raises(ValueError, match="draws"):  # the pilot's counts are exact below 2**24 draws
        summarize_draws(eff, np.zeros(1, int), np.broadcast_to(np.float32(1), (1, 3, 2**24)),
                        np.broadcast_to(np.float32(1), (2, 2**24)), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="finite"):
        summarize_draws(eff * np.nan, np.zeros(1, int), w, scale, np.array([[0, 1]]))


def _scheme() -> ClassScheme:
    return ClassScheme(name="two", title="two", source="hand", nodata=0,
                       classes={1: {"name": "crop", "color": "#FFFF00"},
                                2: {"name": "forest", "color": "#00FF00"}},
                       mappings={"t": {1: "crop", 2: "forest"}})


def _table(name: str, crop: float, forest: float, **extra) -> EsvTable:
    return EsvTable(name=name, title=name, units="CNY/ha/yr", kind="value", class_set="t", source="hand",
                    verification="hand", classes={"crop": "crop", "forest": "forest"},
                    services=[{"name": "food", "group": "provisioning"}],
                    values={"food": {"crop": crop, "forest": forest}}, **extra)


def _one_zone(areas: list[list[float]]) -> np.ndarray:
    """(years, 1 zone, 2 classes, 1 group) ha."""
    return np.asarray(areas, dtype=np.float64)[:, None, :, None]


def test_a_uniform_coefficient_gives_its_quantiles_and_a_loss_in_every_draw() -> None:
    # ESV = A x V x u, u ~ U(0.5, 1.5): quantile q of ESV is A V (0.5 + q); the forest shrinks from
    # 100 to 60 ha with the same coefficient in both years, so every draw's ESV fell.
    spec = UncertaintySpec((Candidate(_table("t", 0.0, 1000.0), (1.0, 1.0)),), draws=40_000, seed=3,
                           spread=0.5)
    s = summarize(spec, _scheme(), ClassIndex(_scheme()), _one_zone([[0, 100], [0, 60]]),
                  np.array([0]), [(0, 1)])
    av = 100 * 1000.0
    assert s["mean"][0, 0, 0] == pytest.approx(av, rel=0.005)
    assert s["low"][0, 0, 0] == pytest.approx(0.55 * av, rel=0.01)
    assert s["high"][0, 0, 0] == pytest.approx(1.45 * av, rel=0.01)
    assert s["change_high"][0, 0, 1] == pytest.approx(-40 * 1000.0 * 0.55, rel=0.01)
    assert s["fell"][0, 0, 0] == 1.0 and s["fell"][0, 0, 1] == 1.0


def test_ten_hectares_moved_between_two_uniform_values_fall_with_the_probability_worked_by_hand() -> None:
    # 10 ha of crop became forest. Crop's value Vc ~ U(1000, 3000), forest's Vf ~ U(1500, 4500) (each
    # +/- 50 %, independent), so the change is 10 (Vf - Vc). Vf - Vc is the sum of U(1500, 4500) and
    # U(-3000, -1000): a trapezoid on [-1500, 3500], rising over its first 2000, with
    # F(x) = (x + 1500)^2 / (2 x 2000 x 3000) there. P(fell) = F(0) = 1500^2 / 12e6 = 0.1875;
    # the 5 % quantile solves (x + 1500)^2 = 0.05 x 12e6: x = -1500 + sqrt(6e5) = -725.4; the 95 % one
    # is 3500 - sqrt(6e5) = 2725.4 by symmetry; the mean is 10 x (3000 - 2000).
    spec = UncertaintySpec((Candidate(_table("t", 2000.0, 3000.0), (1.0, 1.0)),), draws=40_000, seed=5,
                           spread=0.5)
    s = summarize(spec, _scheme(), ClassIndex(_scheme()), _one_zone([[100, 50], [90, 60]]),
                  np.array([0]), [(0, 1)])
    assert s["fell"][0, 0, 0] == pytest.approx(0.1875, abs=0.008)  # 4 standard errors of 40,000 draws
    assert s["change_mean"][0, 0, 0] == pytest.approx(10_000, rel=0.02)
    assert s["change_low"][0, 0, 0] == pytest.approx(10 * (-1500 + 6e5 ** 0.5), rel=0.03)
    assert s["change_high"][0, 0, 0] == pytest.approx(10 * (3500 - 6e5 ** 0.5), rel=0.01)


def test_a_few_pixels_changing_in_a_large_county_keep_their_change_and_its_probability() -> None:
    # ~1e10 CNY/yr of ESV, where a float32 holds steps of 1,024 CNY/yr, and 0.27 ha (three 30 m pixels)
    # moved between classes: a change of a few thousand CNY/yr. The draws' changes must be those of
    # float64 arithmetic: the share that fell and the quantiles as numpy computes them from the areas.
    rng = np.random.default_rng(0)
    n_k, n_d = 9, 10_000
    a0 = rng.uniform(1e4, 2e5, n_k)
    a1 = a0.copy()
    a1[0] -= 0.27
    a1[1] += 0.27
    eff = np.stack([a0, a1])[:, None, :, None]
    w = rng.uniform(500, 20_000, n_k)[None, :, None] * rng.uniform(0.5, 1.5, (1, n_k, n_d))
    w = w.astype(np.float32)
    scale = np.ones((2, n_d), dtype=np.float32)
    got = summarize_draws(eff, np.array([0]), w, scale, np.array([[0, 1]]))
    levels = np.einsum("tk,kd->td", eff[:, 0, :, 0], w[0].astype(np.float64))
    assert levels.mean() > 1e10
    change = levels[1] - levels[0]
    assert 0.3 < (change < 0).mean() < 0.9  # an undecided change: its sign is what matters
    assert got["fell"][0, 0, 0] == (change < 0).mean()
    assert got["change_mean"][0, 0, 0] == pytest.approx(change.mean(), rel=1e-6)
    assert got["change_low"][0, 0, 0] == pytest.approx(np.quantile(change, 0.05), rel=1e-6)
    assert got["change_high"][0, 0, 0] == pytest.approx(np.quantile(change, 0.95), rel=1e-6)


def test_a_triangular_range_of_the_catalog_draws_with_its_mean_and_bounds() -> None:
    table = _table("t", 10.0, 40.0, uncertainty={"cells": {"food": {"forest": {
        "distribution": "triangular", "low": 20.0, "high": 80.0}}}})
    cells = draw_cells(table, 0.5, 100_000, np.random.default_rng(0))
    forest, crop = cells[0, 1], cells[0, 0]
    assert forest.min() >= 20.0 and forest.max() <= 80.0
    assert forest.mean() == pytest.approx((20 + 40 + 80) / 3, rel=0.005)  # (a + m + b) / 3
    assert np.mean(forest < 40.0) == pytest.approx((40 - 20) / (80 - 20), abs=0.005)  # F(mode)
    assert crop.min() >= 5.0 and crop.max() <= 15.0  # the default: +/- 50 %
    with pytest.raises(ValueError, match="does not hold"):
        _table("t", 10.0, 90.0, uncertainty={"cells": {"food": {"forest": {"low": 20.0, "high": 80.0}}}})


def test_two_tables_without_spread_make_an_even_mixture_of_their_values() -> None:
    both = (Candidate(_table("a", 0.0, 100.0), (1.0,)), Candidate(_table("b", 0.0, 300.0), (1.0,)))
    spec = UncertaintySpec(both, draws=20_000, seed=0, spread=0.0)
    s = summarize(spec, _scheme(), ClassIndex(_scheme()), _one_zone([[0, 10]]), np.array([0]), [])
    assert (s["low"][0, 0, 0], s["high"][0, 0, 0]) == (1000.0, 3000.0)
    assert s["mean"][0, 0, 0] == pytest.approx(2000.0, rel=0.02)


def test_land_cover_error_moves_area_as_the_error_matrix_says() -> None:
    # Map crop is forest in 1 of 10 samples, map forest always forest: the drawn share of map crop
    # that is forest is Beta(1, 9), with quantile q at 1 - (1 - q)^(1/9). Only forest has a value.
    spec = UncertaintySpec((Candidate(_table("t", 0.0, 100.0), (1.0,)),), draws=40_000, seed=5, spread=0.0,
                           errors=np.array([[9.0, 1.0], [0.0, 10.0]]))
    s = summarize(spec, _scheme(), ClassIndex(_scheme()), _one_zone([[50, 20]]), np.array([0]), [])

    def esv(share: float) -> float:
        return 100.0 * (20 + 50 * share)

    assert s["mean"][0, 0, 0] == pytest.approx(esv(0.1), rel=0.005)
    assert s["low"][0, 0, 0] == pytest.approx(esv(1 - 0.95 ** (1 / 9)), rel=0.005)
    assert s["high"][0, 0, 0] == pytest.approx(esv(1 - 0.05 ** (1 / 9)), rel=0.005)


def test_tables_lay_out_zones_years_and_items() -> None:
    spec = UncertaintySpec((Candidate(_table("t", 10.0, 100.0), (1.0, 1.0)),), draws=500, spread=0.0)
    eff = np.array([[[5.0, 1.0], [0.0, 2.0], [5.0, 3.0]], [[4.0, 2.0], [0.0, 1.0], [4.0, 3.0]]])[..., None]
    esv = (eff[..., 0] * [10.0, 100.0]).sum(axis=2, keepdims=True)  # (t, z + region, 1 service)
    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["a", "b"], "zone_name": ["A", "B"]})
    t = uncertainty_tables(spec, _scheme(), ClassIndex(_scheme()), eff, np.array([0]), esv, [2000, 2010],
                           [(0, 1)], zones)
    lv, ch = t["esv_uncertainty"], t["esv_change_uncertainty"]
    assert list(lv["item"].unique()) == ["food", "total"] and len(lv) == 2 * 3 * 2
    row = lv[(lv["zone_id"] == "b") & (lv["year"] == 2010) & (lv["item"] == "total")].iloc[0]
    assert row["esv_cny"] == row["mean_cny"] == row["p05_cny"] == row["p95_cny"] == 100.0  # no spread
    c = ch[(ch["zone_id"] == "ALL") & (ch["item"] == "food")].iloc[0]
    assert (c["year_from"], c["year_to"], c["change_cny"], c["p_fell"]) == (2000, 2010, -10.0, 1.0)


def test_label_columns_lay_out_repeated_and_tiled_labels_duplicates_included() -> None:
    col = tile_text(repeat_text(text(["a", "b", "a"]), 2), 2)  # two zones may share a name
    assert list(col) == ["a", "a", "b", "b", "a", "a"] * 2
    assert list(col.categories) == ["a", "b"] and col.codes.dtype == np.int8
    assert list(repeat_text(tile_text(text(["x", "y"]), 2), 2)) == ["x", "x", "y", "y"] * 2


def test_the_tables_labels_are_codes_in_memory_and_the_same_text_in_the_files(tmp_path: Path) -> None:
    from ecodask.io.tables import read_table, write_table

    spec = UncertaintySpec((Candidate(_table("t", 10.0, 100.0), (1.0, 1.0)),), draws=50)
    eff = np.array([[[5.0, 1.0], [0.0, 2.0], [5.0, 3.0]], [[4.0, 2.0], [0.0, 1.0], [4.0, 3.0]]])[..., None]
    esv = (eff[..., 0] * [10.0, 100.0]).sum(axis=2, keepdims=True)
    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["a", "b"], "zone_name": ["Same", "Same"]})
    tables = uncertainty_tables(spec, _scheme(), ClassIndex(_scheme()), eff, np.array([0]), esv, [2000, 2010],
                                [(0, 1)], zones)
    assert tables.pop("esv_uncertainty_tables")["draws"].sum() == 2 * spec.draws  # a row a year, no labels
    for name, df in tables.items():
        assert all(isinstance(df[c].dtype, pd.CategoricalDtype) for c in ("zone_id", "zone_name", "item"))
        plain = df.astype({c: "str" for c in ("zone_id", "zone_name", "item")})
        coded, text = write_table(df, tmp_path / "coded", name), write_table(plain, tmp_path / "text", name)
        assert coded["csv"].read_bytes() == text["csv"].read_bytes()
        pd.testing.assert_frame_equal(read_table(coded["parquet"]), read_table(text["parquet"]))
        assert list(read_table(coded["csv"])["zone_name"].unique()) == ["Same", "whole region"]


@pytest.mark.usefixtures("dask_threads")
def test_a_run_draws_around_its_own_esv_and_refuses_a_bad_alternative(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.present import report
    from ecodask.run.config import load_config

    from conftest import make_tiny_region
    from helpers import config_error, edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    catalogs = tmp_path / "catalogs" / "error_matrices"
    catalogs.mkdir(parents=True)
    (catalogs / "hand.yaml").write_text(yaml.safe_dump({
        "name": "hand", "title": "hand", "scheme": "clcd", "source": "made by hand", "verification": "none",
        "counts": {1: {1: 45, 2: 5}, 2: {1: 2, 2: 48}}}))
    edit_yaml(path, lambda d: d.update(catalogs=[str(tmp_path / "catalogs")]))
    edit_yaml(path, lambda d: d["esv"].update(uncertainty={"enabled": True, "draws": 500, "spread": 0.0}))
    cfg = load_config(path)
    run_stages(cfg, "ingest", "transitions_esv")
    out = RunFolder(cfg.output)
    lv, esv = out.table("esv_uncertainty"), out.table("esv_by_service")
    total = esv[esv["level"] == "total"].set_index(["zone_id", "year"])["esv_cny"]
    mine = lv[lv["item"] == "total"].set_index(["zone_id", "year"])
    assert mine["esv_cny"].to_numpy() == pytest.approx(total.loc[mine.index].to_numpy())
    # no spread, no other table, no land-cover error: every draw is the run's own ESV
    for col in ("mean_cny", "p05_cny", "p95_cny"):
        assert mine[col].to_numpy() == pytest.approx(mine["esv_cny"].to_numpy(), rel=1e-6)
    assert out.table("area_adjusted") is None
    assert "no land-cover error: the run names no error matrix" in "".join(report._uncertainty(cfg.output))

    edit_yaml(path, lambda d: d["esv"]["uncertainty"].update(spread=0.5, tables=["xie2015"],
                                                              error_matrix="hand"))
    cfg = load_config(path)
    run_stages(cfg, "transitions_esv")
    lv, adj = out.table("esv_uncertainty"), out.table("area_adjusted")
    assert (lv["p05_cny"] <= lv["mean_cny"] + 1e-6 * abs(lv["mean_cny"])).all()
    assert (lv["p95_cny"] >= lv["mean_cny"] - 1e-6 * abs(lv["mean_cny"])).all()
    region = adj[(adj["zone_id"] == "ALL") & (adj["year"] == 2000)].set_index("class_code")
    assert region["adjusted_ha"].sum() == pytest.approx(region["mapped_ha"].sum())
    want, _ = accuracy.adjusted_area(region["mapped_ha"].to_numpy(), accuracy_counts(region.index))
    assert region["adjusted_ha"].to_numpy() == pytest.approx(want)
    assert set(out.table("map_accuracy")["year"]) == {2000, 2010, 2020}
    drawn = out.table("esv_uncertainty_tables")
    assert list(drawn["table"].unique()) == ["xinzhou_2023", "xie2015"]
    assert drawn.groupby("year")["draws"].sum().eq(500).all()  # every draw took one table
    xie = drawn[drawn["table"] == "xie2015"]
    assert (xie["standard_equivalent_cny_per_ha"] == 1158.67).all()
    assert xie["price_basis"].str.contains("xinzhou_2023 states").all()
    assert drawn.loc[drawn["table"] == "xinzhou_2023", "standard_equivalent_cny_per_ha"].isna().all()
    page = "".join(report._uncertainty(cfg.output))  # the report's section on the Monte Carlo
    assert "xie2015 (1,158.67 CNY/ha/yr per equivalent, the price basis" in page
    assert "Area-adjusted class areas of the whole region, 2020, ha" in page
    assert "the land-cover error of the map's error matrix" in page and "no land-cover error" not in page

    edit_yaml(path, lambda d: d["esv"]["uncertainty"].update(tables=["hubei_cultivated_2017"]))
    err = config_error(path)
    assert "esv.uncertainty.tables.0" in str(err) and "services" in str(err)


def test_an_alternative_table_of_equivalents_is_valued_at_the_runs_price_basis(tmp_path: Path) -> None:
    from ecodask.io.catalogs import load_esv_table
    from ecodask.run.config import load_config
    from ecodask.run.stages.transitions_esv import _uncertainty

    from conftest import make_tiny_region
    from helpers import config_error, edit_yaml

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010, 2020))
    edit_yaml(path, lambda d: d["esv"].update(uncertainty={"enabled": True, "tables": ["xie2015"]}))
    cfg = load_config(path)
    run, alt = load_esv_table("xinzhou_2023", cfg.catalogs), load_esv_table("xie2015", cfg.catalogs)
    spec = _uncertainty(cfg, run, [None] * 3)
    # seed 002's values are at 984.87 / 0.85 = 1158.67 CNY/ha/yr, not Xie et al.'s national 3406.5
    assert [c.scale for c in spec.candidates] == [(1.0,) * 3, (1158.67,) * 3]
    assert alt.standard_equivalent.value == 3406.5
    # a table of values that states no price basis: the alternative keeps its own
    own = tmp_path / "catalogs" / "esv_tables"
    own.mkdir(parents=True)
    (own / "mine.yaml").write_text(yaml.safe_dump(run.model_dump(mode="json", exclude={"standard_equivalent"})
                                                  | {"name": "mine"}))
    edit_yaml(path, lambda d: (d.update(catalogs=[str(tmp_path / "catalogs")]),
                               d["esv"].update(table="mine")))
    cfg = load_config(path)
    spec = _uncertainty(cfg, load_esv_table("mine", cfg.catalogs), [None] * 3)
    assert spec.candidates[1].scale == (3406.5,) * 3
    # and an alternative of equivalents with no standard equivalent of its own cannot be priced
    (own / "bare.yaml").write_text(yaml.safe_dump(alt.model_dump(mode="json", exclude={"standard_equivalent"})
                                                  | {"name": "bare"}))
    edit_yaml(path, lambda d: d["esv"]["uncertainty"].update(tables=["bare"]))
    err = config_error(path)
    assert "esv.uncertainty.tables.0" in str(err) and "'mine' of values states none" in str(err)


def accuracy_counts(codes: pd.Index) -> np.ndarray:
    """The hand-made matrix of the run test in the order of ``codes`` (zero rows elsewhere)."""
    given = {1: {1: 45, 2: 5}, 2: {1: 2, 2: 48}}
    return np.array([[given.get(m, {}).get(r, 0) for r in codes] for m in codes], dtype=float)
