"""Slope and aspect of a DEM (Horn 1981): the kernel on hand-computed planes, a cone and a flat area;
chunks with a one-cell halo against the whole array; the real Wuhan DEM against xarray-spatial;
the circular mean; the reader that derives them at the DEM's resolution and averages them onto an
analysis grid; the configuration; and a run in which slope and aspect drivers reach the store and
the driver analysis."""

from __future__ import annotations

import math
import typing
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds
from typer.testing import CliRunner

from ecodask.cli import app
from ecodask.errors import ConfigError, InputError
from ecodask.io.store import open_store
from ecodask.io.terrain import DERIVED, TerrainRaster
from ecodask.kernels.terrain import circular_mean_deg, horn
from ecodask.run.config import DriverConfig, load_config
from ecodask.run.inputs import check_inputs
from ecodask.science.grid import CHINA_ALBERS, Grid

from conftest import COLS, RES, ROWS, X0, Y1, make_tiny_region, shared, write_tif
from helpers import run_stages

pytestmark = pytest.mark.usefixtures("dask_threads")
DEM = "wuhan_dem_30m_utm49n.tif"


def _plane(a: float, b: float, shape=(5, 5), rx: float = 30.0, ry: float = -30.0) -> np.ndarray:
    """z = a x + b y (x east, y north, metres) at the cell centres of a north-up grid."""
    rows, cols = np.indices(shape, dtype=np.float64)
    return a * cols * rx + b * rows * ry


# ---------------------------------------------------------------------------------------------
# the kernel, by hand


@pytest.mark.parametrize(("a", "b", "aspect"), [
    (1.0, 0.0, 270.0),   # rises to the east: faces west
    (-1.0, 0.0, 90.0),   # falls to the east: faces east
    (0.0, 1.0, 180.0),   # rises to the north: faces south
    (0.0, -1.0, 0.0),    # falls to the north: faces north
    (-1.0, -1.0, 45.0),  # falls to the north-east
    (1.0, -1.0, 315.0),  # falls to the north-west
])
def test_cardinal_planes_face_downhill(a: float, b: float, aspect: float) -> None:
    z = _plane(a, b)
    s, asp = horn(z, 30.0, -30.0, "slope"), horn(z, 30.0, -30.0, "aspect")
    assert np.isnan(s[0]).all() and np.isnan(s[:, -1]).all()  # the outer ring: no 3x3 window
    # |grad| = 1 -> 45 deg; sqrt(2) -> atan(sqrt 2) = 54.7356103 deg
    np.testing.assert_allclose(s[1:-1, 1:-1], 45.0 if a * b == 0 else 54.7356103, atol=1e-5)
    np.testing.assert_allclose(asp[1:-1, 1:-1], aspect, atol=1e-5)


def test_plane_with_unequal_cells_by_hand() -> None:
    """z = 0.1 x - 0.2 y on cells 30 m wide and 20 m tall: Horn's differences are exact on a plane,
    dz/dx = 0.1, dz/dy = -0.2; slope atan(sqrt(0.05)) = 12.6043876 deg; the descent (-0.1 east,
    +0.2 north) faces atan2(-0.1, 0.2) = -26.5650512 -> 333.4349488 deg; eastness -0.1/sqrt(0.05)
    = -0.4472136, northness 0.8944272."""
    z = _plane(0.1, -0.2, rx=30.0, ry=-20.0)
    got = {w: horn(z, 30.0, -20.0, w)[1:-1, 1:-1] for w in ("slope", "aspect", "eastness", "northness")}
    np.testing.assert_allclose(got["slope"], 12.6043876, atol=1e-5)
    np.testing.assert_allclose(got["aspect"], 333.4349488, atol=1e-5)
    np.testing.assert_allclose(got["eastness"], -0.4472136, atol=1e-6)
    np.testing.assert_allclose(got["northness"], 0.8944272, atol=1e-6)
    # the same surface stored south-up (rows running north, ry > 0) gives the same terrain
    flipped = horn(z[::-1], 30.0, 20.0, "aspect")[::-1]
    np.testing.assert_allclose(flipped[1:-1, 1:-1], 333.4349488, atol=1e-5)


