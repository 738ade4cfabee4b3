"""Tests for the synthetic-region generator (ecodask.synth)."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import rasterio
import yaml
from rasterio.warp import transform_bounds

from ecodask import synth
from ecodask.run.config import load_config
from ecodask.science.compensation import ROLES
from ecodask.synth import CHINA_ALBERS, make_region

YEARS = (2000, 2010, 2020)
TIFS = [f"landcover_{y}.tif" for y in YEARS] + [
    "dem_utm49n.tif",
    "precipitation_1km.tif",
    "ndvi_30m.tif",
    "population_1km.tif",
]


@pytest.fixture(scope="module")
def regions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three default-size regions: seed 0 twice (different folders) and seed 1."""
    out = {}
    for key, seed in (("a", 0), ("b", 0), ("c", 1)):
        cfg = make_region(tmp_path_factory.mktemp(f"region_{key}"), seed=seed)
        out[key] = cfg.parent
    return out


@pytest.fixture(scope="module")
def region(regions: dict[str, Path]) -> Path:
    return regions["a"]


@pytest.fixture(scope="module")
def landcover(region: Path) -> dict[int, np.ndarray]:
    return {y: _read(region / "inputs" / f"landcover_{y}.tif") for y in YEARS}


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1)


def _is_albers(crs: object) -> bool:
    return pyproj.CRS.from_user_input(crs).equals(pyproj.CRS.from_user_input(CHINA_ALBERS))


def _shares(a: np.ndarray) -> np.ndarray:
    return np.bincount(a.ravel(), minlength=10) / a.size


# --------------------------------------------------------------------------------------
# config


def test_config_schema(region: Path) -> None:
    cfg_path = region / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    assert list(cfg) == [
        "name", "grid", "landcover", "esv", "zones", "drivers", "county_stats", "analysis", "output",
        "cluster",
    ]
    assert cfg["name"] == "synthetic-region"
    bounds = cfg["grid"].pop("bounds")
    assert cfg["grid"] == {
        "crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 4096,
    }
    with rasterio.open(region / "inputs" / "landcover_2000.tif") as src:
        assert bounds == list(src.bounds)  # the grid is pinned to the land-cover rectangle
    assert load_config(cfg_path).grid.bounds == tuple(bounds)  # and the file is a valid config
    assert cfg["landcover"]["scheme"] == "clcd"
    assert cfg["landcover"]["years"] == {y: f"inputs/landcover_{y}.tif" for y in YEARS}
    assert all(isinstance(y, int) for y in cfg["landcover"]["years"])
    assert cfg["esv"] == {"table": "xinzhou_2023", "uncertainty": {"enabled": True, "tables": ["xie2015"]},
                          "cell_tradeoffs": True}
    assert cfg["zones"] == {
        "path": "inputs/counties.gpkg", "id_field": "code", "name_field": "name",
    }
    assert set(cfg["drivers"]) == {"elevation", "precipitation", "ndvi", "population"}
    assert cfg["cluster"] == {
        "kind": "local", "n_workers": 2, "threads_per_worker": 1, "memory_limit": "4GiB",
    }
    paths = [*cfg["landcover"]["years"].values(), cfg["zones"]["path"], cfg["county_stats"]]
    paths += [d["path"] for d in cfg["drivers"].values()]
    for rel in paths:
        assert (region / rel).is_file(), rel
    assert all(d["kind"] == "continuous" for d in cfg["drivers"].values())
    assert cfg["output"] == "output"


# --------------------------------------------------------------------------------------
# determinism


def test_same_seed_is_byte_identical(regions: dict[str, Path]) -> None:
    a, b = regions["a"], regions["b"]
    assert (a / "config.yaml").read_bytes() == (b / "config.yaml").read_bytes()
    csv = "inputs/county_stats.csv"
    assert (a / csv).read_bytes() == (b / csv).read_bytes()
    for name in TIFS:
        pa, pb = a / "inputs" / name, b / "inputs" / name
        np.testing.assert_array_equal(_read(pa), _read(pb))
        assert pa.read_bytes() == pb.read_bytes(), name
    gpkg = "inputs/counties.gpkg"
    assert (a / gpkg).read_bytes() == (b / gpkg).read_bytes()


