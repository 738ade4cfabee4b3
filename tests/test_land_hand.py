"""Transitions, class areas, ESV, change rates, dynamic degrees, sensitivity and projection on a
4 x 6 raster whose every figure is worked out by hand below (methods.md sections 2-4).

Zone 1 is the left three columns, zone 2 the right three. CLCD codes: 1 cropland (FaL), 2 forest
(FoL), 5 water (WL), 8 impervious (CL), 0 no data. Xinzhou coefficients (CNY/ha/yr, totals over
the 11 services): FaL 5758.59, FoL 22822.83, WL 102906.99, CL 0. One pixel = 0.09 ha.
"""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest

from ecodask.chunked.adjustment import adjustment_multiplier
from ecodask.chunked.landpass import land_pass
from ecodask.io.catalogs import load_class_scheme, load_esv_table
from ecodask.science import esv as esvmod
from ecodask.science.esv import EsvModel
from ecodask.science.landuse import ClassIndex

from conftest import make_tiny_region, tiny_landcover
from helpers import run_stages

Y2000 = np.array([[1, 1, 1, 2, 2, 2],
                  [1, 1, 2, 2, 2, 2],
                  [2, 2, 2, 2, 2, 2],
                  [5, 5, 0, 2, 2, 2]], np.uint8)
Y2010 = np.array([[1, 1, 8, 2, 2, 2],
                  [8, 1, 2, 2, 2, 1],
                  [2, 2, 1, 2, 2, 2],
                  [5, 5, 5, 2, 2, 2]], np.uint8)
ZONE = np.array([[1, 1, 1, 2, 2, 2]] * 4, np.uint8)
ZONES = pd.DataFrame({"zone": [1, 2], "zone_id": ["101", "102"], "zone_name": ["West", "East"],
                      "area_ha": [1.08, 1.08]})
FAL, FOL, WL = 5758.59, 22822.83, 102906.99  # sums of the 11 rows (the printed totals round differently)
FOOD = {"FaL": 984.87, "FoL": 292.56, "WL": 758.93}


@pytest.fixture(scope="module")
def tables() -> dict[str, pd.DataFrame]:
    # Xinzhou's table holds values (CNY/ha/yr): no standard equivalent in either year.
    model = EsvModel.build(load_class_scheme("clcd"), load_esv_table("xinzhou_2023"), (2000, 2010),
                           [None, None], 0.09, projection_year=2020)
    with dask.config.set(scheduler="threads", num_workers=2):
        lc = da.from_array(np.stack([Y2000, Y2010]), chunks=(1, 2, 2))
        res = land_pass(da.from_array(ZONE, chunks=(2, 2)), lc, lut=model.index.lut, pairs=model.pairs,
                        n_zones=2, values=model.pixel_values(), factor=2)
    out = model.tables(res.counts, res.zone_sums, ZONES)
    out["_coarse"] = res.coarse
    return out


def _one(df: pd.DataFrame, **keys) -> pd.Series:
    sel = df
    for k, v in keys.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, keys
    return sel.iloc[0]


def test_class_areas(tables) -> None:
    ca = tables["class_area"]
    # Zone 1, 2000: 5 cropland, 4 forest, 2 water pixels (one no-data pixel not counted).
    for code, px in {1: 5, 2: 4, 5: 2, 8: 0}.items():
        assert _one(ca, zone_id="101", year=2000, class_code=code).area_ha == pytest.approx(px * 0.09)
    # Zone 1, 2010: 4 cropland, 3 forest, 3 water (the former no-data pixel), 2 impervious.
    for code, px in {1: 4, 2: 3, 5: 3, 8: 2}.items():
        assert _one(ca, zone_id="101", year=2010, class_code=code).area_ha == pytest.approx(px * 0.09)
    assert _one(ca, zone_id="ALL", year=2010, class_code=2).pixels == 3 + 11


def test_transfer_matrix(tables) -> None:
    tr = tables["transitions"]
    z1 = tr[(tr.zone_id == "101") & (tr.pixels > 0)]
    got = {(r.class_from, r.class_to): r.pixels for r in z1.itertuples()}
    # The no-data -> water pixel is in neither year's matrix row.
    assert got == {(1, 1): 3, (1, 8): 2, (2, 2): 3, (2, 1): 1, (5, 5): 2}
    z2 = tr[(tr.zone_id == "102") & (tr.pixels > 0)]
    assert {(r.class_from, r.class_to): r.pixels for r in z2.itertuples()} == {(2, 2): 11, (2, 1): 1}
    # ESV gained / lost by a transition: area x (VC_to - VC_from).
    lost = _one(tr, zone_id="101", class_from=1, class_to=8).esv_change_cny
    assert lost == pytest.approx(0.18 * (0 - FAL))
    lost = _one(tr, zone_id="ALL", class_from=2, class_to=1).esv_change_cny
    assert lost == pytest.approx(0.18 * (FAL - FOL))
    assert len(tr[tr.zone_id == "101"]) == 9 * 9  # full matrix of the scheme's classes


