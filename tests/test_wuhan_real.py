"""Real data: the 30 m land cover of Wuhan (4 years, PLUS codes 1-7, UTM 49N, see
../shared/data/README.md) over its 11 districts, against an independent count in this test
(rasterio and numpy on the rasters' own pixels, no ecodask code).

The run's grid is equal-area (China Albers), so the rasters are reprojected (nearest) from UTM 49N,
whose areas are off by up to a few 0.1 % here, and the district edges fall on other pixels: the
run and the independent count agree to a fraction of a percent, not to the pixel.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import yaml
from rasterio.features import rasterize

from ecodask.io.catalogs import builtin_catalog_dir
from ecodask.io.layout import RunFolder
from ecodask.run.config import load_config
from ecodask.run.inputs import survey
from ecodask.science.grid import CHINA_ALBERS

from conftest import shared
from helpers import run_stages

pytestmark = pytest.mark.usefixtures("dask_threads")
YEARS = (2003, 2005, 2010, 2013)
PIXEL_HA = 0.09


def _config(folder: Path, scheme: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "name": "wuhan",
        "grid": {"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 1024},
        "landcover": {"scheme": scheme,
                      "years": {y: str(shared(f"wuhan_landcover_{y}_30m_utm49n.tif")) for y in YEARS}},
        "esv": {"table": "xinzhou_2023"},
        "zones": {"path": str(shared("wuhan_districts.gpkg")), "id_field": "adcode", "name_field": "name"},
        "drivers": {"elevation": str(shared("wuhan_dem_30m_utm49n.tif"))},
        "output": "out",
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True))
    return path


@pytest.fixture(scope="module")
def native() -> dict[str, object]:
    """The rasters' own pixels: codes per year (0 = no data) and the districts burned on that grid."""
    codes = {}
    for y in YEARS:
        with rasterio.open(shared(f"wuhan_landcover_{y}_30m_utm49n.tif")) as src:
            a = src.read(1).astype(np.int16)
            codes[y] = np.where(a == int(src.nodata), 0, a)
            transform, crs, shape = src.transform, src.crs, a.shape
    districts = gpd.read_file(shared("wuhan_districts.gpkg")).to_crs(crs)
    inside = rasterize(((g, 1) for g in districts.geometry), out_shape=shape, transform=transform,
                       fill=0, dtype=np.uint8).astype(bool)
    return {"codes": codes, "inside": inside}


def _shares(codes: np.ndarray, inside: np.ndarray) -> np.ndarray:
    counts = np.bincount(codes[inside & (codes > 0)], minlength=8)[1:8].astype(float)
    return counts / counts.sum()


def test_validate_shows_the_shares_and_a_wrong_scheme(native, tmp_path: Path) -> None:
    """Under CLCD's scheme the PLUS water (6) reads as snow/ice; under the PLUS scheme as water:
    either way the share equals the independent count's."""
    wrong = survey(load_config(_config(tmp_path / "clcd", "clcd")))
    right = survey(load_config(_config(tmp_path / "plus", "plus")))
    assert wrong.problems == [] and right.problems == []  # PLUS codes 1-7 are all CLCD codes too
    for y in YEARS:
        expect = _shares(native["codes"][y], native["inside"])  # codes 1..7
        assert right.shares.loc["water", y] == pytest.approx(expect[5], abs=0.003)
        assert wrong.shares.loc["snow_ice", y] == pytest.approx(expect[5], abs=0.003)
        assert wrong.shares.loc["snow_ice", y] > 0.03  # "snow/ice 3.6 %" in Wuhan: the wrong scheme shows
        assert right.shares.loc["cropland", y] == pytest.approx(expect[2], abs=0.003)
    cov = right.coverage.set_index(["zone_id", "year"])
    assert cov.loc[("ALL", 2003), "coverage"] > 0.9