def test_different_seed_differs(regions: dict[str, Path]) -> None:
    a, c = regions["a"], regions["c"]
    csv = "inputs/county_stats.csv"
    assert (a / csv).read_bytes() != (c / csv).read_bytes()
    for name in TIFS:
        ra, rc = _read(a / "inputs" / name), _read(c / "inputs" / name)
        assert ra.shape != rc.shape or not np.array_equal(ra, rc), name
    ga = gpd.read_file(a / "inputs/counties.gpkg")
    gc = gpd.read_file(c / "inputs/counties.gpkg")
    assert not ga.geometry.geom_equals(gc.geometry).all()


# --------------------------------------------------------------------------------------
# land cover


def test_landcover_codes_and_shares(landcover: dict[int, np.ndarray]) -> None:
    for year, lc in landcover.items():
        assert lc.dtype == np.uint8
        assert set(np.unique(lc).tolist()) <= set(range(1, 10)), year
        s = _shares(lc)
        assert 0.40 <= s[1] <= 0.55, (year, "cropland", s[1])
        assert 0.20 <= s[2] <= 0.35, (year, "forest", s[2])
        assert 0.03 <= s[8] <= 0.10, (year, "impervious", s[8])
        assert 0.03 <= s[5] + s[9] <= 0.08, (year, "water+wetland", s[5] + s[9])
        assert s[6] == 0.0
        assert s[3] > 0 and s[4] > 0 and s[7] > 0


def test_landcover_is_patchy(landcover: dict[int, np.ndarray]) -> None:
    for lc in landcover.values():
        assert (lc[:, 1:] == lc[:, :-1]).mean() > 0.8
        assert (lc[1:, :] == lc[:-1, :]).mean() > 0.8


def test_transitions_are_plausible(landcover: dict[int, np.ndarray]) -> None:
    first, last = landcover[YEARS[0]], landcover[YEARS[-1]]
    changed = (first != last).mean()
    assert 0.01 <= changed <= 0.20
    assert ((first == 1) & (last == 8)).sum() > 0  # towns grow into cropland
    assert ((first == 1) & (last == 2)).sum() > 0  # afforestation
    assert ((first == 1) & (last == 5)).sum() > 0  # ponds
    assert ((first == 8) & (last != 8)).sum() == 0  # towns never shrink
    assert _shares(last)[8] > _shares(first)[8]
    # Changes accumulate monotonically: 2000->2010 plus 2010->2020 equals 2000->2020.
    mid = landcover[YEARS[1]]
    assert ((first != mid) & (mid != last) & (first == last)).sum() == 0


def test_larger_change_with_more_time(tmp_path: Path) -> None:
    cfg = make_region(tmp_path, seed=3, width_km=6, height_km=5, years=(2020, 1990))
    lc = {y: _read(cfg.parent / "inputs" / f"landcover_{y}.tif") for y in (1990, 2020)}
    assert 0.01 <= (lc[1990] != lc[2020]).mean() <= 0.2
    assert yaml.safe_load(cfg.read_text())["landcover"]["years"] == {
        1990: "inputs/landcover_1990.tif",
        2020: "inputs/landcover_2020.tif",
    }


# --------------------------------------------------------------------------------------
# grids and CRSs