def test_esv_by_service_and_change(tables) -> None:
    e = tables["esv_by_service"]
    esv_2000 = 0.45 * FAL + 0.36 * FOL + 0.18 * WL  # 29330.8389
    esv_2010 = 0.36 * FAL + 0.27 * FOL + 0.27 * WL + 0.18 * 0.0  # 36020.142
    def total(zone: str, year: int) -> float:
        return _one(e, zone_id=zone, year=year, level="total").esv_cny

    assert total("101", 2000) == pytest.approx(esv_2000, rel=1e-12)
    assert total("101", 2010) == pytest.approx(esv_2010, rel=1e-12)
    food = 0.45 * FOOD["FaL"] + 0.36 * FOOD["FoL"] + 0.18 * FOOD["WL"]  # 685.1205
    assert _one(e, zone_id="101", year=2000, item="food_production").esv_cny == pytest.approx(food, rel=1e-12)
    assert total("102", 2000) == pytest.approx(12 * 0.09 * FOL, rel=1e-12)
    market = _one(e, zone_id="101", year=2000, item="market").esv_cny
    # market = the provisioning services: food production + raw materials + water supply
    assert market == pytest.approx(0.45 * (984.87 + 1575.79 + 23.17) + 0.36 * (292.56 + 672.03 + 347.6)
                                   + 0.18 * (758.93 + 422.91 + 6303.15))
    assert market + _one(e, zone_id="101", year=2000, item="non_market").esv_cny == pytest.approx(esv_2000)
    assert total("ALL", 2000) == pytest.approx(esv_2000 + 12 * 0.09 * FOL)

    c = _one(tables["esv_change"], zone_id="101", item="total", year_from=2000, year_to=2010)
    assert c.change_cny == pytest.approx(esv_2010 - esv_2000)
    assert c.rate_pct == pytest.approx((esv_2010 - esv_2000) / esv_2000 * 100)  # 22.806 %
    assert c.change_1e8cny == pytest.approx((esv_2010 - esv_2000) / 1e8)


def test_esv_analysis_grid(tables) -> None:
    coarse = tables["_coarse"]  # (year, layer, 2, 3): 2 x 2 pixel cells
    # 2000, top-left cell: pixels 1, 1, 1, 1 -> 4 x 0.09 x FaL.
    assert coarse[0, 0, 0, 0] == pytest.approx(4 * 0.09 * FAL)
    # 2000, bottom-middle cell: pixels (2, 2) above (0, 2) -> the no-data pixel adds nothing.
    assert coarse[0, 0, 1, 1] == pytest.approx(3 * 0.09 * FOL)
    assert coarse[1].sum() == pytest.approx(_one(tables["esv_by_service"], zone_id="ALL", year=2010,
                                                 level="total").esv_cny)


def test_dynamic_degrees(tables) -> None:
    dd = tables["dynamic_degree"]
    crop = _one(dd, zone_id="101", kind="single", class_code=1)
    assert (crop.area_from_ha, crop.area_to_ha) == pytest.approx((0.45, 0.36))
    moved = (crop.transfer_out_ha, crop.transfer_in_ha, crop.net_change_ha)
    assert moved == pytest.approx((0.18, 0.09, -0.09))
    assert crop.dynamic_degree_pct_per_yr == pytest.approx((0.36 - 0.45) / 0.45 / 10 * 100)  # -2.0
    forest = _one(dd, zone_id="101", kind="single", class_code=2)
    assert forest.dynamic_degree_pct_per_yr == pytest.approx(-2.5)
    assert np.isnan(_one(dd, zone_id="101", kind="single", class_code=8).dynamic_degree_pct_per_yr)
    lc = _one(dd, zone_id="101", kind="comprehensive")
    assert lc.dynamic_degree_pct_per_yr == pytest.approx((0.18 + 0.09) / (2 * 0.99) / 10 * 100)  # 1.3636