def test_cone_by_hand() -> None:
    """A cone z = 10 - r (r the distance from the centre, cells of 1 m). The cell north of the peak:
    the window's rows are 10 - (sqrt5, 2, sqrt5), 10 - (sqrt2, 1, sqrt2), 10 - (1, 0, 1); dz/dx = 0 by
    symmetry; dz/dy = ((a + 2b + c) - (g + 2h + i)) / 8 = (2 - 2 sqrt5 - 4) / 8 = -0.8090170 (it
    falls to the north), slope atan(0.8090170) = 38.9734 deg, aspect 0. The eight cells around the
    peak face away from it; the peak itself is flat by symmetry (aspect NaN, slope 0)."""
    rows, cols = np.indices((5, 5), dtype=np.float64)
    z = 10.0 - np.hypot(cols - 2, 2 - rows)
    s, asp = horn(z, 1.0, -1.0, "slope"), horn(z, 1.0, -1.0, "aspect")
    assert s[1, 2] == pytest.approx(math.degrees(math.atan((2 * math.sqrt(5) + 2) / 8)), abs=1e-5)
    assert s[1, 2] == pytest.approx(38.9734, abs=1e-4)
    faces = {(1, 2): 0, (1, 3): 45, (2, 3): 90, (3, 3): 135, (3, 2): 180, (3, 1): 225, (2, 1): 270,
             (1, 1): 315}
    for (i, j), deg in faces.items():
        assert asp[i, j] == pytest.approx(deg, abs=1e-4), (i, j)
    assert s[2, 2] == 0 and np.isnan(asp[2, 2])
    assert horn(z, 1.0, -1.0, "eastness")[2, 2] == 0 and horn(z, 1.0, -1.0, "northness")[2, 2] == 0


def test_flat_area_and_no_data() -> None:
    z = np.full((6, 7), 12, dtype=np.int16)  # integers are taken as float64
    assert (horn(z, 30, -30, "slope")[1:-1, 1:-1] == 0).all()
    assert np.isnan(horn(z, 30, -30, "aspect")).all()
    assert (horn(z, 30, -30, "eastness")[1:-1, 1:-1] == 0).all()
    f = _plane(0.3, 0.1, (6, 7)).astype(np.float32)
    f[3, 3] = np.nan
    s = horn(f, 30, -30, "slope")
    around = np.zeros(f.shape, bool)
    around[2:5, 2:5] = True
    assert np.isnan(s[around]).all()  # every window holding the NaN
    assert np.isfinite(s[1:-1, 1:-1][~around[1:-1, 1:-1]]).all()
    assert s.dtype == np.float32 and s.shape == f.shape


def test_bad_arguments_are_refused() -> None:
    z = np.zeros((4, 4))
    with pytest.raises(ValueError, match="what must be one of"):
        horn(z, 30, -30, "curvature")
    with pytest.raises(ValueError, match="2-D"):
        horn(np.zeros((2, 4, 4)), 30, -30, "slope")
    with pytest.raises(ValueError, match="non-zero"):
        horn(z, 0, -30, "slope")
    with pytest.raises(TypeError, match="numbers"):
        horn(z.astype(bool), 30, -30, "slope")


def test_chunks_with_a_halo_equal_the_whole_array() -> None:
    rng = np.random.default_rng(4)
    z = np.cumsum(np.cumsum(rng.normal(0, 1, (203, 311)), 0), 1).astype(np.float32)
    z[rng.random(z.shape) < 0.01] = np.nan
    z[50:60, 100:130] = 7.0  # a lake
    for what in ("slope", "aspect", "northness"):
        whole = horn(z, 30, -30, what)
        tiled = np.full_like(whole, np.nan)
        no_halo = np.full_like(whole, np.nan)
        for r0 in range(0, z.shape[0], 64):
            for c0 in range(0, z.shape[1], 50):
                r1, c1 = min(r0 + 64, z.shape[0]), min(c0 + 50, z.shape[1])
                h0, w0 = max(r0 - 1, 0), max(c0 - 1, 0)
                part = horn(z[h0 : r1 + 1, w0 : c1 + 1], 30, -30, what)
                tiled[r0:r1, c0:c1] = part[r0 - h0 : r0 - h0 + r1 - r0, c0 - w0 : c0 - w0 + c1 - c0]
                no_halo[r0:r1, c0:c1] = horn(z[r0:r1, c0:c1], 30, -30, what)
        np.testing.assert_array_equal(tiled, whole)
        assert np.isnan(no_halo).sum() > np.isnan(whole).sum()  # without the halo, tile edges are lost


# ---------------------------------------------------------------------------------------------
# the real DEM against xarray-spatial