def test_raster_grids_and_crs(region: Path) -> None:
    inputs = region / "inputs"
    ref = None
    for y in YEARS:
        with rasterio.open(inputs / f"landcover_{y}.tif") as src:
            assert _is_albers(src.crs)
            assert src.res == (30.0, 30.0)
            assert src.nodata == 0
            assert src.dtypes[0] == "uint8"
            assert src.block_shapes[0] == (256, 256)
            assert src.compression.value.lower() == "deflate"
            x0, y0, x1, y1 = src.bounds
            for v in (x0, y0, x1, y1):
                assert v % 960 == 0
            assert (x1 - x0, y1 - y0) == (24000.0, 19 * 960.0)
            if ref is None:
                ref = (src.transform, src.shape)
            assert (src.transform, src.shape) == ref
    with rasterio.open(inputs / "ndvi_30m.tif") as src:
        assert _is_albers(src.crs)
        assert (src.transform, src.shape) == ref
        assert src.dtypes[0] == "float32"
    with rasterio.open(inputs / "dem_utm49n.tif") as src:
        assert src.crs.to_epsg() == 32649
        assert src.res == (30.0, 30.0)
        assert src.dtypes[0] == "int16"
        assert src.nodata == -9999
        dem = src.read(1, masked=True)
        assert 0 < dem.min() and dem.max() < 1000
        albers_box = transform_bounds(src.crs, CHINA_ALBERS, *src.bounds)
    lc_bounds = rasterio.transform.array_bounds(*ref[1], ref[0])
    lc_bounds = (lc_bounds[0], lc_bounds[1], lc_bounds[2], lc_bounds[3])
    assert albers_box[0] <= lc_bounds[0] and albers_box[1] <= lc_bounds[1]
    assert albers_box[2] >= lc_bounds[2] and albers_box[3] >= lc_bounds[3]
    with rasterio.open(inputs / "precipitation_1km.tif") as src:
        assert src.crs.to_epsg() == 4326
        assert src.res == pytest.approx((0.01, 0.01))
        assert src.dtypes[0] == "float32"
        precip = src.read(1)
        assert 500 < precip.min() and precip.max() < 2500
        w, s, e, n = transform_bounds(CHINA_ALBERS, "EPSG:4326", *lc_bounds)
        b = src.bounds
        assert b.left < w and b.bottom < s and b.right > e and b.top > n
    with rasterio.open(inputs / "population_1km.tif") as src:
        assert _is_albers(src.crs)
        assert src.res == (1000.0, 1000.0)
        pop = src.read(1)
        assert src.dtypes[0] == "float32"
        assert pop.min() > 0 and pop.max() > 10 * np.median(pop)
    gdf = gpd.read_file(inputs / "counties.gpkg")
    assert gdf.crs.to_epsg() == 4326


def test_precipitation_increases_with_elevation(region: Path) -> None:
    with rasterio.open(region / "inputs" / "precipitation_1km.tif") as src:
        precip = src.read(1)
        rows, cols = np.mgrid[0 : src.height, 0 : src.width]
        lon, lat = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    with rasterio.open(region / "inputs" / "dem_utm49n.tif") as dem:
        x, y = pyproj.Transformer.from_crs(4326, dem.crs, always_xy=True).transform(lon, lat)
        samples = np.array([v[0] for v in dem.sample(zip(x, y, strict=True), masked=False)])
    ok = samples != -9999
    assert ok.sum() > 50
    r = np.corrcoef(samples[ok], precip.ravel()[ok])[0, 1]
    assert r > 0.5


# --------------------------------------------------------------------------------------
# counties and statistics


def test_counties_cover_rectangle(region: Path) -> None:
    gdf = gpd.read_file(region / "inputs" / "counties.gpkg")
    assert list(gdf["code"]) == [990101 + i for i in range(8)]
    assert list(gdf["name"]) == [f"County {i + 1:02d}" for i in range(8)]
    assert gdf.geometry.is_valid.all()
    albers = gdf.to_crs(CHINA_ALBERS)
    with rasterio.open(region / "inputs" / "landcover_2000.tif") as src:
        x0, y0, x1, y1 = src.bounds
    rect_area = (x1 - x0) * (y1 - y0)
    assert albers.area.sum() == pytest.approx(rect_area, rel=1e-3)
    assert albers.union_all().area == pytest.approx(rect_area, rel=1e-3)
    assert (albers.area > 0.02 * rect_area).all()


