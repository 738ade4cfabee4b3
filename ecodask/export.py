"""Exports of a finished run, for GIS users (the ``ecodask export`` command).

Written under ``<run_dir>/export`` (or ``out``)::

    counties.gpkg            one layer per county table, with the county polygons
    <layer>.geoparquet       the same layers, one GeoParquet file each
    cog/<array>[_<year>].tif with ``cog=True``: every 30 m grid of the store, one file per year
    cog/analysis_<array>[_<year>].tif   and every analysis-grid array, one file per year

County layers (one row per county and year unless said otherwise; the whole-region rows of the
tables, ``zone_id`` = :data:`ecodask.science.landuse.REGION_ID`, are left out; ``zone_id`` is text):

- ``zones``: zone (index in the store's ``zone`` grid), zone_id, zone_name, area_ha (polygon area
  in the grid's equal-area CRS, ha); one row per county.
- ``esv_total``: esv_cny (total ESV, CNY/yr), esv_1e8cny (10^8 CNY/yr), market_cny and
  non_market_cny, one ``<group>_cny`` column per service group (CNY/yr), area_ha (the polygon's),
  coverage (share of the zone's pixels with land cover that year), partial (under
  ``zones.min_coverage``), data_area_ha (the area with land cover) and esv_cny_per_ha (total ESV
  over the area with land cover, CNY/ha/yr).
- ``esv_by_service``: one ``<service>_cny`` column per ecosystem service (CNY/yr).
- ``esv_change``: one row per county and pair of years (year_from, year_to): esv_from_cny,
  esv_to_cny, change_cny, change_1e8cny, rate_pct of the total ESV.
- ``class_area``: ``<class>_ha`` (area, ha) and ``<class>_share`` (share of the county's valued
  pixels, 0-1) per land-cover class.
- ``hotspots`` (when the run computed them): analysis cells per Gi* class and the mean Gi* z.
- ``compensation`` (when the run computed it): the run's ``tables/compensation`` table, one row
  per county, year and variant.

The polygons come from the run's zones input (``zones`` in the configuration recorded in
``run.json``), projected to the run's grid CRS (``grid.crs``), the CRS of every layer.

Rasters are Cloud-Optimized GeoTIFFs (DEFLATE, tiled, overviews: MODE for categorical grids,
AVERAGE for continuous ones) in the store's CRS, with the store's fill value as nodata (NaN for
floats, 0 for ``landcover`` and ``zone``, -128 for ``esv_hotspot``), the array's ``long_name`` as
band description and its ``units`` as band unit. Units as in the store: ``esv`` CNY/yr per pixel,
``analysis/esv`` CNY/yr per analysis cell, ``analysis/esv_density`` CNY/ha/yr. A grid is never
read whole: it is copied window by window (a few store chunks at a time) into a temporary tiled
GeoTIFF beside the output, which GDAL's COG driver then turns into the final file.

Every file is written under a temporary name and renamed into place when complete; temporary
files are removed on any failure. Nothing is written before the run folder, its tables, its zones
input and its store have been read and checked.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import rasterio
import rasterio.shutil
import xarray as xr
from affine import Affine
from pydantic import ValidationError
from rasterio.crs import CRS
from rasterio.windows import Window

from ecodask.errors import InputError, Problem, problem
from ecodask.io import commit
from ecodask.io.atomic import write_atomic
from ecodask.io.layout import EXPORT, STORE, TABLES, RunFolder
from ecodask.io.store import ANALYSIS_GROUP as ANALYSIS
from ecodask.io.store import ESV_HOTSPOT, LANDCOVER, ZONE
from ecodask.io.vectors import reproducible_gpkg
from ecodask.run.config import ZonesConfig, default_work_dir
from ecodask.science.landuse import REGION_ID, TOTAL

COUNTIES_GPKG = "counties.gpkg"
COG_DIR = "cog"

OPTIONAL_TABLES = ("esv_change", "hotspots", "compensation", "coverage")
REQUIRED_TABLES = ("esv_by_service", "class_area")
OPTIONAL_TABLES = ("esv_change", "hotspots", "compensation")

#: Grids of class codes: overviews by MODE, never averaged.
CATEGORICAL = frozenset({LANDCOVER, ZONE, ESV_HOTSPOT})

#: Largest tile side of the COGs (px); smaller rasters get smaller tiles so they have overviews.
MAX_BLOCK = 512
MIN_BLOCK = 16

_KEY_COLUMNS = ["zone_id", "zone_name", "year"]


# --------------------------------------------------------------------------- the run folder


@dataclass(frozen=True)
class FinishedRun:
    """What an export needs from a run folder, read and checked."""

    run_dir: Path
    record: dict[str, Any]
    grid_crs: str  # the configuration's grid.crs
    polygons: gpd.GeoDataFrame  # zone, zone_id (str), zone_name, area_ha, geometry; grid CRS
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def store(self) -> Path:
        return self.run_dir / STORE

    @property
    def name(self) -> str:
        return str(self.record.get("config", {}).get("name", self.run_dir.name))


def open_run(run_dir: str | Path) -> FinishedRun:
    """Read a finished run's record, county tables and county polygons; raise
    :class:`InputError` naming the folder and everything missing when it is not a finished run
    (no ``run.json``, no ``store.zarr``, no ESV tables) or its zones input cannot be read."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError([problem(run_dir, "", None, "no such folder: give the output folder of a "
                                  "finished run (it holds run.json, store.zarr and tables/)")])
    commit.settle(run_dir)  # a commit a killed run left half-done is finished first
    record_path = RunFolder(run_dir).run_record
    problems: list[Problem] = []
    record: dict[str, Any] | None = None
    if not record_path.is_file():
        problems.append(problem(record_path, "", None, "missing: not the output folder of a finished "
                                "run (run.json is written when a run finishes)"))
    else:
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            problems.append(problem(record_path, "", None, f"cannot read the run record: {exc}"))
        else:
            if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
                problems.append(problem(record_path, "config", None, "missing: no run configuration "
                                        "recorded"))
                record = None
    if not (run_dir / STORE / "zarr.json").is_file():
        problems.append(problem(run_dir / STORE, "", None, "missing: the run's Zarr store is not there"))
    for name in REQUIRED_TABLES:
        path = RunFolder(run_dir).table_path(name)
        if not path.is_file():
            problems.append(problem(path, "", None, "missing: the run's ESV stage has not finished"))
    if problems:
        raise InputError(problems)
    assert record is not None
    cfg = record["config"]
    grid_crs = (cfg.get("grid") or {}).get("crs")
    if not grid_crs:
        raise InputError([problem(record_path, "config.grid.crs", grid_crs, "missing")])
    tables = {}
    for name in (*REQUIRED_TABLES, *OPTIONAL_TABLES):
        path = RunFolder(run_dir).table_path(name)
        if path.is_file():
            try:
                tables[name] = pd.read_parquet(path)
            except Exception as exc:  # noqa: BLE001 - a damaged file is the user's to fix
                raise InputError([problem(path, "", None, f"cannot read: {exc}")]) from None
    polygons = _county_polygons(run_dir, record, grid_crs)
    _check_zone_ids(run_dir, polygons, tables)
    return FinishedRun(run_dir, record, grid_crs, polygons, tables)