@pytest.fixture(scope="module")
def wuhan() -> dict[str, object]:
    with rasterio.open(shared(DEM)) as src:
        z = src.read(1, masked=True).astype(np.float32).filled(np.nan)
        return {"z": z, "transform": src.transform, "crs": src.crs}


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")  # xarray-spatial's own checks
def test_wuhan_dem_against_xarray_spatial(wuhan) -> None:
    """xarray-spatial computes Horn's method in float32 (ours in float64): slopes agree to 1e-4 deg
    (float32 rounding of gradients up to ~1 on 30 m cells: ~1e-6 deg seen). The DEM's integer
    metres make Horn's sums exact in both, so the aspects agree to 1e-3 deg, and the flat cells
    (xarray-spatial's -1, our NaN with slope 0) are the same cells; edges and no data are NaN in
    both."""
    xrspatial = pytest.importorskip("xrspatial")
    z, t = wuhan["z"], wuhan["transform"]
    agg = xr.DataArray(z, dims=("y", "x"), attrs={"res": (t.a, -t.e)})
    ref_s, ref_a = xrspatial.slope(agg).values, xrspatial.aspect(agg).values
    s, a = horn(z, t.a, t.e, "slope"), horn(z, t.a, t.e, "aspect")
    np.testing.assert_array_equal(np.isnan(s), np.isnan(ref_s))
    assert np.isfinite(s).sum() > 4_000_000 and np.nanmax(s) > 30
    np.testing.assert_allclose(s, ref_s, atol=1e-4, equal_nan=True)
    flat = ref_a == -1
    assert flat.sum() > 100_000  # lakes and plains: integer metres make many
    np.testing.assert_array_equal(flat, np.isnan(a) & np.isfinite(s))
    np.testing.assert_array_equal(s[flat], 0)
    both = np.isfinite(a)
    np.testing.assert_array_equal(both, np.isfinite(ref_a) & ~flat)
    diff = np.abs((a[both] - ref_a[both] + 180.0) % 360.0 - 180.0)
    assert diff.max() < 1e-3


# ---------------------------------------------------------------------------------------------
# the circular mean


def test_circular_mean_of_350_and_10_is_north() -> None:
    deg = np.radians([[350.0, 10.0]])
    got = circular_mean_deg(np.sin(deg).mean(axis=1), np.cos(deg).mean(axis=1))
    assert got[0] == pytest.approx(0.0, abs=1e-4) or got[0] == pytest.approx(360.0, abs=1e-4)
    assert got[0] < 360.0  # [0, 360)
    assert np.degrees(np.radians([350.0, 10.0]).mean()) == pytest.approx(180.0)  # the arithmetic mean
    three = np.radians([80.0, 100.0, 120.0])  # flat pixels count 0 in both sums: same direction
    with_flat = (np.append(np.sin(three), 0).mean(), np.append(np.cos(three), 0).mean())
    assert circular_mean_deg(*with_flat) == pytest.approx(100.0, abs=1e-4)
    assert circular_mean_deg(np.sin(three).mean(), np.cos(three).mean()) == pytest.approx(100.0, abs=1e-4)
    # all flat, opposite directions and NaN: no mean direction
    assert np.isnan(circular_mean_deg(np.array([0.0, 0.0, np.nan]), np.array([0.0, 1e-9, 1.0]))).all()
    opposite = np.radians([90.0, 270.0])
    assert np.isnan(circular_mean_deg(np.sin(opposite).mean(), np.cos(opposite).mean()))


# ---------------------------------------------------------------------------------------------
# the reader: derived at the DEM's resolution, then onto the analysis grid


def _compute(src: TerrainRaster) -> np.ndarray:
    import dask.array as da

    c = src.grid.chunk_size
    return da.from_array(src, chunks=(c, c), asarray=True, name=False).compute()


@pytest.mark.parametrize("what", ["slope", "aspect"])
def test_reader_in_chunks_equals_the_whole_dem_warped_once(wuhan, what: str) -> None:
    """A China Albers analysis grid (960 m cells, chunks of 8 cells) over the middle of the UTM DEM
    (its rows and columns 700-2200): chunk by chunk equals the whole DEM derived at once and warped
    in one piece; without the halo and the margin, the chunks' edges differ."""
    crs = CRS.from_user_input(CHINA_ALBERS)
    t = wuhan["transform"]
    b = transform_bounds(wuhan["crs"], crs, t.c + t.a * 700, t.f + t.e * 2200,
                         t.c + t.a * 2200, t.f + t.e * 700)
    grid = Grid.covering(crs, 30, 32, b, 256).analysis
    got = _compute(TerrainRaster(str(shared(DEM)), grid, what))
    z = wuhan["z"]
    comps = ("slope",) if what == "slope" else ("eastness", "northness")
    src = np.stack([horn(z, t.a, t.e, c) for c in comps])
    out = np.full((len(comps), *grid.shape), np.nan, np.float32)
    reproject(src, out, src_transform=t, src_crs=wuhan["crs"], src_nodata=np.nan,
              dst_transform=grid.transform, dst_crs=crs, dst_nodata=np.nan,
              resampling=Resampling.average, tolerance=0.0)
    expect = out[0] if what == "slope" else circular_mean_deg(out[0], out[1])
    assert np.isfinite(expect).sum() > 1500 and np.isnan(expect).sum() > 100  # the DEM's edge too
    np.testing.assert_array_equal(got, expect)
    bare = _compute(TerrainRaster(str(shared(DEM)), grid, what, halo=0, margin=0))
    assert not np.array_equal(bare, expect, equal_nan=True)


