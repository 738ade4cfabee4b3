"""Ingest: source GeoTIFFs (any CRS) and county polygons -> one Zarr v3 store on the run's grid.

Store layout (CF conventions, readable by xarray/rioxarray and GDAL)::

    store.zarr/
      landcover (year, y, x) uint8   class codes, nearest resampling, 0 = no data
      zone      (y, x)       uint8|uint16|uint32  zone index 1..n, 0 outside every zone
      spatial_ref, x, y, year        CRS (crs_wkt, GeoTransform) and pixel-centre coordinates, m
      analysis/                       the analysis grid (cell = analysis_factor pixels)
        <driver> (y, x) float32       mean (continuous) or mode (categorical) of each driver
        spatial_ref, x, y

Chunks are ``chunk_size``² pixels on the pixel grid and ``chunk_size / analysis_factor``² cells
on the analysis grid, so chunk (i, j) of every array covers the same ground. The store is written
under a temporary name and renamed when complete: a reader never sees half of it.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
from rasterio.enums import Resampling
from rasterio.warp import transform_bounds

from ecodask import __version__
from ecodask.errors import InputError, Problem, problem
from ecodask.io.cleanup import remove_tree
from ecodask.io.rasters import RasterizedZones, WarpedRaster, open_info, smallest_uint
from ecodask.io.zones import read_zones, zone_table
from ecodask.run.config import RunConfig
from ecodask.science.grid import Grid

STORE_NAME = "store.zarr"
ANALYSIS_GROUP = "analysis"


@dataclass(frozen=True)
class Prepared:
    """What ingest needs, checked: the grid and the numbered zones."""

    grid: Grid
    zones: object  # GeoDataFrame in the grid CRS


def check_inputs(cfg: RunConfig) -> Prepared:
    """Open every input and check it can be used, before anything is written.

    Rasters: readable, one band, a CRS, overlapping the grid; land cover of an integer type, every
    year on the same grid as the first (CRS, transform, shape), so that pixels pair up across
    years in the transfer matrices. Zones: see :func:`ecodask.io.zones.read_zones`. Raises
    :class:`InputError` listing every fault.
    """
    crs = cfg.grid.to_grid((0, 0, 1, 1)).crs
    zones = read_zones(cfg, crs)
    grid = cfg.grid.to_grid(tuple(zones.total_bounds))
    problems: list[Problem] = []
    rasters = [(f"landcover.years.{y}", p, True) for y, p in sorted(cfg.landcover.years.items())]
    rasters += [(f"drivers.{n}", d.path, False) for n, d in cfg.drivers.items()]
    first_lc: tuple[Path, dict] | None = None
    for key, path, is_lc in rasters:
        try:
            info = open_info(path)
        except InputError as exc:
            problems.extend(exc.problems)
            continue
        if is_lc and first_lc is None:
            first_lc = (path, info)
        elif is_lc:
            problems.extend(_same_grid(key, path, info, *first_lc))
        if info["count"] != 1:
            problems.append(problem(path, f"{key} (bands)", info["count"], "must have exactly one band"))
        if info["crs"] is None:
            problems.append(problem(path, f"{key} (crs)", None, "the raster has no CRS"))
            continue
        if is_lc and not np.issubdtype(np.dtype(info["dtype"]), np.integer):
            problems.append(
                problem(path, f"{key} (dtype)", info["dtype"], "land cover must be integer codes")
            )
        b = transform_bounds(info["crs"], grid.crs, *info["bounds"], densify_pts=21)
        g = grid.bounds
        if b[0] >= g[2] or b[2] <= g[0] or b[1] >= g[3] or b[3] <= g[1]:
            problems.append(problem(path, f"{key} (bounds)", tuple(round(v) for v in b),
                                    f"does not overlap the run's grid {g}"))
    if cfg.county_stats is not None and cfg.compensation.enabled:  # fail before any pixel is read
        from ecodask.io.county_stats import read_county_stats

        try:
            read_county_stats(cfg.county_stats, zone_table(zones), cfg.years)
        except InputError as exc:
            problems.extend(exc.problems)
    if problems:
        raise InputError(problems)
    return Prepared(grid, zones)


def _same_grid(key: str, path: Path, info: dict, first: Path, ref: dict) -> list[Problem]:
    """Problems where a land-cover year is on another grid than the first year's."""
    for field, fmt in (("crs", lambda v: v.to_string() if v else None), ("shape", tuple),
                       ("transform", lambda t: tuple(round(v, 6) for v in tuple(t)[:6]))):
        a, b = info[field], ref[field]
        if (a != b) if field != "transform" else not a.almost_equals(b, precision=1e-9):
            return [problem(path, f"{key} ({field})", fmt(a),
                            f"land-cover years must share one grid; {first.name} has {fmt(b)}")]
    return []