@pytest.mark.slow
def test_class_areas_esv_and_transfer_matrix_equal_an_independent_count(native, tmp_path: Path) -> None:
    cfg = load_config(_config(tmp_path / "run", "plus"))
    run_stages(cfg, "ingest", "transitions_esv")
    folder = RunFolder(cfg.output)
    inside = native["inside"]
    area = folder.table("class_area")
    region = area[area["zone_id"] == "ALL"].set_index(["year", "class_code"])["area_ha"]
    table = yaml.safe_load((builtin_catalog_dir() / "esv_tables" / "xinzhou_2023.yaml").read_text())
    mapping = yaml.safe_load((builtin_catalog_dir() / "class_schemes" / "plus.yaml").read_text())["mappings"][
        "seed002_six"]
    per_ha = {code: sum(float(v[cls]) for v in table["values"].values()) for code, cls in mapping.items()}
    esv = folder.table("esv_by_service")
    total = esv[(esv["zone_id"] == "ALL") & (esv["level"] == "total")].set_index("year")["esv_cny"]
    for y in YEARS:
        counts = np.bincount(native["codes"][y][inside], minlength=8)
        for code in range(1, 8):
            assert region[(y, code)] == pytest.approx(counts[code] * PIXEL_HA, rel=0.01, abs=50)
        expect = sum(counts[c] * PIXEL_HA * per_ha[c] for c in range(1, 8))
        assert total[y] == pytest.approx(expect, rel=0.005)
    # The transfer matrix of the first and last years, whole region.
    tr = folder.table("transitions")
    tr = tr[(tr["zone_id"] == "ALL") & (tr["year_from"] == YEARS[0]) & (tr["year_to"] == YEARS[-1])]
    a, b = native["codes"][YEARS[0]], native["codes"][YEARS[-1]]
    both = inside & (a > 0) & (b > 0)
    pairs = np.bincount(a[both] * 8 + b[both], minlength=64).reshape(8, 8)
    got = tr.set_index(["class_from", "class_to"])["area_ha"]
    for i in range(1, 8):
        for j in range(1, 8):
            expect = pairs[i, j] * PIXEL_HA
            if expect > 1000:  # the larger flows; small ones sit on district edges
                assert got[(i, j)] == pytest.approx(expect, rel=0.02)
    coverage = folder.table("coverage").set_index(["zone_id", "year"])
    assert (coverage["coverage"] > 0).all()


@pytest.mark.slow
def test_q_of_the_dem_equals_the_formula_on_the_run_s_grids(tmp_path: Path) -> None:
    """q of the real DEM for ESV density, recomputed here from the store's analysis grids with the
    strata of the breaks the run chose (``breaks[c-1] < x <= breaks[c]``): q = 1 - Σ N_h σ_h² / (N σ²)."""
    import xarray as xr

    cfg = load_config(_config(tmp_path / "q", "plus"))
    run_stages(cfg, "ingest", "transitions_esv", "driver_analysis")
    folder = RunFolder(cfg.output)
    ana = xr.open_zarr(folder.store, group="analysis", consolidated=False)
    disc = folder.table("geodetector_discretization")
    factor = folder.table("geodetector_factor").set_index(["year", "factor"])
    for year in (YEARS[0], YEARS[-1]):
        t = YEARS.index(year)
        y = ana["esv_density"].values[t].ravel()
        x = ana["elevation"].values.ravel()
        ok = np.isfinite(y) & np.isfinite(x)
        y, x = y[ok], x[ok]
        chosen = disc[(disc["year"] == year) & (disc["factor"] == "elevation") & disc["optimal"]].iloc[0]
        breaks = np.array([float(b) for b in str(chosen["breaks"]).split(",")])
        strata = np.searchsorted(breaks, x, side="left")
        within = sum(((y[strata == h] - y[strata == h].mean()) ** 2).sum() for h in np.unique(strata))
        q = 1.0 - within / ((y - y.mean()) ** 2).sum()
        row = factor.loc[(year, "elevation")]
        assert row["n"] == ok.sum()
        assert row["q"] == pytest.approx(q, rel=1e-6, abs=1e-9)
        assert 0.0 < q < 1.0