@pytest.mark.filterwarnings("ignore:All-NaN slice:RuntimeWarning")
def test_reader_on_the_dem_grid_is_the_block_mean_of_xarray_spatial(wuhan) -> None:
    """On a grid aligned with the DEM's pixels (its CRS, 8 x 8 pixels a cell), the cell's slope is
    the plain mean of xarray-spatial's slope over its finite pixels (to float32 sums: 1e-5), and its
    aspect the circular mean of xarray-spatial's non-flat aspects (to 0.01 deg where the mean
    resultant exceeds 1e-3: a component's 1e-6 error turns the angle by at most ~1e-3 rad / R)."""
    xrspatial = pytest.importorskip("xrspatial")
    z, t = wuhan["z"], wuhan["transform"]
    n = 1600 // 8  # the DEM's first 1600 rows and columns
    grid = Grid(wuhan["crs"], 30.0, 8, (t.c, t.f - 30.0 * 8 * n, t.c + 30.0 * 8 * n, t.f), 512).analysis
    agg = xr.DataArray(z, dims=("y", "x"), attrs={"res": (t.a, -t.e)})
    ref_s = xrspatial.slope(agg).values[: 8 * n, : 8 * n].reshape(n, 8, n, 8)
    ref_a = xrspatial.aspect(agg).values[: 8 * n, : 8 * n].reshape(n, 8, n, 8)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        slope = np.nanmean(ref_s, axis=(1, 3))
        rad = np.where(ref_a == -1, np.nan, np.radians(ref_a))
        east = np.nanmean(np.where(ref_a == -1, 0.0, np.sin(rad)), axis=(1, 3))
        north = np.nanmean(np.where(ref_a == -1, 0.0, np.cos(rad)), axis=(1, 3))
    got_s = _compute(TerrainRaster(str(shared(DEM)), grid, "slope"))
    np.testing.assert_array_equal(np.isnan(got_s), np.isnan(slope))
    np.testing.assert_allclose(got_s, slope, rtol=1e-5, atol=1e-5, equal_nan=True)
    got_e = _compute(TerrainRaster(str(shared(DEM)), grid, "eastness"))
    np.testing.assert_allclose(got_e, east, atol=1e-5, equal_nan=True)
    got_a = _compute(TerrainRaster(str(shared(DEM)), grid, "aspect"))
    expect = circular_mean_deg(east, north)
    assert (np.isnan(expect) & np.isfinite(slope)).sum() > 100  # cells flat throughout: lakes
    sure = np.hypot(east, north) > 1e-3  # a well-defined mean direction
    diff = np.abs((got_a[sure] - expect[sure] + 180.0) % 360.0 - 180.0)
    assert sure.sum() > 20_000 and diff.max() < 1e-2
    np.testing.assert_array_equal(np.isnan(got_a[np.hypot(east, north) < 1e-7]), True)


# ---------------------------------------------------------------------------------------------
# the configuration and the run


def test_config_names_the_derived_quantities() -> None:
    allowed = typing.get_args(DriverConfig.model_fields["derive"].annotation)
    assert set(allowed) == {"none", *DERIVED}
    # a plain driver dumps as before (its stage keys unchanged); a derived one says what it is
    plain = DriverConfig.model_validate({"path": __file__}).model_dump(mode="json")
    assert plain == {"path": __file__, "kind": "continuous"}
    derived = DriverConfig.model_validate({"path": __file__, "derive": "aspect"}).model_dump(mode="json")
    assert derived["derive"] == "aspect"


def _region(folder: Path, drivers: dict, dem: np.ndarray | None = None, **kw) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if dem is not None:
        write_tif(folder / "dem.tif", dem, CHINA_ALBERS, Affine(RES, 0, X0, 0, -RES, Y1), -9999.0)
    return make_tiny_region(folder, drivers=drivers, **kw)


