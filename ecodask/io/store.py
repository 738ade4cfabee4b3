"""Ingest: source GeoTIFFs (any CRS) and county polygons -> one Zarr v3 store on the run's grid.

Store layout (CF conventions, readable by xarray/rioxarray and GDAL)::

    store.zarr/
      landcover (year, y, x) uint8   class codes, nearest resampling, 0 = no data
      zone      (y, x)       uint8|uint16|uint32  zone index 1..n, 0 outside every zone
      spatial_ref, x, y, year        CRS (crs_wkt, GeoTransform) and pixel-centre coordinates, m
      analysis/                       the analysis grid (cell = analysis_factor pixels)
        <driver> (y, x) float32       mean (continuous) or mode (categorical) of each driver; a
                                      DEM's slope, aspect, eastness or northness, derived at the
                                      DEM's resolution, then averaged (attribute ``derived``)
        spatial_ref, x, y

Chunks are ``chunk_size``² pixels on the pixel grid and ``chunk_size / analysis_factor``² cells
on the analysis grid, so chunk (i, j) of every array covers the same ground. The store is written
under a temporary name and renamed when complete: a reader never sees half of it.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr
import zarr
from dask.delayed import Delayed
from rasterio.enums import Resampling

from ecodask import __version__
from ecodask.chunked.blockwise import map_sum_blocks, tree_sum
from ecodask.chunked.landpass import HELD_LANDCOVER_BYTES
from ecodask.crashpoints import crash_point
from ecodask.io import objstore
from ecodask.io.cleanup import remove_tree
from ecodask.io.layers import Layers, location
from ecodask.io.layout import STORE
from ecodask.io.rasters import RasterizedZones, WarpedRaster, WarpedYears, smallest_uint
from ecodask.io.terrain import TERRAIN_RESAMPLING, TERRAIN_UNITS, TerrainRaster
from ecodask.io.zones import zone_table
from ecodask.kernels.histogram import zone_class_counts, zone_known_counts, zone_pixel_counts
from ecodask.science.grid import Grid

ANALYSIS_GROUP = "analysis"
#: Names of the store's arrays (pixel grid, then the analysis group), defined here only.
LANDCOVER, ZONE = "landcover", "zone"
ESV, ESV_GROUP, GROUP = "esv", "esv_group", "group"
ESV_PIXELS, ESV_DENSITY = "esv_pixels", "esv_density"
ESV_GI_Z, ESV_HOTSPOT = "esv_gi_z", "esv_hotspot"
CLASS_PIXELS, CLASS = "class_pixels", "class"


@dataclass(frozen=True)
class StoreInputs:
    """What a store is made of, checked by the caller: the grid, the numbered zones (a
    GeoDataFrame in the grid CRS, see :func:`ecodask.io.zones.read_zones`), the land-cover file of
    each year with its class scheme's name, and each driver's file, kind (continuous or
    categorical) and what is derived from it (``none``, or one of
    :data:`ecodask.io.terrain.DERIVED` for a DEM)."""

    run_name: str
    grid: Grid
    zones: object
    landcover: dict[int, Path]
    scheme: str
    drivers: dict[str, tuple[Path, str, str]] = field(default_factory=dict)

    @property
    def years(self) -> list[int]:
        return sorted(self.landcover)


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


def _landcover_source(prep: StoreInputs) -> WarpedYears:
    """Every year's land cover on the run's grid (class codes, 0 = no data)."""
    return WarpedYears(tuple(WarpedRaster(str(prep.landcover[y]), prep.grid, np.dtype(np.uint8), 0)
                             for y in prep.years))


def _dataset_pixels(prep: StoreInputs, held_up_to: int | None = None) -> xr.Dataset:
    grid = prep.grid
    c = grid.chunk_size
    years = prep.years
    landcover = da.from_array(_landcover_source(prep), chunks=(years_per_task(c, held_up_to), c, c),
                              lock=False, asarray=True, name=False)
    zones = prep.zones
    ztype = smallest_uint(len(zones))
    zsrc = RasterizedZones(tuple(zones.geometry.to_wkb()), tuple(int(v) for v in zones["zone"]), grid, ztype)
    zone = da.from_array(zsrc, chunks=(c, c), lock=False, asarray=True, name=False)
    ds = xr.Dataset(
        {
            LANDCOVER: (("year", "y", "x"), landcover),
            ZONE: (("y", "x"), zone),
        },
        coords={"year": ("year", np.asarray(years, dtype=np.int32))},
    )
    ds[LANDCOVER].attrs.update(long_name="land-cover class code", scheme=prep.scheme,
                                 nodata=0, resampling="nearest")
    ds[ZONE].attrs.update(long_name="zone index (see the store's zones attribute); 0 = outside",
                            nodata=0)
    ds = _georef(ds, grid)
    ztab = zone_table(zones)
    ds.attrs.update(
        ecodask_version=__version__,
        run_name=prep.run_name,
        resolution_m=grid.resolution,
        analysis_factor=grid.analysis_factor,
        pixel_area_ha=grid.pixel_area_ha,
        class_scheme=prep.scheme,
        zones={k: ztab[k].tolist() for k in ("zone", "zone_id", "zone_name", "area_ha")},
    )
    return ds


def _dataset_analysis(prep: StoreInputs) -> xr.Dataset:
    agrid = prep.grid.analysis
    c = agrid.chunk_size
    data = {}
    for name, (path, kind, derive) in sorted(prep.drivers.items()):
        resampling = Resampling.average if kind == "continuous" else Resampling.mode
        if derive != "none":
            src = TerrainRaster(str(path), agrid, derive)
        else:
            src = WarpedRaster(str(path), agrid, np.dtype(np.float32), np.nan, resampling)
        data[name] = (("y", "x"), da.from_array(src, chunks=(c, c), lock=False, asarray=True, name=False))
    ds = xr.Dataset(data)
    for name, (path, kind, derive) in prep.drivers.items():
        ds[name].attrs.update(kind=kind, resampling="average" if kind == "continuous" else "mode",
                              source=Path(path).name)
        if derive != "none":
            ds[name].attrs.update(derived=derive, units=TERRAIN_UNITS[derive],
                                  resampling=TERRAIN_RESAMPLING[derive])
    ds = _georef(ds, agrid)
    ds.attrs.update(cell_size_m=agrid.resolution, analysis_factor=prep.grid.analysis_factor)
    return ds


def _encoding(ds: xr.Dataset, fill: dict[str, object]) -> dict[str, dict]:
    """Zarr chunks as the Dask chunks, but one year each (a task writes a block of years)."""
    enc = {}
    for name, var in ds.data_vars.items():
        chunks = tuple(1 if dim == "year" else c[0] for dim, c in zip(var.dims, var.chunks, strict=True))
        enc[name] = {"chunks": chunks, "_FillValue": fill.get(name, np.nan)}
    return enc


def years_per_task(chunk_size: int, held_up_to: int | None = None) -> int:
    """Land-cover years one ingest task reads at once for chunks of ``chunk_size``² pixels: as
    many as fit ``held_up_to`` bytes (by default :data:`ecodask.chunked.landpass.HELD_LANDCOVER_BYTES`,
    what a task of the land pass reads at once: 4 years of 4096², 16 of 2048²), at least one."""
    held = HELD_LANDCOVER_BYTES if held_up_to is None else int(held_up_to)
    return max(1, held // (int(chunk_size) ** 2))


def _year_blocks(lc: da.Array) -> list[da.Array]:
    """``lc`` (year, y, x) cut at its year chunks: a piece per block of years an ingest task reads."""
    edges = np.cumsum([0, *lc.chunks[0]])
    return [lc[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _codes_inside(pix: xr.Dataset) -> list[Delayed]:
    """Pixel counts by land-cover code outside and inside the zones, (years, 2, 256) int64 per
    block of years (a Delayed each), computed with the store's write from the same reads."""
    inside = (pix[ZONE].data > 0).astype(np.uint8)
    return [map_sum_blocks(zone_class_counts, [inside, b], n_zones=1)
            for b in _year_blocks(pix[LANDCOVER].data)]