def _georef(obj: xr.Dataset, grid: Grid) -> xr.Dataset:
    xs, ys = grid.coords()
    obj = obj.assign_coords(x=("x", xs), y=("y", ys))
    obj.x.attrs.update(standard_name="projection_x_coordinate", units="m", axis="X")
    obj.y.attrs.update(standard_name="projection_y_coordinate", units="m", axis="Y")
    obj = obj.rio.write_crs(grid.crs.to_wkt()).rio.write_transform(grid.transform)
    for name in obj.data_vars:
        obj[name].attrs["grid_mapping"] = "spatial_ref"
        # GDAL's Zarr driver reads the CRS from _CRS.
        obj[name].attrs["_CRS"] = {"wkt": grid.crs.to_wkt()}
    return obj


def _dataset_pixels(cfg: RunConfig, prep: Prepared) -> xr.Dataset:
    grid = prep.grid
    c = grid.chunk_size
    years = cfg.years
    layers = [
        da.from_array(WarpedRaster(str(cfg.landcover.years[y]), grid, np.dtype(np.uint8), 0),
                      chunks=(c, c), lock=False, asarray=True, name=False)
        for y in years
    ]
    zones = prep.zones
    ztype = smallest_uint(len(zones))
    zsrc = RasterizedZones(tuple(zones.geometry.to_wkb()), tuple(int(v) for v in zones["zone"]), grid, ztype)
    zone = da.from_array(zsrc, chunks=(c, c), lock=False, asarray=True, name=False)
    ds = xr.Dataset(
        {
            "landcover": (("year", "y", "x"), da.stack(layers)),
            "zone": (("y", "x"), zone),
        },
        coords={"year": ("year", np.asarray(years, dtype=np.int32))},
    )
    ds["landcover"].attrs.update(long_name="land-cover class code", scheme=cfg.landcover.scheme,
                                 nodata=0, resampling="nearest")
    ds["zone"].attrs.update(long_name="zone index (see the store's zones attribute); 0 = outside",
                            nodata=0)
    ds = _georef(ds, grid)
    ztab = zone_table(zones)
    ds.attrs.update(
        ecodask_version=__version__,
        run_name=cfg.name,
        resolution_m=grid.resolution,
        analysis_factor=grid.analysis_factor,
        pixel_area_ha=grid.pixel_area_ha,
        class_scheme=cfg.landcover.scheme,
        zones={k: ztab[k].tolist() for k in ("zone", "zone_id", "zone_name", "area_ha")},
    )
    return ds


def _dataset_analysis(cfg: RunConfig, prep: Prepared) -> xr.Dataset:
    agrid = prep.grid.analysis
    c = agrid.chunk_size
    data = {}
    for name, d in sorted(cfg.drivers.items()):
        resampling = Resampling.average if d.kind == "continuous" else Resampling.mode
        src = WarpedRaster(str(d.path), agrid, np.dtype(np.float32), np.nan, resampling)
        data[name] = (("y", "x"), da.from_array(src, chunks=(c, c), lock=False, asarray=True, name=False))
    ds = xr.Dataset(data)
    for name, d in cfg.drivers.items():
        ds[name].attrs.update(kind=d.kind, resampling="average" if d.kind == "continuous" else "mode",
                              source=Path(d.path).name)
    ds = _georef(ds, agrid)
    ds.attrs.update(cell_size_m=agrid.resolution, analysis_factor=prep.grid.analysis_factor)
    return ds


def _encoding(ds: xr.Dataset, fill: dict[str, object]) -> dict[str, dict]:
    enc = {}
    for name, var in ds.data_vars.items():
        enc[name] = {"chunks": tuple(c[0] for c in var.chunks), "_FillValue": fill.get(name, np.nan)}
    return enc


def ingest(cfg: RunConfig, prep: Prepared | None = None, out_dir: Path | None = None) -> Path:
    """Write the run's Zarr store; return its path.

    Uses the current Dask scheduler (the run's cluster). The store is first written as
    ``store.zarr.partial`` and renamed into place only when complete.
    """
    prep = prep or check_inputs(cfg)
    out_dir = Path(out_dir or cfg.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / STORE_NAME
    tmp = out_dir / (STORE_NAME + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        pix = _dataset_pixels(cfg, prep)
        pix.to_zarr(tmp, mode="w", zarr_format=3, consolidated=False,
                    encoding=_encoding(pix, {"landcover": 0, "zone": 0}))
        ana = _dataset_analysis(cfg, prep)
        ana.to_zarr(tmp, group=ANALYSIS_GROUP, mode="w", zarr_format=3, consolidated=False,
                    encoding=_encoding(ana, {}))
    except BaseException:
        remove_tree(tmp)  # also what chunk writes still running put there
        raise
    old = out_dir / (STORE_NAME + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def open_store(path: str | Path) -> tuple[xr.Dataset, xr.Dataset]:
    """The pixel-grid and analysis-grid datasets of a store, lazily, codes left as integers."""
    pix = xr.open_zarr(path, consolidated=False, mask_and_scale=False, decode_coords="all")
    ana = xr.open_zarr(path, group=ANALYSIS_GROUP, consolidated=False, decode_coords="all")
    return pix, ana


def store_zones(pix: xr.Dataset) -> pd.DataFrame:
    """The zone table recorded in a store: zone, zone_id, zone_name, area_ha."""
    return pd.DataFrame(pix.attrs["zones"])
