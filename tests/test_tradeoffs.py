"""Trade-offs and synergies between services across zones (Spearman's rho) and ESV per capita and per
unit GDP, against cases worked by hand, and in a run's tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecodask.science.tradeoffs import exact_p, service_tradeoffs, spearman


def _enumerated_p(x: list[float], y: list[float]) -> float:
    """Two-sided exact p of Spearman's rho by brute force: scipy's rho of x against every ordering of
    y, ``2 min(P(rho' >= rho), P(rho' <= rho))`` (a route independent of the code under test)."""
    import itertools

    from scipy import stats

    rho = stats.spearmanr(x, y).statistic
    null = np.array([stats.spearmanr(x, q).statistic for q in itertools.permutations(y)])
    up, down = np.mean(null >= rho - 1e-12), np.mean(null <= rho + 1e-12)
    return min(1.0, 2 * min(up, down))


def test_rho_with_ties_worked_by_hand() -> None:
    # a = 1, 2, 2, 3 -> ranks 1, 2.5, 2.5, 4; b = 1, 3, 2, 4 -> ranks 1, 3, 2, 4. Deviations from
    # 2.5: (-1.5, 0, 0, 1.5) and (-1.5, 0.5, -0.5, 1.5); covariance 4.5, variances 4.5 and 5:
    # rho = 4.5 / sqrt(4.5 * 5) = 0.948683.
    x = np.array([[1, 1], [2, 3], [2, 2], [3, 4]], float)
    rho, p = spearman(x, exact_max=0)
    assert rho[0, 1] == pytest.approx(4.5 / np.sqrt(22.5)) and rho[1, 0] == rho[0, 1]
    # p from Student's t with n - 2 = 2 degrees of freedom: t = rho sqrt(2 / (1 - rho^2)) = 4.243.
    from scipy import stats

    t = rho[0, 1] * np.sqrt(2 / (1 - rho[0, 1] ** 2))
    assert t == pytest.approx(4.2426, abs=1e-4) and p[0, 1] == pytest.approx(2 * stats.t.sf(t, 2))
    # Exact: of the 24 orderings of b's ranks against a's (1, 2.5, 2.5, 4), rho is this high for
    # 1-3-2-4 and 1-2-3-4 (a's tie makes them one value, 0.9487) and this low for their mirror images
    # 4-2-3-1 and 4-3-2-1: P(rho' >= rho) = 2/24, two-sided 4/24 (t gave 0.051).
    _, p_exact = spearman(x)
    assert p_exact[0, 1] == pytest.approx(4 / 24, rel=1e-12) == _enumerated_p([1, 2, 2, 3], [1, 3, 2, 4])


def test_exact_p_by_enumeration_without_and_with_ties() -> None:
    from scipy import stats

    # n = 5, no ties: b = 1, 2, 3, 5, 4 against a = 1..5: sum d² = 2, rho = 1 - 6·2/(5·24) = 0.9.
    # sum d² is even and 0 only for the identity; 2 only for the 4 swaps of neighbours (any other
    # swap gives 2·(j - i)² >= 8, two swaps >= 4): P(rho' >= 0.9) = 5/120, and as the distribution
    # is symmetric the two-sided p is 10/120 = 0.0833 (R's cor.test enumerates the same n! orderings
    # up to n = 9, AS 89 in its prho.c: 2 P(S <= 2) = 10/120).
    a, b = [1, 2, 3, 4, 5], [1, 2, 3, 5, 4]
    assert exact_p(a, b) == pytest.approx(10 / 120, rel=1e-12) == _enumerated_p(a, b)
    assert stats.spearmanr(a, b).pvalue == pytest.approx(0.0374, abs=1e-4)  # the t's, far below
    assert exact_p(a, a[::-1]) == pytest.approx(2 / 120) and exact_p(a, [2, 5, 3, 1, 4]) == 1.0  # rho = 0
    # ties on both sides, n = 7: against the brute force and scipy's permutation test
    x, y = [1.0, 2, 2, 3, 5, 5, 5], [2.0, 1, 4, 3, 6, 6, 7]
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    ref = stats.permutation_test((rx,), lambda u, axis=-1: stats.pearsonr(u, np.broadcast_to(ry, u.shape),
                                                                          axis=-1).statistic,
                                 permutation_type="pairings", n_resamples=np.inf, vectorized=True)
    assert exact_p(x, y) == pytest.approx(ref.pvalue, rel=1e-12) == _enumerated_p(x, y)
    assert 0 < exact_p(x, y) < 0.05
    with pytest.raises(ValueError, match="exact p needs 2 to 9"):
        exact_p(np.arange(10), np.arange(10))


def test_synergy_trade_off_and_what_cannot_be_ranked() -> None:
    # Six zones: b rises with a (synergy), c falls with a (trade-off), d equal everywhere (no rho),
    # one zone without data left out.
    a = np.array([1, 2, 3, 4, 5, 6, np.nan])
    density = np.stack([a, 2 * a + 1, 10 - a, np.full(7, 3.0)], axis=1)[None]
    t = service_tradeoffs(density, [2020], ["a", "b", "c", "d"])
    got = {(r.service_a, r.service_b): (r.rho, r.relation) for r in t.itertuples()}
    assert got[("a", "b")] == (pytest.approx(1.0), "synergy")
    assert got[("a", "c")] == (pytest.approx(-1.0), "trade-off")
    assert got[("b", "c")] == (pytest.approx(-1.0), "trade-off")
    assert np.isnan(got[("a", "d")][0]) and got[("a", "d")][1] == "none"
    assert set(t["zones"]) == {6} and len(t) == 6  # each pair once
    # six zones: exact p, rho = 1 only in the 1 ordering of 720 that matches, -1 in its mirror
    assert set(t["p_method"]) == {"exact"} and t.loc[0, "p_value"] == pytest.approx(2 / 720)


def test_over_nine_zones_p_comes_from_t_and_four_zones_are_never_significant() -> None:
    from scipy import stats

    a = np.array([3.0, 1, 4, 1.5, 5, 9, 2, 6, 5.5, 3.5])
    b = np.array([2.0, 7, 1, 8, 2.5, 8.5, 1.5, 8.2, 4, 6])
    t = service_tradeoffs(np.stack([a, b], axis=1)[None], [2020], ["a", "b"])
    assert t.loc[0, "p_method"] == "t" and t.loc[0, "zones"] == 10
    assert t.loc[0, "p_value"] == pytest.approx(stats.spearmanr(a, b).pvalue, rel=1e-12)
    # four zones: the smallest exact two-sided p is 2/24 = 0.083, so rho = 1 is no synergy (t: 0)
    t = service_tradeoffs(np.stack([a[:4], 2 * a[:4]], axis=1)[None], [2020], ["a", "b"])
    assert t.loc[0, "rho"] == pytest.approx(1.0) and t.loc[0, "p_value"] == pytest.approx(2 / 24)
    assert t.loc[0, "relation"] == "none"


def test_proportional_coefficient_columns_correlate_perfectly_whatever_the_land() -> None:
    from ecodask.science.tradeoffs import cell_densities, cell_tradeoffs

    # service b's coefficients are 0.3 x a's: every cell's density of b is 0.3 x its density of a,
    # so their ranks are the same and rho = 1, across any composition; c's are not proportional.
    vc = np.array([[100.0, 20.0, 0.0, 60.0], [30.0, 6.0, 0.0, 18.0], [5.0, 80.0, 10.0, 0.0]])
    counts = np.random.default_rng(8).integers(0, 50, size=(4, 500))
    t = cell_tradeoffs(2020, cell_densities(counts, vc, np.zeros(3, int)), ["a", "b", "c"])
    got = t.set_index(["service_a", "service_b"])
    assert got.loc[("a", "b"), "rho"] == pytest.approx(1.0, abs=1e-6)
    assert got.loc[("a", "b"), "relation"] == "synergy"
    assert abs(got.loc[("a", "c"), "rho"]) < 0.99


def test_two_zones_give_no_correlation() -> None:
    t = service_tradeoffs(np.array([[[1.0, 2.0], [2.0, 1.0]]]), [2000], ["a", "b"])
    assert np.isnan(t.loc[0, "rho"]) and t.loc[0, "relation"] == "none"


@pytest.mark.usefixtures("dask_threads")
def test_a_run_writes_the_service_correlations_of_its_zones(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config
    from ecodask.science.landuse import REGION_ID
    from ecodask.synth import make_region

    from helpers import run_stages

    cfg = load_config(make_region(tmp_path / "r", seed=4, width_km=8, height_km=6, n_counties=6))
    run_stages(cfg, "ingest", "transitions_esv")
    out = RunFolder(cfg.output)
    t, esv, area = out.table("service_tradeoffs"), out.table("esv_by_service"), out.table("class_area")
    services = list(dict.fromkeys(esv.loc[esv["level"] == "service", "item"]))
    assert len(t) == len(cfg.years) * len(services) * (len(services) - 1) // 2
    # The first pair in the first year, recomputed from the run's own tables.
    year = cfg.years[0]
    per = esv[(esv["level"] == "service") & (esv["year"] == year) & (esv["zone_id"] != REGION_ID)]
    land = area[(area["year"] == year) & (area["zone_id"] != REGION_ID)].groupby("zone_id")["area_ha"].sum()
    dens = per.pivot(index="zone_id", columns="item", values="esv_cny")[services].div(land, axis=0)
    from scipy import stats

    want = stats.spearmanr(dens[services[0]], dens[services[1]]).statistic
    row = t[(t["year"] == year) & (t["service_a"] == services[0]) & (t["service_b"] == services[1])]
    assert row["rho"].iloc[0] == pytest.approx(want) and row["zones"].iloc[0] == len(dens) == 6
    assert row["p_method"].iloc[0] == "exact"
    assert row["p_value"].iloc[0] == pytest.approx(_enumerated_p(list(dens[services[0]]),
                                                                 list(dens[services[1]])))


def test_esv_per_capita_and_per_gdp_by_hand() -> None:
    from ecodask.science.per_capita import per_capita_table, with_region_total

    zones = pd.DataFrame({"zone": [1, 2], "zone_id": ["a", "b"], "zone_name": ["A", "B"]})
    esv = np.array([[100.0, 300.0, 400.0]])  # one year: zones a, b and the region, CNY/yr
    pop = with_region_total(np.array([[10.0, np.nan]]))  # b unknown: so is the region
    gdp = with_region_total(np.array([[1000.0, 2000.0]]))
    t = per_capita_table(esv, [2020], zones, {"stats": (pop, gdp)}).set_index("zone_id")
    assert t.loc["a", "esv_per_capita_cny"] == 10.0 and np.isnan(t.loc["b", "esv_per_capita_cny"])
    assert np.isnan(t.loc["ALL", "population"])
    assert t.loc["ALL", "esv_per_gdp"] == pytest.approx(400.0 / 3000.0)


@pytest.mark.usefixtures("dask_threads")
def test_a_run_counts_people_from_a_density_driver_and_the_county_statistics(tmp_path: Path) -> None:
    from affine import Affine

    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config

    from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, write_tif
    from helpers import edit_yaml, run_stages

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    write_tif(path.parent / "pop.tif", np.full((ROWS, COLS), 100.0, np.float32), load_config(path).grid.crs,
              Affine(RES, 0, X0, 0, -RES, Y1), -9999.0)  # 100 persons/km² everywhere
    pd.DataFrame({"code": [420101, 420102, 420101, 420102], "year": [2000, 2000, 2010, 2010],
                  "population": [1000, 2000, 1100, 2100], "gdp_cny": [1e8, 2e8, 1.5e8, 2.5e8]}
                 ).to_csv(path.parent / "stats.csv", index=False)
    edit_yaml(path, lambda d: (d["drivers"].update(pop={"path": "pop.tif", "density_of": "population"}),
                               d.update(county_stats="stats.csv", compensation={"enabled": False})))
    cfg = load_config(path)
    run_stages(cfg, "ingest", "transitions_esv")
    t = RunFolder(cfg.output).table("esv_per_capita")
    drv = t[(t["source"] == "driver:pop") & (t["year"] == 2010)].set_index("zone_id")
    # each county is 5 x 8 analysis cells of 0.96 km x 0.96 km: 36.864 km² x 100 persons/km²
    assert drv.loc["420102", "population"] == pytest.approx(3686.4)
    assert drv.loc["ALL", "population"] == pytest.approx(2 * 3686.4)
    stats = t[(t["source"] == "county_stats") & (t["year"] == 2010)].set_index("zone_id")
    assert stats.loc["420101", "esv_per_capita_cny"] == pytest.approx(stats.loc["420101", "esv_cny"] / 1100)
    assert stats.loc["ALL", "esv_per_gdp"] == pytest.approx(stats.loc["ALL", "esv_cny"] / 4e8)


@pytest.mark.usefixtures("dask_threads")
def test_county_statistics_without_population_or_gdp_give_no_per_capita_table(tmp_path: Path) -> None:
    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config
    from ecodask.science.per_capita import with_values

    from conftest import make_tiny_region
    from helpers import edit_yaml, run_stages

    nothing = np.full((1, 3), np.nan)
    assert list(with_values({"a": (nothing, nothing), "b": (nothing, np.array([[1.0, 2, 3]]))})) == ["b"]
    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    pd.DataFrame({"code": [420101, 420102], "year": [2000, 2000], "area_km2": [36.9, 36.9]}
                 ).to_csv(path.parent / "stats.csv", index=False)  # rows, but no population or GDP
    edit_yaml(path, lambda d: d.update(county_stats="stats.csv", compensation={"enabled": False}))
    cfg = load_config(path)
    run_stages(cfg, "ingest", "transitions_esv")
    out = RunFolder(cfg.output)
    assert out.table("esv_by_service") is not None and out.table("esv_per_capita") is None


def test_the_report_prints_counts_as_whole_numbers_and_the_drivers_caveat(tmp_path: Path) -> None:
    from ecodask.present.report import _per_capita, _tradeoffs

    (tmp_path / "tables").mkdir()
    rows = pd.DataFrame({"zone_id": ["ALL", "ALL"], "zone_name": ["all", "all"], "year": [2020, 2020],
                         "source": ["county_stats", "driver:pop"], "esv_cny": [3.0e9, 3.0e9],
                         "population": [3005878.0, 3686.4], "esv_per_capita_cny": [998.0406, 813802.9],
                         "gdp_cny": [1.5e11, np.nan], "esv_per_gdp": [0.02, np.nan]})
    rows[:1].to_parquet(tmp_path / "tables" / "esv_per_capita.parquet")
    section = "".join(_per_capita(tmp_path))
    assert "<td>3,005,878</td>" in section and "<td>150,000,000,000</td>" in section
    assert "<td>998.0406</td>" in section and "applied to every year" not in section
    rows.to_parquet(tmp_path / "tables" / "esv_per_capita.parquet")
    section = "".join(_per_capita(tmp_path))
    assert "<td>3,686</td>" in section and "applied to every year" in section and "<td>–</td>" in section
    # the trade-offs: the zones' p and how it was got; across the cells, the rule on rho
    t = service_tradeoffs(np.stack([np.arange(6.0), np.arange(6.0) ** 2], axis=1)[None], [2020], ["a", "b"])
    t.to_parquet(tmp_path / "tables" / "service_tradeoffs.parquet")
    section = "".join(_tradeoffs(tmp_path))
    assert "<th>p_method</th>" in section and "<td>exact</td>" in section and "synergy" in section
    t.rename(columns={"zones": "cells"}).to_parquet(tmp_path / "tables" / "service_tradeoffs_cells.parquet")
    section = "".join(_tradeoffs(tmp_path, "service_tradeoffs_cells", "cells"))
    assert "|rho| ≥ 0.3" in section and "<th>p_value</th>" not in section
    from ecodask.present.store_maps import tradeoff_chart

    chart = tradeoff_chart(tmp_path / "tables" / "service_tradeoffs_cells.parquet", tmp_path / "cells.png",
                           "cells", across="analysis cells")
    assert chart.stat().st_size > 0


@pytest.mark.usefixtures("dask_threads")
def test_a_rerun_without_the_density_driver_and_the_cells_leaves_none_of_their_tables(tmp_path: Path) -> None:
    # A run publishes a fresh work folder: the tables of options the rerun turned off do not stay.
    from affine import Affine

    from ecodask.io.layout import RunFolder
    from ecodask.run.config import load_config
    from ecodask.run.inprocess import run

    from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, write_tif
    from helpers import edit_yaml

    path = make_tiny_region(tmp_path / "r", years=(2000, 2010))
    write_tif(path.parent / "pop.tif", np.full((ROWS, COLS), 100.0, np.float32), load_config(path).grid.crs,
              Affine(RES, 0, X0, 0, -RES, Y1), -9999.0)
    edit_yaml(path, lambda d: (d["drivers"].update(pop={"path": "pop.tif", "density_of": "population"}),
                               d["esv"].update(cell_tradeoffs=True)))
    out = RunFolder(load_config(path).output)
    run(path, stages=["ingest", "transitions_esv"], log=lambda _: None)
    assert out.table("esv_per_capita") is not None and out.table("service_tradeoffs_cells") is not None
    edit_yaml(path, lambda d: (d["drivers"].pop("pop"), d["esv"].update(cell_tradeoffs=False)))
    run(path, stages=["ingest", "transitions_esv"], log=lambda _: None)
    assert out.table("esv_by_service") is not None
    assert not [*out.tables.glob("esv_per_capita.*"), *out.tables.glob("service_tradeoffs_cells.*")]


# ------------------------------------------------------------------------------------------
# across analysis cells


def test_cell_class_counts_by_hand() -> None:
    from ecodask.kernels.cell_classes import cell_class_counts

    # codes 1 and 2 are classes 0 and 1; 0 is no data (lut 2), 9 unknown (lut 3); zone 0 is outside.
    lut = np.full(256, 3, np.uint8)
    lut[[1, 2]] = [0, 1]
    lut[0] = 2
    codes = np.array([[1, 1, 2, 9, 2],
                      [2, 1, 0, 2, 2],
                      [1, 1, 1, 1, 1]], np.uint8)
    zone = np.array([[1, 1, 1, 1, 1],
                     [1, 0, 1, 1, 2],
                     [1, 1, 1, 1, 1]], np.uint16)
    got = cell_class_counts(zone, codes, lut, 2, 2)
    assert got.shape == (1, 2, 2, 3) and got.dtype == np.uint16
    # cells of 2 x 2 from the top-left; the last column and the last row are partial cells.
    assert got[0, 0].tolist() == [[2, 0, 0], [2, 2, 1]]  # class 0 (code 1): (1,1) is outside
    assert got[0, 1].tolist() == [[1, 2, 2], [0, 0, 0]]  # class 1 (code 2): 9 and 0 not counted
    assert cell_class_counts(zone, codes, lut, 2, 300).dtype == np.uint32  # 300² > 65,535


def test_the_fused_loop_counts_the_same_composition_run_by_run() -> None:
    from ecodask.kernels.cell_classes import cell_class_counts
    from ecodask.kernels.transitions_esv import transitions_esv

    rng = np.random.default_rng(5)
    # runs of random length, codes 0 (no data), 1-3 and 7 (unknown); zones 0-2; a partial last cell
    lc = np.repeat(rng.choice([0, 1, 2, 3, 7], (3, 37, 12)), rng.integers(4, 8, 12), axis=2)[:, :, :45]
    lc = np.ascontiguousarray(lc.astype(np.uint8))
    zone = np.ascontiguousarray(rng.integers(0, 3, (37, 1)).repeat(45, axis=1).astype(np.uint8))
    lut = np.full(256, 4, np.uint8)  # classes 0-2, no data 3, unknown 4
    lut[[1, 2, 3]] = [0, 1, 2]
    lut[0] = 3
    values = np.full((3, 256), np.nan)
    values[:, 1:4] = [10.0, 20.0, 30.0]
    comp = np.zeros((3, 5, 6, 5), np.int32)
    transitions_esv(zone, lc, lut, np.array([[0, 1], [1, 2]]), 2, values, 8, comp)
    np.testing.assert_array_equal(np.moveaxis(comp[..., :3], 3, 1), cell_class_counts(zone, lc, lut, 3, 8))
    assert comp[..., :3].sum() > 0 and comp[..., 4].sum() > 0  # unknown codes land in their own index
    with pytest.raises(ValueError, match="composition must be int32"):
        transitions_esv(zone, lc, lut, np.array([[0, 1]]), 2, values, 8, np.zeros((3, 5, 6, 4), np.int32))


def test_cell_densities_and_the_adjustment_by_hand() -> None:
    from ecodask.science.tradeoffs import cell_densities

    counts = np.array([[3, 0, 1], [1, 0, 1]])  # 2 classes x 3 cells; the middle cell has no land
    vc = np.array([[100.0, 20.0], [0.0, np.nan]])  # 2 services x 2 classes, CNY/ha/yr
    a, b = cell_densities(counts, vc, np.array([0, 1]))
    assert a.tolist() == [(3 * 100 + 20) / 4, (100 + 20) / 2] and b.tolist() == [0.0, 0.0]
    m = np.array([[2.0, 9.0, 0.5], [1.0, 1.0, 1.0]])  # groups x cells
    a, _ = cell_densities(counts, vc, np.array([0, 1]), m)
    assert a.tolist() == [80.0 * 2, 60.0 * 0.5]


def test_ranked_correlation_equals_scipy_with_ties_and_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    from scipy import stats

    from ecodask.science import tradeoffs

    # the hand case above: rho = 4.5 / sqrt(22.5)
    z = [tradeoffs.standard_ranks(np.array(v, float)) for v in ([1, 2, 2, 3], [1, 3, 2, 4])]
    rho, p = tradeoffs.spearman_ranked(z, 4)
    assert rho[0, 1] == pytest.approx(4.5 / np.sqrt(22.5), rel=1e-6)
    assert p[0, 1] == pytest.approx(stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]).pvalue, rel=1e-5)
    monkeypatch.setattr(tradeoffs, "BLOCK", 37)  # several blocks, the last one partial
    rng = np.random.default_rng(3)
    x = rng.integers(0, 12, size=(1000, 4)).astype(float)  # many ties
    x[:, 1] += 0.5 * x[:, 0]
    x[:, 2] = -x[:, 0] + rng.normal(0, 2, 1000)
    x[:, 3] = 7.0  # constant
    rho, p = tradeoffs.spearman_ranked([tradeoffs.standard_ranks(c) for c in x.T], 1000)
    ref = stats.spearmanr(x[:, :3])
    np.testing.assert_allclose(rho[:3, :3], ref.statistic, rtol=1e-6)
    np.testing.assert_allclose(p[:3, :3][np.triu_indices(3, 1)], ref.pvalue[np.triu_indices(3, 1)], rtol=1e-4)
    assert np.isnan(rho[3]).all() and np.isnan(p[:, 3]).all()
    t = tradeoffs.cell_tradeoffs(2020, list(x.T), ["a", "b", "c", "d"])
    assert list(t.columns) == tradeoffs.CELL_COLUMNS and set(t["cells"]) == {1000}
    assert set(t["p_method"]) == {"t"}
    assert t.set_index(["service_a", "service_b"]).loc[("a", "c"), "relation"] == "trade-off"


def test_across_cells_the_relation_reads_rho_not_p() -> None:
    from scipy import stats

    from ecodask.science.tradeoffs import RHO_MIN, cell_tradeoffs

    # 2,000 cells: b follows a weakly (rho ~0.15, p ~1e-11): not a synergy; c strongly (rho ~0.9)
    rng = np.random.default_rng(11)
    a = rng.normal(size=2000)
    b, c = 0.15 * a + rng.normal(size=2000), a + 0.4 * rng.normal(size=2000)
    got = cell_tradeoffs(2020, [a, b, c], ["a", "b", "c"]).set_index(["service_a", "service_b"])
    weak = stats.spearmanr(a, b)
    assert 0.05 < weak.statistic < RHO_MIN == 0.3 and weak.pvalue < 1e-6
    assert got.loc[("a", "b"), "rho"] == pytest.approx(weak.statistic, rel=1e-5)
    assert got.loc[("a", "b"), "relation"] == "none" and got.loc[("a", "c"), "relation"] == "synergy"
    # the threshold itself: rho of 0 and of -0.9 (sum d² = 38 over 5 values: 1 - 6·38/120)
    got = cell_tradeoffs(2020, [np.arange(5.0), np.array([2.0, 5, 3, 1, 4]), np.array([5.0, 3, 4, 2, 1])],
                         ["a", "b", "c"]).set_index(["service_a", "service_b"])
    assert got.loc[("a", "b"), "rho"] == pytest.approx(0.0, abs=1e-7)
    assert got.loc[("a", "b"), "relation"] == "none"
    assert got.loc[("a", "c"), "rho"] == pytest.approx(-0.9)
    assert got.loc[("a", "c"), "relation"] == "trade-off"


@pytest.mark.usefixtures("dask_threads")
@pytest.mark.parametrize("group_grids", [False, True], ids=["fused", "year-by-year"])
def test_a_run_writes_the_cells_composition_and_their_service_correlations(tmp_path: Path,
                                                                          group_grids: bool) -> None:
    from scipy import stats

    from ecodask.io.layout import RunFolder
    from ecodask.io.store import open_store
    from ecodask.run.config import load_config
    from ecodask.run.stages.transitions_esv import esv_model
    from ecodask.synth import make_region

    from helpers import edit_yaml, run_stages

    path = make_region(tmp_path / "r", seed=4, width_km=8, height_km=6, n_counties=6)
    edit_yaml(path, lambda d: (d["esv"].update(cell_tradeoffs=True, group_grids=group_grids),
                               d["grid"].update(chunk_size=128)))
    cfg = load_config(path)
    store, _ = run_stages(cfg, "ingest", "transitions_esv")
    pix, ana = open_store(store)
    model = esv_model(cfg, float(pix.attrs["pixel_area_ha"]))
    comp = ana["class_pixels"].values.astype(np.int64)  # (year, class, y, x)
    assert list(ana["class"].values) == model.index.names
    # the composition is the ESV grid's: its pixels are the valued pixels, its values the cells' ESV
    np.testing.assert_array_equal(comp.sum(axis=1), ana["esv_pixels"].values)
    esv = np.einsum("tkyx,tk->tyx", comp, model.vc.sum(axis=1)) * model.pixel_area_ha
    valued = comp.sum(axis=1) > 0
    np.testing.assert_allclose(esv[valued], ana["esv"].values[valued], rtol=1e-9)
    # the table: rho of the first two services in the last year, straight from scipy
    t = RunFolder(cfg.output).table("service_tradeoffs_cells")
    services = model.table.service_names
    assert len(t) == len(cfg.years) * len(services) * (len(services) - 1) // 2
    n = comp[-1].reshape(comp.shape[1], -1)[:, valued[-1].ravel()]
    dens = model.vc[-1] @ n / n.sum(axis=0)  # (services, cells) CNY/ha/yr
    want = stats.spearmanr(dens[0], dens[1])
    row = t[(t["year"] == cfg.years[-1]) & (t["service_a"] == services[0]) & (t["service_b"] == services[1])]
    assert row["rho"].iloc[0] == pytest.approx(want.statistic, rel=1e-6)
    assert row["cells"].iloc[0] == int(valued[-1].sum()) > 40
    assert min(pix["zone"].data.numblocks) > 1  # cells written by several tasks, edges clipped
    # a run without the option leaves neither the composition nor the table behind
    edit_yaml(path, lambda d: d["esv"].update(cell_tradeoffs=False))
    run_stages(load_config(path), "transitions_esv")
    assert "class_pixels" not in open_store(store)[1]