def test_county_stats(region: Path, landcover: dict[int, np.ndarray]) -> None:
    stats = pd.read_csv(region / "inputs" / "county_stats.csv")
    assert list(stats.columns) == synth.COUNTY_STATS_COLUMNS
    codes = gpd.read_file(region / "inputs" / "counties.gpkg")["code"].tolist()
    assert len(stats) == len(codes) * len(YEARS)
    assert set(zip(stats["code"], stats["year"], strict=True)) == {
        (c, y) for c in codes for y in YEARS
    }
    assert set(stats["role"]) == set(ROLES)
    assert stats.groupby("code")["role"].nunique().eq(1).all()
    for col in ("engel_urban", "engel_rural", "urbanization_rate"):
        assert stats[col].between(0, 1).all(), col
    assert stats["population"].between(1e5, 1e6).all()
    gdp_pc = stats["gdp_cny"] / stats["population"]
    assert gdp_pc.between(2.9e4, 1.21e5).all()
    for _, g in stats.groupby("code"):
        assert g.sort_values("year")["gdp_cny"].is_monotonic_increasing
    assert (stats["cultivated_area_ha"] > 0).all()
    # cultivated area adds up to the cropland of the land-cover maps (0.09 ha per pixel)
    for year, lc in landcover.items():
        total = stats.loc[stats["year"] == year, "cultivated_area_ha"].sum()
        assert total == pytest.approx((lc == 1).sum() * 0.09, rel=1e-6)
    for crop in ("rice", "wheat", "maize"):
        assert (stats[f"{crop}_sown_ha"] >= 0).all()
        assert stats[f"{crop}_price_cny_per_kg"].between(0.5, 5).all()
        assert stats[f"{crop}_yield_kg_per_ha"].between(2000, 12000).all()
    # the key development county is more urban and richer than the average county
    last = stats[stats["year"] == YEARS[-1]]
    dev = last[last["role"] == "key_development"]
    assert dev["urbanization_rate"].mean() >= last["urbanization_rate"].mean()
    assert (dev["gdp_cny"] / dev["population"]).mean() >= (
        last["gdp_cny"] / last["population"]
    ).mean()


# --------------------------------------------------------------------------------------
# drivers


def test_ndvi_correlates_with_forest(region: Path, landcover: dict[int, np.ndarray]) -> None:
    ndvi = _read(region / "inputs" / "ndvi_30m.tif")
    lc = landcover[YEARS[-1]]
    assert ndvi.shape == lc.shape
    assert np.isfinite(ndvi).all()
    forest = (lc == 2).astype(np.float64)
    assert np.corrcoef(forest.ravel(), ndvi.ravel().astype(np.float64))[0, 1] > 0.5
    assert ndvi[lc == 2].mean() > ndvi[lc == 1].mean() > ndvi[lc == 8].mean()
    assert abs(float(ndvi[lc == 5].mean())) < 0.05


# --------------------------------------------------------------------------------------
# helpers and validation


def test_smooth_noise_is_seeded_and_standardised() -> None:
    a = synth.smooth_noise(np.random.default_rng(5), (300, 400), 40.0)
    b = synth.smooth_noise(np.random.default_rng(5), (300, 400), 40.0)
    c = synth.smooth_noise(np.random.default_rng(6), (300, 400), 40.0)
    assert a.dtype == np.float32 and a.shape == (300, 400)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert abs(float(a.mean())) < 0.1 and float(a.std()) == pytest.approx(1.0, abs=0.1)
    # smooth: neighbours are strongly correlated
    assert np.corrcoef(a[:, 1:].ravel(), a[:, :-1].ravel())[0, 1] > 0.95


def test_region_grid_snaps_to_960m() -> None:
    grid = synth.region_grid((112.5, 30.6), 24.0, 18.0)
    for v in grid.bounds:
        assert v % 960 == 0
    assert grid.shape == (608, 800)
    x, y = pyproj.Transformer.from_crs(4326, CHINA_ALBERS, always_xy=True).transform(112.5, 30.6)
    x0, y0, x1, y1 = grid.bounds
    assert abs((x0 + x1) / 2 - x) <= 960
    assert abs((y0 + y1) / 2 - y) <= 960
    tiny = synth.region_grid((112.5, 30.6), 0.1, 0.1)
    assert tiny.shape == (32, 32)


def test_make_counties_tessellates() -> None:
    bounds = (0.0, 0.0, 9600.0, 4800.0)
    polys = synth.make_counties(np.random.default_rng(0), bounds, 5)
    assert len(polys) == 5
    assert math.isclose(sum(p.area for p in polys), 9600.0 * 4800.0, rel_tol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"width_km": 0}, "width_km"),
        ({"width_km": -3.0}, "width_km"),
        ({"height_km": 0.0}, "height_km"),
        ({"height_km": float("nan")}, "height_km"),
        ({"years": ()}, "years"),
        ({"years": (2000, 2000)}, "years"),
        ({"years": (2000.5,)}, "years"),
        ({"n_counties": 1}, "n_counties"),
        ({"seed": -1}, "seed"),
        ({"center_lonlat": (112.5,)}, "center_lonlat"),
    ],
)
def test_make_region_validates(tmp_path: Path, kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        make_region(tmp_path, **kwargs)
    assert not (tmp_path / "config.yaml").exists()
