"""Ingest: GeoTIFFs in any CRS and county polygons -> one Zarr v3 store on the equal-area grid."""

from __future__ import annotations

from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pytest
import rasterio
import zarr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.warp import reproject, transform_bounds

from ecodask.chunked.landpass import HELD_LANDCOVER_BYTES
from ecodask.errors import InputError
from ecodask.io.rasters import WARP_MARGIN, RasterizedZones, WarpedRaster, smallest_uint, source_window
from ecodask.io.store import ingest, open_store, store_zones, years_per_task
from ecodask.run.config import RunConfig, load_config
from ecodask.run.inputs import check_inputs
from ecodask.science.grid import CHINA_ALBERS, Grid

from conftest import COLS, ROWS, SPLIT_COL, X0, Y1, make_tiny_region, shared, tiny_landcover, write_tif

pytestmark = pytest.mark.usefixtures("dask_threads")


def _ingest(cfg: RunConfig) -> Path:
    """The store of a configuration's inputs, checked, in its output folder."""
    return ingest(check_inputs(cfg), cfg.output)


def test_round_trip_values_crs_transform(tiny_region: Path) -> None:
    cfg = load_config(tiny_region)
    store = _ingest(cfg)
    assert store.name == "store.zarr" and not (store.parent / "store.zarr.partial").exists()
    pix, ana = open_store(store)
    # values: the aligned land cover comes back exactly
    assert pix["landcover"].dtype == np.uint8
    np.testing.assert_array_equal(pix["landcover"].sel(year=2000).values, tiny_landcover(0, 0))
    np.testing.assert_array_equal(pix["landcover"].sel(year=2010).values, tiny_landcover(0, 1))
    # zones: 420101 (West) is zone 1, left of the split column; 420102 (East) zone 2
    zone = pix["zone"].values
    assert zone.dtype == np.uint8
    assert (zone[:, :SPLIT_COL] == 1).all() and (zone[:, SPLIT_COL:] == 2).all()
    zt = store_zones(pix)
    assert zt["zone_id"].tolist() == [420101, 420102] and zt["zone_name"].tolist() == ["West", "East"]
    # CRS and transform, through rioxarray
    assert pix["landcover"].rio.crs == CRS.from_user_input(CHINA_ALBERS)
    assert pix["zone"].rio.transform() == Affine(30, 0, X0, 0, -30, Y1)
    assert (pix.sizes["y"], pix.sizes["x"]) == (ROWS, COLS)
    # the analysis grid: 960 m cells; continuous drivers are the mean of the 32 x 32 pixels
    elev = ana["elevation"]
    assert elev.rio.transform() == Affine(960, 0, X0, 0, -960, Y1)
    src = (np.add.outer(np.arange(ROWS), np.arange(COLS)) / 4.0).reshape(ROWS // 32, 32, COLS // 32, 32)
    np.testing.assert_allclose(elev.values, src.mean(axis=(1, 3)), rtol=1e-6)
    # chunks aligned across arrays: chunk (i, j) covers the same ground everywhere
    lc = zarr.open_array(store / "landcover", mode="r")
    assert lc.chunks == (1, 128, 128)
    assert zarr.open_array(store / "zone", mode="r").chunks == (128, 128)
    assert zarr.open_array(store / "analysis" / "elevation", mode="r").chunks == (4, 4)


def test_a_task_reads_a_block_of_years(tiny_region: Path) -> None:
    """The land cover is read a block of years per task (both years of a 128² chunk at once by
    default, one year per task when a task may hold 1 byte): the stores are the same, and so are
    the code counts checked on the way."""
    assert years_per_task(128) == HELD_LANDCOVER_BYTES // 128**2 and years_per_task(4096) == 4
    assert years_per_task(128, 2 * 128**2) == 2 and years_per_task(128, 1) == 1
    cfg = load_config(tiny_region)
    seen = {}
    stores = {}
    for held in (None, 1):
        out = cfg.output / f"held-{held}"
        stores[held] = ingest(check_inputs(cfg), out, check_codes=lambda c, held=held: seen.update({held: c}),
                              held_up_to=held)
    assert seen[None].shape == (2, 256) and seen[None].sum() > 0
    np.testing.assert_array_equal(seen[None], seen[1])
    a, b = (open_store(stores[h])[0] for h in (None, 1))
    np.testing.assert_array_equal(a["landcover"].values, b["landcover"].values)
    np.testing.assert_array_equal(a["landcover"].sel(year=2010).values, tiny_landcover(0, 1))


def test_gdal_reads_crs_and_transform(tiny_region: Path) -> None:
    store = _ingest(load_config(tiny_region))
    with rasterio.open(f'ZARR:"{store}":/zone') as ds:
        assert CRS.from_user_input(ds.crs.to_wkt()) == CRS.from_user_input(CHINA_ALBERS)
        assert ds.transform == Affine(30, 0, X0, 0, -30, Y1)
        assert ds.read(1)[0, SPLIT_COL] == 2
    with rasterio.open(f'ZARR:"{store}":/analysis/elevation') as ds:
        assert ds.transform.a == 960 and ds.crs is not None


def test_smallest_zone_dtype() -> None:
    assert smallest_uint(255) == np.uint8
    assert smallest_uint(256) == np.uint16
    assert smallest_uint(70_000) == np.uint32


def _wuhan_grid(dem: Path, factor: int = 32) -> Grid:
    with rasterio.open(dem) as src:
        b = transform_bounds(src.crs, CHINA_ALBERS, *src.bounds, densify_pts=51)
    return Grid.covering(CRS.from_user_input(CHINA_ALBERS), 30, factor, b, 1024)


def test_wuhan_dem_onto_albers_no_shift() -> None:
    """The real UTM 49N DEM on the Albers grid: bounds cover it, values keep their range, and the
    pixel at every sampled target centre is the source pixel under that point (no shift > 0.5 px)."""
    dem = shared("wuhan_dem_30m_utm49n.tif")
    grid = _wuhan_grid(dem)
    out = WarpedRaster(str(dem), grid, np.dtype(np.float32), np.nan)[:, :]
    with rasterio.open(dem) as src:
        data = src.read(1)
        b = transform_bounds(src.crs, CHINA_ALBERS, *src.bounds, densify_pts=51)
        inv = ~src.transform
        valid_src = data[data != src.nodata]
    gx0, gy0, gx1, gy1 = grid.bounds
    assert gx0 <= b[0] < gx0 + 960 and gy0 <= b[1] < gy0 + 960
    assert gx1 - 960 < b[2] <= gx1 and gy1 - 960 < b[3] <= gy1
    assert np.nanmin(out) == valid_src.min() == -45 and np.nanmax(out) == valid_src.max() == 266
    rows, cols = np.nonzero(np.isfinite(out))
    pick = np.random.default_rng(1).choice(len(rows), 5000, replace=False)
    r, c = rows[pick], cols[pick]
    x, y = grid.transform @ (c + 0.5, r + 0.5)
    ux, uy = Transformer.from_crs(CHINA_ALBERS, "EPSG:32649", always_xy=True).transform(x, y)
    sc, sr = inv @ (np.asarray(ux), np.asarray(uy))
    same = data[np.floor(sr).astype(int), np.floor(sc).astype(int)] == out[r, c]
    # GDAL's approximate transformer is allowed 0.125 px of error (its default, as gdalwarp):
    # every pixel is the source pixel within 0.25 px of its centre, most of them exactly.
    near = np.zeros_like(same)
    for dr in (-0.25, 0.0, 0.25):
        for dc in (-0.25, 0.0, 0.25):
            near |= data[np.floor(sr + dr).astype(int), np.floor(sc + dc).astype(int)] == out[r, c]
    assert near.all()
    assert same.mean() > 0.97


def test_wuhan_landcover_and_dem_driver_through_ingest(tmp_path: Path) -> None:
    """Land cover in UTM 49N ingests by nearest; the DEM as a driver is the cell mean."""
    dem = shared("wuhan_dem_30m_utm49n.tif")
    with rasterio.open(dem) as src:
        d, crs, transform = src.read(1), src.crs, src.transform
    lc = np.where(d == -9999, 0, np.where(d < 25, 5, np.where(d < 60, 1, 2))).astype(np.uint8)
    write_tif(tmp_path / "lc.tif", lc, crs.to_wkt(), transform, 0)
    counties = gpd.read_file(shared("hubei_counties.gpkg"))
    wuhan = counties[counties["adcode"].astype(str).str.startswith("4201")]
    wuhan.to_file(tmp_path / "wuhan.gpkg")
    cfg_path = make_tiny_region(
        tmp_path / "cfg",
        landcover={"scheme": "clcd", "years": {2020: str(tmp_path / "lc.tif")}},
        zones={"path": str(tmp_path / "wuhan.gpkg"), "id_field": "adcode", "name_field": "name"},
        drivers={"elevation": str(dem)},
        grid={"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 1024},
    )
    cfg = load_config(cfg_path)
    store = _ingest(cfg)
    pix, ana = open_store(store)
    assert len(store_zones(pix)) == len(wuhan)
    out_lc = pix["landcover"].isel(year=0).values
    grid = check_inputs(cfg).grid
    # the land cover is the DEM class at the same place: both warps pick the same source pixels
    dem30 = WarpedRaster(str(dem), grid, np.dtype(np.float32), np.nan)[:, :]
    expect = np.where(np.isnan(dem30), 0, np.where(dem30 < 25, 5, np.where(dem30 < 60, 1, 2)))
    assert (expect == out_lc).mean() > 0.999
    # the driver: the cell mean. GDAL weights source pixels by their overlap with the cell, the
    # check below takes the 32 x 32 nearest pixels: they agree closely, not to the last digit.
    cells = dem30[: grid.height, : grid.width].reshape(grid.height // 32, 32, grid.width // 32, 32)
    full = np.isfinite(cells).all(axis=(1, 3))
    mean = np.nanmean(np.where(full[:, None, :, None], cells, np.nan), axis=(1, 3))
    drv = ana["elevation"].values
    assert full.sum() > 1000
    diff = np.abs(drv[full] - mean[full])
    assert np.median(diff) < 0.1 and np.quantile(diff, 0.99) < 1.5 and diff.max() < 5.0
    assert abs(drv[full].mean() - mean[full].mean()) < 0.05


def _chunked(src: WarpedRaster) -> np.ndarray:
    c = src.grid.chunk_size
    return dask.array.from_array(src, chunks=(c, c), asarray=True, name=False).compute(scheduler="threads")


def _warped_once(values: np.ndarray, t: Affine, src_crs: object, grid: Grid,
                 resampling: Resampling) -> np.ndarray:
    """``values`` warped onto the whole ``grid`` in one piece, with NaN, no data, all round it: what
    lies outside the source counts as no data (GDAL's warp of the bare array treats the cells its
    edge crosses otherwise)."""
    pad = 16
    padded = np.pad(values.astype(np.float32), pad, constant_values=np.nan)
    out = np.full(grid.shape, np.nan, np.float32)
    reproject(padded, out, src_transform=t @ Affine.translation(-pad, -pad), src_crs=src_crs,
              src_nodata=np.nan, dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=np.nan,
              resampling=resampling, tolerance=0.0)
    return out


@pytest.mark.parametrize("resampling", [Resampling.average, Resampling.mode])
def test_a_driver_warped_chunk_by_chunk_equals_the_whole_warped_once(tmp_path: Path,
                                                                      resampling: Resampling) -> None:
    """The real UTM 49N DEM averaged (and, as classes of 25 m, its mode taken) onto a China Albers
    grid of 240 m cells in chunks of 16 cells, over the DEM's south-west quarter and 20 km beyond
    its edges: chunk by chunk equals the whole DEM warped in one piece with what lies outside it
    counting as no data, the cells the DEM's edge crosses included; a chunk reads the source
    under it and a margin, not more."""
    dem = shared("wuhan_dem_30m_utm49n.tif")
    crs = CRS.from_user_input(CHINA_ALBERS)
    with rasterio.open(dem) as src:
        z = src.read(1, masked=True).astype(np.float32).filled(np.nan)
        t, src_crs, profile = src.transform, src.crs, src.profile
        b = transform_bounds(src_crs, crs, t.c - 20_000, t.f + t.e * src.height - 20_000,
                             t.c + t.a * src.width / 2, t.f + t.e * src.height / 2)
    source = dem
    if resampling == Resampling.mode:  # classes, as a categorical driver has
        z = np.floor_divide(z, 25)
        source = tmp_path / "classes.tif"
        with rasterio.open(source, "w", **(profile | {"dtype": "float32", "nodata": np.nan})) as dst:
            dst.write(z, 1)
    grid = Grid.covering(crs, 30, 8, b, 128).analysis
    assert grid.chunk_size == 16 and min(grid.shape) > 3 * 16  # many chunks
    got = _chunked(WarpedRaster(str(source), grid, np.dtype(np.float32), np.nan, resampling))
    expect = _warped_once(z, t, src_crs, grid, resampling)
    assert np.isnan(expect).sum() > 1000 and np.isfinite(expect).sum() > 10_000  # the edge is in it
    np.testing.assert_array_equal(got, expect)
    # The top-right chunk's source window (inside the DEM): its 16 x 16 cells of 240 m are 128 x 128
    # px of 30 m, a little more turned into UTM, and the margin; the whole grid's view warped
    # 512 x 128 cells at once.
    with rasterio.open(source) as src:
        corner = grid.transform @ Affine.translation((grid.shape[1] // 16 - 1) * 16, 0)
        window, _ = source_window(src, crs, corner, 16, 16, np.dtype(np.float32))
    assert window is not None and max(window.shape) < 128 * 1.1 + 2 * WARP_MARGIN + 2, window.shape


def test_a_driver_on_the_grids_pixels_is_read_by_its_footprint_alone(tmp_path: Path) -> None:
    """A 30 m driver on the run's pixels (its tiles 64 px, its edges 3 px off the cells'), averaged
    onto 8 x 8 px cells in chunks of 8 cells: chunk by chunk equals the whole warped once and the
    plain block means where a cell is whole; a chunk reads its 64 x 64 px and no margin."""
    crs = CRS.from_user_input(CHINA_ALBERS)
    values = np.random.default_rng(5).random((200, 250)).astype(np.float32)
    values[50:60, 70:90] = np.nan
    t = Affine(30, 0, X0 + 3 * 30, 0, -30, Y1 - 3 * 30)
    path = tmp_path / "ndvi.tif"
    with rasterio.open(path, "w", driver="GTiff", width=250, height=200, count=1, dtype="float32", crs=crs,
                       transform=t, nodata=np.nan, tiled=True, blockxsize=64, blockysize=64) as dst:
        dst.write(values, 1)
    grid = Grid(crs, 30.0, 8, (X0, Y1 - 256 * 30, X0 + 320 * 30, Y1), chunk_size=64).analysis
    got = _chunked(WarpedRaster(str(path), grid, np.dtype(np.float32), np.nan, Resampling.average))
    expect = _warped_once(values, t, crs, grid, Resampling.average)
    np.testing.assert_array_equal(got, expect)
    # cell (1, 1) covers source rows and columns 5-12 whole: the mean of its 64 pixels; cell (0, 0)
    # the source's first 5 x 5: their mean
    np.testing.assert_allclose(got[1, 1], values[5:13, 5:13].mean(), rtol=1e-6)
    np.testing.assert_allclose(got[0, 0], values[:5, :5].mean(), rtol=1e-6)
    assert np.isfinite(got[0, 0]) and np.isnan(got[-1, -1])  # the edge's cells: partly covered, outside
    with rasterio.open(path) as src:
        cell = grid.transform @ Affine.translation(8, 8)
        window, wt = source_window(src, crs, cell, 8, 8, np.dtype(np.float32))
    assert window.shape == (64, 64) and wt == t @ Affine.translation(64 - 3, 64 - 3)


def test_reading_windows_makes_no_boto3_session(monkeypatch) -> None:
    """With AWS credentials in the environment (a bucket run's workers), rasterio makes a boto3
    session for every environment it opens without one (8 ms each); a driver averaged and a
    slope derived, window by window, make none. (Zones burned do: the in-memory dataset that
    rasterio's ``rasterize`` burns into opens an environment of its own, inside any other.)"""
    from rasterio import session as rio_session

    from ecodask.io.terrain import TerrainRaster

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id-of-the-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-of-the-test")
    made = []
    init = rio_session.AWSSession.__init__

    def counted(self, *args, **kwargs) -> None:  # noqa: ANN001
        made.append(1)
        init(self, *args, **kwargs)

    monkeypatch.setattr(rio_session.AWSSession, "__init__", counted)
    with rasterio.Env():  # what the count would catch
        pass
    assert len(made) == 1
    dem = shared("wuhan_dem_30m_utm49n.tif")
    grid = _wuhan_grid(dem, factor=8).analysis  # (its rasterio.open, outside an environment, makes one)
    window = (slice(100, 132), slice(100, 132))
    made.clear()
    mean = WarpedRaster(str(dem), grid, np.dtype(np.float32), np.nan, Resampling.average)[window]
    slope = TerrainRaster(str(dem), grid, "slope")[window]
    assert np.isfinite(mean).all() and np.isfinite(slope).all()
    assert made == []


def test_zones_are_parsed_once_per_thread_and_travel_without_it(monkeypatch) -> None:
    """A worker burns every chunk of the zones from one object: each thread parses the polygons once (40,000
    townships: ~0.15 s a chunk before), and the object pickled to another worker carries none of it."""
    import pickle

    from shapely.geometry import box

    import ecodask.io.rasters as rasters

    parsed = []
    real = rasters.from_wkb
    monkeypatch.setattr(rasters, "from_wkb", lambda wkb: parsed.append(len(wkb)) or real(wkb))
    grid = Grid(CRS.from_user_input(CHINA_ALBERS), 30, 4, (0.0, 0.0, 30.0 * 64, 30.0 * 64), 32)
    west, east = box(0, 0, 30.0 * 24, 30.0 * 64), box(30.0 * 24, 0, 30.0 * 64, 30.0 * 64)
    zones = RasterizedZones((west.wkb, east.wkb), (1, 2), grid, np.dtype(np.uint8))
    top, bottom = zones[0:32, 0:64], zones[32:64, 0:64]
    expected = np.zeros((32, 64), np.uint8)
    expected[:, :24], expected[:, 24:] = 1, 2  # the 24 pixel columns west of x = 720 m, then the rest
    assert np.array_equal(top, expected) and np.array_equal(bottom, expected)
    assert parsed == [2]  # two chunks, one parse
    moved = pickle.loads(pickle.dumps(zones))
    assert "_cache" not in moved.__dict__ and moved == zones
    assert np.array_equal(moved[0:32, 0:64], expected) and parsed == [2, 2]


@pytest.mark.slow  # a big region: 390 Mpx of zones
def test_hubei_zone_areas_within_half_percent(tmp_path: Path) -> None:
    """The real 103 Hubei counties rasterized on the 30 m Albers grid (390 Mpx)."""
    gpkg = shared("hubei_counties.gpkg")
    lc = np.ones((64, 64), np.uint8)  # a small land-cover tile: the grid comes from the zones
    write_tif(tmp_path / "lc.tif", lc, CHINA_ALBERS, Affine(30, 0, 600_000, 0, -30, 3_400_020), 0)
    cfg = load_config(make_tiny_region(
        tmp_path / "cfg",
        landcover={"scheme": "clcd", "years": {2020: str(tmp_path / "lc.tif")}},
        zones={"path": str(gpkg), "id_field": "adcode", "name_field": "name"},
        drivers={},
        grid={"crs": CHINA_ALBERS, "resolution": 30, "analysis_factor": 32, "chunk_size": 4096},
    ))
    store = _ingest(cfg)
    pix, _ = open_store(store)
    zt = store_zones(pix)
    assert len(zt) == 103 and pix["zone"].dtype == np.uint8
    counts = dask.compute(pix["zone"].data.map_blocks(
        lambda b: np.bincount(b.ravel(), minlength=104)[None, None], chunks=(1, 1, 104), new_axis=2,
        dtype=np.int64).sum(axis=(0, 1)))[0]
    raster_ha = counts[zt["zone"].to_numpy()] * 0.09
    rel = np.abs(raster_ha / zt["area_ha"].to_numpy() - 1)
    assert rel.max() < 0.005
    assert zt["area_ha"].sum() / 100 == pytest.approx(186_013, rel=1e-3)  # km², data README


def test_bad_inputs_named_before_anything_is_written(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r")
    folder = path.parent
    two = np.zeros((2, 8, 8), np.uint8)
    with rasterio.open(folder / "lc_2010.tif", "w", driver="GTiff", width=8, height=8, count=2,
                       dtype="uint8", crs=CHINA_ALBERS, transform=Affine(30, 0, X0, 0, -30, Y1)) as dst:
        dst.write(two)
    write_tif(folder / "elev.tif", np.zeros((8, 8), np.float32), None, Affine(30, 0, 0, 0, -30, 0), None)
    cfg = load_config(path)
    with pytest.raises(InputError) as info:
        _ingest(cfg)
    msg = str(info.value)
    assert "lc_2010.tif" in msg and "bands" in msg
    assert "elev.tif" in msg and "no CRS" in msg
    assert not (folder / "out").exists()


def test_landcover_values_that_do_not_fit_uint8(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r")
    data = np.full((ROWS, COLS), 1, np.int16)
    data[5, 7] = 300
    write_tif(path.parent / "lc_2010.tif", data, CHINA_ALBERS, Affine(30, 0, X0, 0, -30, Y1), 0)
    with pytest.raises(InputError, match=r"lc_2010.tif: band 1 = 300: does not fit uint8"):
        _ingest(load_config(path))
    assert not (path.parent / "out" / "store.zarr").exists()
    assert not (path.parent / "out" / "store.zarr.partial").exists()


def test_categorical_driver_is_the_mode_of_the_cell(tmp_path: Path) -> None:
    """Per 960 m cell (32 x 32 px): 600 px of class 3, 300 of class 7, 124 of class 1 -> 3."""
    cell = np.ones((32, 32), np.int16).ravel()
    cell[:600], cell[600:900] = 3, 7
    cell = np.random.default_rng(0).permutation(cell).reshape(32, 32)
    soil = np.tile(cell, (ROWS // 32, COLS // 32))
    soil[:32, :32] = 9  # one cell all 9
    path = make_tiny_region(tmp_path / "r")
    write_tif(path.parent / "soil.tif", soil, CHINA_ALBERS, Affine(30, 0, X0, 0, -30, Y1), -1)
    cfg = load_config(path)
    cfg = cfg.model_copy(update={"drivers": {**cfg.drivers, "soil": cfg.drivers["elevation"].model_copy(
        update={"path": path.parent / "soil.tif", "kind": "categorical"})}})
    _, ana = open_store(_ingest(cfg))
    got = ana["soil"].values
    assert got[0, 0] == 9 and (got.ravel()[1:] == 3).all()
    assert ana["soil"].attrs["resampling"] == "mode"


def test_failed_reingest_keeps_the_previous_store(tmp_path: Path) -> None:
    path = make_tiny_region(tmp_path / "r")
    store = _ingest(load_config(path))
    before = (store / "zarr.json").read_bytes()
    data = np.full((ROWS, COLS), 1, np.int16)
    data[0, 0] = 999
    write_tif(path.parent / "lc_2010.tif", data, CHINA_ALBERS, Affine(30, 0, X0, 0, -30, Y1), 0)
    with pytest.raises(InputError):
        _ingest(load_config(path))
    assert (store / "zarr.json").read_bytes() == before
    pix, _ = open_store(store)
    np.testing.assert_array_equal(pix["landcover"].sel(year=2010).values, tiny_landcover(0, 1))
    assert not (store.parent / "store.zarr.partial").exists()