def _landcover_block(source: WarpedYears, target: str, years: tuple[int, int], y0: int, x0: int,
                     inside: np.ndarray) -> np.ndarray:
    """Read a chunk's land cover of the years ``years`` (first, end) from ``source`` (at the chunk's
    window, ``inside``'s shape, origin ``y0``, ``x0``), write it into the Zarr array ``target`` and
    return its pixel counts by code outside and inside the zones, (years, 2, 256) int64 (``inside``:
    uint8, 1 inside a zone)."""
    window = (slice(y0, y0 + inside.shape[0]), slice(x0, x0 + inside.shape[1]))
    block = source[(slice(*years), *window)]
    zarr.open_array(target, mode="r+")[(slice(*years), *window)] = block
    return zone_class_counts(inside, block, n_zones=1)


def _write_landcover(pix: xr.Dataset, stack: WarpedYears, target: str | Path, split_every: int = 8,
                     ) -> list[Delayed]:
    """The land cover ``stack`` (``pix``'s) into the Zarr array ``target``: a task per chunk and block
    of years (the chunks of ``pix``'s land cover) reads, writes and counts, so no block waits in
    memory for a second reader; the code counts (years, 2, 256) per block of years, summed over the
    chunks."""
    lc = pix[LANDCOVER].data
    inside = (pix[ZONE].data > 0).astype(np.uint8).to_delayed()
    offsets = [np.concatenate([[0], np.cumsum(c)[:-1]]) for c in lc.chunks[1:]]
    edges = np.cumsum([0, *lc.chunks[0]])
    task = dask.delayed(_landcover_block, pure=False)
    return [tree_sum([task(stack, str(target), (int(a), int(b)), int(y0), int(x0), inside[i, j])
                      for i, y0 in enumerate(offsets[0]) for j, x0 in enumerate(offsets[1])], split_every)
            for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _inside_counts(blocks: list[np.ndarray]) -> np.ndarray:
    """(years, 256) pixels inside the zones by code, from :func:`_codes_inside`' blocks."""
    return np.concatenate([b.reshape(-1, 2, 256)[:, 1] for b in blocks])


@dataclass(frozen=True)
class Scan:
    """What one read of the land cover on the run's grid shows, before anything is written:
    ``inside`` (years, 256) pixels inside the zones by code; ``zone_data`` (years, zones + 1)
    pixels of a known class by zone index (0: outside every zone); ``zone_pixels`` (zones + 1,)
    each zone's pixels on the grid."""

    inside: np.ndarray
    zone_data: np.ndarray
    zone_pixels: np.ndarray


def scan(prep: StoreInputs, known: np.ndarray) -> Scan:
    """Read the land cover of ``prep`` on the run's grid as ingest would, write nothing, and count
    (see :class:`Scan`); ``known``: bool (256,), True for the class scheme's codes. Uses the
    current Dask scheduler."""
    pix = _dataset_pixels(prep)
    n = len(prep.zones)
    zone, lc = pix[ZONE].data, pix[LANDCOVER].data
    data = [map_sum_blocks(zone_known_counts, [zone, b], known=known, n_zones=n) for b in _year_blocks(lc)]
    zone_px = map_sum_blocks(zone_pixel_counts, [zone], n_zones=n)
    inside, data, zone_px = dask.compute(_codes_inside(pix), data, zone_px)
    return Scan(_inside_counts(inside), np.concatenate([d.reshape(-1, n + 1) for d in data]),
                np.asarray(zone_px))


def ingest(prep: StoreInputs, out_dir: str | Path,
           check_codes: Callable[[np.ndarray], None] | None = None,
           check_drivers: Callable[[dict[str, tuple[int, int]]], None] | None = None,
           held_up_to: int | None = None, layer: str | None = None) -> Path | str:
    """Write the Zarr store of ``prep`` into ``out_dir``, or with ``layer`` (a URL, see
    :mod:`ecodask.io.layers`) into that layer, straight from the tasks; return its path or URL.

    Uses the current Dask scheduler (the run's cluster). The store is first written as
    ``store.zarr.partial`` and renamed into place only when complete. Checks on what the pass
    reads, each called in the same pass as the arrays are written; an exception one raises leaves
    no store:

    - ``check_codes``: the land cover's pixel counts inside the zones by year and code, (years,
      256) int64, before the drivers are read (a code the class scheme lacks, a year without data);
    - ``check_drivers``: per driver, its finite and its infinite cells on the analysis grid.

    A task reads a chunk's land cover of a block of years (:func:`years_per_task`, ``held_up_to``
    bytes), not of one year.
    """
    if layer is not None:  # a bucket: no rename; the stage's manifest, written last, commits it
        _write_store(prep, layer, check_codes, check_drivers, held_up_to)
        return layer
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / STORE
    tmp = out_dir / (STORE + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_store(prep, tmp, check_codes, check_drivers, held_up_to)
    except BaseException:
        remove_tree(tmp)  # also what chunk writes still running put there
        raise
    crash_point("ingest:written")
    old = out_dir / (STORE + ".old")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _write_store(prep: StoreInputs, target: str | Path,
                 check_codes: Callable[[np.ndarray], None] | None,
                 check_drivers: Callable[[dict[str, tuple[int, int]]], None] | None,
                 held_up_to: int | None) -> None:
    """The store of :func:`ingest` at ``target`` (a folder or a URL), checks included."""
    pix = _dataset_pixels(prep, held_up_to)
    # The metadata and coordinates now; the data by the tasks below (xarray's own write is not run).
    pix.to_zarr(target, mode="w", zarr_format=3, consolidated=False,
                encoding=_encoding(pix, {LANDCOVER: 0, ZONE: 0}), compute=False)
    zone = pix[ZONE].data
    write_zone = da.store(zone, zarr.open_array(location(target, ZONE), mode="r+"), lock=False, compute=False)
    zone_px = map_sum_blocks(zone_pixel_counts, [zone], n_zones=len(prep.zones))
    write_lc = _write_landcover(pix, _landcover_source(prep), location(target, LANDCOVER))
    _, zone_px, counts = dask.compute(write_zone, zone_px, write_lc)
    root = zarr.open_group(target, mode="r+")  # the new store's own metadata: the zones' pixel counts
    root.attrs["zones"] = {**root.attrs["zones"], "pixels": [int(v) for v in zone_px[1:]]}
    if check_codes is not None:
        check_codes(_inside_counts(counts))
    ana = _dataset_analysis(prep)
    write = ana.to_zarr(target, group=ANALYSIS_GROUP, mode="w", zarr_format=3, consolidated=False,
                        encoding=_encoding(ana, {}), compute=False)
    finite = {n: (da.isfinite(ana[n].data).sum(), da.isinf(ana[n].data).sum()) for n in ana.data_vars}
    _, finite = dask.compute(write, finite if check_drivers is not None else {})
    if check_drivers is not None:
        check_drivers({n: (int(f), int(i)) for n, (f, i) in finite.items()})


def open_store(path: str | Path | Layers) -> tuple[xr.Dataset, xr.Dataset]:
    """The pixel-grid and analysis-grid datasets of a store, lazily, codes left as integers; of
    :class:`~ecodask.io.layers.Layers`, their ``read`` layers as one store (with ingest's
    coordinates and attributes)."""
    if isinstance(path, Layers):
        return _open_layers(path)
    # A layer in a bucket has its metadata consolidated (one GET, not one per array; none on disk).
    consolidated = None if objstore.is_remote(str(path)) else False
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Failed to open Zarr store with consolidated")
        pix = xr.open_zarr(path, consolidated=consolidated, mask_and_scale=False, decode_coords="all")
        ana = xr.open_zarr(path, group=ANALYSIS_GROUP, consolidated=consolidated, decode_coords="all")
    return pix, ana


def ingested(store: str | Path | Layers, name: str) -> str | Path:
    """Where the array ``name`` that ingest writes (``landcover``, ``zone``) is: in the store's
    folder, or in ingest's layer."""
    return location(store.base if isinstance(store, Layers) else store, name)


def _open_layers(layers: Layers) -> tuple[xr.Dataset, xr.Dataset]:
    """The layers of a remote run's store read as one (:func:`open_store`)."""
    base_pix, base_ana = open_store(layers.base)
    pix, ana = [base_pix], [base_ana]
    for url in layers.read[1:]:
        # A stage's layer holds only its arrays: their grid mapping is ingest's, read from there.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pix.append(xr.open_zarr(url, consolidated=None, mask_and_scale=False, decode_coords=False))
            try:
                ana.append(xr.open_zarr(url, group=ANALYSIS_GROUP, consolidated=None, decode_coords=False))
            except (FileNotFoundError, zarr.errors.GroupNotFoundError):
                pass  # a stage that wrote nothing on the analysis grid
            except KeyError as exc:  # the same, said by a layer's consolidated metadata
                if f"'{ANALYSIS_GROUP}' not found" not in str(exc):
                    raise
    # Ingest's coordinates (and grid mapping) hold for every layer: a layer's own copies are dropped.
    pix[1:] = [d.drop_vars([v for v in d.variables if v in base_pix.variables]) for d in pix[1:]]
    ana[1:] = [d.drop_vars([v for v in d.variables if v in base_ana.variables]) for d in ana[1:]]
    merge = dict(compat="override", join="override", combine_attrs="override")
    return xr.merge(pix, **merge), xr.merge(ana, **merge)


def store_zones(pix: xr.Dataset) -> pd.DataFrame:
    """The zone table recorded in a store: zone, zone_id, zone_name, area_ha (the polygon's, ha)
    and, from stores of this version, pixels (the zone's pixels on the run's grid)."""
    return pd.DataFrame(pix.attrs["zones"])