def test_categorical_derive_and_a_geographic_dem_are_refused(tmp_path: Path) -> None:
    path = _region(tmp_path / "cat",
                   {"slope": {"path": "elev.tif", "derive": "slope", "kind": "categorical"}})
    with pytest.raises(ConfigError, match=r"drivers\.slope = .*kind must be continuous"):
        load_config(path)
    path = _region(tmp_path / "bad", {"slope": {"path": "elev.tif", "derive": "curvature"}})
    with pytest.raises(ConfigError, match=r"drivers\.slope\.derive"):
        load_config(path)
    # a DEM in degrees (EPSG:4326) over the region
    geo = tmp_path / "geo"
    geo.mkdir()
    w, s, e, n = transform_bounds(CHINA_ALBERS, "EPSG:4326", X0, Y1 - ROWS * RES, X0 + COLS * RES, Y1)
    write_tif(geo / "dem_4326.tif", np.arange(400, dtype=np.float32).reshape(20, 20), "EPSG:4326",
              Affine((e - w + 0.2) / 20, 0, w - 0.1, 0, -(n - s + 0.2) / 20, n + 0.1), -9999.0)
    path = _region(geo, {"slope": {"path": "dem_4326.tif", "derive": "slope"}, "elevation": "dem_4326.tif"})
    with pytest.raises(InputError) as err:
        check_inputs(load_config(path))
    lines = [str(p) for p in err.value.problems]
    assert len(lines) == 1, err.value  # the same file as a plain driver is fine
    assert "dem_4326.tif: drivers.slope.derive: slope (crs) = 'EPSG:4326': " in lines[0]
    assert "projected CRS in metres" in lines[0]
    res = CliRunner().invoke(app, ["validate", "--quick", str(path)])
    assert res.exit_code == 2 and "'EPSG:4326'" in res.output and "projected CRS in metres" in res.output


def test_run_with_slope_and_aspect_drivers(tmp_path: Path) -> None:
    """Slope, aspect and northness of a bumpy DEM on the tiny region's grid reach the store (each
    cell the mean, or circular mean, of the 32 x 32 pixels' Horn values) and the driver analysis
    (q of each, regression rows)."""
    rows, cols = np.indices((ROWS, COLS), dtype=np.float64)
    dem = (40 * np.sin(cols / 23.0) * np.cos(rows / 31.0) + 0.05 * cols).astype(np.float32)
    dem[:40, :40] = 3.0  # a lake: flat, aspect undefined in its cells
    dem[200:, 300:] = -9999.0  # no data
    drivers = {"slope": {"path": "dem.tif", "derive": "slope"},
               "aspect": {"path": "dem.tif", "derive": "aspect"},
               "northness": {"path": "dem.tif", "derive": "northness"}}
    cfg = load_config(_region(tmp_path / "run", drivers, dem,
                              analysis={"discretize": "equal", "k": 4, "hotspots": False}))
    store, _ = run_stages(cfg, "ingest", "transitions_esv", "driver_analysis")
    _, ana = open_store(store)
    for name in drivers:
        assert ana[name].attrs["derived"] == name and ana[name].attrs["kind"] == "continuous"
    z = np.where(dem == -9999.0, np.nan, dem)
    cells = (ROWS // 32, 32, COLS // 32, 32)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the cells without a value: NaN
        slope = np.nanmean(horn(z, RES, -RES, "slope").reshape(cells), axis=(1, 3))
        east = np.nanmean(horn(z, RES, -RES, "eastness").reshape(cells), axis=(1, 3))
        north = np.nanmean(horn(z, RES, -RES, "northness").reshape(cells), axis=(1, 3))
    np.testing.assert_allclose(ana["slope"].values, slope, rtol=1e-5, atol=1e-6, equal_nan=True)
    np.testing.assert_allclose(ana["northness"].values, north, atol=1e-6, equal_nan=True)
    aspect = ana["aspect"].values
    np.testing.assert_allclose(aspect, circular_mean_deg(east, north), atol=1e-3, equal_nan=True)
    assert np.isnan(aspect[0, 0]) and slope[0, 0] == 0  # the lake's cell: flat throughout
    tables = cfg.output / "tables"
    factor = pd.read_parquet(tables / "geodetector_factor.parquet")
    assert set(factor.factor) == set(drivers) and factor.q.notna().all()
    reg = pd.read_parquet(tables / "regression.parquet")
    assert set(reg.year) == {2000, 2010}