def _zones_config(run_dir: Path, record: dict[str, Any]) -> ZonesConfig:
    """The run's zones input, its path resolved as :func:`ecodask.run.config.load_config` does
    (relative to the configuration file's folder). The recorded entry (an absolute path after
    the run) is tried first, then the configuration file's current entry."""
    record_path = RunFolder(run_dir).run_record
    cfg = record["config"]
    config_file = Path(record["config_file"]) if record.get("config_file") else None
    base = config_file.parent if config_file else run_dir
    candidates = [("config.zones", cfg.get("zones"), base, cfg)]
    if config_file is not None and config_file.is_file():
        try:
            import yaml

            data = yaml.safe_load(config_file.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - the recorded configuration is what counts
            data = None
        if isinstance(data, dict) and isinstance(data.get("zones"), dict):
            candidates.append(("zones", data["zones"], config_file.parent, data))
    first: Problem | None = None
    for key, raw, folder, data in candidates:
        if not isinstance(raw, dict):
            first = first or problem(record_path, key, raw, "missing: no zones input recorded")
            continue
        try:
            return ZonesConfig.model_validate(
                raw, context={"base": folder, "work_dir": default_work_dir(data, folder)})
        except ValidationError as exc:
            e = exc.errors()[0]
            where = record_path if key.startswith("config.") else config_file
            loc = ".".join(str(p) for p in e["loc"])
            first = first or problem(where, f"{key}.{loc}", e.get("input"),
                                     e["msg"].removeprefix("Value error, "))
    assert first is not None
    raise InputError([first])


def _county_polygons(run_dir: Path, record: dict[str, Any], grid_crs: str) -> gpd.GeoDataFrame:
    """The county polygons of the run in its grid CRS, as the run numbered them."""
    from ecodask.io.zones import read_zones

    z = _zones_config(run_dir, record)
    polygons = read_zones(z.path, z.id_field, z.name_field, grid_crs, z.layer)
    return polygons.assign(zone_id=polygons["zone_id"].astype(str))


def _check_zone_ids(run_dir: Path, polygons: gpd.GeoDataFrame, tables: dict[str, pd.DataFrame]) -> None:
    """Every county of the tables has a polygon (the zones input may have changed since the run)."""
    have = set(polygons["zone_id"])
    for name, t in tables.items():
        ids = set(t["zone_id"].astype(str)) - {REGION_ID}
        missing = sorted(ids - have)
        if missing:
            raise InputError([problem(run_dir / TABLES / f"{name}.parquet", "zone_id", missing[:10],
                                      "no polygon with this id in the zones input: has the zones file "
                                      "changed since the run?")])


# --------------------------------------------------------------------------- county layers


def _safe_name(name: object, fallback: str) -> str:
    s = re.sub(r"[^0-9A-Za-z_]+", "_", str(name)).strip("_").lower()
    return s or fallback


def _counties(t: pd.DataFrame) -> pd.DataFrame:
    """The county rows of a table (the whole-region rows left out), zone_id as text."""
    t = t.assign(zone_id=t["zone_id"].astype(str))
    return t[t["zone_id"] != REGION_ID].reset_index(drop=True)


def _wide(t: pd.DataFrame, index: list[str], columns: str, values: str, suffix: str,
          taken: set[str]) -> pd.DataFrame:
    """``values`` of ``t`` with one column per ``columns`` value (first-seen order), named
    ``<value><suffix>``; names already in ``taken`` get a numbered suffix."""
    order = list(dict.fromkeys(t[columns]))
    wide = t.pivot(index=index, columns=columns, values=values)[order]
    names = []
    for item in order:
        base = f"{_safe_name(item, 'item')}{suffix}"
        name, i = base, 2
        while name in taken:
            name, i = f"{base}_{i}", i + 1
        taken.add(name)
        names.append(name)
    wide.columns = names
    return wide


def esv_total_layer(esv_by_service: pd.DataFrame, area_ha: pd.Series,
                    coverage: pd.DataFrame | None = None) -> pd.DataFrame:
    """Total, market / non-market and per-group ESV (CNY/yr) per county and year from an
    ``esv_by_service`` table, with area_ha (the polygon's, by zone_id). esv_cny_per_ha (CNY/ha/yr)
    divides by the area with land cover that year (``coverage``'s data_area_ha; its coverage share
    and partial flag are added), or by the polygon's area for a run without a coverage table."""
    t = _counties(esv_by_service)
    total = t[t["level"] == TOTAL].set_index(_KEY_COLUMNS)[["esv_cny", "esv_1e8cny"]]
    taken = {*_KEY_COLUMNS, "esv_cny", "esv_1e8cny", "area_ha", "esv_cny_per_ha"}
    parts = [total]
    for level in ("market", "group"):
        rows = t[t["level"] == level]
        if len(rows):
            parts.append(_wide(rows, _KEY_COLUMNS, "item", "esv_cny", "_cny", taken))
    out = pd.concat(parts, axis=1).reset_index()
    out["area_ha"] = out["zone_id"].map(area_ha).astype(float)
    if coverage is None:
        out["esv_cny_per_ha"] = out["esv_cny"] / out["area_ha"]
    else:
        cov = _counties(coverage)[["zone_id", "year", "coverage", "partial", "data_area_ha"]]
        out = out.merge(cov.astype({"zone_id": out["zone_id"].dtype, "year": out["year"].dtype}),
                        on=["zone_id", "year"], how="left")
        out["esv_cny_per_ha"] = out["esv_cny"] / out["data_area_ha"].where(out["data_area_ha"] > 0)
    return out.sort_values(["zone_id", "year"], kind="stable").reset_index(drop=True)


def esv_by_service_layer(esv_by_service: pd.DataFrame) -> pd.DataFrame:
    """ESV (CNY/yr) of each ecosystem service as one ``<service>_cny`` column, per county and year."""
    t = _counties(esv_by_service)
    t = t[t["level"] == "service"]
    out = _wide(t, _KEY_COLUMNS, "item", "esv_cny", "_cny", set(_KEY_COLUMNS)).reset_index()
    return out.sort_values(["zone_id", "year"], kind="stable").reset_index(drop=True)


def esv_change_layer(esv_change: pd.DataFrame) -> pd.DataFrame:
    """Change of the total ESV per county between each pair of years (CNY/yr, %)."""
    t = _counties(esv_change)
    t = t[t["level"] == TOTAL]
    cols = ["zone_id", "zone_name", "year_from", "year_to", "esv_from_cny", "esv_to_cny", "change_cny",
            "change_1e8cny", "rate_pct"]
    return t[[c for c in cols if c in t.columns]].sort_values(
        ["zone_id", "year_from", "year_to"], kind="stable").reset_index(drop=True)


def class_area_layer(class_area: pd.DataFrame) -> pd.DataFrame:
    """Area (``<class>_ha``, ha) and share (``<class>_share``, 0-1) of each land-cover class per
    county and year, classes in code order."""
    t = _counties(class_area).sort_values(["class_code"], kind="stable")
    names = {c: _safe_name(n, f"class_{c}") for c, n in
             t.drop_duplicates("class_code")[["class_code", "class_name"]].itertuples(index=False)}
    if len(set(names.values())) < len(names):  # two classes of one name: tell them apart by code
        names = {c: f"{n}_{c}" for c, n in names.items()}
    t = t.assign(item=t["class_code"].map(names))
    taken = set(_KEY_COLUMNS)
    area = _wide(t, _KEY_COLUMNS, "item", "area_ha", "_ha", taken)
    share = _wide(t, _KEY_COLUMNS, "item", "share", "_share", taken)
    out = pd.concat([area, share], axis=1).reset_index()
    return out.sort_values(["zone_id", "year"], kind="stable").reset_index(drop=True)


def _first_columns(t: pd.DataFrame, first: list[str]) -> pd.DataFrame:
    return t[[*first, *[c for c in t.columns if c not in first]]]


def county_layers(run: FinishedRun) -> dict[str, gpd.GeoDataFrame]:
    """Every county layer of a run (see the module docstring), with the county polygons."""
    poly = run.polygons
    area = poly.set_index("zone_id")["area_ha"]
    t = run.tables
    frames: dict[str, pd.DataFrame] = {
        "zones": pd.DataFrame(poly.drop(columns="geometry")),
        "esv_total": esv_total_layer(t["esv_by_service"], area, t.get("coverage")),
        "esv_by_service": esv_by_service_layer(t["esv_by_service"]),
    }
    if "esv_change" in t:
        frames["esv_change"] = esv_change_layer(t["esv_change"])
    frames["class_area"] = class_area_layer(t["class_area"])
    if "hotspots" in t:
        frames["hotspots"] = _first_columns(_counties(t["hotspots"]), _KEY_COLUMNS)
    if "compensation" in t:
        frames["compensation"] = _first_columns(_counties(t["compensation"]), _KEY_COLUMNS)
    geometry = poly[["zone_id", "geometry"]]
    layers = {}
    for name, df in frames.items():
        if name == "zones":
            layers[name] = gpd.GeoDataFrame(df, geometry=poly.geometry.to_numpy(), crs=poly.crs)
            continue
        merged = geometry.merge(df, on="zone_id", how="inner")  # every id has a polygon (checked)
        layers[name] = gpd.GeoDataFrame(_first_columns(merged.drop(columns="geometry"), ["zone_id"]),
                                        geometry=merged.geometry.to_numpy(), crs=poly.crs)
    return layers


# --------------------------------------------------------------------------- atomic writers


def _partial(path: Path, tag: str = "partial") -> Path:
    return path.with_name(f".{path.stem}.{tag}{path.suffix}")  # GDAL picks the format by suffix


def _remove(paths: list[Path]) -> None:
    for p in paths:
        for q in (p, *p.parent.glob(p.name + "*")):  # GDAL's side files (-journal, .ovr.tmp, .aux.xml)
            q.unlink(missing_ok=True)


def write_layers(layers: dict[str, gpd.GeoDataFrame], folder: str | Path,
                 log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write ``counties.gpkg`` (one layer per entry, polygons as MultiPolygon) and one
    ``<name>.geoparquet`` per entry under ``folder``, each atomically; return them by file name."""
    log = log or (lambda _msg: None)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    gpkg = folder / COUNTIES_GPKG
    tmp = _partial(gpkg)
    try:
        _remove([tmp])
        with reproducible_gpkg():
            for name, gdf in layers.items():
                pyogrio.write_dataframe(gdf, tmp, layer=name, driver="GPKG", promote_to_multi=True)
        os.replace(tmp, gpkg)
    finally:
        _remove([tmp])
    log(f"wrote {gpkg} (layers: {', '.join(layers)})")
    paths = {gpkg.name: gpkg}
    for name, gdf in layers.items():
        path = folder / f"{name}.geoparquet"
        write_atomic(path, lambda tmp, gdf=gdf: gdf.to_parquet(tmp, index=False, compression="zstd"))
        log(f"wrote {path}")
        paths[path.name] = path
    return paths


# --------------------------------------------------------------------------- grids as COGs


@dataclass(frozen=True)
class Raster:
    """One COG to write: ``data`` (band, y, x), lazily, and how to describe it."""

    name: str  # file stem
    data: Any  # dask array (band, y, x)
    crs: CRS
    transform: Affine
    nodata: float | int | None
    categorical: bool
    descriptions: list[str]
    units: str | None
    tags: dict[str, str]
    band_tags: dict[str, str]


def grid_transform(ds: xr.Dataset, source: str | Path) -> Affine:
    """The affine transform of a grid's pixel corners from its pixel-centre ``x``/``y``
    coordinates (m); a one-pixel axis takes its size from the ``spatial_ref`` GeoTransform."""
    gt = None
    if "spatial_ref" in ds.coords and "GeoTransform" in ds["spatial_ref"].attrs:
        gt = [float(v) for v in str(ds["spatial_ref"].attrs["GeoTransform"]).split()]

    def step(axis: str, gt_index: int) -> tuple[float, float]:
        v = np.asarray(ds[axis].values, dtype=np.float64)
        if v.size >= 2:
            d = (v[-1] - v[0]) / (v.size - 1)
            if not np.allclose(np.diff(v), d, rtol=0, atol=abs(d) * 1e-6):
                raise InputError([problem(source, axis, None, "irregular coordinates: not a grid")])
        elif gt is not None:
            d = gt[gt_index]
        else:
            raise InputError([problem(source, axis, None, "one pixel and no GeoTransform: unknown size")])
        return float(v[0] - d / 2), float(d)

    x0, dx = step("x", 1)
    y0, dy = step("y", 5)
    return Affine(dx, 0.0, x0, 0.0, dy, y0)


def _grid_crs(ds: xr.Dataset, var: xr.DataArray, fallback: str) -> CRS:
    """The CRS of a store grid: ``spatial_ref``'s WKT, else the array's ``_CRS``, else ``fallback``."""
    if "spatial_ref" in ds.coords:
        wkt = ds["spatial_ref"].attrs.get("crs_wkt") or ds["spatial_ref"].attrs.get("spatial_ref")
        if wkt:
            return CRS.from_wkt(wkt)
    if isinstance(var.attrs.get("_CRS"), dict) and var.attrs["_CRS"].get("wkt"):
        return CRS.from_wkt(var.attrs["_CRS"]["wkt"])
    return CRS.from_user_input(fallback)


def _nodata(var: xr.DataArray) -> float | int | None:
    """The store's fill value (opened unmasked): NaN for floats, else ``_FillValue`` / ``nodata``,
    None for arrays without one (e.g. ``esv_pixels``, where 0 is a count)."""
    fill = var.attrs.get("_FillValue", var.encoding.get("_FillValue"))
    if np.issubdtype(var.dtype, np.floating):
        return float("nan") if fill is None or np.isnan(fill) else float(fill)
    if fill is None:
        fill = var.attrs.get("nodata")
    return None if fill is None else int(fill)


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    return json.dumps(value, default=str)


def store_rasters(store: str | Path, grid_crs: str, run_name: str = "") -> list[Raster]:
    """Every grid of a run's store as the COGs to write: each 30 m array and each analysis-grid
    array, one per year where it has a ``year`` dimension; a further dimension (``group``,
    ``class``) becomes the bands. Opens the store lazily, reads no pixels."""
    store = Path(store)
    out: list[Raster] = []
    for group, prefix in ((None, ""), (ANALYSIS, "analysis_")):
        try:
            ds = xr.open_zarr(store, group=group, consolidated=False, mask_and_scale=False,
                              decode_coords="all")
        except Exception as exc:  # noqa: BLE001 - a damaged or partial store
            if group is None:
                raise InputError([problem(store, "", None, f"cannot open the store: {exc}")]) from None
            continue
        source = store / group if group else store
        transform = grid_transform(ds, source)
        grid = "analysis" if group else "pixel"
        for name in sorted(ds.data_vars):
            var = ds[name]
            extra = [d for d in var.dims if d not in ("year", "y", "x")]
            if var.dims[-2:] != ("y", "x") or len(extra) > 1:
                continue  # not a grid of this store's layout
            attrs = {k: v for k, v in var.attrs.items() if k not in ("_CRS", "grid_mapping", "_FillValue")}
            long_name = str(attrs.get("long_name", name))
            units = attrs.get("units")
            tags = {"ecodask_run": run_name, "variable": f"{group}/{name}" if group else name,
                    "grid": grid, **{k: _text(v) for k, v in attrs.items()}}
            if name == "zone":
                tags["zone_table"] = f"the zones layer of {COUNTIES_GPKG} (zone -> zone_id, zone_name)"
            years = [int(y) for y in ds["year"].values] if "year" in var.dims else [None]
            for i, year in enumerate(years):
                sel = var.isel(year=i) if year is not None else var
                if extra:
                    sel = sel.transpose(extra[0], "y", "x")
                    descriptions = [f"{long_name}: {b}" for b in sel[extra[0]].values]
                else:
                    sel = sel.expand_dims("band")
                    descriptions = [long_name]
                stem = _safe_name(f"{prefix}{name}" + (f"_{year}" if year is not None else ""), name)
                out.append(Raster(
                    name=stem, data=sel.data, crs=_grid_crs(ds, var, grid_crs), transform=transform,
                    nodata=_nodata(var), descriptions=descriptions,
                    categorical=name in CATEGORICAL or attrs.get("kind") == "categorical",
                    units=str(units) if units is not None else None,
                    tags={**tags, **({"year": str(year)} if year is not None else {})},
                    band_tags={k: _text(v) for k, v in attrs.items()}))
    return out


def block_size(height: int, width: int) -> int:
    """The COG tile side: 512 px, halved (down to 16) while one tile would hold the whole raster,
    so that a small raster is still tiled with at least one overview."""
    b = MAX_BLOCK
    while b > MIN_BLOCK and max(height, width) <= b:
        b //= 2
    return b


def windows(shape: tuple[int, int], chunks: tuple[tuple[int, ...], tuple[int, ...]],
            block: int) -> Iterator[Window]:
    """Windows covering a (height, width) raster, each as large as a store chunk rounded up to
    whole tiles of ``block`` px, starting on tile boundaries: every tile is written once, and a
    window holds only a few chunks in memory."""
    h, w = shape
    sy = max(block, math.ceil(max(chunks[0]) / block) * block)
    sx = max(block, math.ceil(max(chunks[1]) / block) * block)
    for r in range(0, h, sy):
        for c in range(0, w, sx):
            yield Window(c, r, min(sx, w - c), min(sy, h - r))


def write_cog(r: Raster, path: str | Path) -> Path:
    """Write one raster as a Cloud-Optimized GeoTIFF at ``path``, atomically: window by window
    into a temporary tiled GeoTIFF, then GDAL's COG driver (overviews, layout); every temporary
    file is removed, on failure too."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n_bands, height, width = r.data.shape
    block = block_size(height, width)
    stage, partial = _partial(path, "stage"), _partial(path)
    floating = np.issubdtype(np.dtype(r.data.dtype), np.floating)
    profile = {
        "driver": "GTiff", "width": width, "height": height, "count": n_bands, "dtype": r.data.dtype,
        "crs": r.crs, "transform": r.transform, "nodata": r.nodata, "tiled": True,
        "blockxsize": block, "blockysize": block, "compress": "deflate", "zlevel": 1,
        "interleave": "band", "bigtiff": "IF_SAFER",
    }
    try:
        _remove([stage, partial])
        with rasterio.open(stage, "w", **profile) as dst:
            dst.update_tags(**r.tags)
            for b in range(n_bands):
                dst.set_band_description(b + 1, r.descriptions[b])
                if r.units:
                    dst.set_band_unit(b + 1, r.units)
                dst.update_tags(b + 1, **r.band_tags)
                band = r.data[b]
                for win in windows((height, width), band.chunks, block):
                    rows, cols = win.toslices()
                    block_data = np.asarray(band[rows, cols].compute(scheduler="synchronous"))
                    dst.write(block_data, b + 1, window=win)
        rasterio.shutil.copy(
            stage, partial, driver="COG", BLOCKSIZE=block, COMPRESS="DEFLATE",
            PREDICTOR="YES" if floating else "NO", BIGTIFF="IF_SAFER", NUM_THREADS="ALL_CPUS",
            OVERVIEW_RESAMPLING="MODE" if r.categorical else "AVERAGE")
        os.replace(partial, path)
    finally:
        _remove([stage, partial])
    return path


# --------------------------------------------------------------------------- the export


def export_run(run_dir: str | Path, cog: bool = False, out: str | Path | None = None,
               log: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Export a finished run for GIS use (see the module docstring for what is written).

    ``run_dir``: the run's output folder (``run.json``, ``store.zarr``, ``tables/``); ``out``:
    where to write, default ``<run_dir>/export``; ``cog``: also every grid of the store as a
    Cloud-Optimized GeoTIFF under ``<out>/cog`` (``esv`` in CNY/yr per pixel,
    ``analysis_esv_density`` in CNY/ha/yr, ...); ``log``: called with a line per file written.
    Returns the written files by their path relative to ``out`` (``counties.gpkg``,
    ``esv_total.geoparquet``, ``cog/esv_2000.tif``, ...).

    Raises :class:`InputError` naming the folder and what is missing when ``run_dir`` is not a
    finished run, before anything is written.
    """
    log = log or (lambda _msg: None)
    run = open_run(run_dir)
    out = Path(out) if out is not None else run.run_dir / EXPORT
    layers = county_layers(run)
    rasters = store_rasters(run.store, run.grid_crs, run.name) if cog else []
    paths = write_layers(layers, out, log)
    for r in rasters:
        path = write_cog(r, out / COG_DIR / f"{r.name}.tif")
        log(f"wrote {path}")
        paths[f"{COG_DIR}/{path.name}"] = path
    return paths
