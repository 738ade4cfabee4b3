"""Exports of a finished run (``ecodask export``): county tables with polygons as GeoPackage and
GeoParquet, and every grid of the store as a Cloud-Optimized GeoTIFF, read back and compared with
the run's own tables and arrays."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import dask
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import xarray as xr
import yaml
from affine import Affine
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS

from ecodask import export as ex
from ecodask.errors import InputError
from ecodask.io.store import open_store
from ecodask.run.config import load_config
from ecodask.run.record import write_run_record
from ecodask.science.landuse import REGION_ID
from ecodask.synth import make_region

from helpers import run_stages

LAYERS = ("zones", "esv_total", "esv_by_service", "esv_change", "class_area", "hotspots", "compensation")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished tiny run (every stage, group grids, 120 m analysis cells, 64 px chunks so a grid
    spans several chunks and windows, a margin of no data), exported with ``cog=True`` to the
    default folder."""
    path = make_region(tmp_path_factory.mktemp("export"), seed=3, width_km=6, height_km=5, n_counties=3)
    data = yaml.safe_load(path.read_text())
    xmin, ymin, xmax, ymax = data["grid"]["bounds"]  # a margin outside the land cover: no data
    data["grid"].update(analysis_factor=4, chunk_size=64, bounds=[xmin - 480, ymin, xmax, ymax + 240])
    data["esv"]["group_grids"] = True
    data["drivers"] = {"elevation": data["drivers"]["elevation"]}
    data["analysis"] = {"ks": [3, 4]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with dask.config.set(scheduler="synchronous"), pytest.MonkeyPatch.context() as mp:
        # the compensation maps (PNGs) are not exported
        mp.setattr("ecodask.present.plots.compensation_maps", lambda *a, **k: {})
        cfg = load_config(path)
        started = dt.datetime.now(dt.UTC)
        _, outputs = run_stages(cfg, "ingest", "transitions_esv", "driver_analysis", "compensation")
        write_run_record(cfg, {}, outputs, started)
        lines: list[str] = []
        paths = ex.export_run(cfg.output, cog=True, log=lines.append)
    return cfg, paths, lines


def _expected_transform(ds) -> Affine:
    x, y = ds["x"].values, ds["y"].values
    dx, dy = x[1] - x[0], y[1] - y[0]
    return Affine(dx, 0.0, x[0] - dx / 2, 0.0, dy, y[0] - dy / 2)


def _check_cog(path: Path, cfg, ds, expected: np.ndarray, nodata: float | None) -> None:
    """A COG of the store: georeferenced like the store, its values, nodata, tiles, overviews."""
    with rasterio.open(path) as src:
        assert src.crs == CRS.from_user_input(cfg.grid.crs), path.name
        assert src.transform.almost_equals(_expected_transform(ds), precision=1e-9), path.name
        gt = [float(v) for v in ds["spatial_ref"].attrs["GeoTransform"].split()]
        assert src.transform.almost_equals(Affine.from_gdal(*gt), precision=1e-9), path.name
        data = src.read()
        assert data.dtype == expected.dtype, path.name
        np.testing.assert_array_equal(data, expected.reshape(data.shape), err_msg=path.name)
        if nodata is None:
            assert src.nodata is None, path.name
        elif np.isnan(nodata):
            assert np.isnan(src.nodata), path.name
        else:
            assert src.nodata == nodata, path.name
        assert src.profile["tiled"] and src.block_shapes[0][0] < max(src.height, src.width), path.name
        assert src.overviews(1), path.name
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", path.name


def test_every_file_written_once_and_nothing_left_over(run) -> None:
    cfg, paths, lines = run
    out = cfg.output / "export"
    assert all(p.is_file() and p.parent.is_relative_to(out) for p in paths.values())
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == set(paths)  # no temporary or partial file left beside them
    assert {"counties.gpkg", *(f"{n}.geoparquet" for n in LAYERS)} <= written
    years = cfg.years
    cogs = {f"cog/{n}_{y}.tif" for n in ("landcover", "esv", "esv_group") for y in years}
    cogs |= {f"cog/analysis_{n}_{y}.tif" for n in ("esv", "esv_density", "esv_gi_z", "esv_hotspot",
                                                   "esv_pixels", "esv_group", "class_pixels") for y in years}
    cogs |= {"cog/zone.tif", *(f"cog/analysis_{d}.tif" for d in cfg.drivers)}
    assert {w for w in written if w.startswith("cog/")} == cogs
    assert len(lines) == len(paths) and all(str(p) in "".join(lines) for p in paths.values())


def test_pixel_grid_cogs_equal_the_store(run) -> None:
    cfg, paths, _ = run
    pix, _ = open_store(cfg.output / "store.zarr")
    for i, year in enumerate(cfg.years):
        lc = pix["landcover"].isel(year=i).values
        assert (lc == 0).any() and (lc > 0).any()
        _check_cog(paths[f"cog/landcover_{year}.tif"], cfg, pix, lc, 0)
        esv = pix["esv"].isel(year=i).values
        assert np.isnan(esv).any() and np.isfinite(esv).any()
        _check_cog(paths[f"cog/esv_{year}.tif"], cfg, pix, esv, np.nan)
        _check_cog(paths[f"cog/esv_group_{year}.tif"], cfg, pix, pix["esv_group"].isel(year=i).values, np.nan)
    _check_cog(paths["cog/zone.tif"], cfg, pix, pix["zone"].values, 0)
    with rasterio.open(paths[f"cog/esv_{cfg.years[0]}.tif"]) as src:
        assert src.units == ("CNY/yr per pixel",) and src.descriptions == ("ecosystem service value",)
        assert src.tags()["year"] == str(cfg.years[0])
    with rasterio.open(paths[f"cog/esv_group_{cfg.years[0]}.tif"]) as src:
        groups = [str(g) for g in pix["group"].values]
        assert src.count == len(groups) and all(d.endswith(g) for d, g in zip(src.descriptions, groups,
                                                                             strict=True))


def test_analysis_grid_cogs_equal_the_store(run) -> None:
    cfg, paths, _ = run
    # unmasked, as stored: esv_hotspot stays int8 with its fill value -128
    ana = xr.open_zarr(cfg.output / "store.zarr", group="analysis", consolidated=False,
                       mask_and_scale=False, decode_coords="all").load()
    for i, year in enumerate(cfg.years):
        density = ana["esv_density"].isel(year=i).values
        _check_cog(paths[f"cog/analysis_esv_density_{year}.tif"], cfg, ana, density, np.nan)
        hot = ana["esv_hotspot"].isel(year=i).values
        assert hot.dtype == np.int8 and (hot == -128).any() and (hot != -128).any()
        _check_cog(paths[f"cog/analysis_esv_hotspot_{year}.tif"], cfg, ana, hot, -128)
        _check_cog(paths[f"cog/analysis_esv_pixels_{year}.tif"], cfg, ana,
                   ana["esv_pixels"].isel(year=i).values, None)
        _check_cog(paths[f"cog/analysis_esv_group_{year}.tif"], cfg, ana,
                   ana["esv_group"].isel(year=i).values, np.nan)
    _check_cog(paths["cog/analysis_elevation.tif"], cfg, ana, ana["elevation"].values, np.nan)
    with rasterio.open(paths[f"cog/analysis_esv_density_{cfg.years[-1]}.tif"]) as src:
        assert src.units == ("CNY/ha/yr",)
    with rasterio.open(paths[f"cog/analysis_esv_hotspot_{cfg.years[-1]}.tif"]) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("OVERVIEW_RESAMPLING") == "MODE"


def test_grids_are_copied_window_by_window(run, tmp_path: Path, monkeypatch) -> None:
    """No read covers a whole 30 m grid: each is a few chunks, and the windows tile the grid."""
    cfg, _, _ = run
    pix, _ = open_store(cfg.output / "store.zarr")
    shape = (pix.sizes["y"], pix.sizes["x"])
    rasters = {r.name: r for r in ex.store_rasters(cfg.output / "store.zarr", cfg.grid.crs)}
    r = rasters[f"landcover_{cfg.years[0]}"]
    reads: list[tuple[int, int]] = []
    real = ex.windows

    def spy(*args, **kwargs):
        for w in real(*args, **kwargs):
            reads.append((w.height, w.width))
            yield w

    monkeypatch.setattr(ex, "windows", spy)
    ex.write_cog(r, tmp_path / "lc.tif")
    assert len(reads) > 1 and all(h * w < shape[0] * shape[1] for h, w in reads)
    assert sum(h * w for h, w in reads) == shape[0] * shape[1]
    chunk = max(r.data.chunks[1])
    assert all(h <= max(chunk, ex.block_size(*shape)) for h, _ in reads)


def test_county_layers_read_back_equal_the_tables(run) -> None:
    cfg, paths, _ = run
    tables = cfg.output / "tables"
    crs = ProjCRS.from_user_input(cfg.grid.crs)
    n_counties = len(gpd.read_file(cfg.zones.path))
    layers = set(pyogrio.list_layers(paths["counties.gpkg"])[:, 0])
    assert layers == set(LAYERS)
    esv = pd.read_parquet(tables / "esv_by_service.parquet")
    esv = esv[esv.zone_id != REGION_ID]
    for name in LAYERS:
        gpkg = gpd.read_file(paths["counties.gpkg"], layer=name)
        gpq = gpd.read_parquet(paths[f"{name}.geoparquet"])
        for g in (gpkg, gpq):
            assert g.crs == crs, name
            assert g.geometry.is_valid.all() and not g.geometry.is_empty.any() and g.geometry.notna().all()
            assert REGION_ID not in set(g.zone_id), name
        pd.testing.assert_frame_equal(pd.DataFrame(gpkg.drop(columns="geometry")),
                                      pd.DataFrame(gpq.drop(columns="geometry")), check_dtype=False)
        assert gpkg.geometry.geom_equals(gpq.geometry).all()
    zones = gpd.read_parquet(paths["zones.geoparquet"])
    assert len(zones) == n_counties
    np.testing.assert_allclose(zones.geometry.area / 1e4, zones.area_ha, rtol=1e-9)

    total = gpd.read_parquet(paths["esv_total.geoparquet"])
    assert len(total) == n_counties * len(cfg.years)
    assert not total.duplicated(["zone_id", "year"]).any()
    src = esv[esv.level == "total"].set_index(["zone_id", "year"])["esv_cny"]
    got = total.set_index(["zone_id", "year"])
    np.testing.assert_array_equal(got["esv_cny"], src.loc[got.index])
    market = esv[esv.level == "market"].set_index(["zone_id", "year", "item"])["esv_cny"]
    for item in ("market", "non_market"):
        np.testing.assert_array_equal(got[f"{item}_cny"], market.xs(item, level="item").loc[got.index])
    np.testing.assert_allclose(got.esv_cny_per_ha, got.esv_cny / got.area_ha, rtol=1e-12)
    # every county polygon is the one of the zones layer
    geom = zones.set_index("zone_id").geometry
    assert total.geometry.geom_equals(geom.loc[total.zone_id].reset_index(drop=True)).all()

    services = gpd.read_parquet(paths["esv_by_service.geoparquet"]).set_index(["zone_id", "year"])
    rows = esv[esv.level == "service"]
    assert len(services) == n_counties * len(cfg.years)
    for r in rows.itertuples():
        assert services.loc[(r.zone_id, r.year), f"{r.item}_cny"] == r.esv_cny
    groups = esv[esv.level == "group"]
    for r in groups.itertuples():
        assert got.loc[(r.zone_id, r.year), f"{r.item}_cny"] == r.esv_cny

    area = gpd.read_parquet(paths["class_area.geoparquet"]).set_index(["zone_id", "year"])
    ca = pd.read_parquet(tables / "class_area.parquet")
    ca = ca[ca.zone_id != REGION_ID]
    assert len(area) == n_counties * len(cfg.years)
    for r in ca.itertuples():
        assert area.loc[(r.zone_id, r.year), f"{r.class_name}_ha"] == r.area_ha
        assert area.loc[(r.zone_id, r.year), f"{r.class_name}_share"] == r.share

    for name, keys in (("hotspots", ["zone_id", "year"]), ("compensation", ["zone_id", "year", "variant"]),
                       ("esv_change", ["zone_id", "year_from", "year_to"])):
        got_t = pd.DataFrame(gpd.read_parquet(paths[f"{name}.geoparquet"]).drop(columns="geometry"))
        src_t = pd.read_parquet(tables / f"{name}.parquet")
        src_t = src_t[src_t.zone_id.astype(str) != REGION_ID]
        if name == "esv_change":
            src_t = src_t[src_t.level == "total"].drop(columns=["level", "item", "group"])
        assert len(got_t) == len(src_t) and not got_t.duplicated(keys).any(), name
        merged = got_t.merge(src_t, on=keys, suffixes=("", "_src"))
        assert len(merged) == len(src_t), name
        for c in src_t.columns:
            if c not in keys:
                assert (merged[c] == merged[f"{c}_src"]).all(), (name, c)


def test_not_a_run_raises_before_writing(tmp_path: Path) -> None:
    folder = tmp_path / "just-a-folder"
    folder.mkdir()
    (folder / "notes.txt").write_text("hello")
    with pytest.raises(InputError) as err:
        ex.export_run(folder, cog=True)
    text = str(err.value)
    assert str(folder) in text and "run.json" in text and "store.zarr" in text
    assert "esv_by_service.parquet" in text
    assert not (folder / "export").exists()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    with pytest.raises(InputError, match="no such folder"):
        ex.export_run(tmp_path / "missing", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_zones_input_raises_before_writing(run, tmp_path: Path) -> None:
    """A run whose zones input is gone: the error names run.json and the key; nothing is written."""
    cfg, _, _ = run
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("store.zarr", "tables"):
        os.symlink(cfg.output / name, folder / name)
    record = json.loads((cfg.output / "run.json").read_text())
    record["config"]["zones"]["path"] = str(tmp_path / "gone.gpkg")
    record["config_file"] = None
    (folder / "run.json").write_text(json.dumps(record))
    with pytest.raises(InputError) as err:
        ex.export_run(folder, cog=True)
    text = str(err.value)
    assert "run.json: config.zones.path" in text and "gone.gpkg" in text
    assert not (folder / "export").exists()


def test_failed_cog_leaves_no_file(run, tmp_path: Path, monkeypatch) -> None:
    cfg, _, _ = run

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ex.rasterio.shutil, "copy", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk full"):
        ex.export_run(cfg.output, cog=True, out=out)
    assert list((out / "cog").iterdir()) == []  # neither the temporary GeoTIFF nor a partial COG
    assert not [p for p in out.rglob(".*")]


def test_tables_only_without_cog(run, tmp_path: Path) -> None:
    cfg, paths, _ = run
    got = ex.export_run(cfg.output, out=tmp_path / "tables-only")
    assert set(got) == {k for k in paths if not k.startswith("cog/")}
    assert not (tmp_path / "tables-only" / "cog").exists()


def test_export_command(run, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from ecodask.cli import app

    cfg, paths, _ = run
    res = CliRunner().invoke(app, ["export", str(cfg.output), "--out", str(tmp_path / "e")])
    assert res.exit_code == 0, res.output
    written = {p.relative_to(tmp_path / "e").as_posix() for p in (tmp_path / "e").rglob("*") if p.is_file()}
    assert written == {k for k in paths if not k.startswith("cog/")}
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "nothing")])
    assert bad.exit_code == 2 and "nothing" in bad.output and "Traceback" not in bad.output