def test_sensitivity(tables) -> None:
    s = tables["sensitivity"]
    esv_2000 = 0.45 * FAL + 0.36 * FOL + 0.18 * WL
    for direction, d in (("+50%", 0.5), ("-50%", -0.5)):
        row = _one(s, zone_id="101", year=2000, esv_class="FaL", direction=direction)
        esv_j = esv_2000 + d * 0.45 * FAL
        assert row.esv_adjusted_cny == pytest.approx(esv_j)
        assert row.cs == pytest.approx(abs(((esv_j - esv_2000) / esv_2000) / d))  # 0.08835
    assert np.isnan(_one(s, zone_id="101", year=2000, esv_class="CL", direction="+50%").cs)


def test_markov_projection(tables) -> None:
    p = tables["projection"]
    # P (zone 1): cropland stays 3/5, -> impervious 2/5; forest stays 3/4, -> cropland 1/4; water stays;
    # impervious (absent in 2000) keeps its area. From the 2010 map's areas (pixels): 4, 3, 3, 2 (the
    # water pixel without data in 2000 counted: the transfer matrix's column sums would give 2).
    expect = {1: 4 * 0.6 + 3 * 0.25, 2: 3 * 0.75, 5: 3.0, 8: 4 * 0.4 + 2}
    for code, px in expect.items():
        row = _one(p, zone_id="101", year=2020, class_code=code)
        assert row.area_ha == pytest.approx(px * 0.09)
    assert _one(p, zone_id="101", year=2020, class_code=1).esv_cny == pytest.approx(3.15 * 0.09 * FAL)
    assert _one(p, zone_id="101", year=2020, class_code=5).change_ha == pytest.approx(0.0)
    for code in expect:  # the region is the sum of its zones' projections
        assert _one(p, zone_id="ALL", year=2020, class_code=code).area_ha == pytest.approx(
            _one(p, zone_id="101", year=2020, class_code=code).area_ha
            + _one(p, zone_id="102", year=2020, class_code=code).area_ha)


def test_standard_equivalent_from_crops() -> None:
    stats = pd.DataFrame({"year": [2000, 2000, 2010], "rice_sown_ha": [60.0, 40.0, 1.0],
                          "rice_price_cny_per_kg": [2.0, 2.0, 9.0], "rice_yield_kg_per_ha": [6000, 6000, 1],
                          "wheat_sown_ha": [50.0, 0.0, 1.0], "wheat_price_cny_per_kg": [2.4, 2.4, 9.0],
                          "wheat_yield_kg_per_ha": [5000, 5000, 1]})
    # (1/7) (100 x 2.0 x 6000 + 50 x 2.4 x 5000) / 150 = 12000 / 7
    assert esvmod.standard_equivalent_from_crops(stats, 2000) == pytest.approx(12000 / 7)


def test_equivalent_table_times_standard_equivalent() -> None:
    scheme, table = load_class_scheme("clcd"), load_esv_table("xie2015")
    vc = esvmod.coefficient_matrix(table, scheme, ClassIndex(scheme), 3406.5)
    f = table.service_names.index("food_production")
    # CLCD cropland is valued as Xie's dry land: food production 0.85 equivalents.
    assert vc[f, 0] == pytest.approx(table.values["food_production"]["dry_land"] * 3406.5)


def test_single_year_has_areas_and_esv_but_no_transitions() -> None:
    model = EsvModel.build(load_class_scheme("clcd"), load_esv_table("xinzhou_2023"), (2000,), [None], 0.09)
    assert model.pairs == [(0, 0)]
    assert model.pixel_values().shape == (1, 4, 256)  # one year, the four service groups
    with dask.config.set(scheduler="sync"):
        res = land_pass(da.from_array(ZONE, chunks=2), da.from_array(Y2000[None], chunks=(1, 2, 2)),
                        lut=model.index.lut, pairs=model.pairs, n_zones=2, values=model.pixel_values(),
                        factor=2)
    out = model.tables(res.counts, res.zone_sums, ZONES)
    assert _one(out["class_area"], zone_id="101", class_code=1).pixels == 5
    total = _one(out["esv_by_service"], zone_id="101", level="total").esv_cny
    assert total == pytest.approx(0.45 * FAL + 0.36 * FOL + 0.18 * WL)
    assert out["transitions"].empty and out["dynamic_degree"].empty and out["esv_change"].empty
    assert "projection" not in out


def test_adjustment_multiplier_is_driver_over_its_zone_pixel_mean(tmp_path) -> None:
    import xarray as xr

    from ecodask.errors import InputError

    zone = np.array([[1, 1, 2, 2],
                     [1, 1, 0, 0],
                     [0, 0, 0, 2],
                     [0, 0, 0, 0]], np.uint8)  # 2 x 2 cells: 4, 2, 0 and 1 zone pixels
    v = np.array([[1.0, 2.0], [5.0, 8.0]])
    mean = (4 * 1.0 + 2 * 2.0 + 1 * 8.0) / 7  # pixel-weighted; the empty cell does not count
    drivers = {"npp": (tmp_path / "npp.tif", xr.DataArray(v, dims=("y", "x")))}
    groups = ["provisioning", "regulating", "supporting", "cultural"]
    zone_da = da.from_array(zone, chunks=2)
    m = adjustment_multiplier({"regulating": "npp"}, drivers, zone_da, 2, groups)
    np.testing.assert_allclose(m[1], [[1.0 / mean, 2.0 / mean], [1.0, 8.0 / mean]])
    assert (m[[0, 2, 3]] == 1.0).all()
    v[1, 1] = np.nan  # a cell with zone pixels and no driver value
    with pytest.raises(InputError, match=r"npp.tif: esv.adjustment.regulating = 'npp': no value in 1 "):
        adjustment_multiplier({"regulating": "npp"}, drivers, zone_da, 2, groups)


def test_stage_with_crop_standard_equivalent_adjustment_and_group_grids(tmp_path) -> None:
    """Through the real stage: an equivalent-factor table valued with Ea from county crop data per
    year, a spatial adjustment of the regulating group and per-group grids; the county table, the
    30 m grids and the analysis grid agree."""
    import xarray as xr

    from ecodask.run.config import load_config

    folder = tmp_path / "r"
    folder.mkdir()
    pd.DataFrame({"code": [420101, 420102, 420101, 420102], "year": [2000, 2000, 2010, 2010],
                  "rice_sown_ha": [100.0, 50.0, 80.0, 80.0], "rice_price_cny_per_kg": [2.0, 2.0, 3.0, 3.0],
                  "rice_yield_kg_per_ha": [6000.0, 5400.0, 6500.0, 6500.0]}
                 ).to_csv(folder / "stats.csv", index=False)
    ea = {2000: (100 * 2.0 * 6000 + 50 * 2.0 * 5400) / 150 / 7, 2010: 3.0 * 6500 / 7}  # CNY/ha/yr
    path = make_tiny_region(folder, county_stats="stats.csv", compensation={"enabled": False},
                            esv={"table": "xie2015", "standard_equivalent": "from_county_stats",
                                 "adjustment": {"regulating": "elevation"}, "group_grids": True})
    cfg = load_config(path)
    with dask.config.set(scheduler="threads", num_workers=2):
        store, paths = run_stages(cfg, "ingest", "transitions_esv")
    table = pd.read_csv(paths["esv_by_service.csv"], dtype={"zone_id": str})
    pix = xr.open_zarr(store, consolidated=False)
    ana = xr.open_zarr(store, group="analysis", consolidated=False)
    scheme, xie = load_class_scheme("clcd"), load_esv_table("xie2015")
    mapping = scheme.mapping_to("xie2015")
    for t, year in enumerate((2000, 2010)):
        region = table[(table.zone_id == "ALL") & (table.year == year)].set_index("item").esv_cny
        # Unadjusted groups: areas x equivalents x Ea(year), by hand from the raster's codes.
        codes, px = np.unique(tiny_landcover(0, t), return_counts=True)
        food = sum(n * 0.09 * xie.values["food_production"][mapping[int(c)]] * ea[year]
                   for c, n in zip(codes, px, strict=True))
        assert region["food_production"] == pytest.approx(food, rel=1e-9)
        regulating = [sv.name for sv in xie.services if sv.group == "regulating"]
        plain = sum(n * 0.09 * xie.values[f][mapping[int(c)]] * ea[year]
                    for c, n in zip(codes, px, strict=True) for f in regulating)
        assert abs(region["regulating"] / plain - 1) > 1e-3  # the adjustment changed it
        # Grids: the total is the sum of the group grids; the county table equals the grid's sum.
        total = pix["esv"].isel(year=t).values.astype(np.float64)
        groups = pix["esv_group"].isel(year=t).values.astype(np.float64)
        np.testing.assert_allclose(total, groups.sum(axis=0), rtol=1e-5)
        assert np.nansum(total) == pytest.approx(region["total"], rel=1e-5)
        assert np.nansum(groups[1]) == pytest.approx(region["regulating"], rel=1e-5)
        assert float(ana["esv"].isel(year=t).sum()) == pytest.approx(region["total"], rel=1e-9)
    assert list(pix["group"].values) == ["provisioning", "regulating", "supporting", "cultural"]
